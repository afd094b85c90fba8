"""The central's fleet component: reads every node's records into this mepd's own log store, exactly once.

A durable pull consumer (`[fleet.central] consumer`, one per central, so each
central keeps a full copy) fetches messages; each message's records are
committed in one transaction together with the message's id as the store's
batch id (`mepd.store.logs.worker.write`), then the message is acknowledged.
Up to WRITES messages are being stored at a time, so the next one is decoded
while the log writer commits this one; nothing here depends on the messages'
order (a node's retried message may come after its later ones).
A message delivered again (the central died between its commit and its ack,
or the ack was lost) or published again by its node after the stream's
duplicate window finds its id already committed and is only acknowledged.
The ids are kept as long as the records (`worker.FLEET_BATCH_PREFIX`).

Fleet-wide rules: the records of a message this central committed just now
(not those of one it finds committed already) are then offered to its alert
engine's log queue, so its log rules (`distinct = "host"` across nodes) see
every node's records once.  The stores are never fed from the pipeline here:
storing stays exactly once whatever the rules' queue does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Final

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from mepd.config import FleetConfig
from mepd.fleet import streams, wire
from mepd.fleet.connection import Link
from mepd.fleet.publisher import ensure_stream
from mepd.model import LogRecord, rfc3339
from mepd.pipeline import Counters, Subscription
from mepd.store.logs.store import LogStore
from mepd.store.logs.worker import FLEET_BATCH_PREFIX

log = logging.getLogger(__name__)

ACK_WAIT: Final = 30.0
ALERTS_WAIT: Final = 5.0  # for room in the alert engine's queue, before the records that do not fit are dropped
FETCH_WAIT: Final = 1.0
INFO_INTERVAL: Final = 2.0
WRITES: Final = 4  # messages being decoded, stored and acknowledged at once


@dataclass(slots=True)
class NodeSeen:
    """What this central received from one node since it started."""

    records: int = 0
    messages: int = 0
    last_heard: float = 0.0


def batch_id(msg: Msg) -> str:
    """The message's `Nats-Msg-Id`, or, from a publisher that sets none, its place in the stream."""
    msg_id = (msg.headers or {}).get(wire.MSG_ID)
    if not msg_id:
        meta = msg.metadata
        msg_id = f"{meta.stream}:{meta.sequence.stream}"
    return FLEET_BATCH_PREFIX + msg_id


async def messages(sub: JetStreamContext.PullSubscription, batch_size: int, what: str) -> AsyncIterator[Msg]:
    """A pull consumer's messages, for ever: a fetch that times out or fails (logged as `what`) is tried again."""
    while True:
        try:
            msgs = await sub.fetch(batch_size, timeout=FETCH_WAIT)
        except (nats.errors.TimeoutError, TimeoutError):
            continue
        except nats.errors.Error as e:
            log.debug("fleet: %s failed: %s", what, e)
            await asyncio.sleep(FETCH_WAIT)
            continue
        for msg in msgs:
            yield msg


