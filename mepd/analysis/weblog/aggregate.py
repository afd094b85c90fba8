"""Counts of access-log lines (Analog's tables and series), from a file or from stored hourly aggregates.

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
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta, timezone, tzinfo
from typing import Final

from mepd.analysis.weblog.accesslog import AccessFormat, access_groups, split_request
from mepd.analysis.weblog.hll import HyperLogLog
from mepd.analysis.weblog.useragent import classify

# Every reported dimension, in report order.  The first three are small by nature.
DIMENSIONS: Final = (
    "status", "method", "protocol", "path", "notfound", "referer", "referer_site",
    "agent", "os", "browser", "client", "filetype",
)
DEFAULT_KEEP: Final = 50_000
# Dimensions with few keys by nature (status codes have at most 900) are never folded below this,
# so a small `keep` for the big tables leaves them exact.
SMALL_DIMENSIONS: Final = frozenset(("status", "method", "protocol", "os", "browser", "filetype"))
SMALL_KEEP: Final = 1000


def keep_for(dim: str, keep: int) -> int:
    return max(keep, SMALL_KEEP) if dim in SMALL_DIMENSIONS else keep


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
        """Count text lines.  Written for speed: locals only, one parse, one dict update per raw table."""
        parse = access_groups
        series = self.series
        st, rq, nf, rf, ag, cl = (self.raw_status, self.raw_request, self.raw_notfound, self.raw_referer,
                                  self.raw_agent, self.raw_client)
        combined = not self.common
        first, last, rejected = self.first, self.last, self.rejected
        last_ts: int | None = None
        log_zone = self.zone
        cur_hour = -1
        row = [0, 0]
        for line in lines:
            try:
                ts, (_, client, _, _, t, request, status, size, referer, agent) = parse(line)
            except ValueError:
                if line and not line.isspace():
                    rejected += 1
                continue
            if ts != last_ts:
                last_ts = ts
                if not log_zone:
                    log_zone = (t or "")[20:].strip()
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
