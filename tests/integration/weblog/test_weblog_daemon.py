"""A [[tail]] web source through the real daemon: `mepctl weblog report` counts what the file holds, as
`mepctl weblog analyze` counts it, and its metrics keep their last stored values across a restart."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.helpers import Mepd, wait_for


def weblog_report(d: Mepd, since: str, until: str) -> dict[str, Any] | None:
    """`mepctl weblog report web --json` over [since, until), None while the daemon cannot answer it."""
    result = d.mepctl("weblog", "report", "web", "--since", since, "--until", until, "--json", check=False)
    if result.returncode != 0:
        return None
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_weblog_report_from_tailed_access_log(mepd_factory: Callable[..., Mepd], short_tmp: Path) -> None:
    log = short_tmp / "access.log"
    lines = [f'192.0.2.{i % 7} - - [28/Nov/2026:10:{i % 60:02d}:00 +0000] "GET /p{i % 3} HTTP/1.1" '
             f'{404 if i % 5 == 0 else 200} {100 + i} "-" "curl/8.0"\n' for i in range(50)]
    log.write_text("".join(lines))
    d = mepd_factory(f'[[tail]]\nname = "web"\npath = "{log}"\nformat = "combined"\nstart = "beginning"\n').start()
    d.wait_logs(50, "--source", "tail:web")

    def report() -> dict[str, Any] | None:
        data = weblog_report(d, "2026-11-28T00:00:00Z", "2026-11-29T00:00:00Z")
        return data if data is not None and data["summary"]["requests"] == 50 else None

    data = wait_for(report, timeout=60, what="the hourly aggregate of 50 requests")
    summary = data["summary"]
    assert summary["bytes"] == sum(100 + i for i in range(50))
    assert summary["failed"] == 10


def test_metrics_list_shows_the_stored_values_after_a_restart(mepd_factory: Callable[..., Mepd],
                                                               short_tmp: Path) -> None:
    """Until a key's next sample (a day here), the list shows the file's last value, not U."""
    noon = (int(time.time()) // 86400 - 1) * 86400 + 43200  # yesterday: its daily step is emitted at once
    stamp = datetime.fromtimestamp(noon, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
    log = short_tmp / "access.log"
    log.write_text("".join(f'192.0.2.1 - - [{stamp}] "GET / HTTP/1.1" {status} 100 "-" "curl/8.0"\n'
                           for status in (200, 200, 404, 503)))
    d = mepd_factory(f'[[tail]]\nname = "web"\npath = "{log}"\nformat = "combined"\nstart = "beginning"\n'
                     'step = "1d"\n').start()

    def listed() -> list[dict[str, Any]] | None:
        rows: list[dict[str, Any]] = d.mepctl_json("metrics", "list", "--prefix", "weblog.web.")
        return rows if len(rows) == 8 and all(r["ts"] is not None for r in rows) else None

    before = wait_for(listed, what="the web source's 8 metrics of yesterday")
    assert {r["key"]: r["value"] for r in before}["weblog.web.5xx_ratio"] == 0.25
    assert d.stop() == 0
    d.start()
    assert d.mepctl_json("metrics", "list", "--prefix", "weblog.web.") == before


# One parser gives one verdict: a line whose bracketed time is not Apache's is unparsed on both paths (the
# live path once dated it by its arrival), and a blank line is no line on either.
GOOD = [f'192.0.2.{i % 5} - - [28/Nov/2026:10:{i:02d}:00 +0000] "GET /p{i % 3} HTTP/1.1" {200 + (i % 2) * 204} '
        f'{100 + i} "-" "curl/8.0"' for i in range(20)]
ISO_TIME = '192.0.2.9 - - [2026-11-28T10:30:00+00:00] "GET /iso HTTP/1.1" 200 77 "-" "curl/8.0"'
NOT_A_REQUEST = "this is not an access log line"


def counts(report: dict[str, Any]) -> tuple[int, int, int, int]:
    s = report["summary"]
    return s["requests"], s["bytes"], s["failed"], s["unparsed_lines"]


def test_live_report_and_one_shot_analyze_agree(mepd_factory: Callable[..., Mepd], short_tmp: Path) -> None:
    log = short_tmp / "access.log"
    lines = [*GOOD[:10], ISO_TIME, "", *GOOD[10:], NOT_A_REQUEST]
    log.write_text("\n".join(lines) + "\n")
    d = mepd_factory(f'[[tail]]\nname = "web"\npath = "{log}"\nformat = "combined"\nstart = "beginning"\n').start()
    d.wait_logs(len(lines), "--source", "tail:web")
    counted = len(GOOD) + 2  # every non-blank line, as a request or as unparsed

    def live() -> dict[str, Any] | None:
        report = weblog_report(d, "2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z")  # unparsed lines: arrival hour
        if report is None:
            return None
        requests, _, _, unparsed = counts(report)
        return report if requests + unparsed >= counted else None

    live_report = wait_for(live, timeout=60, what=f"the live report of {counted} lines")
    one_shot = json.loads(d.mepctl("weblog", "analyze", str(log), "--json").stdout)
    assert counts(one_shot) == (len(GOOD), sum(100 + i for i in range(20)), 10, 2)
    assert counts(live_report) == counts(one_shot)
