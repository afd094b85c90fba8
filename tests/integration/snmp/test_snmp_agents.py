"""The poller against real agents: net-snmp's snmpd (v2c, v3 authPriv) and snmpsim for the hard cases."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import pytest

from mepd.config import SnmpConfig, SnmpOidConfig, SnmpTargetConfig
from mepd.model import Sample
from mepd.pipeline import Pipeline
from mepd.sources.snmp import wire
from mepd.sources.snmp.discover import discover
from mepd.sources.snmp.interfaces import COLUMNS
from mepd.sources.snmp.session import open_session
from mepd.sources.snmp.target import SnmpHub, SnmpTarget
from tests.integration.snmp.conftest import (
    COMMUNITY,
    IF,
    V3_AUTH,
    V3_PRIV,
    V3_USER,
    Blackhole,
    Iface,
    Poller,
    Sim,
    Snmpd,
    snmprec,
)

StartSim = Callable[[Mapping[str, str]], Sim]


def target(name: str, port: int, **kw: Any) -> SnmpTargetConfig:
    base: dict[str, Any] = {"name": name, "host": "127.0.0.1", "port": port, "interval": 1.0, "timeout": 2.0,
                            "retries": 1, "community": name}
    return SnmpTargetConfig(**(base | kw))


def values(samples: list[Sample]) -> dict[str, float | None]:
    return {s.key: s.value for s in samples}


async def test_v2c_poll_of_real_snmpd(snmpd: Snmpd, poller: Poller) -> None:
    t = await poller(target("box", snmpd.port, community=COMMUNITY), clock=time.time)
    first = values(await t.poll_once())
    assert first["snmp.box.lo.oper_up"] == 1.0
    assert first["snmp.box.lo.in_bps"] is None  # no previous reading yet
    names = {k.rsplit(".", 1)[1] for k in first if k.startswith("snmp.box.lo.")}
    assert names == {"in_bps", "out_bps", "in_pps", "out_pps", "in_errors", "out_errors", "in_discards",
                     "out_discards", "oper_up"}
    rates: list[float | None] = []

    async def rate_known() -> bool:
        # Polls closer than sysUpTime's 10 ms resolution have no elapsed agent time: unknown, not a guess.
        rates.append(values(await t.poll_once())["snmp.box.lo.in_bps"])
        return rates[-1] is not None

    await wait_until_async(rate_known, "a known in_bps rate")
    assert t.details()["state"] == "ok"
    assert t.counters.get("walks_32bit") == 0  # Linux has ifXTable: 64-bit counters
    assert rates[-1] is not None
    assert rates[-1] >= 0


async def test_v3_authpriv_poll_of_real_snmpd(snmpd: Snmpd, poller: Poller) -> None:
    cfg = target("v3box", snmpd.port, version="3", user=V3_USER, auth_protocol="SHA", auth_key=V3_AUTH,
                 priv_protocol="AES", priv_key=V3_PRIV)
    t = await poller(cfg)
    got = values(await t.poll_once())
    assert got["snmp.v3box.lo.oper_up"] == 1.0
    wrong = await poller(dataclasses.replace(cfg, name="bad", priv_key="wrongpriv1"))
    assert await wrong.poll_once() == []
    assert wrong.details()["state"] == "unreachable"
    assert wrong.details()["last_error"]


async def test_discover_prints_a_usable_target(snmpd: Snmpd) -> None:
    text = await discover(target("discover", snmpd.port, community=COMMUNITY))
    parsed = tomllib.loads(text)
    (t,) = parsed["snmp"]["target"]
    assert (t["host"], t["port"], t["community"], t["version"]) == ("127.0.0.1", snmpd.port, COMMUNITY, "2c")
    assert any(line.split()[1:3] == ["1", "lo"] for line in text.splitlines() if line.startswith("#   "))


def agent(uptime: int, *ifaces: Iface, **kw: Any) -> str:
    return snmprec(uptime, list(ifaces), **kw)


async def test_64bit_counters_and_their_wrap(start_sim: StartSim, poller: Poller) -> None:
    top = 2**64 - 1_000
    sim = start_sim({"hc": agent(1000, Iface(1, "eth0", in_octets=top, out_octets=5))})
    t = await poller(target("hc", sim.port))
    await t.poll_once()
    sim.set("hc", agent(2000, Iface(1, "eth0", in_octets=4_000, out_octets=1_250_005)))
    got = values(await t.poll_once())
    assert got["snmp.hc.eth0.in_bps"] == pytest.approx(5_000 * 8 / 10)  # across the 2^64 wrap
    assert got["snmp.hc.eth0.out_bps"] == pytest.approx(1_000_000.0)
    assert t.counters.get("walks_32bit") == 0


async def test_32bit_fallback_and_wrap(start_sim: StartSim, poller: Poller) -> None:
    sim = start_sim({"old": agent(1000, Iface(1, "fa0", in_octets=2**32 - 100_000, speed=100_000_000, hc=False))})
    t = await poller(target("old", sim.port))
    await t.poll_once()
    sim.set("old", agent(2000, Iface(1, "fa0", in_octets=2**32 + 900_000, speed=100_000_000, hc=False)))
    got = values(await t.poll_once())
    # No ifName without ifXTable: the interface is named by ifDescr.
    assert got["snmp.old.fa0_port.in_bps"] == pytest.approx(1_000_000 * 8 / 10)
    assert t.counters.get("walks_32bit") == 2


async def test_an_agent_without_octet_counters_gives_unknown_not_a_crash(start_sim: StartSim,
                                                                         poller: Poller) -> None:
    """No ifXTable and no ifInOctets/ifOutOctets columns at all: those rates are unknown and counted."""
    octets = (f"{IF}.10.", f"{IF}.16.")

    def bare(uptime: int) -> str:
        text = agent(uptime, Iface(1, "fa0", hc=False))
        return "".join(line + "\n" for line in text.splitlines() if not line.startswith(octets))

    sim = start_sim({"bare": bare(1000)})
    t = await poller(target("bare", sim.port))
    await t.poll_once()
    sim.set("bare", bare(2000))
    got = values(await t.poll_once())
    assert got["snmp.bare.fa0_port.in_bps"] is None
    assert got["snmp.bare.fa0_port.in_pps"] == 0.0  # ifInUcastPkts is there
    assert t.details()["state"] == "ok"
    assert t.counters.get("missing_counters") == 4  # in and out octets, two polls


async def test_agent_reboot_gives_unknown_not_a_spike(start_sim: StartSim, poller: Poller) -> None:
    sim = start_sim({"rb": agent(500_000, Iface(1, "eth0", in_octets=10**12), boots=4)})
    t = await poller(target("rb", sim.port))
    await t.poll_once()
    # Rebooted: uptime 3 s, counters restarted near zero, engine boots moved on.
    sim.set("rb", agent(300, Iface(1, "eth0", in_octets=1_000), boots=5))
    got = values(await t.poll_once())
    assert got["snmp.rb.eth0.in_bps"] is None
    assert got["snmp.rb.eth0.oper_up"] == 1.0
    assert t.counters.get("unknown.restart") == 8
    sim.set("rb", agent(1300, Iface(1, "eth0", in_octets=101_000), boots=5))
    assert values(await t.poll_once())["snmp.rb.eth0.in_bps"] == pytest.approx(100_000 * 8 / 10)


async def test_reboot_without_engine_boots_is_told_by_sysuptime(start_sim: StartSim, poller: Poller) -> None:
    sim = start_sim({"rb2": agent(500_000, Iface(1, "eth0", in_octets=2**32 - 10, hc=False))})
    t = await poller(target("rb2", sim.port))
    await t.poll_once()
    sim.set("rb2", agent(200, Iface(1, "eth0", in_octets=50, hc=False)))  # would look like a 32-bit wrap
    assert values(await t.poll_once())["snmp.rb2.eth0_port.in_bps"] is None


async def test_reindexed_interface_keeps_its_key(start_sim: StartSim, poller: Poller) -> None:
    sim = start_sim({"ri": agent(1000, Iface(1, "eth0", in_octets=1_000), Iface(2, "eth1", in_octets=7))})
    t = await poller(target("ri", sim.port))
    await t.poll_once()
    # eth0 is now ifIndex 5 and its counter is another row's: one unknown, then rates again, same key.
    sim.set("ri", agent(2000, Iface(2, "eth1", in_octets=7), Iface(5, "eth0", in_octets=10**9)))
    got = values(await t.poll_once())
    assert "snmp.ri.eth0.in_bps" in got
    assert got["snmp.ri.eth0.in_bps"] is None
    assert t.counters.get("unknown.discontinuity") >= 1
    sim.set("ri", agent(3000, Iface(2, "eth1", in_octets=7), Iface(5, "eth0", in_octets=10**9 + 10_000)))
    assert values(await t.poll_once())["snmp.ri.eth0.in_bps"] == pytest.approx(8_000.0)


async def test_rate_above_speed_is_unknown_and_counted(start_sim: StartSim, poller: Poller) -> None:
    sim = start_sim({"fast": agent(1000, Iface(1, "eth0", speed=10_000_000))})
    t = await poller(target("fast", sim.port))
    await t.poll_once()
    sim.set("fast", agent(2000, Iface(1, "eth0", in_octets=125_000_000, out_octets=1_000, speed=10_000_000)))
    got = values(await t.poll_once())
    assert got["snmp.fast.eth0.in_bps"] is None  # 100 Mb/s on a 10 Mb/s port
    assert got["snmp.fast.eth0.out_bps"] == pytest.approx(800.0)
    assert t.counters.get("unknown.over_speed") == 1


async def test_extra_oids_gauge_and_counter(start_sim: StartSim, poller: Poller) -> None:
    cpu, hits = "1.3.6.1.4.1.2021.11.9.0", "1.3.6.1.4.1.99.1.0"
    sim = start_sim({"x": agent(1000, extra={cpu: "2|42", hits: "65|100"})})
    oids = (SnmpOidConfig("cpu", cpu), SnmpOidConfig("hits", hits, kind="counter"),
            SnmpOidConfig("gone", "1.3.6.1.4.1.99.2.0"))
    t = await poller(target("x", sim.port, oid=oids))
    await t.poll_once()
    sim.set("x", agent(2000, extra={cpu: "2|43", hits: "65|150"}))
    got = values(await t.poll_once())
    assert (got["snmp.x.cpu"], got["snmp.x.hits"], got["snmp.x.gone"]) == (43.0, 5.0, None)


async def test_selection_on_a_simulated_switch(start_sim: StartSim, poller: Poller) -> None:
    ifaces = [Iface(1, "Gi0/1"), Iface(2, "Gi0/2", oper=2), Iface(3, "Gi0/3", admin=2, oper=2), Iface(4, "mgmt")]
    sim = start_sim({"sw": agent(1000, *ifaces)})
    t = await poller(target("sw", sim.port, interfaces=("Gi*",), skip_admin_down=True))
    got = values(await t.poll_once())
    assert sorted({k.split(".")[2] for k in got}) == ["Gi0_1", "Gi0_2"]


Run = Callable[[SnmpTarget], asyncio.Task[None]]


@pytest.fixture
async def running() -> AsyncIterator[Run]:
    """Run targets' own loops; stopped (and their sockets closed) after the test."""
    tasks: list[asyncio.Task[None]] = []

    def run(t: SnmpTarget) -> asyncio.Task[None]:
        task = asyncio.create_task(t.run(lambda: None))
        tasks.append(task)
        return task

    yield run
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def wait_until_async(cond: Callable[[], Awaitable[bool]], what: str, limit: float = 30.0) -> None:
    async def loop() -> None:
        while not await cond():  # noqa: ASYNC110 - each check is a poll of the agent
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(loop(), limit)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


