"""Holt-Winters anomaly detection by rrdtool: the archives an anomaly rule gives a key's file (new or converted
with its history), the FAILURES rows the store reports after each write, and the band its graphs draw.

A daily-like season of 4 hours at a 60 s step keeps the series short; the logic is the one of a real day."""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mepd.config.syntax import compile_glob
from mepd.model import Sample
from mepd.store.rrd.files import LEARN_SEASONS, HoltWinters
from mepd.store.rrd.store import Layouts, RrdStore, layout

STEP = 60
SEASON = 240  # rows: 4 hours
T0 = 1_700_000_000  # not on a season boundary: rrdtool then flags the third season's start while it learns
DAYS = 12
LAYOUT = layout(STEP, [(0.0, DAYS * SEASON * STEP)])


def watched(pattern: str = "m.*") -> Layouts:
    return Layouts(LAYOUT, anomalies=[(compile_glob(pattern), HoltWinters(SEASON * STEP))])


def normal(i: int, rng: random.Random, shift: int = 0) -> float:
    return 100 + 50 * math.sin(2 * math.pi * (i + shift) / SEASON) + rng.gauss(0, 3)


SPIKE = range(6 * SEASON + 100, 6 * SEASON + 112)  # 12 minutes at +150
DROP = range(8 * SEASON + 50, 8 * SEASON + 80)  # half an hour at 0
SHIFT = 10 * SEASON + 30  # from here on the season runs a third early


