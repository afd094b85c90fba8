"""The RRD store on real rrdtool files: layouts, keys, updates, skipped old samples, fetch and graphs."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import sys
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from mepd.model import Sample
from mepd.pipeline import Counters, Pipeline, Subscription
from mepd.store.rrd.store import Layouts, RrdError, RrdSink, RrdStore, build_layouts, key_path, layout, path_key
from tests.helpers import rrdtool_info, until

T0 = 1_800_000_000
T = TypeVar("T")


def test_default_layout_is_mrtg_at_five_minutes() -> None:
    lay = layout(300)
    assert lay.step == 300
    assert lay.rras == ((1, 600), (6, 600), (24, 600), (288, 732))
    assert "DS:value:GAUGE:600:U:U" in lay.create_args(["value"])


def test_a_ten_second_step_keeps_the_spans() -> None:
    lay = layout(10)
    assert lay.rras == ((1, 18000), (180, 600), (720, 600), (8640, 732))


def test_configured_archives_round_to_the_step() -> None:
    assert layout(60, [(30.0, 3600.0), (300.0, 86400.0)]).rras == ((1, 60), (5, 288))


def test_layouts_use_the_longest_prefix() -> None:
    lays = Layouts(layout(300), {"snmp.a.": layout(10), "snmp.a.b.": layout(1)})
    assert (lays("snmp.a.b.x").step, lays("snmp.a.c.x").step, lays("weblog.x").step) == (1, 10, 300)


def test_key_paths_round_trip_and_reject_escapes() -> None:
    assert key_path("/r", "snmp.sw1.eth0.in_bps") == "/r/snmp/sw1/eth0.in_bps.rrd"
    assert key_path("/r", "snmp.sw1.eth0") == "/r/snmp/sw1/eth0.rrd"
    assert key_path("/r", "a.b") == "/r/a.b.rrd"
    for key in ("snmp.sw1.eth0.in_bps", "a.b", "x"):
        assert path_key("/r", key_path("/r", key)) == key
    for bad in ("../x", "a..b", "a/b", "a:b", ""):
        with pytest.raises(ValueError, match="invalid metric key"):
            key_path("/r", bad)


@pytest.fixture
async def store(tmp_path: Path) -> RrdStore:
    return RrdStore(str(tmp_path / "rrd"), layouts=Layouts(layout(10)))


async def test_write_creates_on_first_sample_and_fetch_reads_back(store: RrdStore) -> None:
    key = "snmp.t.eth0.in_bps"
    samples = [Sample(key, T0 + 10 * i, float(i * 100)) for i in range(1, 7)]
    result = await store.write(samples)
    assert (result.created, result.updated, result.errors) == (1, 6, [])
    assert await store.list_keys() == [key]
    data = await store.fetch(key, T0 + 10, T0 + 60)
    values = dict(data["points"])  # type: ignore[arg-type]
    assert data["step"] == 10
    assert values[T0 + 30] == pytest.approx(300.0)
    assert values[T0 + 60] == pytest.approx(600.0)
    assert store.latest[key].value == 600.0
    info = await rrdtool_info(key_path(store.root, key))
    assert "step = 10" in info
    assert 'rra[0].cf = "AVERAGE"' in info
    assert 'rra[4].cf = "MAX"' in info


async def while_locked(store: RrdStore, key: str, call: Coroutine[Any, Any, T]) -> T:
    """`call`'s result, started while the test holds the key's file locked as another program would (a POSIX
    lock on the whole file, as rrdtool takes its own) and the lock released once the worker waits to retry."""
    wchan = Path(f"/proc/{store.worker_pid}/wchan")
    fd = os.open(key_path(store.root, key), os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        task = asyncio.create_task(call)
        await until(lambda: "nanosleep" in wchan.read_text(), "the worker waiting to try again")
        fcntl.lockf(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    return await task


async def test_an_update_waits_out_a_lock_another_program_holds(store: RrdStore) -> None:
    """rrdtool fails an update at once while another program holds the file's lock (an admin's `rrdtool graph`
    or `last` on it): the worker tries again instead of dropping the rows."""
    key = "snmp.t.eth0.in_bps"
    await store.write([Sample(key, T0 + 10, 1.0)])
    result = await while_locked(store, key, store.write([Sample(key, T0 + 20, 2.0)]))
    assert (result.updated, result.failed_samples, result.errors) == (1, 0, [])
    assert result.lock_waits >= 1
    assert store.latest[key].value == 2.0


async def test_a_read_waits_out_a_lock_another_program_holds(store: RrdStore) -> None:
    """A graph or fetch meeting another program's lock (a backup's `rrdtool dump`) waits, as an update does,
    instead of answering the dashboard an error."""
    key = "snmp.t.eth0.in_bps"
    await store.write([Sample(key, T0 + 10 * i, float(i)) for i in range(1, 4)])
    fetched = await while_locked(store, key, store.fetch(key, T0 + 10, T0 + 30))
    assert dict(fetched["points"])[T0 + 30] == pytest.approx(3.0)  # type: ignore[arg-type]


async def test_unknown_is_stored_as_unknown(store: RrdStore) -> None:
    key = "snmp.t.eth0.out_bps"
    await store.write([Sample(key, T0 + 10 * i, None if i == 3 else 5.0) for i in range(1, 6)])
    values = dict((await store.fetch(key, T0 + 10, T0 + 50))["points"])  # type: ignore[arg-type]
    assert values[T0 + 30] is None
    assert values[T0 + 40] == pytest.approx(5.0)


async def test_old_samples_are_skipped_and_counted_never_raised(store: RrdStore) -> None:
    key = "x.y.z"
    await store.write([Sample(key, T0 + 20, 1.0)])
    result = await store.write([Sample(key, T0 + 10, 2.0), Sample(key, T0 + 20, 2.0), Sample(key, T0 + 30, 3.0)])
    assert (result.skipped_old, result.updated, result.errors) == (2, 1, [])
    fresh = RrdStore(store.root, layouts=store.layouts)  # a restarted daemon learns the last update from the file
    result = await fresh.write([Sample(key, T0 + 25, 9.0), Sample(key, T0 + 40, 4.0)])
    assert (result.skipped_old, result.updated, result.errors) == (1, 1, [])


async def test_invalid_keys_are_counted(store: RrdStore) -> None:
    result = await store.write([Sample("../etc/passwd", T0, 1.0)])
    assert (result.invalid_keys, result.updated) == (1, 0)


async def test_graph_png_and_svg(store: RrdStore) -> None:
    keys = ["snmp.t.eth0.in_bps", "snmp.t.eth0.out_bps"]
    await store.write([Sample(k, T0 + 10 * i, float(i)) for k in keys for i in range(1, 30)])
    png = await store.graph(keys, "day", "png", end=T0 + 300)
    assert png.startswith(b"\x89PNG")
    svg = await store.graph(keys, "week", "svg", end=T0 + 300)
    assert b"<svg" in svg[:500]
    with pytest.raises(RrdError, match="no metric"):
        await store.graph(["snmp.t.nope.in_bps"])


def start_sink(store: RrdStore, pipeline: Pipeline | None = None, sub: Subscription[Sample] | None = None, *,
               batch_size: int = 10_000, flush_interval: float = 0.0,
               ) -> tuple[Pipeline, Subscription[Sample], RrdSink, asyncio.Task[None]]:
    """A running sink fed by a pipeline's sample channel, as the daemon wires them."""
    pipeline = Pipeline() if pipeline is None else pipeline
    sub = pipeline.samples.subscribe("store/rrd", 100) if sub is None else sub  # an empty one is falsy
    sink = RrdSink(store, sub, Counters(), pipeline.sample_counters, batch_size=batch_size,
                   flush_interval=flush_interval)
    return pipeline, sub, sink, asyncio.create_task(sink.run(lambda: None))


