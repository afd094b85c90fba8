"""The control API's contract, shared by the server, mepctl's client and the dashboard.

Kept free of aiohttp and the stores, so that importing it (every `mepctl` run
does) costs only the standard library and mepd.model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from mepd.model import LogQuery, severity_number
from mepd.units import parse_time

API_VERSION: Final = 1
API_HEADER: Final = "X-Mepd-Api"
DEFAULT_LIMIT: Final = 1000
# `mepctl logs`' filters, as query parameters of /v1/logs and of the dashboard's /logs.
LOG_FILTERS: Final = ("since", "until", "host", "app", "severity", "grep", "source", "limit")
# What a live tail keeps: the time bounds and the limit select the records already stored.
FOLLOW_FILTERS: Final = ("host", "app", "severity", "grep", "source")


def log_params(values: Mapping[str, object], names: Sequence[str] = LOG_FILTERS) -> dict[str, str]:
    """The filters that are set (mepctl's arguments, a page's query) as query parameters."""
    return {name: str(value) for name in names if (value := values.get(name)) not in (None, "")}


def log_query(params: Mapping[str, str], now: float, default_limit: int = DEFAULT_LIMIT) -> LogQuery:
    """The filters of `mepctl logs` from query parameters; raises ValueError with a readable message."""

    def opt(name: str) -> str | None:
        value = params.get(name)
        return value if value not in (None, "") else None

    since, until, severity, limit = opt("since"), opt("until"), opt("severity"), opt("limit")
    if limit is not None and not limit.isdigit():
        raise ValueError(f"limit: expected a number of records, got {limit!r}")
    return LogQuery(
        since=parse_time(since, now) if since else None,
        until=parse_time(until, now) if until else None,
        host=opt("host"),
        app=opt("app"),
        max_severity=severity_number(severity) if severity else None,
        grep=opt("grep"),
        source=opt("source"),
        limit=int(limit) if limit is not None else default_limit,
    )
