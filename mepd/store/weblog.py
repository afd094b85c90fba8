"""Hourly web-log aggregates in SQLite, so a report over 30 days reads 720 hours, not 30 days of lines.

Per source and UTC hour: totals, first/last request time, unparsed lines and
a HyperLogLog sketch of the clients (`web_hours`); per dimension (status,
path, agent, client...) the requests and bytes of each key (`web_keys`).
Writes are deltas added with upserts, so the analyser can flush every few
seconds; blocking work runs in one writer and one reader thread, never on the
event loop.

An hour keeps at most `keep` keys per dimension (at least 1000 for the small
ones: status, method, protocol, OS, browser, file type), plus those among the
`keep` largest by bytes: when an hour holds more than twice that, the smallest keys
are folded into `web_folds` (their requests and bytes, and the largest
folded count, which bounds the error of every key of that hour).  A report
sums the folds of its hours into "others" and a `max_error`; with no fold in
range it is exact.  Distinct clients come from the stored client keys when no
client was folded in range, else from the merged sketches (1.6% standard
error).
"""

from __future__ import annotations

import heapq
import os
import sqlite3
import threading
from collections.abc import Sequence
from datetime import tzinfo
from typing import Final

from mepd.analysis.weblog.aggregate import DIMENSIONS, SMALL_DIMENSIONS, Aggregate, Table, keep_for
from mepd.analysis.weblog.hll import HyperLogLog
from mepd.analysis.weblog.report import DEFAULT_TOP, build_report
from mepd.errors import MepdError
from mepd.workers import Thread

