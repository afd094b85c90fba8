"""The `systemd_unit` check against real systemd (PID 1 of a booted Debian 12), run by the installed package.

The check's interval is an hour: after its first run, only systemd's change
signal (PropertiesChanged, once mepd has called Subscribe) can make it look
again, so every state the tests see after that came from the signal.  mepd runs
as the packaged service does: user `mepd`, hardened, on the system bus.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import wait_for
from tests.system.conftest import install, start
from tests.system.machine import Machine, booted

pytestmark = pytest.mark.slow

# A service of the test's own that restarts on failure, slowly enough that its failure is a state of its own.
UNIT = """[Unit]
Description=A service the systemd_unit check watches

[Service]
ExecStart=/bin/sleep infinity
Restart=on-failure
RestartSec=3s
"""
CHECK = """
[[check]]
name = "probe"
systemd_unit = "probe.service"
interval = "1h"
"""


@pytest.fixture(scope="module")
def machine(debian: Path, deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    with booted(debian, tmp_path_factory.mktemp("machine")) as machine:
        install(machine, deb)
        (machine.root / "etc" / "systemd" / "system" / "probe.service").write_text(UNIT)
        with open(machine.root / "etc" / "mepd" / "mepd.toml", "a") as config:
            config.write(CHECK)
        machine.sh("systemctl daemon-reload; systemctl start probe.service;"
                   " mepd --check-config /etc/mepd/mepd.toml")
        start(machine)
        yield machine


def check(machine: Machine) -> dict[str, Any]:
    """The probe check as `mepctl checks --json` shows it (mepctl as root: the admin)."""
    result = machine.run("mepctl", "checks", "--json", check=True)
    found = [c for c in json.loads(result.stdout) if c["name"] == "probe"]
    assert len(found) == 1, result.stdout
    return dict(found[0])


def messages(machine: Machine) -> list[str]:
    """The check's changes of state, oldest first, as mepd stored them in its log store."""
    result = machine.run("mepctl", "logs", "--json", "--source", "check:probe", "--limit", "0", check=True)
    return [str(r["message"]) for r in sorted(json.loads(result.stdout), key=lambda r: str(r["ts"]))]


def test_an_active_unit_is_ok(machine: Machine) -> None:
    found = wait_for(lambda: (c := check(machine))["state"] != "starting" and c, what="the check's first run")
    assert found["state"] == "ok", found
    assert found["kind"] == "systemd_unit"
    assert found["message"] == "probe.service active (running)"
    assert found["values"] == {"up": 1.0, "restarts": 0.0}


def test_a_killed_unit_is_seen_failing_at_once_and_its_restart_counted(machine: Machine) -> None:
    wait_for(lambda: check(machine)["state"] == "ok", what="the check ok")
    seen = len(messages(machine))
    machine.sh("systemctl kill -s KILL probe.service")
    wait_for(lambda: machine.run("systemctl", "show", "-P", "NRestarts", "probe.service").stdout.strip() == "1",
             what="systemd to restart probe.service")
    # systemd counts the restart when RestartSec ends, a moment before the unit is active again: the check
    # may first see restarts 1 with the unit still in auto-restart (failed), so wait for it to be running.
    ok = wait_for(lambda: (c := check(machine))["state"] == "ok" and c["values"]["restarts"] == 1.0 and c,
                  what="the restart seen")
    assert ok["message"] == "probe.service active (running), restarted 1 times"
    assert messages(machine)[seen:] == [
        "check probe (systemd_unit probe.service): failed: probe.service activating (auto-restart)",
        "check probe (systemd_unit probe.service): ok: probe.service active (running), restarted 1 times",
    ]


def test_a_stopped_unit_is_failed_and_ok_again_when_started(machine: Machine) -> None:
    wait_for(lambda: check(machine)["state"] == "ok", what="the check ok")
    machine.sh("systemctl stop probe.service")
    failed = wait_for(lambda: (c := check(machine))["state"] == "failed" and c, what="the stop seen")
    assert failed["message"].startswith("probe.service inactive (dead)")
    assert failed["values"]["up"] == 0.0
    machine.sh("systemctl start probe.service")
    wait_for(lambda: check(machine)["state"] == "ok", what="the start seen")
