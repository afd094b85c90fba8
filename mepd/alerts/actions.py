"""Corrective actions, Monit style: run a program when an incident fires (or resolves).

An action is an argv list executed directly, never through a shell, so no
incident field (a log line, a host name sent by a stranger) can ever become
shell syntax.  It runs under a small reaper process (mepd/alerts/reaper.py), a
child subreaper, so everything it starts stays below it, even what leaves its
session (`setsid -f`, a double fork).  At the timeout that whole tree gets
SIGTERM, then SIGKILL after `kill_grace`: nothing a hung action started
outlives it.  An action that exits by itself may leave a daemon running:
starting a service is what a Monit-style action is for.  A cooldown and a cap
per hour, per incident fingerprint, stop a restart loop; runs are remembered
across restarts through the incident history.  The environment is minimal
(PATH, LANG) plus MEPD_* variables describing the incident: the daemon's own
environment is not leaked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import sys
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import IO, Final

from mepd.alerts.reaper import COERCE_VAR
from mepd.config import AlertActionConfig
from mepd.model import Incident, rfc3339
from mepd.pipeline import Counters

log = logging.getLogger(__name__)

OUTPUT_LIMIT: Final = 64 * 1024
HOUR: Final = 3600.0
REAPER: Final = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reaper.py")
REAPER_SLACK: Final = 5.0  # how long the reaper may take beyond its grace before it is killed itself


@dataclass(frozen=True, slots=True)
class ActionResult:
    argv: tuple[str, ...]
    started: float
    duration: float
    exit_status: int | None
    signal: str | None
    timed_out: bool
    output: str
    truncated: bool
    error: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "argv": list(self.argv), "started": rfc3339(self.started), "duration": round(self.duration, 3),
            "exit_status": self.exit_status, "signal": self.signal, "timed_out": self.timed_out,
            "output": self.output, "truncated": self.truncated, "error": self.error,
        }


def minimal_environment() -> dict[str, str]:
    """PATH and LANG only: the daemon's own environment is not leaked to what it runs."""
    return {
        "PATH": os.environ.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }


def environment(inc: Incident, event: str, host: str) -> dict[str, str]:
    env = {
        **minimal_environment(),
        "MEPD_EVENT": event,
        "MEPD_HOST": host,
        "MEPD_INCIDENT_ID": str(inc.id),
        "MEPD_FINGERPRINT": inc.fingerprint,
        "MEPD_RULE": inc.rule,
        "MEPD_KIND": inc.kind,
        "MEPD_STATE": inc.state,
        "MEPD_SEVERITY": inc.severity,
        "MEPD_SUMMARY": inc.summary,
        "MEPD_VALUE": "" if inc.value is None else f"{inc.value:g}",
        "MEPD_COUNT": str(inc.count),
        "MEPD_STARTED": rfc3339(inc.started),
        "MEPD_LABELS": json.dumps(dict(inc.labels), sort_keys=True),
        "MEPD_LINES": "\n".join(inc.lines),
    }
    for name, value in inc.labels.items():
        env["MEPD_LABEL_" + re.sub(r"[^A-Z0-9_]", "_", name.upper())] = value
    return {k: v.replace("\0", "") for k, v in env.items()}


def _kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _read_head(out: IO[bytes], limit: int) -> tuple[bytes, bool]:
    out.seek(0)
    data = out.read(limit + 1)
    return data[:limit], len(data) > limit


def _write_input(f: IO[bytes], data: bytes) -> None:
    f.write(data)
    f.flush()
    f.seek(0)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:  # a real-time signal has no name
        return f"SIG{number}"


def _fate(line: str, reaper_rc: int) -> tuple[int | None, str | None, str | None]:
    """(exit status, signal, error) from the reaper's status line, or from its own end when it wrote none."""
    word, _, rest = line.strip().partition(" ")
    if word == "exit":
        return int(rest), None, None
    if word == "signal":
        return None, _signal_name(int(rest)), None
    if word == "error":
        return None, None, rest
    if reaper_rc < 0:  # killed with its process group after REAPER_SLACK
        return None, _signal_name(-reaper_rc), None
    return None, None, f"the action's reaper failed with exit status {reaper_rc}"  # its traceback is the output


def _read_status(fd: int) -> str:
    """The reaper's one status line; every write end is closed by now, so this does not wait."""
    os.set_blocking(fd, False)
    with contextlib.suppress(BlockingIOError):
        return os.read(fd, 4096).decode(errors="replace")
    return ""


