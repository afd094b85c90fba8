"""The forecast graph (`RrdStore.trend_graph`): the least-squares line of a known trend drawn on ahead, the
capacity, and the crossing where the forecast puts it, checked by rrdtool itself on the graph's definition."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import rrdtool

from mepd.analysis.forecast import Forecast, forecast, graph_end
from mepd.model import Sample
from mepd.store.rrd.store import Layouts, RrdStore, layout
from mepd.store.rrd.worker import _Owner

T0 = 1_800_000_000 - 1_800_000_000 % 86400
STEP = 300
DAY = 86400
IN, OUT = "snmp.t.eth0.in_bps", "snmp.t.eth0.out_bps"
CAPACITY = 800e6  # 80 % of 1 Gb/s
NOW = T0 + 2 * DAY


def inbound(ts: float) -> float:
    """100 Mb/s at T0, 10 Mb/s more a day: 800 Mb/s at T0 + 70 days."""
    return 100e6 + 10e6 * (ts - T0) / DAY


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[RrdStore]:
    s = RrdStore(str(tmp_path / "rrd"), layouts=Layouts(layout(STEP)))
    await s.write([Sample(k, ts, v) for ts in range(T0 + STEP, NOW + 1, STEP)
                   for k, v in ((IN, inbound(ts)), (OUT, 50e6))])
    yield s
    await s.close()


async def forecasts(store: RrdStore) -> list[Forecast]:
    return [forecast(k, await store.stats(k, NOW - DAY, NOW), CAPACITY, NOW) for k in (IN, OUT)]


def definition(store: RrdStore, found: list[Forecast]) -> list[str]:
    """The graph's arguments, as the RRD worker makes them (an owner of the files in this process)."""
    lines = [(NOW, f.now_value, f.slope_per_day / 86400) if f.now_value is not None and f.slope_per_day is not None
             else None for f in found]
    owner = _Owner(store.root, [], Layouts(layout(STEP)))
    return owner.trend_args([IN, OUT], lines, NOW - DAY, graph_end(found, NOW, DAY), (CAPACITY, "80 % of 1 Gb/s"),
                            [(f.crossing, f"{f.key} crossing") for f in found], "png", "trend", (700, 270))


async def test_the_line_drawn_reaches_the_capacity_on_the_forecasts_date(store: RrdStore) -> None:
    found = await forecasts(store)
    crossing = found[0].crossing
    assert crossing is not None
    assert abs(crossing - (T0 + 70 * DAY)) <= STEP
    assert found[1].crossing is None  # flat
    args = definition(store, found)
    assert f"VRULE:{int(crossing)}#CC0000:{IN} crossing\\n" in args
    assert f"COMMENT:{OUT} crossing\\n" in args  # no date to draw: the text alone
    assert "HRULE:800000000#FF0000:80 % of 1 Gb/s\\n" in args
    assert any(a.startswith("CDEF:t0=a0,POP,TIME,") for a in args)
    assert any(a.startswith("CDEF:t1=a1,POP,TIME,") for a in args)
    # rrdtool itself finds where the line it draws first reaches the capacity; the flat one stays at its level.
    out = rrdtool.graphv("-", *args, f"CDEF:x=t0,{CAPACITY},GE,TIME,UNKN,IF", "VDEF:first=x,FIRST",
                         "PRINT:first:%s:strftime", "CDEF:flat=t1",
                         "VDEF:flat_max=flat,MAXIMUM", "PRINT:flat_max:%.6le")
    # FIRST tells the start of the first row at or above: within the row that holds the crossing, rows being
    # a pixel wide at least and less than two (rrdtool's archive step a whole number of times)
    pixel = (out["graph_end"] - out["graph_start"]) / out["graph_width"]
    assert 0 <= crossing - float(out["print[0]"]) < 2 * pixel
    assert out["graph_start"] == NOW - DAY
    assert out["graph_end"] >= crossing  # drawn on past the crossing
    assert float(out["print[1]"]) == pytest.approx(50e6)
    legends = [v.strip() for k, v in out.items() if k.startswith("legend[")]
    assert {"in_bps", "in_bps trend", "out_bps", "out_bps trend", "80 % of 1 Gb/s", f"{IN} crossing",
            f"{OUT} crossing"} <= set(legends)


async def test_the_graph_renders_as_png_and_svg(store: RrdStore) -> None:
    found = await forecasts(store)
    lines = [(NOW, f.now_value or 0.0, (f.slope_per_day or 0.0) / 86400) for f in found]
    end = graph_end(found, NOW, DAY)
    crossings = [(f.crossing, f"{f.key} crossing") for f in found]
    png = await store.trend_graph([IN, OUT], lines, NOW - DAY, end, (CAPACITY, "cap"), crossings, "png", "t",
                                  (700, 270))
    assert png.startswith(b"\x89PNG")
    svg = (await store.trend_graph([IN, OUT], lines, NOW - DAY, end, (CAPACITY, "cap"), crossings, "svg", "t",
                                   (700, 270))).decode()
    assert svg.lstrip().startswith("<?xml")
    assert "<svg" in svg
    # rrdtool's SVG draws text as glyphs: the capacity and the crossing are told by their colours
    assert "stroke:rgb(100%,0%,0%)" in svg  # the capacity rule
    assert "stroke:rgb(80%,0%,0%)" in svg  # the crossing
    none = [(f.crossing, "") for f in found if f.crossing is None]
    plain = (await store.trend_graph([OUT], lines[1:], NOW - DAY, NOW + DAY, (CAPACITY, "cap"), none, "svg", "t",
                                     (700, 270))).decode()
    assert "stroke:rgb(80%,0%,0%)" not in plain  # nothing crosses: no vertical rule


async def test_a_graph_without_crossing_ends_a_year_ahead(store: RrdStore) -> None:
    found = await forecasts(store)
    assert graph_end(found[1:], NOW, DAY) == NOW + 365 * DAY
    crossing = found[0].crossing
    assert crossing is not None
    assert graph_end(found, NOW, DAY) == pytest.approx(NOW + 1.1 * (crossing - NOW))
