"""The rrdtool side of the metric store, run in a process of its own: the owner of every rrdtool call.

The rrdtool binding is not thread-safe and holds the GIL through every call:
updating 10,000 files takes half a second of C, which in the daemon would stop
the event loop.  This module, `mepd.store.rrd.files` and rrdtool are all the
worker process imports (no asyncio, no daemon code: about 20 MB, not 100).
`mepd.store.rrd.store` starts it through `mepd.workers.Worker`, with `start`
as its first call and `call` for each rrdtool job.
"""

from __future__ import annotations

import itertools
import math
import operator
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import rrdtool

from mepd.store.rrd.files import (
    ANOMALY_PREFIX,
    DS,
    LEARN_SEASONS,
    PERIODS,
    Batch,
    ImageFormat,
    Location,
    Period,
    RrdError,
    RrdLayout,
    WriteResult,
    locate,
    path_key,
    read_location,
)
from mepd.store.rrd.marks import Mark, mark_args, rrd_escape

_COLOURS: Final = ("#00CC00", "#0000FF", "#FF6600", "#CC00CC", "#00CCCC", "#999900")
_MAX_COLOURS: Final = ("#006600", "#FF00FF", "#993300", "#660066", "#006666", "#666600")
_BAND_COLOUR: Final = "#FF0000"
_FAILURE_COLOUR: Final = "#FFFF0080"
_CAPACITY_COLOUR: Final = "#FF0000"
_CROSSING_COLOUR: Final = "#CC0000"
# rrdtool locks a file for any use and does not wait for a lock: an update or a read fails at once while another
# program reads the file (an admin's `rrdtool graph`, `fetch`, `last`, a backup's `dump`).  Such a read takes
# milliseconds, so every call on an existing file (updates, tunes, reads) is tried again after each of these
# waits (1.1 s in all, `_unlocked`) before an update's rows are dropped or a read answers an error.
LOCKED: Final = "could not lock RRD"
LOCK_WAITS: Final = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4)

T = TypeVar("T")


def _unlocked(fn: Callable[..., T], *args: str, waited: Callable[[], None] = lambda: None) -> T:
    """An rrdtool call, tried again after each of `LOCK_WAITS` while another program holds a file's lock
    (`waited` told of each wait); the last try's error is the one raised.  Updates would drop their rows,
    reads (graphs, fetch, `metrics show`) answer an error: both wait instead."""
    for wait in LOCK_WAITS:
        try:
            return fn(*args)
        except rrdtool.OperationalError as e:
            if not str(e).startswith(LOCKED):
                raise
        waited()
        time.sleep(wait)
    return fn(*args)


@dataclass(slots=True)
class _Row:
    ts: float
    values: dict[str, float]


@dataclass(slots=True)
class _Lines:
    """A file's rows of one write, as rrdtool update arguments, and how many samples they hold."""

    lines: list[str] = field(default_factory=list)
    samples: int = 0


@dataclass(slots=True)
class _Watch:
    """A file with Holt-Winters archives that anomaly rules watch: the keys by data source, the season in
    seconds, the last FAILURES row reported, and from when its rows are believed (None: not known yet)."""

    keys: dict[str, str]
    season: float
    seen: float
    learned: float | None = None


