"""An SNMP target's counters kept across a restart: what is read back, and what is not used."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mepd.analysis.counters import AgentClock, CounterRow, RateTracker, Reading, row_rates
from mepd.sources.snmp import state

T0 = 1_800_000_000.0
AGENT = "192.0.2.1:161"


def rows_at(clock: AgentClock) -> dict[str, CounterRow]:
    return {
        "eth0": CounterRow(clock, [10**12, 5, None], [64, 32, 0], (1, 0)),
        "eth1": CounterRow(clock, [7, 8, 9], [64, 64, 64], (2, 300)),
    }


def test_rows_come_back_as_saved(tmp_path: Path) -> None:
    clock = AgentClock(T0, 123_456, 7)
    path = state.path_of(str(tmp_path / "snmp"), "core")
    state.save(path, AGENT, rows_at(clock), {"oid.temp": Reading(clock, 2**40, 64)})
    back, readings = state.load(path, AGENT, interval=300, now=T0 + 320)
    assert readings == {"oid.temp": Reading(clock, 2**40, 64)}
    assert back.keys() == {"eth0", "eth1"}
    assert back["eth0"].clock == clock
    assert (back["eth0"].values, back["eth0"].bits, back["eth0"].marker) == ([10**12, 5, None], [64, 32, 0], (1, 0))
    assert back["eth1"].marker == (2, 300)


def test_saved_rows_give_rates_at_the_first_poll_after_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "core.json")
    clock = AgentClock(T0, 100_000, 7)
    state.save(path, AGENT, rows_at(clock), {"oid.errors": Reading(clock, 1000, 32)})
    rows, readings = state.load(path, AGENT, interval=300, now=T0 + 300)
    later = AgentClock(T0 + 300, 130_000, 7)
    cur = CounterRow(later, [3007, 8, 609], [64, 64, 64], (2, 300))
    assert row_rates(rows["eth1"], cur, 30_000, (8.0, 1.0, 1.0), (None, None, None), {}) == [80.0, 0.0, 2.0]
    tracker = RateTracker()
    tracker.restore(readings)
    assert tracker.update("oid.errors", Reading(later, 1600, 32)).value == 2.0


@pytest.mark.parametrize(("agent", "now"), [
    ("192.0.2.2:161", T0 + 10),   # another agent (host or port changed)
    (AGENT, T0 + 3 * 300 + 1),    # older than three intervals: a 32-bit counter may have wrapped twice
    (AGENT, T0 - 60),             # from the future (the clock was set back): not trusted
])
def test_rows_are_not_used_for_another_agent_or_when_stale(tmp_path: Path, agent: str, now: float) -> None:
    path = str(tmp_path / "core.json")
    state.save(path, AGENT, rows_at(AgentClock(T0, 1, None)), {})
    assert state.load(path, agent, interval=300, now=now) == ({}, {})


def test_no_file_is_no_rows_and_nothing_is_written_for_no_rows(tmp_path: Path) -> None:
    path = str(tmp_path / "core.json")
    state.save(path, AGENT, {}, {})
    assert not Path(path).exists()
    assert state.load(path, AGENT, interval=300) == ({}, {})


def test_a_target_with_custom_oids_only_keeps_them(tmp_path: Path) -> None:
    path = str(tmp_path / "ups.json")
    clock = AgentClock(T0, 5, None)
    state.save(path, AGENT, {}, {"oid.load": Reading(clock, 7, 32)})
    assert state.load(path, AGENT, interval=60, now=T0 + 60) == ({}, {"oid.load": Reading(clock, 7, 32)})


@pytest.mark.parametrize("text", ["", "{", "[]", '{"version": 1}', '{"version": 1, "agent": "192.0.2.1:161", '
                                  '"clock": [1, 2, null], "rows": {"eth0": [[1, 2], [64]]}, "oids": {}}'])
def test_a_damaged_file_is_logged_and_ignored(tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "core.json"
    path.write_text(text)
    with caplog.at_level(logging.WARNING):
        assert state.load(str(path), AGENT, interval=300, now=10.0) == ({}, {})
    assert "ignoring the saved SNMP counters" in caplog.text
