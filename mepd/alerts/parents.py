"""Parents: what an incident sits behind, and whether that is down, for suppression.

A parent is an SNMP target (`depends_on = ["core-sw1"]` on a target) or a
metric that says the path is up (`parent = "snmp.core-sw1.ge-0_0_1.oper_up"`
on a target or a rule).  A target parent is down when none of its samples
arrived for twice its interval plus its time to give up on a request (it is
unreachable: the poller sends nothing then); a metric parent is down at 0.
Before the first news of a parent (just after a start) its state is unknown,
which neither suppresses nor releases anything.

An incident belongs to the target its metric key names (`snmp.<target>.…`):
that is how a target's children, and a parent's own incident, are found.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from mepd.config import AlertRuleConfig, SnmpTargetConfig
from mepd.model import Incident, Sample

PREFIX: Final = "snmp."


@dataclass(frozen=True, slots=True)
class Parent:
    """`name` is how notifications show it: the target's name, or the metric key."""

    name: str
    target: bool


def target_of(inc: Incident) -> str | None:
    key = inc.labels.get("key", "")
    if not key.startswith(PREFIX):
        return None
    return key[len(PREFIX):].split(".", 1)[0]


class Topology:
    """Fed with every sample, before the rules see it; asked by the incidents at each change and flush."""

    def __init__(self) -> None:
        self.children: dict[str, tuple[Parent, ...]] = {}  # child target -> its parents
        self.rule_parents: dict[str, Parent] = {}  # rule -> the metric its series sit behind
        self.stale_after: dict[str, float] = {}  # parent target -> silence after which it is down
        self.last_seen: dict[str, float] = {}  # parent target -> arrival of its newest sample
        self.values: dict[str, float] = {}  # parent metric -> its newest value
        self.started = math.inf  # no parent target is down before start()
        self.up_since: dict[str, float] = {}  # parent target -> when it answered again
        self._metrics: set[str] = set()

    def configure(self, targets: Sequence[SnmpTargetConfig], rules: Sequence[AlertRuleConfig]) -> None:
        by_name = {t.name: t for t in targets}
        self.children = {}
        for t in targets:
            parents = [Parent(p, target=True) for p in t.depends_on if p in by_name]
            parents += [Parent(t.parent, target=False)] if t.parent else []
            if parents:
                self.children[t.name] = tuple(parents)
        self.rule_parents = {r.name: Parent(r.parent, target=False) for r in rules if r.parent}
        parents = [p for ps in (*self.children.values(), tuple(self.rule_parents.values())) for p in ps]
        self.stale_after = {p.name: 2 * by_name[p.name].interval + by_name[p.name].timeout
                            * (by_name[p.name].retries + 1) for p in parents if p.target}
        self._metrics = {p.name for p in parents if not p.target}
        self.last_seen = {k: v for k, v in self.last_seen.items() if k in self.stale_after}
        self.up_since = {k: v for k, v in self.up_since.items() if k in self.stale_after}
        self.values = {k: v for k, v in self.values.items() if k in self._metrics}

    @property
    def active(self) -> bool:
        return bool(self.stale_after or self._metrics)

    def observe(self, sample: Sample, now: float) -> None:
        key = sample.key
        if key in self._metrics and sample.value is not None:
            self.values[key] = sample.value
        if key.startswith(PREFIX) and self.stale_after:
            target = key[len(PREFIX):].split(".", 1)[0]
            if target in self.stale_after:
                if self.down(Parent(target, target=True), now) is not False:
                    self.up_since[target] = now
                self.last_seen[target] = now

    def start(self, now: float) -> None:
        """From a (re)start: a parent target that sends nothing is down once its silence is long enough."""
        self.started = now

    def down(self, p: Parent, now: float) -> bool | None:
        """True, False, or None (not known yet)."""
        if p.target:
            last = self.last_seen.get(p.name, math.nan)
            if math.isnan(last):
                return True if now - self.started > self.stale_after[p.name] else None
            return now - last > self.stale_after[p.name]
        value = self.values.get(p.name)
        return None if value is None else value <= 0

    def parents(self, inc: Incident) -> tuple[Parent, ...]:
        target = target_of(inc)
        own = self.children.get(target, ()) if target is not None else ()
        rule = self.rule_parents.get(inc.rule)
        return (*own, rule) if rule is not None else own

    def down_parent(self, inc: Incident, now: float) -> str | None:
        """The name of a parent of the incident that is down now, if any."""
        return next((p.name for p in self.parents(inc) if self.down(p, now)), None)

    def all_up(self, inc: Incident, now: float) -> bool:
        """Every parent is known to be up (an unknown one keeps a suppression); a target back for less than
        its silence (two polls) may not have heard from the children behind it yet."""
        return all(self.down(p, now) is False and (not p.target or now - self.up_since.get(p.name, -math.inf)
                                                   >= self.stale_after[p.name]) for p in self.parents(inc))

    def owner(self, inc: Incident) -> str | None:
        """The parent this incident is the own incident of: its target, or its metric key."""
        target = target_of(inc)
        if target is not None and target in self.stale_after:
            return target
        key = inc.labels.get("key", "")
        return key if key in self._metrics else None

    @staticmethod
    def child_name(inc: Incident) -> str:
        return target_of(inc) or inc.labels.get("key") or inc.rule


def suppressed_children(topology: Topology, incidents: Mapping[str, Incident]) -> dict[str, list[str]]:
    """Parent name -> the names of the open incidents suppressed behind it."""
    out: dict[str, list[str]] = {}
    for inc in incidents.values():
        if inc.suppressed:
            out.setdefault(inc.suppressed, []).append(topology.child_name(inc))
    return {k: sorted(set(v)) for k, v in out.items()}
