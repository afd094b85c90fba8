"""A generated access log shared by the web-log tests (the bench's generator, with oddities)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.weblog.genlog import lines


@pytest.fixture(scope="session")
def access_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("weblog") / "access.log"
    with path.open("w", encoding="utf-8") as f:
        for line in lines(30_000, seed=7, days=3.0, oddities=True):
            f.write(line + "\n")
        f.write("\n")  # a trailing blank line is not an unparsed line
    return path
