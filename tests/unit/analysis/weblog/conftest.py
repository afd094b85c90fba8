"""The one-pass analysis of the shared generated access log (tests/unit/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mepd.analysis.weblog.aggregate import Aggregate
from mepd.analysis.weblog.scan import analyze_file
from tests.unit.analysis.weblog.reference import SITE


@pytest.fixture(scope="session")
def analysed(access_log: Path) -> Aggregate:
    return analyze_file(str(access_log), "combined", SITE, workers=1)
