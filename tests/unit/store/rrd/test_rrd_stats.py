"""rrdtool's own figures of a stored series (`RrdStore.stats`): equal to those computed from the rows."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mepd.model import Sample
from mepd.store.rrd.store import Layouts, RrdStore, layout

T0 = 1_800_000_000 - 1_800_000_000 % 86400  # midnight, a multiple of every archive's resolution
STEP = 300


def percentile(values: list[float], p: float) -> float:
    """rrdtool's PERCENT rank (rrd_vdef.c): the sorted values' element round(p/100 x (n - 1))."""
    ranked = sorted(values)
    return ranked[round(p / 100 * (len(ranked) - 1))]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[RrdStore]:
    s = RrdStore(str(tmp_path / "rrd"), layouts=Layouts(layout(STEP)))
    yield s
    await s.close()


async def write_series(store: RrdStore, key: str, values: list[float | None], start: int = T0) -> None:
    """One sample a step, at explicit times from `start` + STEP."""
    samples = [Sample(key, start + (i + 1) * STEP, v) for i, v in enumerate(values)]
    for i in range(0, len(samples), 2000):
        await store.write(samples[i:i + 2000])


async def test_a_known_series_gives_its_figures(store: RrdStore) -> None:
    rng = random.Random(7)
    values: list[float | None] = [rng.uniform(0, 1e6) for _ in range(288)]
    values[10] = values[11] = None  # a gap: unknown rows are left out of every figure
    await write_series(store, "snmp.t.eth0.in_bps", values)
    stats = await store.stats("snmp.t.eth0.in_bps", T0, T0 + 288 * STEP)
    # The file is made a second before the first sample, which so covers too little of its row to count.
    known = [v for v in values[1:] if v is not None]
    assert (stats["step"], stats["rows"], stats["known"]) == (STEP, 288, 285)
    assert stats["average"] == pytest.approx(sum(known) / len(known))
    assert stats["maximum"] == pytest.approx(max(known))
    assert stats["minimum"] == pytest.approx(min(known))
    assert stats["percentile"] == pytest.approx(percentile(known, 95))
    assert stats["total"] == pytest.approx(sum(known) * STEP)


async def test_over_a_month_the_figures_are_those_of_the_rows_fetched(store: RrdStore) -> None:
    rng = random.Random(3)
    days = 35
    await write_series(store, "snmp.t.eth0.in_bps", [rng.uniform(0, 100) for _ in range(days * 288)])
    since, until = T0 + 2 * 86400, T0 + 33 * 86400
    stats = await store.stats("snmp.t.eth0.in_bps", since, until, 95)
    fetched = await store.fetch("snmp.t.eth0.in_bps", since, until)
    points = [(ts, v) for ts, v in fetched["points"] if ts <= until]  # type: ignore[attr-defined]
    rows = [v for _, v in points if v is not None]
    assert stats["step"] == fetched["step"] == 7200  # the 2-hour archive: the finest that spans the month
    assert stats["rows"] == len(points)
    assert stats["known"] == len(rows)
    assert stats["average"] == pytest.approx(sum(rows) / len(rows))
    assert stats["maximum"] == pytest.approx(max(rows))
    assert stats["percentile"] == pytest.approx(percentile(rows, 95))
    assert stats["total"] == pytest.approx(sum(rows) * 7200)


async def test_a_linear_series_gives_its_line(store: RrdStore) -> None:
    await write_series(store, "host.h.fs.root.used_pct", [10 + 0.01 * i for i in range(288)])
    stats = await store.stats("host.h.fs.root.used_pct", T0 + STEP, T0 + 288 * STEP)  # from the second row
    assert stats["slope"] == pytest.approx(0.01)  # per row
    assert stats["intercept"] == pytest.approx(10.01)  # the line at the first row (its second sample)
    assert stats["correlation"] == pytest.approx(1.0)
