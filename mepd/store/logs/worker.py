"""The log store's writing side, run in a process of its own.

Storing a record costs about as much CPU as receiving and parsing it.  In a
thread of the daemon it would share the GIL with the event loop, and worse:
sqlite3 takes the GIL back for every row it binds, waiting up to the switch
interval each time the loop holds it, so a busy loop starved the writer.  A
child process has its own interpreter and runs on the other core.

Everything here runs in that process; `mepd.store.logs` calls these functions
through `mepd.workers.Worker`, one at a time in order, so there is exactly one writer.

The writer also keeps the file usable, as journald does its journals: a
database found corrupt is set aside under a new name and a new one started in
its place, and a database deleted or replaced under it (its path no longer
leads to the file it has open) is noticed at the next call and a new one
opened at the path.  Either way the call that met it runs again on the new
file, and its answer says what happened (`Reopened`) for the daemon to log and count.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, ParamSpec, TypeVar

from mepd.store.logs import native

# A record's stored fields, in the table's order after `id`, with their SQL types: the one column list.
COLUMNS: Final = {
    "ts": "REAL NOT NULL", "received": "REAL NOT NULL", "host": "TEXT", "app": "TEXT", "pid": "TEXT",
    "facility": "INTEGER", "severity": "INTEGER", "msgid": "TEXT", "message": "TEXT NOT NULL",
    "sd": "TEXT",  # RFC 5424 structured data as JSON, NULL when empty
    "source": "TEXT NOT NULL", "peer": "TEXT", "parse_error": "TEXT", "raw": "TEXT",
    "node": "TEXT",  # the last ones: databases made before them gain them by ALTER TABLE (`_open`)
    "uid": "TEXT",  # the sender's identity of the record (RELP's uuid), unique: `write` drops a repeat
}

# Lookups by host or app go through the `ts` index (queries come with a time
# range): an index per column cost twice the insert time (bench/syslog/stages.py).
# The word index behind `--grep` (`mepd.store.logs.grep`): FTS5's `ascii` tokenizer, whose tokens are runs of
# ASCII letters and digits and non-ASCII characters, folded as SQLite's lower() folds, with no positions
# (detail=none): a fifth of the trigram index's cost per record.  It is split by id into segments, one FTS5
# table each (`word_segments`: the first id each holds; the first is `logs_words`, the one table of the
# databases made before the split): retention drops a segment once the rows it covers are gone instead of
# deleting each row from the index (a 'delete' per row tokenized its message again, and cost more than
# storing it).  Deleted rows' entries in the segments left are harmless: a search reads the rows the
# index points to from `logs` and checks each.  Databases made with the trigram index (`logs_fts`, filled
# up to meta `fts_upto`) lose it when opened: the word index is built from the table behind the writes, as
# for new records, and searches scan what it does not cover yet.
SCHEMA: Final = f"""
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY,
    {", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())}
);
CREATE INDEX IF NOT EXISTS logs_ts ON logs (ts);
DROP INDEX IF EXISTS logs_host_ts;
DROP INDEX IF EXISTS logs_app_ts;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('words_upto', 0);
CREATE TABLE IF NOT EXISTS word_segments (first INTEGER PRIMARY KEY, name TEXT NOT NULL);
DROP TRIGGER IF EXISTS logs_words_ad;
DROP TRIGGER IF EXISTS logs_ad;
DROP TABLE IF EXISTS logs_fts;
DELETE FROM meta WHERE key = 'fts_upto';
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, position TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS batches (id TEXT PRIMARY KEY, committed REAL NOT NULL) WITHOUT ROWID;
"""

# Partial: the records without a uid (all but RELP's) cost the index nothing.
UID_INDEX: Final = "CREATE UNIQUE INDEX IF NOT EXISTS logs_uid ON logs (uid) WHERE uid IS NOT NULL"
# A row comes in one of three forms, told apart by its length: all of `COLUMNS`, or only `_COMMON` with or
# without `peer` when the others are NULL, as they are for most records.  SQLite fills the columns left
# out with NULL, and each None not bound saves the writer about 0.5 µs (Python's sqlite3 sends a None through
# its adapter lookup), where a whole row of the bench costs it 3.8 (bench/syslog/stages.py).
_RARE: Final = ("sd", "parse_error", "raw", "node", "uid")
_COMMON: Final = tuple(name for name in COLUMNS if name not in (*_RARE, "peer"))
ROW_FORMS: Final = (tuple(COLUMNS), (*_COMMON, "peer"), _COMMON)
_FORMS: Final = {len(names): names for names in ROW_FORMS}
# The row forms as the packed rows' `pack` takes them (`native`): at each row length, the column of each value.
PACK_FORMS: Final = tuple(bytes(list(COLUMNS).index(name) for name in _FORMS[size]) if size in _FORMS else None
                          for size in range(len(COLUMNS) + 1))
# A batch's rows packed into one value (`_rows.c`): SQLite reads them out of it itself, with no value bound
# through Python's sqlite3 (about 40 % fewer instructions a row in the writer, bench/README).
# Above this many bytes a batch goes as tuples: SQLite takes no value past its SQLITE_LIMIT_LENGTH (1e9 by
# default), and a batch of `batch_size` records of `max_message_size` each may be larger.
PACKED_MAX: Final = 256 << 20
PACKED_INSERT: Final = (f"INSERT INTO logs ({', '.join(COLUMNS)}) SELECT"
                        f" {', '.join(f'c{i}' for i in range(len(COLUMNS)))} FROM mepd_rows(?)")
# Rows of one form go `_ROWS_PER_INSERT` to an INSERT statement (VALUES (...), (...), ...), as many as SQLite's
# limit of bound parameters allows: a quarter less CPU per row than a statement step per row (executemany).
_ROWS_PER_INSERT: Final = 200


@functools.cache
def insert_sql(size: int, rows: int = 1) -> str:
    """The INSERT of `rows` rows of the form that has `size` columns."""
    names = _FORMS[size]
    return f"INSERT INTO logs ({', '.join(names)}) VALUES " + ", ".join([f"({', '.join('?' * size)})"] * rows)


INSERT: Final = insert_sql(len(COLUMNS))
_UID_CHUNK: Final = 500  # uids looked up per query, below SQLite's limit of bound parameters
_DELETE_CHUNK: Final = 5000
# A word segment takes new records until it covers this share of the rows the store spans: deleted rows'
# entries cost at most about that share of the index, and a store kept at its `max_size` is searched through
# about as many segments as this, plus one.  While retention deletes nothing, a segment first takes
# `SEGMENT_MIN_ROWS`: a store filling up is searched through a few segments, not one per few rows.
SEGMENT_SHARE: Final = 4
SEGMENT_MIN_ROWS: Final = 100_000
# FTS5 merges its b-tree segments once `automerge` of them share a level (4 by default): at 16, a row is
# rewritten by about half as many merges, and the index costs a quarter less CPU a row (41,000 to 31,000
# instructions indexing 500,000 bench rows in chunks of `FTS_CHUNK`, bench/README), where a search reads
# more segments for the same time within the noise.
AUTOMERGE: Final = 16
# And it writes a new b-tree segment each time its terms in memory pass `hashsize` (1 MiB by default): a chunk
# of `FTS_CHUNK` bench rows holds about 5 MiB of them, so at 8 MiB it writes one segment, not five, and merges
# less (another 7 % fewer instructions a row; the writer's memory grows by as much at most).
HASHSIZE: Final = 8 << 20
# A batch is retried when its writer died before answering, right after: an hour of ids is plenty.
_BATCH_IDS_KEPT: Final = 3600.0
# Batches read from the fleet's streams (mepd.fleet.consumer): a node republishes an unacknowledged
# message when it restarts, however long it was down, and the stream redelivers one for as long as it
# keeps it; so their ids are kept as long as the records they brought (`storage.logs.retention`).
FLEET_BATCH_PREFIX: Final = "fleet:"

# SQLITE_CORRUPT ("database disk image is malformed") and SQLITE_NOTADB ("file is not a database").
_CORRUPT_CODES: Final = frozenset({11, 26})

FileId = tuple[int, int]  # (st_dev, st_ino): which file a path leads to

_conn: sqlite3.Connection | None = None
_packed: bool | None = None  # whether the connections read packed rows: decided at the first open, kept
_size_left = 0  # records the retention pass under way still deletes for `max_size` (`maintain`)
_path = ""
_file: FileId | None = None
_notices: list[Reopened] = []

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Reopened:
    """The writer started another database at its path: `set_aside` holds the corrupt one, or the old file was gone."""

    reason: str
    set_aside: str | None  # the corrupt file's new name
    records: int | None  # what the file that went away held, when it could be counted


@dataclass(frozen=True, slots=True)
class Answer:
    """A call's result, the file it was made on, what the writer had to reopen before or during it, and the
    seconds it took (how busy storing keeps the writer: `mepd.store.logs.store.Busy`)."""

    value: Any
    file: FileId | None
    reopened: tuple[Reopened, ...]
    seconds: float


def is_corrupt(error: BaseException) -> bool:
    """Whether SQLite said the file is damaged (the code survives the pickling from the writer process)."""
    return isinstance(error, sqlite3.DatabaseError) and (getattr(error, "sqlite_errorcode", 0) & 0xFF) in _CORRUPT_CODES


def connect(path: str, create: bool = True) -> sqlite3.Connection:
    """A connection as the store uses them; without `create`, a missing file is an error, not a new empty one."""
    target = path if create else f"file:{urllib.parse.quote(path)}?mode=rw"
    conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False, timeout=30.0, uri=not create)
    try:
        # Only take effect on a new, empty database, and only before the switch to WAL writes its header.
        # 16 KiB pages: a fifth less CPU per inserted row than the 4 KiB default (bench/syslog/stages.py).
        conn.execute("PRAGMA page_size=16384")
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
    except BaseException:
        conn.close()  # "file is not a database": the caller sets the file aside, with nothing left open on it
        raise
    return conn


def _db() -> sqlite3.Connection:
    assert _conn is not None, "open() is the worker's first call"
    return _conn


def open(path: str) -> None:  # noqa: A001 - the module is the writer: worker.open
    """The worker process's first call: one connection, reopened only when its file is damaged or gone."""
    global _path  # noqa: PLW0603 - one connection per process is the point of this module
    _path = path
    try:
        _open()
    except sqlite3.DatabaseError as e:
        if not is_corrupt(e):
            raise
        _set_aside(str(e))


