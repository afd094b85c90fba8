"""The alert engine: one component that feeds samples and log records to the rules.

It consumes its own subscriptions of `pipeline.samples` and `pipeline.logs`,
ticks time-based rules (windows, absence) every `evaluation_interval`, turns
rule changes into incidents, queues notifications and starts actions.  The
notification channels run as child tasks: a broker or receiver outage makes
them retry, never fail the engine.

`observe` takes what a device's own log states of a metric before any poll
reads it (a link-down line: the interface's `oper_up` is 0): the metric
rules on that key act on it at once, so a rule on `oper_up` opens its one
incident whichever comes first, the line or the poll (mepd.alerts.rules,
claims).  It only queues: the caller (mepd.analysis.devicelogs) never waits
on the incident store.

On start and on reload, incidents still open in the store are handed back to
their rules, so a restart or a rule edit never loses or duplicates them; an
open incident whose rule is gone, or no longer splits series the same way, is
resolved with a note saying why.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from mepd.alerts import rules as rules_mod
from mepd.alerts.actions import HOUR, ActionRunner
from mepd.alerts.incidents import Incidents, NotFoundError, StateError
from mepd.alerts.notify.mqtt import MqttChannel
from mepd.alerts.notify.webhook import WebhookChannel
from mepd.alerts.parents import Topology
from mepd.alerts.rules import Change, Rule
from mepd.alerts.steps import Steps, summary
from mepd.alerts.store import History, IncidentStore, Silence
from mepd.config import AlertConfig, AlertNotifyConfig, AlertRuleConfig, Config, SnmpTargetConfig
from mepd.config.syntax import parse_matchers
from mepd.errors import MepdError
from mepd.model import Incident, LogRecord, Sample
from mepd.pipeline import Counters, Pipeline, Subscription

log = logging.getLogger(__name__)
T = TypeVar("T")

BATCH: Final = 1000
LINGER: Final = 0.05
PRUNE_INTERVAL: Final = 3600.0
CLAIMS_MAX: Final = 10_000  # claims waiting for the engine (link lines are rare; a storm past this is counted)


@dataclass(frozen=True, slots=True)
class Observation:
    """A metric's value as a device's own `source` stated it at `ts` (see AlertEngine.observe)."""

    key: str
    ts: float
    value: float
    source: str
    line: str

__all__ = ["AlertEngine", "NotFoundError", "NotRunningError", "StateError", "create"]


class NotRunningError(MepdError):
    """The engine is starting, restarting or failed: incidents cannot be queried now."""


class AlertEngine:
    name = "alerts"

    def __init__(
        self, cfg: AlertConfig, state_dir: str, samples: Subscription[Sample] | None,
        logs: Subscription[LogRecord] | None, *, host: str | None = None, clock: Callable[[], float] = time.time,
        targets: Sequence[SnmpTargetConfig] = (),
    ) -> None:
        self.cfg = cfg
        self.path = cfg.db if os.path.isabs(cfg.db) else os.path.join(state_dir, cfg.db)
        self.samples = samples
        self.logs = logs
        self.host = host or socket.gethostname()
        self.clock = clock
        self.counters = Counters()
        self.rules: dict[str, Rule] = {}
        self.channels: list[MqttChannel | WebhookChannel] = []
        self._incidents: Incidents | None = None
        self._store: IncidentStore | None = None
        self._actions: ActionRunner | None = None
        self._steps: Steps | None = None
        self._channel_tasks: list[asyncio.Task[None]] = []
        self._tg: asyncio.TaskGroup | None = None
        self._last_received = -math.inf  # arrival time of the newest log line read
        self.targets = tuple(targets)
        self.topology = Topology()
        self._claims: asyncio.Queue[Observation] = asyncio.Queue(CLAIMS_MAX)
        self.counters.declare("claims", "claims.dropped")

    # -- running ---------------------------------------------------------------------------------------------

    async def run(self, started: Callable[[], None]) -> None:
        now = self.clock()
        store = IncidentStore(self.path)
        loaded = await store.open(now - HOUR)
        try:
            incidents = Incidents(store, self.cfg, self.counters)
            incidents.load(loaded.incidents, loaded.next_id, loaded.silences)
            self.topology.configure(self.targets, self.cfg.rule)
            self.topology.start(now)
            incidents.topology = self.topology
            actions = ActionRunner(self.host, self.counters, self._record)
            actions.load_runs(loaded.action_runs)
            steps = Steps(incidents, actions, self._rule_cfg, self.clock)
            self._store, self._incidents, self._actions, self._steps = store, incidents, actions, steps
            await self._set_rules(self.cfg, now)
            await self._retry(steps.load, loaded.incidents, now)
            log.info("alerts: %d rules, %d open incidents, %d silences", len(self.rules), len(incidents.open),
                     len(incidents.silences))
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                self._start_channels(self.cfg.notify)
                if self.samples is not None:
                    tg.create_task(self._consume(self.samples, "samples", _observe_sample))
                if self.logs is not None:
                    tg.create_task(self._consume(self.logs, "logs", self._observe_log))
                tg.create_task(self._consume_claims())
                tg.create_task(self._ticker())
                started()
        finally:
            self._tg = None
            self._incidents = None
            self._steps = None
            self._channel_tasks = []
            if self._actions is not None:
                await self._actions.close()
            await store.close()

    def _start_channels(self, notify: AlertNotifyConfig) -> None:
        assert self._tg is not None
        assert self._store is not None
        assert self._incidents is not None
        for task in self._channel_tasks:
            task.cancel()
        channels: list[MqttChannel | WebhookChannel] = []
        if notify.mqtt is not None:
            channels.append(MqttChannel(notify.mqtt, self._store, self.host, self.counters))
        if notify.webhook is not None:
            channels.append(WebhookChannel(notify.webhook, self._store, self.host, self.counters))
        self.channels = channels
        self.counters.declare(*(f"outbox.dropped.{ch.name}" for ch in channels))
        self._incidents.channels = channels
        self._channel_tasks = [self._tg.create_task(ch.run(), name=f"alerts/{ch.name}") for ch in channels]

    async def _consume(self, sub: Subscription[T], what: str,
                       observe: Callable[[Rule, T, float], list[Change]]) -> None:
        while True:
            batch = await sub.get_batch(BATCH, LINGER)
            now = self.clock()
            if what == "samples" and self.topology.active:
                for item in batch:
                    if isinstance(item, Sample):
                        self.topology.observe(item, now)
            wanted = [r for r in self.rules.values() if (r.wants_samples if what == "samples" else r.wants_logs)]
            # No rule wants this channel (no log rules): the batch is only counted, not walked.
            changes = [c for item in batch for rule in wanted for c in observe(rule, item, now)] if wanted else []
            await self._apply(changes, now)
            sub.done(len(batch))
            self.counters.inc(what, len(batch))

    def observe(self, key: str, ts: float, value: float, *, source: str = "log", line: str = "") -> None:
        """Queue a value of metric `key` that a device's own `source` stated at `ts` (arrival time), with the
        `line` that said it; queued while the engine restarts, counted in `claims.dropped` past CLAIMS_MAX."""
        try:
            self._claims.put_nowait(Observation(key, ts, value, source, line))
        except asyncio.QueueFull:
            self.counters.inc("claims.dropped")

    async def _consume_claims(self) -> None:
        while True:
            batch = [await self._claims.get()]
            while not self._claims.empty() and len(batch) < BATCH:
                batch.append(self._claims.get_nowait())
            wanted = [r for r in self.rules.values() if r.wants_samples]
            changes = [c for o in batch for rule in wanted
                       for c in rule.observe_claim(o.key, o.ts, o.value, o.source, o.line)]
            await self._apply(changes, self.clock())
            self.counters.inc("claims", len(batch))

    def _observe_log(self, rule: Rule, record: LogRecord, now: float) -> list[Change]:
        self._last_received = max(self._last_received, record.received)
        return rule.observe_log(record, now)

    def _log_clock(self, now: float) -> float:
        """Log rules run on arrival time: while lines wait to be read (the engine is behind), their windows
        and absences stand at the last line read, so they neither expire nor go silent before it reads on."""
        if self.logs is None or not self.logs.pending:
            return now
        return min(now, self._last_received)

    async def _ticker(self) -> None:
        last_prune = 0.0
        while True:
            now = self.clock()
            log_now = self._log_clock(now)
            await self._apply([c for rule in list(self.rules.values())
                               for c in rule.tick(log_now if rule.wants_logs else now)], now)
            await self._act(await self._retry(self.incidents.settle, self.rules, now), now)
            await self._retry(self.steps.tick, now)
            await self._retry(self.incidents.flush, now)
            if now - last_prune >= PRUNE_INTERVAL:
                last_prune = now
                removed = await self._retry(self.store.prune, now - self.cfg.retention)
                self.incidents.forget_silences(now - self.cfg.retention)
                if removed:
                    log.info("alerts: forgot %d incidents resolved more than %.0f days ago", removed,
                             self.cfg.retention / 86400)
            await asyncio.sleep(self.cfg.evaluation_interval)

    async def _apply(self, changes: Sequence[Change], now: float) -> None:
        if not changes:
            return
        events = await self._retry(self.incidents.apply, changes, self.rules, now)
        await self._act(events, now)
        if events and self.cfg.group_wait <= 0:
            await self._retry(self.incidents.flush, now)

    async def _act(self, events: Sequence[tuple[str, Incident]], now: float) -> None:
        """Start the actions (or verified steps) that incidents firing or resolving call for."""
        for event, inc in events:
            rule = self.rules.get(inc.rule)
            if rule is None or not rule.cfg.action:
                continue
            if not rule.cfg.steps:
                self.actions.trigger(inc, event, rule.cfg.action, now)
            elif event == "firing":
                await self._retry(self.steps.fired, inc, rule.cfg, now)
            elif event in ("resolved", "cleared"):
                await self._retry(self.steps.cleared, inc.id, now)

    async def _retry(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Disk errors (full, locked) are retried, never dropped: the pipeline waits meanwhile."""
        delay = 0.1
        while True:
            try:
                return await fn(*args)
            except sqlite3.Error as e:
                self.counters.inc("store_errors")
                log.warning("alerts: incident store error, retrying in %.1fs: %s", delay, e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _record(self, inc: Incident, event: str, detail: dict[str, object]) -> None:
        await self._retry(self.store.add_history, [History(inc.id, self.clock(), event, detail)])

    # -- rules and reload ------------------------------------------------------------------------------------

    async def _set_rules(self, cfg: AlertConfig, now: float) -> None:
        new = {rc.name: rules_mod.build(rc, now, self.counters) for rc in cfg.rule}
        if any(rc.distinct for rc in cfg.rule):
            self.counters.declare("distinct.forgotten")
        for name, rule in new.items():
            if name in self.rules:
                rule.adopt(self.rules[name])
        self.rules = new
        for inc in list(self.incidents.open.values()):
            why = self._reattach(inc)
            if why is not None:
                log.info("alerts: resolving incident %d: %s", inc.id, why)
                await self._retry(self.incidents.resolve, inc.id, why, now, "reload")
                await self._retry(self.steps.cancel, inc.id, now)

    def _reattach(self, inc: Incident) -> str | None:
        """Give an open incident back to its rule; or say why it no longer belongs to one."""
        rule = self.rules.get(inc.rule)
        if rule is None:
            return f"rule {inc.rule!r} is no longer configured"
        series = {n: inc.labels.get(n, "") for n in rule.series_names}
        if rules_mod.fingerprint(rule.name, series) != inc.fingerprint or rule.kind != inc.kind:
            return f"rule {inc.rule!r} changed how it tells incidents apart"
        if not rule.firing(series):
            rule.restore(series, inc.last_seen)
        return None

    async def reload(self, cfg: AlertConfig, targets: Sequence[SnmpTargetConfig] | None = None) -> None:
        """New rules keep the state of same-named old ones; open incidents stay open."""
        if targets is not None and tuple(targets) != self.targets:
            self.targets = tuple(targets)
            self.topology.configure(self.targets, cfg.rule)
        if cfg == self.cfg:
            return
        if cfg.db != self.cfg.db:
            log.warning("reload: alert.db changes take effect at the next restart")
        old = self.cfg
        self.cfg = cfg
        if self._incidents is None:
            return
        self._incidents.cfg = cfg
        self.topology.configure(self.targets, cfg.rule)
        await self._set_rules(cfg, self.clock())
        if cfg.notify != old.notify and self._tg is not None:
            self._start_channels(cfg.notify)
        log.info("alerts: reloaded, %d rules", len(self.rules))

    # -- what the API calls ----------------------------------------------------------------------------------

    @property
    def incidents(self) -> Incidents:
        if self._incidents is None:
            raise NotRunningError("the alert engine is not running (see mepctl status)")
        return self._incidents

    @property
    def store(self) -> IncidentStore:
        if self._store is None or self._incidents is None:
            raise NotRunningError("the alert engine is not running (see mepctl status)")
        return self._store

    @property
    def actions(self) -> ActionRunner:
        assert self._actions is not None
        return self._actions

    @property
    def steps(self) -> Steps:
        assert self._steps is not None
        return self._steps

    def _rule_cfg(self, name: str) -> AlertRuleConfig | None:
        rule = self.rules.get(name)
        return rule.cfg if rule is not None else None

    async def list_incidents(self, *, include_resolved: bool = False, limit: int = 1000) -> list[Incident]:
        return await self.store.incidents(include_resolved=include_resolved, limit=limit)

    async def show(self, iid: int) -> tuple[Incident, list[dict[str, object]]]:
        inc = await self.store.incident(iid)
        if inc is None:
            raise NotFoundError(f"no incident {iid}")
        return inc, await self.store.history(iid)

    async def action_stats(self) -> list[dict[str, object]]:
        """Per rule and verified step: runs, verified, failed, median time to clear."""
        return summary(await self.store.step_outcomes())

    async def acknowledge(self, iid: int, comment: str = "") -> Incident:
        return await self.incidents.acknowledge(iid, comment, self.clock())

    async def resolve(self, iid: int, comment: str = "") -> Incident:
        now = self.clock()
        inc = await self.incidents.resolve(iid, comment, now)
        await self.steps.cancel(iid, now)
        rule = self.rules.get(inc.rule)
        if rule is not None:
            rule.release({n: inc.labels.get(n, "") for n in rule.series_names})
        return inc

    async def silence(self, matchers: str, duration: float, comment: str = "") -> Silence:
        return await self.incidents.add_silence(parse_matchers(matchers), duration, comment, self.clock())

    def silences(self, *, include_expired: bool = False) -> list[Silence]:
        return self.incidents.active_silences(self.clock(), include_expired=include_expired)

    async def unsilence(self, sid: int) -> Silence:
        return await self.incidents.expire_silence(sid, self.clock())


def _observe_sample(rule: Rule, sample: Sample, now: float) -> list[Change]:
    return rule.observe_sample(sample, now)


def create(cfg: Config, pipeline: Pipeline) -> AlertEngine:
    """Subscribe to both channels now, before any source runs, so nothing reaches the rules late."""
    samples = pipeline.samples.subscribe("alerts", cfg.daemon.queue_size)
    logs = pipeline.logs.subscribe("alerts", cfg.daemon.queue_size)
    return AlertEngine(cfg.alert, cfg.daemon.state_dir, samples, logs, targets=cfg.snmp.target)
