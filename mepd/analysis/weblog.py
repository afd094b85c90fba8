"""Web access-log analysis: Analog's reports from a file or from stored hourly aggregates.

Counting is split in two so the per-line cost stays a handful of dict updates:
lines add to *raw* tables keyed by what the log holds (the request line, the
agent, the referer, the client), and `Aggregate.settle` turns those, once per
distinct value, into the reported dimensions (method, protocol, path, file
type, OS, browser, external referrer and site).  Raw tables are settled and
reported tables pruned to `keep` keys whenever they grow past their limits, so
memory depends on `keep`, not on the length of the file.

Exactness: totals, status codes, methods, protocols, OS, browser, file type
and the time series are always exact.  A keyed table is exact until it holds
more than `keep` distinct keys; past that the smallest are folded into
"others" and each reported count may be low by at most the table's
`max_error` (the sum of the largest folded count of each fold), which the
report states.  Distinct clients are exact while the client table was never
folded, else a HyperLogLog estimate (standard error 1.6%).

`python -m mepd.analysis.weblog FILE [--format combined] [--json|--html]` is
the one-shot analyser (`mepctl weblog analyze`); a file is split into byte
ranges counted in parallel processes and merged.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Final

from mepd.analysis.accesslog import ACCESS_LINE, FAST_LINE, AccessFormat, access_time, split_request
from mepd.analysis.hll import HyperLogLog
from mepd.analysis.useragent import classify
from mepd.api.render import printable
from mepd.model import rfc3339

CLASSES: Final = ("1xx", "2xx", "3xx", "4xx", "5xx")
# Every reported dimension, in report order.  The first three are small by nature.
DIMENSIONS: Final = (
    "status", "method", "protocol", "path", "notfound", "referer", "referer_site",
    "agent", "os", "browser", "client", "filetype",
)
TOP_TITLES: Final = {
    "path": "Requested paths", "notfound": "Paths not found (404)", "referer": "External referrers",
    "referer_site": "Referring sites", "agent": "User agents", "os": "Operating systems",
    "browser": "Browsers", "client": "Clients", "filetype": "File types",
}
DEFAULT_KEEP: Final = 50_000
# Dimensions with few keys by nature (status codes have at most 900) are never folded below this,
# so a small `keep` for the big tables leaves them exact.
SMALL_DIMENSIONS: Final = frozenset(("status", "method", "protocol", "os", "browser", "filetype"))
SMALL_KEEP: Final = 1000


def keep_for(dim: str, keep: int) -> int:
    return max(keep, SMALL_KEEP) if dim in SMALL_DIMENSIONS else keep
DEFAULT_TOP: Final = 10
BLOCK: Final = 2 << 20
PARALLEL_MIN_BYTES: Final = 32 << 20
_MMSS: Final = {f"{m:02d}:{s:02d}": m * 60 + s for m in range(60) for s in range(61)}
WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(slots=True)
class Table:
    """key -> [requests, bytes], plus what pruning folded away and the bound it costs.

    `distinct` is set when `rows` is only a selection (a report read from the
    store); otherwise it is len(rows).
    """

    rows: dict[str, list[int]] = field(default_factory=dict)
    other_requests: int = 0
    other_bytes: int = 0
    err_requests: int = 0
    err_bytes: int = 0
    distinct: int | None = None

    def add(self, key: str, requests: int, nbytes: int) -> None:
        row = self.rows.get(key)
        if row is None:
            self.rows[key] = [requests, nbytes]
        else:
            row[0] += requests
            row[1] += nbytes

    def merge(self, other: Table) -> None:
        for key, (requests, nbytes) in other.rows.items():
            self.add(key, requests, nbytes)
        self.other_requests += other.other_requests
        self.other_bytes += other.other_bytes
        self.err_requests += other.err_requests
        self.err_bytes += other.err_bytes

    @property
    def exact(self) -> bool:
        return self.err_requests == 0 and self.err_bytes == 0

    def prune(self, keep: int) -> bool:
        """Keep the top `keep` keys by requests and by bytes; fold the rest. True if anything was folded."""
        if len(self.rows) <= keep:
            return False
        rows = self.rows
        by_requests = sorted(rows, key=lambda k: rows[k][0], reverse=True)[:keep]
        by_bytes = sorted(rows, key=lambda k: rows[k][1], reverse=True)[:keep]
        kept = set(by_requests).union(by_bytes)
        max_requests = max_bytes = 0
        for key in [k for k in rows if k not in kept]:
            requests, nbytes = rows.pop(key)
            self.other_requests += requests
            self.other_bytes += nbytes
            max_requests = max(max_requests, requests)
            max_bytes = max(max_bytes, nbytes)
        self.err_requests += max_requests
        self.err_bytes += max_bytes
        return True


def new_tables() -> dict[str, Table]:
    return {dim: Table() for dim in DIMENSIONS}


def file_type(path: str) -> str:
    """Lower-case extension of the last path segment (as os.path.splitext: ".env" has none); "(directory)"."""
    last = path.rsplit("/", 1)[-1]
    if not last:
        return "(directory)"
    dot = last.rfind(".")
    ext = last[dot + 1:].lower() if dot > 0 and last[:dot].strip(".") else ""
    if not ext or len(ext) > 10 or not ext.isalnum() or not ext.isascii():
        return "(none)"
    return ext


def referer_site(referer: str, site_hosts: Sequence[str]) -> str | None:
    """The host of an external referrer, None for "-", empty or one of our own hosts (or their subdomains)."""
    if not referer or referer == "-":
        return None
    scheme = referer.find("://")
    if scheme < 0:
        return "(not a URL)"
    rest = referer[scheme + 3:]
    for stop in "/?#":
        cut = rest.find(stop)
        if cut >= 0:
            rest = rest[:cut]
    host = rest.rpartition("@")[2]
    host = host[1:].partition("]")[0] if host.startswith("[") else host.partition(":")[0]
    host = host.lower()
    for own in site_hosts:
        if host == own or host.endswith("." + own):
            return None
    return host or "(not a URL)"


class Aggregate:
    """Counts of a set of access-log lines: hourly series, tables and distinct clients.

    Lines go in with `scan` (text lines, the fast path) or `add_fields` (the
    parsed `sd["http"]` of a LogRecord); `settle` must run before `tables` is
    read.  Aggregates of parts of a file, or of hours, merge.
    """

    __slots__ = (
        "common", "first", "hll", "keep", "last", "raw_agent", "raw_client", "raw_limit", "raw_notfound",
        "raw_referer", "raw_request", "raw_status", "rejected", "series", "site_hosts", "tables", "zone",
    )

    def __init__(self, fmt: AccessFormat = "combined", site_hosts: Sequence[str] = (), keep: int = DEFAULT_KEEP,
                 raw_limit: int | None = None) -> None:
        self.common = fmt == "common"
        self.site_hosts = tuple(h.lower() for h in site_hosts)
        self.keep = keep
        self.raw_limit = raw_limit if raw_limit is not None else max(keep, 10_000)
        self.series: dict[int, list[int]] = {}
        self.first = math.inf
        self.last = -math.inf
        self.rejected = 0
        self.zone: str | None = None
        self.tables = new_tables()
        self.hll = HyperLogLog()
        self._clear_raw()

    def _clear_raw(self) -> None:
        self.raw_status: dict[str, list[int]] = {}
        self.raw_request: dict[str, list[int]] = {}
        self.raw_notfound: dict[str, list[int]] = {}
        self.raw_referer: dict[str, list[int]] = {}
        self.raw_agent: dict[str, list[int]] = {}
        self.raw_client: dict[str, list[int]] = {}

    def log_tz(self) -> tzinfo | None:
        """The time zone of the log's first line: days and hours of day as the log shows them (Analog does so)."""
        z = self.zone
        if not z or len(z) != 5 or z[0] not in "+-" or not z[1:].isdigit():
            return None
        offset = timedelta(hours=int(z[1:3]), minutes=int(z[3:5]))
        return timezone(-offset if z[0] == "-" else offset)

    @property
    def requests(self) -> int:
        return sum(row[0] for row in self.series.values())

    @property
    def nbytes(self) -> int:
        return sum(row[1] for row in self.series.values())

    @property
    def clients_exact(self) -> bool:
        return self.tables["client"].exact

    @property
    def clients(self) -> int:
        table = self.tables["client"]
        return len(table.rows) if table.exact else self.hll.estimate()

    def scan(self, lines: Iterable[str]) -> None:  # noqa: PLR0912, PLR0915 - one inlined loop is the hot path
        """Count text lines.  Written for speed: locals only, one regex, one dict update per raw table."""
        fast = FAST_LINE.match
        full = ACCESS_LINE.match
        series = self.series
        st, rq, nf, rf, ag, cl = (self.raw_status, self.raw_request, self.raw_notfound, self.raw_referer,
                                  self.raw_agent, self.raw_client)
        combined = not self.common
        first, last, rejected = self.first, self.last, self.rejected
        last_t: str | None = None
        hour_starts: dict[str, int] = {}
        prefix = zone = "\0"
        base = 0
        log_zone = self.zone
        cur_hour = -1
        row = [0, 0]
        for line in lines:
            m = fast(line) if "\\" not in line else None
            if m is None:
                m = full(line)
                if m is None:
                    if line and not line.isspace():
                        rejected += 1
                    continue
            _, client, _, _, t, request, status, size, referer, agent = m.groups()
            if t != last_t:
                # The start of the line's local hour comes from a small cache, checked without
                # slicing; minutes and seconds come from a table: a new second does no arithmetic.
                try:
                    if not (t.startswith(prefix) and t.endswith(zone)):
                        prefix, zone = t[:15], t[20:]
                        known = hour_starts.get(prefix + zone)
                        if known is None:
                            known = hour_starts[prefix + zone] = int(access_time(prefix + "00:00" + zone))
                            log_zone = log_zone or zone.strip()
                        base = known
                    ts = base + _MMSS[t[15:20]]
                except (KeyError, ValueError):
                    prefix = zone = "\0"
                    rejected += 1
                    continue
                last_t = t
                hour = ts - ts % 3600
                if hour != cur_hour:
                    found = series.get(hour)
                    if found is None:
                        found = series[hour] = [0, 0]
                    row = found
                    cur_hour = hour
                if ts < first:  # noqa: PLR1730 - a compare is cheaper than a call to min()
                    first = ts
                if ts > last:  # noqa: PLR1730
                    last = ts
            n = 0 if size == "-" else int(size)
            row[0] += 1
            row[1] += n
            v = st.get(status)
            if v is None:
                st[status] = [1, n]
            else:
                v[0] += 1
                v[1] += n
            v = rq.get(request)
            if v is None:
                rq[request] = [1, n]
            else:
                v[0] += 1
                v[1] += n
            if status == "404":
                v = nf.get(request)
                if v is None:
                    nf[request] = [1, n]
                else:
                    v[0] += 1
                    v[1] += n
            v = cl.get(client)
            if v is None:
                cl[client] = [1, n]
            else:
                v[0] += 1
                v[1] += n
            if combined and agent is not None:
                v = rf.get(referer)
                if v is None:
                    rf[referer] = [1, n]
                else:
                    v[0] += 1
                    v[1] += n
                v = ag.get(agent)
                if v is None:
                    ag[agent] = [1, n]
                else:
                    v[0] += 1
                    v[1] += n
        self.first, self.last, self.rejected = first, last, rejected
        self.zone = log_zone
        if max(len(rq), len(cl), len(ag), len(rf)) > self.raw_limit:
            self.settle()

    def add_fields(self, ts: float, fields: Mapping[str, str]) -> None:
        """Count one parsed line (a LogRecord's sd["http"]); the live path, a few per second to thousands."""
        hour = int(ts) // 3600 * 3600
        row = self.series.get(hour)
        if row is None:
            row = self.series[hour] = [0, 0]
        self.first = min(self.first, ts)
        self.last = max(self.last, ts)
        try:
            n = int(fields.get("bytes", "0") or "0")
        except ValueError:
            n = 0
        row[0] += 1
        row[1] += n
        method, path, protocol = fields.get("method", ""), fields.get("path", ""), fields.get("protocol", "")
        request = " ".join(p for p in (method, path, protocol) if p) if method else path
        status = fields.get("status", "")
        _bump(self.raw_status, status, n)
        _bump(self.raw_request, request, n)
        if status == "404":
            _bump(self.raw_notfound, request, n)
        _bump(self.raw_client, fields.get("client", ""), n)
        agent = fields.get("agent", "")
        if agent:
            _bump(self.raw_referer, fields.get("referer", ""), n)
            _bump(self.raw_agent, agent, n)
        if len(self.raw_request) > self.raw_limit or len(self.raw_client) > self.raw_limit:
            self.settle()

    def add_rejected(self, n: int = 1) -> None:
        self.rejected += n

    def settle(self) -> None:
        """Derive the reported dimensions from the raw tables, once per distinct raw value, then prune."""
        t = self.tables
        for key, (r, b) in self.raw_status.items():
            t["status"].add(key, r, b)
        method, protocol, path, ftype = t["method"], t["protocol"], t["path"], t["filetype"]
        for request, (r, b) in self.raw_request.items():
            m, p, _, proto = split_request(request)
            method.add(m or "(invalid)", r, b)
            protocol.add(proto or "(none)", r, b)
            path.add(p, r, b)
            ftype.add(file_type(p), r, b)
        for request, (r, b) in self.raw_notfound.items():
            t["notfound"].add(split_request(request)[1], r, b)
        for ref, (r, b) in self.raw_referer.items():
            site = referer_site(ref, self.site_hosts)
            if site is not None:
                t["referer"].add(ref, r, b)
                t["referer_site"].add(site, r, b)
        for agent, (r, b) in self.raw_agent.items():
            os_family, browser = classify(agent)
            t["agent"].add(agent, r, b)
            t["os"].add(os_family, r, b)
            t["browser"].add(browser, r, b)
        self.hll.add_many(self.raw_client)
        for client, (r, b) in self.raw_client.items():
            t["client"].add(client, r, b)
        self._clear_raw()
        for dim, table in t.items():
            table.prune(keep_for(dim, self.keep))

    def merge(self, other: Aggregate) -> None:
        """Add a settled aggregate (of another part of the file, or another hour) into this one."""
        for hour, (r, b) in other.series.items():
            row = self.series.get(hour)
            if row is None:
                self.series[hour] = [r, b]
            else:
                row[0] += r
                row[1] += b
        self.first = min(self.first, other.first)
        self.last = max(self.last, other.last)
        self.rejected += other.rejected
        self.zone = self.zone or other.zone
        for dim, table in other.tables.items():
            self.tables[dim].merge(table)
            self.tables[dim].prune(keep_for(dim, self.keep))
        self.hll.merge(other.hll)


