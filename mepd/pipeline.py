"""Bounded queues between sources and sinks, with the counters status shows.

A channel fans each item out to every subscriber's own bounded queue, or to
those whose `accept` filter wants it: a consumer says what it wants at the
source instead of receiving and discarding the rest.  A source that can push
back on its sender (TCP, a file, the journal) awaits `put` and so stops reading
when a sink is slow; one that cannot (UDP) uses `offer`, and an item that finds
a queue full is dropped for that consumer and counted under its name, never
silently.  Only what a `durable` consumer (a store) drops is lost: the sender
counts that, not a lagging analyser's drops.  Sources that can wait already
wait once a queue is a quarter full, which keeps the rest of it for datagrams,
and memory lower.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, NoReturn, TypeAlias, TypeVar

from mepd.model import LogRecord, Sample

T = TypeVar("T")

# What one consumer wants of a burst, in order.  A whole burst per call, not a predicate per item: at 200k
# syslog records a second, a set lookup in one comprehension costs 20 ns a record, a call per record 85-130.
Accept: TypeAlias = Callable[[list[T]], list[T]]


class Counters:
    """Named monotonic counters; dotted names group in status ("dropped.queue_full")."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: defaultdict[str, int] = defaultdict(int)

    def inc(self, name: str, n: int = 1) -> None:
        self._values[name] += n

    def declare(self, *names: str) -> None:
        """Counters shown from the start at 0: a loss or error counter that appears only with its first count
        hides that first count from Prometheus' increase() and from a status read before it."""
        for name in names:
            self._values.setdefault(name, 0)

    def set(self, name: str, value: int) -> None:
        """For counts kept elsewhere and copied in (the kernel's drops for a socket)."""
        self._values[name] = value

    def get(self, name: str) -> int:
        return self._values.get(name, 0)

    def snapshot(self) -> dict[str, int]:
        return dict(sorted(self._values.items()))


