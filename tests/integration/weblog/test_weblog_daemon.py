"""A [[tail]] web source through the real daemon: `mepctl weblog report` counts what the file holds."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

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
