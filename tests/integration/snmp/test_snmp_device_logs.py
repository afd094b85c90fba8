"""A device's syslog tied to its SNMP target (snmpsim): linked by address or sysName, its interface found through
ifName/ifDescr aliases, and a restart line marking the counters' discontinuity (no rate across it)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import pytest

from mepd.analysis.devicelogs import DeviceLogs, link_record
from mepd.config import SnmpTargetConfig
from mepd.model import LogRecord
from mepd.pipeline import Pipeline
from mepd.sources.snmp.target import SnmpHub
from tests.helpers import Mepd, free_port, snmp_target, syslog_listen, wait_for
from tests.integration.snmp.conftest import T0, Iface, Poller, Sim, snmprec

StartSim = Callable[[Mapping[str, str]], Sim]


def target(name: str, port: int) -> SnmpTargetConfig:
    return SnmpTargetConfig(name=name, host="127.0.0.1", port=port, interval=1.0, community=name)


def record(message: str, *, host: str | None = None, peer: str | None = None, received: float = T0) -> LogRecord:
    return LogRecord(received, received, message, "syslog/udp", host=host, peer=peer)


def consumer(hub: SnmpHub, cfg: SnmpTargetConfig) -> DeviceLogs:
    return DeviceLogs([cfg], hub, Pipeline().logs.subscribe("devices", 10))


async def test_a_restart_line_between_polls_leaves_no_rate_across_it(start_sim: StartSim, poller: Poller,
                                                                    hub: SnmpHub) -> None:
    """Counters that only grow, and sysUpTime too (a switchover keeps it): only the device's log tells."""
    sim = start_sim({"sw": snmprec(1000, [Iface(1, "eth0", in_octets=10**6)])})
    cfg = target("sw", sim.port)
    t = await poller(cfg)
    await t.poll_once()  # at T0
    devices = consumer(hub, cfg)
    devices.process([record("%SYS-5-RESTART: System restarted --", peer="127.0.0.1:50514", received=T0 + 5)])
    assert devices.counters.get("restarts") == 1
    sim.set("sw", snmprec(2000, [Iface(1, "eth0", in_octets=10**6 + 1000)]))
    got = {s.key: s.value for s in await t.poll_once()}  # at T0 + 10
    assert got["snmp.sw.eth0.in_bps"] is None
    assert t.counters.get("log_restarts") == 1
    sim.set("sw", snmprec(3000, [Iface(1, "eth0", in_octets=10**6 + 2000)]))
    got = {s.key: s.value for s in await t.poll_once()}
    assert got["snmp.sw.eth0.in_bps"] == pytest.approx(1000 * 8 / 10)


async def test_a_restart_line_older_than_the_last_poll_changes_nothing(start_sim: StartSim, poller: Poller,
                                                                       hub: SnmpHub) -> None:
    sim = start_sim({"sw": snmprec(1000, [Iface(1, "eth0", in_octets=10**6)])})
    cfg = target("sw", sim.port)
    t = await poller(cfg)
    await t.poll_once()
    consumer(hub, cfg).process([record("%SYS-5-RELOAD: Reload requested", host="sw", received=T0 - 60)])
    sim.set("sw", snmprec(2000, [Iface(1, "eth0", in_octets=10**6 + 1000)]))
    assert {s.key: s.value for s in await t.poll_once()}["snmp.sw.eth0.in_bps"] == pytest.approx(800.0)


async def test_link_lines_name_the_interface_by_alias(start_sim: StartSim, poller: Poller, hub: SnmpHub) -> None:
    sim = start_sim({"core": snmprec(1000, [Iface(1, "GigabitEthernet0/1"), Iface(2, "GigabitEthernet0/2")])})
    cfg = target("core", sim.port)
    await (await poller(cfg)).poll_once()
    devices = consumer(hub, cfg)  # after the poll: it knows the sysName ("simulated")
    index = devices.index
    by_sysname = link_record(index, hub, record("%LINK-3-UPDOWN: Interface Gi0/2, changed state to down",
                                                host="simulated.example.net"))
    assert by_sysname is not None
    assert by_sysname.link is not None
    assert (by_sysname.target, by_sysname.link.event, by_sysname.interface) == ("core", "down", "GigabitEthernet0_2")
    by_address = link_record(index, hub, record("%LINEPROTO-5-UPDOWN: Line protocol on Interface "
                                                "GigabitEthernet0/1, changed state to up", peer="127.0.0.1:514"))
    assert by_address is not None
    assert by_address.interface == "GigabitEthernet0_1"
    assert link_record(index, hub, record("%LINK-3-UPDOWN: Interface Gi0/1, changed state to down",
                                          host="other", peer="192.0.2.7:514")) is None
    devices.process([record("%LINK-3-UPDOWN: Interface Gi0/9, changed state to down", host="simulated")])
    assert devices.counters.get("unknown_interface") == 1


def _send(port: int, source: str, text: str) -> None:
    """One raw datagram from `source` (a loopback address): the device's own address, as the daemon sees it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.sendto(text.encode(), ("127.0.0.1", port))


def test_daemon_links_device_lines_and_shows_the_timeline(mepd_factory: Callable[..., Mepd],
                                                          start_sim: StartSim) -> None:
    sim = start_sim({"sim": snmprec(1000, [Iface(1, "GigabitEthernet0/1"), Iface(2, "GigabitEthernet0/2")])})
    port = free_port()
    d = mepd_factory(syslog_listen(port, "udp") + snmp_target("sim", sim.port, community="sim", interval="1h")
                     ).start()
    wait_for(lambda: _target_polled(d), what="the first poll of sim")
    stamp = datetime.now().strftime("%b %e %H:%M:%S")  # RFC 3164 stamps are local time
    _send(port, "127.0.0.1", f"<187>{stamp} simulated 12: %LINK-3-UPDOWN: Interface Gi0/1, changed state to down")
    _send(port, "127.0.0.1", f"<189>{stamp} simulated 13: %SYS-5-RESTART: System restarted --")
    _send(port, "127.0.0.2", f"<187>{stamp} other 14: %LINK-3-UPDOWN: Interface Gi0/1, changed state to down")
    _send(port, "127.0.0.1", f"<30>{stamp} simulated kernel: eth9: Link is Down")
    d.wait_logs(4)

    def counters() -> dict[str, Any] | None:
        comp = next(c for c in d.mepctl_json("status")["components"] if c["name"] == "analysis/devices")
        found: dict[str, Any] = comp["counters"]
        return found if found.get("linked") == 3 else None

    assert wait_for(counters, what="3 linked lines") == {"linked": 3, "link_events": 1, "restarts": 1,
                                                         "unknown_interface": 1}
    iface = d.mepctl_json("timeline", "snmp.sim.GigabitEthernet0_1", "--since", "1d")
    assert [(e["kind"], e["event"], e["interface"]) for e in iface["events"]] == [
        ("log", "down", "GigabitEthernet0_1")]
    assert "Gi0/1, changed state to down" in iface["events"][0]["message"]
    whole = d.mepctl_json("timeline", "snmp.sim", "--since", "1d")
    assert sorted(str(e["event"]) for e in whole["events"]) == ["down", "down", "restart"]  # not 127.0.0.2's
    text = d.mepctl("timeline", "snmp.sim.GigabitEthernet0_1").stdout
    assert "changed state to down" in text
    assert d.mepctl("timeline", "snmp.nosuch", check=False).returncode == 1


def _target_polled(d: Mepd) -> bool:
    comp = next((c for c in d.mepctl_json("status")["components"] if c["name"] == "snmp/sim"), None)
    return comp is not None and comp["counters"].get("cycles", 0) >= 1
