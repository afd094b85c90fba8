"""Upgrade, remove and purge of the .deb in a booted Debian 12, as packaging/README.md describes them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import wait_for
from tests.system.conftest import NEXT_VERSION, install, start
from tests.system.machine import Machine, booted

pytestmark = pytest.mark.slow

ADMIN_EDIT = 's/^log_level = "info"/log_level = "debug"/'


def stored(machine: Machine, text: str) -> list[str]:
    result = machine.run("mepctl", "logs", "--json", "--grep", text, "--limit", "0")
    return [r["message"] for r in json.loads(result.stdout)] if result.returncode == 0 else []


def send_tcp(machine: Machine, message: str) -> None:
    machine.sh(f"logger -n 127.0.0.1 -P 514 -T {message}")


@pytest.fixture(scope="module")
def machine(debian: Path, deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    """Version N installed and running, with an admin's edit of the conffile and one stored record."""
    with booted(debian, tmp_path_factory.mktemp("machine")) as machine:
        install(machine, deb)
        machine.sh(f"sed -i '{ADMIN_EDIT}' /etc/mepd/mepd.toml")
        start(machine)
        yield machine


def test_upgrade_keeps_records_config_and_the_running_service(machine: Machine, next_deb: Path) -> None:
    token = uuid.uuid4().hex
    send_tcp(machine, f"before-{token}")
    wait_for(lambda: stored(machine, f"before-{token}"), what="the record stored by version N")
    pid = machine.run("systemctl", "show", "-P", "MainPID", "mepd").stdout.strip()

    install(machine, next_deb)

    version = machine.run("dpkg-query", "-W", "-f", "${Version}", "mepd").stdout
    assert version == NEXT_VERSION
    config = machine.sh("grep -c '^log_level = \"debug\"' /etc/mepd/mepd.toml; stat -c '%a %U:%G' /etc/mepd/mepd.toml")
    assert config.stdout.split("\n")[:2] == ["1", "640 root:mepd"]
    assert not machine.sh("ls /etc/mepd").stdout.count(".dpkg-")
    active = machine.run("systemctl", "is-active", "mepd.socket", "mepd-tcp.socket", "mepd.service").stdout
    assert active.split() == ["active"] * 3
    # Restarted onto the new code (postinst try-restart), its records kept.
    assert machine.run("systemctl", "show", "-P", "MainPID", "mepd").stdout.strip() != pid
    assert stored(machine, f"before-{token}") == [f"before-{token}"]
    send_tcp(machine, f"after-{token}")
    wait_for(lambda: stored(machine, f"after-{token}"), what="a record stored by version N+1")


def test_remove_stops_and_keeps_config_and_data_purge_deletes_them(machine: Machine, next_deb: Path) -> None:
    token = uuid.uuid4().hex
    send_tcp(machine, f"kept-{token}")
    wait_for(lambda: stored(machine, f"kept-{token}"), what="a record to keep")

    machine.sh("apt-get remove -y mepd")
    active = machine.run("systemctl", "is-active", "mepd.socket", "mepd-tcp.socket", "mepd.service").stdout
    assert set(active.split()) <= {"inactive", "failed"}, active
    for path in ("/etc/mepd/mepd.toml", "/var/lib/mepd/logs.db"):
        assert machine.run("test", "-e", path).returncode == 0, path
    for path in ("/opt/mepd", "/usr/bin/mepctl", "/lib/systemd/system/mepd.service"):
        assert machine.run("test", "-e", path).returncode == 1, path

    # A reinstall after remove finds the units enabled, the admin's edit and the records.
    install(machine, next_deb)
    enabled = machine.run("systemctl", "is-enabled", "mepd.socket", "mepd-tcp.socket", "mepd.service").stdout
    assert enabled.split() == ["enabled"] * 3
    assert machine.run("grep", "-q", '^log_level = "debug"', "/etc/mepd/mepd.toml").returncode == 0
    start(machine)
    assert stored(machine, f"kept-{token}") == [f"kept-{token}"]

    machine.sh("apt-get purge -y mepd")
    for path in ("/etc/mepd", "/var/lib/mepd"):
        assert machine.run("test", "-e", path).returncode == 1, path
    assert machine.run("dpkg-statoverride", "--list", "/etc/mepd/mepd.toml").stdout == ""
    # The system user stays (Debian policy: files it owned elsewhere keep a valid owner).
    assert machine.run("id", "-u", "mepd").returncode == 0
    assert machine.run("systemctl", "is-enabled", "mepd.service").stdout.strip() in ("", "not-found")
