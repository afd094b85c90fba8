"""The one-shot analyser and a real GoAccess agree on the same generated log."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from bench.weblog.genlog import lines
from mepd.cli.weblog import analyze_main


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    goaccess = shutil.which("goaccess")
    assert goaccess, "goaccess is not installed (apt-get install goaccess; the Makefile does)"
    tmp = tmp_path_factory.mktemp("goaccess")
    log = tmp / "access.log"
    with log.open("w", encoding="utf-8") as f:
        for line in lines(20_000, seed=11, days=5.0, oddities=True):
            f.write(line + "\n")
    out = tmp / "goaccess.json"
    subprocess.run([goaccess, str(log), "--log-format=COMBINED", "--no-global-config", "-o", str(out)],
                   check=True, capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
    ours: list[str] = []
    assert analyze_main([str(log), "--json", "--top", "50"], out=ours.append) == 0
    return json.loads(out.read_text()), json.loads(ours[0])


def panel(ga: dict[str, Any], name: str) -> dict[str, int]:
    return {item["data"]: item["hits"]["count"] for item in ga[name]["data"]}


def test_totals_agree(compared: tuple[dict[str, Any], dict[str, Any]]) -> None:
    ga, ours = compared
    general, summary = ga["general"], ours["summary"]
    assert general["valid_requests"] == summary["requests"] > 19_000
    assert general["failed_requests"] == summary["unparsed_lines"] > 0
    assert general["bandwidth"] == summary["bytes"]
    assert ga["hosts"]["metadata"]["data"]["total"]["value"] == summary["clients"]
    assert ga["not_found"]["metadata"]["hits"]["total"]["value"] == sum(
        row["requests"] for row in ours["status"]["codes"] if row["key"] == "404")


def test_status_codes_agree(compared: tuple[dict[str, Any], dict[str, Any]]) -> None:
    ga, ours = compared
    theirs = {item["data"][:3]: item["hits"]["count"] for cls in ga["status_codes"]["data"] for item in cls["items"]}
    assert theirs == {row["key"]: row["requests"] for row in ours["status"]["codes"]}


def test_days_and_families_agree(compared: tuple[dict[str, Any], dict[str, Any]]) -> None:
    ga, ours = compared
    days = {d["date"].replace("-", ""): d["requests"] for d in ours["series"]["daily"]}
    assert panel(ga, "visitors") == days
    os_rows = {row["key"]: row["requests"] for row in ours["top"]["os"]["rows"]}
    their_os = panel(ga, "os")
    for family in ("Windows", "iOS", "Android", "Linux", "Chrome OS", "Unknown"):
        assert their_os[family] == os_rows[family], family
    assert their_os["Crawlers"] == os_rows["Robot"]
    assert their_os["Macintosh"] == os_rows["macOS"]
    browsers = {row["key"]: row["requests"] for row in ours["top"]["browser"]["rows"]}
    their_browsers = panel(ga, "browsers")
    for family in ("Safari", "Firefox", "Edge", "Opera"):
        assert their_browsers[family] == browsers[family], family
