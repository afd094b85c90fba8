"""A device's link-down line opens the interface's `oper_up` incident before the next poll; that poll confirms it,
or the incident says the device's log and its counters disagree.  Real snmpsim, real `logger` over UDP, the daemon.

The target polls every hour: only the first poll (at start) and the one the test asks for (a reload that changes
the target, which restarts its poller) run, so the poll cannot be what opened the incidents.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from typing import Any

from tests.helpers import Mepd, free_port, snmp_target, syslog_listen, wait_for
from tests.integration.snmp.conftest import Iface, Sim, snmprec

RULE = '''
[alert]
group_wait = "0s"
evaluation_interval = "100ms"
[[alert.rule]]
name = "link-down"
metric = "snmp.sim.*.oper_up"
below = 1
'''


def _logger(port: int, message: str) -> None:
    """The line as a Cisco switch sends it, from 127.0.0.1: the target's address."""
    subprocess.run(["logger", "-n", "127.0.0.1", "-P", str(port), "-d", "-p", "local7.err", "-t", "12", message],
                   check=True, timeout=30)


def _cycles(d: Mepd) -> int:
    comp = next((c for c in d.mepctl_json("status")["components"] if c["name"] == "snmp/sim"), None)
    return int(comp["counters"].get("cycles", 0)) if comp is not None else 0


def _incidents(d: Mepd) -> dict[str, dict[str, Any]]:
    """The incidents by interface (the key's third part), resolved included, with their history."""
    out = {}
    for inc in d.mepctl_json("incidents", "--all"):
        shown = d.mepctl_json("incident", str(inc["id"]))
        out[inc["labels"]["key"].split(".")[2]] = {**shown["incident"], "history": shown["history"]}
    return out


def _events(inc: Mapping[str, Any]) -> list[str]:
    return [h["event"] for h in inc["history"] if h["event"] != "notified"]


def test_a_link_down_line_opens_the_incident_before_the_poll_which_then_judges_it(
        mepd_factory: Callable[..., Mepd], start_sim: Callable[[Mapping[str, str]], Sim]) -> None:
    ifaces = [Iface(1, "GigabitEthernet0/1"), Iface(2, "GigabitEthernet0/2")]
    sim = start_sim({"sim": snmprec(1000, ifaces)})
    port, http_port = free_port(), free_port()
    config = (syslog_listen(port, "udp") + f'[http]\nlisten = "127.0.0.1:{http_port}"\n' + RULE
              + snmp_target("sim", sim.port, community="sim", interval="{}"))
    d = mepd_factory(config.replace("{}", "1h")).start()
    wait_for(lambda: _cycles(d) >= 1, what="the first poll of sim")
    assert d.mepctl_json("incidents") == []  # both interfaces are up

    _logger(port, "%LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down")
    _logger(port, "%LINK-3-UPDOWN: Interface Gi0/2, changed state to down")
    opened = wait_for(lambda: (found := _incidents(d)) and len(found) == 2 and found, what="two incidents")
    assert _cycles(d) == 1  # no poll since the first: the lines opened them
    for name in ("GigabitEthernet0_1", "GigabitEthernet0_2"):
        assert opened[name]["state"] == "firing"
        assert _events(opened[name]) == ["fired", "log"]
        assert "changed state to down" in opened[name]["lines"][0]

    # The next poll: Gi0/2 is down indeed, Gi0/1 is up (a bounce the poll missed, an up line lost).
    sim.set("sim", snmprec(2000, [Iface(1, "GigabitEthernet0/1"), Iface(2, "GigabitEthernet0/2", oper=2)]))
    d.write_config(config.replace("{}", "59m"))
    d.mepctl("reload")

    def judged() -> dict[str, dict[str, Any]] | None:
        found = _incidents(d)
        return found if all(len(_events(inc)) > 2 for inc in found.values()) else None

    verdicts = wait_for(judged, what="the poll's verdicts")
    up, down = verdicts["GigabitEthernet0_1"], verdicts["GigabitEthernet0_2"]
    assert (down["state"], _events(down)) == ("firing", ["fired", "log", "confirmed"])
    assert (up["state"], _events(up)) == ("resolved", ["fired", "log", "resolved", "disagreed"])
    assert "log and counters disagree" in up["summary"]

    timeline = d.mepctl_json("timeline", "snmp.sim.GigabitEthernet0_1", "--since", "1h")["events"]
    assert [(e["kind"], e["event"]) for e in timeline] == [
        ("log", "down"), ("incident", "fired"), ("incident", "log"), ("incident", "resolved"),
        ("incident", "disagreed")]

    # The target's page: both interfaces' lines and incidents on one axis, each interface linked.
    page = d.dashboard_get(f"http://127.0.0.1:{http_port}/timeline/sim.html").decode()
    table = page.split("<section id=timeline>", 1)[1]
    assert table.count("changed state to down") == 2
    assert table.count("disagreed") == 1
    assert table.count("confirmed") == 1
    assert '<a href="../if/sim/GigabitEthernet0_2.html">GigabitEthernet0_2</a>' in table
