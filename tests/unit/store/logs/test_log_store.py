from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mepd.config import LogStorageConfig
from mepd.model import LogQuery, LogRecord, rfc3339
from mepd.pipeline import Channel, Counters
from mepd.store.logs import worker
from mepd.store.logs.store import LogSink, LogStore, _rows
from mepd.workers import Worker
from tests.helpers import until
from tests.unit.store.logs import dying_writer


def rec(ts: float, message: str, **kw: object) -> LogRecord:
    return LogRecord(ts=ts, received=kw.pop("received", ts), message=message, source="test", **kw)  # type: ignore[arg-type]


async def open_store(path: Path, **cfg: object) -> LogStore:
    store = LogStore(str(path / "logs.db"), LogStorageConfig(**cfg))  # type: ignore[arg-type]
    await store.open()
    return store


async def store_with_a_killed_writer(path: Path) -> LogStore:
    """A store holding one record ("before"), whose writer process was just killed (SIGKILL)."""
    store = await open_store(path)
    await store.write([rec(1, "before")])
    pid = store.writer_pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    return store


async def test_filters_and_order(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await store.write([
        rec(30, "third", host="a", app="sshd", severity=6),
        rec(10, "first Failed password", host="a", app="sshd", severity=4, sd={"x@1": {"k": "v"}}),
        rec(20, "second", host="b", app="cron", severity=3),
    ])
    messages = [r["message"] for r in await store.query(LogQuery(until=35))]
    assert messages == ["first Failed password", "second", "third"]
    assert [r["message"] for r in await store.query(LogQuery(host="a"))] == ["first Failed password", "third"]
    assert [r["message"] for r in await store.query(LogQuery(max_severity=4))] == ["first Failed password", "second"]
    assert store.fts_lag == 3
    assert [r["message"] for r in await store.query(LogQuery(grep="failed PASS"))] == ["first Failed password"]
    assert await store.index(2) == 2
    await store.write([rec(40, "fourth failed password")])
    assert (store.fts_upto, store.fts_lag) == (2, 2)
    both = ["first Failed password", "fourth failed password"]
    assert [r["message"] for r in await store.query(LogQuery(grep="failed PASS"))] == both
    assert await store.index(100) == 2
    assert store.fts_lag == 0
    assert [r["message"] for r in await store.query(LogQuery(grep="failed PASS"))] == both
    assert [r["message"] for r in await store.query(LogQuery(grep="ec"))] == ["second"]
    assert [r["message"] for r in await store.query(LogQuery(since=15, until=25))] == ["second"]
    assert [r["message"] for r in await store.query(LogQuery(limit=2, until=35))] == ["second", "third"]
    first = (await store.query(LogQuery(app="sshd", limit=1, until=15)))[0]
    assert first["sd"] == {"x@1": {"k": "v"}}
    assert first["ts"] == "1970-01-01T00:00:10.000000Z"
    await store.close()


async def test_cursor_commits_with_its_records(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await store.write([LogRecord(ts=1, received=1, message="a", source="j", cursor=("journal", "c1")),
                       LogRecord(ts=2, received=2, message="b", source="j", cursor=("journal", "c2"))])
    assert await store.cursor("journal") == "c2"
    assert await store.cursor("other") is None
    await store.close()
    reopened = await open_store(tmp_path)
    assert await reopened.cursor("journal") == "c2"
    assert reopened.last_id == 2
    await reopened.close()


async def test_retention_by_age_and_size(tmp_path: Path) -> None:
    store = await open_store(tmp_path, retention=100.0, max_size=1024 * 1024)
    await store.write([rec(i, f"old {i}", received=1000.0 + i) for i in range(10)])
    await store.write([rec(i, f"new {i}", received=2000.0 + i) for i in range(10)])
    deleted = await store.maintain(now=2050.0)
    assert deleted == 10
    assert (await store.stats())["oldest"] == rfc3339(2000.0)  # the first record left, after the deleted ones
    assert [r["message"] for r in await store.query(LogQuery(grep="old"))] == []
    await store.write([rec(3000 + i, "x" * 2000, received=3000.0 + i) for i in range(2000)])
    await store.maintain(now=3000.0)
    stats = await store.stats()
    assert int(stats["size_bytes"]) <= 1024 * 1024  # type: ignore[call-overload]
    assert 0 < int(stats["records"]) < 2010  # type: ignore[call-overload]
    newest = await store.query(LogQuery(limit=1))
    assert newest[0]["ts"].startswith("1970-01-01T01:23:19")  # type: ignore[union-attr]
    await store.close()
    with sqlite3.connect(tmp_path / "logs.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM logs_words WHERE logs_words MATCH 'old'").fetchone() == (0,)


async def test_a_dead_writer_process_is_replaced_and_the_batch_retried(tmp_path: Path) -> None:
    """The writer is a child process; if it dies (OOM killer, a crash), the next write starts another."""
    store = await store_with_a_killed_writer(tmp_path)
    with pytest.raises(sqlite3.OperationalError, match="writer process died"):
        await store.write([rec(2, "lost with the process")])
    await store.write([rec(2, "retried")])
    assert [r["message"] for r in await store.query(LogQuery())] == ["before", "retried"]
    await store.close()


async def test_sink_indexes_what_a_burst_left_once_it_is_over(tmp_path: Path) -> None:
    """Full batches are stored first; the full-text index catches up when they stop."""
    store = await open_store(tmp_path, batch_size=50, flush_interval=0.05)
    channel: Channel[LogRecord] = Channel("logs", Counters())
    sink = LogSink(store, channel.subscribe("store/logs", 10_000), Counters(), Counters())
    task = asyncio.create_task(sink.run(lambda: None))
    now = time.time()
    await channel.put_many([rec(now + i, f"burst message {i}") for i in range(500)])
    await until(lambda: store.last_id == 500 and store.fts_lag == 0, "the burst stored and indexed")
    assert sink.counters.get("indexed") == 500
    assert [r["message"] for r in await store.query(LogQuery(grep="message 499"))] == ["burst message 499"]
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await store.close()


async def test_sink_without_the_fulltext_index_stores_and_grep_still_finds(tmp_path: Path) -> None:
    store = await open_store(tmp_path, batch_size=50, flush_interval=0.05, fulltext_index=False)
    channel: Channel[LogRecord] = Channel("logs", Counters())
    sink = LogSink(store, channel.subscribe("store/logs", 10_000), Counters(), Counters())
    task = asyncio.create_task(sink.run(lambda: None))
    now = time.time()
    for first in (0, 10):  # between the two, the sink has had its chance to index, and must not have
        await channel.put_many([rec(now + i, f"quiet message {i}") for i in range(first, first + 10)])
        await until(lambda n=first + 10: store.last_id == n, "the batch stored")
    assert (store.fts_upto, sink.counters.get("indexed")) == (0, 0)
    assert [r["message"] for r in await store.query(LogQuery(grep="message 17"))] == ["quiet message 17"]
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await store.close()


def writer_processes(db: str) -> list[int]:
    """This process's worker children that hold the database `db` open."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) != os.getpid():
                continue
            fds = [os.readlink(f.path) for f in os.scandir(Path(entry.path, "fd"))]
        except (FileNotFoundError, ProcessLookupError):  # exited meanwhile
            continue
        if db in fds:
            found.append(int(entry.name))
    return found


async def test_a_batch_committed_by_a_writer_killed_before_it_answered_is_stored_once(tmp_path: Path) -> None:
    """The writer commits, then dies before answering: the sink sends the batch again to a new writer,
    which must recognise it (60,000 sent, 61,100 stored before)."""
    store = LogStore(str(tmp_path / "logs.db"), LogStorageConfig(batch_size=500, flush_interval=0.01))
    store._writer = Worker(dying_writer.__name__, "open", store.path)  # the real writer, killed after a commit
    await store.open()
    channel: Channel[LogRecord] = Channel("logs", Counters())
    sink = LogSink(store, channel.subscribe("store/logs", 10_000), Counters(), Counters())
    task = asyncio.create_task(sink.run(lambda: None))
    try:
        await channel.put_many([rec(i, f"line {i}") for i in range(500)])
        await until(lambda: sink.counters.get("stored") == 500, "the batch stored")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert await asyncio.to_thread(os.path.exists, store.path + ".killed"), "the first writer died after its commit"
    assert sink.counters.get("write_errors") == 1
    stored = await store.query(LogQuery(limit=0))
    await store.close()
    assert [r["message"] for r in stored] == [f"line {i}" for i in range(500)]


async def test_writes_after_the_writer_died_start_one_writer(tmp_path: Path) -> None:
    """The sink retries its batches in flight at once: each retry used to start a writer process of its own."""
    store = await store_with_a_killed_writer(tmp_path)
    await until(lambda: store.writer_pid is None, "the store to see its writer die")
    await asyncio.gather(*(store.write([rec(2 + i, f"retry {i}")]) for i in range(3)))
    assert writer_processes(store.path) == [store.writer_pid]
    assert [r["message"] for r in await store.query(LogQuery())] == ["before", "retry 0", "retry 1", "retry 2"]
    await store.close()


async def test_a_stored_record_reads_back_in_its_json_shape(tmp_path: Path) -> None:
    """Every field goes to its column and back: the query answer is the record's `to_json`, plus its id."""
    record = LogRecord(ts=10.5, received=11.25, message="m", source="syslog/udp", host="h", app="a", pid="7",
                       facility=4, severity=3, msgid="ID1", sd={"x@1": {"k": "v"}}, peer="127.0.0.1",
                       parse_error="missing PRI", raw="raw text")
    store = await open_store(tmp_path)
    await store.write([record])
    assert await store.query(LogQuery()) == [{"id": 1, **record.to_json()}]
    await store.close()
    with sqlite3.connect(tmp_path / "logs.db") as conn:
        assert conn.execute("SELECT raw FROM logs").fetchall() == [("raw text",)]  # kept, not shown


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: a disk that really fills up (mounting needs root)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True,
                             check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


async def test_a_full_disk_is_reported_as_such(small_disk: Path) -> None:
    """Issue 17 item 13: the rollback after the failed commit raised "cannot rollback - no transaction is active",
    which hid the real error."""
    store = await open_store(small_disk)
    with pytest.raises(sqlite3.OperationalError) as failed:  # noqa: PT012 - the disk fills at some batch
        for n in range(1000):
            await store.write([rec(n * 100 + i, f"line {i} " + "x" * 1000) for i in range(100)])
    assert str(failed.value) == "database or disk is full"
    await store.close()


async def test_a_uid_is_stored_once_and_the_sink_says_which_were_repeats(tmp_path: Path) -> None:
    """RELP's resends after a crash: a record whose uid is stored (or earlier in its batch) is dropped, counted,
    and its source told it is stored all the same; records without uid are never compared."""
    store = await open_store(tmp_path, flush_interval=60.0)
    channel: Channel[LogRecord] = Channel("logs", Counters())
    sink = LogSink(store, channel.subscribe("store/logs", 10_000), Counters(), Counters())
    task = asyncio.create_task(sink.run(lambda: None))
    heard: list[tuple[str, bool]] = []

    def acked(message: str) -> LogRecord:
        r = rec(1, message, uid=message[:2])
        r.on_stored = lambda duplicate: heard.append((message, duplicate))
        return r

    await channel.put_many([acked("u1 first"), acked("u2 first"), acked("u1 again in the batch"),
                            rec(1, "no uid"), rec(1, "no uid")], urgent=True)
    await until(lambda: len(heard) == 3, "the first batch acknowledged")  # urgent: no 60 s linger
    await channel.put_many([acked("u2 resent"), acked("u3 new")], urgent=True)
    await until(lambda: len(heard) == 5, "the second batch acknowledged")
    assert heard == [("u1 first", False), ("u2 first", False), ("u1 again in the batch", True),
                     ("u2 resent", True), ("u3 new", False)]
    assert sorted(r["message"] for r in await store.query(LogQuery())) == [
        "no uid", "no uid", "u1 first", "u2 first", "u3 new"]
    assert (sink.counters.get("duplicates_dropped"), sink.counters.get("stored")) == (2, 5)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await store.close()


async def test_one_batch_mixing_uids_cursors_and_a_future_time_is_stored_as_each_alone(tmp_path: Path) -> None:
    """The rows, cursors, uids and future-dated count of a batch are gathered in one pass: each record's
    index, cursor and time must still be its own, whatever comes before it."""
    store = await open_store(tmp_path)
    future = 1000.0 + 10 * 86400
    written = await store.write([
        rec(1000, "plain"),
        rec(future, "from the future", received=1000.5, uid="a", sd={"x": {"k": "v"}}),
        rec(1001, "journal one", cursor=("journal", "c1")),
        rec(1002, "resent", uid="a"),
        rec(1003, "journal two", cursor=("journal", "c2")),
    ])
    assert written.repeats == [3]
    assert store.future_dated == 1
    assert await store.cursor("journal") == "c2"
    stored = {r["message"]: r for r in await store.query(LogQuery())}
    assert sorted(stored) == ["from the future", "journal one", "journal two", "plain"]
    ahead = stored["from the future"]
    assert ahead["ts"] == rfc3339(1000.5)
    assert ahead["sd"] == {"x": {"k": "v"}, "mepd": {"ts_claimed": rfc3339(future)}}
    assert stored["plain"]["ts"] == rfc3339(1000)
    await store.close()


FORMS_BATCH = [  # records whose rows take each of `worker.ROW_FORMS`, mixed, so each form runs more than once
    LogRecord(ts=1.5, received=2.25, message="common", source="syslog/tcp", host="h", app="a", pid="7", facility=4,
              severity=3, msgid="ID1", peer="127.0.0.1:514"),
    LogRecord(ts=2.0, received=2.5, message="no peer", source="journal", host="h", app="a", severity=6),
    LogRecord(ts=3.0, received=3.0, message="sd", source="syslog/udp", sd={"x@1": {"k": "v"}}, peer="[::1]:514"),
    LogRecord(ts=4.0, received=4.0, message="common again", source="syslog/tcp", peer="127.0.0.1:514"),
    LogRecord(ts=5.0, received=5.0, message="unparsed", source="syslog/udp", parse_error="missing PRI",
              raw="<x>unparsed", peer="127.0.0.1:514"),
    LogRecord(ts=6.0, received=6.0, message="relayed", source="fleet", node="edge-1", uid="u-1"),
    LogRecord(ts=7.0, received=7.0, message="no peer again", source="tail"),
    LogRecord(ts=8.0, received=8.0, message="", source="syslog/tcp", host="", peer="127.0.0.1:514"),
]


# Runs of one form longer than the rows one INSERT statement takes, with the mixed ones between them.
LONG_RUNS = [
    *(LogRecord(ts=10.0 + i / 100, received=10.0, message=f"common {i}", source="syslog/tcp", peer="127.0.0.1:514",
                host="h", facility=1, severity=i % 8) for i in range(450)),
    *FORMS_BATCH,
    *(LogRecord(ts=20.0, received=20.0, message=f"journal {i}", source="journal", pid=str(i)) for i in range(201)),
    *(LogRecord(ts=30.0, received=30.0, message=f"sd {i}", source="syslog/udp", sd={"i": {"n": str(i)}})
      for i in range(205)),
]


def stored_rows(path: Path, records: list[LogRecord], rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    """What `worker.write` (run in this process) stores for `rows`, every column."""
    worker.open(str(path))
    try:
        worker.write("b", rows, {}, 1.0, [(i, r.uid) for i, r in enumerate(records) if r.uid is not None])
        return list(worker._db().execute("SELECT * FROM logs ORDER BY id"))
    finally:
        worker.close()


def test_short_rows_store_what_rows_with_every_column_store(tmp_path: Path) -> None:
    """A row without its empty columns (the writer's shorter INSERT) is stored as the same row with them, None:
    in the batch's order, columns in place, however many rows of a form come in a row."""
    assert [len(r) for r in _rows(FORMS_BATCH).rows] == [11, 10, 16, 11, 16, 16, 10, 11]
    assert {len(form) for form in worker.ROW_FORMS} == {10, 11, 16}
    rows = _rows(LONG_RUNS).rows
    assert (len(rows[0]), len(rows[449]), len(rows[-1])) == (11, 11, 16)
    every_column = [tuple(dict(zip(form, row, strict=True)).get(name) for name in worker.COLUMNS)
                    for row in rows for form in worker.ROW_FORMS if len(form) == len(row)]
    short = stored_rows(tmp_path / "short.db", LONG_RUNS, rows)
    assert short == stored_rows(tmp_path / "long.db", LONG_RUNS, every_column)
    assert [r[9] for r in short] == [r.message for r in LONG_RUNS]  # the message column, in the batch's order
    assert [r[0] for r in short] == list(range(1, len(LONG_RUNS) + 1))


async def test_records_of_every_row_form_read_back_as_written(tmp_path: Path) -> None:
    """Through the writer process and back: each record whole, whichever form its row took."""
    store = await open_store(tmp_path)
    await store.write(LONG_RUNS)
    assert await store.query_new(LogQuery()) == [{"id": i, **r.to_json()} for i, r in enumerate(LONG_RUNS, 1)]
    assert [json.loads(line.text) for line in await store.lines_after(0, 10_000, "n")] == [
        {**r.to_json(), "node": "n", "id": i, "raw": r.raw} for i, r in enumerate(LONG_RUNS, 1) if r.node is None]
    await store.close()
