"""What a device's own log states of a metric (a claim), before the poll reads it: the rules act on it at once,
the next poll confirms or disagrees; and `AlertEngine.observe`, the entry point the device-log linker feeds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

from mepd.alerts import rules
from mepd.alerts.engine import AlertEngine
from mepd.alerts.rules import Change, Rule
from mepd.config import AlertConfig, AlertRuleConfig
from mepd.model import Sample
from mepd.pipeline import Pipeline
from tests.helpers import until

KEY = "snmp.sw.Gi0_1.oper_up"
DOWN = "%LINK-3-UPDOWN: Interface Gi0/1, changed state to down"
UP = "%LINK-3-UPDOWN: Interface Gi0/1, changed state to up"


def link_rule(**kw: Any) -> Rule:
    return rules.build(AlertRuleConfig(name="link", metric="snmp.*.oper_up", below=1.0, **kw), 0.0)


def claim(r: Rule, ts: float, value: float, line: str = DOWN) -> list[Change]:
    return r.observe_claim(KEY, ts, value, "log", line)


def poll(r: Rule, ts: float, value: float) -> list[Change]:
    return r.observe_sample(Sample(KEY, ts, value), ts)


def notes(changes: list[Change]) -> list[str]:
    return [event for c in changes for event, _ in c.notes]


def test_a_down_line_fires_at_once_whatever_for_and_samples_ask() -> None:
    r = link_rule(for_=600.0, samples=3)
    [fired] = claim(r, 100.0, 0.0)
    assert (fired.kind, fired.ts, fired.lines, fired.labels) == ("fire", 100.0, (DOWN,), {"key": KEY})
    assert notes([fired]) == ["log"]
    [more] = claim(r, 101.0, 0.0, "%LINEPROTO-5-UPDOWN: Line protocol on Interface Gi0/1, changed state to down")
    assert (more.kind, more.count) == ("update", 1)


def test_the_poll_after_a_down_line_confirms_it() -> None:
    r = link_rule()
    claim(r, 100.0, 0.0)
    [confirmed] = poll(r, 130.0, 0.0)
    assert confirmed.kind == "update"
    [(event, detail)] = confirmed.notes
    assert (event, detail["value"], detail["log"], detail["line"]) == ("confirmed", 0.0, 0.0, DOWN)
    assert notes(poll(r, 160.0, 0.0)) == []  # one verdict per claim


def test_a_poll_reading_up_after_a_down_line_resolves_saying_they_disagree() -> None:
    r = link_rule()
    claim(r, 100.0, 0.0)
    [resolved] = poll(r, 130.0, 1.0)
    assert (resolved.kind, resolved.by) == ("resolve", "rule")
    [(event, detail)] = resolved.notes
    assert event == "disagreed"
    assert "log and counters disagree" in str(detail["note"])
    assert resolved.summary.endswith(f"({detail['note']})")
    assert not r.firing({"key": KEY})


def test_a_poll_measured_before_the_line_is_no_verdict() -> None:
    r = link_rule()
    poll(r, 90.0, 1.0)
    claim(r, 100.0, 0.0)
    assert poll(r, 99.0, 1.0) == []  # the poll started before the line arrived: older news
    assert r.firing({"key": KEY})
    assert claim(r, 95.0, 1.0, UP) == []  # a line older than a poll already read is no news either


def test_an_up_line_resolves_what_the_down_line_opened() -> None:
    r = link_rule()
    claim(r, 100.0, 0.0)
    [resolved] = claim(r, 104.0, 1.0, UP)
    assert (resolved.kind, resolved.by, notes([resolved])) == ("resolve", "log", ["log"])
    assert poll(r, 130.0, 1.0) == []  # the poll agrees: nothing open to note it on


def test_an_up_line_clears_only_where_the_rules_clear_condition_holds() -> None:
    r = rules.build(AlertRuleConfig(name="link", metric="snmp.*.oper_up", below=1.0, clear_above=1.0), 0.0)
    claim(r, 100.0, 0.0)
    assert claim(r, 104.0, 1.0, UP) == []  # 1 is not above 1: the rule keeps it
    assert r.firing({"key": KEY})
    assert claim(link_rule(), 104.0, 1.0, UP) == []  # nothing firing: nothing to clear


def test_an_up_line_then_a_poll_reading_down_fires_saying_they_disagree() -> None:
    r = link_rule()
    claim(r, 100.0, 0.0)
    claim(r, 104.0, 1.0, UP)
    [fired] = poll(r, 130.0, 0.0)
    assert (fired.kind, notes([fired])) == ("fire", ["disagreed"])


def test_only_threshold_rules_on_the_key_take_claims() -> None:
    assert claim(rules.build(AlertRuleConfig(name="o", metric="snmp.other.*", below=1.0), 0.0), 1.0, 0.0) == []
    absence = rules.build(AlertRuleConfig(name="a", metric="snmp.*", absent=60.0), 0.0)
    assert claim(absence, 1.0, 0.0) == []
    anomaly = rules.build(AlertRuleConfig(name="f", metric="snmp.*", above=0.5, forecast=86400.0), 0.0)
    assert claim(anomaly, 1.0, 1.0) == []


# -- the engine's entry point --------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def engine(tmp_path: Path) -> AsyncIterator[tuple[AlertEngine, Pipeline]]:
    cfg = AlertConfig(group_wait=0.0, evaluation_interval=0.05,
                      rule=(AlertRuleConfig(name="link", metric="snmp.*.oper_up", below=1.0, for_=600.0),))
    pipeline = Pipeline()
    e = AlertEngine(cfg, str(tmp_path), pipeline.samples.subscribe("alerts", 100), None, host="h")
    e.observe(KEY, 100.0, 0.0, line=DOWN)  # before it runs (a restart): queued, not lost
    started = asyncio.Event()
    task = asyncio.create_task(e.run(started.set))
    await until(lambda: started.is_set() or task.done(), "the engine to start")
    yield e, pipeline
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_observe_opens_the_incident_the_poll_then_judges(engine: tuple[AlertEngine, Pipeline]) -> None:
    e, pipeline = engine
    await until(lambda: e.counters.get("claims") == 1, "the claim to be applied")
    [inc] = await e.list_incidents()
    assert (inc.rule, inc.labels["key"], inc.state, inc.lines) == ("link", KEY, "firing", (DOWN,))
    _, history = await e.show(inc.id)
    assert [h["event"] for h in history] == ["fired", "log"]
    await pipeline.samples.put(Sample(KEY, 130.0, 1.0))
    await until(lambda: e.counters.get("samples") == 1, "the poll's sample")
    inc, history = await e.show(inc.id)
    assert inc.state == "resolved"
    assert [h["event"] for h in history] == ["fired", "log", "resolved", "disagreed"]
    assert "log and counters disagree" in inc.summary


async def test_observe_counts_what_it_cannot_queue(engine: tuple[AlertEngine, Pipeline],
                                                   monkeypatch: Any) -> None:
    e, _ = engine
    monkeypatch.setattr(e, "_claims", asyncio.Queue(1))
    e.observe(KEY, 200.0, 0.0)
    e.observe(KEY, 201.0, 0.0)
    assert e.counters.get("claims.dropped") == 1
