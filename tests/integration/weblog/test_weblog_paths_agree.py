"""The live report (tail source -> live analyser -> store) and `mepctl weblog analyze` count one file alike.

One parser gives one verdict: a line whose bracketed time is not Apache's is
unparsed on both paths (the live path once dated it by its arrival), and a
blank line is no line on either.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.helpers import Mepd, wait_for

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
        result = d.mepctl("weblog", "report", "web", "--since", "2000-01-01T00:00:00Z",
                          "--until", "2100-01-01T00:00:00Z", "--json", check=False)
        if result.returncode != 0:
            return None
        report: dict[str, Any] = json.loads(result.stdout)
        requests, _, _, unparsed = counts(report)
        return report if requests + unparsed >= counted else None

    live_report = wait_for(live, timeout=60, what=f"the live report of {counted} lines")
    one_shot = json.loads(d.mepctl("weblog", "analyze", str(log), "--json").stdout)
    assert counts(one_shot) == (len(GOOD), sum(100 + i for i in range(20)), 10, 2)
    assert counts(live_report) == counts(one_shot)