async def test_sink_counts_stored_and_skipped(store: RrdStore) -> None:
    pipeline, sub, sink, task = start_sink(store)
    for s in (Sample("a.b.c", T0 + 10, 1.0), Sample("a.b.c", T0 + 5, 1.0)):
        await pipeline.samples.put(s)
        await asyncio.wait_for(sub.join(), 10)
    task.cancel()
    assert sink.counters.get("stored") == 1
    assert sink.counters.get("skipped_old") == 1
    assert pipeline.sample_counters.get("stored") == 1


async def test_the_rest_of_a_burst_is_written_without_lingering(store: RrdStore) -> None:
    pipeline, sub, sink, task = start_sink(store, batch_size=2, flush_interval=3600)
    await pipeline.samples.put_many([Sample(f"a.b.c{i}", T0 + 10, 1.0) for i in range(3)])
    await asyncio.wait_for(sub.join(), 60)  # the third sample would wait the hour for a second one
    task.cancel()
    assert sink.counters.get("stored") == 3



async def test_batches_in_flight_are_written_in_order(store: RrdStore) -> None:
    """Two writes go to the worker at once; the second must not overtake the first (it would store T0+5)."""
    pipeline, sub, sink, task = start_sink(store, batch_size=1)
    await pipeline.samples.put_many([Sample("a.b.c", T0 + ts, float(ts)) for ts in (10, 5, 20, 15, 30)])
    await asyncio.wait_for(sub.join(), 10)
    task.cancel()
    assert (sink.counters.get("batches"), sink.counters.get("stored"), sink.counters.get("skipped_old")) == (5, 3, 2)
    assert store.latest["a.b.c"].value == 30.0