def _bump(table: dict[str, list[int]], key: str, n: int) -> None:
    row = table.get(key)
    if row is None:
        table[key] = [1, n]
    else:
        row[0] += 1
        row[1] += n


# ---- files ---------------------------------------------------------------------------------------------------


def _blocks(path: str, start: int, end: int) -> Iterator[list[str]]:
    """Lists of complete lines whose first byte is in [start, end): the same split every worker agrees on."""
    with open(path, "rb") as f:
        pos = start
        if start > 0:
            f.seek(start - 1)
            pos = start - 1 + len(f.readline())
        tail = b""
        while pos < end:
            data = f.read(min(BLOCK, end - pos))
            if not data:
                break
            pos += len(data)
            data = tail + data
            cut = data.rfind(b"\n") + 1
            tail = data[cut:]
            if cut:
                yield data[:cut].decode("utf-8", "replace").split("\n")
        if tail:
            yield (tail + f.readline()).decode("utf-8", "replace").split("\n")


def _stream_blocks(stream: io.BufferedIOBase | io.RawIOBase) -> Iterator[list[str]]:
    tail = b""
    while data := stream.read(BLOCK):
        data = tail + data
        cut = data.rfind(b"\n") + 1
        tail = data[cut:]
        if cut:
            yield data[:cut].decode("utf-8", "replace").split("\n")
    if tail:
        yield tail.decode("utf-8", "replace").split("\n")


