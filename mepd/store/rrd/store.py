"""The metric store: RRD files with MRTG's day/week/month/year archives, one per interface.

Every rrdtool call (create, update, fetch, graph, info) runs in one worker
process (`mepd.store.rrd.worker`, through `mepd.workers.Worker`), fed in
batches: the binding is not thread-safe and holds the GIL through every call,
and in its own process it runs on another core while the pollers decode.
Samples travel as key numbers and arrays of times and values (`Batch`), which
pickle as a few bytes objects; a key's name is sent once, and a new worker
process is told every name at its start.  With `storage.rrd.rrdcached` set,
every call goes through rrdcached (`--daemon`), which flushes a file before
fetching or graphing it.

Files are created on a key's first sample with the layout the store is given
for that key (the SNMP target's interval as the step, heartbeat twice that).
A sample not newer than its file's last update is skipped and counted: it
never stops the writer.  Keys are dotted names (`snmp.core-sw1.eth0.in_bps`);
the first two parts become folders (`snmp/core-sw1/eth0.in_bps.rrd`).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import math
import os
import re
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from mepd.model import Sample
from mepd.pipeline import Counters, Subscription
from mepd.store.rrd import worker
from mepd.store.rrd.files import (
    DS,
    KEY,
    MRTG_RRAS,
    PERIODS,
    Batch,
    HoltWinters,
    ImageFormat,
    Layouts,
    Location,
    Period,
    RrdError,
    RrdLayout,
    WriteResult,
    key_path,
    layout,
    locate,
    path_key,
    read_location,
)
from mepd.store.rrd.marks import Mark
from mepd.workers import Worker, WorkerDiedError

__all__ = ["DS", "KEY", "MRTG_RRAS", "PERIODS", "HoltWinters", "ImageFormat", "Layouts", "Location", "Period",
           "RrdError", "RrdLayout", "RrdSink", "RrdStore", "WriteResult", "build_layouts", "key_path", "layout",
           "locate", "path_key", "read_location"]

log = logging.getLogger(__name__)

# Batches sent to the worker before the sink waits for the first: it takes the next as soon as it
# answers one, not when the event loop, busy decoding the agents' answers, gets round to sending it.
WRITES_IN_FLIGHT: Final = 2


class Latest(Mapping[str, Sample]):
    """The newest sample written for each key, as two arrays by key number (`RrdStore`'s numbering):
    90,000 keys cost 1.4 MB here, against 10 MB as a dict of `Sample`s, and no objects for the
    garbage collector to scan.  A `Sample` is made when one is asked for."""

    def __init__(self, index: Mapping[str, int]) -> None:
        self._index = index
        self._ts = array("d")
        self._vals = array("d")  # NaN: unknown

    def __getitem__(self, key: str) -> Sample:
        i = self._index[key]
        if i >= len(self._ts) or self._ts[i] == -math.inf:
            raise KeyError(key)
        value = self._vals[i]
        return Sample(key, self._ts[i], None if math.isnan(value) else value)

    def __iter__(self) -> Iterator[str]:
        stamps = self._ts
        return (k for k, i in self._index.items() if i < len(stamps) and stamps[i] != -math.inf)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def keep(self, numbers: Sequence[int], stamps: Sequence[float], values: Sequence[float]) -> None:
        """Keep each key's newest sample of a batch (as key numbers, times, values)."""
        known, latest_ts, latest_v = len(self._ts), self._ts, self._vals
        if len(self._index) > known:
            grow = len(self._index) - known
            latest_ts.extend([-math.inf] * grow)
            latest_v.extend([math.nan] * grow)
        for i, ts, value in zip(numbers, stamps, values, strict=True):
            if ts >= latest_ts[i]:
                latest_ts[i] = ts
                latest_v[i] = value


class RrdStore:
    """The daemon's metric store; every rrdtool call runs in its worker process, started on first use.

    Keys of a layout's group (`snmp.sw1.eth0.in_bps`, `...out_bps`) share one file
    (`snmp/sw1/eth0.rrd`, one data source each), updated once per timestamp with
    all of them: a tenth of the disk writes of one file per key.  A row waits
    until every name of the group has a value for that time, or until the
    queue runs dry, then is written with U for what is missing.
    """

    def __init__(self, root: str, rrdcached: str = "", layouts: Callable[[str], RrdLayout] | None = None) -> None:
        self.root = os.path.abspath(root)
        self.daemon = ["--daemon", rrdcached] if rrdcached else []
        self.layouts: Callable[[str], RrdLayout] = layouts or Layouts(layout(300))
        self._ids: dict[str, int] = {}  # key -> its number, for the worker (`Batch`) and `latest`
        self.latest = Latest(self._ids)
        self._sent: object = None  # the layouts the worker has
        self._named = 0  # how many of the numbered keys the worker has been told the names of
        # A worker that died is replaced by the next call; the new one reads the last updates from the files.
        self._worker = Worker(worker.__name__, "start", self.root, self.daemon, state=self._worker_state)

    def _worker_state(self) -> tuple[Any, ...]:
        """What a new worker process is told at its start: the layouts and every key numbered so far."""
        self._sent = self.layouts
        self._named = len(self._ids)
        return self.layouts, list(self._ids)

    @property
    def worker_pid(self) -> int | None:
        """The worker process's id while it runs."""
        return self._worker.pid

    async def _call(self, method: str, *args: Any) -> Any:
        layouts = None if self.layouts is self._sent else self.layouts
        self._sent = self.layouts
        try:
            return await self._worker.call("call", method, layouts, args)
        except WorkerDiedError:
            raise RrdError("the rrdtool worker process died") from None

    async def close(self) -> None:
        """Write the rows still waiting for missing names, then stop the worker."""
        try:
            if self._worker.pid is not None:
                await self._call("write", (self._named, [], array("l"), array("d"), array("d")), True)
        except RrdError as e:
            log.warning("rrd: %s; rows waiting for the rest of their interface are lost", e)
        finally:
            await self._worker.stop()

    def locate(self, key: str) -> Location:
        """The file and data source of a key; ValueError for a key that is not a dotted name."""
        return locate(self.root, self.layouts, key)

    def read_location(self, key: str) -> Location:
        return read_location(self.root, self.layouts, key)

    async def write(self, samples: Sequence[Sample], flush: bool = True) -> WriteResult:
        """Store samples; `flush=False` lets rows of a group wait for the rest of their names."""
        batch = self._batch(samples)
        result: WriteResult = await self._call("write", batch, flush)
        self.latest.keep(*batch[2:])
        return result

    def _batch(self, samples: Sequence[Sample]) -> Batch:
        ids = self._ids
        keys = [s.key for s in samples]
        numbers = list(map(ids.get, keys))
        if None in numbers:
            for i, key in enumerate(keys):
                if numbers[i] is None:
                    n = ids.get(key)
                    if n is None:
                        n = ids[key] = len(ids)
                    numbers[i] = n
        first, new = self._named, list(itertools.islice(ids, self._named, None))  # keys numbered since
        self._named = len(ids)
        nan = math.nan
        return (first, new, array("l", numbers), array("d", [s.ts for s in samples]),  # type: ignore[arg-type]
                array("d", [nan if (v := s.value) is None else v for s in samples]))

    async def list_keys(self) -> list[str]:
        keys: list[str] = await self._call("list_keys")
        return keys

    async def fetch(self, key: str, since: float, until: float, cf: str = "AVERAGE") -> dict[str, object]:
        """Points of `key` in [since, until] from the finest archive that covers the range (rrdtool's choice)."""
        data: dict[str, object] = await self._call("fetch", key, since, until, cf)
        return data

    async def stats(self, key: str, since: float, until: float, percentile: float = 95.0) -> dict[str, object]:
        """rrdtool's figures of `key` over [since, until] (`worker._Owner.stats`): average, minimum, maximum,
        percentile, total, least-squares line, and the archive's start, end, step and rows it used."""
        data: dict[str, object] = await self._call("stats", key, since, until, percentile)
        return data

    async def last_values(self, keys: Sequence[str]) -> dict[str, Sample]:
        """Each key's last value in its file, at the file's last update: what `latest` lacks after a restart,
        until the key's next sample; a key without a readable file is left out.  One call to the worker."""
        rows: list[tuple[str, float, float | None]] = await self._call("last_values", list(keys))
        return {key: Sample(key, ts, value) for key, ts, value in rows}

    async def info(self, key: str) -> dict[str, Any]:
        info: dict[str, Any] = await self._call("info", key)
        return info

    async def graph(self, keys: Sequence[str], period: Period = "day", fmt: ImageFormat = "png",
                    title: str = "", end: float | None = None, size: tuple[int, int] | None = None,
                    legend: bool = True, marks: Sequence[Mark] = ()) -> bytes:
        """An MRTG-style graph: the first key as a filled area, the others as lines, MAX as thin lines.

        `size` makes the whole image exactly (width, height) pixels; `legend=False` draws the plot alone
        (the dashboard's small graphs); `marks` are events drawn at their times (mepd.store.rrd.marks)."""
        image: bytes = await self._call("graph", list(keys), period, fmt, title, end, size, legend, tuple(marks))
        return image

    async def period_graph(self, keys: Sequence[str], since: float, until: float, fmt: ImageFormat = "png",
                           title: str = "", size: tuple[int, int] = (600, 160), trend: bool = False) -> bytes:
        """A graph of [since, until] with each key's 95th percentile and, with `trend`, its least-squares line."""
        image: bytes = await self._call("period_graph", list(keys), since, until, fmt, title, size, trend)
        return image

    async def trend_graph(self, keys: Sequence[str], lines: Sequence[tuple[float, float, float] | None],
                          since: float, end: float, capacity: tuple[float, str],
                          crossings: Sequence[tuple[float | None, str]], fmt: ImageFormat = "png", title: str = "",
                          size: tuple[int, int] = (600, 160)) -> bytes:
        """A forecast's graph (`worker._Owner.trend_args`): the keys from `since` to `end`, ahead of now, each
        with its least-squares line (at, value there, slope per second), the capacity and the crossings."""
        image: bytes = await self._call("trend_graph", list(keys), tuple(lines), since, end, capacity,
                                        tuple(crossings), fmt, title, size)
        return image


class RrdSink:
    """Feeds the RRD store from the sample channel in batches; counts what it skips.  The FAILURES rows of
    keys with Holt-Winters archives that a write completed go to `derived` as `anomaly.<key>` samples (1:
    abnormal, 0: normal), which anomaly rules watch: it must not wait (the pipeline's `offer_many`)."""

    def __init__(self, store: RrdStore, subscription: Subscription[Sample], counters: Counters,
                 pipeline_counters: Counters, *, batch_size: int = 10_000, flush_interval: float = 0.0,
                 derived: Callable[[list[Sample]], object] | None = None) -> None:
        self.name = "store/rrd"
        self.store = store
        self.subscription = subscription
        self.counters = counters
        self.counters.declare("stored", "rows", "skipped_old", "invalid_keys", "errors", "dropped.write_failed",
                              "dropped.update_failed", "lock_waits")
        self._pipeline_counters = pipeline_counters
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._derived = derived

    async def run(self, started: Callable[[], None]) -> None:
        os.makedirs(self.store.root, exist_ok=True)
        started()
        linger = self._flush_interval
        writes: deque[asyncio.Task[None]] = deque()
        try:
            while True:
                batch = await self.subscription.get_batch(self._batch_size, linger)
                # After a full batch a burst is being drained (an SNMP target puts a whole poll at once): the
                # rest of it is queued already, so it goes without waiting `flush_interval` for more.
                linger = 0.0 if len(batch) >= self._batch_size else self._flush_interval
                write = asyncio.create_task(self._write(batch, flush=len(self.subscription) == 0))
                # Done even for a write cancelled before it ran (at shutdown): `join` must not wait for it.
                write.add_done_callback(functools.partial(self._taken, len(batch)))
                writes.append(write)
                while writes and (len(writes) >= WRITES_IN_FLIGHT or writes[0].done()):
                    await writes.popleft()
        finally:
            for w in writes:
                w.cancel()

    def _taken(self, n: int, _write: asyncio.Task[None]) -> None:
        self.subscription.done(n)

    async def _write(self, batch: list[Sample], flush: bool) -> None:
        """One batch, never raising: the worker takes the next batch as soon as it answers this one (not when
        the event loop, busy decoding the agents' answers, gets round to sending it), so a failure here must
        not cancel the batches behind it.  A worker that died is replaced and the batch written again once;
        a batch that fails twice is dropped and counted."""
        for attempt in (1, 2):
            try:
                result = await self.store.write(batch, flush=flush)
            except RrdError as e:
                if attempt == 1:
                    log.warning("rrd: %s; writing the batch of %d samples again", e, len(batch))
                    continue
                self.counters.inc("dropped.write_failed", len(batch))
                log.warning("rrd: %s again; %d samples dropped (dropped.write_failed)", e, len(batch))
                return
            self._count(result, len(batch))
            if result.failures and self._derived is not None:
                self._derived([Sample(key, ts, value) for key, ts, value in result.failures])
            return

    def _count(self, result: WriteResult, n: int) -> None:
        c = self.counters
        c.inc("batches")
        c.inc("stored", result.samples)
        c.inc("rows", result.updated)
        c.inc("created", result.created)
        self._pipeline_counters.inc("stored", result.samples)  # samples, as the pipeline counts them received
        for name, value in (("skipped_old", result.skipped_old), ("invalid_keys", result.invalid_keys),
                            ("dropped.update_failed", result.failed_samples), ("lock_waits", result.lock_waits)):
            if value:
                c.inc(name, value)
        if result.errors:
            c.inc("errors", len(result.errors))
            log.warning("rrd: %d of %d updates failed, first: %s", len(result.errors), n, result.errors[0])


def build_layouts(default_step: float,
                  targets: Iterable[tuple[str, float, Sequence[tuple[float, float]], Sequence[str]]],
                  anomalies: Sequence[tuple[re.Pattern[str], HoltWinters]] = ()) -> Layouts:
    """Layouts from (key prefix, step, archives, group names) tuples, e.g. one per SNMP target, and the
    Holt-Winters archives of the keys each anomaly rule's pattern matches."""
    return Layouts(layout(default_step), {prefix: layout(step, rras, group) for prefix, step, rras, group in targets},
                   anomalies)