def series(n: int = DAYS * SEASON, *, anomalies: bool = True) -> list[float]:
    rng = random.Random(1)
    out = []
    for i in range(1, n + 1):
        v = normal(i, rng)
        if anomalies and i in SPIKE:
            v += 150
        elif anomalies and i in DROP:
            v = 0.0
        elif anomalies and i >= SHIFT:
            v = normal(i, rng, SEASON // 3)
        out.append(v)
    return out


def at(i: int) -> float:
    return float(T0 + i * STEP)


async def write(store: RrdStore, key: str, values: list[float], first: int = 1, batch: int = 50
                ) -> list[tuple[str, float, float]]:
    """Samples one a step from row `first`, at explicit times, in batches as the sink writes them; the
    FAILURES rows reported."""
    failures: list[tuple[str, float, float]] = []
    samples = [Sample(key, at(first + i), v) for i, v in enumerate(values)]
    for k in range(0, len(samples), batch):
        failures += (await store.write(samples[k:k + batch])).failures
    return failures


def runs(failures: list[tuple[str, float, float]]) -> list[tuple[int, int]]:
    """The abnormal stretches, as (first row, last row)."""
    out: list[tuple[int, int]] = []
    for _key, ts, value in failures:
        row = round((ts - T0) / STEP)
        if value and out and row - out[-1][1] <= 1:
            out[-1] = (out[-1][0], row)
        elif value:
            out.append((row, row))
    return out


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[RrdStore]:
    s = RrdStore(str(tmp_path / "rrd"), layouts=watched())
    yield s
    await s.close()


def near(stretch: tuple[int, int], start: int) -> bool:
    """A stretch that begins within the failure window (9 rows) after `start`."""
    return start <= stretch[0] <= start + 9


async def test_a_spike_a_drop_and_a_shifted_season_are_found_and_normal_variation_is_not(store: RrdStore) -> None:
    failures = await write(store, "m.traffic", series())
    assert {key for key, _, _ in failures} == {"anomaly.m.traffic"}
    rows = [round((ts - T0) / STEP) for _, ts, _ in failures]
    assert rows == sorted(set(rows)), "each row reported once, in order"
    assert rows[0] >= LEARN_SEASONS * SEASON, "nothing while the band is learned"
    assert rows[-1] == DAYS * SEASON
    found = runs(failures)
    spike = [r for r in found if near(r, SPIKE.start)]
    drop = [r for r in found if near(r, DROP.start)]
    shift = [r for r in found if SHIFT <= r[0] <= SHIFT + SEASON // 2]
    assert spike, found
    assert drop, found
    assert shift, found
    assert all(r[0] >= SPIKE.start for r in found), f"normal variation found abnormal: {found}"


async def test_the_same_series_without_anomalies_is_never_abnormal(store: RrdStore) -> None:
    failures = await write(store, "m.traffic", series(anomalies=False))
    assert failures
    assert not runs(failures)


async def test_an_existing_file_is_converted_and_keeps_its_history(tmp_path: Path) -> None:
    root = str(tmp_path / "rrd")
    values = series()
    old = RrdStore(root, layouts=Layouts(LAYOUT))
    assert not await write(old, "m.traffic", values[:2 * SEASON])
    before = (await old.fetch("m.traffic", at(1), at(2 * SEASON - 1)))["points"]
    await old.close()
    new = RrdStore(root, layouts=watched())
    try:
        failures = await write(new, "m.traffic", values[2 * SEASON:], first=2 * SEASON + 1)
        assert (await new.fetch("m.traffic", at(1), at(2 * SEASON - 1)))["points"] == before
        assert len(before) == 2 * SEASON - 1  # type: ignore[arg-type]
        info = await new.info("m.traffic")
        assert {v for k, v in info.items() if k.endswith(".cf")} >= {
            "HWPREDICT", "SEASONAL", "DEVSEASONAL", "DEVPREDICT", "FAILURES"}
        assert min(ts for _, ts, _ in failures) >= at((2 + LEARN_SEASONS) * SEASON), "learned from the conversion"
        assert any(near(r, DROP.start) for r in runs(failures))
    finally:
        await new.close()


async def test_the_rule_threshold_is_set_in_the_file(tmp_path: Path) -> None:
    s = RrdStore(str(tmp_path / "rrd"), layouts=Layouts(LAYOUT, anomalies=[
        (compile_glob("m.*"), HoltWinters(SEASON * STEP, failures=3, window=5))]))
    try:
        await write(s, "m.traffic", [1.0, 2.0])
        info = await s.info("m.traffic")
        fails = next(k[:-3] for k, v in info.items() if k.endswith(".cf") and v == "FAILURES")
        assert (info[f"{fails}.failure_threshold"], info[f"{fails}.window_length"]) == (3, 5)
    finally:
        await s.close()


async def test_derived_keys_and_unmatched_keys_get_no_archives(store: RrdStore) -> None:
    failures = await write(store, "other.traffic", [1.0, 2.0, 3.0])
    failures += await write(store, "anomaly.m.traffic", [0.0, 1.0])
    assert not failures
    for key in ("other.traffic", "anomaly.m.traffic"):
        assert "HWPREDICT" not in (await store.info(key)).values()


async def test_graphs_draw_the_band_and_the_failures(store: RrdStore) -> None:
    values = series()
    await write(store, "m.traffic", values, batch=2000)
    await write(store, "n.traffic", values, batch=2000)  # the same data, not watched
    end = at(DAYS * SEASON)
    svg = (await store.graph(["m.traffic"], "day", "svg", "t", end)).decode()
    plain = (await store.graph(["n.traffic"], "day", "svg", "t", end)).decode()
    # rrdtool's SVG draws text as glyph paths: the band is told by its colour (#FF0000) and the failures
    # by theirs (#FFFF00, half transparent)
    band, ticks = "stroke:rgb(100%,0%,0%)", "stroke:rgb(100%,100%,0%);stroke-opacity:0.5"
    assert svg.count(band) == 2  # its upper and lower lines
    assert svg.count(ticks) > 10  # the last day holds the shifted season: failures
    assert band not in plain
    assert ticks not in plain
    png = await store.graph(["m.traffic"], "day", "png", "t", end)
    assert png != await store.graph(["n.traffic"], "day", "png", "t", end)
