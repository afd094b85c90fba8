"""The live analyser: per-step metrics equal an independent count per step; hours reach the store once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from bench.weblog.genlog import lines as gen_lines
from mepd.analysis.weblog.accesslog import parse_access_line
from mepd.analysis.weblog.aggregate import Aggregate
from mepd.analysis.weblog.live import METRICS, WebLogAnalyzer, WebSource
from mepd.model import LogRecord, Sample
from mepd.pipeline import Pipeline, Subscription
from mepd.store.weblog import WebLogStore

STEP = 300.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now
        self.mono = 1000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono


def records(n: int, name: str = "web", seed: int = 5) -> list[LogRecord]:
    out = []
    for line in gen_lines(n, seed=seed, days=0.5, oddities=True):
        try:
            ts, fields = parse_access_line(line, "combined")
        except ValueError as e:
            prev = out[-1].ts if out else 0.0
            out.append(LogRecord(ts=prev, received=prev, message=line, source=f"tail:{name}", app=name,
                                 parse_error=str(e)))
            continue
        out.append(LogRecord(ts=float(ts), received=float(ts), message=line, source=f"tail:{name}", app=name,
                             sd={"http": fields}))
    return out


def expected_steps(recs: Sequence[LogRecord]) -> dict[int, Counter[str]]:
    steps: dict[int, Counter[str]] = defaultdict(Counter)
    for r in recs:
        http = r.sd.get("http")
        if http is None:
            continue
        c = steps[int(r.ts // STEP)]
        c["requests"] += 1
        c["bytes"] += int(http["bytes"])
        c[f"status_{http['status'][0]}xx"] += 1
    return steps


class MemorySink:
    def __init__(self, fail: int = 0) -> None:
        self.calls: list[tuple[str, list[tuple[int, Aggregate]]]] = []
        self.pruned: list[float] = []
        self.fail = fail

    async def add(self, source: str, hours: Sequence[tuple[int, Aggregate]]) -> None:
        if self.fail:
            self.fail -= 1
            raise OSError("disk full")
        self.calls.append((source, list(hours)))

    async def prune(self, before: float) -> int:
        self.pruned.append(before)
        return 0


def make(sources: Sequence[WebSource], sink: MemorySink | WebLogStore, clock: Clock,
         pipeline: Pipeline | None = None) -> tuple[WebLogAnalyzer, Subscription[Sample], Pipeline]:
    p = pipeline or Pipeline()
    samples = p.samples.subscribe("test", 1_000_000)
    logs = p.logs.subscribe("weblog", 100_000)
    analyzer = WebLogAnalyzer(sources, logs, p.samples, sink, clock=clock.time, monotonic=clock.monotonic)
    return analyzer, samples, p


def drain(sub: Subscription[Sample]) -> list[Sample]:
    items = [item for chunk in sub._chunks for item in chunk][sub._head:]
    sub._chunks.clear()
    sub._head = sub._count = 0
    return items


async def test_backlog_steps_match_an_independent_count() -> None:
    recs = records(6_000)
    clock = Clock(recs[-1].ts + 3600)
    analyzer, sub, _ = make([WebSource("web")], MemorySink(), clock)
    for i in range(0, len(recs), 500):  # a backlog arrives in batches, in log order, without pause
        analyzer.process(recs[i:i + 500])
        await analyzer.emit_due()
    got = drain(sub)
    expected = expected_steps(recs)
    first, last = min(expected), max(expected)
    by_step: dict[int, dict[str, float | None]] = defaultdict(dict)
    for s in got:
        assert s.key.startswith("weblog.web.")
        by_step[int(s.ts // STEP) - 1][s.key.removeprefix("weblog.web.")] = s.value
    # every step but the last few (within grace of the newest record) is closed, each once, in order
    assert [s.ts for s in got] == sorted(s.ts for s in got)
    assert len(got) == len(by_step) * len(METRICS)
    assert min(by_step) == first
    assert max(by_step) >= last - 1
    for step, values in by_step.items():
        want = expected.get(step, Counter())
        for metric in METRICS[:-1]:
            assert values[metric] == want[metric], (step, metric)
        ratio = want["status_5xx"] / want["requests"] if want["requests"] else None
        assert values["5xx_ratio"] == ratio
    # once the log goes quiet, the clock closes the rest, and quiet steps are zeros
    clock.mono += 10
    clock.now = (last + 4) * STEP + analyzer.grace
    await analyzer.emit_due()
    tail = drain(sub)
    steps = sorted({int(s.ts // STEP) - 1 for s in tail})
    assert steps[-1] == last + 3  # ends at (last + 4) * STEP, `grace` before now
    assert all(s.value in (0.0, None) for s in tail if int(s.ts // STEP) - 1 > last)
    assert analyzer.counters.get("late_for_metrics") == 0
    assert analyzer.counters.get("rejected") == sum(1 for r in recs if "http" not in r.sd) > 0


async def test_quiet_source_emits_zeros_and_late_records_are_counted() -> None:
    clock = Clock(1_700_000_000.0)
    analyzer, sub, _ = make([WebSource("web", step=60.0)], MemorySink(), clock)
    clock.now += 200
    clock.mono += 200
    await analyzer.emit_due()
    zeros = drain(sub)
    assert zeros
    assert {s.value for s in zeros} == {0.0, None}
    assert {s.key for s in zeros} == {f"weblog.web.{m}" for m in METRICS}
    late = records(5)[0]
    analyzer.process([LogRecord(ts=clock.now - 3000, received=clock.now, message="x", source="tail:web",
                                sd=late.sd)])
    assert analyzer.counters.get("late_for_metrics") == 1
    other = LogRecord(ts=clock.now, received=clock.now, message="x", source="tail:other", sd=late.sd)
    analyzer.process([other])
    assert analyzer.counters.get("records") == 1


async def test_flush_retries_and_stores_each_hour_once(tmp_path: Path) -> None:
    recs = records(3_000)
    clock = Clock(recs[-1].ts)
    sink = MemorySink(fail=2)
    analyzer, _, _ = make([WebSource("web", site_hosts=("www.example.com",))], sink, clock)
    analyzer.process(recs[:1000])
    await analyzer.flush()
    analyzer.process(recs[1000:])
    await analyzer.flush()
    assert analyzer.counters.get("store_errors") == 2
    assert sink.calls == []
    await analyzer.flush()
    assert len(sink.calls) == 1
    total = Aggregate()
    for _, agg in sink.calls[0][1]:
        total.merge(agg)
    assert total.requests == sum(1 for r in recs if "http" in r.sd)
    assert total.rejected == sum(1 for r in recs if "http" not in r.sd)
    await analyzer.flush()
    assert len(sink.calls) == 1


async def test_reconfigure_keeps_and_flushes_removed_sources() -> None:
    clock = Clock(2_000_000_000.0)
    sink = MemorySink()
    analyzer, _, _ = make([WebSource("a"), WebSource("b")], sink, clock)
    analyzer.process(records(50, "a") + records(60, "b"))
    analyzer.configure([WebSource("a", site_hosts=("x",)), WebSource("c")])
    assert [s.name for s in analyzer.sources] == ["a", "c"]
    await analyzer.flush()
    assert sorted(name for name, _ in sink.calls) == ["a", "b"]
    await analyzer.flush()
    assert len(sink.calls) == 2


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[WebLogStore]:
    s = WebLogStore(str(tmp_path / "weblog.db"))
    await s.open()
    yield s
    await s.close()


async def test_run_from_the_pipeline_into_the_store(store: WebLogStore) -> None:
    recs = records(2_000)
    pipeline = Pipeline()
    logs = pipeline.logs.subscribe("weblog", 10_000)
    # the generated log is from 2024: a retention of 400 days from today would prune it at once
    analyzer = WebLogAnalyzer([WebSource("web")], logs, pipeline.samples, store, flush_interval=0.2,
                              retention=1e10)
    task = asyncio.create_task(analyzer.run(lambda: None))
    for r in recs:
        await pipeline.logs.put(r)
    deadline = time.monotonic() + 20
    want = sum(1 for r in recs if "http" in r.sd)
    while True:
        try:
            report = await store.report("web")
        except Exception:
            report = None
        summary = report["summary"] if report else None
        if isinstance(summary, dict) and summary["requests"] == want:
            break
        assert time.monotonic() < deadline, f"store has {summary} of {want} requests"
        await asyncio.sleep(0.05)
    analyzer.process(recs[:10])  # counted after the last flush: the flush at cancellation stores them
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    summary = (await store.report("web"))["summary"]
    assert isinstance(summary, dict)
    assert summary["requests"] == want + sum(1 for r in recs[:10] if "http" in r.sd)
