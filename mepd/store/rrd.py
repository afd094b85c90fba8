"""The metric store: one RRD file per metric key, MRTG's day/week/month/year archives.

The rrdtool binding is not thread-safe, so every rrdtool call (create, update,
fetch, graph, info) runs in one worker thread, fed in batches.  With
`storage.rrd.rrdcached` set, every call goes through rrdcached (`--daemon`),
which flushes a file before fetching or graphing it.

Files are created on a key's first sample with the layout the store is given
for that key (the SNMP target's interval as the step, heartbeat twice that).
A sample not newer than its file's last update is skipped and counted: it
never stops the writer.  Keys are dotted names (`snmp.core-sw1.eth0.in_bps`);
the first two parts become folders (`snmp/core-sw1/eth0.in_bps.rrd`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

import rrdtool

from mepd.model import Sample
from mepd.pipeline import Counters, Subscription

log = logging.getLogger(__name__)
T = TypeVar("T")

DS: Final = "value"
KEY: Final = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
# MRTG's archives as (resolution, span) in seconds: 5 minutes (the step) for 50 hours,
# 30 minutes for 12.5 days, 2 hours for 50 days, 1 day for 732 days.
MRTG_RRAS: Final = ((0.0, 600 * 300.0), (1800.0, 600 * 1800.0), (7200.0, 600 * 7200.0), (86400.0, 732 * 86400.0))
PERIODS: Final = {"day": 86400, "week": 7 * 86400, "month": 31 * 86400, "year": 366 * 86400}
Period = Literal["day", "week", "month", "year"]
ImageFormat = Literal["png", "svg"]
_COLOURS: Final = ("#00CC00", "#0000FF", "#FF6600", "#CC00CC", "#00CCCC", "#999900")
_MAX_COLOURS: Final = ("#006600", "#FF00FF", "#993300", "#660066", "#006666", "#666600")


class RrdError(Exception):
    """An rrdtool call failed for a reason the caller should see (unknown key, bad file)."""


@dataclass(frozen=True, slots=True)
class RrdLayout:
    """How a new file is made: base step in seconds and (steps per row, rows) per archive."""

    step: int
    rras: tuple[tuple[int, int], ...]

    def create_args(self) -> list[str]:
        heartbeat = 2 * self.step
        args = ["--step", str(self.step), f"DS:{DS}:GAUGE:{heartbeat}:U:U"]
        return args + [f"RRA:{cf}:0.5:{pdp}:{rows}" for cf in ("AVERAGE", "MAX") for pdp, rows in self.rras]


def layout(step: float, rras: Sequence[tuple[float, float]] = ()) -> RrdLayout:
    """A layout from a poll interval and (resolution, span) pairs; a resolution below the step is the step."""
    base = max(1, round(step))
    out: list[tuple[int, int]] = []
    for resolution, span in rras or MRTG_RRAS:
        pdp = max(1, round(resolution / base))
        rows = max(2, math.ceil(span / (pdp * base)))
        if all(p != pdp for p, _ in out):
            out.append((pdp, rows))
    return RrdLayout(base, tuple(sorted(out)))


class Layouts:
    """The layout for a key: that of the longest configured prefix (a target's keys), else the default."""

    def __init__(self, default: RrdLayout, prefixes: dict[str, RrdLayout] | None = None) -> None:
        self.default = default
        self.prefixes = sorted((prefixes or {}).items(), key=lambda kv: -len(kv[0]))

    def __call__(self, key: str) -> RrdLayout:
        return next((lay for prefix, lay in self.prefixes if key.startswith(prefix)), self.default)


def key_path(root: str, key: str) -> str:
    """`snmp.sw1.eth0.in_bps` -> ROOT/snmp/sw1/eth0.in_bps.rrd; ValueError for a key that is not a dotted name."""
    if not KEY.fullmatch(key):
        raise ValueError(f"invalid metric key {key!r}: expected dotted names of [A-Za-z0-9_-]")
    parts = key.split(".")
    if len(parts) < 3:
        return os.path.join(root, key + ".rrd")
    return os.path.join(root, parts[0], parts[1], ".".join(parts[2:]) + ".rrd")


def path_key(root: str, path: str) -> str:
    rel = os.path.relpath(path, root)
    return rel[: -len(".rrd")].replace(os.sep, ".")


@dataclass(slots=True)
class WriteResult:
    updated: int = 0
    created: int = 0
    skipped_old: int = 0
    invalid_keys: int = 0
    errors: list[str] = field(default_factory=list)


class RrdStore:
    """Every rrdtool call of the daemon, run by one worker thread."""

    def __init__(self, root: str, rrdcached: str = "", layouts: Callable[[str], RrdLayout] | None = None) -> None:
        self.root = os.path.abspath(root)
        self.daemon = ["--daemon", rrdcached] if rrdcached else []
        self.layouts = layouts or Layouts(layout(300))
        self.latest: dict[str, Sample] = {}
        self._last: dict[str, float] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rrd")

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    async def write(self, samples: Sequence[Sample]) -> WriteResult:
        result = await self._call(self._write, samples)
        for s in samples:
            prev = self.latest.get(s.key)
            if prev is None or s.ts >= prev.ts:
                self.latest[s.key] = s
        return result

    def _write(self, samples: Sequence[Sample]) -> WriteResult:
        result = WriteResult()
        by_key: defaultdict[str, list[Sample]] = defaultdict(list)
        for s in samples:
            by_key[s.key].append(s)
        for key, items in by_key.items():
            try:
                path = key_path(self.root, key)
            except ValueError:
                result.invalid_keys += len(items)
                continue
            try:
                self._update(path, key, sorted(items, key=lambda s: s.ts), result)
            except (rrdtool.OperationalError, OSError) as e:
                self._last.pop(path, None)
                result.errors.append(f"{key}: {e}")
        return result

    def _update(self, path: str, key: str, items: list[Sample], result: WriteResult) -> None:
        last = self._last.get(path)
        if last is None:
            if os.path.exists(path):
                last = float(rrdtool.info(*self.daemon, path)["last_update"])
            else:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                rrdtool.create(path, *self.daemon, "--start", str(int(items[0].ts) - 1),
                               *self.layouts(key).create_args())
                result.created += 1
                last = float(int(items[0].ts) - 1)
        values: list[str] = []
        for s in items:
            if s.ts <= last:
                result.skipped_old += 1
                continue
            values.append(f"{s.ts:.3f}:{'U' if s.value is None else repr(float(s.value))}")
            last = s.ts
        if values:
            rrdtool.update(*self.daemon, path, *values)
            result.updated += len(values)
        self._last[path] = last

    async def list_keys(self) -> list[str]:
        return await self._call(self._list_keys)

    def _list_keys(self) -> list[str]:
        keys = []
        for folder, _dirs, files in os.walk(self.root):
            keys += [path_key(self.root, os.path.join(folder, f)) for f in files if f.endswith(".rrd")]
        return sorted(keys)

    async def fetch(self, key: str, since: float, until: float, cf: str = "AVERAGE") -> dict[str, object]:
        """Points of `key` in [since, until] from the finest archive that covers the range (rrdtool's choice)."""
        return await self._call(self._fetch, key, since, until, cf)

    def _path(self, key: str) -> str:
        path = key_path(self.root, key)
        if not os.path.exists(path):
            raise RrdError(f"no metric {key!r}")
        return path

    def _fetch(self, key: str, since: float, until: float, cf: str) -> dict[str, object]:
        path = self._path(key)
        (start, end, step), _names, rows = rrdtool.fetch(*self.daemon, path, cf, "-s", str(int(since)),
                                                         "-e", str(int(until)))
        points = [(start + (i + 1) * step, row[0]) for i, row in enumerate(rows)]
        return {"key": key, "cf": cf, "start": start, "end": end, "step": step,
                "points": [(ts, v) for ts, v in points if ts <= end]}

    async def info(self, key: str) -> dict[str, Any]:
        return await self._call(lambda: dict(rrdtool.info(*self.daemon, self._path(key))))

    async def graph(self, keys: Sequence[str], period: Period = "day", fmt: ImageFormat = "png",
                    title: str = "", end: float | None = None) -> bytes:
        """An MRTG-style graph: the first key as a filled area, the others as lines, MAX as thin lines."""
        return await self._call(self._graph, list(keys), period, fmt, title, end)

    def _graph(self, keys: list[str], period: Period, fmt: ImageFormat, title: str, end: float | None) -> bytes:
        if not keys:
            raise RrdError("no metric to graph")
        until = int(end if end is not None else time.time())
        args = ["--imgformat", fmt.upper(), "--start", str(until - PERIODS[period]), "--end", str(until),
                "--width", "600", "--height", "160", "--title", title or ", ".join(keys),
                "--lower-limit", "0", "--slope-mode"]
        for i, key in enumerate(keys):
            path = self._path(key).replace(":", "\\:")
            label = key.rsplit(".", 1)[-1]
            colour, max_colour = _COLOURS[i % len(_COLOURS)], _MAX_COLOURS[i % len(_MAX_COLOURS)]
            args += [f"DEF:a{i}={path}:{DS}:AVERAGE", f"DEF:m{i}={path}:{DS}:MAX"]
            args.append(f"{'AREA' if i == 0 else 'LINE2'}:a{i}{colour}:{label:<10}")
            args += [f"GPRINT:a{i}:LAST:current %8.2lf %s", f"GPRINT:a{i}:AVERAGE:average %8.2lf %s",
                     f"GPRINT:m{i}:MAX:max %8.2lf %s\\n", f"LINE1:m{i}{max_colour}:"]
        try:
            out = rrdtool.graphv("-", *self.daemon, *args)
        except rrdtool.OperationalError as e:
            raise RrdError(str(e)) from None
        image = out.get("image")
        if not isinstance(image, bytes):
            raise RrdError("rrdtool drew no image")
        return image


class RrdSink:
    """Feeds the RRD store from the sample channel in batches; counts what it skips."""

    def __init__(self, store: RrdStore, subscription: Subscription[Sample], counters: Counters,
                 pipeline_counters: Counters, *, batch_size: int = 10_000, flush_interval: float = 0.1) -> None:
        self.name = "store/rrd"
        self.store = store
        self.subscription = subscription
        self.counters = counters
        self._pipeline_counters = pipeline_counters
        self._batch_size = batch_size
        self._flush_interval = flush_interval

    async def run(self, started: Callable[[], None]) -> None:
        os.makedirs(self.store.root, exist_ok=True)
        started()
        while True:
            batch = await self.subscription.get_batch(self._batch_size, self._flush_interval)
            try:
                result = await self.store.write(batch)
            finally:
                self.subscription.done(len(batch))
            self._count(result, len(batch))

    def _count(self, result: WriteResult, n: int) -> None:
        c = self.counters
        c.inc("batches")
        c.inc("stored", result.updated)
        c.inc("created", result.created)
        self._pipeline_counters.inc("stored", result.updated)
        for name, value in (("skipped_old", result.skipped_old), ("invalid_keys", result.invalid_keys)):
            if value:
                c.inc(name, value)
        if result.errors:
            c.inc("errors", len(result.errors))
            log.warning("rrd: %d of %d updates failed, first: %s", len(result.errors), n, result.errors[0])


def build_layouts(default_step: float, targets: Iterable[tuple[str, float, Sequence[tuple[float, float]]]]) -> Layouts:
    """Layouts from (key prefix, step, archives) triples, e.g. one per SNMP target."""
    return Layouts(layout(default_step), {prefix: layout(step, rras) for prefix, step, rras in targets})
