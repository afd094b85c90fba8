"""The log store: SQLite in WAL mode, written in batches by one worker process.

The event loop never touches the database: writes go to a single writer
process (`mepd.store.logs.worker`: SQLite allows one writer, and a process does not share
the daemon's GIL), queries to a small pool of reader threads (WAL lets them
read while the writer writes).  A batch and the source cursors it covers
commit in one transaction, so after a crash what is in the database and where
sources resume always agree.  `--grep` is an exact substring search (ASCII
letters without case) that reads only the rows an FTS5 word index points to,
when the text holds a word it can look up (`mepd.store.logs.grep`).

The word index is filled behind the table, in bulk: when the writer has no
records waiting and the last batch was not full, and under load as soon as the
oldest record not in it has waited `INDEX_DELAY`, a chunk between two
batches while few records wait (`INDEX_SLACK`): it keeps up with any rate the
writer can store and index, and storing keeps priority over it (a burst the
writer cannot both store and index is stored first, indexed after).  While
storing takes half the writer's time or more (`BUSY_SHARE`), the index waits
`INDEX_DELAY_BUSY` instead: a burst of a few seconds is stored at full speed,
its index right after, and a sustained rate the writer only just stores is
still indexed within seconds.  A
search covers the rows not yet indexed by scanning them, so it is always
complete; `mepctl status` shows how many there are and how long the oldest has
waited.

A record dated more than `FUTURE_TOLERANCE` after it arrived is stored at its
arrival time, its claimed time kept in `sd.mepd.ts_claimed`: "the newest N"
and `--since` would otherwise show a clock's lie (1,000 lines dated 2099)
before every real line, for as long as the lie lasts.  A time in the past is
kept: journal and tail backlogs and relayed syslog carry their real old times,
and an old record sorts before current ones instead of hiding them.

Queries run on two reader threads, each bounded by `query_timeout`; status
and resuming sources read on a thread of their own, so neither waits behind
a slow search.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import math
import operator
import os
import sqlite3
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar

from mepd.config import LogStorageConfig
from mepd.errors import MepdError
from mepd.model import FACILITIES, SEVERITIES, LogQuery, LogRecord, rfc3339
from mepd.pipeline import Counters, Subscription
from mepd.store.logs import grep, native, worker
from mepd.workers import Worker, WorkerDiedError

log = logging.getLogger(__name__)
T = TypeVar("T")

# What a query reads: `raw` is kept to recover an unparsed line, not shown.
_SHOWN: Final = tuple(name for name in worker.COLUMNS if name != "raw")
_SELECT: Final = f"SELECT id, {', '.join(_SHOWN)} FROM logs"
_CURSOR: Final = operator.attrgetter("cursor")
# Further batches wait in the writer process's queue while one commits, so the
# writer never idles while the daemon hands it the next (pickling, GIL hand-offs).
WRITES_IN_FLIGHT: Final = 3
WRITER_NICE: Final = 10
FTS_CHUNK: Final = 20_000  # about 0.1 s of word indexing: the longest a new batch waits behind it
# Records retention deletes in one call to the writer (about 0.1 s): a pass that deletes millions of them
# (`max_size`, at 50,000 records/s) would hold up storing and indexing for a minute.
MAINTAIN_STEP: Final = 20_000
# Under load, the index takes a chunk between two batches once its oldest missing record has waited this long.
INDEX_DELAY: Final = 2.0
INDEX_SLACK: Final = 2  # batches waiting, at most, for an overdue index chunk to run before them
# A burst: storing has taken this share of the writer's time over about the last `BUSY_WINDOW` seconds.
# Indexing a record costs the writer about twice what storing it does, so above a third it could not do both,
# and indexing would only slow the burst (on 2 cores it takes the sender's and the event loop's CPU too).
# Measured (bench/README): 0.2-0.4 at a steady 50,000 msg/s, 0.6-0.8 two seconds into a TCP flood.
BUSY_SHARE: Final = 0.5
BUSY_WINDOW: Final = 1.0
INDEX_DELAY_BUSY: Final = 4.0
# A sender's clock may run this far ahead of ours (no NTP, drift) before its times are not believed.
FUTURE_TOLERANCE: Final = 300.0
QUERY_TIMEOUT: Final = 10.0  # below mepctl's 30 s, so that it gets the sentence and not a time-out
MAX_RESULT_BYTES: Final = 128 << 20  # one answer's records in memory: their messages and `_RECORD_COST` each
_RECORD_COST: Final = 1024  # a record's dict (700 bytes measured) and its JSON, beside the message
_PROGRESS_STEPS: Final = 10_000  # SQLite VM instructions between two looks at a query's deadline


def _names(column: str, names: tuple[str, ...]) -> str:
    """`column`'s code as `facility_name`/`severity_name` give it, in SQL (NULL out of range)."""
    return f"CASE {column} " + " ".join(f"WHEN {i} THEN '{name}'" for i, name in enumerate(names)) + " END"


