"""The one-shot file scan: parallel byte ranges, gzip and stdin give the counts of one pass."""

from __future__ import annotations

import gzip
import itertools
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mepd.analysis.weblog import scan
from mepd.analysis.weblog.aggregate import Aggregate
from mepd.analysis.weblog.scan import _blocks, analyze_file
from tests.unit.analysis.weblog.reference import SITE


def test_parallel_ranges_agree_with_one_pass(access_log: Path, analysed: Aggregate,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(scan, "BLOCK", 4096)
    parallel = analyze_file(str(access_log), "combined", SITE, workers=3)
    assert parallel.series == analysed.series
    assert parallel.rejected == analysed.rejected
    for dim, table in analysed.tables.items():
        assert parallel.tables[dim].rows == table.rows, dim


@settings(max_examples=30)
@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=6))
def test_byte_ranges_split_lines_exactly_once(tmp_path_factory: pytest.TempPathFactory, cuts: list[int]) -> None:
    path = tmp_path_factory.mktemp("ranges") / "f"
    text = "".join(f"line {i} " + "x" * (i % 37) + "\n" for i in range(400)) + "no newline at end"
    path.write_text(text)
    size = path.stat().st_size
    bounds = sorted({0, size, *(c % size for c in cuts)})
    got: list[str] = []
    for start, end in itertools.pairwise(bounds):
        for block in _blocks(str(path), start, end):
            got.extend(line for line in block if line)
    assert got == text.split("\n")


def test_gzip_and_stdin_paths(access_log: Path, analysed: Aggregate, tmp_path: Path) -> None:
    gz = tmp_path / "access.log.gz"
    with access_log.open("rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    packed = analyze_file(str(gz), "combined", SITE)
    assert packed.series == analysed.series
    assert packed.tables["path"].rows == analysed.tables["path"].rows
