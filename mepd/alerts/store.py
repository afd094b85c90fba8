"""Incidents, their history, silences and the notification outbox, in one SQLite file.

Its own file (not the log store's) so that log retention or a busy log writer
never delays an incident.  One worker thread owns the connection; the event
loop only awaits it.  A state change and the notifications it causes commit in
one transaction, and a notification leaves the outbox only once its receiver
acknowledged it: a broker outage or a restart delays notifications, never
loses them.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from mepd.config.syntax import Matcher
from mepd.model import Incident, IncidentState, rfc3339
from mepd.workers import Thread

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL, rule TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL,
    severity TEXT NOT NULL, labels TEXT NOT NULL, summary TEXT NOT NULL,
    started REAL NOT NULL, last_seen REAL NOT NULL, count INTEGER NOT NULL, value REAL,
    resolved REAL, acknowledged REAL, comment TEXT, lines TEXT NOT NULL,
    notified TEXT, notified_at REAL,
    steps TEXT NOT NULL DEFAULT '[]', escalated REAL, flapping REAL, suppressed TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS incidents_open ON incidents (fingerprint) WHERE state != 'resolved';
CREATE INDEX IF NOT EXISTS incidents_resolved ON incidents (resolved);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY,
    incident INTEGER NOT NULL, ts REAL NOT NULL, event TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_incident ON history (incident, id);
CREATE INDEX IF NOT EXISTS history_event_ts ON history (event, ts);
CREATE TABLE IF NOT EXISTS silences (
    id INTEGER PRIMARY KEY,
    matchers TEXT NOT NULL, starts REAL NOT NULL, ends REAL NOT NULL, comment TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL, created REAL NOT NULL, incidents TEXT NOT NULL, event TEXT NOT NULL,
    message TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_channel ON outbox (channel, id);
"""

# Columns added after the first release: a file made by an older mepd gets them when opened.
_ADDED: Final = (("steps", "TEXT NOT NULL DEFAULT '[]'"), ("escalated", "REAL"), ("flapping", "REAL"),
                 ("suppressed", "TEXT"))
_UPSERT: Final = (
    "INSERT INTO incidents (id, fingerprint, rule, kind, state, severity, labels, summary, started, last_seen,"
    " count, value, resolved, acknowledged, comment, lines, notified, notified_at, steps, escalated, flapping,"
    " suppressed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET state = excluded.state, severity = excluded.severity, labels = excluded.labels,"
    " summary = excluded.summary, last_seen = excluded.last_seen, count = excluded.count,"
    " value = excluded.value, resolved = excluded.resolved, acknowledged = excluded.acknowledged,"
    " comment = excluded.comment, lines = excluded.lines, notified = excluded.notified,"
    " notified_at = excluded.notified_at, steps = excluded.steps, escalated = excluded.escalated,"
    " flapping = excluded.flapping, suppressed = excluded.suppressed"
)
_SELECT: Final = (
    "SELECT id, fingerprint, rule, kind, state, severity, labels, summary, started, last_seen, count, value,"
    " resolved, acknowledged, comment, lines, notified, notified_at, steps, escalated, flapping, suppressed"
    " FROM incidents"
)
_TRIM: Final = (  # the channel's rows older than its newest `outbox_max`
    "DELETE FROM outbox WHERE channel = ? AND id <= "
    "(SELECT id FROM outbox WHERE channel = ? ORDER BY id DESC LIMIT 1 OFFSET ?)"
)
OUTBOX_MAX: Final = 10_000
# Open, resolved but not yet notified, or resolved recently with a corrective step still undecided.
_LIVE: Final = _SELECT + (
    " WHERE state != 'resolved' OR notified = 'firing' OR (resolved >= ? AND EXISTS (SELECT 1 FROM"
    " json_each(incidents.steps) WHERE json_extract(value, '$.outcome') IN ('running', 'verifying'))) ORDER BY id"
)
_BY_ID: Final = _SELECT + " WHERE id = ?"
_BY_IDS: Final = _SELECT + " WHERE id IN (SELECT value FROM json_each(?))"  # noqa: S608 - ids as a JSON array
_RECENT: Final = _SELECT + " ORDER BY id DESC LIMIT ?"
_RECENT_OPEN: Final = _SELECT + " WHERE state != 'resolved' ORDER BY id DESC LIMIT ?"