# The fleet's lines (`LogRecord.to_json` plus `node`, `id`, `raw`) made by SQLite's json_object, in C: reading
# records back and encoding them in Python cost 19 µs a record, this 7 (bench/README.md, bench/fleet).  The
# two times are added in Python, to be exactly `rfc3339`'s.
_LINES: Final = (
    "SELECT id, ts, received, json_object('host', host, 'app', app, 'pid', pid,"
    f" 'facility', {_names('facility', FACILITIES)}, 'severity', {_names('severity', SEVERITIES)},"
    " 'msgid', msgid, 'message', message, 'sd', json(coalesce(sd, '{}')), 'source', source, 'peer', peer,"
    " 'parse_error', parse_error, 'node', ?, 'id', id, 'raw', raw)"
    " FROM logs WHERE id > ? AND node IS NULL ORDER BY id LIMIT ?"
)


@dataclasses.dataclass(frozen=True, slots=True)
class Line:
    """A record collected here as the fleet sends it: one line of JSON."""

    id: int
    received: float
    text: bytes


class QueryLimitError(MepdError):
    """A query ran past its time or its answer past its size: the API's 503, with a sentence to narrow it."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Rows:
    """What the writer needs of a batch, gathered in one pass over it (per record, each pass cost 0.1-0.3 µs)."""

    rows: list[tuple[Any, ...]]  # the records' values, each in the shortest of `worker.ROW_FORMS` that holds it
    cursors: dict[str, str]  # the source cursors the records reach
    uids: list[tuple[int, str]]  # (index, uid) of the records that have one
    ahead: int  # records dated too far ahead, stored at their arrival time


def _rows(records: Sequence[LogRecord]) -> _Rows:
    """The batch's rows, spelled out in one loop: 0.5 µs a record, 0.7 with a call per record, 1.9 through
    attrgetter; a row leaves out the columns its record has empty when `worker.ROW_FORMS` allows.

    A time too far ahead of arrival is replaced by the arrival time and kept in `sd.mepd.ts_claimed`; the
    record itself is left alone, as the pipeline's other subscribers share it."""
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    dumps = json.dumps
    cursors: dict[str, str] = {}
    uids: list[tuple[int, str]] = []
    ahead = 0
    for record in records:
        ts, received, sd = record.ts, record.received, record.sd
        if ts > received + FUTURE_TOLERANCE:  # further ahead than a clock may run fast: not believed
            ahead += 1
            ts, sd = received, {**sd, "mepd": {**sd.get("mepd", {}), "ts_claimed": _claimed(record.ts)}}
        peer, uid = record.peer, record.uid
        if sd or uid is not None or record.parse_error is not None or record.raw is not None or record.node is not None:
            append((
                ts, received, record.host, record.app, record.pid, record.facility, record.severity,
                record.msgid, record.message, dumps(sd, ensure_ascii=False) if sd else None,
                record.source, peer, record.parse_error, record.raw, record.node, uid,
            ))
            if uid is not None:
                uids.append((len(rows) - 1, uid))
        elif peer is not None:
            append((ts, received, record.host, record.app, record.pid, record.facility, record.severity,
                    record.msgid, record.message, record.source, peer))
        else:
            append((ts, received, record.host, record.app, record.pid, record.facility, record.severity,
                    record.msgid, record.message, record.source))
        if record.cursor is not None:
            cursors[record.cursor[0]] = record.cursor[1]
    return _Rows(rows, cursors, uids, ahead)


