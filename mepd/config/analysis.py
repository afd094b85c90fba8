"""The config of what mepd derives: log-derived metrics, the operations report and its forecasts."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Final, Literal

from mepd.config.common import NAME, parse_rra
from mepd.config.convert import Duration, FilePath
from mepd.config.syntax import (
    compile_regex,
    glob_error,
)
from mepd.errors import quoted
from mepd.model import severity_number

_LOG_METRIC_BY: Final = ("host", "app", "source")


@dataclass(frozen=True, slots=True)
class LogMetricConfig:
    """One `[[logs.metric]]`: a counter over the records whose message `pattern` (RE2) finds, filtered by
    globs on host/app/source and a severity (that level or more urgent); it sums the number `value` (a named
    group) captures, else counts.  `by` splits it per record field or named group, at most `max_series`."""

    name: str
    pattern: str
    host: str = ""
    app: str = ""
    source: str = ""
    severity: str = ""
    value: str = ""
    by: str = ""
    max_series: int = 100

    def check(self) -> Iterator[tuple[str, str]]:
        if not NAME.fullmatch(self.name):
            yield "name", f'use only letters, digits, "_" and "-", got {quoted(self.name)}'
        groups: tuple[str, ...] = ()
        try:
            groups = tuple(getattr(compile_regex(self.pattern), "groupindex", {}))
        except ValueError as e:
            yield "pattern", f"invalid regular expression: {e}"
        for key in ("host", "app", "source"):
            if (glob := getattr(self, key)) and (err := glob_error(glob)):
                yield key, err
        if self.severity:
            try:
                severity_number(self.severity)
            except ValueError as e:
                yield "severity", str(e)
        if self.value and self.value not in groups:
            yield "value", f"no named group {quoted(self.value)} in pattern; write (?P<{self.value}>[0-9]+)"
        if self.by and self.by not in _LOG_METRIC_BY and self.by not in groups:
            yield "by", f"expected host, app, source or a named group of the pattern, got {quoted(self.by)}"
        if not 1 <= self.max_series <= 10000:
            yield "max_series", f"expected 1-10000, got {self.max_series}"


@dataclass(frozen=True, slots=True)
class LogsConfig:
    """`[logs]`: metrics derived from the log records (mepd.analysis.logmetrics), at `step`.

    `intake` turns on the per host / app / severity record counts (off unless asked for, so a config
    without the section stores nothing new); `[[logs.metric]]` counters work either way."""

    intake: bool = False
    step: Duration = 60.0
    top_apps: int = 10
    max_hosts: int = 200
    rra: tuple[str, ...] = ()
    metric: tuple[LogMetricConfig, ...] = ()

    def check(self) -> Iterator[tuple[str, str]]:
        if self.step < 1:
            yield "step", "must be at least 1s"
        if not 1 <= self.top_apps <= 1000:
            yield "top_apps", f"expected 1-1000, got {self.top_apps}"
        if not 1 <= self.max_hosts <= 100000:
            yield "max_hosts", f"expected 1-100000, got {self.max_hosts}"
        for i, spec in enumerate(self.rra):
            try:
                parse_rra(spec)
            except ValueError as e:
                yield f"rra[{i}]", str(e)
        names: dict[str, int] = {}
        for i, m in enumerate(self.metric):
            if m.name in names:
                yield f"metric[{i}].name", f"duplicate of metric[{names[m.name]}]"
            names[m.name] = i


@dataclass(frozen=True, slots=True)
class ForecastMetricConfig:
    """`[[report.forecast]]`: a metric whose trend is forecast, besides interfaces and file systems."""

    metric: str
    above: float


def address_error(text: str) -> str | None:
    """Why `text` is not one mail address (`ops@example.org` or `Ops <ops@example.org>`), or None."""
    if any(c in text for c in ",;") or not text.isprintable():
        return f"expected one mail address, got {quoted(text)}"
    local, _, domain = parseaddr(text)[1].rpartition("@")
    if not local or not domain:
        return f"expected a mail address like ops@example.org, got {quoted(text)}"
    return None


@dataclass(frozen=True, slots=True)
class ReportConfig:
    """`[report]`: the operations report and capacity forecasts (mepd.web.report).  With `export_dir`, last
    month's report is written there as report-YYYY-MM.html (self-contained) and .json once the month is over.
    With `mail_to`, it is also mailed: `mail_command` (an argv, never a shell line) gets the message on its
    stdin, and with `export_dir` it is kept there as report-YYYY-MM.eml.  Forecasts fit a line to the last
    `forecast_window` of each interface (against 80 % of its speed), file system (90 % used) and `forecast`
    metric."""

    export_dir: FilePath = ""
    schedule: Literal["monthly"] = "monthly"
    forecast_window: Duration = 30 * 86400.0
    forecast: tuple[ForecastMetricConfig, ...] = ()
    mail_to: tuple[str, ...] = ()
    mail_from: str = ""
    mail_command: tuple[str, ...] = ("/usr/sbin/sendmail", "-t", "-oi")
    mail_timeout: Duration = 60.0

    @property
    def sender(self) -> str:
        return self.mail_from or f"mepd@{socket.gethostname()}"

    def check(self) -> Iterator[tuple[str, str]]:
        if self.forecast_window < 3600:
            yield "forecast_window", "must be at least 1h"
        for i, address in enumerate(self.mail_to):
            if err := address_error(address):
                yield f"mail_to[{i}]", err
        if self.mail_from and (err := address_error(self.mail_from)):
            yield "mail_from", err
        if not self.mail_command:
            yield "mail_command", 'must name a program, like ["/usr/sbin/sendmail", "-t", "-oi"]'
        elif not os.path.isabs(self.mail_command[0]):
            program = quoted(self.mail_command[0])
            yield "mail_command", f"the program must be an absolute path (no PATH search): {program}"
        if self.mail_timeout <= 0:
            yield "mail_timeout", "must be more than 0s"
