"""The web report as a JSON-ready dict: the one shape the text, HTML and JSON outputs all render.

Built from whichever counts there are: a file's `Aggregate` (the one-shot
analyser) or the store's hourly rows (the daemon's `weblog report`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Final

from mepd.analysis.weblog.aggregate import Aggregate, Table
from mepd.model import rfc3339

CLASSES: Final = ("1xx", "2xx", "3xx", "4xx", "5xx")
TOP_TITLES: Final = {
    "path": "Requested paths", "notfound": "Paths not found (404)", "referer": "External referrers",
    "referer_site": "Referring sites", "agent": "User agents", "os": "Operating systems",
    "browser": "Browsers", "client": "Clients", "filetype": "File types",
}
DEFAULT_TOP: Final = 10
WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _rows(items: Iterable[tuple[str, list[int]]]) -> list[dict[str, object]]:
    return [{"key": k, "requests": v[0], "bytes": v[1]} for k, v in items]


def _top_section(table: Table, top: int, by_bytes: bool = False) -> dict[str, object]:
    col = 1 if by_bytes else 0
    ranked = sorted(table.rows.items(), key=lambda kv: (-kv[1][col], -kv[1][1 - col], kv[0]))
    shown = ranked[:top]
    total_requests = sum(v[0] for v in table.rows.values()) + table.other_requests
    total_bytes = sum(v[1] for v in table.rows.values()) + table.other_bytes
    return {
        "rows": _rows(shown),
        "distinct": table.distinct if table.distinct is not None else len(table.rows),
        "others": {"requests": total_requests - sum(v[0] for _, v in shown),
                   "bytes": total_bytes - sum(v[1] for _, v in shown)},
        "exact": table.exact,
        "max_error": {"requests": table.err_requests, "bytes": table.err_bytes},
    }


def _all_rows(table: Table) -> list[dict[str, object]]:
    return _rows(sorted(table.rows.items(), key=lambda kv: (-kv[1][0], kv[0])))


def build_report(*, source: str, series: Mapping[int, Sequence[int]], first: float | None, last: float | None,
                 tables: Mapping[str, Table], clients: int, clients_exact: bool, rejected: int, top: int,
                 tz: tzinfo | None = None, since: float | None = None, until: float | None = None,
                 extra: Mapping[str, object] | None = None) -> dict[str, object]:
    """The report as a JSON-ready dict, from whichever counts (a file's Aggregate or the store's hours).

    Hourly series are UTC hours; daily, hour-of-day and day-of-week use `tz`
    (None: the local time zone), at whole-hour resolution.
    """
    requests = sum(v[0] for v in series.values())
    nbytes = sum(v[1] for v in series.values())
    classes = dict.fromkeys(CLASSES, 0)
    other_status = 0
    for code, (r, _) in tables["status"].rows.items():
        cls = f"{code[:1]}xx"
        if cls in classes:
            classes[cls] += r
        else:
            other_status += r
    hours = sorted(series)
    hourly: list[dict[str, object]] = []
    daily: dict[str, list[int]] = {}
    by_hour = [[0, 0] for _ in range(24)]
    by_weekday = [[0, 0] for _ in range(7)]
    if hours:
        for hour in range(hours[0], hours[-1] + 1, 3600):
            r, b = series.get(hour, (0, 0))[:2]
            hourly.append({"t": rfc3339(hour), "requests": r, "bytes": b})
            local = datetime.fromtimestamp(hour, tz)
            day = daily.setdefault(local.date().isoformat(), [0, 0])
            day[0] += r
            day[1] += b
            by_hour[local.hour][0] += r
            by_hour[local.hour][1] += b
            by_weekday[local.weekday()][0] += r
            by_weekday[local.weekday()][1] += b
    days = _fill_days(daily)
    span_hours = len(hourly) or 1
    top_sections = {dim: _top_section(tables[dim], top) for dim in TOP_TITLES}
    top_sections["path_by_bytes"] = _top_section(tables["path"], top, by_bytes=True)
    report: dict[str, object] = {
        "source": source,
        "since": rfc3339(since) if since is not None else None,
        "until": rfc3339(until) if until is not None else None,
        "summary": {
            "requests": requests,
            "successful": classes["2xx"] + classes["3xx"],
            "failed": classes["4xx"] + classes["5xx"],
            "bytes": nbytes,
            "clients": clients,
            "clients_exact": clients_exact,
            "requests_per_hour": round(requests / span_hours, 2),
            "first": rfc3339(first) if first is not None and requests else None,
            "last": rfc3339(last) if last is not None and requests else None,
            "unparsed_lines": rejected,
        },
        "status": {"classes": classes | {"other": other_status}, "codes": _all_rows(tables["status"])},
        "methods": _all_rows(tables["method"]),
        "protocols": _all_rows(tables["protocol"]),
        "top": top_sections,
        "series": {
            "hourly": hourly,
            "daily": [{"date": d, "requests": v[0], "bytes": v[1]} for d, v in days],
            "hour_of_day": [{"hour": h, "requests": v[0], "bytes": v[1]} for h, v in enumerate(by_hour)],
            "day_of_week": [{"day": WEEKDAYS[d], "requests": v[0], "bytes": v[1]} for d, v in enumerate(by_weekday)],
        },
    }
    if extra:
        report.update(extra)
    return report


def _fill_days(daily: dict[str, list[int]]) -> list[tuple[str, list[int]]]:
    if not daily:
        return []
    day = datetime.fromisoformat(min(daily)).date()
    end = datetime.fromisoformat(max(daily)).date()
    out: list[tuple[str, list[int]]] = []
    while day <= end:
        out.append((day.isoformat(), daily.get(day.isoformat(), [0, 0])))
        day += timedelta(days=1)
    return out


def report_from_aggregate(agg: Aggregate, source: str, top: int = DEFAULT_TOP, tz: tzinfo | None = None,
                          extra: Mapping[str, object] | None = None) -> dict[str, object]:
    return build_report(
        source=source, series=agg.series, first=agg.first if agg.series else None,
        last=agg.last if agg.series else None, tables=agg.tables, clients=agg.clients,
        clients_exact=agg.clients_exact, rejected=agg.rejected, top=top, tz=tz, extra=extra,
    )