def _scan_range(path: str, start: int, end: int, fmt: AccessFormat, site_hosts: tuple[str, ...],
                keep: int) -> Aggregate:
    agg = Aggregate(fmt, site_hosts, keep)
    for lines in _blocks(path, start, end):
        agg.scan(lines)
    agg.settle()
    return agg


def analyze_file(path: str, fmt: AccessFormat = "combined", site_hosts: Sequence[str] = (),
                 keep: int = DEFAULT_KEEP, workers: int | None = None) -> Aggregate:
    """Count a whole file ("-" for stdin, *.gz decompressed) in memory bounded by `keep`.

    A plain file of at least 32 MiB is cut into byte ranges counted by
    `workers` processes (default: the CPUs this process may use), since the
    per-line cost is Python's; the merge is exact because every table adds.
    """
    hosts = tuple(site_hosts)
    if path == "-" or path.endswith(".gz"):
        agg = Aggregate(fmt, hosts, keep)
        stream: io.BufferedIOBase | io.RawIOBase
        with (gzip.open(path, "rb") if path != "-" else open(sys.stdin.fileno(), "rb", closefd=False)) as stream:
            for lines in _stream_blocks(stream):
                agg.scan(lines)
        agg.settle()
        return agg
    size = os.path.getsize(path)
    if workers is None:
        workers = len(os.sched_getaffinity(0))
    if workers <= 1 or size < PARALLEL_MIN_BYTES:
        return _scan_range(path, 0, size, fmt, hosts, keep)
    parts = max(workers, math.ceil(size / (64 << 20)))
    bounds = [size * i // parts for i in range(parts + 1)]
    total = Aggregate(fmt, hosts, keep)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_scan_range, path, bounds[i], bounds[i + 1], fmt, hosts, keep) for i in range(parts)]
        for future in futures:
            total.merge(future.result())
    return total


