"""Incident lifecycle: firing -> acknowledged -> resolved, with Alertmanager's notification rules.

Rule changes become incidents deduplicated by fingerprint.  Notifications are
decided here and queued in the store's outbox in the same transaction as the
state they announce; channels (MQTT, webhook) only deliver what is queued.

Grouping, as in Alertmanager: incidents with equal `group_by` labels form a
group.  A group with something new to say waits `group_wait` to collect what
else comes, then one notification goes out per channel; a group that still
has firing, unacknowledged incidents is re-notified every `repeat_interval`;
a resolution is notified once, and only if the firing was.  Silences mute
notifications, never the incident itself; an acknowledgement stops repeats.

Flap damping, after Nagios: a series that fires and resolves more than its
rule's `flap_threshold` times within `flap_window` keeps its incident open as
`flapping`: one notification says so, its cycles go on the history only, and
once nothing changed for `flap_window` one notification ends it: `resolved`
if the condition is clear then, else `stable` (still firing, repeats resume).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from mepd.alerts.parents import Topology, suppressed_children
from mepd.alerts.rules import Change, Rule, fingerprint
from mepd.alerts.store import History, IncidentStore, Outgoing, Silence
from mepd.config import AlertConfig
from mepd.config.syntax import Matcher
from mepd.errors import MepdError
from mepd.model import Incident
from mepd.pipeline import Counters

log = logging.getLogger(__name__)

GroupKey = tuple[str, ...]
SILENCE_MAX: Final = 30 * 86400.0
FLAP_WINDOW_MAX: Final = 7 * 86400.0  # cycles older than this are forgotten whatever a rule's window


class NotFoundError(MepdError):
    """No incident or silence with that id."""


class StateError(MepdError):
    """The incident is not in a state that allows this (e.g. acknowledging a resolved one)."""


@dataclass(frozen=True, slots=True)
class Batch:
    """One notification of a group: what changed, and everything the group holds (for full-group payloads);
    `children`: the names of the incidents suppressed behind a changed incident's parent, by its id."""

    group: Mapping[str, str]
    changed: tuple[tuple[str, Incident], ...]
    active: tuple[Incident, ...]
    now: float
    children: Mapping[int, tuple[str, ...]] = field(default_factory=dict)


class Channel(Protocol):
    """A receiver kind: turns a batch into queued messages, then delivers them from the outbox."""

    name: str

    def render(self, batch: Batch) -> list[Outgoing]: ...

    def wake(self) -> None: ...


def _with_step(inc: Incident, step: Mapping[str, object]) -> Incident:
    """The incident with `step` as its newest step: it replaces the record of the same run."""
    steps = list(inc.steps)
    if steps and (steps[-1]["step"], steps[-1]["attempt"]) == (step["step"], step["attempt"]):
        steps[-1] = step
    else:
        steps.append(step)
    return dataclasses.replace(inc, steps=tuple(steps))