def _claimed(ts: float) -> str:
    """The claimed time in RFC 3339, or as seconds when it is past what a date can hold (year 10000)."""
    try:
        return rfc3339(ts)
    except (OverflowError, ValueError, OSError):
        return repr(ts)


def _shown(row: Sequence[Any]) -> dict[str, object]:
    """A stored row in the record's JSON shape (`LogRecord.to_json`), plus its `id`."""
    fields = dict(zip(_SHOWN, row[1:], strict=True))
    fields["sd"] = json.loads(fields["sd"]) if fields["sd"] else {}
    return {"id": row[0], **LogRecord(**fields).to_json()}


def _where(q: LogQuery, fts_upto: int, segments: Sequence[str]) -> tuple[str, list[Any]]:
    """The WHERE clause for `q`, given what the word index holds: the ids up to `fts_upto`, in `segments`."""
    clauses: list[str] = []
    args: list[Any] = []
    for column, op, value in (
        ("ts", ">=", q.since), ("ts", "<=", q.until), ("host", "=", q.host), ("app", "=", q.app),
        ("severity", "<=", q.max_severity), ("source", "=", q.source), ("id", ">", q.after_id),
        ("id", "<=", q.max_id), ("node", "GLOB", q.node),
    ):
        if value is not None:
            clauses.append(f"{column} {op} ?")
            args.append(value)
    if q.peer is not None:  # stored as "ip:port" or "[v6]:port" (mepd.sources.syslog.server)
        prefix = f"[{q.peer}]:" if ":" in q.peer else f"{q.peer}:"
        clauses.append("(peer = ? OR substr(peer, 1, ?) = ?)")
        args += [q.peer, len(prefix), prefix]
    if q.grep:
        # The index narrows the rows read; this check on each of them is what makes the answer exact.
        scan = "instr(lower(message), lower(?)) > 0"
        match = grep.match_expression(q.grep) if fts_upto > 0 else None
        if match is not None:
            # Entries of deleted rows still in a segment point to no row of `logs`: the join leaves them out.
            lookups = " UNION ALL ".join(f"SELECT rowid FROM {name} WHERE {name} MATCH ?" for name in segments)
            clauses.append(f"(id > ? OR id IN ({lookups}))")
            args += [fts_upto, *[match] * len(segments)]
        clauses.append(scan)
        args.append(q.grep)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


@dataclasses.dataclass(slots=True)
class Busy:
    """The share of wall time some work took over about the last `window` seconds: each piece counts from when
    it ended, decaying exponentially, so that a steady share reads as itself and a burst shows within a window."""

    window: float
    _share: float = 0.0
    _at: float = 0.0

    def add(self, seconds: float, now: float) -> None:
        self._share = self.share(now) + seconds / self.window
        self._at = now

    def share(self, now: float) -> float:
        return self._share * math.exp((self._at - now) / self.window)


@dataclasses.dataclass(frozen=True, slots=True)
class Written:
    """What a write did: whether its batch was new (not committed by an earlier attempt), and the indexes of
    the records not stored because a record with their `uid` was (a RELP message sent again)."""

    new: bool
    repeats: list[int]


