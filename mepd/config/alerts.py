"""The config of alert rules, their actions, and where notifications go."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final, Literal

from mepd.config.common import ca_file_errors
from mepd.config.convert import Duration, FilePath
from mepd.config.syntax import (
    DISTINCT_MAX,
    DISTINCT_TEMPLATE_FIELDS,
    LABEL_NAME,
    LOG_TEMPLATE_FIELDS,
    RECORD_FIELDS,
    TEMPLATE_FIELDS,
    compile_regex,
    glob_error,
    template_error,
)
from mepd.errors import quoted
from mepd.model import IncidentSeverity, severity_number


@dataclass(frozen=True, slots=True)
class AlertActionConfig:
    """A corrective action, Monit style: an argv (never a shell line) with a timeout and a cooldown.

    With `verify`, the rule's actions are steps tried in turn: each must see the
    incident clear within `verify` of its exit, else it is run again (up to
    `attempts`) or the next step runs; when the last one failed the incident escalates."""

    argv: tuple[str, ...]
    timeout: Duration = 30.0
    cooldown: Duration = 600.0
    max_per_hour: int = 6
    on_resolved: bool = False
    kill_grace: Duration = 5.0
    verify: Duration = 0.0
    attempts: int = 1

    def check(self) -> Iterator[tuple[str, str]]:
        if not self.argv:
            yield "argv", 'must name a program, like ["/usr/bin/systemctl", "restart", "apache2"]'
        elif not os.path.isabs(self.argv[0]):
            yield "argv", f"the program must be an absolute path (no PATH search): {quoted(self.argv[0])}"
        if self.timeout <= 0:
            yield "timeout", "must be more than 0s"
        if self.max_per_hour < 1:
            yield "max_per_hour", f"must be at least 1, got {self.max_per_hour}"
        if self.verify < 0:
            yield "verify", "must be 0s (not verified) or more"
        if not 1 <= self.attempts <= 100:
            yield "attempts", f"expected 1-100, got {self.attempts}"
        if self.attempts > 1 and not self.verify:
            yield "attempts", "only for verified steps (with `verify`)"
        if self.verify and self.on_resolved:
            yield "on_resolved", "a verified step runs on firing, to clear the incident"


@dataclass(frozen=True, slots=True)
class AnomalyConfig:
    """`anomaly = { season = "1d" }` of a rule: rrdtool's Holt-Winters prediction of the metric over a season,
    abnormal when `failures` of the last `window` values leave the confidence band (rrdtool's defaults)."""

    season: Duration
    failures: int = 7
    window: int = 9

    def check(self) -> Iterator[tuple[str, str]]:
        if self.season < 60:
            yield "season", "must be at least 1m"
        if not 1 <= self.window <= HW_WINDOW_MAX:
            yield "window", f"must be from 1 to {HW_WINDOW_MAX} (rrdtool's limit), got {self.window}"
        if not 1 <= self.failures <= self.window:
            yield "failures", f"must be from 1 to `window` ({self.window}), got {self.failures}"


HW_WINDOW_MAX: Final = 28
FORECAST_HORIZON_MAX: Final = 365 * 86400.0  # mepd.analysis.forecast.HORIZON: no crossing is sought further


@dataclass(frozen=True, slots=True)
class AlertRuleConfig:
    """One rule: a metric threshold (`metric` + `above`/`below`), a log pattern, or an absence (`absent`)."""

    name: str
    severity: IncidentSeverity = "warning"
    labels: dict[str, str] = field(default_factory=dict, hash=False)  # hash=False: configs stay hashable
    summary: str = ""
    metric: str = ""
    above: float | None = None
    below: float | None = None
    clear_above: float | None = None
    clear_below: float | None = None
    for_: Duration = field(default=0.0, metadata={"key": "for"})
    samples: int = 1
    pattern: str = ""
    host: str = ""
    app: str = ""
    source: str = ""
    log_severity: str = ""
    count: int = 1
    window: Duration = 300.0
    distinct: str = ""  # a record field: `count` distinct values of it within `window`, not `count` lines
    attach: int = 10
    absent: Duration = 0.0
    per: tuple[str, ...] = ()
    action: tuple[AlertActionConfig, ...] = ()
    forecast: Duration = 0.0  # a horizon: fires when the metric's trend crosses `above` sooner than this
    anomaly: AnomalyConfig | None = None
    escalate_severity: IncidentSeverity | Literal[""] = ""  # "": one level up when the last verified step failed
    flap_threshold: int = 3  # fire-then-resolve cycles within flap_window; more makes the incident flapping
    flap_window: Duration = 3600.0
    flap_actions: bool = False  # run actions while flapping too
    parent: str = ""  # a metric key saying the path to this rule's series is up: 0 suppresses its incidents

    @property
    def steps(self) -> bool:
        """The actions are verified steps, tried in turn (else each runs on every firing)."""
        return any(a.verify for a in self.action)

    @property
    def kind(self) -> Literal["metric", "log", "absence"]:
        if self.absent > 0:
            return "absence"
        return "log" if self.pattern else "metric"

    @property
    def series_labels(self) -> tuple[str, ...]:
        """The labels that tell one incident of this rule from another."""
        if self.kind == "metric":
            return ("key",)
        return self.per

    def check(self) -> Iterator[tuple[str, str]]:  # noqa: PLR0912, PLR0915 - one branch per documented constraint
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            yield "name", f'expected letters, digits, "_", "." or "-" (MQTT topics use it), got {quoted(self.name)}'
        globs = {"metric": self.metric, "host": self.host, "app": self.app, "source": self.source}
        for key, glob in globs.items():
            if glob and (err := glob_error(glob)):
                yield key, err
        if self.pattern:
            try:
                compile_regex(self.pattern)
            except ValueError as e:
                yield "pattern", f"invalid regular expression (RE2 syntax): {e}"
        if self.log_severity:
            try:
                severity_number(self.log_severity)
            except ValueError as e:
                yield "log_severity", str(e)
        for name in self.labels:
            if not LABEL_NAME.fullmatch(name):
                yield f"labels.{name}", 'label names are letters, digits and "_", not starting with a digit'
        kind = self.kind
        is_log = bool(self.pattern or self.host or self.app or self.source or self.log_severity)
        if kind == "metric" and not self.metric:
            yield "metric", "a rule needs `metric` with `above` or `below`, a `pattern`, or `absent`"
        elif kind == "metric" and self.anomaly is None and (self.above is None) == (self.below is None):
            yield "above", "a metric rule needs exactly one of `above` and `below`"
        elif kind == "metric" and is_log:
            yield "metric", "a metric rule takes no log filters (pattern, host, app, source, log_severity)"
        if kind != "metric":
            for key, value in (("above", self.above), ("below", self.below), ("for", self.for_ or None)):
                if value is not None:
                    yield key, f"only for metric threshold rules, not {kind} rules"
        if kind == "log" and self.metric:
            yield "metric", "a log pattern rule cannot also watch a metric"
        if kind == "absence" and self.metric and is_log:
            yield "absent", "watch either a metric glob or log filters, not both"
        if self.clear_below is not None and (self.above is None or self.clear_below > self.above):
            yield "clear_below", "needs `above`, and must not be more than it"
        if self.clear_above is not None and (self.below is None or self.clear_above < self.below):
            yield "clear_above", "needs `below`, and must not be less than it"
        if self.samples < 1:
            yield "samples", f"must be at least 1, got {self.samples}"
        if self.count < 1:
            yield "count", f"must be at least 1, got {self.count}"
        if self.window <= 0:
            yield "window", "must be more than 0s"
        if self.attach < 0:
            yield "attach", f"must be 0 or more, got {self.attach}"
        yield from self._distinct_errors(kind)
        yield from self._prediction_errors(kind)
        if self.steps:
            for i, a in enumerate(self.action):
                if not a.verify:
                    yield f"action[{i}].verify", "either every action of a rule is a verified step, or none is"
        if self.escalate_severity and not self.steps:
            yield "escalate_severity", "only for rules whose actions are verified steps (with `verify`)"
        if self.flap_threshold < 0:
            yield "flap_threshold", f"must be 0 (no flap damping) or more, got {self.flap_threshold}"
        if not 0 < self.flap_window <= 7 * 86400:
            yield "flap_window", "expected more than 0s and at most 7d"
        if self.parent and any(c.isspace() for c in self.parent):
            yield "parent", f"expected a metric key, got {quoted(self.parent)}"
        allowed = () if kind == "metric" else ("key",) if self.metric else ("host", "app", "source")
        for i, name in enumerate(self.per):
            if name not in allowed:
                why = " or ".join(allowed) if allowed else "nothing (they are always per metric key)"
                yield f"per[{i}]", f"{kind} rules on {'metrics' if self.metric else 'logs'} split by {why}"
        fields = (TEMPLATE_FIELDS if kind != "log" else DISTINCT_TEMPLATE_FIELDS if self.distinct
                  else LOG_TEMPLATE_FIELDS)
        if err := template_error(self.summary, (*self.labels, *self.series_labels), fields):
            yield "summary", err

    def _prediction_errors(self, kind: str) -> Iterator[tuple[str, str]]:
        """A forecast rule is a metric rule with `above`; an anomaly rule takes no threshold."""
        if self.forecast and self.anomaly is not None:
            yield "forecast", "a rule is a forecast or an anomaly rule, not both"
        elif (self.forecast or self.anomaly is not None) and (kind != "metric" or not self.metric):
            yield "forecast" if self.forecast else "anomaly", "needs `metric` (and no pattern or absent)"
        elif self.forecast:
            if self.forecast < 0 or self.forecast > FORECAST_HORIZON_MAX:
                yield "forecast", "must be from 0s to 365d (forecasts look a year ahead)"
            for key, value in (("below", self.below), ("clear_above", self.clear_above),
                               ("clear_below", self.clear_below)):
                if value is not None:
                    yield key, "a forecast rule fires when the trend crosses `above`: give that alone"
        elif self.anomaly is not None:
            for key, value in (("above", self.above), ("below", self.below), ("clear_above", self.clear_above),
                               ("clear_below", self.clear_below)):
                if value is not None:
                    yield key, "an anomaly rule fires from rrdtool's FAILURES: it takes no threshold"

    def _distinct_errors(self, kind: str) -> Iterator[tuple[str, str]]:
        if not self.distinct:
            return
        if kind != "log":
            yield "distinct", f"only for log pattern rules, not {kind} rules"
        elif self.distinct not in RECORD_FIELDS:
            yield "distinct", f"unknown record field {quoted(self.distinct)}; known: {', '.join(RECORD_FIELDS)}"
        elif self.distinct in self.per:
            yield "distinct", (f"`per` already splits by {self.distinct}: each series would see one value;"
                               " drop it from `per`")
        if self.count > DISTINCT_MAX:
            yield "count", f"a distinct rule tracks at most {DISTINCT_MAX} values per window: it would never fire"


@dataclass(frozen=True, slots=True)
class MqttNotifyConfig:
    """Topics take {host} (this machine), {rule}, {fingerprint}, {id} and {severity}."""

    host: str
    port: int = 1883
    username: str = ""
    password: str = ""
    tls: bool = False
    ca_file: FilePath = ""
    client_id: str = ""
    topic: str = "mep/{host}/incidents/{rule}"
    state_topic: str = "mep/{host}/incidents/{rule}/{fingerprint}"
    keepalive: int = 60
    timeout: Duration = 10.0
    backoff: Duration = 0.5
    backoff_max: Duration = 60.0

    def check(self) -> Iterator[tuple[str, str]]:
        if not 0 < self.port < 65536:
            yield "port", f"expected 1-65535, got {self.port}"
        fields = {"host": "h", "rule": "r", "fingerprint": "f", "id": "1", "severity": "s"}
        for key, topic in (("topic", self.topic), ("state_topic", self.state_topic)):
            try:
                topic.format_map(fields)
            except (KeyError, ValueError, IndexError) as e:
                yield key, f"bad topic pattern ({type(e).__name__}: {e}); fields: {{{'}, {'.join(fields)}}}"
            if "+" in topic or "#" in topic:
                yield key, "a topic to publish to cannot hold the wildcards + or #"
        if self.topic == self.state_topic:
            yield "state_topic", "must differ from topic"
        if self.ca_file:
            if not self.tls:
                yield "ca_file", "only used with tls = true"
            yield from ca_file_errors("ca_file", self.ca_file)


@dataclass(frozen=True, slots=True)
class WebhookNotifyConfig:
    url: str
    format: Literal["mepd", "alertmanager"] = "mepd"
    headers: dict[str, str] = field(default_factory=dict, hash=False)
    timeout: Duration = 10.0
    backoff: Duration = 1.0
    backoff_max: Duration = 300.0

    def check(self) -> Iterator[tuple[str, str]]:
        if not re.match(r"https?://[^/\s]+", self.url):
            yield "url", f"expected an http:// or https:// URL, got {quoted(self.url)}"


@dataclass(frozen=True, slots=True)
class AlertNotifyConfig:
    mqtt: MqttNotifyConfig | None = None
    webhook: WebhookNotifyConfig | None = None


@dataclass(frozen=True, slots=True)
class AlertConfig:
    """Alertmanager's grouping and repeat, over incidents kept in their own SQLite file."""

    group_wait: Duration = 30.0
    repeat_interval: Duration = 4 * 3600.0
    group_by: tuple[str, ...] = ("rule",)
    evaluation_interval: Duration = 1.0
    forecast_interval: Duration = 3600.0  # how often forecast rules fit their trends again (alerts/forecast)
    retention: Duration = 90 * 86400.0
    db: str = "incidents.db"
    outbox_max: int = 10_000  # queued notifications per channel; past it the oldest are dropped, counted
    max_incidents_per_rule: int = 1000  # open ones; a rule's fires past it are counted, not recorded
    rule: tuple[AlertRuleConfig, ...] = ()
    notify: AlertNotifyConfig = field(default_factory=AlertNotifyConfig)

    def check(self) -> Iterator[tuple[str, str]]:
        seen: dict[str, int] = {}
        for i, rule in enumerate(self.rule):
            if rule.name in seen:
                yield f"rule[{i}].name", f"duplicate of rule[{seen[rule.name]}] ({quoted(rule.name)})"
            seen[rule.name] = i
        if self.evaluation_interval <= 0:
            yield "evaluation_interval", "must be more than 0s"
        if self.forecast_interval < 1:
            yield "forecast_interval", "must be at least 1s"
        for key, value in (("outbox_max", self.outbox_max), ("max_incidents_per_rule", self.max_incidents_per_rule)):
            if value < 1:
                yield key, f"must be at least 1, got {value}"
