"""The control API's contract, shared by the server, mepctl's client and the dashboard.

Kept free of aiohttp and the stores, so that importing it (every `mepctl` run
does) costs only the standard library and mepd.model.  In the daemon, the
dashboard and /metrics read `DaemonStatus` as it is; only the API turns it
into JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from mepd.model import LogQuery, rfc3339, severity_number
from mepd.units import parse_time

if TYPE_CHECKING:
    from mepd.pipeline import PipelineStatus
    from mepd.supervisor import ComponentStatus

API_VERSION: Final = 1
API_HEADER: Final = "X-Mepd-Api"
DEFAULT_LIMIT: Final = 1000
# `mepctl logs`' filters, as query parameters of /v1/logs and of the dashboard's /logs.
LOG_FILTERS: Final = ("since", "until", "host", "peer", "app", "severity", "grep", "source", "node", "limit")
# What a live tail keeps: the time bounds and the limit select the records already stored.
FOLLOW_FILTERS: Final = ("host", "peer", "app", "severity", "grep", "source", "node")
# A search phrase's cost grows with its length (an 8,000-character one took 6.7 s and 590 MB of trigram
# lists); a distinctive fragment of a line is far shorter than this.
MAX_GREP: Final = 256
MAX_COUNT: Final = 2**63 - 1  # SQLite's largest integer


def log_params(values: Mapping[str, object], names: Sequence[str] = LOG_FILTERS) -> dict[str, str]:
    """The filters that are set (mepctl's arguments, a page's query) as query parameters."""
    return {name: str(value) for name in names if (value := values.get(name)) not in (None, "")}


def log_query(params: Mapping[str, str], now: float, default_limit: int = DEFAULT_LIMIT) -> LogQuery:
    """The filters of `mepctl logs` from query parameters; raises ValueError with a readable message."""

    def opt(name: str) -> str | None:
        value = params.get(name)
        return value if value not in (None, "") else None

    since, until, severity, limit, grep = opt("since"), opt("until"), opt("severity"), opt("limit"), opt("grep")
    if grep is not None and len(grep) > MAX_GREP:
        raise ValueError(f"grep: at most {MAX_GREP} characters, got {len(grep)}")
    return LogQuery(
        since=parse_time(since, now) if since else None,
        until=parse_time(until, now) if until else None,
        host=opt("host"),
        peer=opt("peer"),
        app=opt("app"),
        max_severity=severity_number(severity) if severity else None,
        grep=grep,
        source=opt("source"),
        node=opt("node"),
        limit=count("limit", limit) if limit is not None else default_limit,
    )


def count(name: str, text: str) -> int:
    """A whole number a query gives (a limit, an event id): ASCII digits up to what SQLite holds."""
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{name}: expected a whole number, got {text!r}")
    if len(text.lstrip("0")) > len(str(MAX_COUNT)) or int(text) > MAX_COUNT:
        raise ValueError(f"{name}: at most {MAX_COUNT}, got {text[:40]}{'...' if len(text) > 40 else ''}")
    return int(text)


@dataclass(frozen=True, slots=True)
class DaemonStatus:
    """What the running daemon says of itself (mepd.app.App.status); `to_json` is `GET /v1/status`."""

    version: str
    pid: int
    started: float
    uptime: float
    config: str
    components: Sequence[ComponentStatus]
    pipeline: PipelineStatus
    logstore: Mapping[str, object]  # LogStore.stats()
    reloads: Mapping[str, int]  # ok, failed
    last_reload_error: str | None

    def to_json(self) -> dict[str, object]:
        return {
            "api": API_VERSION,
            "version": self.version,
            "pid": self.pid,
            "started": rfc3339(self.started),
            "uptime": self.uptime,
            "config": self.config,
            "components": [c.to_json() for c in self.components],
            "pipeline": self.pipeline.to_json(),
            "store": {"logs": dict(self.logstore)},
            "reloads": {**self.reloads, "last_error": self.last_reload_error},
        }
