"""Metrics over the fleet: an edge publishes every sample it stores, a central stores them in its own RRDs.

Edge (`fleet/metrics`, `[fleet] publish` holds "metrics"): a consumer of the
sample channel beside the RRD store (as `mepd.export.remote_write` is) that
puts every sample first into a queue on disk (`state_dir/fleet-metrics.db`,
SQLite, at most `metrics_queue_max` samples, beyond which the oldest are
dropped and counted), then publishes the queue oldest first, one message at a
time, each waiting for the stream's acknowledgement, on `mepd.metrics.<node>`
(stream MEPD_METRICS).  A message's range of queue ids is committed as pending
before it is sent and deleted with the acknowledgement: after a restart (even
kill -9) that range goes again under the same `Nats-Msg-Id`
(`<node>:metrics:<epoch>:<first>-<last>`, the epoch new with each new queue
file), which the stream's duplicate window drops.  A message never ends inside
one file's row (the names of an interface at one time, which a poll puts
together), so a central writes whole rows as the edge did.

A message is newline-delimited JSON, one sample a line (`node`, `key`, `ts`,
`value`, null for unknown); its `Mepd-Rrd-Layouts` header gives, for the key
prefixes it uses, the RRD layout the edge creates those files with (step,
archives, the names one file holds), so a central makes the same files
whatever its own config says.

Central (`fleet/central-metrics`): its durable consumer (the `[fleet.central]`
name, on MEPD_METRICS) is given one message at a time (`max_ack_pending` 1),
so each node's samples arrive in the order they were taken, also when one is
delivered again after a crash; it writes them into this mepd's RRD store under
their own keys (an SNMP target's are `snmp.<target>.…`, a host's
`host.<host>.…`: the dashboard and `mepctl metrics` show them like its own),
then acknowledges.  rrdtool takes no update at or before a file's last one: a
message delivered or published again is skipped there and counted as
`duplicates`, never stored twice.  A central's own samples (when it also
publishes) are in its RRDs already and are only acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from mepd.config import FleetConfig
from mepd.diskqueue import DiskQueue
from mepd.fleet import streams, wire
from mepd.fleet.connection import Link
from mepd.fleet.consumer import messages
from mepd.fleet.publisher import ensure_stream, new_epoch
from mepd.model import Sample, rfc3339
from mepd.pipeline import Counters, Subscription
from mepd.store.rrd.files import RrdError, RrdLayout
from mepd.store.rrd.store import Layouts, RrdStore
from mepd.workers import Thread

log = logging.getLogger(__name__)


DB: Final = "fleet-metrics.db"
LAYOUTS: Final = "Mepd-Rrd-Layouts"
SAMPLES_PER_MESSAGE: Final = 2000  # about 150 KB of JSON, well under nats-server's 1 MB max_payload
TAKE_BATCH: Final = 10_000
LINGER: Final = 0.5  # the last row in the queue waits this long for the rest of its names before it is sent
ACK_WAIT: Final = 10.0  # storing a message is one rrdtool update per file: well under this
RETRY_DELAY: Final = 1.0

Row = tuple[int, str, float, float | None]  # queue id, key, time, value (None: unknown)


# -- wire ----------------------------------------------------------------------------------------------------


def message_id(node: str, epoch: str, first: int, last: int) -> str:
    return f"{node}:metrics:{epoch}:{first}-{last}"


def encode(node: str, samples: Sequence[tuple[str, float, float | None]]) -> bytes:
    return "".join(json.dumps({"node": node, "key": key, "ts": ts, "value": value}, separators=(",", ":")) + "\n"
                   for key, ts, value in samples).encode()


def decode(payload: bytes) -> tuple[list[Sample], int]:
    """The samples of one message, and how many lines were not samples (counted, never stored)."""
    out: list[Sample] = []
    bad = 0
    for line in payload.splitlines():
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            value = data["value"]
            out.append(Sample(str(data["key"]), float(data["ts"]), None if value is None else float(value)))
        except (ValueError, KeyError, TypeError) as e:
            bad += 1
            log.debug("fleet: a line that is not a sample: %s", e)
    return out, bad


def encode_layouts(layouts: Mapping[str, RrdLayout]) -> str:
    return json.dumps({prefix: {"step": lay.step, "rras": [list(r) for r in lay.rras], "group": list(lay.group)}
                       for prefix, lay in layouts.items()}, separators=(",", ":"))


def decode_layouts(text: str) -> dict[str, RrdLayout]:
    """The layouts of a message's header; ValueError when it is not one."""
    try:
        return {str(prefix): RrdLayout(int(d["step"]), tuple((int(p), int(n)) for p, n in d["rras"]),
                                       tuple(str(g) for g in d["group"]))
                for prefix, d in json.loads(text).items()}
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"not RRD layouts: {e}") from None


