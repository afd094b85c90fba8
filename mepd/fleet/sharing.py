"""`fleet/leases`: SNMP polling shared by the pollers of a fleet (`[fleet] share_polling = true`).

Every poller has the same `[[snmp.target]]` list; each target is polled by the
one live poller holding its lease in the KV bucket `MEPD_LEASES` (the logic,
timing and balance are in `mepd.fleet.leases`).  A round runs every quarter of
the shortest target interval: renew what this poller holds (compare-and-set on
the revision it wrote), save the counters of the polls made since the last
round, read every target's lease, then claim or take what `leases.plan` says
(and read a target's counters when it takes it).  A lease lives two rounds
without a renewal (half an interval), so a poller killed or cut off loses its
targets within one interval, and its own polls stop before anyone may take
them.  On stop (SIGTERM) it saves its counters and releases its leases at once.

The SNMP targets see this through `mepd.sources.snmp.target.Share` (set on
their hub by the app), so sources never import the fleet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.kv import KeyValue

from mepd.config import FleetConfig, SnmpTargetConfig
from mepd.fleet.connection import Link
from mepd.fleet.leases import Lease, View, counters_key, decode_counters, encode_counters, key_of, plan
from mepd.model import rfc3339
from mepd.pipeline import Counters

log = logging.getLogger(__name__)

BUCKET: Final = "MEPD_LEASES"
ROUNDS_PER_INTERVAL: Final = 4
LIFETIME_ROUNDS: Final = 2

Failure: Final = (nats.errors.Error, TimeoutError)


class PollShare:
    """The component holding this poller's leases; also the `Share` its SNMP targets ask."""

    def __init__(self, cfg: FleetConfig, targets: Sequence[SnmpTargetConfig]) -> None:
        self.name = "fleet/leases"
        self.cfg = cfg
        self.node = cfg.node_name
        self.targets = tuple(t.name for t in targets)
        self.round = min((t.interval for t in targets), default=60.0) / ROUNDS_PER_INTERVAL
        self.lifetime = LIFETIME_ROUNDS * self.round
        self.counters = Counters()
        self.counters.declare("claimed", "taken", "lost", "released", "renew_failures", "read_failures",
                              "counters_failures")
        self.link = Link(cfg, f"mepd {self.node} leases")
        self.view = View()
        self.held: dict[str, int] = {}  # target -> revision this poller wrote last
        self.renewed: dict[str, float] = {}  # target -> when (monotonic) its last successful write was sent
        self.since: dict[str, float] = {}  # target -> when (wall time) this poller took it
        self.latest: dict[str, Mapping[str, Any] | None] = {}  # target -> counters of its last poll here
        self.handed: dict[str, Mapping[str, Any] | None] = {}  # target -> counters read when it was taken
        self.unsaved: set[str] = set()  # targets polled here since their counters were last saved
        self._changed = asyncio.Event()

    # The SNMP side (mepd.sources.snmp.target.Share)

    def holds(self, target: str) -> bool:
        return target in self.held and time.monotonic() < self.renewed[target] + self.lifetime

    async def turn(self, target: str, wait: float) -> tuple[bool, Mapping[str, Any] | None]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while not self.holds(target):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False, None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True, self.handed.pop(target, self.latest.get(target))

    def polled(self, target: str, counters: Mapping[str, Any] | None) -> None:
        self.latest[target] = counters
        if counters is not None:
            self.unsaved.add(target)

    # The component

    async def run(self, started: Callable[[], None]) -> None:
        started()
        kv: KeyValue | None = None
        try:
            kv = await self._bucket(await self.link.open())
            loop = asyncio.get_running_loop()
            while True:
                began = loop.time()
                await self._round(kv)
                await asyncio.sleep(max(0.0, began + self.round - loop.time()))
        finally:
            if kv is not None and self.held:
                with contextlib.suppress(*Failure):
                    await asyncio.wait_for(self._release(kv), self.cfg.timeout)
            self.held.clear()
            self._wake()
            await self.link.close()

    async def _bucket(self, js: JetStreamContext) -> KeyValue:
        while True:
            try:
                try:
                    return await js.key_value(BUCKET)
                except nats.js.errors.BucketNotFoundError:
                    return await js.create_key_value(KeyValueConfig(bucket=BUCKET, history=1,
                                                                    replicas=self.cfg.replicas))
            except Failure as e:
                self.link.mismatch(f"bucket {BUCKET}: {type(e).__name__}: {e}")
                await asyncio.sleep(self.round)

    def _wake(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def _write(self, kv: KeyValue, target: str, lease: Lease, last: int) -> bool:
        """Compare-and-set the target's key on revision `last` (0: create it); whether it was ours to write.
        A write that fails otherwise raises."""
        sent = time.monotonic()
        try:
            if last:
                revision = await kv.update(key_of(target), lease.encode(), last=last)
            else:
                revision = await kv.create(key_of(target), lease.encode())
        except nats.js.errors.KeyWrongLastSequenceError:
            return False
        if lease.owner:
            self.held[target], self.renewed[target] = revision, sent
        return True

    async def _round(self, kv: KeyValue) -> None:
        await asyncio.gather(*(self._renew(kv, t) for t in list(self.held)))
        await self._save(kv)
        try:
            entries = await asyncio.gather(*(self._read(kv, t) for t in self.targets))
        except Failure as e:
            self.counters.inc("read_failures")
            log.debug("fleet leases: reading the bucket failed: %s", e)
            self._wake()
            return
        now = time.monotonic()
        for target, (revision, lease) in zip(self.targets, entries, strict=True):
            self.view.observe(target, revision, lease, now)
            if target in self.held and revision != self.held[target] and (lease is None or lease.owner != self.node):
                self._lose(target, lease.owner if lease else "?")
        moves = plan(self.node, self.targets, self.view, self.held, now, self.lifetime)
        await asyncio.gather(*(self._claim(kv, t, taken=False) for t in moves.claim),
                             *(self._claim(kv, t, taken=True) for t in moves.take))
        self._wake()

    async def _read(self, kv: KeyValue, target: str) -> tuple[int, Lease | None]:
        try:
            entry = await kv.get(key_of(target))
        except nats.js.errors.KeyNotFoundError:
            return 0, None
        return entry.revision or 0, Lease.decode(entry.value or b"")

    async def _save(self, kv: KeyValue) -> None:
        """The counters of the targets polled since the last round, for whoever polls them next."""
        async def save(target: str, counters: Mapping[str, Any]) -> None:
            try:
                await kv.put(counters_key(target), encode_counters(counters))
            except Failure as e:
                self.unsaved.add(target)  # the next round tries again
                self.counters.inc("counters_failures")
                log.debug("fleet leases: saving %s's counters failed: %s", target, e)

        due = [(t, c) for t in self.unsaved if self.holds(t) and (c := self.latest.get(t)) is not None]
        self.unsaved.clear()
        await asyncio.gather(*(save(t, c) for t, c in due))

    async def _renew(self, kv: KeyValue, target: str) -> None:
        lease = Lease(self.node, self.since[target])
        try:
            if not await self._write(kv, target, lease, self.held[target]):
                self._lose(target, "another poller")
        except Failure as e:
            self.counters.inc("renew_failures")
            log.debug("fleet leases: renewing %s failed: %s", target, e)

    def _lose(self, target: str, to: str) -> None:
        log.info("fleet leases: %s now polled by %s", target, to)
        self.held.pop(target, None)
        self.counters.inc("lost")

    async def _claim(self, kv: KeyValue, target: str, *, taken: bool) -> None:
        seen = self.view.seen.get(target)
        since = time.time()
        try:
            if not await self._write(kv, target, Lease(self.node, since), seen.revision if seen else 0):
                return
            handed = decode_counters((await kv.get(counters_key(target))).value or b"")
        except nats.js.errors.KeyNotFoundError:
            handed = None  # never polled yet
        except Failure as e:
            log.debug("fleet leases: claiming %s failed: %s", target, e)
            if target not in self.held:
                return
            handed = None  # claimed, its counters unread: its first poll here has no rates
        self.since[target], self.handed[target] = since, handed
        self.latest.pop(target, None)
        self.counters.inc("taken" if taken else "claimed")
        log.info("fleet leases: polling %s%s", target,
                 f" (taken from {seen.lease.owner})" if taken and seen and seen.lease else "")

    async def _release(self, kv: KeyValue) -> None:
        async def release(target: str, revision: int) -> None:
            if await self._write(kv, target, Lease("", time.time()), revision):
                self.counters.inc("released")

        await self._save(kv)  # before the leases go: whoever takes a target finds its last counters
        await asyncio.gather(*(release(t, r) for t, r in list(self.held.items())), return_exceptions=True)

    def details(self) -> dict[str, object]:
        now = time.monotonic()
        targets: dict[str, dict[str, object]] = {}
        for t in self.targets:
            if self.holds(t):
                targets[t] = {"poller": self.node, "since": rfc3339(self.since[t])}
                continue
            seen = self.view.seen.get(t)
            lease = seen.lease if seen is not None else None
            live = seen is not None and lease is not None and lease.owner and now - seen.changed_at < self.lifetime
            targets[t] = {"poller": lease.owner if live and lease else None,
                          "since": rfc3339(lease.since) if live and lease else None}
        return {**self.link.status(), "since": rfc3339(self.link.since), "node": self.node,
                "held": sum(1 for t in self.targets if self.holds(t)), "round": self.round,
                "lifetime": self.lifetime, "targets": targets}


def create(cfg: FleetConfig, targets: Sequence[SnmpTargetConfig]) -> PollShare:
    return PollShare(cfg, targets)
