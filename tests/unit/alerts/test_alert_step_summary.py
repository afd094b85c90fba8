"""Verified steps: the `mepctl actions` summary, and how an incident's steps are shown (CLI, page)."""

from __future__ import annotations

from mepd.alerts.steps import summary
from mepd.api import render
from mepd.model import Incident
from mepd.web import pages

STEP = {"step": 1, "attempt": 2, "argv": ["/usr/bin/systemctl", "restart", "<web>"],
        "started": "2026-01-01T00:00:00.000000Z", "exit_status": 0, "outcome": "verified", "time_to_clear": 12.5,
        "output": "<restarted>"}


def test_summary_counts_per_rule_and_step_with_the_median_time_to_clear() -> None:
    outcomes = [{"rule": "web", "step": 1, "argv": ["a"], "outcome": "verified", "time_to_clear": t}
                for t in (1.0, 5.0, 3.0)]
    outcomes += [{"rule": "web", "step": 1, "argv": ["a"], "outcome": "failed", "time_to_clear": None},
                 {"rule": "web", "step": 2, "argv": ["b"], "outcome": "cancelled", "time_to_clear": None},
                 {"rule": "db", "step": 1, "argv": ["c"], "outcome": "failed", "time_to_clear": None}]
    assert summary(outcomes) == [
        {"rule": "db", "step": 1, "argv": ["c"], "runs": 1, "verified": 0, "failed": 1, "median_time_to_clear": None},
        {"rule": "web", "step": 1, "argv": ["a"], "runs": 4, "verified": 3, "failed": 1, "median_time_to_clear": 3.0},
        {"rule": "web", "step": 2, "argv": ["b"], "runs": 1, "verified": 0, "failed": 0, "median_time_to_clear": None},
    ]
    text = render.actions(summary(outcomes))
    assert text.splitlines()[0].split() == ["RULE", "STEP", "RUNS", "VERIFIED", "FAILED", "MEDIAN", "CLEAR", "ARGV"]
    assert "3.0s" in text
    assert render.actions([]) == "no verified corrective steps have run"


def test_the_incident_shows_its_steps_and_loop_state() -> None:
    inc = Incident(id=3, fingerprint="f", rule="web", kind="metric", state="firing", severity="critical",
                   labels={"rule": "web"}, summary="down", started=0.0, last_seen=0.0, steps=(STEP,), escalated=10.0)
    text = render.incident(inc.to_json(), [])
    assert "incident 3  firing/escalated  critical" in text
    assert "  1.2  " in text
    assert "verified  exit 0  cleared in 12s  /usr/bin/systemctl restart <web>" in text
    html = pages.incident(pages.Ctx(csrf="t"), inc, [], 10.0)
    assert "id=steps" in html
    assert "&lt;restarted&gt;" in html
    assert "<web>" not in html
    assert ">escalated<" in html
