"""The Ansible role applied over SSH to a booted Debian 12, from a fresh inventory as packaging/README.md shows.

The machine runs openssh-server on its own loopback; `forwarded` makes it
reachable on a port of the host's 127.0.0.1, which the inventory names.  The
play logs in as an `admin` with passwordless sudo (`become`), as on a real
server, and installs the .deb `make deb` built.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.integration.deploy.tools import VENV_BIN, run, tool
from tests.system.machine import Machine, booted, forwarded

pytestmark = pytest.mark.slow

ANSIBLE = ROOT / "packaging" / "ansible"
HOST = "logs1"


@dataclass(slots=True, frozen=True)
class Target:
    machine: Machine
    inventory: Path
    env: dict[str, str]
    deb: Path


@pytest.fixture(scope="module")
def target(debian: Path, deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """A booted machine with sshd and an admin who may sudo; the host's key and the machine's host key known."""
    work = tmp_path_factory.mktemp("ansible")
    key = work / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    with booted(debian, tmp_path_factory.mktemp("machine")) as machine:
        machine.sh("useradd -m -s /bin/bash admin; echo 'admin ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/admin;"
                   " install -d -o admin -g admin -m 0700 /home/admin/.ssh")
        authorized = machine.root / "home" / "admin" / ".ssh" / "authorized_keys"
        authorized.write_text(key.with_suffix(".pub").read_text())
        machine.sh("chown admin:admin /home/admin/.ssh/authorized_keys; systemctl is-active ssh.service")
        with forwarded(machine, 22) as port:
            host_key = (machine.root / "etc" / "ssh" / "ssh_host_ed25519_key.pub").read_text().split()[:2]
            known_hosts = work / "known_hosts"
            known_hosts.write_text(f"[127.0.0.1]:{port} {' '.join(host_key)}\n")
            inventory = work / "inventory.ini"
            inventory.write_text(
                f"[mepd_servers]\n{HOST} ansible_host=127.0.0.1 ansible_port={port}\n\n"
                f"[mepd_servers:vars]\nansible_user=admin\nansible_ssh_private_key_file={key}\n")
            home = work / "ansible-home"
            # No ControlPersist master left behind; the machine's host key checked, not skipped.
            env = {**os.environ, "ANSIBLE_HOME": str(home), "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
                   "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
                   "ANSIBLE_SSH_ARGS": f"-o ControlMaster=no -o UserKnownHostsFile={known_hosts}"
                                       " -o StrictHostKeyChecking=yes -o BatchMode=yes"}
            yield Target(machine, inventory, env, deb)


def play(target: Target, *extra: str) -> subprocess.CompletedProcess[str]:
    """`ansible-playbook site.yml` as the README shows, with the test's inventory."""
    return run(tool("ansible-playbook"), "-i", str(target.inventory), "site.yml",
               "-e", f"mepd_package_file={target.deb}", *extra, cwd=ANSIBLE, env=target.env, timeout=600)


def recap(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    match = re.search(rf"^{HOST}\s+:\s+(.*)$", result.stdout, re.MULTILINE)
    assert match is not None, result.stdout + result.stderr
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


def main_pid(machine: Machine) -> int:
    return int(machine.run("systemctl", "show", "-P", "MainPID", "mepd.service").stdout)


def config_digest(machine: Machine) -> str:
    return hashlib.sha256((machine.root / "etc" / "mepd" / "mepd.toml").read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def first_run(target: Target) -> subprocess.CompletedProcess[str]:
    return play(target)


def test_first_run_installs_configures_and_starts_mepd(target: Target,
                                                       first_run: subprocess.CompletedProcess[str]) -> None:
    assert first_run.returncode == 0, first_run.stdout + first_run.stderr
    counts = recap(first_run)
    assert counts["failed"] == 0
    assert counts["unreachable"] == 0
    assert counts["changed"] > 0
    machine = target.machine
    active = machine.run("systemctl", "is-active", "mepd.socket", "mepd-tcp.socket", "mepd.service").stdout
    assert active.split() == ["active"] * 3
    status = machine.run("mepctl", "status")
    assert status.returncode == 0, status.stdout + status.stderr


def test_second_run_changes_nothing(target: Target, first_run: subprocess.CompletedProcess[str]) -> None:
    assert first_run.returncode == 0
    pid = main_pid(target.machine)
    second = play(target)
    assert second.returncode == 0, second.stdout + second.stderr
    assert recap(second)["changed"] == 0, second.stdout
    assert main_pid(target.machine) == pid


def test_an_invalid_variable_fails_the_play_and_the_old_config_runs_on(
        target: Target, first_run: subprocess.CompletedProcess[str]) -> None:
    assert first_run.returncode == 0
    machine = target.machine
    pid, before = main_pid(machine), config_digest(machine)
    bad = play(target, "-e", "mepd_log_level=loud")
    assert bad.returncode != 0
    assert recap(bad)["failed"] == 1, bad.stdout
    assert "failed to validate" in bad.stdout, bad.stdout
    assert config_digest(machine) == before
    assert main_pid(machine) == pid
    status = machine.run("mepctl", "status")
    assert status.returncode == 0, status.stdout + status.stderr
