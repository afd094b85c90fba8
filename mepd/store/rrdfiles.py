"""The rrdtool side of the metric store: layouts, where a key's values live, and the owner process.

This module is all the RRD worker process imports (with rrdtool): no asyncio,
no daemon code, so the worker holds about 20 MB of code instead of 30.  The
daemon side (`mepd.store.rrd`) starts it as `mepd.worker_child` does the log
writer, with `start` as its first call and `call` for each rrdtool job.
"""

from __future__ import annotations

import itertools
import math
import operator
import os
import re
import sys
import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import rrdtool

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
    """How a new file is made: base step in seconds, (steps per row, rows) per archive, and the
    metric names stored together in one file per key prefix (an interface's, as MRTG does)."""

    step: int
    rras: tuple[tuple[int, int], ...]
    group: tuple[str, ...] = ()

    def create_args(self, names: Sequence[str]) -> list[str]:
        heartbeat = 2 * self.step
        args = ["--step", str(self.step), *(f"DS:{n}:GAUGE:{heartbeat}:U:U" for n in names)]
        return args + [f"RRA:{cf}:0.5:{pdp}:{rows}" for cf in ("AVERAGE", "MAX") for pdp, rows in self.rras]


def layout(step: float, rras: Sequence[tuple[float, float]] = (), group: Sequence[str] = ()) -> RrdLayout:
    """A layout from a poll interval and (resolution, span) pairs; a resolution below the step is the step."""
    base = max(1, round(step))
    out: list[tuple[int, int]] = []
    for resolution, span in rras or MRTG_RRAS:
        pdp = max(1, round(resolution / base))
        rows = max(2, math.ceil(span / (pdp * base)))
        if all(p != pdp for p, _ in out):
            out.append((pdp, rows))
    return RrdLayout(base, tuple(sorted(out)), tuple(group))


class Layouts:
    """The layout for a key: that of the longest configured prefix (a target's keys), else the default."""

    def __init__(self, default: RrdLayout, prefixes: dict[str, RrdLayout] | None = None) -> None:
        self.default = default
        self.prefixes = sorted((prefixes or {}).items(), key=lambda kv: -len(kv[0]))

    def __call__(self, key: str) -> RrdLayout:
        return next((lay for prefix, lay in self.prefixes if key.startswith(prefix)), self.default)


def key_path(root: str, key: str) -> str:
    """`snmp.sw1.eth0` -> ROOT/snmp/sw1/eth0.rrd; ValueError for a key that is not a dotted name."""
    if not KEY.fullmatch(key):
        raise ValueError(f"invalid metric key {key!r}: expected dotted names of [A-Za-z0-9_-]")
    parts = key.split(".")
    if len(parts) < 3:
        return os.path.join(root, key + ".rrd")
    return os.path.join(root, parts[0], parts[1], ".".join(parts[2:]) + ".rrd")


def path_key(root: str, path: str) -> str:
    rel = os.path.relpath(path, root)
    return rel[: -len(".rrd")].replace(os.sep, ".")


@dataclass(frozen=True, slots=True)
class Location:
    """Where a key's values live: the file, the data source in it, and the layout that makes the file."""

    path: str
    ds: str
    names: tuple[str, ...]
    layout: RrdLayout


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
class WriteResult:
    updated: int = 0  # rows written: one per file and time, with every data source of the file
    samples: int = 0  # the samples in those rows
    failed_samples: int = 0  # the samples of rows whose update failed (`errors`)
    created: int = 0
    skipped_old: int = 0
    invalid_keys: int = 0
    errors: list[str] = field(default_factory=list)


# Samples as sent to the owner process: the names of keys not sent before (numbered on from the last),
# then key number, time and value (NaN for unknown) of each sample, as arrays: they pickle as bytes.
Batch = tuple[list[str], "array[int]", "array[float]", "array[float]"]


def locate(root: str, layouts: Callable[[str], RrdLayout], key: str) -> Location:
    """The file and data source of a key; ValueError for a key that is not a dotted name."""
    lay = layouts(key)
    parent, _, last = key.rpartition(".")
    if lay.group and last in lay.group and parent.count(".") >= 2:
        return Location(key_path(root, parent), last, lay.group, lay)
    return Location(key_path(root, key), DS, (DS,), lay)


