"""The edge's fleet component: publishes what the local log store committed, exactly once.

The local store is the buffer.  Records are read back from it in id order after
the "published up to" cursor, sent a message at a time (`mepd.fleet.wire`), and
the next message waits for the stream's acknowledgement of this one, so the
stream holds a node's records in id order.  The cursor lives in the store's
`cursors` table as `<epoch>:<published>[:<first>-<last>]`: before a message is
sent its range is committed as pending, so a restart (even after kill -9)
sends that range again as the same message with the same `Nats-Msg-Id`, which
the stream's duplicate window drops and a central recognises after it; then it
goes on after the range.  A message whose acknowledgement is lost is sent
again the same way.  While the cluster cannot be reached nothing is sent and
the backlog (records, age of the oldest) is shown in `mepctl status`.

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
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

import nats.errors
from nats.js import JetStreamContext

from mepd.config import FleetConfig
from mepd.fleet import streams, wire
from mepd.fleet.connection import Link
from mepd.model import LogRecord, rfc3339
from mepd.pipeline import Counters
from mepd.store.logs.store import LogStore

log = logging.getLogger(__name__)

CURSOR: Final = "fleet/published"
IDLE_WAIT: Final = 1.0
BACKLOG_INTERVAL: Final = 2.0
RETRY_DELAY: Final = 1.0
MISMATCH_RETRY: Final = 30.0
HEARTBEAT: Final = 10.0


@dataclass(frozen=True, slots=True)
class Position:
    """Where publishing stands: every record up to `published` is in the stream; `pending` may be."""

    epoch: str
    published: int
    pending: tuple[int, int] | None = None

    def text(self) -> str:
        tail = f":{self.pending[0]}-{self.pending[1]}" if self.pending else ""
        return f"{self.epoch}:{self.published}{tail}"

    @classmethod
    def parse(cls, text: str) -> Position:
        epoch, published, *pending = text.split(":")
        if pending:
            first, last = pending[0].split("-")
            return cls(epoch, int(published), (int(first), int(last)))
        return cls(epoch, int(published))


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
                while True:
                    await self._step(js)
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

    async def _step(self, js: JetStreamContext) -> None:
        pos = self.position
        assert pos is not None
        if pos.pending is not None:
            first, last = pos.pending
            batch = [(rid, r) for rid, r in await self.store.records_after(first - 1, last - first + 1)
                     if rid <= last]
        else:
            batch = await self.store.records_after(pos.published, self.cfg.batch_size)
            if not batch:
                await self._save(pos)
                await self._wait_commit(pos)
                return
            first, last = batch[0][0], batch[-1][0]
            pos = replace(pos, pending=(first, last))
            await self._save(pos)
            self.position = pos
        if batch:
            await self._publish(js, wire.message_id(self.node, pos.epoch, first, last), batch)
        self.position = Position(pos.epoch, last)

    async def _wait_commit(self, pos: Position) -> None:
        async with self.store.committed:
            if self.store.last_id <= pos.published:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.store.committed.wait(), IDLE_WAIT)
        self.position = self._check_ids(pos)

    async def _publish(self, js: JetStreamContext, msg_id: str, batch: list[tuple[int, LogRecord]]) -> None:
        await publish(js, self.subject, wire.encode(self.node, batch), msg_id, self.counters)
        self.counters.inc("published", len(batch))

    async def _watch_backlog(self) -> None:
        while True:
            pos = self.position
            if pos is not None:
                self.backlog = max(0, self.store.last_id - pos.published)
                with contextlib.suppress(sqlite3.Error):
                    oldest = await self.store.records_after(pos.published, 1) if self.backlog else []
                    self.oldest = oldest[0][1].received if oldest else None
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
    """Create or check `stream`; while it does not match the config, say so and check again now and then."""
    while True:
        try:
            await streams.ensure(js, stream, cfg)
        except streams.StreamMismatchError as e:
            link.mismatch(str(e))
            await asyncio.sleep(MISMATCH_RETRY)
        else:
            return


def create(cfg: FleetConfig, store: LogStore) -> Publisher:
    return Publisher(cfg, store)
