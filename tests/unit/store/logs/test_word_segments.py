"""The word index split by id into segments: retention drops a segment whole instead of deleting each row from
the index, deleted rows' entries left in a segment are never found, and databases made before the split open."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mepd.config import LogStorageConfig
from mepd.model import LogQuery, LogRecord
from mepd.store.logs import worker
from mepd.store.logs.store import LogStore


def rows(first: int, n: int, text: str = "Failed password for user{i} from 10.0.0.1", size: int = 0
         ) -> list[tuple[Any, ...]]:
    """n rows received at their number (from `first`), messages `text` with {i}, padded to `size` characters."""
    return [(float(i), float(i), None, None, None, None, None, None, text.format(i=i).ljust(size, "."), None, "test",
             None, None, None, None, None) for i in range(first, first + n)]


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sqlite3.Connection]:
    """The writer in this process, segments of 100 rows, and a reader's connection."""
    monkeypatch.setattr(worker, "SEGMENT_MIN_ROWS", 100)
    worker.open(str(tmp_path / "logs.db"))
    conn = worker.connect(str(tmp_path / "logs.db"))
    yield conn
    conn.close()
    worker.close()


def tables(conn: sqlite3.Connection) -> list[str]:
    return [name for _, name in worker.segments(conn)]


def test_retention_drops_a_segment_once_its_rows_are_gone(db: sqlite3.Connection) -> None:
    worker.write("a", rows(1, 300), {}, 0.0)
    for _ in range(3):
        worker.index(100)
    assert tables(db) == ["logs_words", "logs_words_101", "logs_words_201"]
    # Rows 1-100: all of the first segment's.
    assert worker.maintain(100.5 + 10, 10.0, 1 << 40, 1000).value == (100, False)
    # Dropped; and the newest holds its share of what is left (100 rows of 200): the next rows start another.
    assert tables(db) == ["logs_words_101", "logs_words_201", "logs_words_301"]
    assert "logs_words" not in {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    assert worker.maintain(150.5 + 10, 10.0, 1 << 40, 1000).value == (50, False)  # half of the next: it stays
    assert tables(db) == ["logs_words_101", "logs_words_201", "logs_words_301"]
    # All of them: the newest stays, for the next rows.
    assert worker.maintain(1000.0, 10.0, 1 << 40, 1000).value == (150, False)
    assert tables(db) == ["logs_words_301"]


def test_deleted_rows_entries_left_in_a_segment_are_never_found(db: sqlite3.Connection, tmp_path: Path) -> None:
    worker.write("a", rows(1, 50, "secret {i} old") + rows(51, 50, "secret {i} new"), {}, 0.0)
    worker.index(1000)
    assert worker.maintain(50.5 + 10, 10.0, 1 << 40, 1000).value == (50, False)
    # Still in the segment: retention no longer takes each row out of the index.
    assert db.execute("SELECT count(*) FROM logs_words WHERE logs_words MATCH 'old'").fetchone() == (50,)
    worker.close()

    async def found() -> list[object]:
        store = LogStore(str(tmp_path / "logs.db"), LogStorageConfig(retention=10**9))
        await store.open()
        try:
            return [r["id"] for r in await store.query(LogQuery(grep="secret 7 old", limit=0))] + [
                r["id"] for r in await store.query(LogQuery(grep=" old", limit=0))] + [
                r["id"] for r in await store.query(LogQuery(grep="secret 77 new", limit=0))]
        finally:
            await store.close()

    assert asyncio.run(found()) == [77]


async def test_after_retention_empties_the_store_new_records_are_found(tmp_path: Path) -> None:
    """SQLite gives the deleted rows' ids again: the index must not take the new rows for indexed ones."""
    store = LogStore(str(tmp_path / "logs.db"), LogStorageConfig(retention=100.0))
    await store.open()
    await store.write([LogRecord(ts=i, received=i, message=f"first {i} batch", source="test") for i in range(20)])
    assert await store.index(1000) == 20
    assert await store.maintain(now=1000.0) == 20  # all of them, by age
    await store.write([LogRecord(ts=i, received=i, message=f"second {i} batch", source="test")
                       for i in range(990, 995)])
    await store.index(1000)
    assert [r["message"] for r in await store.query(LogQuery(grep="second 992 batch", limit=0))] == [
        "second 992 batch"]
    await store.close()


def test_a_database_made_before_the_split_opens_with_its_index(tmp_path: Path) -> None:
    """The previous version's one `logs_words`, and the trigger that deleted each row from it, as it made them."""
    path = str(tmp_path / "logs.db")
    with contextlib.closing(worker.connect(path)) as old:
        old.executescript(PREVIOUS_SCHEMA)
        old.executemany(worker.INSERT, rows(1, 100))
        old.execute("INSERT INTO logs_words (rowid, message) SELECT id, message FROM logs")
        old.execute("UPDATE meta SET value = 100 WHERE key = 'words_upto'")
    worker.open(path)
    try:
        with contextlib.closing(worker.connect(path)) as conn:
            assert tables(conn) == ["logs_words"]
            assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'logs_words_ad'").fetchall() == []
            assert conn.execute("SELECT count(*) FROM logs_words WHERE logs_words MATCH 'user42'").fetchone() == (1,)
            assert worker.maintain(50.5 + 100, 100.0, 1 << 40, 1000).value == (50, False)  # received before 50.5
            assert tables(conn) == ["logs_words", "logs_words_101"]  # the next records go to a new segment
            worker.write("b", rows(101, 100), {}, 0.0)
            assert worker.index(1000).value == 200
            assert worker.maintain(100.5 + 100, 100.0, 1 << 40, 1000).value == (50, False)
            assert tables(conn)[0] == "logs_words_101"  # the old index, dropped whole once its rows were gone
            assert conn.execute("SELECT rowid FROM logs_words_101 WHERE logs_words_101 MATCH 'user150'").fetchall(
                ) == [(150,)]
    finally:
        worker.close()


def test_max_size_bounds_the_file_as_segments_come_and_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages freed by deleted rows and dropped segments are used again: the file stops growing."""
    monkeypatch.setattr(worker, "SEGMENT_MIN_ROWS", 200)
    path = str(tmp_path / "logs.db")
    max_size = 2 << 20
    worker.open(path)
    try:
        sizes = []
        for cycle in range(30):  # each writes half of max_size, 30 times over
            worker.write(f"b{cycle}", rows(cycle * 1000, 1000, "cycle {i} text", 1000), {}, 0.0)
            worker.index(2000)
            worker.maintain(0.0, 1e9, max_size, 1 << 30)
            sizes.append(os.path.getsize(path))
        with contextlib.closing(worker.connect(path)) as conn:
            assert len(tables(conn)) <= worker.SEGMENT_SHARE + 2
        assert max(sizes[10:]) <= 3 * max_size, sizes
        assert max(sizes[20:]) <= max(sizes[:20]), sizes
    finally:
        worker.close()


# The schema of the version before the segments (733739c), the one word index and its trigger.
PREVIOUS_SCHEMA = f"""
CREATE TABLE logs (id INTEGER PRIMARY KEY, {", ".join(f"{name} {kind}" for name, kind in worker.COLUMNS.items())});
CREATE INDEX logs_ts ON logs (ts);
CREATE VIRTUAL TABLE logs_words USING fts5(
    message, content='logs', content_rowid='id', tokenize='ascii', detail='none'
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO meta (key, value) VALUES ('words_upto', 0);
CREATE TRIGGER logs_words_ad AFTER DELETE ON logs
WHEN old.id <= (SELECT value FROM meta WHERE key = 'words_upto') BEGIN
    INSERT INTO logs_words (logs_words, rowid, message) VALUES ('delete', old.id, old.message);
END;
CREATE TABLE cursors (name TEXT PRIMARY KEY, position TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE batches (id TEXT PRIMARY KEY, committed REAL NOT NULL) WITHOUT ROWID;
"""


def test_a_pass_in_steps_deletes_what_one_call_does(tmp_path: Path) -> None:
    """A retention pass runs as calls of a few records each, batches stored between them: by age and by size,
    the steps delete what the pass would in one call (the size share is measured once, at its start)."""
    def run(name: str, max_rows: int) -> list[tuple[int, bool]]:
        path = str(tmp_path / name)
        worker.open(path)
        try:
            worker.write("a", rows(1, 500, "entry {i}", 2000), {}, 0.0)
            worker.index(1000)
            steps = []
            more = True
            while more:
                step = worker.maintain(100.5 + 1000, 1000.0, 512 << 10, max_rows).value
                steps.append(step)
                more = step[1]
            return steps
        finally:
            worker.close()

    whole = run("whole.db", 1 << 30)
    steps = run("steps.db", 30)
    assert len(whole) == 1
    assert whole[0][0] > 100  # the 100 past retention, and more for max_size
    assert sum(n for n, _ in steps) == whole[0][0]
    assert all(n <= 30 for n, _ in steps)
    assert [more for _, more in steps] == [True] * (len(steps) - 1) + [False]


def test_every_segment_merges_its_fts5_segments_16_at_a_time(db: sqlite3.Connection) -> None:
    worker.write("a", rows(1, 200), {}, 0.0)
    worker.index(100)
    worker.index(100)
    assert tables(db) == ["logs_words", "logs_words_101"]
    for name in tables(db):  # FTS5's defaults are 4 and 1 MiB: a third more CPU a row (bench/README)
        assert dict(db.execute(f"SELECT k, v FROM {name}_config WHERE k != 'version'")) == {
            "automerge": 16, "hashsize": 8 << 20}
