"""Verified corrective steps with real actions, a real broker and a real webhook receiver.

The watched metric is read from a file, as a check would read a service's
state: the action that fixes things writes the file, so whether the incident
clears depends only on what the action really did.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest_asyncio

from mepd.config import AlertConfig
from mepd.model import Sample
from tests.integration.alerts.conftest import (
    Receiver,
    Running,
    StartEngine,
    Subscriber,
    alert_config,
    notify_toml,
    until,
)
from tests.integration.alerts.test_alert_actions import script

KEY = "probe.web.up"


class Probe:
    """Feeds the engine the file's value as `probe.web.up` every 20 ms, like a check polling a service."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tasks: list[asyncio.Task[None]] = []

    def watch(self, r: Running) -> None:
        self.tasks.append(asyncio.create_task(self._run(r)))

    async def _run(self, r: Running) -> None:
        while True:
            text = self.path.read_text().strip()
            await r.pipeline.samples.put(Sample(KEY, time.time(), float(text)))
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []


@pytest_asyncio.fixture
async def probe(tmp_path: Path) -> AsyncIterator[Probe]:
    p = Probe(tmp_path / "web.up")
    p.path.write_text("0\n")
    yield p
    await p.stop()


def steps_config(tmp_path: Path, broker_port: int, url: str, steps: str) -> str:
    return f'''
[alert]
group_wait = "0s"
evaluation_interval = "50ms"
{notify_toml(broker_port, url)}[[alert.rule]]
name = "web-down"
metric = "{KEY}"
below = 1
{steps}
'''


async def incident_steps(r: Running, iid: int = 1) -> list[tuple[Any, ...]]:
    inc = await r.engine.store.incident(iid)
    return [] if inc is None else [(s["step"], s["attempt"], s["outcome"]) for s in inc.steps]


async def events(r: Running, iid: int = 1) -> list[str]:
    _, history = await r.engine.show(iid)
    return [str(h["event"]) for h in history if h["event"] != "notified"]


def hooked(receiver: Receiver) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """(event, steps as (step, attempt, outcome)) of each webhook event, in order."""
    return [(e["event"], [(s["step"], s["attempt"], s["outcome"]) for s in e["incident"]["steps"]])
            for body in receiver.accepted() for e in body["events"]]


def published(sub: Subscriber) -> list[tuple[str, str, list[str]]]:
    return [(m.doc["event"], m.doc["incident"]["severity"], [s["outcome"] for s in m.doc["incident"]["steps"]])
            for m in sub.messages if m.doc is not None and "event" in m.doc]


async def test_a_step_that_fixes_the_condition_is_verified(
    tmp_path: Path, broker: Any, subscriber: Subscriber, receiver: Receiver, start_engine: StartEngine,
    probe: Probe,
) -> None:
    fix = script(tmp_path / "fix.sh", f'echo 1 > {probe.path}\necho "restarted web"\n')
    steps = f'[[alert.rule.action]]\nargv = ["{fix}"]\nverify = "1h"\n'
    r = await start_engine(alert_config(steps_config(tmp_path, broker.port, receiver.url, steps), tmp_path))
    probe.watch(r)
    await until(lambda: _has(incident_steps(r), (1, 1, "verified")), "step 1 to be verified")
    await until(lambda: len(hooked(receiver)) == 2, "the resolved webhook")
    ev = await events(r)  # the fix may clear the incident before the action's exit is recorded
    assert (ev[:2], sorted(ev[2:4]), ev[4:]) == (["fired", "step_started"], ["action", "resolved"], ["step_outcome"])
    _, history = await r.engine.show(1)
    [outcome] = [h for h in history if h["event"] == "step_outcome"]
    assert (outcome["rule"], outcome["outcome"]) == ("web-down", "verified")
    assert isinstance(outcome["time_to_clear"], float)
    inc = await r.engine.store.incident(1)
    assert inc is not None
    [step] = inc.steps
    assert (step["exit_status"], step["output"], step["argv"]) == (0, "restarted web\n", [fix])
    # Notifications carry the steps as they stand when sent: the fix may clear the incident before it exits.
    [firing, resolved] = hooked(receiver)
    assert firing == ("firing", [(1, 1, "running")])
    assert resolved in (("resolved", [(1, 1, "verified")]), ("resolved", [(1, 1, "running")]))
    await until(lambda: len(published(subscriber)) == 2, "both MQTT events")
    assert published(subscriber) == [("firing", "warning", ["running"]), ("resolved", "warning", [resolved[1][0][2]])]
    [stats] = await r.engine.action_stats()
    assert {k: stats[k] for k in ("rule", "step", "runs", "verified", "failed")} == {
        "rule": "web-down", "step": 1, "runs": 1, "verified": 1, "failed": 0}
    assert stats["median_time_to_clear"] == outcome["time_to_clear"]


async def _has(steps: Any, wanted: tuple[Any, ...]) -> bool:
    return wanted in await steps


