"""Counter -> rate: wraps are followed, resets and reboots give unknown, never a spike."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mepd.analysis.counters import (
    TICKS_PER_SECOND,
    UPTIME_MODULUS,
    AgentClock,
    CounterRow,
    Rate,
    RateTracker,
    Reading,
    Unknown,
    counter_delta,
    elapsed_ticks,
    rate,
    row_rates,
)

T0 = 1_800_000_000.0


def clock(seconds: float, uptime: int, boots: int | None = None) -> AgentClock:
    return AgentClock(T0 + seconds, uptime, boots)


def reading(seconds: float, uptime: int, value: int, *, bits: int = 64, marker: object = None,
            boots: int | None = None) -> Reading:
    return Reading(clock(seconds, uptime, boots), value, bits, marker)


def test_delta_without_wrap() -> None:
    assert counter_delta(100, 350, 32) == 250
    assert counter_delta(5, 5, 64) == 0


def test_32bit_wrap_is_followed() -> None:
    assert counter_delta(2**32 - 100, 50, 32) == 150


def test_64bit_wrap_near_the_top_is_followed_but_a_reset_is_not() -> None:
    assert counter_delta(2**64 - 10, 20, 64) == 30
    assert counter_delta(10**12, 5, 64) is None


@given(prev=st.integers(0, 2**32 - 1), inc=st.integers(0, 2**32 - 1))
def test_any_single_32bit_wrap_gives_the_increase(prev: int, inc: int) -> None:
    assert counter_delta(prev, (prev + inc) % 2**32, 32) == inc


@given(prev=st.integers(0, 2**64 - 1), inc=st.integers(0, 2**63))
def test_any_64bit_increase_up_to_half_the_range_is_followed(prev: int, inc: int) -> None:
    assert counter_delta(prev, (prev + inc) % 2**64, 64) == inc


def test_rate_from_agent_ticks_not_wall_clock() -> None:
    # 300 s of agent time between readings taken 0.1 s apart (a replayed agent): the agent's clock wins.
    r = rate(reading(0, 1000, 0), reading(0.1, 1000 + 300 * TICKS_PER_SECOND, 3_000_000), scale=8)
    assert r == Rate(80_000.0)


def test_32bit_wrap_gives_the_right_rate() -> None:
    prev = reading(0, 100_000, 2**32 - 1_000_000, bits=32)
    cur = reading(10, 101_000, 500_000, bits=32)
    assert rate(prev, cur, scale=8) == Rate(1_500_000 * 8 / 10)


def test_reboot_gives_unknown_not_a_spike() -> None:
    prev = reading(0, 5_000_000, 2**32 - 10, bits=32)
    cur = reading(300, 2_000, 1_000, bits=32)  # sysUpTime went back: counters restarted from 0
    assert rate(prev, cur, scale=8) == Rate(None, Unknown.RESTART)


def test_engine_boots_change_is_a_reboot_even_if_uptime_looks_fine() -> None:
    prev = reading(0, 1_000, 500, boots=3)
    cur = reading(10, 2_000, 900, boots=4)
    assert rate(prev, cur).reason is Unknown.RESTART


def test_reboot_hidden_by_a_long_interval_is_seen_from_the_wall_clock() -> None:
    # Up 10 s at the first poll; rebooted; up 100 s at the next poll, 300 s later.
    assert elapsed_ticks(clock(0, 1_000), clock(300, 10_000)) is None


def test_sysuptime_wrap_after_497_days_is_not_a_reboot() -> None:
    prev = clock(0, UPTIME_MODULUS - 100 * TICKS_PER_SECOND)
    cur = clock(300, 200 * TICKS_PER_SECOND)
    assert elapsed_ticks(prev, cur) == 300 * TICKS_PER_SECOND


@given(start=st.integers(0, UPTIME_MODULUS - 1), seconds=st.integers(1, 86400))
def test_consistent_clocks_give_the_elapsed_ticks(start: int, seconds: int) -> None:
    ticks = seconds * TICKS_PER_SECOND
    assert elapsed_ticks(clock(0, start), clock(seconds, (start + ticks) % UPTIME_MODULUS)) == ticks


def test_over_speed_is_unknown() -> None:
    prev, cur = reading(0, 0, 0), reading(1, 100, 200_000_000)
    assert rate(prev, cur, scale=8, max_rate=1e9) == Rate(None, Unknown.OVER_SPEED)
    assert rate(prev, cur, scale=8, max_rate=10e9) == Rate(1.6e9)


def test_no_elapsed_agent_time_is_unknown() -> None:
    assert rate(reading(0, 500, 1), reading(1, 500, 2)).reason is Unknown.NO_TIME


def test_marker_or_width_change_is_a_discontinuity() -> None:
    assert rate(reading(0, 0, 1, marker=(3, 0)), reading(1, 100, 2, marker=(7, 0))).reason is Unknown.DISCONTINUITY
    assert rate(reading(0, 0, 1, bits=32), reading(1, 100, 2, bits=64)).reason is Unknown.DISCONTINUITY


@given(
    prev_value=st.integers(0, 2**64 - 1), cur_value=st.integers(0, 2**64 - 1),
    bits=st.sampled_from([32, 64]), prev_up=st.integers(0, UPTIME_MODULUS - 1),
    cur_up=st.integers(0, UPTIME_MODULUS - 1), wall=st.floats(0, 10**6), max_rate=st.floats(1, 1e12),
)
def test_a_rate_is_never_negative_nor_above_the_speed(
    prev_value: int, cur_value: int, bits: int, prev_up: int, cur_up: int, wall: float, max_rate: float,
) -> None:
    mod = 2**bits
    r = rate(Reading(clock(0, prev_up), prev_value % mod, bits), Reading(clock(wall, cur_up), cur_value % mod, bits),
             scale=8, max_rate=max_rate)
    assert (r.value is None) != (r.reason is None)
    if r.value is not None:
        assert 0 <= r.value <= max_rate


def test_tracker_first_then_rates_and_forgets() -> None:
    t = RateTracker()
    assert t.update("eth0.in", reading(0, 0, 100)) == Rate(None, Unknown.FIRST)
    assert t.update("eth0.in", reading(1, 100, 300)) == Rate(200.0)
    t.update("eth1.in", reading(1, 100, 5))
    t.forget({"eth1.in"})
    assert len(t) == 1
    assert t.update("eth0.in", reading(2, 200, 400)).reason is Unknown.FIRST


slot = st.tuples(st.one_of(st.none(), st.integers(0, 2**64 - 1)), st.sampled_from((32, 64)))


@given(st.lists(st.tuples(slot, slot), min_size=1, max_size=8), st.sampled_from([None, 0, 1, 300, 30_000]),
       st.booleans(), st.booleans(), st.floats(1e3, 1e12))
def test_row_rates_are_rate_for_each_counter(pairs: list[tuple[tuple[int | None, int], tuple[int | None, int]]],
                                             ticks: int | None, first: bool, new_marker: bool, limit: float) -> None:
    """The poller's per-interface `row_rates` gives what `rate` gives counter by counter, and counts the reasons."""
    pairs = [(p, (c[0] if c[0] is None else c[0] % 2 ** c[1], c[1])) for p, c in pairs]
    pairs = [((p[0] if p[0] is None else p[0] % 2 ** p[1], p[1]), c) for p, c in pairs]
    before, after = clock(0, 1000), clock(10, 1000 + (ticks or 0))
    prev = None if first else CounterRow(before, [p[0] for p, _ in pairs], [p[1] for p, _ in pairs], "m")
    cur = CounterRow(after, [c[0] for _, c in pairs], [c[1] for _, c in pairs], "n" if new_marker else "m")
    scales = [8.0 if i % 2 else 1.0 for i in range(len(pairs))]
    limits = [limit if i % 3 == 0 else None for i in range(len(pairs))]
    reasons: dict[Unknown, int] = {}
    got = row_rates(prev, cur, ticks, scales, limits, reasons)
    want: list[float | None] = []
    counted: dict[Unknown, int] = {}
    for i, ((pv, pb), (cv, cb)) in enumerate(pairs):
        if cv is None:
            want.append(None)
            continue
        if prev is None or pv is None:
            r = Rate(None, Unknown.FIRST)
        else:
            r = rate(Reading(before, pv, pb, prev.marker), Reading(after, cv, cb, cur.marker), scales[i], limits[i],
                     ticks)
        want.append(r.value)
        if r.reason is not None:
            counted[r.reason] = counted.get(r.reason, 0) + 1
    assert got == want
    assert reasons == counted


