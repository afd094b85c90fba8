"""A generated access log shared by the web-log tests, its independent count, and its analysis."""

from __future__ import annotations

from pathlib import Path

import pytest

from mepd.analysis.weblog.aggregate import Aggregate
from mepd.analysis.weblog.scan import analyze_file
from tests.unit.analysis.weblog.reference import SITE, Reference, reference_count, write_access_log


@pytest.fixture(scope="session")
def access_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_access_log(tmp_path_factory.mktemp("weblog") / "access.log")


@pytest.fixture(scope="session")
def reference(access_log: Path) -> Reference:
    return reference_count(access_log)


@pytest.fixture(scope="session")
def analysed(access_log: Path) -> Aggregate:
    return analyze_file(str(access_log), "combined", SITE, workers=1)
