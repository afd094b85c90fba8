"""The real daemon, fed over syslog UDP: a `distinct = "host"` rule fires on five hosts, not on five lines.

A second rule fires on a marker line sent after the others on the same socket: once its incident shows, the
daemon has read every line before it, so "no incident" is checked without waiting for a time to pass.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.helpers import Mepd, free_port, syslog_listen, wait_for

MakeMepd = Callable[..., Mepd]

RULES = '''
[alert]
group_wait = "0s"
evaluation_interval = "100ms"
[[alert.rule]]
name = "ssh-spray"
pattern = "Failed password"
app = "sshd"
distinct = "host"
count = 5
window = "1h"
summary = "failed logins on {distinct} hosts: {distinct_values}"
[[alert.rule]]
name = "marker"
pattern = "test marker"
app = "marker"
'''


def incidents(d: Mepd, rule: str) -> list[dict[str, Any]]:
    return [i for i in d.mepctl_json("incidents") if i["rule"] == rule]


def test_failed_logins_from_five_distinct_hosts_raise_one_incident(mepd_factory: MakeMepd, tmp_path: Path) -> None:
    port = free_port()
    d = mepd_factory(syslog_listen(port, "udp") + RULES).start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:

        def send(host: str, app: str, message: str) -> None:
            sock.sendto(f"<38>Oct 11 22:14:15 {host} {app}[811]: {message}".encode(), ("127.0.0.1", port))

        def failed(host: str) -> None:
            send(host, "sshd", f"Failed password for root from 192.0.2.7 port 22 ssh2 ({host})")

        def marker(n: int) -> None:
            """Sent after the lines to check: its incident's count reaching `n` means they were all read."""
            send("tester", "marker", f"test marker {n}")
            wait_for(lambda: [i for i in incidents(d, "marker") if i["count"] == n], what=f"marker {n}")

        # Eight lines from four hosts: a rule counting lines (count = 5) would fire here.
        for host in ("web1", "web2", "web1", "web3", "web1", "web4", "web1", "web1"):
            failed(host)
        marker(1)
        assert incidents(d, "ssh-spray") == []

        failed("web5")
        [inc] = wait_for(lambda: incidents(d, "ssh-spray"), what="an incident from five hosts")
        assert (inc["state"], inc["summary"], inc["count"]) == (
            "firing", "failed logins on 5 hosts: web2, web3, web4, web1, web5", 5)
        assert [ln.rsplit(" ", 1)[1] for ln in inc["lines"]] == ["(web2)", "(web3)", "(web4)", "(web1)", "(web5)"]

        failed("web2")  # more from the same hosts: the one incident goes on
        marker(2)
        [same] = incidents(d, "ssh-spray")
        assert (same["id"], same["summary"]) == (inc["id"], "failed logins on 5 hosts: web3, web4, web1, web5, web2")
