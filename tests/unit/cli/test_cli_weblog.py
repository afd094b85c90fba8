"""`mepctl weblog analyze` (analyze_main): outputs, errors, and HTML that escapes what the log holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mepd.cli.weblog import analyze_main
from tests.unit.analysis.weblog.reference import Reference


def test_analyze_main_outputs(access_log: Path, reference: Reference) -> None:
    out: list[str] = []
    assert analyze_main([str(access_log), "--json", "--site-host", "www.example.com", "--top", "3"],
                        out=out.append) == 0
    report = json.loads(out[0])
    assert report["summary"]["requests"] == reference.requests
    assert len(report["top"]["client"]["rows"]) == 3
    out.clear()
    assert analyze_main([str(access_log), "--html", "--utc"], out=out.append) == 0
    page = out[0]
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") >= 5
    assert "<script" not in page
    assert f"{reference.requests:,}" in page
    out.clear()
    assert analyze_main([str(access_log)], out=out.append) == 0
    assert f"requests        {reference.requests}" in out[0]


def test_analyze_main_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert analyze_main([str(tmp_path / "missing.log")]) == 1
    assert "missing.log" in capsys.readouterr().err
    assert analyze_main(["--format", "xml", "f"]) == 2
    assert analyze_main(["f", "--top", "0"]) == 2


def test_html_escapes_what_the_log_holds(tmp_path: Path) -> None:
    log = tmp_path / "evil.log"
    log.write_text('1.2.3.4 - - [01/Jan/2024:10:00:00 +0000] "GET /<script>alert(1)</script> HTTP/1.1" 404 1 '
                   '"https://e.example/<b>" "<img src=x onerror=alert(1)>"\n')
    out: list[str] = []
    assert analyze_main([str(log), "--html"], out=out.append) == 0
    assert "<script>" not in out[0]
    assert "&lt;script&gt;" in out[0]
    assert "<img" not in out[0]
