"""Capacity forecasts: when a metric's least-squares trend crosses a threshold.

rrdtool fits the line (LSLSLOPE, LSLINT, LSLCORREL over the window's rows:
`RrdStore.stats`); here it is extended to the threshold.  A crossing further
than `HORIZON` away, or a flat or falling trend, is "not within a year".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from mepd.model import rfc3339

HORIZON: Final = 365 * 86400.0
INTERFACE_SHARE: Final = 0.8  # of ifSpeed
DISK_PCT: Final = 90.0


@dataclass(frozen=True, slots=True)
class Forecast:
    key: str
    threshold: float
    now_value: float | None  # the trend line's value at the end of the window
    slope_per_day: float | None
    correlation: float | None  # of the fit: near 1 (or -1), a line describes the data well
    crossing: float | None  # when the line reaches the threshold; None: not within HORIZON

    @property
    def already(self) -> bool:
        return self.now_value is not None and self.now_value >= self.threshold

    def to_json(self) -> dict[str, object]:
        return {"key": self.key, "threshold": self.threshold, "now": self.now_value,
                "slope_per_day": self.slope_per_day, "correlation": self.correlation,
                "crossing": rfc3339(self.crossing) if self.crossing is not None else None,
                "already": self.already}


def forecast(key: str, stats: Mapping[str, object], threshold: float, now: float,
             horizon: float = HORIZON) -> Forecast:
    """The crossing of `threshold` by the line of `stats` (rrdtool's figures over the window: the line is
    intercept + slope x n at row n, row 0 being the first, stamped start + step)."""
    slope, intercept, correlation = stats.get("slope"), stats.get("intercept"), stats.get("correlation")
    step, start = stats.get("step"), stats.get("start")
    corr = float(correlation) if isinstance(correlation, int | float) else None
    if not (isinstance(slope, float) and isinstance(intercept, float) and isinstance(step, int | float)
            and isinstance(start, int | float)):
        return Forecast(key, threshold, None, None, corr, None)
    first = float(start) + float(step)

    def at(ts: float) -> float:
        return intercept + slope * (ts - first) / float(step)

    value = at(now)
    per_day = slope * 86400 / float(step)
    if value >= threshold:
        return Forecast(key, threshold, value, per_day, corr, now)
    if slope <= 0:
        return Forecast(key, threshold, value, per_day, corr, None)
    crossing = first + (threshold - intercept) / slope * float(step)
    return Forecast(key, threshold, value, per_day, corr, crossing if crossing - now <= horizon else None)


def graph_end(forecasts: list[Forecast], now: float, window: float) -> float:
    """Where a graph of `forecasts` ends: past the latest crossing ahead by a tenth of the way to it, at least
    `window` ahead (as far as the line was fitted back); a year ahead when none crosses, to show it."""
    ahead = [f.crossing - now for f in forecasts if f.crossing is not None]
    if not ahead:
        return now + HORIZON
    return now + max(window, 1.1 * max(ahead))


def soonest_first(forecasts: list[Forecast]) -> list[Forecast]:
    """Those that cross first, then the others by key."""
    return sorted(forecasts, key=lambda f: (f.crossing is None, f.crossing or 0.0, f.key))
