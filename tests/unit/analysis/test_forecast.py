"""Forecasts from rrdtool's least-squares line of a stored series written with explicit times."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mepd.analysis.forecast import forecast, soonest_first
from mepd.model import Sample, rfc3339
from mepd.store.rrd.store import Layouts, RrdStore, layout

T0 = 1_800_000_000 - 1_800_000_000 % 86400
STEP = 300
ROWS = 576  # two days


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[RrdStore]:
    s = RrdStore(str(tmp_path / "rrd"), layouts=Layouts(layout(STEP)))
    yield s
    await s.close()


async def series(store: RrdStore, key: str, value: float, per_row: float) -> None:
    await store.write([Sample(key, T0 + i * STEP, value + per_row * i) for i in range(ROWS + 1)])


async def test_a_growing_series_crosses_when_its_line_does(store: RrdStore) -> None:
    # 10 % plus 0.01 % a poll: 90 % at poll 8000, 27.8 days after T0.
    await series(store, "host.h.fs.root.used_pct", 10.0, 0.01)
    end = T0 + ROWS * STEP
    f = forecast("host.h.fs.root.used_pct", await store.stats("host.h.fs.root.used_pct", end - 86400, end), 90.0,
                 end)
    assert f.crossing is not None
    assert abs(f.crossing - (T0 + 8000 * STEP)) <= STEP, rfc3339(f.crossing)
    assert f.slope_per_day == pytest.approx(0.01 * 288)
    assert f.correlation == pytest.approx(1.0)
    assert f.now_value == pytest.approx(10.0 + 0.01 * ROWS)
    assert f.to_json()["already"] is False


async def test_a_flat_series_never_crosses(store: RrdStore) -> None:
    await series(store, "host.h.fs.root.used_pct", 50.0, 0.0)
    end = T0 + ROWS * STEP
    f = forecast("k", await store.stats("host.h.fs.root.used_pct", end - 86400, end), 90.0, end)
    assert f.crossing is None
    assert f.to_json()["crossing"] is None


async def test_a_slow_growth_is_not_within_a_year_and_one_above_is_now(store: RrdStore) -> None:
    await series(store, "a.slow", 10.0, 1e-5)  # 0.003 a day: 90 in 73 years
    await series(store, "a.full", 95.0, 0.001)
    end = T0 + ROWS * STEP
    slow = forecast("a.slow", await store.stats("a.slow", end - 86400, end), 90.0, end)
    full = forecast("a.full", await store.stats("a.full", end - 86400, end), 90.0, end)
    assert slow.crossing is None
    assert full.crossing == end
    assert full.already
    assert [f.key for f in soonest_first([slow, full])] == ["a.full", "a.slow"]