DEFAULT_STORE_KEEP: Final = 1000

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS web_hours (
    src TEXT NOT NULL, hour INTEGER NOT NULL, requests INTEGER NOT NULL, bytes INTEGER NOT NULL,
    rejected INTEGER NOT NULL, first REAL, last REAL, hll BLOB,
    PRIMARY KEY (src, hour)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS web_keys (
    src TEXT NOT NULL, dim TEXT NOT NULL, hour INTEGER NOT NULL, key TEXT NOT NULL,
    requests INTEGER NOT NULL, bytes INTEGER NOT NULL,
    PRIMARY KEY (src, dim, hour, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS web_folds (
    src TEXT NOT NULL, dim TEXT NOT NULL, hour INTEGER NOT NULL, requests INTEGER NOT NULL,
    bytes INTEGER NOT NULL, err_requests INTEGER NOT NULL, err_bytes INTEGER NOT NULL,
    PRIMARY KEY (src, dim, hour)) WITHOUT ROWID;
"""


class UnknownWebSourceError(MepdError):
    """A report was asked for a source that has never stored anything."""


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class WebLogStore:
    """Owns the aggregates database; `add` and `report` are safe to call from the event loop."""

    def __init__(self, path: str, keep: int = DEFAULT_STORE_KEEP) -> None:
        self.path = path
        self.keep = keep
        self._writer = Thread("weblog-w")
        self._reader = Thread("weblog-r")
        self._wconn: sqlite3.Connection | None = None
        self._local = threading.local()

    async def open(self) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        await self._writer.run(self._open)

    def _open(self) -> None:
        conn = _connect(self.path)
        conn.executescript(SCHEMA)
        self._wconn = conn

    async def close(self) -> None:
        if self._wconn is not None:
            await self._writer.run(self._wconn.close)
            self._wconn = None
        self._writer.stop()
        self._reader.stop()

    # ---- writing ---------------------------------------------------------------------------------------------

    async def add(self, source: str, hours: Sequence[tuple[int, Aggregate]]) -> None:
        """Add settled one-hour aggregates (hour start, counts) of `source`, in one transaction."""
        await self._writer.run(self.add_blocking, source, hours)

    def add_blocking(self, source: str, hours: Sequence[tuple[int, Aggregate]]) -> None:
        conn = self._wconn
        assert conn is not None, "store not open"
        conn.execute("BEGIN IMMEDIATE")
        try:
            for hour, agg in hours:
                self._add_hour(conn, source, hour, agg)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _add_hour(self, conn: sqlite3.Connection, src: str, hour: int, agg: Aggregate) -> None:
        requests, nbytes = agg.series.get(hour, (0, 0))
        old = conn.execute("SELECT hll FROM web_hours WHERE src = ? AND hour = ?", (src, hour)).fetchone()
        sketch = agg.hll
        if old is not None and old[0] is not None:
            sketch = HyperLogLog.from_blob(old[0])
            sketch.merge(agg.hll)
        first = agg.first if agg.series else None
        last = agg.last if agg.series else None
        conn.execute(
            "INSERT INTO web_hours (src, hour, requests, bytes, rejected, first, last, hll)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (src, hour) DO UPDATE SET"
            " requests = requests + excluded.requests, bytes = bytes + excluded.bytes,"
            " rejected = rejected + excluded.rejected,"
            " first = min(coalesce(first, excluded.first), coalesce(excluded.first, first)),"
            " last = max(coalesce(last, excluded.last), coalesce(excluded.last, last)), hll = excluded.hll",
            (src, hour, requests, nbytes, agg.rejected, first, last, sketch.to_blob()),
        )
        for dim, table in agg.tables.items():
            if table.rows:
                conn.executemany(
                    "INSERT INTO web_keys (src, dim, hour, key, requests, bytes) VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (src, dim, hour, key) DO UPDATE SET requests = requests + excluded.requests,"
                    " bytes = bytes + excluded.bytes",
                    [(src, dim, hour, key, r, b) for key, (r, b) in table.rows.items()],
                )
            if table.other_requests or table.other_bytes or not table.exact:
                self._add_fold(conn, src, dim, hour, table.other_requests, table.other_bytes,
                               table.err_requests, table.err_bytes)
            count = conn.execute("SELECT count(*) FROM web_keys WHERE src = ? AND dim = ? AND hour = ?",
                                 (src, dim, hour)).fetchone()[0]
            if count > 2 * keep_for(dim, self.keep):
                self._compact(conn, src, dim, hour)

    @staticmethod
    def _add_fold(conn: sqlite3.Connection, src: str, dim: str, hour: int, requests: int, nbytes: int,
                  err_requests: int, err_bytes: int) -> None:
        conn.execute(
            "INSERT INTO web_folds (src, dim, hour, requests, bytes, err_requests, err_bytes)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (src, dim, hour) DO UPDATE SET"
            " requests = requests + excluded.requests, bytes = bytes + excluded.bytes,"
            " err_requests = err_requests + excluded.err_requests, err_bytes = err_bytes + excluded.err_bytes",
            (src, dim, hour, requests, nbytes, err_requests, err_bytes),
        )

    def _compact(self, conn: sqlite3.Connection, src: str, dim: str, hour: int) -> None:
        table = Table({key: [r, b] for key, r, b in conn.execute(
            "SELECT key, requests, bytes FROM web_keys WHERE src = ? AND dim = ? AND hour = ?", (src, dim, hour))})
        before = set(table.rows)
        table.prune(keep_for(dim, self.keep))
        gone = before.difference(table.rows)
        conn.executemany("DELETE FROM web_keys WHERE src = ? AND dim = ? AND hour = ? AND key = ?",
                         [(src, dim, hour, key) for key in gone])
        self._add_fold(conn, src, dim, hour, table.other_requests, table.other_bytes, table.err_requests,
                       table.err_bytes)

    async def prune(self, before: float) -> int:
        """Forget hours that start before `before` (retention); returns the hours removed."""
        return await self._writer.run(self._prune, int(before))

    def _prune(self, before: int) -> int:
        conn = self._wconn
        assert conn is not None, "store not open"
        conn.execute("BEGIN IMMEDIATE")
        try:
            n = conn.execute("DELETE FROM web_hours WHERE hour < ?", (before,)).rowcount
            conn.execute("DELETE FROM web_keys WHERE hour < ?", (before,))
            conn.execute("DELETE FROM web_folds WHERE hour < ?", (before,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return int(n)

    # ---- reading ---------------------------------------------------------------------------------------------

    def _rconn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _connect(self.path)
        return conn

    async def sources(self) -> list[dict[str, object]]:
        """Every source with stored hours: name, first and last hour, requests."""
        return await self._reader.run(self._sources)

    def _sources(self) -> list[dict[str, object]]:
        rows = self._rconn().execute(
            "SELECT src, min(hour), max(hour), sum(requests) FROM web_hours GROUP BY src ORDER BY src").fetchall()
        return [{"name": s, "first_hour": a, "last_hour": b, "requests": n} for s, a, b, n in rows]

    async def report(self, source: str, since: float | None = None, until: float | None = None,
                     top: int = DEFAULT_TOP, tz: tzinfo | None = None) -> dict[str, object]:
        """The report of `source` over the hours overlapping [since, until) (all stored hours by default).

        Raises UnknownWebSourceError for a source that never stored anything.
        """
        return await self._reader.run(self.report_blocking, source, since, until, top, tz)

    def report_blocking(self, source: str, since: float | None = None, until: float | None = None,
                        top: int = DEFAULT_TOP, tz: tzinfo | None = None) -> dict[str, object]:
        conn = self._rconn()
        if conn.execute("SELECT 1 FROM web_hours WHERE src = ? LIMIT 1", (source,)).fetchone() is None:
            raise UnknownWebSourceError(f"no web-log data for {source!r}")
        lo = int(since) // 3600 * 3600 if since is not None else -(2**62)
        hi = int(until) if until is not None else 2**62
        conn.execute("BEGIN")  # one snapshot for every query of the report
        try:
            rng = (source, lo, hi)
            series: dict[int, tuple[int, int]] = {}
            firsts: list[float] = []
            lasts: list[float] = []
            rejected = 0
            for hour, r, b, rej, f, la in conn.execute(
                    "SELECT hour, requests, bytes, rejected, first, last FROM web_hours"
                    " WHERE src = ? AND hour >= ? AND hour < ?", rng):
                if r:
                    series[hour] = (r, b)
                    firsts.append(f)
                    lasts.append(la)
                rejected += rej
            tables = {dim: self._table(conn, source, dim, lo, hi, top) for dim in DIMENSIONS}
            clients_exact = tables["client"].exact
            if clients_exact:
                clients = tables["client"].distinct or 0
            else:
                sketch = HyperLogLog()
                for (blob,) in conn.execute("SELECT hll FROM web_hours WHERE src = ? AND hour >= ? AND hour < ?"
                                            " AND hll IS NOT NULL", rng):
                    sketch.merge(HyperLogLog.from_blob(blob))
                clients = sketch.estimate()
        finally:
            conn.execute("COMMIT")
        return build_report(
            source=source, series=series, first=min(firsts, default=None), last=max(lasts, default=None),
            tables=tables, clients=clients,
            clients_exact=clients_exact, rejected=rejected, top=top, tz=tz, since=since, until=until,
        )

    @staticmethod
    def _table(conn: sqlite3.Connection, src: str, dim: str, lo: int, hi: int, top: int) -> Table:
        """One pass over the dimension's rows in range: totals, distinct keys and the top lists."""
        where = "WHERE src = ? AND dim = ? AND hour >= ? AND hour < ?"
        args = (src, dim, lo, hi)
        table = Table()
        total_r = total_b = distinct = 0
        rows: list[tuple[str, int, int]] = []
        for key, r, b in conn.execute(f"SELECT key, sum(requests), sum(bytes) FROM web_keys {where} GROUP BY key",
                                      args):
            total_r += r
            total_b += b
            distinct += 1
            rows.append((key, r, b))
        if dim in SMALL_DIMENSIONS:
            chosen = rows
        else:
            chosen = heapq.nsmallest(top, rows, key=lambda x: (-x[1], -x[2], x[0]))
            if dim == "path":  # paths are also ranked by bytes
                chosen += heapq.nsmallest(top, rows, key=lambda x: (-x[2], -x[1], x[0]))
        for key, r, b in chosen:
            table.rows[key] = [r, b]
        fr, fb, er, eb = conn.execute(
            "SELECT coalesce(sum(requests), 0), coalesce(sum(bytes), 0), coalesce(sum(err_requests), 0),"
            f" coalesce(sum(err_bytes), 0) FROM web_folds {where}", args).fetchone()
        table.other_requests = total_r - sum(v[0] for v in table.rows.values()) + fr
        table.other_bytes = total_b - sum(v[1] for v in table.rows.values()) + fb
        table.err_requests, table.err_bytes = er, eb
        table.distinct = distinct
        return table