def _open() -> None:
    global _conn, _file, _size_left, _packed  # noqa: PLW0603
    _size_left = 0  # a pass measured on the file left behind says nothing of this one
    _conn = connect(_path)
    if _packed is None:
        _packed = _loads_packed_rows(_conn)
    elif _packed:  # as it loaded in this process before: a failure now is an error, not a quiet change
        _load_packed_rows(_conn)
    st = os.stat(_path)
    _file = (st.st_dev, st.st_ino)
    _conn.executescript(SCHEMA)
    have = {row[1] for row in _conn.execute("PRAGMA table_info(logs)")}
    for name, kind in COLUMNS.items():
        if name not in have:
            _conn.execute(f"ALTER TABLE logs ADD COLUMN {name} {kind}")
    _conn.execute(UID_INDEX)
    if _conn.execute("SELECT 1 FROM word_segments").fetchone() is None:  # new, or made before the split
        _conn.execute("BEGIN IMMEDIATE")
        try:
            _new_segment(_conn, 0, "logs_words")
            _conn.execute("COMMIT")
        except BaseException:
            _rollback(_conn)
            raise


def _loads_packed_rows(conn: sqlite3.Connection) -> bool:
    """Load mepd_rows() into the connection, when the extension was built for this table and this Python's
    sqlite3 loads extensions (Debian's does; one built without SQLite's extension loading does not)."""
    if native.path is None or native.columns != len(COLUMNS):
        return False
    try:
        _load_packed_rows(conn)
    except (AttributeError, sqlite3.Error):
        return False
    return True


