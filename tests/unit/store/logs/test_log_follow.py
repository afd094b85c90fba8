"""LogStore.follow: the one live tail behind `mepctl logs --follow` and the dashboard's event stream."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from mepd.config import LogStorageConfig
from mepd.model import LogQuery, LogRecord
from mepd.store.logs.store import LogStore


def rec(message: str, host: str = "a") -> LogRecord:
    return LogRecord(ts=1.0, received=1.0, message=message, source="test", host=host)


async def test_follow_streams_matching_commits_keeps_alive_and_ends_on_stop(tmp_path: Path) -> None:
    store = LogStore(str(tmp_path / "logs.db"), LogStorageConfig())
    await store.open()
    try:
        await store.write([rec("before")])
        stop = asyncio.Event()
        # Its time bounds and limit select stored records: a live tail ignores them.
        q = LogQuery(host="a", since=1e12, limit=1)
        batches = store.follow(q, store.last_id, stop, idle=0.01)
        async with contextlib.aclosing(batches):
            assert await anext(batches) == [], "nothing committed: a keep-alive"
            await store.write([rec("one"), rec("other host", host="b"), rec("two")])
            got = await anext(batches)
            while not got:  # keep-alives may come before the commit is seen
                got = await anext(batches)
            assert [r["message"] for r in got] == ["one", "two"]
            stop.set()
            await store.wake_followers()
            async for batch in batches:
                assert batch == []
    finally:
        await store.close()
