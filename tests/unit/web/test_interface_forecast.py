"""The interface page's forecast line: when each direction's trend reaches 80 % of the speed."""

from __future__ import annotations

from mepd.analysis.forecast import Forecast
from mepd.web.pages import crossing_text

BASE = "snmp.sw1.eth0"


def test_the_interface_page_tells_each_directionscrossing_text() -> None:
    assert crossing_text(Forecast(f"{BASE}.in_bps", 8e8, 5e8, 1e7, 0.9, 1_800_000_000.0)) == (
        "in reaches 800.0 Mb/s on 2027-01-15")
    assert crossing_text(Forecast(f"{BASE}.out_bps", 8e8, 9e8, 1e7, 0.9, 1.0)) == "out reaches 800.0 Mb/s now"
    assert crossing_text(Forecast(f"{BASE}.out_bps", 8e8, 1e8, 0.0, 0.1, None)) == (
        "out reaches 800.0 Mb/s not within a year")
