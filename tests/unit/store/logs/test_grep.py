"""`--grep` through the word index: exactly a substring scan, from old databases too, and an index that keeps up."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mepd.config import LogStorageConfig
from mepd.model import LogQuery, LogRecord
from mepd.pipeline import Channel, Counters
from mepd.store.logs import grep, worker
from mepd.store.logs import store as store_module
from mepd.store.logs.store import LogSink, LogStore, _where
from tests.helpers import until


def rec(ts: float, message: str, received: float | None = None) -> LogRecord:
    return LogRecord(ts=ts, received=ts if received is None else received, message=message, source="test")


# Words that share prefixes, suffixes and cases, IPs, ids, and separators: queries land inside, across and
# on the edges of tokens.  Non-ASCII letters too, which neither lower() nor the ascii tokenizer fold.
WORDS = ["fail", "Failed", "FAILED", "failure", "password", "pass", "sshd", "alice", "Alice", "ok", "0", "00",
         "é", "É", "straße", "日本", "ﬁle", "K", "a1b2", "req-7f3a", "user_id"]
SEPS = [" ", "  ", ".", "-", "_", ":", "=", "/", "[", "]", '"', "'", ",", "*", "(", ")", "\t", "ü"]
token = st.one_of(
    st.sampled_from(WORDS),
    st.builds(lambda a, b, c, d: f"{a}.{b}.{c}.{d}", *[st.integers(0, 12)] * 4),
    st.integers(0, 99999).map(str),
    st.text("abcdefABCDEF0123456789é", min_size=1, max_size=6),
)
message = st.lists(st.tuples(token, st.sampled_from(SEPS)), min_size=1, max_size=8).map(
    lambda parts: "".join(t + s for t, s in parts))


def flip_case(text: str, mask: int) -> str:
    return "".join(c.swapcase() if mask >> (i % 31) & 1 else c for i, c in enumerate(text))


@st.composite
def queries(draw: st.DrawFn, messages: list[str]) -> str:
    """A substring of a stored message (a word, part of one, a span across words), in any case; or other text."""
    kind = draw(st.sampled_from(["slice", "slice", "word", "other"]))
    if kind == "other":
        return draw(st.text(alphabet="".join(WORDS + SEPS), min_size=1, max_size=12))
    if kind == "word":
        text = draw(st.sampled_from(WORDS))
    else:
        m = draw(st.sampled_from(messages))
        i = draw(st.integers(0, len(m) - 1))
        text = m[i:draw(st.integers(i + 1, len(m)))]
    return flip_case(text, draw(st.integers(0, 2**31 - 1)))


def rows_of(messages: list[str], received: float) -> list[tuple[object, ...]]:
    return [(received + i, received + i, None, None, None, None, None, None, m, None, "test", None, None, None,
             None, None) for i, m in enumerate(messages)]


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(message, min_size=1, max_size=30), st.lists(message, min_size=1, max_size=10), st.data())
def test_grep_equals_a_substring_scan(messages: list[str], more: list[str], data: st.DataObject) -> None:
    """What the index narrows and the check confirms is what a scan of every message finds: on indexed rows,
    on rows the index has not reached yet, across word segments, after retention deleted the oldest rows (their
    entries left in a segment, or all of them, so that SQLite gives their ids again to the next rows)."""
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setattr(worker, "SEGMENT_MIN_ROWS", 2)
        worker.open(str(Path(tmp) / "logs.db"))
        try:
            worker.write("b", rows_of(messages, 0.0), {}, 0.0)
            for _ in range(data.draw(st.integers(0, 4))):
                worker.index(data.draw(st.integers(1, 10)))
            kept = messages[data.draw(st.integers(0, len(messages))):]
            worker.maintain(len(messages) - len(kept) + 100.0, 100.0, 1 << 40, 1000)  # deletes those received before
            worker.write("more", rows_of(more, 1000.0), {}, 0.0)
            worker.index(data.draw(st.integers(1, 10)))
            stored = kept + more
            first = len(messages) - len(kept) + 1 if kept else 1  # the first row's id
            conn = worker.connect(str(Path(tmp) / "logs.db"))
            upto = conn.execute("SELECT value FROM meta WHERE key = 'words_upto'").fetchone()[0]
            segments = [name for _, name in worker.segments(conn)]
            for _ in range(12):
                q = data.draw(queries(stored))
                where, args = _where(LogQuery(grep=q), upto, segments)
                got = [r[0] for r in conn.execute(f"SELECT id FROM logs{where} ORDER BY id", args)]
                want = [first + i for i, m in enumerate(stored) if grep.fold(q) in grep.fold(m)]
                assert got == want, (q, grep.match_expression(q))
            conn.close()
        finally:
            worker.close()


@pytest.mark.parametrize(("text", "expression"), [
    ("Failed password", '"password"*'),  # "Failed" may end a longer word: left out
    (" sshd[", '"sshd"'),
    ("from 10.0.0.5 port", '"10" AND "0" AND "0" AND "5" AND "port"*'),
    ("user=ALICE ", '"alice"'),
    ("seq=000123456", '"000123456"*'),
    ("x=ab", None),  # a prefix that short is not worth its lookup
    ("sshd", None),  # one word, possibly inside a longer one: a scan
    ("ail", None),
    ("..", None),
])
def test_what_the_word_index_is_asked(text: str, expression: str | None) -> None:
    assert grep.match_expression(text) == expression


# The schema mepd created before the word index (as of 6a6ad63), with its trigram index filled.
OLD_SCHEMA = """
CREATE TABLE logs (id INTEGER PRIMARY KEY, ts REAL NOT NULL, received REAL NOT NULL, host TEXT, app TEXT,
    pid TEXT, facility INTEGER, severity INTEGER, msgid TEXT, message TEXT NOT NULL, sd TEXT,
    source TEXT NOT NULL, peer TEXT, parse_error TEXT, raw TEXT, node TEXT, uid TEXT);
