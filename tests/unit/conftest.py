"""A generated access log and its independent count, shared by the web-log analysis and mepctl weblog tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.analysis.weblog.reference import Reference, reference_count, write_access_log


@pytest.fixture(scope="session")
def access_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_access_log(tmp_path_factory.mktemp("weblog") / "access.log")


@pytest.fixture(scope="session")
def reference(access_log: Path) -> Reference:
    return reference_count(access_log)
