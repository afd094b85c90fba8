"""What both sides of the metric store share: keys and their files, layouts, and what crosses the pipe.

Standard library only: the RRD worker process (`mepd.store.rrd.worker`)
imports it, and must not pull in the daemon's code or asyncio.
"""

from __future__ import annotations

import math
import os
import re
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal

DS: Final = "value"
KEY: Final = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
# MRTG's archives as (resolution, span) in seconds: 5 minutes (the step) for 50 hours,
# 30 minutes for 12.5 days, 2 hours for 50 days, 1 day for 732 days.
MRTG_RRAS: Final = ((0.0, 600 * 300.0), (1800.0, 600 * 1800.0), (7200.0, 600 * 7200.0), (86400.0, 732 * 86400.0))
LEARN_SEASONS: Final = 3  # FAILURES is not believed before Holt-Winters has seen this many seasons
PERIODS: Final = {"day": 86400, "week": 7 * 86400, "month": 31 * 86400, "year": 366 * 86400}
Period = Literal["day", "week", "month", "year"]
ImageFormat = Literal["png", "svg"]
# Keys of samples mepd derives from its own metrics: an anomaly rule's FAILURES flags (`anomaly.<key>`, from
# the RRD worker) and a forecast rule's days left (`forecast.<rule>.<key>`).  Never watched for anomalies.
ANOMALY_PREFIX: Final = "anomaly."
FORECAST_PREFIX: Final = "forecast."
# Holt-Winters smoothing of the baseline and its slope: rrdcreate(1)'s example values.  The seasonal
# coefficients adapt with alpha too (rrdtool's default gamma).
HW_ALPHA: Final = 0.1
HW_BETA: Final = 0.0035


class RrdError(Exception):
    """An rrdtool call failed for a reason the caller should see (unknown key, bad file)."""


@dataclass(frozen=True, slots=True)
class HoltWinters:
    """An anomaly rule's archives: rrdtool's Holt-Winters prediction over a `season` (seconds), and a
    FAILURES row when `failures` of the last `window` values left the confidence band."""

    season: float
    failures: int = 7
    window: int = 9


@dataclass(frozen=True, slots=True)
class RrdLayout:
    """How a new file is made: base step in seconds, (steps per row, rows) per archive, the metric names
    stored together in one file per key prefix (an interface's, as MRTG does), and the Holt-Winters
    archives of a key an anomaly rule watches."""

    step: int
    rras: tuple[tuple[int, int], ...]
    group: tuple[str, ...] = ()
    anomaly: HoltWinters | None = None

    def create_args(self, names: Sequence[str]) -> list[str]:
        heartbeat = 2 * self.step
        args = ["--step", str(self.step), *(f"DS:{n}:GAUGE:{heartbeat}:U:U" for n in names)]
        return args + [f"RRA:{cf}:0.5:{pdp}:{rows}" for cf in ("AVERAGE", "MAX") for pdp, rows in self.rras
                       ] + self.hw_args()

    def season_rows(self) -> int:
        assert self.anomaly is not None
        return max(2, round(self.anomaly.season / self.step))

    def hw_args(self) -> list[str]:
        """The HWPREDICT archive (rrdtool adds SEASONAL, DEVSEASONAL, DEVPREDICT and FAILURES with it), as
        long as the finest archive and at least LEARN_SEASONS + 1 seasons; none without `anomaly`."""
        if self.anomaly is None:
            return []
        season = self.season_rows()
        rows = max(self.rras[0][1] if self.rras else 0, (LEARN_SEASONS + 1) * season)
        return [f"RRA:HWPREDICT:{rows}:{HW_ALPHA}:{HW_BETA}:{season}"]


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
    """The layout for a key: that of the longest configured prefix (a target's keys), else the default;
    with the Holt-Winters archives of the first anomaly pattern that matches it (a derived key never)."""

    def __init__(self, default: RrdLayout, prefixes: dict[str, RrdLayout] | None = None,
                 anomalies: Sequence[tuple[re.Pattern[str], HoltWinters]] = ()) -> None:
        self.default = default
        self.prefixes = sorted((prefixes or {}).items(), key=lambda kv: -len(kv[0]))
        self.anomalies = tuple(anomalies)

    def __call__(self, key: str) -> RrdLayout:
        lay = next((lay for prefix, lay in self.prefixes if key.startswith(prefix)), self.default)
        if self.anomalies and not key.startswith((ANOMALY_PREFIX, FORECAST_PREFIX)):
            hw = next((hw for pattern, hw in self.anomalies if pattern.fullmatch(key)), None)
            if hw is not None:
                return replace(lay, anomaly=hw)
        return lay


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
class WriteResult:
    updated: int = 0  # rows written: one per file and time, with every data source of the file
    samples: int = 0  # the samples in those rows
    failed_samples: int = 0  # the samples of rows whose update failed (`errors`)
    lock_waits: int = 0  # updates tried again because another program held the file's lock
    created: int = 0
    skipped_old: int = 0
    invalid_keys: int = 0
    errors: list[str] = field(default_factory=list)
    # (key, row time, 1.0 or 0.0): each FAILURES row completed by this write, of keys anomaly rules watch
    failures: list[tuple[str, float, float]] = field(default_factory=list)


# Samples as sent to the worker process: the number of the first key named in it and the names of keys
# numbered since the last batch, then key number, time and value (NaN for unknown) of each sample, as
# arrays: they pickle as bytes.
Batch = tuple[int, list[str], "array[int]", "array[float]", "array[float]"]


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

