"""Corrective actions as real subprocesses: environment, output on the incident, cooldown, timeout kill."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import uuid
from pathlib import Path

import pytest

from mepd.alerts.actions import run_action
from mepd.alerts.engine import NotFoundError
from mepd.model import Sample
from tests.integration.alerts.conftest import Running, StartEngine, alert_config, until


def script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for a reaper that may not exist in a container."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def marked(mark: str) -> list[int]:
    """The live processes whose environment holds MEPD_TEST_MARK=`mark`: an action's whole tree, however forked."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and f"MEPD_TEST_MARK={mark}".encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return [pid for pid in found if alive(pid)]


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")[:-1]
    except OSError:
        return []


def action_config(argv: str, extra: str = "") -> str:
    return f'''
[alert]
group_wait = "0s"
evaluation_interval = "50ms"
[[alert.rule]]
name = "web-5xx"
metric = "weblog.web.5xx_ratio"
above = 0.2
labels = {{ service = "apache2" }}
[[alert.rule.action]]
argv = {argv}
{extra}
'''


async def history(r: Running, iid: int, event: str) -> list[dict[str, object]]:
    try:
        _, entries = await r.engine.show(iid)
    except NotFoundError:
        return []
    return [h for h in entries if h["event"] == event]


async def test_action_runs_once_per_cooldown_with_incident_environment(
    tmp_path: Path, start_engine: StartEngine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MEPD_TEST_SECRET", "must-not-leak")
    out = tmp_path / "restarts.log"
    restart = script(tmp_path / "restart.sh",
                     f'echo "$MEPD_EVENT $MEPD_RULE $MEPD_INCIDENT_ID $MEPD_LABEL_SERVICE $MEPD_VALUE" >> {out}\n'
                     'echo "restarted $MEPD_LABEL_SERVICE"\nenv | grep -c MEPD_TEST_SECRET\nexit 3\n')
    r = await start_engine(alert_config(action_config(f'["{restart}", "--now"]', 'cooldown = "1h"'), tmp_path))
    key = "weblog.web.5xx_ratio"
    await r.pipeline.samples.put(Sample(key, 1, 0.5))
    await until(lambda: history(r, 1, "action"), "the action of incident 1")
    [run] = await history(r, 1, "action")
    assert (run["exit_status"], run["timed_out"], run["argv"]) == (3, False, [restart, "--now"])
    assert run["output"] == "restarted apache2\n0\n"
    assert out.read_text() == "firing web-5xx 1 apache2 0.5\n"

    await r.pipeline.samples.put(Sample(key, 2, 0.1))  # resolves: no action (on_resolved is false)
    await r.pipeline.samples.put(Sample(key, 3, 0.6))  # fires again: a new incident, inside the cooldown
    await until(lambda: history(r, 2, "action_skipped"), "the skipped action of incident 2")
    [skipped] = await history(r, 2, "action_skipped")
    assert str(skipped["reason"]).startswith("cooldown:")
    assert await history(r, 2, "action") == []
    assert out.read_text() == "firing web-5xx 1 apache2 0.5\n"
    assert r.engine.counters.get("actions.run") == 1


async def test_action_on_resolved_and_after_cooldown(tmp_path: Path, start_engine: StartEngine) -> None:
    out = tmp_path / "events.log"
    note = script(tmp_path / "note.sh", f'echo "$MEPD_EVENT $MEPD_STATE" >> {out}\n')
    r = await start_engine(alert_config(action_config(f'["{note}"]', 'cooldown = "0s"\non_resolved = true'), tmp_path))
    for ts, v in ((1, 0.5), (2, 0.1), (3, 0.5)):
        await r.pipeline.samples.put(Sample("weblog.web.5xx_ratio", ts, v))
    await until(lambda: r.engine.counters.get("actions.run") == 3, "three runs")
    assert sorted(out.read_text().splitlines()) == ["firing firing", "firing firing", "resolved resolved"]


async def test_action_timeout_kills_the_whole_process_group(tmp_path: Path, start_engine: StartEngine) -> None:
    pidfile = tmp_path / "child.pid"
    hang = script(tmp_path / "hang.sh", f"sleep 300 &\necho $! > {pidfile}\necho started\nwait\n")
    r = await start_engine(alert_config(action_config(f'["{hang}"]', 'timeout = "3s"\nkill_grace = "2s"'), tmp_path))
    await r.pipeline.samples.put(Sample("weblog.web.5xx_ratio", 1, 0.9))
    await until(lambda: history(r, 1, "action"), "the action to be killed")
    [run] = await history(r, 1, "action")
    assert (run["timed_out"], run["signal"], run["exit_status"]) == (True, "SIGTERM", None)
    assert run["output"] == "started\n"
    child = int(pidfile.read_text())
    await until(lambda: not alive(child), f"the forked child {child} to be gone")


async def test_a_child_ignoring_sigterm_is_killed_after_the_grace() -> None:
    argv = ["/bin/sh", "-c", "trap '' TERM; echo stubborn; sleep 300 & wait"]
    result = await run_action(argv, {"PATH": os.environ["PATH"]}, time_limit=3, kill_grace=0.5)
    assert (result.timed_out, result.signal, result.output) == (True, signal.SIGKILL.name, "stubborn\n")


async def test_a_missing_program_is_reported_not_raised() -> None:
    result = await run_action(["/nonexistent/restart"], {}, time_limit=1, kill_grace=1)
    assert result.exit_status is None
    assert result.error is not None
    assert result.error.startswith("FileNotFoundError")


async def test_output_is_capped_but_the_child_runs_to_the_end(tmp_path: Path) -> None:
    done = tmp_path / "done"
    argv = ["/bin/sh", "-c", f"head -c 200000 /dev/zero | tr '\\0' x; touch {done}"]
    result = await run_action(argv, {"PATH": os.environ["PATH"]}, time_limit=10, kill_grace=1, limit=1000)
    assert (result.exit_status, result.truncated, len(result.output)) == (0, True, 1000)
    assert done.exists()


async def test_a_daemon_left_behind_neither_blocks_nor_loses_output() -> None:
    argv = ["/bin/sh", "-c", "setsid sleep 300 & echo $!; echo bye"]
    result = await run_action(argv, {"PATH": os.environ["PATH"]}, time_limit=30, kill_grace=1)
    pid, rest = result.output.split("\n", 1)
    try:
        assert (result.exit_status, result.timed_out, rest) == (0, False, "bye\n")
        assert alive(int(pid))  # an action that ends by itself may start a daemon: it is left running
    finally:
        os.kill(int(pid), signal.SIGKILL)


async def test_the_timeout_kills_what_the_action_daemonized() -> None:
    mark = uuid.uuid4().hex
    env = {"PATH": os.environ["PATH"], "MEPD_TEST_MARK": mark}
    argv = ["/bin/sh", "-c", "setsid -f sleep 1000; echo started; sleep 1000"]  # a new session: out of its group
    try:
        result = await run_action(argv, env, time_limit=2, kill_grace=2)
        assert (result.timed_out, result.signal, result.output) == (True, signal.SIGTERM.name, "started\n")
        assert marked(mark) == []
    finally:
        for pid in marked(mark):
            os.kill(pid, signal.SIGKILL)


async def test_cancelling_an_action_kills_what_it_daemonized() -> None:
    mark = uuid.uuid4().hex
    env = {"PATH": os.environ["PATH"], "MEPD_TEST_MARK": mark}
    argv = ["/bin/sh", "-c", "trap '' TERM; setsid -f sh -c 'trap \"\" TERM; sleep 1000'; sleep 1000"]
    task = asyncio.ensure_future(run_action(argv, env, time_limit=1000, kill_grace=1000))
    try:
        await until(lambda: [p for p in marked(mark) if cmdline(p) == ["sleep", "1000"]][1:], "both sleeps")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert marked(mark) == []
    finally:
        for pid in marked(mark):
            os.kill(pid, signal.SIGKILL)
