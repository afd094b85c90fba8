"""Metrics derived from the log records: intake counts per host, app and severity, and `[[logs.metric]]` counters.

Every value is a count (or a `[[logs.metric]]`'s sum) over one step of `[logs] step`,
stamped at the step's end, as the web-log metrics are:

    logs.all.records                  every record received
    logs.host.<host>.records          records from <host> (the first `max_hosts` hosts; the rest: logs.host._other)
    logs.host.<host>.errors           of those, severity err or more urgent
    logs.app.<app>.records            the `top_apps` busiest apps (a decaying count), the rest in logs.app._other
    logs.severity.<name>.records      per severity, emerg .. debug, and `none` for records without one
    logs.metric.<name>.total          a [[logs.metric]]'s count (or sum of its `value` group) in the step
    logs.metric.<name>.by.<value>     the same per value of its `by`, at most `max_series`; the rest in by._other

A host or app becomes key parts: characters other than letters, digits, "_" and
"-" become "_", dots still separate parts (`logs.host.web1.example.com.records`),
a missing one is `_none`.  Steps go by arrival (`received`, mepd's own clock): it
is mepd's intake that is counted, and devices' clocks drift.  A step is emitted
`grace` seconds after its end, with every series already known (zeros for the
quiet ones: an RRD sample missing for longer than the heartbeat is unknown, not
zero); a record handed over after its step went out counts in the next one
(`late`).  Patterns run on untrusted text, so they are RE2 (`compile_regex`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from mepd.config.syntax import Regex, compile_glob, compile_regex
from mepd.model import SEVERITIES, LogRecord, Sample, severity_number
from mepd.pipeline import Channel, Counters, Subscription

log = logging.getLogger(__name__)

PREFIX: Final = "logs."
OTHER: Final = "_other"
NONE: Final = "_none"
ERR: Final = SEVERITIES.index("err")
MAX_FILL: Final = 86400.0  # at most a day of zero steps after a long silence (a suspended machine)
DECAY: Final = 0.5  # an app's score halves every step: the top apps are those busy lately
_BAD: Final = re.compile(r"[^A-Za-z0-9_-]")


def key_part(text: str | None) -> str:
    """A host, app or label value as metric key parts; `_none` for a missing or empty one."""
    parts = [_BAD.sub("_", p) for p in (text or "").split(".") if p]
    return ".".join(parts) or NONE


class MetricLike(Protocol):
    """The fields of a `[[logs.metric]]` (the config owns the dataclass)."""

    @property
    def name(self) -> str: ...
    @property
    def pattern(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def app(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def value(self) -> str: ...
    @property
    def by(self) -> str: ...
    @property
    def max_series(self) -> int: ...


class LogsLike(Protocol):
    """The fields of `[logs]`."""

    @property
    def intake(self) -> bool: ...
    @property
    def step(self) -> float: ...
    @property
    def top_apps(self) -> int: ...
    @property
    def max_hosts(self) -> int: ...
    @property
    def metric(self) -> Sequence[MetricLike]: ...


@dataclass(slots=True)
class _Metric:
    """A `[[logs.metric]]` compiled, with the `by` values it has series for."""

    cfg: MetricLike
    regex: Regex
    filters: tuple[tuple[str, re.Pattern[str]], ...]
    max_severity: int | None
    series: set[str] = field(default_factory=set)

    @classmethod
    def build(cls, cfg: MetricLike) -> _Metric:
        filters = tuple((name, compile_glob(glob)) for name in ("host", "app", "source")
                        if (glob := getattr(cfg, name)))
        return cls(cfg, compile_regex(cfg.pattern), filters,
                   severity_number(cfg.severity) if cfg.severity else None)

    def match(self, rec: LogRecord) -> tuple[float, str] | None:
        """(amount, `by` value) for a record this metric counts; None otherwise.  ValueError: the `value`
        group captured no number."""
        for name, glob in self.filters:
            text = getattr(rec, name)
            if text is None or not glob.fullmatch(text):
                return None
        if self.max_severity is not None and (rec.severity is None or rec.severity > self.max_severity):
            return None
        m = self.regex.search(rec.message)
        if m is None:
            return None
        amount = float(m.group(self.cfg.value)) if self.cfg.value else 1.0  # type: ignore[attr-defined]
        if not math.isfinite(amount):
            raise ValueError(f"not a finite number: {amount}")
        by = self.cfg.by
        if not by:
            return amount, ""
        label = getattr(rec, by) if by in ("host", "app", "source") else m.group(by)  # type: ignore[attr-defined]
        return amount, key_part(label)


@dataclass(slots=True)
class _Step:
    """What one step has counted so far."""

    records: int = 0
    hosts: Counter[str] = field(default_factory=Counter)
    host_errors: Counter[str] = field(default_factory=Counter)
    apps: Counter[str] = field(default_factory=Counter)
    severities: Counter[str] = field(default_factory=Counter)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> by value ("" = total) -> sum


def metric_keys(name: str) -> str:
    """What the keys of a `[[logs.metric]]` named `name` start with."""
    return f"{PREFIX}metric.{name}."


class LogMetrics:
    """One consumer of the log channel for every log-derived metric; `configure` applies a reload."""

    def __init__(self, cfg: LogsLike, logs: Subscription[LogRecord], samples: Channel[Sample], *,
                 grace: float = 2.0, batch_size: int = 2000, clock: Callable[[], float] = time.time) -> None:
        self.name = "analysis/logs"
        self.counters = Counters()
        self.counters.declare("records", "late", "samples", "value_not_a_number", "over_max_series")
        self.logs = logs
        self.samples = samples
        self.grace = grace
        self.batch_size = batch_size
        self._clock = clock
        self._steps: dict[int, _Step] = {}
        self._emitted = 0
        self._hosts: set[str] = set()
        self._app_scores: dict[str, float] = {}
        self._metrics: dict[str, _Metric] = {}
        self._known: set[str] = set()  # keys emitted so far
        self.cfg = cfg
        self.configure(cfg, reset=True)

    def configure(self, cfg: LogsLike, *, reset: bool = False) -> None:
        """Apply a new `[logs]`; a metric whose config is unchanged keeps its series, a new step starts over."""
        if reset or cfg.step != self.cfg.step:
            self._steps = {}
            self._emitted = int(self._clock() // cfg.step) - 1
        if not cfg.intake:
            self._hosts = set()
            self._app_scores = {}
        old = self._metrics
        self._metrics = {}
        for m in cfg.metric:
            kept = old.get(m.name)
            self._metrics[m.name] = kept if kept is not None and kept.cfg == m else _Metric.build(m)
        self.cfg = cfg

    @property
    def active(self) -> bool:
        return self.cfg.intake or bool(self._metrics)

    async def run(self, started: Callable[[], None]) -> None:
        started()
        ticker = asyncio.create_task(self._tick_loop())
        try:
            await self.logs.consume(self.process, self.batch_size, 0.2)
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            await self.emit_due()

    def process(self, records: Sequence[LogRecord]) -> None:
        """Count the records into their steps (by arrival)."""
        if not self.active:
            return
        step_len, intake = self.cfg.step, self.cfg.intake
        for rec in records:
            s = int(rec.received // step_len)
            if s <= self._emitted:
                s = self._emitted + 1
                self.counters.inc("late")
            step = self._steps.get(s)
            if step is None:
                step = self._steps[s] = _Step()
            if intake:
                self._count_intake(step, rec)
            for name, metric in self._metrics.items():
                self._count_metric(step, name, metric, rec)
        self.counters.inc("records", len(records))

    def _count_intake(self, step: _Step, rec: LogRecord) -> None:
        step.records += 1
        host = key_part(rec.host)
        if host not in self._hosts:
            if len(self._hosts) < self.cfg.max_hosts:
                self._hosts.add(host)
            else:
                host = OTHER
        step.hosts[host] += 1
        sev = rec.severity
        if sev is not None and sev <= ERR:
            step.host_errors[host] += 1
        step.apps[key_part(rec.app)] += 1
        step.severities[SEVERITIES[sev] if sev is not None and 0 <= sev < len(SEVERITIES) else "none"] += 1

    def _count_metric(self, step: _Step, name: str, metric: _Metric, rec: LogRecord) -> None:
        try:
            found = metric.match(rec)
        except (ValueError, TypeError):  # the value group captured text that is no number (or nothing)
            self.counters.inc("value_not_a_number")
            return
        if found is None:
            return
        amount, label = found
        sums = step.metrics.get(name)
        if sums is None:
            sums = step.metrics[name] = {}
        sums[""] = sums.get("", 0.0) + amount
        if not metric.cfg.by:
            return
        if label not in metric.series:
            if len(metric.series) < metric.cfg.max_series:
                metric.series.add(label)
            else:
                label = OTHER
                self.counters.inc("over_max_series")
        sums[label] = sums.get(label, 0.0) + amount

    async def emit_due(self) -> int:
        """Emit the samples of every step whose end is `grace` past; returns how many went out."""
        step_len = self.cfg.step
        bound = math.floor((self._clock() - self.grace) / step_len) - 1
        if bound <= self._emitted:
            return 0
        first = max(self._emitted + 1, bound - int(MAX_FILL // step_len) + 1)
        out: list[Sample] = []
        for s in range(first, bound + 1):
            for sample in self._samples((s + 1) * step_len, self._steps.pop(s) if s in self._steps else _Step()):
                if sample.key not in self._known:
                    # A new series' file starts a step earlier: its first step would else have only a second of
                    # the file's time known and be stored as unknown.
                    self._known.add(sample.key)
                    out.append(Sample(sample.key, sample.ts - step_len, 0.0))
                out.append(sample)
        for s in [s for s in self._steps if s <= bound]:
            del self._steps[s]
        self._emitted = bound
        for sample in out:
            await self.samples.put(sample)
        self.counters.inc("samples", len(out))
        return len(out)

    def _samples(self, ts: float, step: _Step) -> list[Sample]:
        out: list[Sample] = []
        if self.cfg.intake:
            out.append(Sample(f"{PREFIX}all.records", ts, float(step.records)))
            for host in sorted(self._hosts | set(step.hosts)):
                out.append(Sample(f"{PREFIX}host.{host}.records", ts, float(step.hosts[host])))
                out.append(Sample(f"{PREFIX}host.{host}.errors", ts, float(step.host_errors[host])))
            out += [Sample(f"{PREFIX}severity.{sev}.records", ts, float(step.severities[sev]))
                    for sev in (*SEVERITIES, "none")]
            out += self._app_samples(ts, step.apps)
        for name, metric in self._metrics.items():
            sums = step.metrics.get(name, {})
            prefix = metric_keys(name)
            out.append(Sample(prefix + "total", ts, sums.get("", 0.0)))
            if metric.cfg.by:
                labels = sorted(metric.series | {k for k in sums if k})
                out += [Sample(f"{prefix}by.{label}", ts, sums.get(label, 0.0)) for label in labels]
        return out

    def _app_samples(self, ts: float, apps: Counter[str]) -> list[Sample]:
        """The top apps by decaying score get their own series this step; the rest is summed in `_other`."""
        scores = self._app_scores
        for app in list(scores):
            scores[app] *= DECAY
            if scores[app] < 0.01 and app not in apps:
                del scores[app]
        for app, n in apps.items():
            scores[app] = scores.get(app, 0.0) + n
        top = sorted(scores, key=lambda a: (-scores[a], a))[: self.cfg.top_apps]
        if len(scores) > 10 * self.cfg.top_apps:  # a flood of one-off names: keep memory bounded
            self._app_scores = {a: scores[a] for a in sorted(scores, key=lambda a: -scores[a])[:10 * self.cfg.top_apps]}
        chosen = set(top)
        out = [Sample(f"{PREFIX}app.{app}.records", ts, float(apps[app])) for app in sorted(chosen)]
        other = sum(n for app, n in apps.items() if app not in chosen)
        out.append(Sample(f"{PREFIX}app.{OTHER}.records", ts, float(other)))
        return out


def create(cfg: LogsLike, logs: Subscription[LogRecord], samples: Channel[Sample]) -> LogMetrics:
    return LogMetrics(cfg, logs, samples)