GROUP = ("in_bps", "out_bps", "oper_up")


@pytest.fixture
async def grouped(tmp_path: Path) -> AsyncIterator[RrdStore]:
    store = RrdStore(str(tmp_path / "rrd"), layouts=Layouts(layout(300), {"snmp.sw.": layout(10, group=GROUP)}))
    yield store
    await store.close()


async def test_an_interface_is_one_file_with_a_data_source_per_metric(grouped: RrdStore) -> None:
    for i in range(1, 5):
        await grouped.write([Sample(f"snmp.sw.eth0.{n}", T0 + 10 * i, float(i * (j + 1)))
                             for j, n in enumerate(GROUP)] + [Sample("snmp.sw.cpu", T0 + 10 * i, 5.0)])
    files = sorted(os.listdir(os.path.join(grouped.root, "snmp", "sw")))
    assert files == ["cpu.rrd", "eth0.rrd"]
    info = await rrdtool_info(str(Path(grouped.root, "snmp", "sw", "eth0.rrd")))
    assert all(f"ds[{n}].type = \"GAUGE\"" in info for n in GROUP)
    assert await grouped.list_keys() == ["snmp.sw.cpu", *(f"snmp.sw.eth0.{n}" for n in sorted(GROUP))]
    out = dict((await grouped.fetch("snmp.sw.eth0.out_bps", T0 + 10, T0 + 40))["points"])  # type: ignore[arg-type]
    assert out[T0 + 30] == pytest.approx(6.0)
    with pytest.raises(RrdError, match="no metric"):
        await grouped.fetch("snmp.sw.eth0.in_pps", T0, T0 + 40)


async def test_a_row_split_across_batches_is_written_whole(grouped: RrdStore) -> None:
    first = [Sample("snmp.sw.eth0.in_bps", T0 + 10, 1.0)]
    rest = [Sample("snmp.sw.eth0.out_bps", T0 + 10, 2.0), Sample("snmp.sw.eth0.oper_up", T0 + 10, 1.0)]
    assert (await grouped.write(first, flush=False)).updated == 0  # waits for the other names
    assert (await grouped.write(rest, flush=False)).updated == 1
    result = await grouped.write([Sample("snmp.sw.eth0.in_bps", T0 + 20, 3.0)], flush=True)
    assert (result.updated, result.skipped_old) == (1, 0)  # flushed with U for the names it lacks
    data = await grouped.fetch("snmp.sw.eth0.out_bps", T0 + 10, T0 + 20)
    assert dict(data["points"])[T0 + 20] is None  # type: ignore[call-overload]


async def test_latest_keeps_the_newest_sample_of_each_key(store: RrdStore) -> None:
    a, b = "snmp.t.eth0.in_bps", "snmp.t.eth1.in_bps"
    await store.write([Sample(a, T0 + 20, 2.0), Sample(b, T0 + 20, None), Sample(a, T0 + 10, 1.0)])
    assert store.latest[a] == Sample(a, T0 + 20, 2.0)  # the older one, written after, is not kept
    assert store.latest.get(b) == Sample(b, T0 + 20, None)  # unknown stays unknown
    assert "snmp.t.eth2.in_bps" not in store.latest
    assert sorted(store.latest) == [a, b]


