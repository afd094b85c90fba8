"""Verified corrective steps: run an action, watch whether the incident clears, escalate when none works.

A rule whose actions have `verify` tries them as steps, in order.  A step's
record on the incident goes `running` (committed before its program starts),
then `verifying` once the program exited with status 0, then `verified` (the
incident cleared within `verify` of the exit) or `failed` (it did not, or the
program failed or timed out).  A failed step runs again up to its `attempts`,
then the next step runs; when the last one failed, the incident escalates.
A step still undecided when the incident is resolved by hand is `cancelled`.

Each state is on the incident in the store before the next thing happens, so
a restart decides what was pending: a verification goes on to its original
deadline (or is decided by when the incident resolved); a step that was
running when mepd stopped was killed with it, so it is failed (interrupted)
and the next one runs.  None runs twice, none is lost.
"""

from __future__ import annotations

import logging
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from mepd.alerts.actions import ActionRunner, action_key, environment, run_action
from mepd.alerts.incidents import Incidents
from mepd.config import AlertActionConfig, AlertRuleConfig
from mepd.model import Incident, rfc3339

log = logging.getLogger(__name__)

STEP_OUTPUT: Final = 4096  # of a step's output on the incident (and in notifications); history keeps 64 KiB
SEVERITY_UP: Final = {"info": "warning", "warning": "critical", "critical": "critical"}
UNDECIDED: Final = ("running", "verifying")

RuleOf = Callable[[str], AlertRuleConfig | None]


@dataclass(slots=True)
class _Run:
    """The step an incident is at; `record` is its entry in the incident's `steps`."""

    iid: int
    rule: str
    index: int
    attempt: int
    record: dict[str, object]
    exited: float | None = None
    deadline: float | None = None  # verifying until then
    cleared: float | None = None  # the incident cleared while the program ran


def _epoch(value: object) -> float:
    return datetime.fromisoformat(str(value)).timestamp()