def read_location(root: str, layouts: Callable[[str], RrdLayout], key: str) -> Location:
    """Where a key's values are read from: `locate`'s file, else its interface's file when that exists
    (an SNMP target no longer configured keeps its history readable, as `list_keys` lists it)."""
    loc = locate(root, layouts, key)
    parent, _, last = key.rpartition(".")
    if not os.path.exists(loc.path) and parent.count(".") >= 2:
        grouped = key_path(root, parent)
        if os.path.exists(grouped):
            return Location(grouped, last, (), loc.layout)
    return loc


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

    def set_layouts(self, layouts: Callable[[str], RrdLayout]) -> None:
        self.layouts = layouts
        self._path_of = [None] * len(self._keys)
        self._paths.clear()

    def add_keys(self, keys: Sequence[str]) -> None:
        """Keys named from now on by their number: the next numbers, in order."""
        self._keys.extend(keys)
        self._path_of.extend([None] * len(keys))
        self._ds_of.extend([DS] * len(keys))

    def write(self, batch: Batch, flush: bool) -> WriteResult:
        """Store a batch: new key names, then the key number, time and value (NaN: unknown) of each sample."""
        new_keys, ids, stamps, values = batch
        if new_keys:
            self.add_keys(new_keys)
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
            return path, (self._last_update(loc, ts, result) if last is None else last)
        except ValueError:
            result.invalid_keys += 1
        except (rrdtool.OperationalError, OSError) as e:
            result.errors.append(f"{self._keys[kid]}: {e}")
            result.failed_samples += 1
        return None

    def _update(self, lines: dict[str, _Lines], result: WriteResult) -> None:
        """One rrdtool update per file, with all its new rows."""
        for path, pending in lines.items():
            try:
                rrdtool.update(*self.daemon, path, "-t", self._templates[path], *pending.lines)
            except rrdtool.OperationalError as e:
                self._last.pop(path, None)
                result.errors.append(f"{path_key(self.root, path)}: {e}")
                result.failed_samples += pending.samples
            else:
                result.updated += len(pending.lines)
                result.samples += pending.samples

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
            info = rrdtool.info(*self.daemon, loc.path)
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
            self._names[path] = _ds_names(rrdtool.info(*self.daemon, path))
        return self._names[path]

    def _existing(self, key: str) -> Location:
        loc = read_location(self.root, self.layouts, key)
        if not os.path.exists(loc.path) or loc.ds not in self._file_names(loc.path):
            raise RrdError(f"no metric {key!r}")
        return loc

    def fetch(self, key: str, since: float, until: float, cf: str) -> dict[str, object]:
        loc = self._existing(key)
        (start, end, step), names, rows = rrdtool.fetch(*self.daemon, loc.path, cf, "-s", str(int(since)),
                                                        "-e", str(int(until)))
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
                last = float(rrdtool.last(path))
                values = rrdtool.lastupdate(path)["ds"]
            except rrdtool.OperationalError:  # no such file (a key never written), or not an RRD
                continue
            out += [(key, last, None if (v := values.get(ds)) is None or math.isnan(v) else float(v))
                    for key, ds in entries]
        return out

    def info(self, key: str) -> dict[str, Any]:
        return dict(rrdtool.info(*self.daemon, self._existing(key).path))

    def graph(self, keys: list[str], period: Period, fmt: ImageFormat, title: str, end: float | None,
              size: tuple[int, int] | None, legend: bool) -> bytes:
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
        try:
            out = rrdtool.graphv("-", *self.daemon, *args)
        except rrdtool.OperationalError as e:
            raise RrdError(str(e)) from None
        image = out.get("image")
        if not isinstance(image, bytes):
            raise RrdError("rrdtool drew no image")
        return image


_owner: _Owner | None = None


def start(root: str, daemon: list[str], layouts: Callable[[str], RrdLayout]) -> None:
    """The worker's first call (`mepd.worker_child.serve`): the one owner of every rrdtool call."""
    global _owner  # noqa: PLW0603 - one owner per worker process is the point
    _owner = _Owner(root, daemon, layouts)


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