async def test_the_worker_ignores_sigterm_and_a_killed_one_is_replaced(tmp_path: Path) -> None:
    store = RrdStore(str(tmp_path / "rrd"), layouts=Layouts(layout(10)))
    try:
        key = "snmp.t.eth0.in_bps"
        assert (await store.write([Sample(key, T0 + 10, 1.0)])).updated == 1
        pid = store.worker_pid
        assert pid is not None
        cmdline = await asyncio.to_thread(Path(f"/proc/{pid}/cmdline").read_bytes)
        assert b"from mepd.worker_child import serve" in cmdline  # not the daemon's main module again
        os.kill(pid, signal.SIGTERM)  # systemd signals the whole cgroup: the daemon stops the worker itself
        assert (await store.write([Sample(key, T0 + 20, 2.0)])).updated == 1
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(RrdError, match="died"):
            await store.write([Sample(key, T0 + 30, 3.0)])
        # A new worker reads the file's last update again: older samples are skipped, newer ones stored.
        result = await store.write([Sample(key, T0 + 20, 9.0), Sample(key, T0 + 40, 4.0)])
        assert (result.skipped_old, result.updated) == (1, 1)
        assert store.worker_pid not in (None, pid)
    finally:
        await store.close()
    assert store.worker_pid is None



async def test_last_values_after_a_restart_are_the_files_last(tmp_path: Path) -> None:
    """What `mepctl metrics list` shows before a key's first sample since the start: its file's last value."""
    layouts = build_layouts(10, [("snmp.sw.", 10, (), GROUP)])
    written = RrdStore(str(tmp_path / "rrd"), layouts=layouts)
    try:
        await written.write([Sample(f"snmp.sw.{i}.{n}", T0 + 10, None if n == "oper_up" else 5.5 + j)
                             for i in ("eth0", "eth1") for j, n in enumerate(GROUP)]
                            + [Sample("weblog.web.requests", T0 + 20, 12.0)])
    finally:
        await written.close()
    restarted = RrdStore(written.root, layouts=layouts)  # nothing in `latest` yet
    try:
        assert len(restarted.latest) == 0
        found = await restarted.last_values(await restarted.list_keys())
        assert await restarted.last_values(["snmp.sw.eth9.in_bps", "not a key"]) == {}  # no file: left out
    finally:
        await restarted.close()
    assert found == {
        "snmp.sw.eth0.in_bps": Sample("snmp.sw.eth0.in_bps", T0 + 10, 5.5),
        "snmp.sw.eth0.out_bps": Sample("snmp.sw.eth0.out_bps", T0 + 10, 6.5),
        "snmp.sw.eth0.oper_up": Sample("snmp.sw.eth0.oper_up", T0 + 10, None),  # stored unknown stays unknown
        "snmp.sw.eth1.in_bps": Sample("snmp.sw.eth1.in_bps", T0 + 10, 5.5),
        "snmp.sw.eth1.out_bps": Sample("snmp.sw.eth1.out_bps", T0 + 10, 6.5),
        "snmp.sw.eth1.oper_up": Sample("snmp.sw.eth1.oper_up", T0 + 10, None),
        "weblog.web.requests": Sample("weblog.web.requests", T0 + 20, 12.0),
    }


async def test_stored_counts_samples_as_received_does_and_rows_apart(grouped: RrdStore) -> None:
    """`mepctl status` compares received with stored: both count samples (an interface's row holds three)."""
    pipeline, sub, sink, task = start_sink(grouped)
    await pipeline.samples.put_many([Sample(f"snmp.sw.{i}.{n}", T0 + 10, 1.0) for i in ("eth0", "eth1") for n in GROUP])
    await asyncio.wait_for(sub.join(), 10)
    await pipeline.samples.put(Sample("snmp.sw.eth0.in_bps", T0 + 5, 1.0))  # older than the file: skipped
    await asyncio.wait_for(sub.join(), 10)
    task.cancel()
    assert pipeline.sample_counters.get("received") == 7
    assert (pipeline.sample_counters.get("stored"), sink.counters.get("stored"), sink.counters.get("rows")) == (6, 6, 2)
    assert sink.counters.get("skipped_old") == 1