@given(st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 2**31 - 1), st.sampled_from((32, 64))),
                min_size=1, max_size=8),
       st.integers(1, 100_000), st.floats(1e3, 1e12))
def test_row_rates_of_a_usual_row_are_rate_for_each_counter(counters: list[tuple[int, int, int]], ticks: int,
                                                            limit: float) -> None:
    """The usual row (every counter read twice, none went back) takes a shorter path: the same numbers and
    reasons, above the speed included."""
    before, after = clock(0, 1000), clock(ticks / 100, 1000 + ticks)
    prev = CounterRow(before, [v for v, _, _ in counters], [b for _, _, b in counters], "m")
    cur = CounterRow(after, [v + d for v, d, _ in counters], [b for _, _, b in counters], "m")
    scales = [8.0 if i % 2 else 1.0 for i in range(len(counters))]
    limits = [limit if i % 3 == 0 else None for i in range(len(counters))]
    reasons: dict[Unknown, int] = {}
    got = row_rates(prev, cur, ticks, scales, limits, reasons)
    want = [rate(Reading(before, v, b, "m"), Reading(after, v + d, b, "m"), scales[i], limits[i], ticks)
            for i, (v, d, b) in enumerate(counters)]
    assert got == [r.value for r in want]
    over = sum(r.reason is Unknown.OVER_SPEED for r in want)
    assert reasons == ({Unknown.OVER_SPEED: over} if over else {})
