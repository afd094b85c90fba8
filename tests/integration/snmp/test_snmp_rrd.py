"""Polled rates into real RRD files, directly and through a real rrdcached: archives and values."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable, Mapping

import pytest

from mepd.config import SnmpConfig
from mepd.model import Sample
from mepd.pipeline import Pipeline
from mepd.sources.snmp.interfaces import METRICS
from mepd.sources.snmp.target import SnmpHub, SnmpTarget
from mepd.store.rrd.store import Layouts, RrdStore, layout
from tests.integration.snmp.conftest import FakeClock, Iface, Rrdcached, Sim, snmprec
from tests.integration.snmp.test_snmp_agents import target

StartSim = Callable[[Mapping[str, str]], Sim]
STEP = 10
LAYOUTS = Layouts(layout(300), {"snmp.sw.": layout(STEP, group=METRICS)})


async def rrdtool(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec("rrdtool", *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


def fetched(text: str, ds: str) -> dict[int, float | None]:
    """`rrdtool fetch` output -> {timestamp: value of data source `ds`}."""
    lines = [line for line in text.splitlines() if line.strip()]
    col = lines[0].split().index(ds)
    out: dict[int, float | None] = {}
    for line in lines[1:]:
        ts, values = line.split(":", 1)
        value = values.split()[col]
        out[int(ts)] = None if "nan" in value.lower() else float(value)
    return out


async def poll_into(store: RrdStore, sim: Sim, polls: int) -> tuple[SnmpTarget, list[Sample]]:
    """Poll a simulated agent whose eth0 receives 1,250,000 bytes per 10 s (1 Mb/s), storing every cycle."""
    pipeline = Pipeline()
    pipeline.samples.subscribe("t", 1_000_000)
    hub = SnmpHub(SnmpConfig())
    cfg = target("sw", sim.port, interval=float(STEP))
    clock = FakeClock()
    t = SnmpTarget(cfg, hub, pipeline.samples, clock)
    await t.open()
    stored: list[Sample] = []
    try:
        for i in range(polls):
            sim.set("sw", snmprec(1000 * (i + 1), [Iface(1, "eth0", in_octets=1_250_000 * i, out_octets=0)]))
            samples = await t.poll_once()
            result = await store.write(samples)
            assert result.errors == []
            stored += samples
    finally:
        t.close()
    return t, stored


async def check_files(store: RrdStore, daemon: list[str]) -> None:
    path = store.locate("snmp.sw.eth0.in_bps").path
    assert path.endswith("/snmp/sw/eth0.rrd")  # one file per interface, as MRTG
    info = await rrdtool("info", *daemon, path)
    assert f"step = {STEP}" in info
    assert all(f"ds[{n}].minimal_heartbeat = {2 * STEP}" in info for n in METRICS)
    cfs = [line.split("=")[1].strip() for line in info.splitlines() if line.startswith("rra[") and ".cf =" in line]
    assert cfs == ['"AVERAGE"'] * 4 + ['"MAX"'] * 4
    rows = [int(line.split("=")[1]) for line in info.splitlines() if ".rows =" in line]
    assert rows == [18000, 600, 600, 732] * 2  # MRTG's spans at a 10 s step
    t0 = 1_800_000_000
    text = await rrdtool("fetch", *daemon, path, "AVERAGE", "-s", str(t0 + 10), "-e", str(t0 + 50))
    values = fetched(text, "in_bps")
    assert fetched(text, "oper_up")[t0 + 40] == pytest.approx(1.0)
    assert values[t0 + 20] == pytest.approx(1e6)
    assert values[t0 + 40] == pytest.approx(1e6)
    assert sorted(await store.list_keys())[:3] == ["snmp.sw.eth0.in_bps", "snmp.sw.eth0.in_discards",
                                                   "snmp.sw.eth0.in_errors"]
    api = await store.fetch("snmp.sw.eth0.in_bps", t0 + 10, t0 + 50)
    assert dict(api["points"])[t0 + 30] == pytest.approx(1e6)  # type: ignore[call-overload]


async def test_polled_rates_in_rrd_files(start_sim: StartSim, world_readable_tmp: object) -> None:
    sim = start_sim({"sw": snmprec(1000, [Iface(1, "eth0")])})
    store = RrdStore(f"{world_readable_tmp}/rrd-direct", layouts=LAYOUTS)
    try:
        _, samples = await poll_into(store, sim, 6)
        assert len(await store.list_keys()) == 9
        await check_files(store, [])
    finally:
        await store.close()
    assert [s.value for s in samples if s.key == "snmp.sw.eth0.in_bps"][1:] == [pytest.approx(1e6)] * 5


async def test_rrdcached_mode(start_sim: StartSim, rrdcached: Rrdcached) -> None:
    sim = start_sim({"sw": snmprec(1000, [Iface(1, "eth0")])})
    store = RrdStore(str(rrdcached.base), rrdcached.address, LAYOUTS)
    try:
        await poll_into(store, sim, 6)
        stats = rrdcached.stats()
        assert stats["UpdatesReceived"] == 6  # one update per poll for the interface's file
        # The daemon holds the updates (-w 3600): the files on disk have none of them yet...
        path = store.locate("snmp.sw.eth0.in_bps").path
        assert "nan" in (await rrdtool("fetch", path, "AVERAGE", "-s", "1800000020", "-e", "1800000020")).lower()
        # ...and every read through the daemon flushes first.
        await check_files(store, ["--daemon", rrdcached.address])
        png = await store.graph(["snmp.sw.eth0.in_bps", "snmp.sw.eth0.out_bps"], "day", "png", end=1_800_000_060)
        assert png.startswith(b"\x89PNG")
        # What `mepctl metrics list` shows after a restart: the daemon's last values, not the stale file's.
        last = await store.last_values(["snmp.sw.eth0.in_bps", "snmp.sw.eth0.oper_up"])
        assert last["snmp.sw.eth0.in_bps"].value == pytest.approx(1e6)
        assert last["snmp.sw.eth0.oper_up"].value == 1.0
        assert last["snmp.sw.eth0.in_bps"].ts == max(s.ts for s in store.latest.values())
    finally:
        await store.close()