async def test_a_killed_worker_loses_no_batch_and_the_sink_goes_on(tmp_path: Path) -> None:
    store = RrdStore(str(tmp_path / "rrd"), layouts=Layouts(layout(10)))
    pipeline, sub, sink, task = start_sink(store, batch_size=1)
    try:
        await pipeline.samples.put(Sample("a.b.c", T0 + 10, 1.0))
        await asyncio.wait_for(sub.join(), 10)
        pid = store.worker_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await pipeline.samples.put_many([Sample("a.b.c", T0 + ts, float(ts)) for ts in (20, 30, 40)])
        await asyncio.wait_for(sub.join(), 30)  # two writes were in flight on the dead worker
        assert not task.done()
        assert (sink.counters.get("stored"), sink.counters.get("dropped.write_failed")) == (4, 0)
        assert store.worker_pid not in (None, pid)
    finally:
        task.cancel()
        await store.close()


async def test_a_batch_that_fails_twice_is_dropped_and_counted(
        store: RrdStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that keeps failing (a fault a real worker does not produce on demand) must not stop the sink,
    leave the queue's pending count behind, or lose samples without a count."""
    async def failing(samples: list[Sample], flush: bool = True) -> None:
        raise RrdError("the rrdtool worker process died")

    monkeypatch.setattr(store, "write", failing)
    pipeline, sub, sink, task = start_sink(store, batch_size=2)
    await pipeline.samples.put_many([Sample(f"a.b.c{i}", T0 + 10, 1.0) for i in range(5)])
    await asyncio.wait_for(sub.join(), 10)
    assert not task.done()
    task.cancel()
    assert sink.counters.get("dropped.write_failed") == 5
    assert pipeline.sample_counters.get("stored") == 0


async def test_samples_of_a_damaged_file_are_counted_as_dropped(tmp_path: Path) -> None:
    """Received = stored + skipped + invalid + dropped: a file rrdtool refuses loses its samples, counted."""
    store = RrdStore(str(tmp_path / "rrd"), layouts=Layouts(layout(10)))
    pipeline, sub, sink, task = start_sink(store)
    try:
        await pipeline.samples.put_many([Sample("a.b.c", T0 + 10, 1.0), Sample("a.b.d", T0 + 10, 1.0)])
        await asyncio.wait_for(sub.join(), 10)
        path = Path(store.locate("a.b.c").path)
        await asyncio.to_thread(os.truncate, path, 100)  # damaged in place: the worker knows its last update
        await pipeline.samples.put_many([Sample("a.b.c", T0 + 20, 2.0), Sample("a.b.d", T0 + 20, 2.0)])
        await asyncio.wait_for(sub.join(), 10)
    finally:
        task.cancel()
        await store.close()
    restarted = RrdStore(store.root, layouts=Layouts(layout(10)))  # a new worker reads the file's header again
    _, _, sink2, task = start_sink(restarted, pipeline, sub)
    try:
        await pipeline.samples.put_many([Sample("a.b.c", T0 + 30, 3.0), Sample("a.b.d", T0 + 30, 3.0)])
        await asyncio.wait_for(sub.join(), 10)
    finally:
        task.cancel()
        await restarted.close()
    assert (sink.counters.get("stored"), sink.counters.get("dropped.update_failed")) == (3, 1)
    assert (sink2.counters.get("stored"), sink2.counters.get("dropped.update_failed")) == (1, 1)
    assert pipeline.sample_counters.get("received") == pipeline.sample_counters.get("stored") + 2


async def test_the_worker_module_imports_no_daemon_code() -> None:
    """The worker process holds rrdtool and its own module, not the daemon's code or asyncio (20 MB, not 100)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys, mepd.store.rrd.worker; print(' '.join(sorted(sys.modules)))",
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": os.getcwd()})
    out, _ = await proc.communicate()
    loaded = set(out.decode().split())
    assert "rrdtool" in loaded
    assert {m for m in loaded if m.startswith("mepd")} == {
        "mepd", "mepd.store", "mepd.store.rrd", "mepd.store.rrd.files", "mepd.store.rrd.marks", "mepd.store.rrd.worker"}
    assert not loaded & {"asyncio", "mepd.pipeline", "mepd.model"}