# ---- reports -------------------------------------------------------------------------------------------------


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


# ---- text output ---------------------------------------------------------------------------------------------


def human_bytes(n: float) -> str:
    if abs(n) < 1024:
        return f"{n:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if abs(n) < 1024:
            return f"{n:.1f} {unit}"
    return f"{n / 1024:.1f} TiB"


def _table_text(title: str, rows: Sequence[Mapping[str, object]], key: str = "key", note: str = "") -> list[str]:
    out = [f"{title}{note}"]
    if not rows:
        return [*out, "  (none)", ""]
    for row in rows:
        label = printable(row[key])
        if len(label) > 70:
            label = label[:67] + "..."
        out.append(f"  {row['requests']:>10}  {human_bytes(float(str(row['bytes']))):>11}  {label}")
    return [*out, ""]


def render_text(report: Mapping[str, object]) -> str:
    """The report as readable plain text: what `mepctl weblog` prints without --json/--html."""
    s = report["summary"]
    assert isinstance(s, dict)
    lines = [
        f"Web report: {printable(report['source'])}",
        f"  period          {s['first'] or '-'} .. {s['last'] or '-'}",
        f"  requests        {s['requests']}  (successful {s['successful']}, failed {s['failed']})",
        f"  bytes           {s['bytes']}  ({human_bytes(float(s['bytes']))})",
        f"  clients         {s['clients']}{'' if s['clients_exact'] else ' (estimate, +-1.6%)'}",
        f"  requests/hour   {s['requests_per_hour']}",
        f"  unparsed lines  {s['unparsed_lines']}",
        "",
    ]
    status = report["status"]
    assert isinstance(status, dict)
    lines.append("Status classes")
    lines.extend(f"  {n:>10}  {c}" for c, n in status["classes"].items())
    lines.append("")
    lines += _table_text("Status codes", status["codes"])
    for name in ("methods", "protocols"):
        section = report[name]
        assert isinstance(section, list)
        lines += _table_text(name.capitalize(), section)
    top = report["top"]
    assert isinstance(top, dict)
    for dim, section in top.items():
        title = TOP_TITLES.get(dim, "Requested paths by bytes")
        bound = section["max_error"]["requests"]
        note = "" if section["exact"] else f" (approximate: each count may be low by <= {bound})"
        lines += _table_text(f"{title} (top {len(section['rows'])} of {section['distinct']})", section["rows"],
                             note=note)
    series = report["series"]
    assert isinstance(series, dict)
    lines += _table_text("Daily", series["daily"], key="date")
    lines += _table_text("Hour of day", series["hour_of_day"], key="hour")
    lines += _table_text("Day of week", series["day_of_week"], key="day")
    return "\n".join(lines)


