"""Which poller polls which SNMP target: the lease logic, without NATS (`mepd.fleet.sharing` runs it).

A target's lease is its key in the KV bucket (`t.<target>`); its value says
the owner ("" when released) and since when, a few bytes that every poller
reads every round.  The owner rewrites it every round, by compare-and-set on
the revision it wrote last.  The target's last counters (opaque here) are in
a key of their own (`c.<target>`), written once a poll by the owner and read
only by a poller taking the target over, so that it continues the rates: the
rounds' cost does not grow with the targets' interfaces.

A lease is alive while its revision keeps changing: each poller notes, on its
own monotonic clock, when it last saw a key's revision change, and takes the
key as expired after `lifetime` without one.  No wall clocks are compared
across hosts.  The owner stops polling `lifetime` after it *sent* its last
renewal that succeeded, which is no later than any other poller can have seen
that renewal, so it has stopped before anyone may take the lease over.

Balance: every poller counts the live owners (itself included) and the
targets; the fair share is targets / pollers.  A poller claims free and
expired targets up to one more than the fair share, and takes targets from
live owners only while it holds less than the share rounded down, only from
an owner holding at least two more than itself: each such move brings the
spread closer to even, so a poller that comes back moves its share and no more.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

KEY_PREFIX: Final = "t."
COUNTERS_PREFIX: Final = "c."


def key_of(target: str) -> str:
    """The KV key of a target's lease (target names are letters, digits, _ and -: valid in a key as they are)."""
    return KEY_PREFIX + target


def counters_key(target: str) -> str:
    """The KV key of a target's last counters."""
    return COUNTERS_PREFIX + target


def encode_counters(counters: Mapping[str, Any]) -> bytes:
    return json.dumps(counters, separators=(",", ":")).encode()


def decode_counters(data: bytes) -> Mapping[str, Any] | None:
    """The counters in a value; None for a value that is not a JSON object (the new owner starts afresh)."""
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease's value: `owner` "" is a released lease; `since` (wall time) is when the owner took it."""

    owner: str
    since: float

    def encode(self) -> bytes:
        return json.dumps({"owner": self.owner, "since": self.since}, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> Lease | None:
        """The lease in a value; None for a value that is not one (then the key counts as free)."""
        try:
            doc = json.loads(data)
            return cls(str(doc["owner"]), float(doc["since"]))
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


@dataclass(slots=True)
class Seen:
    """What this poller last read of a key: its revision (0: no key), the lease, and when (monotonic) the
    revision was last seen to change."""

    revision: int
    lease: Lease | None
    changed_at: float


@dataclass(slots=True)
class View:
    """This poller's knowledge of the bucket, updated by `observe` from each round's reads."""

    seen: dict[str, Seen] = field(default_factory=dict)  # by target name

    def observe(self, target: str, revision: int, lease: Lease | None, now: float) -> None:
        old = self.seen.get(target)
        if old is None or old.revision != revision:
            self.seen[target] = Seen(revision, lease, now)

    def owner(self, target: str, me: str, held: Mapping[str, int], now: float, lifetime: float) -> str | None:
        """Who holds the target as far as this poller knows; None when it is free to claim."""
        if target in held:
            return me
        s = self.seen.get(target)
        if s is None or s.lease is None or not s.lease.owner or s.lease.owner == me:
            return None  # never leased, released, or ours from before a restart
        return s.lease.owner if now - s.changed_at < lifetime else None


@dataclass(frozen=True, slots=True)
class Plan:
    """One round's moves: targets to claim (free or expired) and to take from live owners over their share."""

    claim: tuple[str, ...] = ()
    take: tuple[str, ...] = ()


def _order(me: str, target: str) -> bytes:
    """A per-poller order of targets, so that pollers claiming at once mostly try different ones."""
    return hashlib.blake2s(f"{me}\0{target}".encode(), digest_size=8).digest()


def plan(me: str, targets: Sequence[str], view: View, held: Mapping[str, int], now: float,
         lifetime: float) -> Plan:
    owners = {t: view.owner(t, me, held, now, lifetime) for t in targets}
    counts = Counter(o for o in owners.values() if o is not None)
    pollers = len(counts.keys() | {me})
    floor, ceil = len(targets) // pollers, -(-len(targets) // pollers)
    mine = counts[me]
    free = sorted((t for t, o in owners.items() if o is None), key=lambda t: _order(me, t))
    claim = tuple(free[:max(0, ceil - mine)])
    mine += len(claim)
    take: list[str] = []
    by_owner: dict[str, list[str]] = {}
    for t, o in owners.items():
        if o is not None and o != me:
            by_owner.setdefault(o, []).append(t)
    for ts in by_owner.values():
        ts.sort(key=lambda t: _order(me, t))
    while mine < floor:
        victim = max(by_owner, key=lambda o: (counts[o], o), default=None)
        if victim is None or counts[victim] < mine + 2:
            break
        take.append(by_owner[victim].pop(0))
        counts[victim] -= 1
        mine += 1
    return Plan(claim, tuple(take))