def layout_of(layouts: Callable[[str], RrdLayout], key: str) -> tuple[str, RrdLayout]:
    """The prefix a key's layout is configured for (the key itself for the default layout) and that layout,
    without Holt-Winters archives: those are the anomaly rules of whoever stores the file."""
    prefixes = layouts.prefixes if isinstance(layouts, Layouts) else []
    prefix = next((p for p, _ in prefixes if key.startswith(p)), key)
    return prefix, replace(layouts(key), anomaly=None)


def whole_rows(rows: Sequence[Row]) -> int:
    """How many of `rows` make a message that does not end inside a row: the last run of samples of one
    file and time (`snmp.T.eth0.*` at one poll) is left for the next message, unless it is all there is."""
    if not rows:
        return 0
    _, key, ts, _ = rows[-1]
    parent = key.rpartition(".")[0]
    n = len(rows)
    while n > 0 and rows[n - 1][2] == ts and rows[n - 1][1].rpartition(".")[0] == parent:
        n -= 1
    return n or len(rows)


# -- edge ----------------------------------------------------------------------------------------------------


class SampleQueue(DiskQueue):
    """Samples waiting to be published, oldest first, at most `limit`, with the publishing position (the
    queue's epoch and the range sent and not yet acknowledged); unknown values are kept (NULL)."""

    def __init__(self, path: str, limit: int) -> None:
        super().__init__(path, limit, "key TEXT NOT NULL, ts REAL NOT NULL, value REAL")

    def created(self, db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE IF NOT EXISTS position (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT OR IGNORE INTO position VALUES ('epoch', ?)", (new_epoch(),))

    def position(self) -> tuple[str, tuple[int, int] | None]:
        """The queue's epoch and the pending range (sent, maybe acknowledged, not deleted yet)."""
        values = dict(self.db.execute("SELECT name, value FROM position").fetchall())
        pending = values.get("pending")
        if not pending:
            return values["epoch"], None
        first, last = pending.split("-")
        return values["epoch"], (int(first), int(last))

    def set_pending(self, first: int, last: int) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO position VALUES ('pending', ?)", (f"{first}-{last}",))

    def published(self, last: int) -> None:
        """The stream acknowledged the pending range: delete it, in one transaction with the position."""
        with self.db:
            self.db.execute("DELETE FROM queue WHERE id <= ?", (last,))
            self.db.execute("DELETE FROM position WHERE name = 'pending'")


class MetricsPublisher:
    """`fleet/metrics` on an edge: RUNNING at once; collecting never waits for the cluster."""

    def __init__(self, cfg: FleetConfig, state_dir: str, subscription: Subscription[Sample],
                 layouts: Callable[[], Callable[[str], RrdLayout]]) -> None:
        self.name = "fleet/metrics"
        self.cfg = cfg
        self.node = cfg.node_name
        self.subscription = subscription
        self.layouts = layouts  # the RRD store's, as they are now
        self.queue = SampleQueue(os.path.join(state_dir, DB), cfg.metrics_queue_max)
        self.counters = Counters()
        self.counters.declare("queued", "published", "messages", "duplicates", "dropped.queue_full")
        self.link = Link(cfg, f"mepd {self.node} metrics")
        self.subject = streams.METRICS.subject(self.node)
        self.oldest: float | None = None  # time of the oldest sample not yet published
        self._wake = asyncio.Event()
        self._thread = Thread(self.name)
        self._call = self._thread.run

    async def run(self, started: Callable[[], None]) -> None:
        try:
            await self._count()
            started()
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._take())
                tasks.create_task(self._send())
        finally:
            await asyncio.shield(self._call(self.queue.close))
            self._thread.stop(wait=False)
            await self.link.close()

    async def _count(self) -> None:
        self.counters.set("queued", await self._call(len, self.queue))
        self.oldest = await self._call(self.queue.oldest)

    async def _take(self) -> None:
        """Samples from the pipeline to the disk queue; done once they are on disk."""
        while True:
            batch = await self.subscription.get_batch(TAKE_BATCH, 0.0)
            try:
                dropped = await self._call(self.queue.append, [(s.key, s.ts, s.value) for s in batch])
                await self._count()
            finally:
                self.subscription.done(len(batch))
            if dropped:
                self.counters.inc("dropped.queue_full", dropped)
                log.warning("%s: queue full (metrics_queue_max %d), %d oldest samples dropped",
                            self.name, self.cfg.metrics_queue_max, dropped)
            self._wake.set()

    async def _send(self) -> None:
        js = await self.link.open()
        await ensure_stream(js, streams.METRICS, self.cfg, self.link)
        epoch, pending = await self._call(self.queue.position)
        while True:
            if pending is None:
                rows = await self._next()
                first, last = rows[0][0], rows[-1][0]
                await self._call(self.queue.set_pending, first, last)
            else:  # sent before a restart, perhaps acknowledged: again, under the same id
                first, last = pending
                pending = None
                rows = await self._call(self.queue.head, last - first + 1, last)
            if rows:
                await self._publish(js, message_id(self.node, epoch, first, last), rows)
            await self._call(self.queue.published, last)
            await self._count()

    async def _next(self) -> list[Row]:
        """The next message's rows (at least one); waits for samples, and a little for the rest of a row the
        queue ends in."""
        while True:
            self._wake.clear()
            rows = await self._call(self.queue.head, SAMPLES_PER_MESSAGE)
            n = whole_rows(rows)
            if n < len(rows) or len(rows) == SAMPLES_PER_MESSAGE:
                return rows[:n]
            if rows:  # the queue ends in this row: the rest of its names may be on their way
                try:
                    async with asyncio.timeout(LINGER):
                        await self._wake.wait()
                except TimeoutError:
                    return rows
                continue
            await self._wake.wait()

    async def _publish(self, js: JetStreamContext, msg_id: str, rows: list[Row]) -> None:
        layouts = self.layouts()
        used = dict(layout_of(layouts, key) for key in {key for _, key, _, _ in rows})
        payload = encode(self.node, [(key, ts, value) for _, key, ts, value in rows])
        while True:
            try:
                ack = await js.publish(self.subject, payload, headers={wire.MSG_ID: msg_id,
                                                                       LAYOUTS: encode_layouts(used)})
            except (nats.errors.Error, TimeoutError) as e:
                self.counters.inc("publish_retries")
                log.debug("fleet: publishing %s failed, retrying: %s", msg_id, e)
                await asyncio.sleep(RETRY_DELAY)
                continue
            self.counters.inc("duplicates" if ack.duplicate else "messages")
            break
        self.counters.inc("published", len(rows))

    def details(self) -> dict[str, object]:
        return {**self.link.status(), "since": rfc3339(self.link.since), "node": self.node,
                "backlog": self.counters.get("queued"),
                "backlog_oldest_age": None if self.oldest is None else max(0.0, time.time() - self.oldest)}


# -- central -------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class NodeSamples:
    """What this central stored from one node since it started, and the SNMP targets it heard of there."""

    samples: int = 0
    messages: int = 0
    last_heard: float = 0.0
    targets: set[str] = field(default_factory=set)


class MetricsConsumer:
    """`fleet/central-metrics`: every node's samples into this central's RRD store, in order, once."""

    def __init__(self, cfg: FleetConfig, store: RrdStore) -> None:
        self.name = "fleet/central-metrics"
        self.cfg = cfg
        self.store = store
        self.counters = Counters()
        self.counters.declare("received", "stored", "duplicates", "messages")
        self.link = Link(cfg, f"mepd {cfg.node_name} central {cfg.central.consumer} metrics")
        self.nodes: dict[str, NodeSamples] = {}
        self._learned: dict[str, RrdLayout] = {}
        self._merged: object = None  # the layouts this consumer gave the store last

    async def run(self, started: Callable[[], None]) -> None:
        started()
        try:
            js = await self.link.open()
            await ensure_stream(js, streams.METRICS, self.cfg, self.link)
            config = ConsumerConfig(durable_name=self.cfg.central.consumer, ack_policy=AckPolicy.EXPLICIT,
                                    deliver_policy=DeliverPolicy.ALL, ack_wait=ACK_WAIT, max_deliver=-1,
                                    max_ack_pending=1)
            sub = await js.pull_subscribe(streams.METRICS.subjects[0], durable=self.cfg.central.consumer,
                                          stream=streams.METRICS.name, config=config)
            async for msg in messages(sub, 1, "fetching metrics"):
                await self._store(msg)
        finally:
            await self.link.close()

    async def _store(self, msg: Msg) -> None:
        node = msg.subject.rsplit(".", 1)[-1]
        samples, bad = decode(msg.data)
        if bad:
            self.counters.inc("invalid_lines", bad)
        if node == self.cfg.node_name:  # this mepd's own samples, in its RRDs already
            samples = []
        self._learn(msg, node)
        stored = duplicates = 0
        while samples:
            try:
                result = await self.store.write(samples, flush=True)
            except RrdError as e:
                self.counters.inc("write_errors")
                log.warning("fleet: storing %d samples from %s failed, retrying: %s", len(samples), node, e)
                await asyncio.sleep(RETRY_DELAY)
                continue
            stored, duplicates = result.samples, result.skipped_old
            if result.errors:
                self.counters.inc("errors", len(result.errors))
                log.warning("fleet: %d updates of samples from %s failed, first: %s", len(result.errors), node,
                            result.errors[0])
            if result.invalid_keys:
                self.counters.inc("invalid_keys", result.invalid_keys)
            break
        await msg.ack()
        seen = self.nodes.setdefault(node, NodeSamples())
        seen.samples += stored
        seen.messages += 1
        seen.last_heard = time.time()
        seen.targets.update(s.key.split(".")[1] for s in samples if s.key.startswith("snmp."))
        self.counters.inc("messages")
        self.counters.inc("received", len(samples))
        self.counters.inc("stored", stored)
        self.counters.inc("duplicates", duplicates)
        if msg.metadata.num_delivered > 1:
            self.counters.inc("redelivered")

    def _learn(self, msg: Msg, node: str) -> None:
        """Give the store the layouts of the message's keys (kept over what a reload of the config sets)."""
        text = (msg.headers or {}).get(LAYOUTS)
        if not text:
            return
        try:
            layouts = decode_layouts(text)
        except ValueError as e:
            self.counters.inc("invalid_layouts")
            log.warning("fleet: a message from %s with unreadable layouts (its keys get this mepd's): %s", node, e)
            return
        base = self.store.layouts
        if base is self._merged and all(self._learned.get(p) == lay for p, lay in layouts.items()):
            return
        self._learned.update(layouts)
        if isinstance(base, Layouts):
            merged = Layouts(base.default, {**dict(base.prefixes), **self._learned}, base.anomalies)
            self.store.layouts = self._merged = merged

    def details(self) -> dict[str, Any]:
        return {**self.link.status(), "since": rfc3339(self.link.since), "consumer": self.cfg.central.consumer,
                "nodes": {name: {"samples": n.samples, "messages": n.messages, "last_heard": rfc3339(n.last_heard),
                                 "targets": sorted(n.targets)} for name, n in sorted(self.nodes.items())}}


def create_publisher(cfg: FleetConfig, state_dir: str, subscription: Subscription[Sample],
                     layouts: Callable[[], Callable[[str], RrdLayout]]) -> MetricsPublisher:
    return MetricsPublisher(cfg, state_dir, subscription, layouts)


def create_consumer(cfg: FleetConfig, store: RrdStore) -> MetricsConsumer:
    return MetricsConsumer(cfg, store)
