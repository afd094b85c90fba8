"""Log-derived metrics: per-step counts equal an independent count of the same records; caps count the excess."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from mepd.analysis.logmetrics import LogMetrics, key_part
from mepd.config.analysis import LogMetricConfig, LogsConfig
from mepd.model import SEVERITIES, LogRecord, Sample
from mepd.pipeline import Pipeline

STEP = 60.0
T0 = 1_800_000_000.0  # a step boundary


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def run(analyser: LogMetrics, records: list[LogRecord], clock: Clock, until: float) -> list[Sample]:
    """Feed the records, move the clock past `until`, and collect what is emitted."""
    async def go() -> list[Sample]:
        sub = analyser.samples.subscribe("t", 1_000_000)
        analyser.process(records)
        clock.now = until
        await analyser.emit_due()
        return await sub.get_batch(1_000_000, 0) if len(sub) else []

    return asyncio.run(go())


def make(cfg: LogsConfig, clock: Clock) -> LogMetrics:
    pipeline = Pipeline()
    return LogMetrics(cfg, pipeline.logs.subscribe("logs", 10), pipeline.samples, grace=2.0, clock=clock)


def test_intake_counts_equal_an_independent_count() -> None:
    rng = random.Random(7)
    clock = Clock(T0)
    analyser = make(LogsConfig(intake=True, step=STEP, top_apps=3), clock)
    recs = [LogRecord(T0, T0 + rng.uniform(0, 3 * STEP), "m", "syslog/udp", host=rng.choice(["a", "b.example", None]),
                      app=rng.choice(["sshd", "cron", "kernel", "nginx", "x"]), severity=rng.choice([None, 0, 3, 4, 6]))
            for _ in range(500)]
    samples = run(analyser, recs, clock, T0 + 3 * STEP + 3)
    by_key: dict[str, dict[float, float]] = {}
    for s in samples:
        by_key.setdefault(s.key, {})[s.ts] = s.value or 0.0
    for i in range(3):
        end = T0 + (i + 1) * STEP
        in_step = [r for r in recs if T0 + i * STEP <= r.received < end]
        assert by_key["logs.all.records"][end] == len(in_step)
        hosts = Counter(key_part(r.host) for r in in_step)
        assert {k: by_key[f"logs.host.{k}.records"][end] for k in hosts} == hosts
        errors = Counter(key_part(r.host) for r in in_step if r.severity is not None and r.severity <= 3)
        assert all(by_key[f"logs.host.{h}.errors"][end] == errors[h] for h in hosts)
        sev = Counter(SEVERITIES[r.severity] if r.severity is not None else "none" for r in in_step)
        assert all(by_key[f"logs.severity.{name}.records"][end] == sev[name] for name in (*SEVERITIES, "none"))
        apps = sum(v[end] for k, v in by_key.items() if k.startswith("logs.app.") and end in v)
        assert apps == len(in_step)  # the top apps plus _other
    assert {"logs.host.b.example.records", "logs.host._none.records"} <= set(by_key)
    assert len([k for k in by_key if k.startswith("logs.app.") and k != "logs.app._other.records"]) <= 5


def test_first_sample_of_a_series_starts_its_file_a_step_earlier() -> None:
    clock = Clock(T0)
    analyser = make(LogsConfig(intake=True, step=STEP), clock)
    out = run(analyser, [LogRecord(T0, T0 + 5, "m", "syslog/udp", host="h")], clock, T0 + STEP + 3)
    assert [(s.ts, s.value) for s in out if s.key == "logs.host.h.records"] == [(T0, 0.0), (T0 + STEP, 1.0)]


def test_user_metric_sums_a_captured_number_per_label_with_a_cap() -> None:
    clock = Clock(T0)
    metric = LogMetricConfig(name="fw_bytes", pattern=r"DROP .* len=(?P<len>\S+) src=(?P<src>\S+)", value="len",
                             by="src", max_series=2, app="kern*", severity="warning")
    analyser = make(LogsConfig(metric=(metric,)), clock)
    lines = [("kernel", 4, "DROP in len=100 src=10.0.0.1"), ("kernel", 4, "DROP in len=50 src=10.0.0.1"),
             ("kernel", 4, "DROP in len=7 src=10.0.0.2"), ("kernel", 4, "DROP in len=3 src=10.0.0.3"),
             ("kernel", 4, "DROP in len=1 src=10.0.0.4"), ("kernel", 4, "DROP in len=x src=10.0.0.1"),
             ("kernel", 6, "DROP in len=1000 src=10.0.0.1"), ("sshd", 4, "DROP in len=1000 src=10.0.0.1")]
    recs = [LogRecord(T0, T0 + 1, msg, "syslog/udp", host="fw", app=app, severity=sev) for app, sev, msg in lines]
    out = {s.key: s.value for s in run(analyser, recs, clock, T0 + STEP + 3) if s.ts == T0 + STEP}
    assert out == {"logs.metric.fw_bytes.total": 161.0, "logs.metric.fw_bytes.by.10.0.0.1": 150.0,
                   "logs.metric.fw_bytes.by.10.0.0.2": 7.0, "logs.metric.fw_bytes.by._other": 4.0}
    assert analyser.counters.get("over_max_series") == 2
    assert analyser.counters.get("value_not_a_number") == 1
    assert not any(k.startswith("logs.all") for k in out)  # intake is off


def test_a_record_handed_over_after_its_step_went_out_counts_in_the_next() -> None:
    clock = Clock(T0)
    analyser = make(LogsConfig(intake=True, step=STEP), clock)
    run(analyser, [], clock, T0 + STEP + 3)
    out = run(analyser, [LogRecord(T0, T0 + 10, "late", "syslog/udp", host="h")], clock, T0 + 2 * STEP + 3)
    assert {s.key: s.value for s in out if s.ts == T0 + 2 * STEP}["logs.all.records"] == 1.0
    assert analyser.counters.get("late") == 1