class Subscription(Generic[T]):
    """One consumer's bounded queue; `done` marks taken items as safely stored, for drain.

    `accept` (None: everything) picks the items the consumer wants; it may be replaced (on reload).
    `durable`: what this consumer drops is lost (a store), not just unseen by it (an analyser).
    """

    def __init__(self, name: str, maxsize: int, accept: Accept[T] | None = None, durable: bool = False) -> None:
        self.name = name
        self.maxsize = maxsize
        self.accept = accept
        self.durable = durable
        self.pause_at = max(1, maxsize // 4)  # where `put` starts waiting
        # Queued items in the lists they came in, not one deque entry each: at 100k records a second fanned
        # out to five consumers, a popleft per item per consumer was the pipeline's largest cost.
        self._chunks: deque[list[T]] = deque()
        self._head = 0  # items of _chunks[0] already taken
        self._count = 0  # items queued
        self._in_flight = 0
        self._want = 1  # how many queued items wake the consumer
        self._urgent = False  # a sender awaits queued items' storing: no lingering for a fuller batch
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._idle = asyncio.Event()
        self._idle.set()

    def __len__(self) -> int:
        return self._count

    @property
    def pending(self) -> int:
        """Items not yet reported done: queued plus taken."""
        return self._count + self._in_flight

    def push_many(self, items: list[T], urgent: bool = False) -> None:
        """Queue items; `urgent` wakes a consumer lingering for a fuller batch (their sender awaits them)."""
        if not items:
            return
        self._chunks.append(items.copy())  # a copy: the caller and the other consumers keep theirs
        self._count += len(items)
        self._urgent = self._urgent or urgent
        if urgent or self._count >= self._want:
            self._readable.set()
        self._idle.clear()
        if self._count >= self.pause_at:
            self._writable.clear()

    def room(self) -> int:
        return max(0, self.maxsize - self._count)

    async def wait_writable(self) -> None:
        while self._count >= self.pause_at:
            await self._writable.wait()

    async def get_batch(self, max_items: int, linger: float) -> list[T]:
        """Wait for at least one item, then up to `linger` seconds for a full batch.

        While lingering, a push wakes the consumer only once the batch is full,
        not at every item.
        """
        while not self._count:
            self._readable.clear()
            await self._readable.wait()
        if self._count < max_items and linger > 0 and not self._urgent:
            self._want = max_items
            try:
                await self._wait_readable(linger)
            finally:
                self._want = 1
        n = min(max_items, self._count)
        batch = self._take(n)
        self._count -= n
        self._urgent = self._urgent and bool(self._count)
        self._in_flight += n
        if self._count < self.pause_at:
            self._writable.set()
        return batch

    def _take(self, n: int) -> list[T]:
        """The first `n` queued items (n <= the count), whole lists at a time where they fit."""
        chunks = self._chunks
        if self._head == 0 and len(chunks[0]) == n:
            return chunks.popleft()
        batch: list[T] = []
        while len(batch) < n:
            chunk = chunks[0]
            end = self._head + n - len(batch)
            if end >= len(chunk):
                batch += chunk[self._head:] if self._head else chunk
                chunks.popleft()
                self._head = 0
            else:
                batch += chunk[self._head:end]
                self._head = end
        return batch

    async def consume(self, process: Callable[[list[T]], None], max_items: int, linger: float) -> NoReturn:
        """For ever: hand each batch to `process` (an analyser's: nothing to wait for), then mark it done."""
        while True:
            batch = await self.get_batch(max_items, linger)
            process(batch)
            self.done(len(batch))

    async def wait(self, within: float) -> bool:
        """Wait up to `within` seconds for an item, taking none; True if one is there."""
        if not self._count:
            await self._wait_readable(within)
        return bool(self._count)

    async def _wait_readable(self, within: float) -> None:
        self._readable.clear()
        # Not wait_for: on 3.11 it can swallow a cancel that lands as the event fires,
        # leaving a stopping sink blocked here for good.
        try:
            async with asyncio.timeout(within):
                await self._readable.wait()
        except TimeoutError:
            pass

    def done(self, n: int) -> None:
        self._in_flight -= n
        if not self._count and self._in_flight == 0:
            self._idle.set()

    async def join(self) -> None:
        """Return once everything pushed so far has been reported done."""
        await self._idle.wait()


class Channel(Generic[T]):
    def __init__(self, name: str, counters: Counters) -> None:
        self.name = name
        self.counters = counters
        self.subscribers: list[Subscription[T]] = []

    def subscribe(self, name: str, maxsize: int, *, accept: Accept[T] | None = None,
                  durable: bool = False) -> Subscription[T]:
        sub: Subscription[T] = Subscription(name, maxsize, accept, durable)
        self.subscribers.append(sub)
        return sub

    def offer(self, item: T) -> bool:
        """Enqueue without waiting; a full queue drops the item for that subscriber and counts it.

        False if it is lost: a durable subscriber dropped it."""
        return self.offer_many([item]) == 0

    def offer_many(self, items: list[T]) -> int:
        """`offer` for a burst (a drained UDP socket): one pass per subscriber.

        Returns how many are lost: the most a durable subscriber dropped.  Each subscriber's
        drops are counted under its name ("dropped.queue_full.store/logs").
        """
        self.counters.inc("received", len(items))
        lost = 0
        for sub in self.subscribers:
            mine = items if sub.accept is None else sub.accept(items)
            room = sub.room()
            if room >= len(mine):
                sub.push_many(mine)
                continue
            if room:
                sub.push_many(mine[:room])
            dropped = len(mine) - room
            self.counters.inc(f"dropped.queue_full.{sub.name}", dropped)
            if sub.durable:
                lost = max(lost, dropped)
        return lost

    async def put(self, item: T) -> None:
        """Enqueue, waiting for room: back-pressure for senders that can be slowed down."""
        await self.put_many([item])

    async def put_many(self, items: list[T], urgent: bool = False) -> None:
        """`put` for what one read brought: waits until every queue that wants some of it has room, then
        takes all of it.

        A queue may so go over its size by one read's worth; bounded, since the
        reader waits before reading more.  `urgent`: the sender waits for these to be stored (RELP), so a
        consumer lingering for a fuller batch would only delay them.
        """
        shares = [(sub, items if sub.accept is None else sub.accept(items)) for sub in self.subscribers]
        for sub, mine in shares:
            if mine:
                await sub.wait_writable()
        self.counters.inc("received", len(items))
        for sub, mine in shares:
            sub.push_many(mine, urgent)

    async def join(self) -> None:
        for sub in self.subscribers:
            await sub.join()


class Pipeline:
    """The two channels of DESIGN.md's data flow: log records and metric samples."""

    def __init__(self) -> None:
        self.log_counters = Counters()
        self.sample_counters = Counters()
        self.logs: Channel[LogRecord] = Channel("logs", self.log_counters)
        self.samples: Channel[Sample] = Channel("samples", self.sample_counters)

    async def join(self) -> None:
        await self.logs.join()
        await self.samples.join()

    def status(self) -> PipelineStatus:
        # By channel: a consumer of both (the alert engine) has a queue on each.
        return PipelineStatus(self.log_counters.snapshot(), self.sample_counters.snapshot(),
                              {name: {s.name: s.pending for s in ch.subscribers}
                               for name, ch in (("logs", self.logs), ("samples", self.samples))})


@dataclass(frozen=True, slots=True)
class PipelineStatus:
    """The channels' counters by their dotted names, and each consumer's queue; `to_json` nests the names."""

    logs: Mapping[str, int]
    samples: Mapping[str, int]
    queued: Mapping[str, Mapping[str, int]]  # channel -> consumer -> items queued or in hand

    def to_json(self) -> dict[str, object]:
        return {
            "logs": _nest(self.logs),
            "samples": _nest(self.samples),
            "queued": {channel: dict(consumers) for channel, consumers in self.queued.items()},
        }


def from_sources(sources: Iterable[str]) -> Accept[LogRecord]:
    """The log records of the given `source`s ("tail:web"): a declarative filter, a set lookup per record, and
    none when no source is given (no web tail configured): nothing to look at."""
    wanted = frozenset(sources)
    if not wanted:
        return lambda _records: []
    return lambda records: [r for r in records if r.source in wanted]


def _nest(flat: Mapping[str, int]) -> dict[str, object]:
    """{"dropped.queue_full.logstore": 3} -> {"dropped": {"queue_full": {"logstore": 3}}}, for JSON."""
    out: dict[str, object] = {}
    for name, value in flat.items():
        *parents, leaf = name.split(".")
        node = out
        for p in parents:
            child = node.setdefault(p, {})
            assert isinstance(child, dict)
            node = child
        node[leaf] = value
    return out
