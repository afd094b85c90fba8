from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from mepd.model import LogRecord
from mepd.pipeline import Channel, Counters, Pipeline


def rec(i: int) -> LogRecord:
    return LogRecord(ts=float(i), received=float(i), message=f"m{i}", source="test")


async def test_offer_drops_and_counts_when_a_queue_is_full() -> None:
    ch: Channel[LogRecord] = Channel("logs", Counters())
    small = ch.subscribe("small", 2, durable=True)
    big = ch.subscribe("big", 10)
    results = [ch.offer(rec(i)) for i in range(4)]
    assert results == [True, True, False, False]
    assert ch.counters.snapshot() == {"dropped.queue_full.small": 2, "received": 4}
    assert (len(small), len(big)) == (2, 4)


async def test_put_waits_for_room_instead_of_dropping() -> None:
    ch: Channel[LogRecord] = Channel("logs", Counters())
    sub = ch.subscribe("s", 8)
    for i in range(2):
        await ch.put(rec(i))
    blocked = asyncio.create_task(ch.put(rec(2)))
    await asyncio.sleep(0)
    assert not blocked.done(), "a quarter full: waits, leaving the rest for offer()"
    assert ch.offer(rec(3))
    batch = await sub.get_batch(10, 0)
    assert [r.message for r in batch] == ["m0", "m1", "m3"]
    await asyncio.wait_for(blocked, 5)
    assert [r.message for r in await sub.get_batch(10, 0)] == ["m2"]
    assert ch.counters.get("received") == 4


async def test_join_waits_until_taken_items_are_done() -> None:
    p = Pipeline()
    sub = p.logs.subscribe("store", 100)
    for i in range(5):
        p.logs.offer(rec(i))
    batch = await sub.get_batch(3, 0)
    joined = asyncio.create_task(p.join())
    await asyncio.sleep(0)
    sub.done(len(batch))
    await asyncio.sleep(0)
    assert not joined.done()
    rest = await sub.get_batch(10, 0)
    sub.done(len(rest))
    await asyncio.wait_for(joined, 5)
    assert p.status().to_json()["queued"] == {"logs": {"store": 0}, "samples": {}}


async def test_get_batch_lingers_for_a_fuller_batch() -> None:
    ch: Channel[LogRecord] = Channel("logs", Counters())
    sub = ch.subscribe("s", 100)
    ch.offer(rec(0))
    getter = asyncio.create_task(sub.get_batch(3, 30))
    await asyncio.sleep(0)
    ch.offer(rec(1))
    ch.offer(rec(2))
    batch = await asyncio.wait_for(getter, 5)
    assert [r.message for r in batch] == ["m0", "m1", "m2"]


def test_status_nests_dotted_counters() -> None:
    p = Pipeline()
    p.log_counters.inc("dropped.queue_full.store", 3)
    p.log_counters.inc("received", 5)
    assert p.status().to_json()["logs"] == {"dropped": {"queue_full": {"store": 3}}, "received": 5}


def test_declared_counters_show_zero_from_the_start_and_keep_their_counts() -> None:
    c = Counters()
    c.inc("received", 3)
    c.declare("received", "dropped.write_failed")
    assert c.snapshot() == {"dropped.write_failed": 0, "received": 3}


@given(pushes=st.lists(st.integers(0, 50), max_size=12), takes=st.lists(st.integers(1, 60), min_size=1, max_size=20))
def test_batches_hand_out_what_was_pushed_in_order_whatever_the_sizes(pushes: list[int], takes: list[int]) -> None:
    """Pushed lists are queued whole and cut where a batch ends: nothing lost, repeated or reordered, and the
    caller's list stays its own (changed after the push, the queue does not change)."""
    asyncio.run(_push_then_take(pushes, takes))


async def _push_then_take(pushes: list[int], takes: list[int]) -> None:
    ch: Channel[int] = Channel("ints", Counters())
    sub = ch.subscribe("s", 10_000)
    n = 0
    for size in pushes:
        items = list(range(n, n + size))
        await ch.put_many(items)
        items.clear()
        n += size
    got: list[int] = []
    for take in takes:
        if not len(sub):
            break
        batch = await sub.get_batch(take, 0)
        assert len(batch) == min(take, n - len(got))
        got += batch
        assert len(sub) == sub.pending - len(got) == n - len(got)
    while len(sub):
        got += await sub.get_batch(7, 0)
    assert got == list(range(n))
    sub.done(n)
    assert sub.pending == 0