class Incidents:
    """The live incidents in memory, mirrored to the store at every change."""

    def __init__(self, store: IncidentStore, cfg: AlertConfig, counters: Counters) -> None:
        self.store = store
        self.cfg = cfg
        self.counters = counters
        self.channels: Sequence[Channel] = ()
        self.topology = Topology()
        self.open: dict[str, Incident] = {}
        self.unsent_resolved: dict[int, Incident] = {}
        self.silences: dict[int, Silence] = {}
        self.next_id = 1
        self._muted: dict[int, dict[int, bool]] = {}  # silence id -> incident id -> its matchers match
        self._next_flush: dict[GroupKey, float] = {}
        self._last_flush: dict[GroupKey, float] = {}
        self._lock = asyncio.Lock()
        self._dropping = False  # the last commit dropped notifications: warned once for the run of drops
        self._over_limit: set[str] = set()  # rules warned about reaching max_incidents_per_rule
        self._cycles: dict[str, deque[float]] = {}  # fingerprint -> when its fire-then-resolve cycles ended
        self._flap_last: dict[str, float] = {}  # fingerprint of a flapping incident -> its last change
        counters.declare("incidents.over_limit", "incidents.flapping")

    def load(self, incidents: Iterable[Incident], next_id: int, silences: Iterable[Silence]) -> None:
        self.next_id = next_id
        for inc in incidents:
            if inc.open:
                self.open[inc.fingerprint] = inc
            elif inc.notified == "firing":
                self.unsent_resolved[inc.id] = inc
            if inc.notified_at is not None:
                key = self.group_key(inc)
                self._last_flush[key] = max(self._last_flush.get(key, 0.0), inc.notified_at)
        self.silences = {s.id: s for s in silences}

    def group_key(self, inc: Incident) -> GroupKey:
        return tuple(inc.labels.get(n, "") for n in self.cfg.group_by)

    def silenced(self, inc: Incident, now: float) -> Silence | None:
        """Matchers run once per silence and incident (labels never change), not at every flush."""
        for s in self.silences.values():
            if not s.active(now):
                self._muted.pop(s.id, None)
                continue
            seen = self._muted.setdefault(s.id, {})
            hit = seen.get(inc.id)
            if hit is None:
                hit = seen[inc.id] = s.matches(inc.labels)
            if hit:
                return s
        return None

    async def apply(self, changes: Sequence[Change], rules: Mapping[str, Rule],
                    now: float) -> list[tuple[str, Incident]]:
        """Record rule changes; returns the ("firing" | "resolved" | "cleared", incident) transitions, for actions
        ("cleared": a flapping incident's condition cleared, the incident stays open)."""
        async with self._lock:
            dirty: dict[int, Incident] = {}
            history: list[History] = []
            outbox: list[Outgoing] = []
            events: list[tuple[str, Incident]] = []
            per_rule = Counter(i.rule for i in self.open.values())
            for ch in changes:
                rule = rules.get(ch.rule)
                if rule is None:
                    continue
                fp = fingerprint(ch.rule, ch.labels)
                inc = self.open.get(fp)
                if ch.kind == "fire" and inc is None and per_rule[rule.name] >= self.cfg.max_incidents_per_rule:
                    self._refuse(rule.name)
                    continue
                if ch.kind == "fire" and inc is None:
                    inc = self._fire(rule, fp, ch, now, history, events)
                    per_rule[rule.name] += 1
                elif inc is None:
                    continue
                elif ch.kind == "resolve" and self._flaps(rule, inc, now):
                    inc = self._cleared_flapping(inc, rule, ch, now, history, outbox)
                    events.append(("cleared", inc))  # for a step verifying: the condition did clear
                elif ch.kind == "resolve":
                    inc = dataclasses.replace(inc, state="resolved", resolved=ch.ts, value=ch.value, summary=ch.summary)
                    del self.open[fp]
                    per_rule[rule.name] -= 1
                    if inc.notified == "firing":
                        self.unsent_resolved[inc.id] = inc
                        self._next_flush.setdefault(self.group_key(inc), now + self.cfg.group_wait)
                    history.append(History(inc.id, now, "resolved", {"by": ch.by, "value": ch.value}))
                    history += [History(inc.id, now, event, detail) for event, detail in ch.notes]
                    events.append(("resolved", inc))
                    self.counters.inc("incidents.resolved")
                    dirty[inc.id] = inc
                    continue
                else:
                    if ch.kind == "fire":  # fired anew while flapping: one more cycle, not a new incident
                        self._flap_last[fp] = now
                        history.append(History(inc.id, now, "fired", {"value": ch.value, "flapping": True}))
                        events += [("firing", inc)] if rule.cfg.flap_actions else []
                    room = max(0, rule.cfg.attach - len(inc.lines))
                    inc = dataclasses.replace(
                        inc, last_seen=max(inc.last_seen, ch.ts), count=inc.count + ch.count,
                        value=ch.value if ch.value is not None else inc.value, summary=ch.summary,
                        lines=inc.lines + ch.lines[:room],
                    )
                history += [History(inc.id, now, event, detail) for event, detail in ch.notes]
                self.open[fp] = inc
                dirty[inc.id] = inc
            await self._commit(list(dirty.values()), history, outbox, now=now)
            self._wake(outbox)
            return events

    def _flaps(self, rule: Rule, inc: Incident, now: float) -> bool:
        """Count a fire-then-resolve cycle of the incident's series; true if it is (now) flapping."""
        cfg = rule.cfg
        if not cfg.flap_threshold:
            return False
        cycles = self._cycles.setdefault(inc.fingerprint, deque())
        cycles.append(now)
        while cycles and cycles[0] < now - cfg.flap_window:
            cycles.popleft()
        return inc.flapping is not None or len(cycles) > cfg.flap_threshold

    def _cleared_flapping(self, inc: Incident, rule: Rule, ch: Change, now: float, history: list[History],
                          outbox: list[Outgoing]) -> Incident:
        """A cycle of a flapping series ends: the incident stays open; the first such end announces it flaps."""
        first = inc.flapping is None
        inc = dataclasses.replace(inc, flapping=inc.flapping or now, value=ch.value, summary=ch.summary)
        self._flap_last[inc.fingerprint] = now
        history.append(History(inc.id, now, "cleared", {"value": ch.value, "flapping": True}))
        if first:
            cycles = len(self._cycles.get(inc.fingerprint, ()))
            history.append(History(inc.id, now, "flapping", {"cycles": cycles, "window": rule.cfg.flap_window}))
            log.info("incident %d is flapping: %d cycles within %.0fs", inc.id, cycles, rule.cfg.flap_window)
            self.counters.inc("incidents.flapping")
            outbox += self._announce(inc, "flapping", now)
        return inc

    async def settle(self, rules: Mapping[str, Rule], now: float) -> list[tuple[str, Incident]]:
        """End flapping that has been stable for its window; returns the ("resolved", incident) it caused."""
        for fp, cycles in list(self._cycles.items()):  # forget cycles no window still counts
            if fp not in self.open and (not cycles or cycles[-1] < now - FLAP_WINDOW_MAX):
                del self._cycles[fp]
        flapping = [i for i in self.open.values() if i.flapping is not None]
        if not flapping:
            return []
        async with self._lock:
            events: list[tuple[str, Incident]] = []
            for inc in flapping:
                rule = rules.get(inc.rule)
                last = self._flap_last.setdefault(inc.fingerprint, now)  # after a restart: a whole window from now
                if rule is None or now - last < rule.cfg.flap_window or self.open.get(inc.fingerprint) is not inc:
                    continue
                resolved = await self._stable(inc, rule, now)
                events += [("resolved", resolved)] if resolved is not None else []
            return events

    async def _stable(self, flapping: Incident, rule: Rule, now: float) -> Incident | None:
        """No change for a whole window: still firing is announced as `stable`; clear resolves (returned)."""
        del self._flap_last[flapping.fingerprint]
        self._cycles.pop(flapping.fingerprint, None)
        window = rule.cfg.flap_window
        if rule.firing({n: flapping.labels.get(n, "") for n in rule.series_names}):
            inc = dataclasses.replace(flapping, flapping=None)
            self.open[inc.fingerprint] = inc
            outbox = self._announce(inc, "stable", now)
            await self._commit([inc], [History(inc.id, now, "stable", {"firing": True, "for": window})], outbox,
                               now=now)
            self._wake(outbox)
            return None
        inc = dataclasses.replace(flapping, state="resolved", resolved=now, flapping=None)
        del self.open[inc.fingerprint]
        if inc.notified == "firing":
            self.unsent_resolved[inc.id] = inc
            self._next_flush.setdefault(self.group_key(inc), now)
        self.counters.inc("incidents.resolved")
        await self._commit([inc], [History(inc.id, now, "resolved", {"by": "rule", "stable_for": window})], now=now)
        return inc

    def _fire(self, rule: Rule, fp: str, ch: Change, now: float, history: list[History],
              events: list[tuple[str, Incident]]) -> Incident:
        """A new incident; behind a parent that is down, it is recorded, not notified, and runs no actions."""
        inc = self._new(rule, fp, ch)
        self._next_flush.setdefault(self.group_key(inc), now + self.cfg.group_wait)
        history.append(History(inc.id, now, "fired", {"value": ch.value, "summary": ch.summary}))
        if parent := self.topology.down_parent(inc, now):
            inc = dataclasses.replace(inc, suppressed=parent)
            history.append(History(inc.id, now, "suppressed", {"parent": parent}))
        else:
            events.append(("firing", inc))
        return inc

    def _refuse(self, rule: str) -> None:
        """A series fired past its rule's cap: counted, not recorded; it gets an incident if it fires anew
        once the rule has room."""
        self.counters.inc("incidents.over_limit")
        if rule not in self._over_limit:
            self._over_limit.add(rule)
            log.warning("alerts: rule %s has %d open incidents (max_incidents_per_rule): more are counted in"
                        " incidents.over_limit, not recorded", rule, self.cfg.max_incidents_per_rule)

    async def _commit(self, incidents: Sequence[Incident], history: Sequence[History] = (),
                      outbox: Sequence[Outgoing] = (), *, now: float) -> None:
        dropped = await self.store.commit(incidents, history, outbox, now=now, outbox_max=self.cfg.outbox_max)
        for channel, n in dropped.items():
            self.counters.inc(f"outbox.dropped.{channel}", n)
        if dropped and not self._dropping:
            log.warning("alerts: outbox full (outbox_max = %d per channel): dropping the oldest notifications of %s",
                        self.cfg.outbox_max, ", ".join(dropped))
        self._dropping = bool(dropped)

    def _new(self, rule: Rule, fp: str, ch: Change) -> Incident:
        labels = {"rule": rule.name, "severity": rule.cfg.severity, **rule.cfg.labels, **ch.labels}
        inc = Incident(
            id=self.next_id, fingerprint=fp, rule=rule.name, kind=rule.kind, state="firing",
            severity=rule.cfg.severity, labels=labels, summary=ch.summary, started=ch.ts, last_seen=ch.ts,
            count=ch.count, value=ch.value, lines=ch.lines,
        )
        self.next_id += 1
        self.counters.inc("incidents.fired")
        log.info("incident %d fired: %s: %s", inc.id, rule.name, ch.summary)
        return inc

    def find(self, iid: int) -> Incident | None:
        return next((i for i in self.open.values() if i.id == iid), None)

    async def acknowledge(self, iid: int, comment: str, now: float) -> Incident:
        """Stop repeats; announced at once on channels that carry state (MQTT), not grouped."""
        async with self._lock:
            inc = self.find(iid)
            if inc is None:
                raise await self._why_not_open(iid, "acknowledge")
            if inc.state == "acknowledged":
                return inc
            inc = dataclasses.replace(inc, state="acknowledged", acknowledged=now, comment=comment or inc.comment)
            self.open[inc.fingerprint] = inc
            batch = Batch(self._group_labels(inc), (("acknowledged", inc),), (), now)
            outbox = [o for ch in self.channels for o in ch.render(batch)] if not self.silenced(inc, now) else []
            await self._commit([inc], [History(iid, now, "acknowledged", {"comment": comment})], outbox, now=now)
            self._wake(outbox)
            log.info("incident %d acknowledged", iid)
            return inc

    async def resolve(self, iid: int, comment: str, now: float, by: str = "hand") -> Incident:
        """Resolve by hand (the caller lets the rule fire anew); notified like an automatic resolution."""
        async with self._lock:
            inc = self.find(iid)
            if inc is None:
                raise await self._why_not_open(iid, "resolve")
            inc = dataclasses.replace(inc, state="resolved", resolved=now, comment=comment or inc.comment)
            del self.open[inc.fingerprint]
            if inc.notified == "firing":
                self.unsent_resolved[inc.id] = inc
                self._next_flush.setdefault(self.group_key(inc), now + self.cfg.group_wait)
            await self._commit([inc], [History(iid, now, "resolved", {"by": by, "comment": comment})],
                                    now=now)
            self.counters.inc("incidents.resolved")
            log.info("incident %d resolved by %s", iid, by)
            return inc

    def _current(self, iid: int) -> Incident | None:
        return self.find(iid) or self.unsent_resolved.get(iid)

    def _put(self, inc: Incident) -> None:
        if inc.open:
            self.open[inc.fingerprint] = inc
        elif inc.id in self.unsent_resolved:
            self.unsent_resolved[inc.id] = inc

    async def record_step(self, iid: int, step: Mapping[str, object], event: str, detail: Mapping[str, object],
                          now: float) -> Incident | None:
        """Put a corrective step's new state on the incident (replacing the record of the same run), with its
        history entry, in one transaction; works on a resolved incident too (its step is still decided)."""
        async with self._lock:
            inc = self._current(iid) or await self.store.incident(iid)
            if inc is None:
                return None
            inc = _with_step(inc, step)
            self._put(inc)
            await self._commit([inc], [History(iid, now, event, detail)], now=now)
            return inc

    def note_step(self, iid: int, step: Mapping[str, object]) -> None:
        """Put a step on the live incident now, without waiting for the lock, so that a notification queued
        before `record_step` commits it already shows the step."""
        inc = self._current(iid)
        if inc is not None:
            self._put(_with_step(inc, step))

    async def escalate(self, iid: int, severity: str, now: float) -> Incident | None:
        """The last step failed: raise the severity and say so at once (not grouped), with the steps and their
        outcomes; silenced or suppressed incidents are escalated without a notification."""
        async with self._lock:
            inc = self.find(iid)
            if inc is None:
                return None
            labels = {**inc.labels, "severity": severity}
            inc = dataclasses.replace(inc, severity=severity, escalated=now, labels=labels)
            for seen in self._muted.values():  # its labels changed: silences match it anew
                seen.pop(iid, None)
            self.open[inc.fingerprint] = inc
            outbox = self._announce(inc, "escalated", now)
            steps = [f"step {s['step']} attempt {s['attempt']}: {s['outcome']}" for s in inc.steps]
            await self._commit([inc], [History(iid, now, "escalated", {"severity": severity, "steps": steps})],
                               outbox, now=now)
            self._wake(outbox)
            log.warning("incident %d escalated to %s: every corrective step failed", iid, severity)
            return inc

    def _announce(self, inc: Incident, event: str, now: float) -> list[Outgoing]:
        """A notification of one incident's change, now and not grouped; none for a silenced or suppressed one."""
        if self.silenced(inc, now) is not None or inc.suppressed:
            return []
        key = self.group_key(inc)
        active = tuple(i for i in self.open.values() if self.group_key(i) == key and self.silenced(i, now) is None
                       and not i.suppressed)
        batch = Batch(self._group_labels(inc), ((event, inc),), active, now)
        return [o for ch in self.channels for o in ch.render(batch)]

    async def _why_not_open(self, iid: int, verb: str) -> MepdError:
        stored = await self.store.incident(iid)
        if stored is None:
            return NotFoundError(f"no incident {iid}")
        return StateError(f"cannot {verb} incident {iid}: it is {stored.state}")

    def _group_labels(self, inc: Incident) -> dict[str, str]:
        return dict(zip(self.cfg.group_by, self.group_key(inc), strict=True))

    async def flush(self, now: float) -> int:
        """Queue the notifications that are due; returns how many batches went to the outbox."""
        async with self._lock:
            history: list[History] = []
            updated: list[Incident] = self._suppress(now, history)
            groups: defaultdict[GroupKey, list[Incident]] = defaultdict(list)
            for inc in (*self.open.values(), *self.unsent_resolved.values()):
                groups[self.group_key(inc)].append(inc)
            for key in set(self._next_flush) - set(groups):
                del self._next_flush[key]
            children = suppressed_children(self.topology, self.open)
            outbox: list[Outgoing] = []
            batches = 0
            for key, incs in groups.items():
                batch = self._due(key, incs, now)
                if batch is None:
                    continue
                if children:
                    owned = {i.id: self.topology.owner(i) for _, i in batch.changed}
                    batch = dataclasses.replace(batch, children={
                        iid: tuple(children[p]) for iid, p in owned.items() if p in children})
                batches += 1
                outbox += [o for ch in self.channels for o in ch.render(batch)]
                updated += self._mark_sent(batch)
                self._last_flush[key] = now
            await self._commit(list({i.id: i for i in updated}.values()), history, outbox, now=now)
            self._wake(outbox)
            return batches

    def _suppress(self, now: float, history: list[History]) -> list[Incident]:
        """Suppress what fired, unnotified yet, behind a parent that is down now; release what is suppressed
        once all its parents are up (it is notified then, after group_wait, if still firing).  An incident
        notified before its parent failed is left alone, so its resolution is notified too."""
        if not self.topology.active:
            return []
        changed = []
        for inc in list(self.open.values()):
            if inc.suppressed is None and inc.notified is None:
                parent = self.topology.down_parent(inc, now)
                if parent is None:
                    continue
                new = dataclasses.replace(inc, suppressed=parent)
                history.append(History(inc.id, now, "suppressed", {"parent": parent}))
            elif inc.suppressed is not None and self.topology.all_up(inc, now):
                new = dataclasses.replace(inc, suppressed=None)
                history.append(History(inc.id, now, "unsuppressed", {"parent": inc.suppressed}))
                self._next_flush.setdefault(self.group_key(inc), now + self.cfg.group_wait)
            else:
                continue
            self.open[inc.fingerprint] = new
            changed.append(new)
        return changed

    def _due(self, key: GroupKey, incs: list[Incident], now: float) -> Batch | None:
        visible = [i for i in incs if self.silenced(i, now) is None and not i.suppressed]
        for inc in incs:
            if inc.state == "resolved" and inc not in visible:
                del self.unsent_resolved[inc.id]
        changed = [("resolved" if i.state == "resolved" else "firing", i) for i in visible
                   if i.state == "resolved" or (i.state == "firing" and i.notified != "firing")]
        if changed:
            due = self._next_flush.setdefault(key, now + self.cfg.group_wait)
            if now < due:
                return None
            del self._next_flush[key]
        else:
            last = self._last_flush.get(key)
            repeat = [i for i in visible if i.state == "firing" and i.flapping is None]
            if not repeat or last is None or now - last < self.cfg.repeat_interval:
                return None
            changed = [("repeat", i) for i in repeat]
        active = tuple(i for i in visible if i.open)
        group = dict(zip(self.cfg.group_by, key, strict=True))
        return Batch(group, tuple(changed), active, now)

    def _mark_sent(self, batch: Batch) -> list[Incident]:
        out = []
        for event, inc in batch.changed:
            if event == "resolved":
                del self.unsent_resolved[inc.id]
                out.append(dataclasses.replace(inc, notified="resolved", notified_at=batch.now))
            else:
                new = dataclasses.replace(inc, notified="firing", notified_at=batch.now)
                self.open[inc.fingerprint] = new
                out.append(new)
        self.counters.inc("notifications.queued", len(batch.changed))
        return out

    def _wake(self, outbox: Sequence[Outgoing]) -> None:
        names = {o.channel for o in outbox}
        for ch in self.channels:
            if ch.name in names:
                ch.wake()

    async def add_silence(self, matchers: Sequence[Matcher], duration: float, comment: str, now: float) -> Silence:
        if not 0 < duration <= SILENCE_MAX:
            raise ValueError("a silence lasts more than 0s and at most 30d")
        silence = await self.store.add_silence(matchers, now, now + duration, comment, now)
        self.silences[silence.id] = silence
        log.info("silence %d: %s until %s", silence.id, silence.to_json()["matchers"], silence.to_json()["ends"])
        return silence

    async def expire_silence(self, sid: int, now: float) -> Silence:
        silence = self.silences.get(sid)
        if silence is None:
            raise NotFoundError(f"no silence {sid}")
        await self.store.expire_silence(sid, now)
        silence = dataclasses.replace(silence, ends=min(silence.ends, now))
        self.silences[sid] = silence
        self._muted.pop(sid, None)
        return silence

    def active_silences(self, now: float, *, include_expired: bool = False) -> list[Silence]:
        return [s for s in self.silences.values() if include_expired or s.active(now)]

    def forget_silences(self, before: float) -> None:
        for sid in [s.id for s in self.silences.values() if s.ends < before]:
            del self.silences[sid]
            self._muted.pop(sid, None)
