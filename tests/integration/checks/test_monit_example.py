"""conf/examples/monit-restart.toml run by the real daemon, with its paths and program swapped for the test's:
a process that is killed is restarted by the action and the incident resolves; one that a restart does not
bring back raises the critical incident."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, Mepd, wait_for
from tests.integration.checks.conftest import SLEEPER

EXAMPLE = ROOT / "conf" / "examples" / "monit-restart.toml"


def adapted(replacements: dict[str, str]) -> str:
    """The example with each of `replacements` made (each must be there: the example and this test agree)."""
    text = EXAMPLE.read_text()
    for old, new in replacements.items():
        assert old in text, f"{old!r} is no longer in {EXAMPLE.name}"
        text = text.replace(old, new)
    return text


def example_config(pidfile: Path, argv: list[str]) -> str:
    return adapted({
        '"/run/myapp.pid"': f'"{pidfile}"',
        'process = "myapp"': f'process = "{SLEEPER}"',
        'interval = "30s"': 'interval = "1s"',
        'timeout = "5s"': 'timeout = "1s"',
        'argv = ["/usr/bin/systemctl", "restart", "myapp"]': "argv = [" + ", ".join(f'"{a}"' for a in argv) + "]",
    })


def pid_in(pidfile: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(pidfile.read_text())
    return None


def running_sleeper(pid: int | None) -> bool:
    try:
        return pid is not None and Path(f"/proc/{pid}/comm").read_text().strip() == SLEEPER[:15]
    except OSError:
        return False


def incident(daemon: Mepd, rule: str, state: str | None = None) -> dict[str, Any] | None:
    found = [i for i in daemon.mepctl_json("incidents", "--all") if i["rule"] == rule]
    return next((i for i in found if state is None or i["state"] == state), None)


def check_state(daemon: Mepd) -> str:
    return str(daemon.mepctl_json("checks")[0]["state"])


@pytest.fixture
def restarted(tmp_path: Path) -> Iterator[Path]:
    """The pidfile; whatever runs under its pid at the end (the action's sleeper) is killed by that pid."""
    pidfile = tmp_path / "myapp.pid"
    yield pidfile
    pid = pid_in(pidfile)
    if running_sleeper(pid):
        assert pid is not None
        os.kill(pid, signal.SIGKILL)


def test_a_killed_process_is_restarted_and_the_incident_resolves(
        mepd_factory: Callable[..., Mepd], start_sleeper: Callable[[], subprocess.Popen[bytes]],
        sleeper_exe: Path, restarted: Path) -> None:
    pidfile = restarted
    first = start_sleeper()
    pidfile.write_text(f"{first.pid}\n")
    # The restart: start the program in the background and write its pidfile, as an init script does.
    start = f'"{sleeper_exe}" 600 </dev/null >/dev/null 2>&1 & echo $! > "{pidfile}"'
    daemon = mepd_factory(example_config(pidfile, ["/bin/sh", "-c", start.replace('"', '\\"')])).start()
    wait_for(lambda: check_state(daemon) == "ok", what="myapp seen running")

    first.kill()
    first.wait()
    fired = wait_for(lambda: incident(daemon, "myapp-down"), what="the myapp-down incident")
    wait_for(lambda: pid_in(pidfile) != first.pid and running_sleeper(pid_in(pidfile)),
             what="the action to start myapp again")
    resolved = wait_for(lambda: incident(daemon, "myapp-down", "resolved"), what="the incident to resolve")
    assert resolved["id"] == fired["id"]
    wait_for(lambda: check_state(daemon) == "ok", what="myapp seen running again")

    history = daemon.mepctl_json("incident", str(fired["id"]))["history"]
    actions = [h for h in history if h["event"] == "action"]
    assert len(actions) == 1
    assert actions[0]["exit_status"] == 0
    assert actions[0]["argv"][0] == "/bin/sh"
    assert [h["event"] for h in history if h["event"] in ("fired", "resolved")] == ["fired", "resolved"]


def test_a_restart_that_does_not_help_raises_the_critical_incident(
        mepd_factory: Callable[..., Mepd], start_sleeper: Callable[[], subprocess.Popen[bytes]],
        restarted: Path) -> None:
    pidfile = restarted
    proc = start_sleeper()
    pidfile.write_text(f"{proc.pid}\n")
    daemon = mepd_factory(example_config(pidfile, ["/bin/true"])).start()  # a "restart" that starts nothing
    wait_for(lambda: check_state(daemon) == "ok", what="myapp seen running")

    proc.kill()
    proc.wait()
    critical = wait_for(lambda: incident(daemon, "myapp-still-down"), what="the myapp-still-down incident")
    assert critical["severity"] == "critical"
    assert critical["state"] == "firing"
    assert critical["summary"] == "myapp is still down after 5 cycles: restarting it did not help"
    down = incident(daemon, "myapp-down", "firing")
    assert down is not None
    history = daemon.mepctl_json("incident", str(down["id"]))["history"]
    assert [h["exit_status"] for h in history if h["event"] == "action"] == [0]
