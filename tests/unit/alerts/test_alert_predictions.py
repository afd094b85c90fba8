"""Forecast and anomaly rules: their config, their thresholds on derived samples, and the paths that make those
samples (the forecast component from rrdtool's trend; the RRD sink from rrdtool's Holt-Winters FAILURES)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mepd.alerts import rules
from mepd.alerts.forecasts import ForecastWatch
from mepd.config import AlertRuleConfig
from mepd.config.alerts import AnomalyConfig
from mepd.config.syntax import compile_glob
from mepd.model import Sample
from mepd.pipeline import Counters, Pipeline
from mepd.store.rrd.files import HoltWinters
from mepd.store.rrd.store import Layouts, RrdSink, RrdStore, layout
from tests.unit.alerts.test_alert_config import errors_of, load
from tests.unit.store.rrd.test_rrd_anomaly import DROP, LAYOUT, SEASON, SPIKE, STEP, at, series

T0 = 1_800_000_000 - 1_800_000_000 % 86400
DAY = 86400


@pytest.mark.parametrize(("rule", "expected"), [
    ('forecast = "30d"\nmetric = "k"', "alert.rule[0].above: a metric rule needs exactly one of `above` and `below`"),
    ('forecast = "30d"\nmetric = "k"\nbelow = 1', "alert.rule[0].below: a forecast rule fires when the trend crosses"),
    ('forecast = "400d"\nmetric = "k"\nabove = 1', "alert.rule[0].forecast: must be from 0s to 365d"),
    ('forecast = "30d"\npattern = "x"', "alert.rule[0].forecast: needs `metric`"),
    ('metric = "k"\nanomaly = { season = "1d" }\nabove = 1', "alert.rule[0].above: an anomaly rule fires from"),
    ('metric = "k"\nanomaly = { season = "30s" }', "alert.rule[0].anomaly.season: must be at least 1m"),
    ('metric = "k"\nanomaly = { season = "1d", window = 29 }', "alert.rule[0].anomaly.window: must be from 1 to 28"),
    ('metric = "k"\nanomaly = { season = "1d", failures = 10 }', "alert.rule[0].anomaly.failures: must be from 1"),
    ('metric = "k"\nanomaly = { seasons = "1d" }', "alert.rule[0].anomaly.seasons: unknown key"),
    ('metric = "k"\nanomaly = { season = "1d" }\nforecast = "1d"', "alert.rule[0].forecast: a rule is a forecast or"),
])
def test_rule_errors_name_their_key_path(tmp_path: Path, rule: str, expected: str) -> None:
    errors = errors_of(tmp_path, f'[[alert.rule]]\nname = "r"\n{rule}\n')
    assert any(e.startswith(expected) for e in errors), errors


def test_the_issue_forms_load(tmp_path: Path) -> None:
    cfg = load(tmp_path, '[[alert.rule]]\nname = "disk"\nforecast = "30d"\nmetric = "host.*.fs.*.used_pct"\n'
                         'above = 90\n[[alert.rule]]\nname = "odd"\nmetric = "snmp.*.in_bps"\n'
                         'anomaly = { season = "1d" }\n')
    disk, odd = cfg.alert.rule
    assert (disk.kind, disk.forecast, disk.above) == ("metric", 30 * DAY, 90.0)
    assert (odd.kind, odd.anomaly) == ("metric", AnomalyConfig(DAY))
    assert isinstance(rules.build(disk, 0), rules.ForecastRule)
    assert isinstance(rules.build(odd, 0), rules.AnomalyRule)


def test_an_anomaly_rule_fires_and_resolves_on_its_keys_failures_only() -> None:
    r = rules.build(AlertRuleConfig(name="odd", metric="snmp.*.in_bps", anomaly=AnomalyConfig(DAY)), 0)
    seen = []
    for ts, key, value in [(1, "anomaly.snmp.a.in_bps", 0.0), (2, "snmp.a.in_bps", 5.0),
                           (3, "anomaly.snmp.a.out_bps", 1.0), (4, "anomaly.snmp.a.in_bps", 1.0),
                           (5, "anomaly.snmp.a.in_bps", 1.0), (6, "anomaly.snmp.a.in_bps", 0.0)]:
        seen += [(c.kind, c.ts, dict(c.labels)) for c in r.observe_sample(Sample(key, ts, value), ts)]
    assert [(k, ts) for k, ts, _ in seen] == [("fire", 4), ("update", 5), ("resolve", 6)]
    assert seen[0][2] == {"key": "snmp.a.in_bps"}


def test_a_forecast_rule_fires_when_the_crossing_is_within_its_horizon() -> None:
    r = rules.build(AlertRuleConfig(name="disk", metric="host.*", above=90.0, forecast=30 * DAY), 0)
    key = "forecast.disk.host.h.fs.root.used_pct"
    changes = [c for ts, v in [(1, 365.0), (2, 45.0), (3, 29.5), (4, 12.0), (5, 31.0)]
               for c in r.observe_sample(Sample(key, ts, v), ts)]
    assert [(c.kind, c.ts) for c in changes] == [("fire", 3), ("update", 4), ("resolve", 5)]
    assert changes[0].labels == {"key": "host.h.fs.root.used_pct"}
    assert changes[0].summary == "host.h.fs.root.used_pct reaches 90 in 29.5 days at its present trend"
    assert not r.observe_sample(Sample("forecast.other.host.h.fs.root.used_pct", 6, 1.0), 6)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[RrdStore]:
    s = RrdStore(str(tmp_path / "rrd"), layouts=Layouts(layout(300)))
    yield s
    await s.close()


async def test_the_forecast_component_feeds_a_forecast_rule(store: RrdStore) -> None:
    """A disk growing 1 % a day from 50 % crosses 90 % in about 33 days: within 60, not within 20; a flat one
    never.  Two days of 5-minute rows, written with explicit times."""
    rows = 576
    await store.write([Sample("host.h.fs.root.used_pct", T0 + i * 300, 50 + i / 288) for i in range(rows + 1)]
                      + [Sample("host.h.fs.var.used_pct", T0 + i * 300, 50.0) for i in range(rows + 1)])
    now = T0 + rows * 300
    cfgs = [AlertRuleConfig(name=n, metric="host.*.fs.*.used_pct", above=90.0, forecast=h * DAY)
            for n, h in (("soon", 60), ("later", 20))]
    pipeline = Pipeline()
    sub = pipeline.samples.subscribe("alerts", 100)
    watch = ForecastWatch(cfgs, 2 * DAY, store, pipeline.samples, clock=lambda: now, interval=3600)
    task = asyncio.create_task(watch.run(lambda: None))
    try:
        samples = await asyncio.wait_for(sub.get_batch(100, 0.0), 30)
    finally:
        task.cancel()
    days = {s.key: s.value for s in samples}
    assert days["forecast.soon.host.h.fs.root.used_pct"] == pytest.approx(38.0, abs=0.1)  # 90 - 52 at 1 a day
    assert days["forecast.soon.host.h.fs.var.used_pct"] == 365.0  # not within a year
    fired = {}
    for cfg in cfgs:
        r = rules.build(cfg, now)
        fired[cfg.name] = sorted(c.labels["key"] for s in samples for c in r.observe_sample(s, now))
    assert fired == {"soon": ["host.h.fs.root.used_pct"], "later": []}


async def test_the_rrd_sink_sends_failures_to_the_pipeline_and_an_anomaly_rule_fires(tmp_path: Path) -> None:
    store = RrdStore(str(tmp_path / "rrd"), layouts=Layouts(LAYOUT, anomalies=[
        (compile_glob("m.*"), HoltWinters(SEASON * STEP))]))
    pipeline = Pipeline()
    sub = pipeline.samples.subscribe("store/rrd", 100_000, durable=True)
    alerts = pipeline.samples.subscribe("alerts", 100_000, accept=lambda items: [
        s for s in items if s.key.startswith("anomaly.")])
    sink = RrdSink(store, sub, Counters(), pipeline.sample_counters, derived=pipeline.samples.offer_many)
    task = asyncio.create_task(sink.run(lambda: None))
    values = series()[:DROP.stop + 20]
    try:
        for k in range(0, len(values), 60):  # an hour's polls a write: FAILURES keeps a season's rows
            await pipeline.samples.put_many([Sample("m.traffic", at(k + i + 1), v)
                                             for i, v in enumerate(values[k:k + 60])])
            await asyncio.wait_for(sub.join(), 30)
    finally:
        task.cancel()
        await store.close()
    derived = await alerts.get_batch(100_000, 0.0)
    rule = rules.build(AlertRuleConfig(name="odd", metric="m.*", anomaly=AnomalyConfig(SEASON * STEP)), 0)
    fired = [c.ts for s in derived for c in rule.observe_sample(s, s.ts) if c.kind == "fire"]
    assert any(at(SPIKE.start) <= ts <= at(SPIKE.stop) for ts in fired), fired
    assert any(at(DROP.start) <= ts <= at(DROP.stop) for ts in fired), fired
    assert min(fired) >= at(SPIKE.start), "normal variation never fires"

