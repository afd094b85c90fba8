"""The edge's fleet component: publishes what the local log store committed, exactly once.

The local store is the buffer.  Records are read back from it in id order after
the "published up to" cursor and sent as messages (`mepd.fleet.wire`), up to
WINDOW of them awaiting the stream's acknowledgement at a time.  The cursor
lives in the store's `cursors` table as
`<epoch>:<published>[:<first>-<last>,<first>-<last>...]`: before messages are
sent their ranges are committed as pending (a window's worth in one write),
so a restart (even after kill -9) sends each pending range again as the same
message with the same `Nats-Msg-Id`, which the stream's duplicate window drops
and a central recognises after it; then it goes on after the last range.
`published` moves only over the acknowledged messages in id order.  A message
whose acknowledgement is lost is sent again the same way, so it may land in
the stream after later ones: a central does not depend on the order.  While
the cluster cannot be reached nothing is acknowledged and the backlog
(records, age of the oldest) is shown in `mepctl status`.

Every HEARTBEAT seconds the node also says how it stands (backlog, age of the
oldest, records published) on `mepd.heartbeat.<node>`, a stream that keeps
each node's latest only: `mepctl fleet status` on a central shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import nats.errors
from nats.js import JetStreamContext

from mepd.config import FleetConfig
from mepd.fleet import streams, wire
from mepd.fleet.connection import Link
from mepd.model import rfc3339
from mepd.pipeline import Counters
from mepd.store.logs.store import LogStore

log = logging.getLogger(__name__)

CURSOR: Final = "fleet/published"
IDLE_WAIT: Final = 1.0
BACKLOG_INTERVAL: Final = 2.0
RETRY_DELAY: Final = 1.0
HEARTBEAT: Final = 10.0
WINDOW: Final = 8  # messages sent and not yet acknowledged, at most; refilled when half are
HEADROOM: Final = 4096  # of the server's max_payload, for the headers


@dataclass(frozen=True, slots=True)
class Position:
    """Where publishing stands: every record up to `published` is in the stream; the `pending` messages
    (their id ranges, in id order) may be."""

    epoch: str
    published: int
    pending: tuple[tuple[int, int], ...] = ()

    @property
    def upto(self) -> int:
        """The last id sent or about to be."""
        return self.pending[-1][1] if self.pending else self.published

    def text(self) -> str:
        tail = ":" + ",".join(f"{first}-{last}" for first, last in self.pending) if self.pending else ""
        return f"{self.epoch}:{self.published}{tail}"

    @classmethod
    def parse(cls, text: str) -> Position:
        epoch, published, *pending = text.split(":")
        ranges = [r.split("-") for r in pending[0].split(",")] if pending else []
        return cls(epoch, int(published), tuple((int(first), int(last)) for first, last in ranges))


def new_epoch() -> str:
    return uuid.uuid4().hex[:12]


class Publisher:
    """`fleet/publish`: RUNNING as soon as it starts, since collecting never waits for the cluster."""

    def __init__(self, cfg: FleetConfig, store: LogStore) -> None:
        self.name = "fleet/publish"
        self.cfg = cfg
        self.node = cfg.node_name
        self.store = store
        self.counters = Counters()
        self.link = Link(cfg, f"mepd {self.node} publisher")
        self.subject = streams.LOGS.subject(self.node)
        self.position: Position | None = None
        self._saved: str | None = None
        self._read_upto = 0  # the store's last id when the publisher last looked for records to send
        self.backlog = 0
        self.oldest: float | None = None  # `received` of the oldest record not yet published

    async def run(self, started: Callable[[], None]) -> None:
        started()
        watch = asyncio.create_task(self._watch_backlog())
        try:
            self.position = await self._load()
            js = await self.link.open()
            await ensure_stream(js, streams.LOGS, self.cfg, self.link)
            await ensure_stream(js, streams.HEARTBEATS, self.cfg, self.link)
            beat = asyncio.create_task(self._heartbeat(js))
            try:
                await self._publish_all(js)
            finally:
                beat.cancel()
        finally:
            watch.cancel()
            await self.link.close()

    async def _load(self) -> Position:
        text = await self.store.cursor(CURSOR)
        if text is None:
            return Position(new_epoch(), 0)
        return self._check_ids(Position.parse(text))

    def _check_ids(self, pos: Position) -> Position:
        """The store's ids start again from 1 when it was emptied or replaced: so does publishing, under a new epoch."""
        if pos.published > self.store.last_id:
            log.warning("fleet: the log store's last id %d is below the published cursor %d (store emptied or"
                        " replaced); publishing its records from the start under a new epoch",
                        self.store.last_id, pos.published)
            return Position(new_epoch(), 0)
        return pos

    async def _save(self, pos: Position) -> None:
        if pos.text() != self._saved:
            await self.store.write([], cursors={CURSOR: pos.text()})
            self._saved = pos.text()

    async def _publish_all(self, js: JetStreamContext) -> None:
        """Keep up to WINDOW messages in flight, for ever; `position` follows their acknowledgements in id order."""
        inflight: deque[asyncio.Task[None]] = deque()
        try:
            pos = self.position
            assert pos is not None
            for first, last in pos.pending:  # perhaps sent before a restart: the same messages again
                lines = [line for line in await self.store.lines_after(first - 1, last - first + 1, self.node)
                         if line.id <= last]
                message = wire.Message(first, last, len(lines), b"".join(line.text for line in lines))
                inflight.append(asyncio.create_task(self._publish(js, pos.epoch, message)))
            while True:
                if len(inflight) <= WINDOW // 2:
                    await self._fill(js, inflight)
                if not inflight:
                    await self._wait_commit()
                    continue
                await inflight[0]
                inflight.popleft()
                pos = self.position
                assert pos is not None
                self.position = Position(pos.epoch, pos.pending[0][1], pos.pending[1:])
        finally:
            for task in inflight:
                task.cancel()

    async def _fill(self, js: JetStreamContext, inflight: deque[asyncio.Task[None]]) -> None:
        """The next messages after those in flight, committed as pending before they are sent."""
        pos = self.position
        assert pos is not None
        room = WINDOW - len(inflight)
        self._read_upto = self.store.last_id  # every id up to it is committed: the read sees them all
        lines = await self.store.lines_after(pos.upto, room * self.cfg.batch_size, self.node)
        if not lines:
            return
        max_bytes = (self.link.nc.max_payload if self.link.nc is not None else 1 << 20) - HEADROOM
        messages = wire.split(lines, self.cfg.batch_size, max_bytes)[:room]
        pos = Position(pos.epoch, pos.published, pos.pending + tuple((m.first, m.last) for m in messages))
        await self._save(pos)
        self.position = pos
        inflight.extend(asyncio.create_task(self._publish(js, pos.epoch, m)) for m in messages)

    async def _wait_commit(self) -> None:
        pos = self.position
        assert pos is not None
        await self._save(pos)
        async with self.store.committed:
            if self.store.last_id <= self._read_upto:  # nothing new (records from other nodes are not sent)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.store.committed.wait(), IDLE_WAIT)
        self.position = self._check_ids(pos)

    async def _publish(self, js: JetStreamContext, epoch: str, message: wire.Message) -> None:
        if message.count:
            msg_id = wire.message_id(self.node, epoch, message.first, message.last)
            await publish(js, self.subject, message.payload, msg_id, self.counters)
            self.counters.inc("published", message.count)

    async def _watch_backlog(self) -> None:
        while True:
            pos = self.position
            if pos is not None:
                self.backlog = max(0, self.store.last_id - pos.published)
                with contextlib.suppress(sqlite3.Error):
                    oldest = await self.store.lines_after(pos.published, 1, self.node) if self.backlog else []
                    self.oldest = oldest[0].received if oldest else None
            await asyncio.sleep(BACKLOG_INTERVAL)

    async def _heartbeat(self, js: JetStreamContext) -> None:
        subject = streams.HEARTBEATS.subject(self.node)
        while True:
            d = self.details()
            beat = {"node": self.node, "time": rfc3339(time.time()), "backlog": d["backlog"],
                    "backlog_oldest_age": d["backlog_oldest_age"], "published": self.counters.get("published")}
            try:
                await js.publish(subject, json.dumps(beat).encode())
            except (nats.errors.Error, TimeoutError) as e:
                log.debug("fleet: heartbeat not sent: %s", e)
            await asyncio.sleep(HEARTBEAT)

    def details(self) -> dict[str, object]:
        link = self.link.status()
        return {
            **link,
            "since": rfc3339(self.link.since),
            "node": self.node,
            "backlog": self.backlog,
            "backlog_oldest_age": None if self.oldest is None else max(0.0, time.time() - self.oldest),
            "published_upto": self.position.published if self.position else None,
        }


async def publish(js: JetStreamContext, subject: str, payload: bytes, msg_id: str, counters: Counters) -> None:
    """Send until the stream acknowledges; every attempt carries the same id."""
    while True:
        try:
            ack = await js.publish(subject, payload, headers={wire.MSG_ID: msg_id})
        except (nats.errors.Error, TimeoutError) as e:
            counters.inc("publish_retries")
            log.debug("fleet: publishing %s failed, retrying: %s", msg_id, e)
            await asyncio.sleep(RETRY_DELAY)
            continue
        counters.inc("duplicates" if ack.duplicate else "messages")
        return


async def ensure_stream(js: JetStreamContext, stream: streams.Stream, cfg: FleetConfig, link: Link) -> None:
    """Create or check `stream`; while it cannot be used as the config says, say so and check again now and then."""
    while True:
        try:
            await streams.ensure(js, stream, cfg)
        except streams.StreamError as e:
            link.mismatch(str(e), e.state)
            await asyncio.sleep(e.retry)
        else:
            return


def create(cfg: FleetConfig, store: LogStore) -> Publisher:
    return Publisher(cfg, store)
