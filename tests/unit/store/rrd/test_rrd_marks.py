"""Events marked on a graph: VRULE arguments with fixed, escaped legends, and a graph that shows them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mepd.model import Sample
from mepd.store.rrd.marks import KINDS, mark_args, rrd_escape
from mepd.store.rrd.store import Layouts, RrdStore, layout

T0 = 1_800_000_000
KEYS = ["snmp.t.eth0.in_bps", "snmp.t.eth0.out_bps"]


def test_rrd_escape_escapes_colons_and_backslashes() -> None:
    assert rrd_escape("a:b\\c") == "a\\:b\\\\c"


def test_one_legend_per_kind_in_time_order_and_marks_outside_the_range_left_out() -> None:
    marks = [(T0 + 30.7, "fired"), (T0 + 10, "log-down"), (T0 + 20, "log-down"), (T0 - 1, "log-up")]
    assert mark_args(marks, T0, T0 + 60) == [
        f"VRULE:{T0 + 10}{KINDS['log-down'].colour}:link down (log)",
        f"VRULE:{T0 + 20}{KINDS['log-down'].colour}",
        f"VRULE:{T0 + 30}{KINDS['fired'].colour}:incident fired",
    ]


def test_an_unknown_kind_is_refused_so_no_text_of_an_event_reaches_rrdtool() -> None:
    with pytest.raises(ValueError, match="no mark kind"):
        mark_args([(T0, "link down: Gi0/1:evil\\")], T0, T0 + 60)


def test_a_legend_with_a_colon_is_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(KINDS, "log", KINDS["log"].__class__("device: log", "#808080"))
    assert mark_args([(T0, "log")], T0, T0) == [f"VRULE:{T0}#808080:device\\: log"]


def test_every_kind_has_a_distinct_colour() -> None:
    assert len({k.colour for k in KINDS.values()}) == len(KINDS)


def svg_stroke(colour: str) -> bytes:
    """How rrdtool's SVG (cairo) writes a line of `colour` (#RRGGBB): its text is drawn as paths, not text."""
    parts = [f"{int(colour[i:i + 2], 16) / 255 * 100:f}".rstrip("0").rstrip(".") for i in (1, 3, 5)]
    return f"stroke:rgb({parts[0]}%,{parts[1]}%,{parts[2]}%)".encode()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[RrdStore]:
    s = RrdStore(str(tmp_path / "rrd"), layouts=Layouts(layout(300)))
    await s.write([Sample(k, T0 - 86400 + 300 * i, float(i)) for i in range(1, 288) for k in KEYS])
    yield s
    await s.close()


async def test_a_graph_with_marks_shows_them_and_differs_from_the_same_graph_without(store: RrdStore) -> None:
    marks = ((T0 - 3600.0, "log-down"), (T0 - 1800.0, "fired"))
    plain = await store.graph(KEYS, "day", "svg", end=T0)
    marked = await store.graph(KEYS, "day", "svg", end=T0, marks=marks)
    assert marked != plain
    for kind in ("log-down", "fired"):
        assert svg_stroke(KINDS[kind].colour) in marked
        assert svg_stroke(KINDS[kind].colour) not in plain
    png = await store.graph(KEYS, "day", "png", end=T0)
    assert png == await store.graph(KEYS, "day", "png", end=T0)  # rrdtool draws the same PNG twice
    assert await store.graph(KEYS, "day", "png", end=T0, marks=marks) != png
