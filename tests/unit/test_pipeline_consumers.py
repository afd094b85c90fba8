"""Each consumer's share of a channel: what it accepts, what it drops, and which drops are log loss."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mepd import config
from mepd.model import LogRecord
from mepd.pipeline import Channel, Counters, from_sources
from mepd.sources.syslog import server as syslog_server
from tests.helpers import free_port, until


def rec(i: int, source: str = "syslog/udp") -> LogRecord:
    return LogRecord(ts=float(i), received=float(i), message=f"m{i}", source=source)


def test_a_consumer_receives_only_what_it_accepts() -> None:
    ch: Channel[LogRecord] = Channel("logs", Counters())
    store = ch.subscribe("store", 100, durable=True)
    web = ch.subscribe("web", 100, accept=from_sources(["tail:web"]))
    assert ch.offer_many([rec(0), rec(1, "tail:web"), rec(2, "tail:plain"), rec(3, "tail:web")]) == 0
    assert len(store) == 4
    assert len(web) == 2
    assert ch.counters.snapshot() == {"received": 4}


async def test_put_does_not_wait_for_a_full_queue_that_wants_none_of_the_items() -> None:
    """A TCP sender is not slowed down by an analyser that does not even want its records."""
    ch: Channel[LogRecord] = Channel("logs", Counters())
    web = ch.subscribe("web", 4, accept=from_sources(["tail:web"]))
    ch.subscribe("store", 100, durable=True)
    await ch.put_many([rec(i, "tail:web") for i in range(4)])
    await asyncio.wait_for(ch.put_many([rec(9)]), 5)
    waiting = asyncio.create_task(ch.put_many([rec(10, "tail:web")]))
    await asyncio.sleep(0)
    assert not waiting.done(), "records the full consumer wants still wait for its room"
    await web.get_batch(4, 0)
    await asyncio.wait_for(waiting, 5)


@asynccontextmanager
async def udp_listener(ch: Channel[LogRecord]) -> AsyncIterator[tuple[syslog_server.DatagramListener, int]]:
    port = free_port()
    cfg = config.parse({"syslog": {"listen": [{"proto": "udp", "address": f"127.0.0.1:{port}"}]}}, "/mepd.toml")
    handover = syslog_server.Handover()
    listener = syslog_server.create(cfg.syslog.listen[0], ch, handover=handover)
    assert isinstance(listener, syslog_server.DatagramListener)
    ready = asyncio.Event()
    task = asyncio.create_task(listener.run(ready.set))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        yield listener, port
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        handover.close_unclaimed()  # a cancelled listener parks its socket for a successor: none comes


def send(port: int, n: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(n):
            s.sendto(f"<14>1 - h app - - - m{i}".encode(), ("127.0.0.1", port))


async def test_a_lagging_analyser_is_its_own_drop_not_log_loss() -> None:
    ch: Channel[LogRecord] = Channel("logs", Counters())
    store = ch.subscribe("store/logs", 100, durable=True)
    web = ch.subscribe("analysis/weblog", 2)
    async with udp_listener(ch) as (listener, port):
        send(port, 10)
        await until(lambda: len(store) == 10, "the store to get every record")
    assert len(web) == 2
    assert ch.counters.snapshot() == {"dropped.queue_full.analysis/weblog": 8, "received": 10}
    assert listener.counters.get("dropped.queue_full") == 0


async def test_what_the_log_store_could_not_take_is_counted_as_lost_by_the_listener() -> None:
    ch: Channel[LogRecord] = Channel("logs", Counters())
    store = ch.subscribe("store/logs", 3, durable=True)
    ch.subscribe("analysis/weblog", 100)
    async with udp_listener(ch) as (listener, port):
        send(port, 10)
        await until(lambda: ch.counters.get("received") == 10, "the listener to read every datagram")
    assert len(store) == 3
    assert ch.counters.get("dropped.queue_full.store/logs") == 7
    assert listener.counters.get("dropped.queue_full") == 7


def test_a_consumer_of_no_source_takes_nothing_and_of_one_takes_only_its_own() -> None:
    """The web-log analyser with no web tail configured looks at no record; with one, it gets that tail's."""
    none = from_sources([])
    assert none([rec(0), rec(1, "tail:web")]) == []
    web = from_sources(["tail:web"])
    records = [rec(0), rec(1, "tail:web"), rec(2, "tail:web2"), rec(3, "tail:web")]
    assert web(records) == [records[1], records[3]]