class LogStore:
    """Owns the database file; `write` and `query` are safe to call from the event loop."""

    def __init__(self, path: str, cfg: LogStorageConfig) -> None:
        self.path = path
        self.cfg = cfg
        self.last_id = 0
        self.fts_upto = 0
        self.packed = False  # whether the writer takes packed rows (`native`): as its `state` last said
        self.committed = asyncio.Condition()
        # Below the event loop: a datagram not read in time is lost, a batch stored late is not.
        self._writer = Worker(worker.__name__, "open", path, nice=WRITER_NICE)
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="logstore-r")
        # Status, the dashboard's intake sampling and resuming sources: short reads that never queue behind a search.
        self._control = ThreadPoolExecutor(max_workers=1, thread_name_prefix="logstore-c")
        self._local = threading.local()
        self.counters = Counters()  # files set aside or reopened: shown with the sink's (`mepd.app`)
        self.set_aside: list[str] = []  # corrupt databases renamed out of the way, oldest first
        self._file: worker.FileId | None = None  # the file the writer has open: readers follow it
        self.query_timeout = QUERY_TIMEOUT
        self.future_dated = 0  # records stored at arrival since the daemon started, their times not believed
        self._unindexed_since: float | None = None  # monotonic time the index last fell behind the table
        self.storing = Busy(BUSY_WINDOW)  # the writer's time spent on `write`, on the monotonic clock

    async def open(self) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        self.last_id, self.fts_upto, self.packed = await self._on_writer(worker.state)
        if native.pack is not None and not self.packed:
            log.warning("the log writer could not load mepd_rows() from %s (does this Python's sqlite3 load"
                        " extensions?): batches go as row tuples, at more CPU a row", native.path)
        if self.fts_lag > 0:
            self._unindexed_since = time.monotonic()

    @property
    def writer_pid(self) -> int | None:
        return self._writer.pid

    async def _on_writer(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn` in the writer process; if that process died, the next call starts another: a retryable error."""
        return (await self._answer(fn, *args)).value

    async def _answer(self, fn: Callable[..., Any], *args: Any) -> worker.Answer:
        """`_on_writer`, with how long the writer took."""
        try:
            answer: worker.Answer = await self._writer.call(fn.__name__, *args)
        except WorkerDiedError as e:
            log.error("the log writer process died (%s); starting a new one", e)
            raise sqlite3.OperationalError("log writer process died") from e
        for reopened in answer.reopened:
            self._reopened(reopened)
        self._file = answer.file
        return answer

    def _reopened(self, r: worker.Reopened) -> None:
        """The writer started a new database at the path: say so once, loudly, and count it."""
        self.last_id = self.fts_upto = 0
        self._unindexed_since = None
        if r.set_aside is not None:
            self.counters.inc("corrupt_files_set_aside")
            self.set_aside.append(r.set_aside)
            log.error("log store %s is corrupt (%s): set aside as %s; storing in a new database", self.path,
                      r.reason, r.set_aside)
        else:
            self.counters.inc("missing_files_reopened")
            held = "an unknown number of" if r.records is None else str(r.records)
            log.error("log store %s was deleted or replaced while open: the %s records it held are lost with it;"
                      " storing in a new database", self.path, held)

    @property
    def fts_lag(self) -> int:
        """Stored records not yet in the word index."""
        return self.last_id - self.fts_upto

    def index_overdue(self) -> bool:
        """Whether the index has been behind the table for `INDEX_DELAY` or longer, `INDEX_DELAY_BUSY` while
        storing keeps the writer busy."""
        since = self._unindexed_since
        if since is None:
            return False
        now = time.monotonic()
        return now - since >= (INDEX_DELAY_BUSY if self.storing.share(now) >= BUSY_SHARE else INDEX_DELAY)

    async def index(self, max_rows: int) -> int:
        """Add up to `max_rows` stored records to the word index, in one transaction."""
        try:
            upto: int = await self._on_writer(worker.index, max_rows)
        except sqlite3.Error:
            self._unindexed_since = time.monotonic()  # not overdue again before `INDEX_DELAY`
            raise
        done, self.fts_upto = upto - self.fts_upto, upto
        if self.fts_lag <= 0:
            self._unindexed_since = None
        return done

    async def close(self) -> None:
        if self._writer.pid is not None:
            with contextlib.suppress(WorkerDiedError):
                await self._writer.call(worker.close.__name__)
        await self._writer.stop()
        self._readers.shutdown(wait=True)
        self._control.shutdown(wait=True)

    async def write(self, records: Sequence[LogRecord], batch_id: str | None = None,
                    cursors: Mapping[str, str] | None = None) -> Written:
        """Commit a batch (and the cursors it reaches, its records' and `cursors`) in one transaction, then
        wake followers.

        Every attempt at one batch gives the same `batch_id`: one that committed is not stored again, and
        `Written.new` is False (the records are stored, by an earlier attempt)."""
        b = _rows(records)
        rows: list[tuple[Any, ...]] | bytes = b.rows
        if self.packed and native.pack is not None and not b.uids:
            rows = native.pack(b.rows, worker.PACK_FORMS)
            if len(rows) > worker.PACKED_MAX:
                rows = b.rows
        new: bool
        repeats: list[int]
        try:
            answer = await self._answer(worker.write, batch_id or uuid.uuid4().hex, rows,
                                        {**b.cursors, **(cursors or {})}, time.time(), b.uids)
        except sqlite3.Error:
            if isinstance(rows, bytes):  # a writer started since may not read them: the retry sends what it does
                self.packed = (await self._on_writer(worker.state))[2]
            raise
        self.last_id, new, repeats = answer.value
        now = time.monotonic()
        self.storing.add(answer.seconds, now)
        if self._unindexed_since is None and self.fts_lag > 0:
            self._unindexed_since = now
        self.future_dated += b.ahead
        await self.wake_followers()
        return Written(new, repeats)

    async def wake_followers(self) -> None:
        """Wake whoever waits on `committed`: after a commit, and at shutdown so that live tails end at once."""
        async with self.committed:
            self.committed.notify_all()

    async def cursor(self, name: str) -> str | None:
        """Where a resumable source stopped, as committed with its last records."""
        rows = await self._read_control("SELECT position FROM cursors WHERE name = ?", [name])
        return str(rows[0][0]) if rows else None

    async def lines_after(self, after_id: int, limit: int, node: str) -> list[Line]:
        """Up to `limit` records collected here (no `node`) with ids above `after_id`, in id order, whole (`raw`
        too), as `node`'s: what the fleet publisher sends."""
        return await self._in(self._readers, self._lines, after_id, limit, node)

    def _lines(self, after_id: int, limit: int, node: str, file: worker.FileId | None) -> list[Line]:
        return [Line(rid, received, f'{{"ts":"{rfc3339(ts)}","received":"{rfc3339(received)}",{body[1:]}\n'.encode())
                for rid, ts, received, body in self._fetch(_LINES, [node, after_id, limit], file)]

    def _reader_conn(self, file: worker.FileId | None) -> sqlite3.Connection:
        """This thread's connection to `file`, the writer's: a new one when the writer moved to a new file."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.file != file:
            conn.close()  # SQLite sees its file moved: it leaves the new file's -wal alone
            conn = None
        if conn is None:
            conn = worker.connect(self.path, create=False)
            self._local.conn, self._local.file = conn, file
        return conn

    def _fetch(self, sql: str, args: Sequence[Any], file: worker.FileId | None) -> list[tuple[Any, ...]]:
        return list(self._reader_conn(file).execute(sql, args))

    async def _in(self, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args, file)` on a reader thread; a corrupt file has the writer set it aside, and the call is made
        again on the new one."""
        loop = asyncio.get_running_loop()
        file = self._file
        try:
            return await loop.run_in_executor(pool, functools.partial(fn, *args, file))
        except sqlite3.DatabaseError as e:
            if not worker.is_corrupt(e):
                raise
            await self._on_writer(worker.set_aside, file, str(e))
        return await loop.run_in_executor(pool, functools.partial(fn, *args, self._file))

    def _deadline_passed(self, deadline: float) -> bool:
        """The progress handler's question, every `_PROGRESS_STEPS` VM instructions of a query."""
        return time.monotonic() > deadline

    def _search(self, sql: Callable[[int, list[str]], tuple[str, list[Any]]], file: worker.FileId | None
                ) -> list[dict[str, object]]:
        """A query's records, interrupted past `query_timeout` and refused past `MAX_RESULT_BYTES`.

        `sql` makes the query from what the word index holds (`_where`), read in the same transaction: a
        segment that retention drops meanwhile stays in this snapshot.  Made into dicts here, not on the event
        loop: a large answer would hold up intake."""
        conn = self._reader_conn(file)
        deadline = time.monotonic() + self.query_timeout
        conn.set_progress_handler(lambda: self._deadline_passed(deadline), _PROGRESS_STEPS)
        message = _SHOWN.index("message") + 1
        records: list[dict[str, object]] = []
        size = 0
        try:
            conn.execute("BEGIN")
            upto = int(conn.execute("SELECT value FROM meta WHERE key = 'words_upto'").fetchone()[0])
            query, args = sql(upto, [name for _, name in worker.segments(conn)])
            for row in conn.execute(query, args):
                size += len(row[message]) + _RECORD_COST
                if size > MAX_RESULT_BYTES:
                    raise QueryLimitError(f"the answer would take more than {MAX_RESULT_BYTES >> 20} MiB; narrow it"
                                          " with --since, --host or --grep, or lower --limit")
                records.append(_shown(row))
        except sqlite3.OperationalError as e:
            if str(e) != "interrupted":
                raise
            raise QueryLimitError(f"the query took longer than {self.query_timeout:g} s; narrow it with"
                                  " --since, --host or --app") from None
        finally:
            conn.set_progress_handler(None, 0)
            if conn.in_transaction:
                conn.execute("ROLLBACK")  # it only read; this also ends a statement left open by an error
        return records

    async def _records(self, sql: Callable[[int, list[str]], tuple[str, list[Any]]]) -> list[dict[str, object]]:
        return await self._in(self._readers, self._search, sql)

    async def _read_control(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        return await self._in(self._control, self._fetch, sql, args)

    async def query(self, q: LogQuery) -> list[dict[str, object]]:
        """Matching records, oldest first; with a limit, the newest `limit` of them.

        Raises QueryLimitError when the query runs past `query_timeout` or its answer past `MAX_RESULT_BYTES`."""
        def sql(fts_upto: int, segments: list[str]) -> tuple[str, list[Any]]:
            where, args = _where(q, fts_upto, segments)
            if q.limit > 0:
                return f"SELECT * FROM ({_SELECT}{where} ORDER BY ts DESC, id DESC LIMIT ?) ORDER BY ts, id", [
                    *args, q.limit]
            return f"{_SELECT}{where} ORDER BY ts, id", args

        return await self._records(sql)

    async def query_new(self, q: LogQuery) -> list[dict[str, object]]:
        """Records committed after `q.after_id`, in commit order: what `--follow` streams."""
        def sql(fts_upto: int, segments: list[str]) -> tuple[str, list[Any]]:
            where, args = _where(q, fts_upto, segments)
            return f"{_SELECT}{where} ORDER BY id", args

        return await self._records(sql)

    async def follow(self, q: LogQuery, after_id: int, stop: asyncio.Event,
                     idle: float | None = None) -> AsyncGenerator[list[dict[str, object]]]:
        """What a live tail shows: the records matching `q` (its times and limit aside) committed after
        `after_id`, a batch per commit, until `stop` is set (its setter calls `wake_followers`).  With `idle`,
        an empty batch after that many seconds without a commit: the caller's keep-alive."""
        live = dataclasses.replace(q, since=None, until=None, limit=0)
        last_id = after_id
        while not stop.is_set():
            async with self.committed:
                if self.last_id == last_id:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(idle):
                            await self.committed.wait()
            upto = self.last_id
            if upto == last_id:
                yield []
                continue
            new = await self.query_new(dataclasses.replace(live, after_id=last_id, max_id=upto))
            last_id = upto
            if new:
                yield new

    async def period_counts(self, since: float, until: float, messages: int = 5000
                            ) -> tuple[list[tuple[str, int, int]], list[tuple[str, int]]]:
        """(host, severity, records) over [since, until), and the `messages` commonest messages of severity
        error or worse with their counts: what the operations report groups (mepd.analysis.report)."""
        counts = await self._in(self._readers, self._fetch, "SELECT coalesce(host, ''), coalesce(severity, -1),"
                                " count(*) FROM logs WHERE ts >= ? AND ts < ? GROUP BY 1, 2", [since, until])
        errors = await self._in(self._readers, self._fetch, "SELECT message, count(*) FROM logs WHERE ts >= ?"
                                " AND ts < ? AND severity <= 3 GROUP BY 1 ORDER BY 2 DESC LIMIT ?",
                                [since, until, messages])
        return [(str(h), int(sev), int(n)) for h, sev, n in counts], [(str(m), int(n)) for m, n in errors]

    async def stats(self) -> dict[str, object]:
        """Count, oldest, size, `future_dated` and the index backlog: `mepctl status`, the dashboard every 10 s
        and each Prometheus scrape ask.  Records are stored in the order received, so the oldest is the first row
        (min(received) scanned the whole table: 0.27 s at 3 million records), and the oldest not indexed the one
        after `fts_upto`.  Never raises: status must answer when the store does not."""
        upto = self.fts_upto
        status: dict[str, object] = {"path": self.path, "set_aside": list(self.set_aside),
                                     "future_dated": self.future_dated, "index_backlog": max(0, self.fts_lag),
                                     "writer_busy": round(min(1.0, self.storing.share(time.monotonic())), 3),
                                     "packed_rows": self.packed}
        try:
            rows = await self._read_control(
                "SELECT (SELECT count(*) FROM logs), (SELECT received FROM logs ORDER BY id LIMIT 1),"
                " (SELECT page_count FROM pragma_page_count), (SELECT page_size FROM pragma_page_size),"
                " (SELECT freelist_count FROM pragma_freelist_count),"
                " (SELECT received FROM logs WHERE id > ? ORDER BY id LIMIT 1)",
                [upto],
            )
        except sqlite3.Error as e:
            return {"records": None, "oldest": None, "size_bytes": None, "index_age": None, "error": str(e),
                    **status}
        count, oldest, pages, page_size, free, unindexed = rows[0]
        return {
            "records": count,
            "oldest": rfc3339(oldest) if oldest is not None else None,
            "size_bytes": (pages - free) * page_size,
            # Seconds the oldest record not in the word index has waited since it arrived (0: none waits).
            "index_age": max(0.0, time.time() - unindexed) if unindexed is not None and self.fts_lag > 0 else 0.0,
            **status,
        }

    async def maintain(self, now: float | None = None) -> int:
        """Apply retention by age (on `received`) and by size; returns records deleted."""
        now = time.time() if now is None else now
        deleted = 0
        more = True
        while more:  # in steps, the batches that arrive meanwhile stored between them
            step: int
            step, more = await self._on_writer(worker.maintain, now, self.cfg.retention, self.cfg.max_size,
                                               MAINTAIN_STEP)
            deleted += step
        if deleted:  # the newest rows deleted too (by age, all of them) set the index back: new ids are reused
            self.last_id, self.fts_upto, self.packed = await self._on_writer(worker.state)
            log.info("retention removed %d records", deleted)
        return deleted


def _acknowledge(batch: list[LogRecord], repeats: set[int]) -> None:
    """Tell the sources that wait for it (RELP) that their records are committed, or were already."""
    for i, record in enumerate(batch):
        if record.on_stored is not None:
            record.on_stored(i in repeats)


class LogSink:
    """Feeds the store from the pipeline in batches; a failed write is retried, never dropped."""

    def __init__(self, store: LogStore, subscription: Subscription[LogRecord], counters: Counters,
                 pipeline_counters: Counters) -> None:
        self.name = "store/logs"
        self.store = store
        self.subscription = subscription
        self.counters = counters
        self._pipeline_counters = pipeline_counters

    async def run(self, started: Callable[[], None]) -> None:
        started()
        cfg = self.store.cfg
        maintenance = asyncio.create_task(self._maintenance(cfg.maintenance_interval))
        writes: deque[asyncio.Task[None]] = deque()
        try:
            busy = False
            while True:
                # Storing comes first: an overdue index takes the writer between two batches only while fewer
                # than two batches wait, so it uses the writer's slack and never makes the queue overflow.
                if (cfg.fulltext_index and self.store.index_overdue()
                        and len(self.subscription) < INDEX_SLACK * cfg.batch_size):
                    await self._index_some(pause_on_error=False)  # behind the writes in flight, before the next batch
                # A full batch means records arrive faster than one flush interval drains: keep storing.
                # (Writes in flight count: the index must see what they store, or their records would wait
                # unindexed for the next arrival.)
                if not len(self.subscription) and cfg.fulltext_index and (writes or self.store.fts_lag > 0):
                    if writes:
                        await writes.popleft()
                    elif busy:
                        busy = await self.subscription.wait(cfg.flush_interval)
                    else:
                        await self._index_some(pause_on_error=True)
                    continue
                batch = await self.subscription.get_batch(cfg.batch_size, cfg.flush_interval)
                busy = len(batch) >= cfg.batch_size
                if any(map(_CURSOR, batch)):  # (a cursor is a non-empty tuple) in C: no call per record
                    # A cursor commits only after every record before it: no batch may be left to retry.
                    while writes:
                        await writes.popleft()
                writes.append(asyncio.create_task(self._write_until_done(batch)))
                if len(writes) >= WRITES_IN_FLIGHT:
                    await writes.popleft()
        finally:
            maintenance.cancel()
            for w in writes:
                w.cancel()

    async def _write_until_done(self, batch: list[LogRecord]) -> None:
        delay = 0.1
        batch_id = uuid.uuid4().hex
        while True:
            try:
                repeats = (await self.store.write(batch, batch_id)).repeats
            except sqlite3.Error as e:
                self.counters.inc("write_errors")
                log.warning("log store write of %d records failed, retrying in %.1fs: %s", len(batch), delay, e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            self.counters.inc("batches")
            self.counters.inc("stored", len(batch) - len(repeats))
            self._pipeline_counters.inc("stored", len(batch) - len(repeats))
            if repeats:
                self.counters.inc("duplicates_dropped", len(repeats))
            _acknowledge(batch, set(repeats))
            self.subscription.done(len(batch))
            return

    async def _index_some(self, *, pause_on_error: bool) -> None:
        """Index a chunk: when the store keeps up, or between two batches once the index is `INDEX_DELAY` behind
        (a failure there waits `INDEX_DELAY` again, never holding up the batches)."""
        try:
            self.counters.inc("indexed", await self.store.index(FTS_CHUNK))
        except sqlite3.Error as e:
            self.counters.inc("index_errors")
            log.warning("word indexing failed, retrying later: %s", e)
            if pause_on_error:
                await asyncio.sleep(1.0)

    async def _maintenance(self, interval: float) -> None:
        while True:
            try:
                deleted = await self.store.maintain()
            except sqlite3.Error as e:
                self.counters.inc("maintenance_errors")
                log.warning("log store maintenance failed: %s", e)
            else:
                self.counters.inc("retention_deleted", deleted)
            await asyncio.sleep(interval)