class Steps:
    """The incidents whose steps are running or verifying, and what happens when each is decided."""

    def __init__(self, incidents: Incidents, runner: ActionRunner, rule_of: RuleOf,
                 clock: Callable[[], float]) -> None:
        self.incidents = incidents
        self.runner = runner
        self.rule_of = rule_of
        self.clock = clock
        self.runs: dict[int, _Run] = {}
        runner.counters.declare("steps.verified", "steps.failed", "steps.escalated")

    async def fired(self, inc: Incident, cfg: AlertRuleConfig, now: float) -> None:
        """A new incident: step 1, within its cooldown and cap per hour like any action."""
        if inc.id in self.runs:
            return
        if self.runner.allowed(inc, "firing", cfg.action[0], action_key(inc, 0), now):
            await self._start(inc, cfg, 0, 1, now)

    async def _start(self, inc: Incident, cfg: AlertRuleConfig, index: int, attempt: int, now: float) -> None:
        """The step is `running` on the incident (and in the store) before its program starts."""
        action = cfg.action[index]
        record: dict[str, object] = {"step": index + 1, "attempt": attempt, "argv": list(action.argv),
                                     "started": rfc3339(now), "outcome": "running"}
        run = self.runs[inc.id] = _Run(inc.id, cfg.name, index, attempt, record)
        what = {"step": index + 1, "attempt": attempt, "argv": list(action.argv)}
        self.incidents.note_step(run.iid, dict(record))  # the firing notification, if queued first, shows it
        await self.incidents.record_step(run.iid, dict(record), "step_started", what, now)
        self.runner.spawn(self._execute(run, inc, action, what))

    async def _execute(self, run: _Run, inc: Incident, action: AlertActionConfig, what: dict[str, object]) -> None:
        log.info("incident %d: step %d (attempt %d): running %s", run.iid, run.index + 1, run.attempt,
                 " ".join(action.argv))
        result = await run_action(action.argv, environment(inc, "firing", self.runner.host), action.timeout,
                                  action.kill_grace)
        exited = self.clock()
        counters = self.runner.counters
        counters.inc("actions.run")
        ok = not result.timed_out and result.exit_status == 0
        if not ok:
            counters.inc("actions.failed")
        current = self.runs.get(run.iid) is run  # else it was cancelled meanwhile: only its exit is noted
        run.exited = exited
        run.record.update(exited=rfc3339(exited), exit_status=result.exit_status, signal=result.signal,
                          timed_out=result.timed_out, error=result.error, output=result.output[:STEP_OUTPUT],
                          truncated=result.truncated or len(result.output) > STEP_OUTPUT)
        if current and ok and run.cleared is None:
            run.deadline = exited + action.verify
            run.record.update(outcome="verifying", deadline=rfc3339(run.deadline))
        await self.incidents.record_step(run.iid, dict(run.record), "action",
                                         {"key": action_key(inc, run.index), "trigger": "firing", **what,
                                          **result.to_json()}, exited)
        if current and not ok:
            await self._decide(run, "failed", exited, None)
        elif current and run.cleared is not None:
            await self._decide(run, "verified", exited, 0.0)

    async def cleared(self, iid: int, now: float) -> None:
        """The incident's condition cleared: its verifying step worked (if in time)."""
        run = self.runs.get(iid)
        if run is None:
            return
        if run.deadline is None or run.exited is None:
            run.cleared = now  # decided when the program exits
        elif now <= run.deadline:
            await self._decide(run, "verified", now, now - run.exited)
        else:
            await self._decide(run, "failed", now, None)

    async def cancel(self, iid: int, now: float) -> None:
        """Resolved by hand (or by a reload): the step can no longer be judged."""
        run = self.runs.get(iid)
        if run is not None:
            await self._decide(run, "cancelled", now, None)

    async def tick(self, now: float) -> None:
        for run in list(self.runs.values()):
            if run.deadline is not None and now > run.deadline:
                await self._decide(run, "failed", now, None)

    async def _decide(self, run: _Run, outcome: str, now: float, time_to_clear: float | None) -> None:
        if self.runs.get(run.iid) is not run:
            return
        del self.runs[run.iid]
        ttc = round(time_to_clear, 3) if time_to_clear is not None else None
        run.record.update(outcome=outcome, time_to_clear=ttc, decided=rfc3339(now))
        detail = {"rule": run.rule, "step": run.index + 1, "attempt": run.attempt, "argv": run.record.get("argv"),
                  "outcome": outcome, "time_to_clear": ttc}
        inc = await self.incidents.record_step(run.iid, dict(run.record), "step_outcome", detail, now)
        if outcome in ("verified", "failed"):
            self.runner.counters.inc(f"steps.{outcome}")
        log.info("incident %d: step %d (attempt %d) %s", run.iid, run.index + 1, run.attempt, outcome)
        cfg = self.rule_of(run.rule)
        if outcome != "failed" or inc is None or not inc.open or cfg is None or not cfg.steps:
            return
        if inc.flapping is not None and not cfg.flap_actions:
            log.info("incident %d is flapping: no further step runs", inc.id)
            return
        index, attempt = run.index, run.attempt + 1
        if index < len(cfg.action) and attempt > cfg.action[index].attempts:
            index, attempt = index + 1, 1
        if index < len(cfg.action):
            await self._start(inc, cfg, index, attempt, now)
            return
        self.runner.counters.inc("steps.escalated")
        await self.incidents.escalate(inc.id, cfg.escalate_severity or SEVERITY_UP.get(inc.severity, "critical"), now)

    async def load(self, incidents: Iterable[Incident], now: float) -> None:
        """After a restart: decide or resume the steps that were undecided when mepd stopped."""
        for inc in incidents:
            if not inc.steps or inc.steps[-1].get("outcome") not in UNDECIDED:
                continue
            record = dict(inc.steps[-1])
            run = self.runs[inc.id] = _Run(inc.id, inc.rule, int(str(record["step"])) - 1,
                                           int(str(record["attempt"])), record)
            if record["outcome"] == "running":
                record["error"] = "interrupted: mepd stopped while it ran"
                await self._decide(run, "failed", now, None)
                continue
            run.exited, run.deadline = _epoch(record["exited"]), _epoch(record["deadline"])
            if not inc.open:
                await self.cleared(inc.id, inc.resolved if inc.resolved is not None else now)
            else:
                log.info("incident %d: step %d still verifying, until %s", inc.id, run.index + 1,
                         record["deadline"])


def summary(outcomes: Sequence[Mapping[str, object]]) -> list[dict[str, object]]:
    """`mepctl actions`: per rule and step, runs decided, verified, failed, median seconds to clear."""
    groups: defaultdict[tuple[str, int], list[Mapping[str, object]]] = defaultdict(list)
    for o in outcomes:
        groups[(str(o.get("rule")), int(str(o.get("step"))))].append(o)
    out = []
    for (rule, step), items in sorted(groups.items()):
        cleared = [float(str(o["time_to_clear"])) for o in items if o.get("outcome") == "verified"
                   and o.get("time_to_clear") is not None]
        out.append({"rule": rule, "step": step, "argv": items[-1].get("argv"), "runs": len(items),
                    "verified": sum(o.get("outcome") == "verified" for o in items),
                    "failed": sum(o.get("outcome") == "failed" for o in items),
                    "median_time_to_clear": round(statistics.median(cleared), 3) if cleared else None})
    return out