async def _stop(proc: asyncio.subprocess.Process, sig: signal.Signals, wait: float) -> None:
    """Ask the reaper to end the action's tree; kill the reaper's group if it has not exited within `wait`."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        await asyncio.wait_for(proc.wait(), wait)
    except TimeoutError:
        _kill_group(proc.pid, signal.SIGKILL)
        await proc.wait()


async def run_action(argv: Sequence[str], env: dict[str, str], time_limit: float, kill_grace: float,
                     limit: int = OUTPUT_LIMIT, stdin: bytes = b"") -> ActionResult:
    """Run one argv under the reaper, `stdin` its input, stdout+stderr to a temp file; kill its tree after
    `time_limit` seconds.

    Files rather than pipes: a child that outlives the action (a daemon it
    started) can neither block on a full pipe nor keep us waiting for EOF, and
    one that does not read its input cannot block us writing it.
    """
    started, t0 = time.time(), time.monotonic()
    status_r, status_w = os.pipe()
    try:
        with tempfile.TemporaryFile(prefix="mepd-action-") as out, tempfile.TemporaryFile(prefix="mepd-in-") as given:
            await asyncio.to_thread(_write_input, given, stdin)
            try:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-P", "-s", REAPER, str(status_w), str(kill_grace), *argv,
                    stdin=given, stdout=out, stderr=asyncio.subprocess.STDOUT,
                    env={**env, COERCE_VAR: "0"}, cwd="/", start_new_session=True, pass_fds=(status_w,),
                )
            except OSError as e:
                return ActionResult(tuple(argv), started, time.monotonic() - t0, None, None, False, "", False,
                                    f"{type(e).__name__}: {e}")
            finally:
                os.close(status_w)
            timed_out = False
            try:
                await asyncio.wait_for(proc.wait(), time_limit)
            except TimeoutError:
                timed_out = True
                await _stop(proc, signal.SIGTERM, kill_grace + REAPER_SLACK)
            finally:
                if proc.returncode is None:  # cancelled: kill the tree at once, leave nothing behind
                    await _stop(proc, signal.SIGINT, REAPER_SLACK)
            output, truncated = await asyncio.to_thread(_read_head, out, limit)
        rc = proc.returncode
        assert rc is not None
        exit_status, sig, error = _fate(_read_status(status_r), rc)
    finally:
        os.close(status_r)
    return ActionResult(tuple(argv), started, time.monotonic() - t0, exit_status, sig, timed_out,
                        output.decode(errors="replace"), truncated, error)


def action_key(inc: Incident, index: int) -> str:
    """What cooldowns and caps count runs by: the incident's fingerprint and the action's place in its rule."""
    return f"{inc.fingerprint}/{index}"


Recorder = Callable[[Incident, str, dict[str, object]], Awaitable[None]]


class ActionRunner:
    """Decides whether an action may run now (cooldown, cap per hour) and runs it in the background."""

    def __init__(self, host: str, counters: Counters, record: Recorder) -> None:
        self.host = host
        self.counters = counters
        self.record = record
        self.runs: defaultdict[str, deque[float]] = defaultdict(deque)
        self.tasks: set[asyncio.Task[None]] = set()

    def load_runs(self, runs: Sequence[tuple[str, float]]) -> None:
        for key, ts in runs:
            self.runs[key].append(ts)

    def trigger(self, inc: Incident, event: str, actions: Sequence[AlertActionConfig], now: float) -> int:
        """Start the actions this event calls for; returns how many started."""
        started = 0
        for index, action in enumerate(actions):
            if event == "resolved" and not action.on_resolved:
                continue
            if event not in ("firing", "resolved"):
                continue
            key = action_key(inc, index)
            if not self.allowed(inc, event, action, key, now):
                continue
            started += 1
            self.spawn(self._run(inc, event, action, key))
        return started

    def allowed(self, inc: Incident, event: str, action: AlertActionConfig, key: str, now: float) -> bool:
        """Within the cooldown and the cap per hour: counted as a run now; else the skip goes on the incident."""
        runs = self.runs[key]
        while runs and runs[0] <= now - HOUR:
            runs.popleft()
        reason = None
        if runs and now - runs[-1] < action.cooldown:
            reason = f"cooldown: last run {now - runs[-1]:.0f}s ago, cooldown {action.cooldown:.0f}s"
        elif len(runs) >= action.max_per_hour:
            reason = f"max_per_hour: {len(runs)} runs in the last hour"
        if reason is not None:
            self.counters.inc("actions.skipped")
            log.info("incident %d: action %s skipped (%s)", inc.id, action.argv[0], reason)
            self.spawn(self.record(inc, "action_skipped",
                                    {"key": key, "argv": list(action.argv), "trigger": event, "reason": reason}))
            return False
        runs.append(now)
        return True

    def spawn(self, coro: Awaitable[None]) -> None:
        """Run in the background; cancelled (and its action's tree killed) by close()."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, inc: Incident, event: str, action: AlertActionConfig, key: str) -> None:
        log.info("incident %d: running %s", inc.id, " ".join(action.argv))
        result = await run_action(action.argv, environment(inc, event, self.host), action.timeout, action.kill_grace)
        self.counters.inc("actions.run")
        if result.timed_out or result.exit_status != 0:
            self.counters.inc("actions.failed")
            log.warning("incident %d: action %s failed: exit %s, signal %s, timed out %s, %s", inc.id,
                        action.argv[0], result.exit_status, result.signal, result.timed_out, result.error or "")
        await self.record(inc, "action", {"key": key, "trigger": event, **result.to_json()})

    async def close(self) -> None:
        """Cancel running actions: everything they started is killed, not left behind."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