class Consumer:
    def __init__(self, cfg: FleetConfig, store: LogStore, alerts: Subscription[LogRecord] | None = None) -> None:
        self.name = "fleet/central"
        self.cfg = cfg
        self.store = store
        self.alerts = alerts  # the alert engine's log queue
        self.counters = Counters()
        self.counters.declare("parse_errors", "alerts_dropped", "write_errors")
        self.link = Link(cfg, f"mepd {cfg.node_name} central {cfg.central.consumer}")
        self.nodes: dict[str, NodeSeen] = {}
        self.pending: int | None = None  # messages in the stream this consumer has not been delivered yet
        self.ack_pending: int | None = None
        self.heartbeats: dict[str, dict[str, object]] = {}  # node -> its latest heartbeat (`publisher`)
        self.stream: dict[str, object] = {}

    async def run(self, started: Callable[[], None]) -> None:
        started()
        try:
            js = await self.link.open()
            sub = await self._subscribe(js)
            info = asyncio.create_task(self._watch(js, sub))
            storing: deque[asyncio.Task[None]] = deque()
            try:
                async for msg in messages(sub, self.cfg.central.batch_size, "fetch"):
                    storing.append(asyncio.create_task(self._store(msg)))
                    while storing and (len(storing) >= WRITES or storing[0].done()):
                        await storing.popleft()
            finally:
                info.cancel()
                for task in storing:
                    task.cancel()
        finally:
            await self.link.close()

    async def _subscribe(self, js: JetStreamContext) -> JetStreamContext.PullSubscription:
        config = ConsumerConfig(durable_name=self.cfg.central.consumer, ack_policy=AckPolicy.EXPLICIT,
                                deliver_policy=DeliverPolicy.ALL, ack_wait=ACK_WAIT, max_deliver=-1)
        while True:
            try:
                await streams.ensure(js, streams.LOGS, self.cfg)
                return await js.pull_subscribe(streams.LOGS.subjects[0], durable=self.cfg.central.consumer,
                                               stream=streams.LOGS.name, config=config)
            except streams.StreamError as e:
                self.link.mismatch(str(e), e.state)
                await asyncio.sleep(e.retry)

    async def _store(self, msg: Msg) -> None:
        """Commit the message's records under its id (again and again until it commits), then acknowledge."""
        node = msg.subject.rsplit(".", 1)[-1]
        now = time.time()
        records, unread = wire.decode(msg.data, node, now)
        delay = 0.1
        while True:
            try:
                new = (await self.store.write(records, batch_id(msg))).new
                break
            except sqlite3.Error as e:
                self.counters.inc("write_errors")
                log.warning("fleet: storing a message of %d records from %s failed, retrying in %.1fs: %s",
                            len(records), node, delay, e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        await msg.ack()
        if new:
            await self._offer_alerts(records)
        seen = self.nodes.setdefault(node, NodeSeen())
        seen.records += len(records)
        seen.messages += 1
        seen.last_heard = now
        self.counters.inc("messages")
        self.counters.inc("received", len(records))
        if unread:  # stored raw, flagged, and counted here
            self.counters.inc("parse_errors", unread)
        if msg.metadata.num_delivered > 1:
            self.counters.inc("redelivered")

    async def _offer_alerts(self, records: list[LogRecord]) -> None:
        """Give the rules what was just stored, waiting a little for room: a stalled engine must not stall storing."""
        if self.alerts is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ALERTS_WAIT):
                await self.alerts.wait_writable()
        room = self.alerts.room()
        self.alerts.push_many(records[:room])
        if room < len(records):
            self.counters.inc("alerts_dropped", len(records) - room)

    async def _watch(self, js: JetStreamContext, sub: JetStreamContext.PullSubscription) -> None:
        """The consumer's lag, the stream's size and leader, and each node's latest heartbeat."""
        await ensure_stream(js, streams.HEARTBEATS, self.cfg, self.link)
        try:
            await js.subscribe(streams.HEARTBEATS.subjects[0], cb=self._on_heartbeat, ordered_consumer=True,
                               deliver_policy=DeliverPolicy.LAST_PER_SUBJECT)
        except (nats.errors.Error, TimeoutError) as e:
            log.warning("fleet: not reading the nodes' heartbeats: %s", e)
        while True:
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                info = await sub.consumer_info()
                self.pending, self.ack_pending = info.num_pending, info.num_ack_pending
                stream = await js.stream_info(streams.LOGS.name)
                self.stream = {"name": streams.LOGS.name, "messages": stream.state.messages,
                               "bytes": stream.state.bytes, "replicas": stream.config.num_replicas or 1,
                               "leader": stream.cluster.leader if stream.cluster else None}
            await asyncio.sleep(INFO_INTERVAL)

    async def _on_heartbeat(self, msg: Msg) -> None:
        with contextlib.suppress(ValueError):
            self.heartbeats[msg.subject.rsplit(".", 1)[-1]] = json.loads(msg.data)

    def details(self) -> dict[str, object]:
        return {
            **self.link.status(),
            "since": rfc3339(self.link.since),
            "consumer": self.cfg.central.consumer,
            "lag": self.pending,
            "ack_pending": self.ack_pending,
            "nodes": {name: {"records": n.records, "messages": n.messages, "last_heard": rfc3339(n.last_heard)}
                      for name, n in sorted(self.nodes.items())},
            "heartbeats": dict(sorted(self.heartbeats.items())),
            "stream": self.stream,
        }


def create(cfg: FleetConfig, store: LogStore, alerts: Subscription[LogRecord] | None) -> Consumer:
    return Consumer(cfg, store, alerts)