def _load_packed_rows(conn: sqlite3.Connection) -> None:
    assert native.path is not None
    conn.enable_load_extension(True)
    try:
        conn.load_extension(native.path)
    finally:
        conn.enable_load_extension(False)  # SQL's load_extension() stays refused


def _new_segment(conn: sqlite3.Connection, first: int, name: str) -> None:
    """A word segment for the records from id `first` on (an existing table of that name, the databases made
    before the split's `logs_words`, is taken as it is, with these settings)."""
    conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS {name} USING fts5("
                 "message, content='logs', content_rowid='id', tokenize='ascii', detail='none')")
    for option, value in (("automerge", AUTOMERGE), ("hashsize", HASHSIZE)):
        conn.execute(f"INSERT INTO {name} ({name}, rank) VALUES (?, ?)", [option, value])
    conn.execute("INSERT INTO word_segments (first, name) VALUES (?, ?)", [first, name])


def _newest_segment(conn: sqlite3.Connection, upto: int, min_rows: int) -> str:
    """The segment for the records after `upto`: the newest, or a new one once the newest holds its share of
    the stored rows (all of them: while the index is behind, the rows it holds are few)."""
    first, name = segments(conn)[-1]
    oldest, last = conn.execute("SELECT (SELECT coalesce(min(id), 0) FROM logs), (SELECT coalesce(max(id), 0)"
                                " FROM logs)").fetchone()
    if upto >= max(first, 1) and upto - first + 1 >= max(min_rows, (last - oldest + 1) // SEGMENT_SHARE):
        name = f"logs_words_{upto + 1}"
        _new_segment(conn, upto + 1, name)
    return name


def segments(conn: sqlite3.Connection) -> list[tuple[int, str]]:
    """The word segments, (first id, table), oldest first."""
    return [(int(first), str(name)) for first, name in conn.execute("SELECT first, name FROM word_segments"
                                                                     " ORDER BY first")]


def _set_aside(error: str) -> None:
    """Rename the corrupt database (and its -wal and -shm) out of the way and start a new one at the path."""
    close()
    aside = f"{_path}.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    while os.path.exists(aside):  # a second one within the second
        aside += "~"
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.rename(_path + suffix, aside + suffix)
    _notices.append(Reopened(error, aside, None))
    _open()


def _check_file() -> None:
    """Reopen at the path if the file there is no longer the one open: deleted (`rm logs.db*`) or replaced."""
    if _conn is None:  # the last reopen failed (the directory gone, say): try again
        _open()
        return
    try:
        st = os.stat(_path)
        moved = (st.st_dev, st.st_ino) != _file
    except FileNotFoundError:
        moved = True
    if not moved:
        return
    records: int | None = None
    with contextlib.suppress(sqlite3.Error):
        records = int(_conn.execute("SELECT count(*) FROM logs").fetchone()[0])
    close()  # SQLite sees the file moved: it leaves the -wal now at the path alone
    _notices.append(Reopened("the file was deleted or replaced", None, records))
    _open()


def _recovering(fn: Callable[P, T]) -> Callable[P, Answer]:
    """Run `fn` on a usable database: check the file first, and on corruption set it aside and run `fn` again."""

    @functools.wraps(fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> Answer:
        start = time.perf_counter()
        _check_file()
        try:
            value = fn(*args, **kwargs)
        except sqlite3.DatabaseError as e:
            if not is_corrupt(e):
                raise
            _set_aside(str(e))
            value = fn(*args, **kwargs)
        notices = tuple(_notices)
        _notices.clear()
        return Answer(value, _file, notices, time.perf_counter() - start)

    return call


@_recovering
def set_aside(file: FileId | None, error: str) -> None:
    """A reader found the database corrupt: set it aside, unless the writer already moved on from that file."""
    if file == _file:
        _set_aside(error)


@_recovering
def state() -> tuple[int, int, bool]:
    """(last stored id, last indexed id, whether `write` takes packed rows)."""
    conn = _db()
    last = int(conn.execute("SELECT coalesce(max(id), 0) FROM logs").fetchone()[0])
    return last, int(conn.execute("SELECT value FROM meta WHERE key = 'words_upto'").fetchone()[0]), bool(_packed)


def close() -> None:
    global _conn  # noqa: PLW0603
    if _conn is not None:
        with contextlib.suppress(sqlite3.Error):  # a corrupt file may fail its last checkpoint: it is being left
            _conn.close()
        _conn = None


def _rollback(conn: sqlite3.Connection) -> None:
    """Undo the open transaction, if SQLite has not already (it does on a full disk): the error that got us
    here is the one to report, not "cannot rollback - no transaction is active"."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


@_recovering
def write(batch_id: str, rows: Sequence[tuple[Any, ...]] | bytes, cursors: dict[str, str], now: float,
          uids: Sequence[tuple[int, str]] = ()) -> tuple[int, bool, list[int]]:
    """Commit rows (each in one of `ROW_FORMS`, or packed by `native.pack` when `state` says so) and the source
    cursors they reach in one transaction; returns the last id, whether the batch is new, and the indexes of
    the rows not stored because their uid (`uids`: (row index, uid) of the rows that have one, never packed)
    was.

    The batch's id commits with them: a batch sent again because the writer died after its commit but
    before answering is recognised and not stored twice.
    """
    conn = _db()
    conn.execute("BEGIN IMMEDIATE")
    repeats: list[int] = []
    try:
        new = bool(conn.execute("INSERT OR IGNORE INTO batches (id, committed) VALUES (?, ?)",
                                [batch_id, now]).rowcount)
        if new:
            if isinstance(rows, bytes):
                conn.execute(PACKED_INSERT, [rows])
            else:
                if uids:
                    rows, repeats = _without_stored_uids(conn, rows, uids)
                _insert(conn, rows)
            if cursors:
                conn.executemany(
                    "INSERT INTO cursors (name, position, updated) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE"
                    " SET position = excluded.position, updated = excluded.updated",
                    [(name, pos, now) for name, pos in cursors.items()],
                )
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM logs").fetchone()[0]), new, repeats


def _insert(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert the rows in their order (the ids follow it), a run of rows of one form at a time."""
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    for size, same_form in itertools.groupby(rows, len):
        if size not in _FORMS:  # fails as it always did, with sqlite3's "incorrect number of bindings"
            conn.executemany(INSERT, same_form)
            continue
        run = list(same_form)
        per = max(1, min(_ROWS_PER_INSERT, limit // size))
        whole = len(run) - len(run) % per
        for start in range(0, whole, per):
            conn.execute(insert_sql(size, per), list(itertools.chain.from_iterable(run[start : start + per])))
        conn.executemany(insert_sql(size), run[whole:])


def _without_stored_uids(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]],
                         uids: Sequence[tuple[int, str]]) -> tuple[list[tuple[Any, ...]], list[int]]:
    """The rows whose uid is neither stored nor earlier in the batch, and the indexes of the others."""
    values = [uid for _, uid in uids]
    seen: set[str] = set()
    for start in range(0, len(values), _UID_CHUNK):
        chunk = values[start : start + _UID_CHUNK]
        seen.update(row[0] for row in conn.execute(
            f"SELECT uid FROM logs WHERE uid IN ({', '.join('?' * len(chunk))})", chunk))
    repeats: list[int] = []
    for i, uid in uids:
        if uid in seen:
            repeats.append(i)
        seen.add(uid)
    if not repeats:
        return list(rows), repeats
    dropped = set(repeats)
    return [row for i, row in enumerate(rows) if i not in dropped], repeats


@_recovering
def index(max_rows: int) -> int:
    """Add up to `max_rows` stored records to the word index; returns the last indexed id."""
    conn = _db()
    conn.execute("BEGIN IMMEDIATE")
    try:
        start = int(conn.execute("SELECT value FROM meta WHERE key = 'words_upto'").fetchone()[0])
        end = conn.execute(
            "SELECT max(id) FROM (SELECT id FROM logs WHERE id > ? ORDER BY id LIMIT ?)", [start, max_rows]
        ).fetchone()[0]
        if end is not None:
            name = _newest_segment(conn, start, SEGMENT_MIN_ROWS)
            conn.execute(f"INSERT INTO {name} (rowid, message) SELECT id, message FROM logs"
                         " WHERE id > ? AND id <= ?", [start, end])
            conn.execute("UPDATE meta SET value = ? WHERE key = 'words_upto'", [end])
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return int(end) if end is not None else start


@_recovering
def maintain(now: float, retention: float, max_size: int, max_rows: int) -> tuple[int, bool]:
    """Apply retention by age (on `received`) and by size, deleting at most `max_rows` records; returns the
    records deleted and whether the pass has more to delete: the caller calls again, and the batches that
    arrived meanwhile are stored in between.

    What it deletes leaves its pages free for the next records (the file keeps its size); the word segments
    whose rows are all gone are dropped whole."""
    global _size_left  # noqa: PLW0603 - a pass runs over several calls
    conn = _db()
    deleted = 0
    if not _size_left:  # a new pass
        fleet = f"id >= '{FLEET_BATCH_PREFIX}' AND id < '{FLEET_BATCH_PREFIX[:-1]};'"  # the prefix, as a key range
        conn.execute(f"DELETE FROM batches WHERE committed < ? AND NOT ({fleet})", [now - _BATCH_IDS_KEPT])
        conn.execute(f"DELETE FROM batches WHERE committed < ? AND {fleet}", [now - retention])
        cutoff = now - retention
        for _ in _chunks_older_than(conn, cutoff):
            if deleted >= max_rows:
                _drop_segments(conn)
                return deleted, True
            deleted += _delete_oldest(conn, min(_DELETE_CHUNK, max_rows - deleted), cutoff)
        if deleted:
            _drop_segments(conn)  # before measuring: the segments that held only those rows are not kept
        used = _used_bytes(conn)
        if used > max_size:
            # Delete the share of rows that is over the limit, plus 10% headroom so this does not run at every
            # pass; the index entries of the rows deleted are freed with their segment, so measuring again
            # before this pass is done would delete more than needed.
            count = int(conn.execute("SELECT count(*) FROM logs").fetchone()[0])
            _size_left = int(count * (used - max_size) / used * 1.1) + 1
    by_size = 0
    while _size_left > 0 and deleted + by_size < max_rows:
        n = _delete_oldest(conn, min(_DELETE_CHUNK, _size_left, max_rows - deleted - by_size), None)
        by_size += n
        _size_left = _size_left - n if n else 0  # none left to delete: the pass is over
    if by_size:
        _drop_segments(conn)
    return deleted + by_size, _size_left > 0


def _drop_segments(conn: sqlite3.Connection) -> None:
    """Drop the word segments (all but the newest) whose rows are all deleted, and start a new one once the
    newest holds its share; when the newest rows were deleted (by age, all of them), set the index back to
    the last row, so that the ids SQLite gives again are indexed again."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Two subqueries: one SELECT of both min() and max() reads the whole table.
        oldest, last = conn.execute("SELECT (SELECT min(id) FROM logs), (SELECT coalesce(max(id), 0) FROM logs)"
                                    ).fetchone()
        held = segments(conn)
        for (first, name), (after, _) in itertools.pairwise(held):
            if oldest is None or oldest >= after:
                conn.execute(f"DROP TABLE {name}")
                conn.execute("DELETE FROM word_segments WHERE first = ?", [first])
        conn.execute("UPDATE meta SET value = ? WHERE key = 'words_upto' AND value > ?", [last, last])
        _newest_segment(conn, int(conn.execute("SELECT value FROM meta WHERE key = 'words_upto'").fetchone()[0]), 0)
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


def _chunks_older_than(conn: sqlite3.Connection, cutoff: float) -> Iterator[None]:
    while True:
        row = conn.execute("SELECT received FROM logs ORDER BY id LIMIT 1").fetchone()
        if row is None or row[0] >= cutoff:
            return
        yield None


def _delete_oldest(conn: sqlite3.Connection, n: int, cutoff: float | None) -> int:
    """Delete the `n` oldest rows by id (of them, those received before `cutoff`, if given); returns how many.

    A range of ids, found first: half the cost of `id IN (SELECT ... LIMIT n)` (bench/syslog/retention.py)."""
    row = conn.execute("SELECT id FROM logs ORDER BY id LIMIT 1 OFFSET ?", [n - 1]).fetchone()
    given = [(c, v) for c, v in (("id <= ?", row and row[0]), ("received < ?", cutoff)) if v is not None]
    where = " WHERE " + " AND ".join(c for c, _ in given) if given else ""  # fewer than n rows: all of them
    cur = _delete(conn, f"DELETE FROM logs{where}", [v for _, v in given])
    if cur.rowcount == 0 and cutoff is not None:
        # The oldest rows by id are newer than the cutoff but something older sits later: stop here.
        cur = _delete(conn, "DELETE FROM logs WHERE received < ?", [cutoff])
    return cur.rowcount


def _delete(conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> sqlite3.Cursor:
    conn.execute("BEGIN IMMEDIATE")
    try:
        cur = conn.execute(sql, args)
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return cur


def _used_bytes(conn: sqlite3.Connection) -> int:
    pages, size, free = conn.execute(
        "SELECT (SELECT page_count FROM pragma_page_count), (SELECT page_size FROM pragma_page_size),"
        " (SELECT freelist_count FROM pragma_freelist_count)"
    ).fetchone()
    return int((pages - free) * size)
