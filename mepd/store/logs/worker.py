"""The log store's writing side, run in a process of its own.

Storing a record costs about as much CPU as receiving and parsing it.  In a
thread of the daemon it would share the GIL with the event loop, and worse:
sqlite3 takes the GIL back for every row it binds, waiting up to the switch
interval each time the loop holds it, so a busy loop starved the writer.  A
child process has its own interpreter and runs on the other core.

Everything here runs in that process; `mepd.store.logs` calls these functions
through `mepd.workers.Worker`, one at a time in order, so there is exactly one writer.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, Final

log = logging.getLogger(__name__)

# A record's stored fields, in the table's order after `id`, with their SQL types: the one column list.
COLUMNS: Final = {
    "ts": "REAL NOT NULL", "received": "REAL NOT NULL", "host": "TEXT", "app": "TEXT", "pid": "TEXT",
    "facility": "INTEGER", "severity": "INTEGER", "msgid": "TEXT", "message": "TEXT NOT NULL",
    "sd": "TEXT",  # RFC 5424 structured data as JSON, NULL when empty
    "source": "TEXT NOT NULL", "peer": "TEXT", "parse_error": "TEXT", "raw": "TEXT",
}

# Lookups by host or app go through the `ts` index (queries come with a time
# range): an index per column cost twice the insert time (bench/syslog/stages.py).
SCHEMA: Final = f"""
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY,
    {", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())}
);
CREATE INDEX IF NOT EXISTS logs_ts ON logs (ts);
DROP INDEX IF EXISTS logs_host_ts;
DROP INDEX IF EXISTS logs_app_ts;
CREATE VIRTUAL TABLE IF NOT EXISTS logs_fts USING fts5(
    message, content='logs', content_rowid='id', tokenize='trigram'
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('fts_upto', 0);
CREATE TRIGGER IF NOT EXISTS logs_ad AFTER DELETE ON logs
WHEN old.id <= (SELECT value FROM meta WHERE key = 'fts_upto') BEGIN
    INSERT INTO logs_fts (logs_fts, rowid, message) VALUES ('delete', old.id, old.message);
END;
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, position TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS batches (id TEXT PRIMARY KEY, committed REAL NOT NULL) WITHOUT ROWID;
"""

INSERT: Final = f"INSERT INTO logs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_DELETE_CHUNK: Final = 5000
# A batch is retried when its writer died before answering, right after: an hour of ids is plenty.
_BATCH_IDS_KEPT: Final = 3600.0

_conn: sqlite3.Connection | None = None


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    # Only take effect on a new, empty database, and only before the switch to WAL writes its header.
    # 16 KiB pages: a fifth less CPU per inserted row than the 4 KiB default (bench/syslog/stages.py).
    conn.execute("PRAGMA page_size=16384")
    conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def _db() -> sqlite3.Connection:
    assert _conn is not None, "open() is the worker's first call"
    return _conn


def open(path: str) -> None:  # noqa: A001 - the module is the writer: worker.open
    """The worker process's first call: one connection for the life of the process."""
    global _conn  # noqa: PLW0603 - one connection per process is the point of this module
    _conn = connect(path)
    _conn.executescript(SCHEMA)


def state() -> tuple[int, int]:
    """(last stored id, last indexed id)."""
    conn = _db()
    last = int(conn.execute("SELECT coalesce(max(id), 0) FROM logs").fetchone()[0])
    return last, int(conn.execute("SELECT value FROM meta WHERE key = 'fts_upto'").fetchone()[0])


def close() -> None:
    global _conn  # noqa: PLW0603
    if _conn is not None:
        _conn.close()
        _conn = None


def write(batch_id: str, rows: Sequence[tuple[Any, ...]], cursors: dict[str, str], now: float) -> int:
    """Commit rows and the source cursors they reach in one transaction; returns the last id.

    The batch's id commits with them: a batch sent again because the writer died after its commit but
    before answering is recognised and not stored twice.
    """
    conn = _db()
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("INSERT OR IGNORE INTO batches (id, committed) VALUES (?, ?)", [batch_id, now]).rowcount:
            conn.executemany(INSERT, rows)
            if cursors:
                conn.executemany(
                    "INSERT INTO cursors (name, position, updated) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE"
                    " SET position = excluded.position, updated = excluded.updated",
                    [(name, pos, now) for name, pos in cursors.items()],
                )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM logs").fetchone()[0])


def index(max_rows: int) -> int:
    """Add up to `max_rows` stored records to the full-text index; returns the last indexed id."""
    conn = _db()
    conn.execute("BEGIN IMMEDIATE")
    try:
        start = int(conn.execute("SELECT value FROM meta WHERE key = 'fts_upto'").fetchone()[0])
        end = conn.execute(
            "SELECT max(id) FROM (SELECT id FROM logs WHERE id > ? ORDER BY id LIMIT ?)", [start, max_rows]
        ).fetchone()[0]
        if end is not None:
            conn.execute("INSERT INTO logs_fts (rowid, message) SELECT id, message FROM logs"
                         " WHERE id > ? AND id <= ?", [start, end])
            conn.execute("UPDATE meta SET value = ? WHERE key = 'fts_upto'", [end])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return int(end) if end is not None else start


def maintain(now: float, retention: float, max_size: int) -> int:
    """Apply retention by age (on `received`) and by size; returns records deleted."""
    conn = _db()
    conn.execute("DELETE FROM batches WHERE committed < ?", [now - _BATCH_IDS_KEPT])
    deleted = 0
    cutoff = now - retention
    for _ in _chunks_older_than(conn, cutoff):
        deleted += _delete_oldest(conn, _DELETE_CHUNK, cutoff)
    used = _used_bytes(conn)
    if used > max_size:
        # Delete the share of rows that is over the limit, plus 10% headroom so this does not run
        # at every pass; measuring again right away would mislead, as FTS5 frees space only on merge.
        count = int(conn.execute("SELECT count(*) FROM logs").fetchone()[0])
        target = int(count * (used - max_size) / used * 1.1) + 1
        while target > 0 and (n := _delete_oldest(conn, min(_DELETE_CHUNK, target), None)):
            deleted += n
            target -= n
        conn.execute("INSERT INTO logs_fts (logs_fts) VALUES ('optimize')")
    if deleted:
        conn.execute("PRAGMA incremental_vacuum")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        log.info("retention removed %d records", deleted)
    return deleted


def _chunks_older_than(conn: sqlite3.Connection, cutoff: float) -> Iterator[None]:
    while True:
        row = conn.execute("SELECT received FROM logs ORDER BY id LIMIT 1").fetchone()
        if row is None or row[0] >= cutoff:
            return
        yield None


def _delete_oldest(conn: sqlite3.Connection, n: int, cutoff: float | None) -> int:
    extra = " AND received < ?" if cutoff is not None else ""
    args: list[Any] = [n] if cutoff is None else [n, cutoff]
    conn.execute("BEGIN IMMEDIATE")
    cur = conn.execute(f"DELETE FROM logs WHERE id IN (SELECT id FROM logs ORDER BY id LIMIT ?){extra}", args)
    conn.execute("COMMIT")
    if cur.rowcount == 0 and cutoff is not None:
        # The oldest rows by id are newer than the cutoff but something older sits later: stop here.
        conn.execute("BEGIN IMMEDIATE")
        cur = conn.execute("DELETE FROM logs WHERE received < ?", [cutoff])
        conn.execute("COMMIT")
    return cur.rowcount


def _used_bytes(conn: sqlite3.Connection) -> int:
    pages, size, free = conn.execute(
        "SELECT (SELECT page_count FROM pragma_page_count), (SELECT page_size FROM pragma_page_size),"
        " (SELECT freelist_count FROM pragma_freelist_count)"
    ).fetchone()
    return int((pages - free) * size)