# ---- command line --------------------------------------------------------------------------------------------


def add_analyze_arguments(p: argparse.ArgumentParser) -> None:
    """The options of the one-shot analyser, for `python -m mepd.analysis.weblog` and `mepctl weblog analyze`."""
    p.add_argument("file", help='access log; "-" reads stdin, *.gz is decompressed')
    p.add_argument("--format", choices=("combined", "common"), default="combined")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON document on stdout")
    out.add_argument("--html", action="store_true", help="one self-contained HTML page on stdout")
    p.add_argument("--top", type=int, default=DEFAULT_TOP, help="rows per top-N table (default %(default)s)")
    p.add_argument("--site-host", action="append", default=[], metavar="HOST",
                   help="own host name: its referrers are internal (repeatable)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: the CPUs available)")
    p.add_argument("--keep", type=int, default=DEFAULT_KEEP,
                   help="keys kept per table before folding the smallest (default %(default)s)")
    zones = p.add_mutually_exclusive_group()
    zones.add_argument("--utc", action="store_true", help="days and hours of day in UTC (default: the log's zone)")
    zones.add_argument("--local", action="store_true", help="days and hours of day in this machine's zone")


def render(report: Mapping[str, object], *, as_json: bool = False, as_html: bool = False) -> str:
    """The report as printed: JSON, one HTML page, or text."""
    if as_json:
        return json.dumps(report, indent=1, ensure_ascii=False) + "\n"
    if as_html:
        from mepd.analysis.weblog_html import render_html  # noqa: PLC0415 - only the --html path pays for it

        return render_html(report)
    return render_text(report) + "\n"


