"""The records that cross component boundaries.

Sources produce them, stores and analysers consume them; nothing else is
shared.  Times are float seconds since the epoch (UTC): cheap to build on the
hot path, formatted as RFC 3339 only at the edges (API, CLI).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal

from mepd.errors import quoted

FACILITIES: Final = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
    "uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)
SEVERITIES: Final = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")

_SEVERITY_ALIASES: Final = {
    "panic": 0, "emergency": 0, "critical": 2, "error": 3, "warn": 4, "informational": 6,
}


def severity_number(name: str) -> int:
    """Accept the names and aliases syslog tools use (`err`, `error`, `warning`, `warn`...) or 0-7."""
    key = name.strip().lower()
    if key.isdigit() and int(key) < len(SEVERITIES):
        return int(key)
    if key in SEVERITIES:
        return SEVERITIES.index(key)
    if key in _SEVERITY_ALIASES:
        return _SEVERITY_ALIASES[key]
    raise ValueError(f"unknown severity {quoted(name)}; expected one of {', '.join(SEVERITIES)}")


def facility_name(code: int | None) -> str | None:
    if code is None or not 0 <= code < len(FACILITIES):
        return None
    return FACILITIES[code]


def severity_name(code: int | None) -> str | None:
    if code is None or not 0 <= code < len(SEVERITIES):
        return None
    return SEVERITIES[code]


_YEAR_10000: Final = 253_402_300_800.0


@functools.lru_cache(maxsize=4096)
def _second(whole: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))


def rfc3339(ts: float) -> str:
    """`2026-12-06T11:21:26.383888Z`, as datetime's isoformat gives it (microseconds rounded half to even),
    from a cached formatting of the second: every record's two times go through here on their way out
    (JSON, the fleet), and datetime took 2.5 µs a call."""
    if not 0.0 <= ts < _YEAR_10000 - 1:  # before the epoch, past datetime's years, NaN: datetime's answer or error
        return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    frac, whole = math.modf(ts)
    us, sec = round(frac * 1e6), int(whole)
    if us >= 1_000_000:
        sec, us = sec + 1, us - 1_000_000
    return f"{_second(sec)}.{us:06d}Z"


SD = Mapping[str, Mapping[str, str]]


@dataclass(slots=True)
class LogRecord:
    """One log line, whatever transport it came by.

    Its source may finish it before putting it on the pipeline (a syslog
    listener names the local host, marks a truncated line); never changed
    after that.  Not declared frozen: a frozen dataclass sets each of its 17
    fields through object.__setattr__, 2.7 µs per record, a fifth of the
    syslog path's budget.

    `raw` keeps the original text when it could not be parsed (then
    `parse_error` says why), so nothing is ever discarded.  `cursor` is the
    (source key, position) a resumable source reaches after this record; the
    log store saves it in the same transaction as the record, which is what
    makes restarts lose and repeat nothing.

    `uid` is an identity the sender gave the record (RELP's uuid): the log
    store keeps one record per uid, so a sender's resend is stored once.
    `on_stored` is called by the log store's sink once the record's batch
    committed, with True when it was dropped as a duplicate of a stored uid:
    how RELP acknowledges only what is on disk.
    """

    ts: float
    received: float
    message: str
    source: str
    host: str | None = None
    app: str | None = None
    pid: str | None = None
    facility: int | None = None
    severity: int | None = None
    msgid: str | None = None
    sd: SD = field(default_factory=dict)
    peer: str | None = None
    parse_error: str | None = None
    raw: str | None = None
    node: str | None = None  # the fleet node it came from (mepd.fleet); None: collected here
    cursor: tuple[str, str] | None = field(default=None, compare=False)
    uid: str | None = None
    on_stored: Callable[[bool], None] | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, object]:
        """DESIGN.md's JSON record shape: what the API, `mepctl logs --json` and the dashboard show."""
        return {
            "ts": rfc3339(self.ts),
            "received": rfc3339(self.received),
            "host": self.host,
            "app": self.app,
            "pid": self.pid,
            "facility": facility_name(self.facility),
            "severity": severity_name(self.severity),
            "msgid": self.msgid,
            "message": self.message,
            "sd": {k: dict(v) for k, v in self.sd.items()},
            "source": self.source,
            "peer": self.peer,
            "parse_error": self.parse_error,
            "node": self.node,
        }


@dataclass(slots=True)
class Sample:
    """One metric value at one time; `value` None means unknown (rrdtool's U).

    Never changed once made, and not declared frozen (as `LogRecord` is not): a frozen
    dataclass's __init__ goes through object.__setattr__, and an SNMP poll of
    10,000 interfaces makes 90,000 of these (23 ms frozen, 8 ms not).
    """

    key: str
    ts: float
    value: float | None


IncidentState = Literal["firing", "acknowledged", "resolved"]
IncidentSeverity = Literal["critical", "warning", "info"]


@dataclass(frozen=True, slots=True)
class Incident:
    """One ongoing problem found by an alert rule, deduplicated by `fingerprint` (rule + series labels).

    `count` is how many breaching samples or matching lines it has seen; `lines`
    holds the first matching log lines.  `notified` is the last state sent to
    receivers (None before the first notification), which is what grouping and
    "resolved is notified only if firing was" are decided on.  `steps` are its
    verified corrective actions so far (one record per run, with its outcome);
    `escalated` is when the last step failed, `flapping` since when it flaps,
    `suppressed` the parent whose failure hides it.
    """

    id: int
    fingerprint: str
    rule: str
    kind: str
    state: IncidentState
    severity: str
    labels: Mapping[str, str]
    summary: str
    started: float
    last_seen: float
    count: int = 1
    value: float | None = None
    resolved: float | None = None
    acknowledged: float | None = None
    comment: str | None = None
    lines: tuple[str, ...] = ()
    notified: IncidentState | None = None
    notified_at: float | None = None
    steps: tuple[Mapping[str, object], ...] = ()
    escalated: float | None = None
    flapping: float | None = None
    suppressed: str | None = None

    @property
    def open(self) -> bool:
        return self.state != "resolved"

    def to_json(self) -> dict[str, object]:
        def when(ts: float | None) -> str | None:
            return rfc3339(ts) if ts is not None else None

        return {
            "id": self.id,
            "fingerprint": self.fingerprint,
            "rule": self.rule,
            "kind": self.kind,
            "state": self.state,
            "severity": self.severity,
            "labels": dict(self.labels),
            "summary": self.summary,
            "started": rfc3339(self.started),
            "last_seen": rfc3339(self.last_seen),
            "count": self.count,
            "value": self.value,
            "resolved": when(self.resolved),
            "acknowledged": when(self.acknowledged),
            "comment": self.comment,
            "lines": list(self.lines),
            "notified": self.notified,
            "notified_at": when(self.notified_at),
            "steps": [dict(step) for step in self.steps],
            "escalated": when(self.escalated),
            "flapping": when(self.flapping),
            "suppressed": self.suppressed,
        }


@dataclass(frozen=True, slots=True)
class LogQuery:
    """The filters of `mepctl logs` as the log store takes them; times are epoch seconds on `ts`, the event time."""

    since: float | None = None
    until: float | None = None
    host: str | None = None
    peer: str | None = None  # the sender's address (IP, any port): what a datagram or connection came from
    app: str | None = None
    max_severity: int | None = None
    grep: str | None = None
    source: str | None = None
    node: str | None = None  # a glob: `web*`
    limit: int = 1000
    after_id: int | None = None
    max_id: int | None = None
