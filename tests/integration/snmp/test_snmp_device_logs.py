"""A device's syslog tied to its SNMP target (snmpsim): linked by address or sysName, its interface found through
ifName/ifDescr aliases, and a restart line marking the counters' discontinuity (no rate across it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from mepd.analysis.devicelogs import DeviceLogs, link_record
from mepd.config import SnmpTargetConfig
from mepd.model import LogRecord
from mepd.pipeline import Pipeline
from mepd.sources.snmp.target import SnmpHub
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