def run_analyze(args: argparse.Namespace, prog: str = "mepctl weblog analyze",
                out: Callable[[str], object] | None = None) -> int:
    """Run the analyser on parsed arguments; 0 on success, 1 when the file cannot be read, 2 on bad values."""
    write = out or sys.stdout.write
    if args.top < 1 or args.keep < 1 or (args.workers is not None and args.workers < 1):
        print(f"{prog}: --top, --keep and --workers must be at least 1", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        agg = analyze_file(args.file, args.format, args.site_host, args.keep, args.workers)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        print(f"{prog}: {args.file}: {e.strerror if isinstance(e, OSError) and e.strerror else e}",
              file=sys.stderr)
        return 1
    report = report_from_aggregate(
        agg, args.file, args.top, tz=UTC if args.utc else None if args.local else agg.log_tz(),
        extra={"analysis_seconds": round(time.monotonic() - started, 3)},
    )
    write(render(report, as_json=args.json, as_html=args.html))
    return 0


def analyze_main(argv: Sequence[str], prog: str = "mepctl weblog analyze",
                 out: Callable[[str], object] | None = None) -> int:
    """The one-shot analyser's whole command line (argparse exits 2 on usage errors, returned here)."""
    p = argparse.ArgumentParser(prog=prog, description="Analyse a web access log (Apache/nginx common or combined).")
    add_analyze_arguments(p)
    try:
        args = p.parse_args(list(argv))
    except SystemExit as e:
        return int(e.code or 0)
    return run_analyze(args, prog, out)


if __name__ == "__main__":
    sys.exit(analyze_main(sys.argv[1:], prog="python -m mepd.analysis.weblog"))