async def wait_until(cond: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    async def loop() -> None:
        while not cond():  # noqa: ASYNC110 - the conditions read plain attributes of the component under test
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(loop(), limit)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


async def test_a_dead_agent_does_not_delay_a_live_one(snmpd: Snmpd, blackhole: Blackhole, pipeline: Pipeline,
                                                      running: Run) -> None:
    hub = SnmpHub(SnmpConfig(max_parallel=1))  # even with a single slot for walks
    dead = SnmpTarget(target("dead", blackhole.port, timeout=60.0, retries=0), hub, pipeline.samples)
    live = SnmpTarget(target("live", snmpd.port, community=COMMUNITY), hub, pipeline.samples)
    running(dead)
    await wait_until(lambda: blackhole.received() > 0 or dead.status.state != "starting", "the dead agent's probe")
    running(live)
    await wait_until(lambda: live.status.cycles >= 3, "three cycles of the live target")
    # The dead target is still waiting for its first answer (60 s timeout) while the live one went on.
    assert (dead.status.state, dead.status.cycles, dead.counters.get("failed_cycles")) == ("starting", 0, 0)
    assert live.status.state == "ok"


async def test_unreachable_agent_is_a_status_with_the_error(blackhole: Blackhole, hub: SnmpHub, pipeline: Pipeline,
                                                           running: Run) -> None:
    dead = SnmpTarget(target("dead", blackhole.port, timeout=0.2, retries=0), hub, pipeline.samples)
    running(dead)
    await wait_until(lambda: dead.status.state == "unreachable", "the unreachable state")
    assert "No SNMP response" in str(dead.details()["last_error"])
    assert dead.counters.get("failed_cycles") >= 1


async def test_overrunning_cycles_are_counted_not_stacked(blackhole: Blackhole, hub: SnmpHub, pipeline: Pipeline,
                                                          running: Run) -> None:
    # Each cycle waits 1.5 s for an answer that never comes: longer than the 1 s interval.
    slow = SnmpTarget(target("slow", blackhole.port, timeout=1.5, retries=0), hub, pipeline.samples)
    running(slow)
    await wait_until(lambda: slow.counters.get("overruns") >= 2, "two overruns")
    requests = blackhole.received()
    failed = slow.counters.get("failed_cycles")
    # One request per cycle, and never a second cycle while one is running.
    assert failed <= requests <= failed + 1
    assert slow.counters.get("skipped_cycles") >= 2


async def test_own_v2c_codec_reads_what_pysnmp_reads(snmpd: Snmpd) -> None:
    """The same table through mepd's v2c codec and through pysnmp (v3): identical rows and types."""
    v2 = open_session(target("a", snmpd.port, community=COMMUNITY, max_repetitions=3))
    v3 = open_session(target("b", snmpd.port, version="3", user=V3_USER, auth_key=V3_AUTH, priv_key=V3_PRIV))
    columns = [COLUMNS[c] for c in ("descr", "type", "speed", "admin", "name", "high_speed", "alias")]
    try:
        a, b = await v2.walk(columns), await v3.walk(columns)
    finally:
        v2.close()
        v3.close()
    assert a == b
    assert {type(v) for col in a.values() for v in col.values()} >= {bytes, int, wire.Gauge32}
    assert len(a[COLUMNS["descr"]]) >= 2