@dataclass(frozen=True, slots=True)
class Silence:
    """Mutes notifications (never the incident) for matching labels until `ends`."""

    id: int
    matchers: tuple[Matcher, ...]
    starts: float
    ends: float
    comment: str
    created: float

    def active(self, now: float) -> bool:
        return self.starts <= now < self.ends

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "matchers": ",".join(str(m) for m in self.matchers),
            "starts": rfc3339(self.starts),
            "ends": rfc3339(self.ends),
            "comment": self.comment,
            "created": rfc3339(self.created),
        }


@dataclass(frozen=True, slots=True)
class History:
    incident: int
    ts: float
    event: str
    detail: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A notification to queue: `message` is what the channel sends, as text."""

    channel: str
    incidents: tuple[int, ...]
    event: str
    message: str


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    channel: str
    created: float
    incidents: tuple[int, ...]
    event: str
    message: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Loaded:
    """What a restart needs: open incidents, resolutions not yet notified, silences, recent action runs."""

    incidents: list[Incident]
    next_id: int
    silences: list[Silence]
    action_runs: list[tuple[str, float]]


def _incident_row(i: Incident) -> tuple[Any, ...]:
    return (
        i.id, i.fingerprint, i.rule, i.kind, i.state, i.severity, json.dumps(dict(i.labels), sort_keys=True),
        i.summary, i.started, i.last_seen, i.count, i.value, i.resolved, i.acknowledged, i.comment,
        json.dumps(list(i.lines)), i.notified, i.notified_at, json.dumps([dict(s) for s in i.steps]),
        i.escalated, i.flapping, i.suppressed,
    )


def _incident(row: Sequence[Any]) -> Incident:
    (iid, fp, rule, kind, state, severity, labels, summary, started, last_seen, count, value, resolved,
     acknowledged, comment, lines, notified, notified_at, steps, escalated, flapping, suppressed) = row
    notified_state: IncidentState | None = notified
    return Incident(
        id=iid, fingerprint=fp, rule=rule, kind=kind, state=state, severity=severity, labels=json.loads(labels),
        summary=summary, started=started, last_seen=last_seen, count=count, value=value, resolved=resolved,
        acknowledged=acknowledged, comment=comment, lines=tuple(json.loads(lines)), notified=notified_state,
        notified_at=notified_at, steps=tuple(json.loads(steps)), escalated=escalated, flapping=flapping,
        suppressed=suppressed,
    )


def _silence(row: Sequence[Any]) -> Silence:
    sid, matchers, starts, ends, comment, created = row
    return Silence(sid, tuple(Matcher(n, op, v) for n, op, v in json.loads(matchers)), starts, ends, comment, created)


class IncidentStore:
    """Owns the database file; every method is safe to await from the event loop."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._thread = Thread("incidents")
        self._run = self._thread.run
        self._conn: sqlite3.Connection | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        assert self._conn is not None, "IncidentStore used before open()"
        return self._conn

    async def open(self, since: float) -> Loaded:
        """Create or open the file; load what is still live, and action runs after `since` (for cooldowns)."""
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        return await self._run(self._open, since)

    def _open(self, since: float) -> Loaded:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(SCHEMA)
        have = {r[1] for r in conn.execute("PRAGMA table_info(incidents)")}
        for name, decl in _ADDED:
            if name not in have:
                conn.execute(f"ALTER TABLE incidents ADD COLUMN {name} {decl}")
        self._conn = conn
        live = [_incident(r) for r in conn.execute(_LIVE, [since])]
        next_id = int(conn.execute("SELECT coalesce(max(id), 0) + 1 FROM incidents").fetchone()[0])
        silences = [_silence(r) for r in conn.execute("SELECT * FROM silences ORDER BY id")]
        runs = [(json.loads(d)["key"], ts) for d, ts in conn.execute(
            "SELECT detail, ts FROM history WHERE event = 'action' AND ts >= ? ORDER BY ts", [since])]
        return Loaded(live, next_id, silences, runs)

    async def close(self) -> None:
        if self._conn is not None:
            await self._run(self._conn.close)
            self._conn = None
        self._thread.stop()

    async def commit(
        self, incidents: Sequence[Incident] = (), history: Sequence[History] = (), outbox: Sequence[Outgoing] = (),
        now: float = 0.0, outbox_max: int = OUTBOX_MAX,
    ) -> dict[str, int]:
        """Incident changes, their history and the notifications they cause: all or nothing.

        A channel keeps at most `outbox_max` queued rows (a receiver away for days must not fill the disk):
        returns how many of its oldest rows each channel lost to the new ones."""
        if incidents or history or outbox:
            return await self._run(self._commit, list(incidents), list(history), list(outbox), now, outbox_max)
        return {}

    def _commit(self, incidents: list[Incident], history: list[History], outbox: list[Outgoing], now: float,
                outbox_max: int) -> dict[str, int]:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_UPSERT, map(_incident_row, incidents))
            self._history(history)
            conn.executemany(
                "INSERT INTO outbox (channel, created, incidents, event, message) VALUES (?, ?, ?, ?, ?)",
                [(o.channel, now, json.dumps(o.incidents), o.event, o.message) for o in outbox],
            )
            dropped = {}
            for channel in sorted({o.channel for o in outbox}):
                n = conn.execute(_TRIM, [channel, channel, outbox_max]).rowcount
                if n > 0:
                    dropped[channel] = n
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return dropped

    def _history(self, history: Sequence[History]) -> None:
        self.conn.executemany(
            "INSERT INTO history (incident, ts, event, detail) VALUES (?, ?, ?, ?)",
            [(h.incident, h.ts, h.event, json.dumps(h.detail, ensure_ascii=False)) for h in history],
        )

    async def add_history(self, entries: Sequence[History]) -> None:
        await self._run(self._atomic, self._history, entries)

    def _atomic(self, fn: Callable[..., None], *args: Any) -> None:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            fn(*args)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def outbox_head(self, channel: str, limit: int) -> list[OutboxRow]:
        """The oldest queued notifications of a channel: they go out in order."""
        rows = await self._run(self._fetch, "SELECT id, channel, created, incidents, event, message, attempts"
                               " FROM outbox WHERE channel = ? ORDER BY id LIMIT ?", [channel, limit])
        return [OutboxRow(r[0], r[1], r[2], tuple(json.loads(r[3])), r[4], r[5], r[6]) for r in rows]

    async def outbox_done(self, row: OutboxRow, now: float, detail: Mapping[str, object]) -> None:
        """The receiver has it: delete it and note on each incident that it was sent."""
        def done() -> None:
            self.conn.execute("DELETE FROM outbox WHERE id = ?", [row.id])
            self._history([History(i, now, "notified", {"channel": row.channel, "state": row.event,
                                                        "attempts": row.attempts + 1, **detail})
                           for i in row.incidents])

        await self._run(self._atomic, done)

    async def outbox_failed(self, row: OutboxRow, error: str, now: float, *, drop: bool) -> None:
        """Count a failed attempt; `drop` (the receiver refused it for good) removes it, noting why."""
        def failed() -> None:
            if drop:
                self.conn.execute("DELETE FROM outbox WHERE id = ?", [row.id])
                self._history([History(i, now, "notify_failed", {"channel": row.channel, "state": row.event,
                                                                 "error": error}) for i in row.incidents])
            else:
                self.conn.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                                  [error, row.id])

        await self._run(self._atomic, failed)

    async def step_outcomes(self) -> list[dict[str, object]]:
        """Every decided corrective step still in the history (`mepctl actions`)."""
        rows = await self._run(self._fetch, "SELECT detail FROM history WHERE event = 'step_outcome' ORDER BY id", [])
        return [json.loads(r[0]) for r in rows]

    async def outbox_size(self) -> dict[str, int]:
        rows = await self._run(self._fetch, "SELECT channel, count(*) FROM outbox GROUP BY channel", [])
        return {str(c): int(n) for c, n in rows}

    def _fetch(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(sql, args))

    async def incidents(self, *, include_resolved: bool, limit: int) -> list[Incident]:
        rows = await self._run(self._fetch, _RECENT if include_resolved else _RECENT_OPEN, [limit])
        return [_incident(r) for r in rows]

    async def state_changes(self, after: int, limit: int) -> tuple[int, list[tuple[int, float, str, Incident]]]:
        """The history after id `after` (up to `limit` rows): the last id read, and its fired, acknowledged and
        resolved rows with their incident as it is now; for the fleet (`mepd.fleet.incidents`)."""
        rows = await self._run(self._fetch, "SELECT id, ts, event, incident FROM history WHERE id > ? ORDER BY id"
                               " LIMIT ?", [after, limit])
        wanted = [r for r in rows if r[2] in ("fired", "acknowledged", "resolved")]
        found = {i.id: i for i in map(_incident, await self._run(
            self._fetch, _BY_IDS,
            [json.dumps(sorted({r[3] for r in wanted}))]))}
        return (rows[-1][0] if rows else after,
                [(hid, ts, event, found[iid]) for hid, ts, event, iid in wanted if iid in found])

    async def last_history_id(self) -> int:
        return int((await self._run(self._fetch, "SELECT coalesce(max(id), 0) FROM history", []))[0][0])

    async def incident(self, iid: int) -> Incident | None:
        rows = await self._run(self._fetch, _BY_ID, [iid])
        return _incident(rows[0]) if rows else None

    async def history(self, iid: int) -> list[dict[str, object]]:
        rows = await self._run(self._fetch, "SELECT ts, event, detail FROM history WHERE incident = ? ORDER BY id",
                               [iid])
        return [{**json.loads(detail), "ts": rfc3339(ts), "event": event} for ts, event, detail in rows]

    async def in_period(self, since: float, until: float) -> tuple[list[Incident], list[History]]:
        """The incidents open at some time in [since, until), and the history of their actions in it:
        what the operations report (mepd.analysis.report) counts."""
        rows = await self._run(self._fetch, _SELECT + " WHERE started < ? AND (resolved IS NULL OR resolved >= ?)"
                               " ORDER BY id", [until, since])
        events = await self._run(self._fetch, "SELECT incident, ts, event, detail FROM history"
                                 " WHERE event LIKE 'action%' AND ts >= ? AND ts < ? ORDER BY id", [since, until])
        return [_incident(r) for r in rows], [History(i, ts, e, json.loads(d)) for i, ts, e, d in events]

    async def add_silence(self, matchers: Sequence[Matcher], starts: float, ends: float, comment: str,
                          now: float) -> Silence:
        def add() -> int:
            cur = self.conn.execute(
                "INSERT INTO silences (matchers, starts, ends, comment, created) VALUES (?, ?, ?, ?, ?)",
                [json.dumps([[m.name, m.op, m.value] for m in matchers]), starts, ends, comment, now],
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

        return Silence(await self._run(add), tuple(matchers), starts, ends, comment, now)

    async def expire_silence(self, sid: int, now: float) -> None:
        await self._run(self._fetch, "UPDATE silences SET ends = min(ends, ?) WHERE id = ?", [now, sid])

    async def prune(self, before: float) -> int:
        """Forget incidents resolved (and silences ended) before `before`; returns incidents removed."""
        def prune() -> int:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                ids = [(r[0],) for r in conn.execute(
                    "SELECT id FROM incidents WHERE state = 'resolved' AND resolved < ?"
                    " AND id NOT IN (SELECT value FROM outbox, json_each(outbox.incidents))", [before])]
                conn.executemany("DELETE FROM history WHERE incident = ?", ids)
                conn.executemany("DELETE FROM incidents WHERE id = ?", ids)
                conn.execute("DELETE FROM silences WHERE ends < ?", [before])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return len(ids)

        return await self._run(prune)