async def test_steps_that_do_not_fix_it_fail_in_turn_then_escalate(
    tmp_path: Path, broker: Any, subscriber: Subscriber, receiver: Receiver, start_engine: StartEngine,
    probe: Probe,
) -> None:
    runs = tmp_path / "runs.log"
    noop = script(tmp_path / "noop.sh", f'echo "restart $MEPD_INCIDENT_ID" >> {runs}\necho "nothing changed"\n')
    refuse = script(tmp_path / "failover.sh", f'echo failover >> {runs}\necho "no standby" >&2\nexit 4\n')
    steps = (f'[[alert.rule.action]]\nargv = ["{noop}"]\nverify = "200ms"\nattempts = 2\n'
             f'[[alert.rule.action]]\nargv = ["{refuse}"]\nverify = "1h"\n')
    r = await start_engine(alert_config(steps_config(tmp_path, broker.port, receiver.url, steps), tmp_path))
    probe.watch(r)
    await until(lambda: _escalated(r), "the incident to escalate")
    assert await incident_steps(r) == [(1, 1, "failed"), (1, 2, "failed"), (2, 1, "failed")]
    assert runs.read_text() == "restart 1\nrestart 1\nfailover\n"
    inc = await r.engine.store.incident(1)
    assert inc is not None
    assert (inc.severity, inc.labels["severity"], inc.state) == ("critical", "critical", "firing")
    assert (inc.steps[2]["exit_status"], inc.steps[2]["output"]) == (4, "no standby\n")
    assert await events(r) == ["fired"] + ["step_started", "action", "step_outcome"] * 3 + ["escalated"]
    await until(lambda: len(hooked(receiver)) == 2, "the escalation webhook")
    assert hooked(receiver) == [("firing", [(1, 1, "running")]),
                                ("escalated", [(1, 1, "failed"), (1, 2, "failed"), (2, 1, "failed")])]
    await until(lambda: len(published(subscriber)) == 2, "the escalation on MQTT")
    assert published(subscriber) == [("firing", "warning", ["running"]),
                                     ("escalated", "critical", ["failed", "failed", "failed"])]
    stats = {s["step"]: (s["runs"], s["verified"], s["failed"]) for s in await r.engine.action_stats()}
    assert stats == {1: (2, 0, 2), 2: (1, 0, 1)}


async def _escalated(r: Running) -> bool:
    inc = await r.engine.store.incident(1)
    return inc is not None and inc.escalated is not None


async def _wait_verifying(r: Running) -> None:
    await until(lambda: _has(incident_steps(r), (1, 1, "verifying")), "step 1 to be verifying")


async def _restarted(start_engine: StartEngine, probe: Probe, cfg: AlertConfig,
                     ready: Callable[[Running], Awaitable[None]]) -> Running:
    """The engine started, stopped (with the probe's feed) once `ready` of it returned, and started again on the
    same state: the second engine, not yet watched by the probe."""
    first = await start_engine(cfg)
    probe.watch(first)
    await ready(first)
    await probe.stop()
    await first.stop()
    return await start_engine(cfg)


async def test_a_restart_mid_verification_still_decides_verified(
    tmp_path: Path, broker: Any, receiver: Receiver, start_engine: StartEngine, probe: Probe,
) -> None:
    runs = tmp_path / "runs.log"
    slow = script(tmp_path / "slow-fix.sh", f"echo run >> {runs}\n")  # the fix takes effect later (below)
    steps = f'[[alert.rule.action]]\nargv = ["{slow}"]\nverify = "1h"\n'
    cfg = alert_config(steps_config(tmp_path, broker.port, receiver.url, steps), tmp_path)
    second = await _restarted(start_engine, probe, cfg, _wait_verifying)
    probe.path.write_text("1\n")
    probe.watch(second)
    await until(lambda: _has(incident_steps(second), (1, 1, "verified")), "step 1 to be verified after the restart")
    assert runs.read_text() == "run\n"
    assert await events(second) == ["fired", "step_started", "action", "resolved", "step_outcome"]


async def test_a_restart_mid_verification_still_fails_it_at_its_deadline(
    tmp_path: Path, broker: Any, receiver: Receiver, start_engine: StartEngine, probe: Probe,
) -> None:
    runs = tmp_path / "runs.log"
    noop = script(tmp_path / "noop.sh", f"echo step1 >> {runs}\n")
    failover = script(tmp_path / "failover.sh", f"echo step2 >> {runs}\necho 1 > {probe.path}\n")
    steps = (f'[[alert.rule.action]]\nargv = ["{noop}"]\nverify = "2s"\n'
             f'[[alert.rule.action]]\nargv = ["{failover}"]\nverify = "1h"\n')
    cfg = alert_config(steps_config(tmp_path, broker.port, receiver.url, steps), tmp_path)
    second = await _restarted(start_engine, probe, cfg, _wait_verifying)
    probe.watch(second)
    await until(lambda: _has(incident_steps(second), (2, 1, "verified")), "step 2 to be verified after the restart")
    assert await incident_steps(second) == [(1, 1, "failed"), (2, 1, "verified")]
    assert runs.read_text() == "step1\nstep2\n"


async def test_a_step_running_when_mepd_stops_is_failed_and_the_next_runs(
    tmp_path: Path, broker: Any, receiver: Receiver, start_engine: StartEngine, probe: Probe,
) -> None:
    runs = tmp_path / "runs.log"
    hang = script(tmp_path / "hang.sh", f"echo step1 >> {runs}\nexec sleep 300\n")
    failover = script(tmp_path / "failover.sh", f"echo step2 >> {runs}\necho 1 > {probe.path}\n")
    steps = (f'[[alert.rule.action]]\nargv = ["{hang}"]\nverify = "1h"\ntimeout = "1h"\n'
             f'[[alert.rule.action]]\nargv = ["{failover}"]\nverify = "1h"\n')
    cfg = alert_config(steps_config(tmp_path, broker.port, receiver.url, steps), tmp_path)
    async def step_1_runs(_: Running) -> None:
        await until(lambda: runs.exists() and runs.read_text() == "step1\n", "step 1 to run")

    second = await _restarted(start_engine, probe, cfg, step_1_runs)
    probe.watch(second)
    await until(lambda: _has(incident_steps(second), (2, 1, "verified")), "step 2 to be verified after the restart")
    inc = await second.engine.store.incident(1)
    assert inc is not None
    assert inc.steps[0]["outcome"] == "failed"
    assert inc.steps[0]["error"] == "interrupted: mepd stopped while it ran"
    assert runs.read_text() == "step1\nstep2\n"
