"""Rule evaluation: small state machines fed with explicit times.

Every method takes `now` instead of reading a clock, so the engine drives them
with wall time and tests with the timestamps they choose.  A rule keeps one
*series* per distinct set of series labels (the metric key, or the `per`
fields of a log record); a series that starts or stops breaching yields a
`Change`, which the incident manager turns into an incident.

Times: a threshold's `for` runs on sample timestamps (when the value was
measured); log windows and absence run on arrival time (the line's `received`,
or `now` for samples), which is monotonic here whatever the senders' clocks
say.  A line evaluated late (the engine waited on a locked disk) still counts
where it arrived; the engine ticks log rules at the arrival time of the last
line it read while more wait.

A metric rule also takes *claims*: a value a device's own log states before
any poll reads it (a link-down line: `oper_up` 0).  A claim that breaches
fires at once (no `for`, no `samples`: the device said so) or adds to the
open incident; one that clears resolves only where the rule's own clear
condition holds for it.  The first poll measured after a claim gives the
verdict, noted in the incident's history as `confirmed` or `disagreed`; the
poll then decides as it always does (it reads the present state, the log
told of a moment), so a disagreeing poll resolves the incident if the rule
clears on its value, with a summary saying that the log and the counters
disagree (a bounce shorter than the poll interval, a lost up line, or a line
about another interface).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Final, Literal, Protocol

from mepd.config import AlertRuleConfig
from mepd.config.syntax import DISTINCT_MAX, DISTINCT_SHOWN, RECORD_FIELDS, compile_glob, compile_regex, render
from mepd.model import LogRecord, Sample, facility_name, rfc3339, severity_name, severity_number
from mepd.pipeline import Counters
from mepd.store.rrd.files import ANOMALY_PREFIX, FORECAST_PREFIX
from mepd.units import format_duration

ChangeKind = Literal["fire", "update", "resolve"]
SeriesKey = tuple[str, ...]
MAX_LINE = 2000
DISTINCT_VALUE_MAX: Final = 256  # a distinct rule compares (and keeps) values on this many characters

# The fields of a line by their template names (RECORD_FIELDS), as text; None where the line has none.
RECORD_VALUES: Final[Mapping[str, Callable[[LogRecord], str | None]]] = {
    "host": lambda r: r.host, "app": lambda r: r.app, "pid": lambda r: r.pid,
    "facility": lambda r: facility_name(r.facility), "line_severity": lambda r: severity_name(r.severity),
    "msgid": lambda r: r.msgid, "message": lambda r: r.message, "source": lambda r: r.source,
    "peer": lambda r: r.peer,
}


@dataclass(frozen=True, slots=True)
class Change:
    """A series fired, saw more breaching data while firing, or cleared."""

    rule: str
    kind: ChangeKind
    labels: Mapping[str, str]
    ts: float
    value: float | None
    count: int
    summary: str
    lines: tuple[str, ...] = ()
    by: str = "rule"  # what resolved it: the rule on polled data, or a claim's source ("log")
    notes: tuple[tuple[str, Mapping[str, object]], ...] = ()  # more history events for its incident


def fingerprint(rule: str, series: Mapping[str, str]) -> str:
    """Rule name + series labels: stable across reloads that only edit a rule's static labels."""
    text = json.dumps([rule, sorted(series.items())], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def format_line(record: LogRecord) -> str:
    line = f"{rfc3339(record.ts)} {record.host or '-'} {record.app or '-'}: {record.message}"
    return line if len(line) <= MAX_LINE else line[:MAX_LINE] + "…"


def record_fields(record: LogRecord | None) -> dict[str, str]:
    """The matching line's fields for a log rule's summary; what it lacks (or no line: a window restored
    after a restart) is "-", so a template never fails on a line that has no host or pid."""
    if record is None:
        return dict.fromkeys(RECORD_FIELDS, "-")
    return {name: value(record) or "-" for name, value in RECORD_VALUES.items()}


class LogFilter:
    """host/app/source globs, a severity floor and a regex, cheapest test first."""

    def __init__(self, cfg: AlertRuleConfig) -> None:
        self.host = compile_glob(cfg.host) if cfg.host else None
        self.app = compile_glob(cfg.app) if cfg.app else None
        self.source = compile_glob(cfg.source) if cfg.source else None
        self.max_severity = severity_number(cfg.log_severity) if cfg.log_severity else None
        self.pattern = compile_regex(cfg.pattern) if cfg.pattern else None

    def matches(self, r: LogRecord) -> bool:
        if self.max_severity is not None and (r.severity is None or r.severity > self.max_severity):
            return False
        for glob, value in ((self.host, r.host), (self.app, r.app), (self.source, r.source)):
            if glob is not None and (value is None or not glob.match(value)):
                return False
        return self.pattern is None or self.pattern.search(r.message) is not None


class _Series(Protocol):
    firing: bool


class Rule:
    """Shared plumbing: series bookkeeping, labels and the summary text."""

    kind: str = ""
    default_summary: str = "{rule}"
    series: Mapping[SeriesKey, _Series]

    def __init__(self, cfg: AlertRuleConfig) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.series_names = cfg.series_labels
        self.template = cfg.summary or self.default_summary
        self.threshold = cfg.above if cfg.above is not None else cfg.below

    @property
    def wants_samples(self) -> bool:
        return bool(self.cfg.metric)

    @property
    def wants_logs(self) -> bool:
        return not self.cfg.metric

    def observe_sample(self, sample: Sample, now: float) -> list[Change]:  # noqa: ARG002 - kinds override
        return []

    def observe_log(self, record: LogRecord, now: float) -> list[Change]:  # noqa: ARG002 - kinds override
        return []

    def tick(self, now: float) -> list[Change]:  # noqa: ARG002 - kinds override
        return []

    def observe_claim(self, key: str, ts: float, value: float, source: str, line: str) -> list[Change]:  # noqa: ARG002
        """A value of metric `key` a device's own `source` stated at `ts`: only threshold rules act on it."""
        return []

    def firing(self, series: Mapping[str, str]) -> bool:
        s = self.series.get(self.key_of(series))
        return s is not None and s.firing

    def restore(self, series: Mapping[str, str], last_seen: float) -> None:
        """Take back a series whose incident was open before a restart or reload."""

    def release(self, series: Mapping[str, str]) -> None:
        """Forget that a series fires (its incident was resolved by hand), so it can fire anew."""

    def adopt(self, old: Rule) -> None:
        """Carry over the state of the previous version of this rule on reload."""

    def key_of(self, series: Mapping[str, str]) -> SeriesKey:
        return tuple(series.get(n, "") for n in self.series_names)

    def labels_of(self, key: SeriesKey) -> dict[str, str]:
        return dict(zip(self.series_names, key, strict=True))

    def change(
        self, kind: ChangeKind, key: SeriesKey, ts: float, value: float | None, count: int,
        *, lines: tuple[str, ...] = (), total: int | None = None, line: Mapping[str, object] | None = None,
        by: str = "rule", notes: tuple[tuple[str, Mapping[str, object]], ...] = (),
    ) -> Change:
        """`count` is what this change adds to the incident; `total` (default `count`) is what the summary shows;
        `line` is the fields of a log rule's matching line (and a distinct rule's {distinct} and
        {distinct_values}), which its summary shows over labels of the same name."""
        series = self.labels_of(key)
        labels = {**self.cfg.labels, **series}
        fields: dict[str, object] = {
            "rule": self.name, "severity": self.cfg.severity, "value": value, "threshold": self.threshold,
            "count": count if total is None else total,
            "key": "", "host": "", "app": "", "source": "", "pattern": self.cfg.pattern,
            "window": format_duration(self.cfg.window), "for": format_duration(self.cfg.for_),
            "absent": format_duration(self.cfg.absent), "silent": format_duration(value or 0.0),
            "metric": self.cfg.metric, **labels, "labels": labels, **(line or {}),
        }
        return Change(self.name, kind, series, ts, value, count, render(self.template, fields), lines, by, notes)


@dataclass(frozen=True, slots=True)
class Claim:
    """What a device's own log said of a metric, waiting for the next poll's verdict."""

    ts: float
    value: float
    source: str
    line: str


@dataclass(slots=True)
class _Threshold:
    firing: bool = False
    since: float | None = None
    run: int = 0
    last_ts: float = -math.inf
    total: int = 0
    claim: Claim | None = None


class MetricRule(Rule):
    """`above`/`below` for `for` seconds and `samples` samples in a row.

    It clears only past `clear_below`/`clear_above` (hysteresis), so a value
    hovering at the threshold keeps one incident open instead of flapping.
    """

    kind = "metric"

    def __init__(self, cfg: AlertRuleConfig) -> None:
        super().__init__(cfg)
        self.glob = compile_glob(cfg.metric)
        self.series: dict[SeriesKey, _Threshold] = {}
        word = "above" if cfg.above is not None else "below"
        self.default_summary = f"{{key}} is {{value:g}}, {word} {{threshold:g}}"
        self.template = cfg.summary or self.default_summary

    def breaches(self, v: float) -> bool:
        if self.cfg.above is not None:
            return v > self.cfg.above
        assert self.cfg.below is not None
        return v < self.cfg.below

    def clears(self, v: float) -> bool:
        cfg = self.cfg
        if cfg.above is not None:
            return v < cfg.clear_below if cfg.clear_below is not None else v <= cfg.above
        assert cfg.below is not None
        return v > cfg.clear_above if cfg.clear_above is not None else v >= cfg.below

    def observe_sample(self, sample: Sample, now: float) -> list[Change]:  # noqa: ARG002 - `for` runs on sample time
        key = (sample.key,)
        s = self.series.get(key)
        if sample.value is None or (s is None and not self.glob.match(sample.key)):
            return []
        if s is None:
            s = self.series[key] = _Threshold()
        if sample.ts <= s.last_ts:  # older than the newest sample, or than a claim: older news
            return []
        s.last_ts, v = sample.ts, sample.value
        claim, s.claim = s.claim, None
        changes = self._evaluate(s, key, sample.ts, v)
        return self._verdict(claim, sample, changes) if claim is not None and changes else changes

    def observe_claim(self, key: str, ts: float, value: float, source: str, line: str) -> list[Change]:
        k = (key,)
        s = self.series.get(k)
        if s is None and not self.glob.match(key):
            return []
        if s is None:
            s = self.series[k] = _Threshold()
        if ts <= s.last_ts:  # a poll measured after it already told
            return []
        lines = (line,) if line else ()
        note = (source, {"value": value, "line": line})
        if self.breaches(value):
            s.claim, s.last_ts = Claim(ts, value, source, line), ts
            if s.firing:
                s.total += 1
                return [self.change("update", k, ts, value, 1, lines=lines, total=s.total, notes=(note,))]
            s.firing, s.since, s.run, s.total = True, ts, 1, 1
            return [self.change("fire", k, ts, value, 1, lines=lines, notes=(note,))]
        if s.firing and self.clears(value):
            s.claim, s.last_ts = Claim(ts, value, source, line), ts
            s.firing, s.since, s.run = False, None, 0
            return [self.change("resolve", k, ts, value, 0, by=source, notes=(note,))]
        return []

    def _verdict(self, claim: Claim, sample: Sample, changes: list[Change]) -> list[Change]:
        """The poll after a claim: its change carries whether the device's log and its counters agree."""
        assert sample.value is not None
        agree = self.breaches(sample.value) == self.breaches(claim.value)
        detail: dict[str, object] = {"value": sample.value, claim.source: claim.value, "claimed": rfc3339(claim.ts),
                                     "line": claim.line}
        first = changes[0]
        if agree:
            return [replace(first, notes=(*first.notes, ("confirmed", detail))), *changes[1:]]
        said = (f"the device's {claim.source} said {sample.key} = {claim.value:g} at {rfc3339(claim.ts)},"
                f" the poll at {rfc3339(sample.ts)} read {sample.value:g}: {claim.source} and counters disagree")
        detail["note"] = said
        return [replace(first, summary=f"{first.summary} ({said})", notes=(*first.notes, ("disagreed", detail))),
                *changes[1:]]

    def _evaluate(self, s: _Threshold, key: SeriesKey, ts: float, v: float) -> list[Change]:
        if s.firing:
            if self.clears(v):
                s.firing, s.since, s.run = False, None, 0
                return [self.change("resolve", key, ts, v, 0)]
            s.total += self.breaches(v)
            return [self.change("update", key, ts, v, int(self.breaches(v)), total=s.total)]
        if not self.breaches(v):
            s.since, s.run = None, 0
            return []
        if s.since is None:
            s.since = ts
        s.run += 1
        if ts - s.since >= self.cfg.for_ and s.run >= self.cfg.samples:
            s.firing, s.total = True, s.run
            return [self.change("fire", key, ts, v, s.run)]
        return []

    def restore(self, series: Mapping[str, str], last_seen: float) -> None:
        self.series[self.key_of(series)] = _Threshold(firing=True, last_ts=last_seen)

    def release(self, series: Mapping[str, str]) -> None:
        self.series.pop(self.key_of(series), None)

    def adopt(self, old: Rule) -> None:
        if isinstance(old, MetricRule):
            same = old.cfg == self.cfg
            for key, s in old.series.items():
                if same:
                    self.series[key] = s
                elif s.firing:
                    self.series[key] = _Threshold(firing=True, last_ts=s.last_ts)


class DerivedRule(MetricRule):
    """A threshold on samples mepd derives from a metric (`<prefix><key>`), whose incident is the metric key's."""

    prefix = ""

    def observe_sample(self, sample: Sample, now: float) -> list[Change]:
        if not sample.key.startswith(self.prefix):
            return []
        return super().observe_sample(Sample(sample.key[len(self.prefix):], sample.ts, sample.value), now)

    def observe_claim(self, key: str, ts: float, value: float, source: str, line: str) -> list[Change]:  # noqa: ARG002
        """Its samples are mepd's own derivations, which no device states."""
        return []


class AnomalyRule(DerivedRule):
    """Fires while rrdtool's Holt-Winters FAILURES flags the key: the RRD store gives the key's file those
    archives and reports each FAILURES row as an `anomaly.<key>` sample, 1 abnormal, 0 normal."""

    prefix = ANOMALY_PREFIX

    def __init__(self, cfg: AlertRuleConfig) -> None:
        super().__init__(cfg)
        self.default_summary = "{key} is abnormal: outside the band rrdtool predicts from its past seasons"
        self.template = cfg.summary or self.default_summary

    def breaches(self, v: float) -> bool:
        return v >= 1

    def clears(self, v: float) -> bool:
        return v < 1


def forecast_prefix(rule: str) -> str:
    """The keys of a forecast rule's samples: `forecast.<rule>.<key>`, the days until the key's trend
    crosses the rule's `above` (mepd.alerts.forecasts)."""
    return f"{FORECAST_PREFIX}{rule}."


class ForecastRule(DerivedRule):
    """Fires when the key's least-squares trend crosses `above` sooner than `forecast` from now."""

    def __init__(self, cfg: AlertRuleConfig) -> None:
        super().__init__(cfg)
        self.prefix = forecast_prefix(cfg.name)
        self.days = cfg.forecast / 86400
        self.default_summary = "{key} reaches {threshold:g} in {value:.1f} days at its present trend"
        self.template = cfg.summary or self.default_summary

    def breaches(self, v: float) -> bool:
        return v < self.days

    def clears(self, v: float) -> bool:
        return v >= self.days


@dataclass(slots=True)
class _Window:
    times: deque[float]
    lines: deque[str]
    firing: bool = False
    attached: int = 0
    total: int = 0
    last: LogRecord | None = None  # the newest matching line, which the summary shows, resolved included


class LogRule(Rule):
    """At least `count` matching lines within a sliding `window`; the first `attach` lines are kept."""

    kind = "log"
    default_summary = "{count} line(s) matching /{pattern}/ within {window}"

    def __init__(self, cfg: AlertRuleConfig) -> None:
        super().__init__(cfg)
        self.filter = LogFilter(cfg)
        self.series: dict[SeriesKey, _Window] = {}

    def _new(self) -> _Window:
        # Only the newest `count` matches matter: the rule holds iff all of them are inside the window.
        return _Window(deque(maxlen=self.cfg.count), deque(maxlen=self.cfg.count))

    def observe_log(self, record: LogRecord, now: float) -> list[Change]:  # noqa: ARG002 - on arrival time
        if not self.filter.matches(record):
            return []
        key = tuple(getattr(record, n) or "" for n in self.series_names)
        w = self.series.get(key)
        if w is None:
            w = self.series[key] = self._new()
        # A line received before the newest one (a clock step) counts as received with it: times stay sorted.
        ts, line = max(record.received, w.times[-1] if w.times else -math.inf), format_line(record)
        w.times.append(ts)
        w.lines.append(line)
        w.last = record
        if w.firing:
            extra = (line,) if w.attached < self.cfg.attach else ()
            w.attached += len(extra)
            w.total += 1
            return [self.change("update", key, ts, float(w.total), 1, lines=extra, total=w.total,
                                line=record_fields(record))]
        self._expire(w, ts)
        if len(w.times) >= self.cfg.count:
            w.firing, w.total = True, len(w.times)
            lines = tuple(w.lines)[: self.cfg.attach]
            w.attached = len(lines)
            return [self.change("fire", key, ts, float(len(w.times)), len(w.times), lines=lines,
                                line=record_fields(record))]
        return []

    def _expire(self, w: _Window, now: float) -> None:
        cutoff = now - self.cfg.window
        while w.times and w.times[0] < cutoff:
            w.times.popleft()
            w.lines.popleft()

    def tick(self, now: float) -> list[Change]:
        out: list[Change] = []
        for key, w in list(self.series.items()):
            self._expire(w, now)
            if w.firing and len(w.times) < self.cfg.count:
                w.firing = False
                out.append(self.change("resolve", key, now, float(len(w.times)), 0, line=record_fields(w.last)))
            if not w.times and not w.firing:
                del self.series[key]
        return out

    def restore(self, series: Mapping[str, str], last_seen: float) -> None:
        """The window was lost with the process: assume the burst ended at the incident's last line."""
        w = self._new()
        w.times.extend([last_seen] * self.cfg.count)
        w.lines.extend([""] * self.cfg.count)
        w.firing, w.attached = True, self.cfg.attach
        self.series[self.key_of(series)] = w

    def release(self, series: Mapping[str, str]) -> None:
        self.series.pop(self.key_of(series), None)

    def held(self) -> Iterator[tuple[dict[str, str], float]]:
        """The firing series and the arrival time of their newest line, for the next version of the rule."""
        for key, w in self.series.items():
            if w.firing:
                yield self.labels_of(key), w.times[-1] if w.times else -math.inf

    def adopt(self, old: Rule) -> None:
        if isinstance(old, LogRule) and old.cfg == self.cfg:
            self.series.update(old.series)
        elif isinstance(old, LogRule | DistinctRule):
            for series, last_seen in old.held():
                self.restore(series, last_seen)


@dataclass(slots=True)
class _Distinct:
    # value -> arrival time of its newest line, least recently seen first: expiry pops from the front
    seen: OrderedDict[str, float] = field(default_factory=OrderedDict)
    # the newest line of each of the last `attach` values seen: the lines a firing shows, one per value
    lines: OrderedDict[str, str] = field(default_factory=OrderedDict)
    firing: bool = False
    attached: int = 0
    total: int = 0
    newest: float = -math.inf  # arrival time of the newest line
    held: float = -math.inf  # restored after a restart or a reload: holds as if full until this leaves the window
    last: LogRecord | None = None  # the newest matching line, which the summary shows, resolved included


class DistinctRule(Rule):
    """At least `count` distinct values of a line's field `distinct` (host, app, ...) within a sliding `window`.

    With `per`, each series counts the values of its own lines.  A line without the field names no value
    and is not counted.  At most DISTINCT_MAX values are kept per series, the most recently seen: a new one
    past it forgets the least recently seen (counted in `distinct.forgotten`); as `count` is at most
    DISTINCT_MAX, whether the rule holds stays exact, only {distinct} stops at DISTINCT_MAX.  The incident
    counts values: those in the window when it fires, then each one new to the window.
    """

    kind = "log"

    def __init__(self, cfg: AlertRuleConfig, counters: Counters | None = None) -> None:
        super().__init__(cfg)
        self.filter = LogFilter(cfg)
        self.value_of = RECORD_VALUES[cfg.distinct]
        self.counters = counters if counters is not None else Counters()
        self.series: dict[SeriesKey, _Distinct] = {}
        self.default_summary = (f"{{distinct}} distinct {cfg.distinct} values in lines matching /{{pattern}}/"
                                " within {window}: {distinct_values}")
        self.template = cfg.summary or self.default_summary

    def observe_log(self, record: LogRecord, now: float) -> list[Change]:  # noqa: ARG002 - on arrival time
        if not self.filter.matches(record):
            return []
        value = self.value_of(record)
        if not value:
            return []
        if len(value) > DISTINCT_VALUE_MAX:
            value = value[:DISTINCT_VALUE_MAX] + "…"
        key = tuple(getattr(record, n) or "" for n in self.series_names)
        w = self.series.get(key)
        if w is None:
            w = self.series[key] = _Distinct()
        # A line received before the newest one (a clock step) counts as received with it: `seen` stays sorted.
        ts = w.newest = max(record.received, w.newest)
        self._expire(w, ts)
        new = value not in w.seen
        if new and len(w.seen) >= DISTINCT_MAX:
            w.seen.popitem(last=False)
            self.counters.inc("distinct.forgotten")
        w.seen[value] = ts
        w.seen.move_to_end(value)
        line = w.lines[value] = format_line(record)
        w.lines.move_to_end(value)
        if len(w.lines) > self.cfg.attach:
            w.lines.popitem(last=False)
        w.last = record
        if w.firing:
            extra = (line,) if w.attached < self.cfg.attach else ()
            w.attached += len(extra)
            w.total += new
            return [self._change("update", key, w, ts, int(new), lines=extra)]
        if len(w.seen) >= self.cfg.count:
            w.firing, w.total = True, len(w.seen)
            lines = tuple(text for v, text in w.lines.items() if v in w.seen)
            w.attached = len(lines)
            return [self._change("fire", key, w, ts, w.total, lines=lines)]
        return []

    def _change(self, kind: ChangeKind, key: SeriesKey, w: _Distinct, ts: float, count: int,
                lines: tuple[str, ...] = ()) -> Change:
        shown = list(islice(w.seen, DISTINCT_SHOWN))
        more = f" and {len(w.seen) - len(shown)} more" if len(w.seen) > len(shown) else ""
        fields = {**record_fields(w.last), "distinct": len(w.seen), "distinct_values": ", ".join(shown) + more}
        return self.change(kind, key, ts, float(len(w.seen)), count, lines=lines, total=w.total, line=fields)

    def _expire(self, w: _Distinct, now: float) -> None:
        cutoff = now - self.cfg.window
        while w.seen:
            value, ts = next(iter(w.seen.items()))
            if ts >= cutoff:
                break
            del w.seen[value]

    def tick(self, now: float) -> list[Change]:
        out: list[Change] = []
        for key, w in list(self.series.items()):
            self._expire(w, now)
            if w.firing and len(w.seen) < self.cfg.count and w.held < now - self.cfg.window:
                w.firing = False
                out.append(self._change("resolve", key, w, now, 0))
            if not w.seen and not w.firing:
                del self.series[key]
        return out

    def restore(self, series: Mapping[str, str], last_seen: float) -> None:
        """The values were lost with the process: assume the burst ended at the incident's last line."""
        w = _Distinct(firing=True, attached=self.cfg.attach, newest=last_seen, held=last_seen)
        self.series[self.key_of(series)] = w

    def release(self, series: Mapping[str, str]) -> None:
        self.series.pop(self.key_of(series), None)

    def held(self) -> Iterator[tuple[dict[str, str], float]]:
        """The firing series and the arrival time of their newest line, for the next version of the rule."""
        for key, w in self.series.items():
            if w.firing:
                yield self.labels_of(key), w.newest

    def adopt(self, old: Rule) -> None:
        if isinstance(old, DistinctRule) and old.cfg == self.cfg:
            self.series.update(old.series)
        elif isinstance(old, LogRule | DistinctRule):
            for series, last_seen in old.held():
                self.restore(series, last_seen)


@dataclass(slots=True)
class _Presence:
    last_seen: float
    firing: bool = False


class AbsenceRule(Rule):
    """Fires when a metric glob or a log filter has seen nothing for `absent` seconds.

    Without `per`, one series exists from the start, so "never any data" fires
    too; with `per` (e.g. host), a series exists once it has sent something,
    which is how "a host that used to send" is told from one that never did.
    """

    kind = "absence"
    default_summary = "{rule}: nothing received for {silent}"

    def __init__(self, cfg: AlertRuleConfig, now: float) -> None:
        super().__init__(cfg)
        self.glob = compile_glob(cfg.metric) if cfg.metric else None
        self.filter = LogFilter(cfg)
        self.series: dict[SeriesKey, _Presence] = {} if self.series_names else {(): _Presence(now)}

    def _seen(self, key: SeriesKey, now: float) -> list[Change]:
        p = self.series.get(key)
        if p is None:
            self.series[key] = _Presence(now)
            return []
        silent = now - p.last_seen
        p.last_seen = max(p.last_seen, now)
        if p.firing:
            p.firing = False
            return [self.change("resolve", key, now, silent, 0)]
        return []

    def observe_sample(self, sample: Sample, now: float) -> list[Change]:
        if self.glob is None or sample.value is None or not self.glob.match(sample.key):
            return []
        return self._seen(tuple(sample.key for _ in self.series_names), now)

    def observe_log(self, record: LogRecord, now: float) -> list[Change]:  # noqa: ARG002 - on arrival time
        if self.glob is not None or not self.filter.matches(record):
            return []
        return self._seen(tuple(getattr(record, n) or "" for n in self.series_names), record.received)

    def tick(self, now: float) -> list[Change]:
        out: list[Change] = []
        for key, p in self.series.items():
            if not p.firing and now - p.last_seen >= self.cfg.absent:
                p.firing = True
                out.append(self.change("fire", key, now, now - p.last_seen, 1))
        return out

    def restore(self, series: Mapping[str, str], last_seen: float) -> None:
        self.series[self.key_of(series)] = _Presence(last_seen, firing=True)

    def release(self, series: Mapping[str, str]) -> None:
        p = self.series.get(self.key_of(series))
        if p is not None:
            p.firing = False

    def adopt(self, old: Rule) -> None:
        if isinstance(old, AbsenceRule) and (old.cfg.metric, old.cfg.per) == (self.cfg.metric, self.cfg.per):
            self.series.update(old.series)


def build(cfg: AlertRuleConfig, now: float, counters: Counters | None = None) -> Rule:
    """The evaluator for a validated rule config; `now` starts the clock of absence rules; `counters` are
    the engine's, where a distinct rule counts the values it forgot past its cap."""
    if cfg.kind == "absence":
        return AbsenceRule(cfg, now)
    if cfg.kind == "log":
        return DistinctRule(cfg, counters) if cfg.distinct else LogRule(cfg)
    if cfg.anomaly is not None:
        return AnomalyRule(cfg)
    return ForecastRule(cfg) if cfg.forecast else MetricRule(cfg)