CREATE INDEX logs_ts ON logs (ts);
CREATE VIRTUAL TABLE logs_fts USING fts5(message, content='logs', content_rowid='id', tokenize='trigram');
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO meta (key, value) VALUES ('fts_upto', 0);
CREATE TRIGGER logs_ad AFTER DELETE ON logs
WHEN old.id <= (SELECT value FROM meta WHERE key = 'fts_upto') BEGIN
    INSERT INTO logs_fts (logs_fts, rowid, message) VALUES ('delete', old.id, old.message);
END;
CREATE TABLE cursors (name TEXT PRIMARY KEY, position TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE batches (id TEXT PRIMARY KEY, committed REAL NOT NULL) WITHOUT ROWID;
"""


async def test_a_database_with_the_trigram_index_opens_and_builds_the_word_index(tmp_path: Path) -> None:
    path = tmp_path / "logs.db"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as old:
        old.executescript(OLD_SCHEMA)
        old.executemany("INSERT INTO logs (ts, received, message, source) VALUES (?, ?, ?, 'test')",
                        [(i, i, f"Failed password for user{i} from 10.0.0.{i}") for i in range(1, 101)])
        old.execute("INSERT INTO logs_fts (rowid, message) SELECT id, message FROM logs WHERE id <= 80")
        old.execute("UPDATE meta SET value = 80 WHERE key = 'fts_upto'")
    store = LogStore(str(path), LogStorageConfig(retention=10**9))
    await store.open()
    assert (store.last_id, store.fts_upto) == (100, 0)  # the old index is not the new one: built again
    assert [r["id"] for r in await store.query(LogQuery(grep="user42 from", limit=0))] == [42]
    assert await store.index(1000) == 100
    assert [r["message"] for r in await store.query(LogQuery(grep="for USER7 ", limit=0))] == [
        "Failed password for user7 from 10.0.0.7"]
    assert len(await store.query(LogQuery(grep="password for", limit=0))) == 100
    assert await store.maintain(now=10**9 + 50.5) == 50
    assert [r["id"] for r in await store.query(LogQuery(grep="password for", limit=0))] == list(range(51, 101))
    await store.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        assert not {"logs_fts", "logs_ad"} & tables
        assert conn.execute("SELECT key, value FROM meta").fetchall() == [("words_upto", 100)]
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def test_under_sustained_load_the_index_catches_up_and_status_shows_its_backlog(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches that arrive full, without a pause, used to keep the index from ever running.  The flood here is
    one the writer can both store and index (it waits for the queue to drain to two batches): one faster than
    the writer stores is stored first and indexed after (`INDEX_SLACK`)."""
    monkeypatch.setattr(store_module, "INDEX_DELAY", 0.2)
    monkeypatch.setattr(store_module, "INDEX_DELAY_BUSY", 0.2)  # the flood may keep the writer busy storing
    store = LogStore(str(tmp_path / "logs.db"), LogStorageConfig(batch_size=50, flush_interval=0.05))
    await store.open()
    await store.write([rec(1.0, "old unique-token-0", received=time.time() - 100)])
    stats = await store.stats()
    assert stats["index_backlog"] == 1
    assert float(stats["index_age"]) >= 100  # type: ignore[arg-type]
    channel: Channel[LogRecord] = Channel("logs", Counters())
    subscription = channel.subscribe("store/logs", 10_000)
    sink = LogSink(store, subscription, Counters(), Counters())
    task = asyncio.create_task(sink.run(lambda: None))
    stop = asyncio.Event()

    async def flood() -> None:
        n = 0
        while not stop.is_set():
            now = time.time()
            await channel.put_many([rec(now, f"flood {n + i} end") for i in range(200)])
            n += 200
            # Always a full batch waiting (never idle), never more than the writer drains.
            await until(lambda: len(subscription) <= 100 or stop.is_set(), "the queue drained to two batches")

    feeder = asyncio.create_task(flood())
    await until(lambda: store.last_id > 1000, "the flood stored")
    fresh_id = store.last_id
    await until(lambda: store.fts_upto >= fresh_id, "the index past a record stored under the flood")
    stop.set()
    await feeder
    with sqlite3.connect(tmp_path / "logs.db") as conn:
        text = conn.execute("SELECT message FROM logs WHERE id = ?", [fresh_id]).fetchone()[0]
        # Found through the word index, not by the scan of what it does not cover.
        assert conn.execute("SELECT rowid FROM logs_words WHERE logs_words MATCH ?",
                            [grep.match_expression(f" {text.split()[1]} ")]).fetchall() == [(fresh_id,)]
    assert [r["id"] for r in await store.query(LogQuery(grep=f" {text.split()[1]} ", limit=0))] == [fresh_id]
    await until(lambda: store.fts_lag == 0, "the index current once the flood is over")
    stats = await store.stats()
    assert (stats["index_backlog"], stats["index_age"]) == (0, 0.0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await store.close()


async def test_an_overdue_index_waits_while_batches_queue_so_storing_comes_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst the writer cannot both store and index (UDP at its limit) is stored first: an index chunk never
    runs ahead of more than `INDEX_SLACK` waiting batches, else the queue would overflow and drop records."""
    monkeypatch.setattr(store_module, "INDEX_DELAY", 0.0)
    cfg = LogStorageConfig(batch_size=50, flush_interval=0.05)
    store = LogStore(str(tmp_path / "logs.db"), cfg)
    await store.open()
    await store.write([rec(1.0, "old unique-token-0")])  # the index behind the table: overdue at once
    channel: Channel[LogRecord] = Channel("logs", Counters())
    subscription = channel.subscribe("store/logs", 10_000)
    await channel.put_many([rec(time.time(), f"burst {i} end") for i in range(1000)])  # 20 batches waiting
    waiting_at_index: list[int] = []
    index = store.index

    async def noted(max_rows: int) -> int:
        waiting_at_index.append(len(subscription))
        return await index(max_rows)

    monkeypatch.setattr(store, "index", noted)
    counters = Counters()
    task = asyncio.create_task(LogSink(store, subscription, counters, Counters()).run(lambda: None))
    await until(lambda: counters.get("stored") == 1000 and store.fts_lag == 0, "the burst stored, then indexed")
    assert waiting_at_index, "the index ran"
    assert max(waiting_at_index) < store_module.INDEX_SLACK * cfg.batch_size
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await store.close()


async def test_while_storing_keeps_the_writer_busy_an_overdue_index_waits_longer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst is stored at full speed and indexed right after: indexing within it would only slow it (on 2
    cores, 500,000 messages over TCP went from 0.8 to 0.9-1.0 of syslog-ng's rate)."""
    monkeypatch.setattr(store_module, "INDEX_DELAY", 0.0)
    monkeypatch.setattr(store_module, "INDEX_DELAY_BUSY", 3600.0)
    store = LogStore(str(tmp_path / "logs.db"), LogStorageConfig())
    await store.open()
    try:
        await store.write([rec(1.0, "behind the index")])
        assert store.storing.share(time.monotonic()) > 0, "the writer's time for the write counts"
        assert store.index_overdue(), "a writer with time to spare indexes at INDEX_DELAY"
        store.storing.add(store_module.BUSY_WINDOW, time.monotonic())  # as a second of writes back to back
        assert not store.index_overdue(), "a busy writer stores first, for up to INDEX_DELAY_BUSY"
        assert (await store.stats())["writer_busy"] == 1.0
    finally:
        await store.close()


def test_the_busy_share_reads_a_steady_share_as_itself_and_forgets_a_burst() -> None:
    busy = store_module.Busy(window=1.0)
    for i in range(1, 1001):  # 5 ms of work every 20 ms: a quarter of the time
        busy.add(0.005, i * 0.02)
    assert busy.share(20.0) == pytest.approx(0.25, abs=0.01)
    for i in range(1, 101):  # then a second of writes back to back
        busy.add(0.01, 20.0 + i * 0.01)
    assert busy.share(21.0) > 0.6
    assert busy.share(26.0) < 0.01  # 5 windows later
