"""Incidents over the fleet: an edge publishes its incidents' state changes, a central keeps them with their node.

Edge (`fleet/incidents`): the alert store's history is append-only, so it is
published like the log store, in id order after a cursor with a pending range
(`mepd.fleet.publisher.Position`, kept in the log store's `cursors` as
`fleet/incidents-published`): a message holds the fired, acknowledged and
resolved rows of a history range, each with its incident as it is when read,
as newline-delimited JSON on `mepd.incidents.<node>` (stream MEPD_EVENTS) with
`Nats-Msg-Id = <node>:incidents:<epoch>:<first>-<last>`.  History ids start
again when the alert store was replaced or all of its history pruned: so does
publishing, under a new epoch.

Central (`fleet/central-incidents`): its durable consumer (the `[fleet.central]`
name, on MEPD_EVENTS) stores each message's incidents in `fleet-incidents.db`,
keyed by node and the node's incident id, in one transaction with the message
id, then acknowledges; a message seen before is only acknowledged, so an old
snapshot never overwrites a newer one.  These are the nodes' incidents, read
only here: `mepctl incidents --node 'web*'` and the incidents page show them;
they are acknowledged and resolved on their node.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Final

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from mepd.alerts.store import IncidentStore
from mepd.config import FleetConfig
from mepd.fleet import streams
from mepd.fleet.connection import Link
from mepd.fleet.consumer import ACK_WAIT, FETCH_WAIT, batch_id, messages
from mepd.fleet.publisher import Position, ensure_stream, new_epoch, publish
from mepd.model import Incident, rfc3339
from mepd.pipeline import Counters
from mepd.store.logs.store import LogStore
from mepd.workers import Thread

log = logging.getLogger(__name__)


CURSOR: Final = "fleet/incidents-published"
POLL: Final = 1.0  # the alert store has no commit notification: its history is read this often
BATCH: Final = 200  # history rows per message at most
DB: Final = "fleet-incidents.db"

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS incidents (
    node TEXT NOT NULL, id INTEGER NOT NULL, state TEXT NOT NULL, started REAL NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (node, id)
);
CREATE TABLE IF NOT EXISTS messages (id TEXT PRIMARY KEY, stored REAL NOT NULL) WITHOUT ROWID;
"""

_ALL: Final = "SELECT node, data FROM incidents ORDER BY started DESC, node, id"
_OPEN: Final = "SELECT node, data FROM incidents WHERE state != 'resolved' ORDER BY started DESC, node, id"


def encode(node: str, changes: Sequence[tuple[int, float, str, Incident]]) -> bytes:
    return "".join(json.dumps({"node": node, "history": hid, "event": event, "ts": rfc3339(ts),
                               "incident": inc.to_json()}, ensure_ascii=False, separators=(",", ":")) + "\n"
                   for hid, ts, event, inc in changes).encode()


class IncidentPublisher:
    """`fleet/incidents` on an edge: RUNNING at once; the alert store's history is the buffer."""

    def __init__(self, cfg: FleetConfig, alerts_db: str, store: LogStore) -> None:
        self.name = "fleet/incidents"
        self.cfg = cfg
        self.node = cfg.node_name
        self.alerts_db = alerts_db
        self.store = store  # keeps the cursor
        self.counters = Counters()
        self.link = Link(cfg, f"mepd {self.node} incidents")
        self.subject = streams.EVENTS.subject(self.node)
        self.position: Position | None = None

    async def run(self, started: Callable[[], None]) -> None:
        started()
        history = IncidentStore(self.alerts_db)
        await history.open(time.time())
        try:
            text = await self.store.cursor(CURSOR)
            self.position = Position.parse(text) if text else Position(new_epoch(), 0)
            js = await self.link.open()
            await ensure_stream(js, streams.EVENTS, self.cfg, self.link)
            while True:
                if not await self._step(js, history):
                    await asyncio.sleep(POLL)
        finally:
            await self.link.close()
            await history.close()

    async def _save(self, pos: Position) -> None:
        await self.store.write([], cursors={CURSOR: pos.text()})
        self.position = pos

    async def _step(self, js: JetStreamContext, history: IncidentStore) -> bool:
        """Publish the next range (or the pending one again); False when there is nothing new."""
        pos = self.position
        assert pos is not None
        if not pos.pending and await history.last_history_id() < pos.published:
            log.warning("fleet: the alert store's history ids start below the published cursor %d (store"
                        " replaced or pruned): publishing its state changes from the start under a new epoch",
                        pos.published)
            pos = Position(new_epoch(), 0)
        if pos.pending:
            [(first, last)] = pos.pending  # one message at a time here
            _, changes = await history.state_changes(first - 1, last - first + 1)
            changes = [c for c in changes if c[0] <= last]
        else:
            last, changes = await history.state_changes(pos.published, BATCH)
            if last == pos.published:
                return False
            first = pos.published + 1
            if changes:
                pos = replace(pos, pending=((first, last),))
                await self._save(pos)
        if changes:
            msg_id = f"{self.node}:incidents:{pos.epoch}:{first}-{last}"
            await publish(js, self.subject, encode(self.node, changes), msg_id, self.counters)
            self.counters.inc("published", len(changes))
        await self._save(Position(pos.epoch, last))
        return True

    def details(self) -> dict[str, object]:
        return {**self.link.status(), "since": rfc3339(self.link.since), "node": self.node,
                "published_upto": self.position.published if self.position else None}


