"""The report dict built from an Aggregate, against an independent count of the same file."""

from __future__ import annotations

import json
from datetime import UTC, timedelta, timezone
from pathlib import Path

from mepd.analysis.weblog.aggregate import Aggregate
from mepd.analysis.weblog.render import render_text
from mepd.analysis.weblog.report import report_from_aggregate
from mepd.analysis.weblog.scan import analyze_file
from tests.unit.analysis.weblog.reference import SITE, Reference


def test_report_sections(analysed: Aggregate, reference: Reference) -> None:
    tz = timezone(timedelta(hours=1))
    report = report_from_aggregate(analysed, "test", top=5, tz=tz)
    summary = report["summary"]
    assert isinstance(summary, dict)
    ok = sum(n for code, n in reference.status.items() if code[0] in "23")
    failed = sum(n for code, n in reference.status.items() if code[0] in "45")
    assert (summary["requests"], summary["successful"], summary["failed"]) == (reference.requests, ok, failed)
    series = report["series"]
    assert isinstance(series, dict)
    assert {d["date"]: d["requests"] for d in series["daily"]} == reference.daily
    assert [d["requests"] for d in series["day_of_week"]] == [reference.weekday[i] for i in range(7)]
    assert sum(h["requests"] for h in series["hour_of_day"]) == reference.requests
    top = report["top"]
    assert isinstance(top, dict)
    paths = top["path"]
    assert [r["requests"] for r in paths["rows"]] == [n for _, n in reference.paths.most_common(5)]
    assert paths["others"]["requests"] == reference.requests - sum(r["requests"] for r in paths["rows"])
    by_bytes = top["path_by_bytes"]
    assert [r["bytes"] for r in by_bytes["rows"]] == [n for _, n in reference.path_bytes.most_common(5)]
    assert analysed.log_tz() == tz
    json.dumps(report)


def test_folding_is_reported(access_log: Path) -> None:
    agg = analyze_file(str(access_log), "combined", SITE, keep=20, workers=1)
    report = report_from_aggregate(agg, "x", top=5)
    top = report["top"]
    assert isinstance(top, dict)
    assert not top["path"]["exact"]
    assert top["path"]["max_error"]["requests"] > 0
    summary = report["summary"]
    assert isinstance(summary, dict)
    assert summary["clients_exact"] is False
    exact = analyze_file(str(access_log), "combined", SITE, workers=1).clients
    assert abs(summary["clients"] - exact) <= 0.05 * exact


def test_empty_file(tmp_path: Path) -> None:
    log = tmp_path / "empty.log"
    log.write_text("")
    report = report_from_aggregate(analyze_file(str(log)), "empty", tz=UTC)
    summary = report["summary"]
    assert isinstance(summary, dict)
    assert (summary["requests"], summary["first"], summary["clients"]) == (0, None, 0)
    assert "<svg" not in render_text(report)
