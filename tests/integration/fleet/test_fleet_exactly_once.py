"""Both halves of exactly once, made deterministic: a crash between publish and cursor, between commit and ack."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from mepd.config import FleetCentralConfig, FleetConfig, LogStorageConfig
from mepd.fleet import wire
from mepd.fleet.consumer import Consumer
from mepd.fleet.publisher import CURSOR, Position, Publisher
from mepd.model import LogQuery, LogRecord
from mepd.pipeline import Subscription
from mepd.store.logs.store import LogStore
from mepd.store.logs.worker import FLEET_BATCH_PREFIX
from tests.helpers import until
from tests.integration.fleet.conftest import NatsServer


def records(first: int, last: int) -> list[LogRecord]:
    return [LogRecord(ts=1.7e9 + i, received=1.7e9 + i, message=f"seq {i}", source="syslog/udp", host="web1")
            for i in range(first, last)]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[LogStore]:
    s = LogStore(str(tmp_path / "logs.db"), LogStorageConfig())
    await s.open()
    yield s
    await s.close()


async def running(component: Publisher | Consumer) -> asyncio.Task[None]:
    return asyncio.create_task(component.run(lambda: None))


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_edge_restarted_after_publishing_before_its_cursor_moved_sends_the_same_message(
        nats_server: NatsServer, store: LogStore) -> None:
    cfg = FleetConfig(servers=(nats_server.url,), node="web1", batch_size=50)
    await store.write(records(0, 50))
    first = Publisher(cfg, store)
    task = await running(first)
    await until(lambda: first.counters.get("published") == 50, "first message published")
    await stop(task)
    assert first.position is not None
    # As if killed after the stream stored the message but before the cursor said so; more records came in.
    await store.write(records(50, 80), cursors={CURSOR: Position(first.position.epoch, 0, ((1, 50),)).text()})
    second = Publisher(dataclasses.replace(cfg, batch_size=100), store)  # another batching than the lost message's
    task = await running(second)
    await until(lambda: second.counters.get("published") == 80, "the rest published")
    await stop(task)
    assert (second.counters.get("duplicates"), second.counters.get("messages")) == (1, 1)
    nc = await nats.connect(nats_server.url)
    info = await nc.jetstream().stream_info("MEPD_LOGS")
    await nc.close()
    assert info.state.messages == 2


async def test_edge_restarted_with_several_messages_in_flight_sends_each_again_as_it_was(
        nats_server: NatsServer, store: LogStore) -> None:
    cfg = FleetConfig(servers=(nats_server.url,), node="web1", batch_size=10)
    await store.write(records(0, 30))
    first = Publisher(cfg, store)
    task = await running(first)
    await until(lambda: first.counters.get("published") == 30, "three messages published")
    await stop(task)
    assert first.position is not None
    # As if killed with the three messages in flight, all of them in the stream, none acknowledged to it.
    await store.write(records(30, 35), cursors={CURSOR: Position(first.position.epoch, 0,
                                                                 ((1, 10), (11, 20), (21, 30))).text()})
    second = Publisher(dataclasses.replace(cfg, batch_size=100), store)
    task = await running(second)
    await until(lambda: second.counters.get("published") == 35, "the rest published")
    await stop(task)
    assert (second.counters.get("duplicates"), second.counters.get("messages")) == (3, 1)
    nc = await nats.connect(nats_server.url)
    info = await nc.jetstream().stream_info("MEPD_LOGS")
    await nc.close()
    assert info.state.messages == 4
    assert await store.cursor(CURSOR) == f"{first.position.epoch}:35"


async def test_central_restarted_after_committing_before_acknowledging_stores_the_message_once(
        nats_server: NatsServer, store: LogStore) -> None:
    cfg = FleetConfig(servers=(nats_server.url,), node="central", publish=(),
                      central=FleetCentralConfig(enabled=True, consumer="c1"))
    edge_store = LogStore(str(Path(store.path).with_name("edge.db")), LogStorageConfig())
    await edge_store.open()
    await edge_store.write(records(0, 20))
    edge = Publisher(FleetConfig(servers=(nats_server.url,), node="web1"), edge_store)
    task = await running(edge)
    await until(lambda: edge.counters.get("published") == 20, "edge published")
    await stop(task)
    await edge_store.close()
    assert edge.position is not None
    # As if the central committed the message and was killed before its ack: the stream delivers it again.
    msg_id = wire.message_id("web1", edge.position.epoch, 1, 20)
    await store.write([LogRecord(ts=r.ts, received=r.received, message=r.message, source=r.source, host=r.host,
                                 node="web1") for r in records(0, 20)], FLEET_BATCH_PREFIX + msg_id)
    alerts: Subscription[LogRecord] = Subscription("alerts", 1000)
    central = Consumer(cfg, store, alerts)
    task = await running(central)
    await until(lambda: central.counters.get("messages") == 1, "the message delivered and acknowledged")
    await until(lambda: central.pending == 0 and central.ack_pending == 0, "nothing left to deliver")
    assert len(alerts) == 0  # the rules saw those records when they were committed, not again
    # A new message is stored and offered to the rules once.
    edge_store = LogStore(edge_store.path, LogStorageConfig())
    await edge_store.open()
    await edge_store.write(records(20, 25))
    task_edge = await running(Publisher(edge.cfg, edge_store))
    await until(lambda: central.counters.get("messages") == 2, "the new message stored")
    await stop(task_edge)
    await edge_store.close()
    await stop(task)
    assert [r.message for r in await alerts.get_batch(100, 0)] == [f"seq {i}" for i in range(20, 25)]
    stored = await store.query(LogQuery(node="web1", limit=0))
    assert sorted(r["message"] for r in stored) == sorted(f"seq {i}" for i in range(25))