class _Owner:
    """The rrdtool side of the store, alone in the worker process: files, their last updates, and the
    rows of a group still waiting for some of their names."""

    def __init__(self, root: str, daemon: list[str], layouts: Callable[[str], RrdLayout]) -> None:
        self.root = root
        self.daemon = daemon
        self.layouts = layouts
        self._last: dict[str, float] = {}
        self._names: dict[str, tuple[str, ...]] = {}
        self._templates: dict[str, str] = {}
        self._rows: dict[str, _Row] = {}
        self._keys: list[str] = []  # by key number (`Batch`)
        # Each key's file and data source, found on first use: shared strings (one path per file, data
        # source names interned) in two lists, not a `Location` per key (10 MB at 90,000 keys).
        self._path_of: list[str | None] = []
        self._ds_of: list[str] = []
        self._paths: dict[str, str] = {}
        self._watched: dict[str, _Watch] = {}  # by path

    def set_layouts(self, layouts: Callable[[str], RrdLayout]) -> None:
        self.layouts = layouts
        self._path_of = [None] * len(self._keys)
        self._paths.clear()
        self._watched.clear()  # found again with each key, as the new anomaly rules say

    def add_keys(self, first: int, keys: Sequence[str]) -> None:
        """Keys numbered `first`, `first` + 1...; those this process already has (told at its start) are kept."""
        assert first <= len(self._keys), "key names come in the order they were numbered"
        fresh = keys[len(self._keys) - first:]
        self._keys.extend(fresh)
        self._path_of.extend([None] * len(fresh))
        self._ds_of.extend([DS] * len(fresh))

    def write(self, batch: Batch, flush: bool) -> WriteResult:
        """Store a batch: new key names, then the key number, time and value (NaN: unknown) of each sample."""
        first, new_keys, ids, stamps, values = batch
        if new_keys:
            self.add_keys(first, new_keys)
        result = WriteResult()
        lines: dict[str, _Lines] = {}
        rows, last_of, names_of, path_of, ds_of = self._rows, self._last, self._names, self._path_of, self._ds_of
        samples: Iterable[tuple[int, float, float]] = zip(ids, stamps, values, strict=True)
        if not all(map(operator.le, stamps, itertools.islice(stamps, 1, None))):  # an SNMP poll is in time order
            samples = sorted(samples, key=operator.itemgetter(1))
        for kid, ts, value in samples:
            path = path_of[kid]
            if path is None or (last := last_of.get(path)) is None:
                found = self._find(kid, ts, result)
                if found is None:
                    continue
                path, last = found
            row = rows.get(path)
            if ts <= last or (row is not None and ts < row.ts):
                result.skipped_old += 1
                continue
            if row is not None and ts > row.ts:
                self._emit(path, row, lines)
                row = None
            if row is None:
                row = rows[path] = _Row(ts, {})
            row.values[ds_of[kid]] = value
            if len(row.values) >= len(names_of[path]):
                self._emit(path, row, lines)
        if flush:
            for path, row in list(rows.items()):
                self._emit(path, row, lines)
        self._update(lines, result)
        return result

    def _find(self, kid: int, ts: float, result: WriteResult) -> tuple[str, float] | None:
        """The file of key number `kid` and its last update (creating the file); None when the key is
        invalid or the file cannot be read, counted in `result`."""
        try:
            loc = locate(self.root, self.layouts, self._keys[kid])
            path = self._path_of[kid] = self._paths.setdefault(loc.path, loc.path)
            self._ds_of[kid] = sys.intern(loc.ds)
            last = self._last.get(path)
            last = self._last_update(loc, ts, result) if last is None else last
            if loc.layout.anomaly is not None:
                self._watch(path, loc, self._keys[kid])
        except ValueError:
            result.invalid_keys += 1
        except (rrdtool.OperationalError, OSError) as e:
            result.errors.append(f"{self._keys[kid]}: {e}")
            result.failed_samples += 1
        else:
            return path, last
        return None

    def _update(self, lines: dict[str, _Lines], result: WriteResult) -> None:
        """One rrdtool update per file, with all its new rows."""
        for path, pending in lines.items():
            try:
                self._update_file(path, pending.lines, result)
            except rrdtool.OperationalError as e:
                self._last.pop(path, None)
                result.errors.append(f"{path_key(self.root, path)}: {e}")
                result.failed_samples += pending.samples
            else:
                result.updated += len(pending.lines)
                result.samples += pending.samples
                if path in self._watched:
                    self._failures(path, self._watched[path], result)

    def _update_file(self, path: str, rows: list[str], result: WriteResult) -> None:
        def waited() -> None:
            result.lock_waits += 1

        _unlocked(rrdtool.update, *self.daemon, path, "-t", self._templates[path], *rows, waited=waited)

    def _watch(self, path: str, loc: Location, key: str) -> None:
        """Report FAILURES of `key` after each write; first give its file the Holt-Winters archives if it
        lacks them (`rrdtool tune` adds them and keeps the history) and the rule's failure threshold."""
        hw = loc.layout.anomaly
        assert hw is not None
        watch = self._watched.get(path)
        if watch is None:
            info = _unlocked(rrdtool.info, *self.daemon, path)
            fails = next((k[:-len(".cf")] for k, v in info.items() if k.endswith(".cf") and v == "FAILURES"), None)
            if fails is None:
                _unlocked(rrdtool.tune, path, *self.daemon, *loc.layout.hw_args())
            if fails is None or (info[f"{fails}.failure_threshold"], info[f"{fails}.window_length"]) != (
                    hw.failures, hw.window):  # in a call of its own: tune sets these before it adds archives
                _unlocked(rrdtool.tune, path, *self.daemon, "--failure-threshold", str(hw.failures),
                          "--window-length", str(hw.window))
            watch = self._watched[path] = _Watch({}, loc.layout.season_rows() * loc.layout.step, self._last[path])
        watch.keys[loc.ds] = key

    def _failures(self, path: str, watch: _Watch, result: WriteResult) -> None:
        """The FAILURES rows this write completed, for each watched key; those of the first LEARN_SEASONS
        seasons of the file's Holt-Winters archives are left out: the band is still being learned."""
        last = self._last[path]
        if watch.learned is None:
            watch.learned = self._learned(path, watch)
        (start, _end, step), names, rows = _unlocked(
            rrdtool.fetch, *self.daemon, path, "FAILURES", "-s", str(int(max(watch.seen, last - watch.season))),
            "-e", str(int(last)))
        columns = [(names.index(ds), key) for ds, key in watch.keys.items() if ds in names]
        for i, row in enumerate(rows):
            ts = float(start + (i + 1) * step)
            if ts <= watch.seen or ts > last:
                continue
            watch.seen = ts
            if watch.learned is not None and ts >= watch.learned:
                result.failures += [(ANOMALY_PREFIX + key, ts, float(bool(row[col])))
                                    for col, key in columns if row[col] is not None]

    def _learned(self, path: str, watch: _Watch) -> float | None:
        """LEARN_SEASONS seasons after the first known HWPREDICT row; None while there is none."""
        last = self._last[path]
        (start, _end, step), _names, rows = _unlocked(
            rrdtool.fetch, *self.daemon, path, "HWPREDICT", "-s", str(int(last - (LEARN_SEASONS + 1) * watch.season)),
            "-e", str(int(last)))
        first = next((i for i, row in enumerate(rows) if any(v is not None for v in row)), None)
        return None if first is None else start + (first + 1) * step + LEARN_SEASONS * watch.season

    def _emit(self, path: str, row: _Row, lines: dict[str, _Lines]) -> None:
        del self._rows[path]
        values = row.values
        line = f"{row.ts:.3f}:" + ":".join(["U" if (v := values.get(n)) is None or math.isnan(v) else repr(v)
                                             for n in self._names[path]])
        pending = lines.get(path) or lines.setdefault(path, _Lines())
        pending.lines.append(line)
        pending.samples += len(values)
        self._last[path] = row.ts

    def _last_update(self, loc: Location, ts: float, result: WriteResult) -> float:
        """The file's last update time, creating the file (as of just before `ts`) when there is none."""
        if os.path.exists(loc.path):
            info = _unlocked(rrdtool.info, *self.daemon, loc.path)
            names = _ds_names(info)
            last = float(info["last_update"])
        else:
            os.makedirs(os.path.dirname(loc.path), exist_ok=True)
            rrdtool.create(loc.path, *self.daemon, "--start", str(int(ts) - 1), *loc.layout.create_args(loc.names))
            names = loc.names
            result.created += 1
            last = float(int(ts) - 1)
        self._names[loc.path] = names
        self._templates[loc.path] = ":".join(names)
        self._last[loc.path] = last
        return last

    def list_keys(self) -> list[str]:
        keys = []
        for folder, _dirs, files in os.walk(self.root):
            for f in files:
                if f.endswith(".rrd"):
                    path = os.path.join(folder, f)
                    base = path_key(self.root, path)
                    names = self._file_names(path)
                    keys += [base] if names == (DS,) else [f"{base}.{n}" for n in names]
        return sorted(keys)

    def _file_names(self, path: str) -> tuple[str, ...]:
        if path not in self._names:
            self._names[path] = _ds_names(_unlocked(rrdtool.info, *self.daemon, path))
        return self._names[path]

    def _existing(self, key: str) -> Location:
        loc = read_location(self.root, self.layouts, key)
        if not os.path.exists(loc.path) or loc.ds not in self._file_names(loc.path):
            raise RrdError(f"no metric {key!r}")
        return loc

    def fetch(self, key: str, since: float, until: float, cf: str) -> dict[str, object]:
        loc = self._existing(key)
        (start, end, step), names, rows = _unlocked(rrdtool.fetch, *self.daemon, loc.path, cf, "-s",
                                                    str(int(since)), "-e", str(int(until)))
        col = list(names).index(loc.ds)
        points = [(start + (i + 1) * step, row[col]) for i, row in enumerate(rows)]
        return {"key": key, "cf": cf, "start": start, "end": end, "step": step,
                "points": [(ts, v) for ts, v in points if ts <= end]}

    def last_values(self, keys: Sequence[str]) -> list[tuple[str, float, float | None]]:
        """(key, its file's last update, its last value) for each key whose file can be read: two cheap
        reads per file (30 us, against 110 for `info`), however many keys share it (an interface's nine)."""
        files: dict[str, list[tuple[str, str]]] = {}
        for key in keys:
            try:
                loc = read_location(self.root, self.layouts, key)
            except ValueError:  # not a key name: no file
                continue
            files.setdefault(loc.path, []).append((key, loc.ds))
        out: list[tuple[str, float, float | None]] = []
        for path, entries in files.items():
            try:
                if self.daemon:  # the binding's lastupdate takes no --daemon: the file is read once flushed
                    rrdtool.flushcached(*self.daemon, path)
                last = float(_unlocked(rrdtool.last, path))
                values = _unlocked(rrdtool.lastupdate, path)["ds"]
            except rrdtool.OperationalError:  # no such file (a key never written), or not an RRD
                continue
            out += [(key, last, None if (v := values.get(ds)) is None or math.isnan(v) else float(v))
                    for key, ds in entries]
        return out

    def info(self, key: str) -> dict[str, Any]:
        return dict(_unlocked(rrdtool.info, *self.daemon, self._existing(key).path))

    def graph(self, keys: list[str], period: Period, fmt: ImageFormat, title: str, end: float | None,
              size: tuple[int, int] | None, legend: bool, marks: Sequence[Mark] = ()) -> bytes:
        if not keys:
            raise RrdError("no metric to graph")
        until = int(end if end is not None else time.time())
        width, height = size or (600, 160)
        args = ["--imgformat", fmt.upper(), "--start", str(until - PERIODS[period]), "--end", str(until),
                "--width", str(width), "--height", str(height), "--title", title or ", ".join(keys),
                "--lower-limit", "0", "--slope-mode"]
        args += ["--full-size-mode"] if size else []
        args += [] if legend else ["--only-graph"]
        for i, key in enumerate(keys):
            loc = self._existing(key)
            path = loc.path.replace(":", "\\:")
            label = key.rsplit(".", 1)[-1]
            colour, max_colour = _COLOURS[i % len(_COLOURS)], _MAX_COLOURS[i % len(_MAX_COLOURS)]
            args += [f"DEF:a{i}={path}:{loc.ds}:AVERAGE", f"DEF:m{i}={path}:{loc.ds}:MAX"]
            args.append(f"{'AREA' if i == 0 else 'LINE2'}:a{i}{colour}:{label:<12}")
            args += [f"GPRINT:a{i}:LAST:current %8.2lf %s", f"GPRINT:a{i}:AVERAGE:average %8.2lf %s",
                     f"GPRINT:m{i}:MAX:max %8.2lf %s\\n", f"LINE1:m{i}{max_colour}:"]
            args += self._band(loc, path, i)
        args += mark_args(marks, until - PERIODS[period], until)
        return self._draw(args)

    def _graphv(self, args: list[str]) -> dict[str, Any]:
        """rrdtool graphv of `args` (through rrdcached when there is one); its refusal is the caller's RrdError."""
        try:
            return dict(_unlocked(rrdtool.graphv, "-", *self.daemon, *args))
        except rrdtool.OperationalError as e:
            raise RrdError(str(e)) from None

    def _draw(self, args: list[str]) -> bytes:
        """The image rrdtool graphv draws from `args`."""
        image = self._graphv(args).get("image")
        if not isinstance(image, bytes):
            raise RrdError("rrdtool drew no image")
        return image

    def _band(self, loc: Location, path: str, i: int) -> list[str]:
        """For a file with Holt-Winters archives, rrdcreate(1)'s aberrant behaviour graph: the confidence band
        HWPREDICT +/- DEVPREDICT x delta (the file's deltas) as lines, and FAILURES as ticks."""
        info = _unlocked(rrdtool.info, *self.daemon, loc.path)
        fails = next((k[:-len(".cf")] for k, v in info.items() if k.endswith(".cf") and v == "FAILURES"), None)
        if fails is None:
            return []
        up, down = info[f"{fails}.delta_pos"], info[f"{fails}.delta_neg"]
        ds = f"{path}:{loc.ds}"
        return [f"DEF:h{i}={ds}:HWPREDICT", f"DEF:d{i}={ds}:DEVPREDICT", f"DEF:f{i}={ds}:FAILURES",
                f"CDEF:u{i}=h{i},d{i},{up},*,+", f"CDEF:l{i}=h{i},d{i},{down},*,-",
                f"TICK:f{i}{_FAILURE_COLOUR}:1.0:failures", f"LINE1:u{i}{_BAND_COLOUR}:band",
                f"LINE1:l{i}{_BAND_COLOUR}:\\n"]

    def stats(self, key: str, since: float, until: float, percentile: float) -> dict[str, object]:
        """rrdtool's own figures over [since, until]: average, minimum, maximum, the `percentile`th percentile
        (PERCENTNAN: unknown rows left out, as a transit bill does), the total (value x seconds), the
        least-squares line value = slope x n + intercept over the row number n, 0 for the first row (LSLSLOPE,
        LSLINT; LSLCORREL its correlation), and how many rows are known.

        They come from `rrdtool graph` with PRINT, which first consolidates the rows to one per pixel: the
        graph is made as wide as the range has rows of the archive `fetch` picks (the finest covering it),
        so every figure is over those rows exactly."""
        loc = self._existing(key)
        (start, _end, step), _names, rows = _unlocked(rrdtool.fetch, *self.daemon, loc.path, "AVERAGE", "-s",
                                                      str(int(since)), "-e", str(int(until)))
        n = sum(1 for i in range(len(rows)) if start + (i + 1) * step <= until)  # rows stamped within the range
        end = start + n * step
        path = loc.path.replace(":", "\\:")
        figures = {"average": "v,AVERAGE", "minimum": "v,MINIMUM", "maximum": "v,MAXIMUM",
                   "percentile": f"v,{percentile:g},PERCENTNAN", "total": "v,TOTAL", "slope": "v,LSLSLOPE",
                   "intercept": "v,LSLINT", "correlation": "v,LSLCORREL", "known": "k,TOTAL"}
        # rrdtool graph reads the row that holds its end too: the one after the range unless the end is 1 s earlier
        args = ["--start", str(start), "--end", str(end - 1), "--step", str(step), "--width", str(max(10, n)),
                f"DEF:v={path}:{loc.ds}:AVERAGE", "CDEF:k=v,UN,0,1,IF"]
        for name, rpn in figures.items():
            args += [f"VDEF:{name}={rpn}", f"PRINT:{name}:%.12le"]
        printed = self._graphv(args)
        values = [float(printed[f"print[{i}]"]) for i in range(len(figures))]
        out: dict[str, object] = {"key": key, "start": start, "end": end, "step": step, "rows": n}
        out |= {name: None if math.isnan(v) else v for name, v in zip(figures, values, strict=True)}
        known = values[-1]  # the TOTAL of 1 a known row: rows x step
        out["known"] = 0 if math.isnan(known) else round(known / step)
        return out


    def period_graph(self, keys: list[str], since: float, until: float, fmt: ImageFormat, title: str,
                     size: tuple[int, int], trend: bool) -> bytes:
        """A graph of [since, until] (a report's period): the first key as an area, the others as lines, each
        with its 95th percentile as a dashed rule and, with `trend`, its least-squares line (LSLSLOPE,
        LSLINT) drawn across the period, as rrdgraph_rpn's example draws it."""
        if not keys:
            raise RrdError("no metric to graph")
        width, height = size
        args = ["--imgformat", fmt.upper(), "--start", str(int(since)), "--end", str(int(until)),
                "--width", str(width), "--height", str(height), "--title", title, "--lower-limit", "0"]
        for i, key in enumerate(keys):
            loc = self._existing(key)
            path = loc.path.replace(":", "\\:")
            label = key.rsplit(".", 1)[-1]
            colour, dark = _COLOURS[i % len(_COLOURS)], _MAX_COLOURS[i % len(_MAX_COLOURS)]
            args += [f"DEF:a{i}={path}:{loc.ds}:AVERAGE", f"VDEF:p{i}=a{i},95,PERCENTNAN",
                     f"{'AREA' if i == 0 else 'LINE2'}:a{i}{colour}:{label:<12}",
                     f"GPRINT:a{i}:AVERAGE:average %8.2lf %s", f"GPRINT:p{i}:95th percentile %8.2lf %s\\n",
                     f"LINE1:p{i}{dark}::dashes"]
            if trend:
                args += [f"VDEF:s{i}=a{i},LSLSLOPE", f"VDEF:c{i}=a{i},LSLINT",
                         f"CDEF:t{i}=a{i},POP,COUNT,1,-,s{i},*,c{i},+", f"LINE1:t{i}{dark}:trend\\n"]
        return self._draw(args)

    def trend_graph(self, keys: list[str], lines: Sequence[tuple[float, float, float] | None], since: float,
                    end: float, capacity: tuple[float, str], crossings: Sequence[tuple[float | None, str]],
                    fmt: ImageFormat, title: str, size: tuple[int, int]) -> bytes:
        return self._draw(self.trend_args(keys, lines, since, end, capacity, crossings, fmt, title, size))

    def trend_args(self, keys: list[str], lines: Sequence[tuple[float, float, float] | None], since: float,
                   end: float, capacity: tuple[float, str], crossings: Sequence[tuple[float | None, str]],
                   fmt: ImageFormat, title: str, size: tuple[int, int]) -> list[str]:
        """A forecast's graph from `since` (its window's start) to `end` (ahead of now): each key's values,
        its least-squares line (at, value, slope per second: rrdtool's LSLSLOPE and LSLINT over the
        window's rows, `stats`) drawn on across the future, the (threshold, text) capacity as a rule, and
        each (time, text) crossing as a vertical rule with its text, or the text alone without a time."""
        if not keys:
            raise RrdError("no metric to graph")
        width, height = size
        args = ["--imgformat", fmt.upper(), "--start", str(int(since)), "--end", str(int(end)),
                "--width", str(width), "--height", str(height), "--full-size-mode", "--title", title,
                "--lower-limit", "0", "--upper-limit", f"{capacity[0]:.12g}"]
        for i, (key, line) in enumerate(zip(keys, lines, strict=True)):
            loc = self._existing(key)
            path = loc.path.replace(":", "\\:")
            label = key.rsplit(".", 1)[-1]
            colour, dark = _COLOURS[i % len(_COLOURS)], _MAX_COLOURS[i % len(_MAX_COLOURS)]
            args += [f"DEF:a{i}={path}:{loc.ds}:AVERAGE", f"{'AREA' if i == 0 else 'LINE2'}:a{i}{colour}:{label}"]
            if line is not None:
                at, value, slope = line
                args += [f"CDEF:t{i}=a{i},POP,TIME,{at:.12g},-,{slope:.12g},*,{value:.12g},+",
                         f"LINE1:t{i}{dark}:{label} trend\\n:dashes"]
        args.append(f"HRULE:{capacity[0]:.12g}{_CAPACITY_COLOUR}:{rrd_escape(capacity[1])}\\n")
        for ts, text in crossings:
            if ts is not None and since <= ts <= end:
                args.append(f"VRULE:{int(ts)}{_CROSSING_COLOUR}:{rrd_escape(text)}\\n")
            else:
                args.append(f"COMMENT:{rrd_escape(text)}\\n")
        return args


