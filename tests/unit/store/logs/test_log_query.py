"""Queries that must not hide records or hold others up: lying clocks, slow searches, big answers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mepd.config import LogStorageConfig
from mepd.model import LogQuery, LogRecord, rfc3339
from mepd.store.logs import store as store_module
from mepd.store.logs.store import FUTURE_TOLERANCE, LogStore, QueryLimitError
from tests.helpers import DEADLINE, until

Y2099 = 4_070_908_800.0  # 2099-01-01T00:00:00Z
BIG = "".join(chr(97 + (i * 7919) % 26) for i in range(65536))  # 64 KiB with no long repeat


def rec(ts: float, message: str, received: float, **kw: object) -> LogRecord:
    return LogRecord(ts=ts, received=received, message=message, source="test", **kw)  # type: ignore[arg-type]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[LogStore]:
    s = LogStore(str(tmp_path / "logs.db"), LogStorageConfig())
    await s.open()
    yield s
    await s.close()


async def test_future_dated_records_do_not_hide_current_ones(store: LogStore) -> None:
    now = time.time()
    await store.write([rec(Y2099 + i, f"from the future {i}", now - 30) for i in range(1000)])
    await store.write([rec(now - 20 + i, f"Failed password for root {i}", now - 20 + i) for i in range(5)])
    current = [f"Failed password for root {i}" for i in range(5)]

    since = [r["message"] for r in await store.query(LogQuery(since=now - 600))]
    assert since[-5:] == current, "the newest 1000 of the last 10 minutes end with the current lines"
    newest = [r["message"] for r in await store.query(LogQuery(limit=10))]
    assert newest[-5:] == current
    assert await store.query(LogQuery(since=Y2099 - 1)) == [], "a claimed time is not an event time"

    assert (store.future_dated, (await store.stats())["future_dated"]) == (1000, 1000)
    flagged = next(r for r in await store.query(LogQuery(grep="from the future 7", limit=0))
                   if r["message"] == "from the future 7")
    assert flagged["ts"] == flagged["received"] == rfc3339(now - 30)
    assert flagged["sd"] == {"mepd": {"ts_claimed": rfc3339(Y2099 + 7)}}


async def test_clock_skew_within_tolerance_past_times_and_other_flags_are_kept(store: LogStore) -> None:
    now = time.time()
    await store.write([
        rec(now + FUTURE_TOLERANCE - 60, "a fast clock", now),
        rec(now - 86400 * 30, "a backlog line", now),
        rec(now + 86400, "cut and lying", now, sd={"mepd": {"truncated_from": "70000"}, "x@1": {"k": "v"}}),
        rec(1e300, "past any date", now),
    ])
    by_message = {r["message"]: r for r in await store.query(LogQuery())}
    assert by_message["a fast clock"]["ts"] == rfc3339(now + FUTURE_TOLERANCE - 60)
    assert by_message["a fast clock"]["sd"] == {}
    assert by_message["a backlog line"]["ts"] == rfc3339(now - 86400 * 30)
    assert by_message["cut and lying"]["sd"] == {
        "mepd": {"truncated_from": "70000", "ts_claimed": rfc3339(now + 86400)}, "x@1": {"k": "v"}}
    assert by_message["past any date"]["sd"] == {"mepd": {"ts_claimed": "1e+300"}}
    assert by_message["past any date"]["ts"] == rfc3339(now)


async def test_status_and_cursors_answer_while_two_searches_hold_the_reader_threads(
        store: LogStore, monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time()
    await store.write([rec(now, BIG, now) for _ in range(40)])
    await store.write([rec(now, "cursor", now, cursor=("journal", "s=1"))])
    # Each search stops in SQLite's progress handler, on its reader thread, until released.
    release = threading.Event()
    inside: set[str] = set()

    def held(_deadline: float) -> bool:
        inside.add(threading.current_thread().name)
        release.wait(DEADLINE)
        return False

    monkeypatch.setattr(store, "_deadline_passed", held)
    monkeypatch.setattr(store_module, "_PROGRESS_STEPS", 100)
    worst = LogQuery(grep=BIG[1000:1256] + "x", limit=0)  # the longest grep allowed, matching nothing
    searches = [asyncio.create_task(store.query(worst)) for _ in range(2)]
    try:
        await until(lambda: len(inside) == 2, "both searches inside SQLite")
        stats = await asyncio.wait_for(store.stats(), DEADLINE)
        assert stats["records"] == 41
        assert await asyncio.wait_for(store.cursor("journal"), DEADLINE) == "s=1"
        assert not any(s.done() for s in searches), "the searches were still running"
    finally:
        release.set()
    assert [await s for s in searches] == [[], []]


async def test_a_search_past_its_time_is_interrupted_and_the_reader_goes_on(store: LogStore) -> None:
    now = time.time()
    await store.write([rec(now, f"line {i}", now) for i in range(5000)])
    store.query_timeout = 0.0
    with pytest.raises(QueryLimitError, match="took longer than 0 s; narrow it"):
        await store.query(LogQuery(grep="no such text", limit=0))
    store.query_timeout = 60.0
    assert len(await store.query(LogQuery(grep="line 4999"))) == 1


async def test_an_answer_past_its_size_is_refused(store: LogStore, monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time()
    await store.write([rec(now, BIG, now) for _ in range(3)])
    monkeypatch.setattr(store_module, "MAX_RESULT_BYTES", 2 * (len(BIG) + 1024))
    with pytest.raises(QueryLimitError, match="would take more than 0 MiB; narrow it"):
        await store.query(LogQuery(limit=0))
    assert len(await store.query(LogQuery(limit=2))) == 2


async def test_a_query_by_peer_finds_the_senders_lines_whatever_their_port_or_host(store: LogStore) -> None:
    now = time.time()
    await store.write([
        rec(now, "v4", now, host="sw1.example.net", peer="192.0.2.1:50514"),
        rec(now, "v4 other port", now, host="whatever", peer="192.0.2.1:514"),
        rec(now, "another sender", now, host="sw1.example.net", peer="192.0.2.11:514"),
        rec(now, "v6", now, peer="[2001:db8::1]:514"),
        rec(now, "v6 other", now, peer="[2001:db8::10]:514"),
        rec(now, "no peer", now, host="192.0.2.1"),
    ])

    async def messages(peer: str) -> list[object]:
        return sorted(r["message"] for r in await store.query(LogQuery(peer=peer)))

    assert await messages("192.0.2.1") == ["v4", "v4 other port"]
    assert await messages("2001:db8::1") == ["v6"]
