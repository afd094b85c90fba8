"""A [[tail]] web source through the real daemon: `mepctl weblog report` counts what the file holds, and its
metrics keep their last stored values across a restart."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.helpers import Mepd, wait_for


def test_weblog_report_from_tailed_access_log(mepd_factory: Callable[..., Mepd], short_tmp: Path) -> None:
    log = short_tmp / "access.log"
    lines = [f'192.0.2.{i % 7} - - [28/Nov/2026:10:{i % 60:02d}:00 +0000] "GET /p{i % 3} HTTP/1.1" '
             f'{404 if i % 5 == 0 else 200} {100 + i} "-" "curl/8.0"\n' for i in range(50)]
    log.write_text("".join(lines))
    d = mepd_factory(f'[[tail]]\nname = "web"\npath = "{log}"\nformat = "combined"\nstart = "beginning"\n').start()
    d.wait_logs(50, "--source", "tail:web")

    def report() -> dict[str, object] | None:
        result = d.mepctl("weblog", "report", "web", "--since", "2026-11-28T00:00:00Z",
                          "--until", "2026-11-29T00:00:00Z", "--json", check=False)
        if result.returncode != 0:
            return None
        data: dict[str, object] = json.loads(result.stdout)
        summary = data["summary"]
        assert isinstance(summary, dict)
        return data if summary.get("requests") == 50 else None

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
