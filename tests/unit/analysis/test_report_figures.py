"""The operations report's pure parts: message templates, periods, outages, incident times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from mepd.analysis.report import (
    ActionRun,
    change_pct,
    incident_summary,
    is_down,
    month_period,
    outages,
    previous_period,
    template,
)
from mepd.model import Incident


def test_templates_replace_what_varies() -> None:
    assert template("Failed password for root from 192.0.2.7 port 52144 ssh2") == \
        "Failed password for root from <ip> port <n> ssh<n>"
    assert template("session 3f2a9c1e-0b7d-4c1e-9a55-2b9f0c7e1d20 closed") == "session <uuid> closed"
    assert template("link 00:1a:2b:3c:4d:5e flapped on fe80::1") == "link <mac> flapped on <ip>"
    assert template("job 0x7ffe3a2b failed") == "job <id> failed"
    assert template("disk full") == "disk full"


def test_a_month_is_its_calendar_days_in_the_zone() -> None:
    paris = timezone(timedelta(hours=1))
    since, until = month_period("2026-11", paris)
    assert datetime.fromtimestamp(since, paris) == datetime(2026, 11, 1, tzinfo=paris)
    assert until - since == 30 * 86400
    assert month_period("2026-12", UTC)[1] == datetime(2027, 1, 1, tzinfo=UTC).timestamp()
    with pytest.raises(ValueError, match="YYYY-MM"):
        month_period("2026-13", UTC)


def test_a_month_is_compared_with_the_month_before_and_a_span_with_the_span_before() -> None:
    assert previous_period(*month_period("2026-03", UTC), UTC) == month_period("2026-02", UTC)
    assert previous_period(*month_period("2026-01", UTC), UTC) == month_period("2025-12", UTC)
    assert previous_period(1000.0, 1500.0, UTC) == (500.0, 1000.0)


def test_outages_are_runs_of_rows_from_the_start_of_the_first_interval() -> None:
    rows = [(300.0, 1.0), (600.0, 0.0), (900.0, 0.0), (1200.0, None), (1500.0, 0.2), (1800.0, 1.0)]
    found = outages(rows, 300, is_down)
    assert [(o.start, o.end) for o in found] == [(300.0, 900.0), (1200.0, 1500.0)]  # an unknown row is no outage


def incident(iid: int, started: float, acked: float | None, resolved: float | None, severity: str = "warning"
             ) -> Incident:
    return Incident(iid, f"f{iid}", "disk", "metric", "resolved" if resolved else "firing", severity, {}, "s",
                    started, started, acknowledged=acked, resolved=resolved)


def test_incident_times_are_medians_and_worst_and_durations_cut_to_the_period() -> None:
    incidents = [incident(1, 100, 160, 400), incident(2, 200, 500, None, "critical"), incident(3, -50, None, 50)]
    actions = [ActionRun(1, 150, "action", {"exit_status": 0}), ActionRun(2, 250, "action", {"exit_status": 1}),
               ActionRun(2, 260, "action_skipped", {"reason": "cooldown"})]
    s = incident_summary(incidents, actions, 0, 1000)
    assert s["count"] == 3
    assert s["started_in_period"] == 2
    assert s["by_severity"] == {"critical": 1, "warning": 2}
    assert s["time_to_ack"] == {"median_s": 180, "worst_s": 300, "count": 2}
    assert s["time_to_resolve"] == {"median_s": 200, "worst_s": 300, "count": 2}
    assert s["actions"] == [{"event": "action", "outcome": "failed", "count": 1},
                            {"event": "action", "outcome": "ok", "count": 1},
                            {"event": "action_skipped", "outcome": "skipped", "count": 1}]
    assert [(i["id"], i["seconds_in_period"]) for i in s["longest"]] == [(2, 800), (1, 300), (3, 50)]  # type: ignore[attr-defined]


def test_change_needs_something_to_compare_with() -> None:
    assert change_pct(150, 100) == 50
    assert change_pct(150, 0) is None
    assert change_pct(None, 100) is None
