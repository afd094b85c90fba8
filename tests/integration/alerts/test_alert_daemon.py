"""The real daemon: syslog lines raise an incident; mepctl lists, shows, acks, silences and resolves it.

A restart and a SIGHUP reload keep the open incident.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.helpers import Mepd, free_port, syslog_listen, wait_for

MakeMepd = Callable[..., Mepd]


def alert_rules(count: int = 2) -> str:
    return f'''
[alert]
group_wait = "0s"
evaluation_interval = "100ms"
[[alert.rule]]
name = "ssh-brute"
pattern = "Failed password"
app = "sshd"
count = {count}
window = "1h"
attach = 5
summary = "{{count}} failed logins"
'''


def logger(port: int, message: str) -> None:
    subprocess.run(["logger", "-n", "127.0.0.1", "-P", str(port), "-d", "-t", "sshd", message],
                   check=True, timeout=30)


def incidents(d: Mepd, *args: str) -> list[dict[str, Any]]:
    return list(d.mepctl_json("incidents", *args))


def test_incident_through_mepctl(mepd_factory: MakeMepd, tmp_path: Path) -> None:
    port = free_port()
    d = mepd_factory(syslog_listen(port, "udp") + alert_rules()).start()
    assert d.mepctl("incidents").stdout.strip() == "no incidents"
    for user in ("root", "admin"):
        logger(port, f"Failed password for {user} from 192.0.2.7 port 22 ssh2")
    [inc] = wait_for(lambda: incidents(d), what="an incident from two failed logins")
    assert (inc["rule"], inc["state"], inc["summary"], len(inc["lines"])) == (
        "ssh-brute", "firing", "2 failed logins", 2)
    iid = str(inc["id"])

    assert d.mepctl("ack", iid, "--comment", "blocked at the firewall").stdout.strip() == f"incident {iid} acknowledged"
    shown = d.mepctl("incident", iid).stdout
    assert "acknowledged" in shown
    assert "Failed password for admin" in shown
    detail = d.mepctl_json("incident", iid)
    assert [h["event"] for h in detail["history"]] == ["fired", "acknowledged"]
    assert detail["incident"]["comment"] == "blocked at the firewall"

    silence = d.mepctl_json("silence", "rule=ssh-brute,host=~web.*", "--for", "2h", "--comment", "upgrade")
    assert silence["matchers"] == "rule=ssh-brute,host=~web.*"
    assert [s["id"] for s in d.mepctl_json("silences")] == [silence["id"]]
    d.mepctl("unsilence", str(silence["id"]))
    assert d.mepctl_json("silences") == []
    assert len(d.mepctl_json("silences", "--all")) == 1

    missing = d.mepctl("ack", "99", check=False)
    assert (missing.returncode, missing.stderr.strip()) == (1, "mepctl: no incident 99")
    bad = d.mepctl("silence", "rule", check=False)
    assert bad.returncode == 1
    assert "bad matcher 'rule'" in bad.stderr
    usage = d.mepctl("silence", "rule=x", "--for", "soon", check=False)
    assert usage.returncode == 2
    too_long = d.mepctl("silence", "rule=x", "--for", "31d", check=False)  # the engine's rule, not the dashboard's
    assert (too_long.returncode, too_long.stderr.strip()) == (1, "mepctl: a silence lasts more than 0s and at most 30d")

    d.stop()
    d.start()
    assert [(i["id"], i["state"]) for i in incidents(d)] == [(inc["id"], "acknowledged")]

    d.write_config(syslog_listen(port, "udp") + alert_rules(count=3))
    mark = len(d.notify.lines())
    d.send(signal.SIGHUP)
    d.notify.wait_line(lambda ln: ln == "READY=1", "READY=1 after the reload", after=mark)
    assert [(i["id"], i["state"]) for i in incidents(d)] == [(inc["id"], "acknowledged")]

    d.mepctl("resolve", iid, "-m", "done")
    assert incidents(d) == []
    [resolved] = incidents(d, "--all")
    assert (resolved["state"], resolved["comment"]) == ("resolved", "done")
    status = json.loads(d.mepctl("status", "--json").stdout)
    [alerts] = [c for c in status["components"] if c["name"] == "alerts"]
    assert alerts["state"] == "running"
    assert alerts["counters"]["incidents.resolved"] == 1  # counters are per process: the resolution by hand


def test_a_step_that_stops_the_errors_is_verified_through_the_daemon(mepd_factory: MakeMepd, tmp_path: Path) -> None:
    """The closed loop in the real daemon: a tailed file gets error lines from a writer; the step stops the
    writer, the rule's window empties, the incident clears: verified, shown by mepctl incident and actions."""
    log, pidfile = tmp_path / "app.log", tmp_path / "writer.pid"
    log.touch()
    fix = tmp_path / "stop-writer.sh"
    fix.write_text(f'#!/bin/sh\nkill "$(cat {pidfile})"\necho "writer stopped"\n')
    fix.chmod(0o755)
    writer = subprocess.Popen(["/bin/sh", "-c", f"echo $$ > {pidfile}; while :; do echo 'ERROR backend down'"
                               f" >> {log}; sleep 0.1; done"])
    try:
        d = mepd_factory(f'''
[[tail]]
name = "app"
path = "{log}"
start = "beginning"
[alert]
group_wait = "0s"
evaluation_interval = "100ms"
[[alert.rule]]
name = "app-errors"
pattern = "ERROR"
count = 3
window = "1s"
[[alert.rule.action]]
argv = ["{fix}"]
verify = "1m"
''').start()
        [inc] = wait_for(lambda: [i for i in incidents(d, "--all") if i["steps"]
                                  and i["steps"][-1]["outcome"] == "verified"], what="the step to be verified")
        assert writer.wait(timeout=30) != 0  # the step killed it
        assert inc["state"] == "resolved"
        shown = d.mepctl("incident", str(inc["id"])).stdout
        assert "steps:" in shown
        assert "verified  exit 0" in shown
        [stats] = d.mepctl_json("actions")
        assert {k: stats[k] for k in ("rule", "step", "runs", "verified", "failed")} == {
            "rule": "app-errors", "step": 1, "runs": 1, "verified": 1, "failed": 0}
        assert "app-errors" in d.mepctl("actions").stdout
    finally:
        writer.kill()
        writer.wait()
