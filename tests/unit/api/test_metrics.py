"""Numbers from rrdtool info, as the metric list and the dashboard read them."""

from __future__ import annotations

from mepd.api.metrics import info_float


def test_info_float_reads_numbers_and_unknown() -> None:
    assert [info_float(v) for v in ("5.5", "U", 1800000000, float("nan"), None, "-nan")] == [
        5.5, None, 1800000000.0, None, None, None]