class FleetIncidentStore:
    """`fleet-incidents.db` on a central: one worker thread owns the connection."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._thread = Thread("fleet-incidents")
        self._run = self._thread.run
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
        self._conn = conn

    async def close(self) -> None:
        if self._conn is not None:
            await self._run(self._conn.close)
            self._conn = None
        self._thread.stop()

    async def store(self, msg_id: str, node: str, payload: bytes) -> int:
        """The message's incidents, once: returns how many it updated (0 for a message stored before)."""
        return await self._run(self._store, msg_id, node, payload)

    def _store(self, msg_id: str, node: str, payload: bytes) -> int:
        conn = self._conn
        assert conn is not None
        rows = []
        for line in payload.decode(errors="replace").splitlines():
            try:
                inc = json.loads(line)["incident"]
                rows.append((node, int(inc["id"]), str(inc["state"]), _epoch(inc["started"]),
                             json.dumps({**inc, "node": node}, ensure_ascii=False)))
            except (ValueError, KeyError, TypeError) as e:
                log.warning("fleet: a line from %s that is not an incident state change, skipped: %s", node, e)
        conn.execute("BEGIN IMMEDIATE")
        try:
            if not conn.execute("INSERT OR IGNORE INTO messages (id, stored) VALUES (?, ?)",
                                [msg_id, time.time()]).rowcount:
                conn.execute("COMMIT")
                return 0
            conn.executemany("INSERT INTO incidents (node, id, state, started, data) VALUES (?, ?, ?, ?, ?)"
                             " ON CONFLICT (node, id) DO UPDATE SET state = excluded.state, data = excluded.data",
                             rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return len(rows)


def _epoch(text: object) -> float:
    return datetime.fromisoformat(str(text)).timestamp()


def query(state_dir: str, node: str, include_resolved: bool, limit: int) -> list[dict[str, Any]]:
    """The nodes' incidents a central holds whose node matches the glob `node`, newest first."""
    path = os.path.join(state_dir, DB)
    if not os.path.exists(path):
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
    try:
        sql = _ALL if include_resolved else _OPEN
        found = [json.loads(data) for n, data in conn.execute(sql) if fnmatch.fnmatchcase(n, node)]
    finally:
        conn.close()
    return found[:limit] if limit else found


class IncidentConsumer:
    """`fleet/central-incidents`: every node's incident state changes into this central's fleet-incidents.db."""

    def __init__(self, cfg: FleetConfig, state_dir: str) -> None:
        self.name = "fleet/central-incidents"
        self.cfg = cfg
        self.path = os.path.join(state_dir, DB)
        self.counters = Counters()
        self.link = Link(cfg, f"mepd {cfg.node_name} central {cfg.central.consumer} incidents")

    async def run(self, started: Callable[[], None]) -> None:
        started()
        store = FleetIncidentStore(self.path)
        await store.open()
        try:
            js = await self.link.open()
            await ensure_stream(js, streams.EVENTS, self.cfg, self.link)
            config = ConsumerConfig(durable_name=self.cfg.central.consumer, ack_policy=AckPolicy.EXPLICIT,
                                    deliver_policy=DeliverPolicy.ALL, ack_wait=ACK_WAIT, max_deliver=-1)
            sub = await js.pull_subscribe(streams.EVENTS.subjects[0], durable=self.cfg.central.consumer,
                                          stream=streams.EVENTS.name, config=config)
            async for msg in messages(sub, self.cfg.central.batch_size, "fetching incidents"):
                await self._store(store, msg)
        finally:
            await self.link.close()
            await store.close()

    async def _store(self, store: FleetIncidentStore, msg: Msg) -> None:
        node = msg.subject.rsplit(".", 1)[-1]
        while True:
            try:
                n = await store.store(batch_id(msg), node, msg.data)
                break
            except sqlite3.Error as e:
                self.counters.inc("write_errors")
                log.warning("fleet: storing incidents from %s failed, retrying: %s", node, e)
                await asyncio.sleep(FETCH_WAIT)
        with contextlib.suppress(nats.errors.Error):
            await msg.ack()
        self.counters.inc("messages")
        self.counters.inc("changes", n)

    def details(self) -> dict[str, object]:
        return {**self.link.status(), "since": rfc3339(self.link.since), "consumer": self.cfg.central.consumer}


def create_publisher(cfg: FleetConfig, alerts_db: str, store: LogStore) -> IncidentPublisher:
    return IncidentPublisher(cfg, alerts_db, store)


def create_consumer(cfg: FleetConfig, state_dir: str) -> IncidentConsumer:
    return IncidentConsumer(cfg, state_dir)