_owner: _Owner | None = None


def start(root: str, daemon: list[str], layouts: Callable[[str], RrdLayout], keys: Sequence[str]) -> None:
    """The worker's first call (`mepd.worker_child.serve`): the one owner of every rrdtool call, told the
    layouts and the key names numbered so far."""
    global _owner  # noqa: PLW0603 - one owner per worker process is the point
    _owner = _Owner(root, daemon, layouts)
    _owner.add_keys(0, keys)


def call(method: str, layouts: Callable[[str], RrdLayout] | None, args: tuple[Any, ...]) -> Any:
    """An owner method, with the layouts first when the daemon's have changed; any error comes back as RrdError."""
    assert _owner is not None, "start() is the worker's first call"
    if layouts is not None:
        _owner.set_layouts(layouts)
    try:
        return getattr(_owner, method)(*args)
    except RrdError:
        raise
    except Exception as e:  # noqa: BLE001 - rrdtool's and ours alike reach the caller as one kind of error
        raise RrdError(f"{type(e).__name__}: {e}") from None


def _ds_names(info: dict[str, Any]) -> tuple[str, ...]:
    """Data source names of a file, in its order, from `rrdtool info`."""
    names = [(int(v), k[3:-len("].index")]) for k, v in info.items() if k.startswith("ds[") and k.endswith("].index")]
    return tuple(sys.intern(n) for _, n in sorted(names))
