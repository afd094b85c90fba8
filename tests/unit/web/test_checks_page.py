"""The Checks page's pieces: values as people read them, rows with their state, graphs only where stored."""

from __future__ import annotations

import pytest

from mepd.web.checks import page, value_text
from mepd.web.pages import Ctx


@pytest.mark.parametrize(("metric", "value", "text"), [
    ("up", 1.0, "up"), ("up", 0.0, "down"), ("latency_seconds", 0.0123, "12.3 ms"), ("used_pct", 42.04, "42.0%"),
    ("free_bytes", 3 * 2**30, "3.00 GiB"), ("rss_bytes", 5 * 2**20, "5.0 MiB"), ("cert_days_left", 29.6, "30 days"),
    ("status_code", 200.0, "200"), ("restarts", None, "-"),
])
def test_values(metric: str, value: float | None, text: str) -> None:
    assert value_text(metric, value) == text


def test_rows_and_graphs() -> None:
    states = [
        {"name": "db", "kind": "tcp", "target": "127.0.0.1:5432", "state": "failed", "message": "connection <refused>",
         "since": "2026-01-01T00:00:00.000000Z", "values": {"up": 0.0, "latency_seconds": None}},
        {"name": "root", "kind": "filesystem", "target": "/", "state": "ok", "message": "12% used",
         "since": "2026-01-01T00:00:00.000000Z", "values": {"up": 1.0, "used_pct": 12.0}},
    ]
    html = page(Ctx(), states, {"check.root.used_pct"}, 1767225600.0 + 90, 30.0)
    assert '<tr id="check-db"><td>db</td><td><span class="badge bad">failed</span></td><td>1m30s ago</td>' in html
    assert "connection &lt;refused&gt;" in html
    assert "used_pct&nbsp;12.0%" in html
    assert 'src="graph/check.root.used_pct/mini.png"' in html
    assert "graph/check.db." not in html  # no RRD yet: no graph
    assert 'content="30"' in html  # refreshes every check interval


def test_no_checks() -> None:
    assert "No check configured" in page(Ctx(), [], set(), 0.0, 300.0)
