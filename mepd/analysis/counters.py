"""SNMP counter readings -> rates, with no spike after a wrap, a reset or a reboot.

rrdtool's COUNTER type cannot tell a counter that wrapped from one that was
reset (an agent reboot): it turns both into a huge rate.  mepd decides itself,
from the agent's own clock:

- the agent restarted between two readings when snmpEngineBoots changed, when
  sysUpTime went back (unless it wrapped: a TimeTicks Counter32 wraps after
  497 days, which the poller's wall clock predicts), or when sysUpTime advanced
  clearly less than the wall clock did (it was down meanwhile);
- a counter that went back after no restart wrapped once; a 64-bit counter that
  would need more than half its range to get there was reset instead;
- a rate above the interface speed (or a configured maximum) is not believable.

Each of those gives an unknown value with a reason, never a number.  Elapsed
time is taken from sysUpTime: the agent's clock times the counters it returns,
the poller's clock adds network and scheduling jitter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from operator import sub
from typing import Final, Literal, cast

TICKS_PER_SECOND: Final = 100
UPTIME_MODULUS: Final = 2**32
# How much less sysUpTime may advance than the poller's clock before we call it a restart:
# replies are timestamped on arrival, so retries and a busy loop make the clocks differ a little.
CLOCK_SLACK_SECONDS: Final = 2.0
CLOCK_SLACK_RATIO: Final = 0.05


class Unknown(StrEnum):
    """Why a rate is unknown; the poller counts each reason."""

    FIRST = "first"                  # no previous reading
    RESTART = "restart"              # the agent restarted in between
    DISCONTINUITY = "discontinuity"  # ifCounterDiscontinuityTime changed, re-indexing, width change
    RESET = "reset"                  # the counter went back and cannot have wrapped
    NO_TIME = "no_time"              # no agent time elapsed
    OVER_SPEED = "over_speed"        # faster than the interface can go


@dataclass(frozen=True, slots=True)
class AgentClock:
    """When a reading was taken: the poller's wall clock and the agent's own."""

    ts: float
    uptime: int
    boots: int | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """One counter value; `marker` changes when the agent says the counter is discontinuous."""

    clock: AgentClock
    value: int
    bits: int
    marker: object = None


@dataclass(frozen=True, slots=True)
class Rate:
    value: float | None
    reason: Unknown | None = None


def elapsed_ticks(prev: AgentClock, cur: AgentClock) -> int | None:
    """Agent ticks (1/100 s) between two readings, or None when the agent restarted in between."""
    if prev.boots is not None and cur.boots is not None and cur.boots != prev.boots:
        return None
    wall = cur.ts - prev.ts
    slack = CLOCK_SLACK_SECONDS + CLOCK_SLACK_RATIO * max(wall, 0.0)
    if cur.uptime < prev.uptime:
        predicted = prev.uptime + (wall + slack) * TICKS_PER_SECOND
        if predicted < UPTIME_MODULUS:
            return None
    ticks = (cur.uptime - prev.uptime) % UPTIME_MODULUS
    if ticks / TICKS_PER_SECOND < wall - slack:
        return None
    return ticks


def counter_delta(prev: int, cur: int, bits: int) -> int | None:
    """Increase of a `bits`-wide counter, across one wrap; None when it was reset instead."""
    if cur >= prev:
        return cur - prev
    modulus = 1 << bits
    delta = cur + modulus - prev
    if bits == 64 and delta > modulus // 2:
        return None
    return delta


def rate(prev: Reading, cur: Reading, scale: float = 1.0, max_rate: float | None = None,
         ticks: int | Literal[False] | None = False) -> Rate:
    """`scale` x increase per second (8 for octets -> bits/s); unknown with a reason when not believable.

    `ticks` is `elapsed_ticks(prev.clock, cur.clock)` when the caller has it already.
    """
    if prev.bits != cur.bits or prev.marker != cur.marker:
        return Rate(None, Unknown.DISCONTINUITY)
    if ticks is False:
        ticks = elapsed_ticks(prev.clock, cur.clock)
    if ticks is None:
        return Rate(None, Unknown.RESTART)
    if ticks == 0:
        return Rate(None, Unknown.NO_TIME)
    delta = counter_delta(prev.value, cur.value, cur.bits)
    if delta is None:
        return Rate(None, Unknown.RESET)
    value = delta * scale * TICKS_PER_SECOND / ticks
    if max_rate is not None and max_rate > 0 and value > max_rate:
        return Rate(None, Unknown.OVER_SPEED)
    return Rate(value)


class RateTracker:
    """The previous reading of every counter of one agent, keyed by the caller (interface + counter).

    The readings of one poll share one AgentClock, so the elapsed time between
    two polls is worked out once, not once per counter.
    """

    __slots__ = ("_clocks", "_last", "_ticks")

    def __init__(self) -> None:
        self._last: dict[str, Reading] = {}
        self._clocks: tuple[AgentClock, AgentClock] | None = None
        self._ticks: int | None = None

    def update(self, key: str, reading: Reading, scale: float = 1.0, max_rate: float | None = None) -> Rate:
        prev = self._last.get(key)
        self._last[key] = reading
        if prev is None:
            return Rate(None, Unknown.FIRST)
        clocks = self._clocks
        if clocks is None or clocks[0] is not prev.clock or clocks[1] is not reading.clock:
            self._clocks = (prev.clock, reading.clock)
            self._ticks = elapsed_ticks(prev.clock, reading.clock)
        return rate(prev, reading, scale, max_rate, self._ticks)

    def readings(self) -> dict[str, Reading]:
        """The last reading of each counter, to keep across a restart (`restore`)."""
        return dict(self._last)

    def restore(self, readings: Mapping[str, Reading]) -> None:
        self._last.update(readings)

    def forget(self, keep: set[str]) -> None:
        """Drop counters no longer polled (removed interfaces), so memory follows the agent."""
        for key in self._last.keys() - keep:
            del self._last[key]

    def __len__(self) -> int:
        return len(self._last)


class CounterRow:
    """The counters of one interface read in one poll, kept until the next: `row_rates` turns two into rates.

    `values[i]` is None when the agent gave no counter there; `bits[i]` is its width.
    The poller's hot path: one object per interface and poll instead of a Reading
    and a Rate per counter.
    """

    __slots__ = ("bits", "clock", "marker", "values")

    def __init__(self, clock: AgentClock, values: list[int | None], bits: list[int], marker: object = None) -> None:
        self.clock = clock
        self.values = values
        self.bits = bits
        self.marker = marker


def _all_unknown(prev: CounterRow | None, cur: CounterRow, ticks: int | None, reasons: dict[Unknown, int]) -> None:
    """Count the reasons of a row whose counters are all unknown, counter by counter as `rate` would:
    no previous value (first), marker or width change (discontinuity), then restart or no elapsed time."""
    values = cur.values
    if prev is None:
        known = len(values) - values.count(None)
        if known:
            reasons[Unknown.FIRST] = reasons.get(Unknown.FIRST, 0) + known
        return
    whole = Unknown.RESTART if ticks is None else Unknown.NO_TIME
    same_marker = prev.marker == cur.marker
    for value, before, old_bits, bits in zip(values, prev.values, prev.bits, cur.bits, strict=True):
        if value is None:
            continue
        if before is None:
            reason = Unknown.FIRST
        elif not same_marker or old_bits != bits:
            reason = Unknown.DISCONTINUITY
        else:
            reason = whole
        reasons[reason] = reasons.get(reason, 0) + 1


def _usual_rates(values: Sequence[int | None], old: Sequence[int | None], ticks: int, scales: Sequence[float],
                 limits: Sequence[float | None], reasons: dict[Unknown, int]) -> list[float | None] | None:
    """`row_rates` of the usual row, every counter read both times with the same width: the same arithmetic
    in a few C-level passes instead of a Python loop; None when a counter went back (a wrap or a reset)."""
    deltas = list(map(sub, values, old))
    if min(deltas) < 0:
        return None
    rates = [d * s * TICKS_PER_SECOND / ticks for d, s in zip(deltas, scales, strict=True)]
    out = cast("list[float | None]", rates)  # the same list: each rate is read before it may become None
    for i, limit in enumerate(limits):
        if limit is not None and limit > 0 and rates[i] > limit:
            out[i] = None
            reasons[Unknown.OVER_SPEED] = reasons.get(Unknown.OVER_SPEED, 0) + 1
    return out


def row_rates(prev: CounterRow | None, cur: CounterRow, ticks: int | None, scales: Sequence[float],
              limits: Sequence[float | None], reasons: dict[Unknown, int]) -> list[float | None]:
    """`rate` for every counter of a row at once, with the same rules in the same order.

    `ticks` is `elapsed_ticks(prev.clock, cur.clock)`; each unknown value (other than a
    counter missing from `cur`) adds one to `reasons` under its reason.
    """
    values = cur.values
    n = len(values)
    if prev is None or ticks is None or ticks == 0 or prev.marker != cur.marker:
        _all_unknown(prev, cur, ticks, reasons)
        return [None] * n
    old, old_bits, bits = prev.values, prev.bits, cur.bits
    if old_bits == bits and None not in values and None not in old:
        usual = _usual_rates(values, old, ticks, scales, limits, reasons)
        if usual is not None:
            return usual
    out: list[float | None] = [None] * n
    for i in range(n):
        value = values[i]
        if value is None:
            continue
        before = old[i]
        reason: Unknown | None = None
        if before is None:
            reason = Unknown.FIRST
        elif old_bits[i] != bits[i]:
            reason = Unknown.DISCONTINUITY
        else:
            delta = value - before
            increase = delta if delta >= 0 else counter_delta(before, value, bits[i])  # only a wrap pays the call
            if increase is None:
                reason = Unknown.RESET
            else:
                r = increase * scales[i] * TICKS_PER_SECOND / ticks
                limit = limits[i]
                if limit is not None and limit > 0 and r > limit:
                    reason = Unknown.OVER_SPEED
                else:
                    out[i] = r
                    continue
        reasons[reason] = reasons.get(reason, 0) + 1
    return out
