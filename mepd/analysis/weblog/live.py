"""The live web-log analyser: records of `[[tail]]` web sources -> hourly aggregates and per-step metrics.

It consumes the parsed `sd["http"]` fields the tail source attaches to each
record of a combined/common log (source "tail:NAME"), adds them to one
Aggregate per UTC hour, and every `flush_interval` hands the settled deltas
to the store (`WebLogStore.add`), so reports over any range read hours.

Per step (default 5 minutes) it emits Samples ending at the step's end:

    weblog.NAME.requests        requests in the step
    weblog.NAME.bytes           bytes sent in the step
    weblog.NAME.status_1xx..5xx requests per status class in the step
    weblog.NAME.5xx_ratio       status_5xx / requests (unknown when there were none)

A step is closed once a record `grace` seconds past its end has been seen
(a backlog replays in log order) or, when no record has arrived for `idle`
seconds, once the clock is `grace` past its end; quiet steps are emitted as
zeros.  A record for a step already emitted still counts in the store, and
in the counter `late_for_metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from mepd.analysis.weblog.aggregate import DEFAULT_KEEP, Aggregate
from mepd.analysis.weblog.report import DEFAULT_TOP
from mepd.model import LogRecord, Sample
from mepd.pipeline import Channel, Counters, Subscription

log = logging.getLogger(__name__)

SOURCE_PREFIX: Final = "tail:"
METRICS: Final = ("requests", "bytes", "status_1xx", "status_2xx", "status_3xx", "status_4xx", "status_5xx",
                  "5xx_ratio")
MAX_FILL: Final = 86400.0  # at most a day of zero steps after a long silence


@dataclass(frozen=True, slots=True)
class WebSource:
    """What the analyser needs of a `[[tail]]` with format combined/common."""

    name: str
    site_hosts: tuple[str, ...] = ()
    top: int = DEFAULT_TOP
    step: float = 300.0


class WebLogSink(Protocol):
    async def add(self, source: str, hours: Sequence[tuple[int, Aggregate]]) -> None: ...

    async def prune(self, before: float) -> int: ...


class TailLike(Protocol):
    """The fields of a `[[tail]]` config the analyser reads (the tail source owns the dataclass)."""

    @property
    def name(self) -> str: ...
    @property
    def format(self) -> str: ...
    @property
    def site_hosts(self) -> tuple[str, ...]: ...
    @property
    def top(self) -> int: ...
    @property
    def step(self) -> float: ...


def metric_prefix(name: str) -> str:
    """What the metric keys of web source `name` start with (its RRD files step at its `step`)."""
    return f"weblog.{name}."


def web_sources(tails: Sequence[TailLike]) -> list[WebSource]:
    """The web sources among the `[[tail]]` sections: those with format combined or common."""
    return [WebSource(t.name, tuple(t.site_hosts), t.top, t.step) for t in tails if t.format in ("combined", "common")]


@dataclass(slots=True)
class _State:
    src: WebSource
    pending: dict[int, Aggregate] = field(default_factory=dict)
    steps: dict[int, list[int]] = field(default_factory=dict)
    emitted: int | None = None
    max_ts: float = -math.inf
    last_arrival: float = -math.inf


FLUSH_INTERVAL: Final = 10.0
GRACE: Final = 30.0


def max_age(step: float) -> float:
    """How old a web source's newest sample may be while the source is current: a step's sample, stamped at
    its end, is emitted `GRACE` past the next step's end, at the next flush."""
    return 2 * step + GRACE + FLUSH_INTERVAL


class WebLogAnalyzer:
    """One sink for every web source; `configure` swaps the sources on reload without losing counts."""

    def __init__(self, sources: Sequence[WebSource], logs: Subscription[LogRecord], samples: Channel[Sample],
                 store: WebLogSink, *, flush_interval: float = FLUSH_INTERVAL, grace: float = GRACE, idle: float = 2.0,
                 batch_size: int = 2000, keep: int = DEFAULT_KEEP, retention: float = 400 * 86400.0,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.name = "analysis/weblog"
        self.counters = Counters()
        self.logs = logs
        self.samples = samples
        self.store = store
        self.flush_interval = flush_interval
        self.grace = grace
        self.idle = idle
        self.batch_size = batch_size
        self.keep = keep
        self.retention = retention
        self._clock = clock
        self._monotonic = monotonic
        self._started = clock()
        self._states: dict[str, _State] = {}
        self._retired: list[_State] = []
        self._flushing: asyncio.Task[None] | None = None
        self.configure(sources)

    def configure(self, sources: Sequence[WebSource]) -> None:
        """Apply a new set of web sources; counts of removed ones are still flushed."""
        old = self._states
        self._states = {}
        for src in sources:
            state = old.pop(SOURCE_PREFIX + src.name, None)
            if state is None or state.src.step != src.step:
                if state is not None:
                    self._retired.append(state)
                state = _State(src)
            state.src = src
            self._states[SOURCE_PREFIX + src.name] = state
        self._retired.extend(old.values())

    @property
    def sources(self) -> list[WebSource]:
        return [s.src for s in self._states.values()]

    async def run(self, started: Callable[[], None]) -> None:
        started()
        ticker = asyncio.create_task(self._tick_loop())
        try:
            await self.logs.consume(self.process, self.batch_size, 0.2)
        finally:
            ticker.cancel()
            await self.flush()

    async def _tick_loop(self) -> None:
        next_flush = self._monotonic() + self.flush_interval
        next_prune = self._monotonic()
        while True:
            await asyncio.sleep(0.5)
            await self.emit_due()
            if self._monotonic() >= next_flush:
                next_flush = self._monotonic() + self.flush_interval
                await self.flush()
            if self._monotonic() >= next_prune:
                next_prune = self._monotonic() + 3600.0
                await self._prune()

    async def _prune(self) -> None:
        try:
            self.counters.inc("hourly_rows_pruned", await self.store.prune(self._clock() - self.retention))
        except Exception as e:  # noqa: BLE001 - retention is retried next hour; counting must go on
            self.counters.inc("store_errors")
            log.warning("web-log retention failed, retrying in an hour: %s", e)

    def process(self, records: Sequence[LogRecord]) -> None:
        """Count records of the configured web sources; others are ignored."""
        now = self._monotonic()
        for rec in records:
            state = self._states.get(rec.source)
            if state is None:
                continue
            fields = rec.sd.get("http")
            state.last_arrival = now
            if fields is None and not rec.message.strip():
                continue  # a blank line is no line at all, as in the file scan
            ts = rec.ts
            hour = int(ts) // 3600 * 3600
            agg = state.pending.get(hour)
            if agg is None:
                agg = state.pending[hour] = Aggregate("combined", state.src.site_hosts, self.keep)
            if fields is None:
                agg.add_rejected()
                self.counters.inc("rejected")
                continue
            self.counters.inc("records")
            agg.add_fields(ts, fields)
            state.max_ts = max(state.max_ts, ts)
            step = int(ts // state.src.step)
            if state.emitted is None:
                state.emitted = step - 1
            if step <= state.emitted:
                self.counters.inc("late_for_metrics")
                continue
            counts = state.steps.get(step)
            if counts is None:
                counts = state.steps[step] = [0] * 7
            counts[0] += 1
            with contextlib.suppress(ValueError):
                counts[1] += int(fields.get("bytes", "0") or "0")
            cls = fields.get("status", "")[:1]
            if "1" <= cls <= "5":
                counts[1 + int(cls)] += 1

    async def emit_due(self) -> int:
        """Emit the samples of every step that is closed; returns how many samples went out."""
        now, mono = self._clock(), self._monotonic()
        sent = 0
        for state in self._states.values():
            for sample in self._close_steps(state, now, mono):
                await self.samples.put(sample)
                sent += 1
        self.counters.inc("samples", sent)
        return sent

    def _close_steps(self, state: _State, now: float, mono: float) -> list[Sample]:
        step = state.src.step
        bound = math.floor((state.max_ts - self.grace) / step) - 1 if state.max_ts > -math.inf else None
        if mono - state.last_arrival >= self.idle:
            wall = math.floor((now - self.grace) / step) - 1
            bound = wall if bound is None else max(bound, wall)
            if state.emitted is None:
                state.emitted = int(self._started // step) - 1
        if bound is None or state.emitted is None or bound <= state.emitted:
            return []
        first = max(state.emitted + 1, bound - int(MAX_FILL // step) + 1)
        out: list[Sample] = []
        prefix = metric_prefix(state.src.name)
        for s in range(first, bound + 1):
            counts = state.steps.pop(s, None) or [0] * 7
            ts = (s + 1) * step
            values: list[float | None] = [float(c) for c in counts]
            values.append(counts[6] / counts[0] if counts[0] else None)
            out.extend(Sample(prefix + name, ts, v) for name, v in zip(METRICS, values, strict=True))
        for s in [s for s in state.steps if s <= bound]:
            del state.steps[s]
        state.emitted = bound
        return out

    async def flush(self) -> None:
        """Hand every pending hour to the store; on failure they stay pending and are retried.

        The work runs as its own task, shielded: a cancelled caller (the ticker at
        shutdown) never leaves a write half-known, and the next flush waits for it.
        """
        while self._flushing is not None and not self._flushing.done():
            await asyncio.shield(self._flushing)
        self._flushing = asyncio.create_task(self._flush_now())
        await asyncio.shield(self._flushing)

    async def _flush_now(self) -> None:
        for state in [*self._states.values(), *self._retired]:
            if not state.pending:
                continue
            pending, state.pending = state.pending, {}
            hours = sorted(pending.items())
            for _, agg in hours:
                agg.settle()
            try:
                await self.store.add(state.src.name, hours)
            except Exception as e:  # noqa: BLE001 - any store failure: keep the counts and retry
                self.counters.inc("store_errors")
                log.warning("web-log store write for %s failed, retrying: %s", state.src.name, e)
                for hour, agg in hours:
                    current = state.pending.get(hour)
                    if current is None:
                        state.pending[hour] = agg
                    else:
                        current.merge(agg)
                continue
            self.counters.inc("flushes")
        self._retired = [s for s in self._retired if s.pending]


def create(sources: Sequence[WebSource], logs: Subscription[LogRecord], samples: Channel[Sample],
           store: WebLogSink) -> WebLogAnalyzer:
    return WebLogAnalyzer(sources, logs, samples, store)
