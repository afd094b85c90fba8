"""The Ansible role and playbook: syntax, ansible-lint, and real runs on localhost into a temporary root.

The real runs leave package installation and the service out (mepd_install and
mepd_manage_service false: no systemd runs here and the host must not change),
and write the config under a temp folder, validated by this checkout's mepd.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.integration.deploy.tools import VENV_BIN, run, tool

ANSIBLE = ROOT / "packaging" / "ansible"
Play = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def ansible_env(tmp_path: Path) -> dict[str, str]:
    """Ansible's own temp and cache files go to the test's folder, not ~/.ansible."""
    home = tmp_path / "ansible-home"
    return {**os.environ, "ANSIBLE_HOME": str(home), "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
            "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}


@pytest.fixture
def play(tmp_path: Path, ansible_env: dict[str, str]) -> Play:
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        "[mepd_servers]\n"
        f"localhost ansible_connection=local ansible_become=false ansible_python_interpreter={sys.executable}\n"
    )
    base = {
        "mepd_install": False,
        "mepd_manage_service": False,
        "mepd_config_dir": str(tmp_path / "root" / "etc" / "mepd"),
        "mepd_config_group": "root",
        "mepd_bin": str(VENV_BIN / "mepd"),
    }

    def run_play(*args: str, **overrides: object) -> subprocess.CompletedProcess[str]:
        extra = tmp_path / "vars.json"
        extra.write_text(json.dumps({**base, **overrides}))
        return run(tool("ansible-playbook"), "-i", str(inventory), "site.yml", "-e", f"@{extra}", *args,
                   cwd=ANSIBLE, env=ansible_env)

    return run_play


def recap(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    match = re.search(r"localhost\s+:\s+(.*)", result.stdout)
    assert match is not None, result.stdout + result.stderr
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


def test_syntax_check(ansible_env: dict[str, str]) -> None:
    result = run(tool("ansible-playbook"), "--syntax-check", "site.yml", cwd=ANSIBLE, env=ansible_env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ansible_lint_is_clean(ansible_env: dict[str, str]) -> None:
    result = run(tool("ansible-lint"), "--offline", "--profile", "production", cwd=ANSIBLE, env=ansible_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 failure(s), 0 warning(s)" in result.stdout + result.stderr


def test_real_run_writes_a_valid_config_and_is_idempotent(play: Play, tmp_path: Path) -> None:
    listen = [{"proto": "udp", "address": "127.0.0.1:5514", "timezone": "Europe/Paris", "max_message_size": "8KiB"},
              {"proto": "tcp", "address": "127.0.0.1:5514", "fd_name": "syslog-tcp"}]
    first = play(mepd_syslog_listen=listen, mepd_log_level="debug")
    assert first.returncode == 0, first.stdout + first.stderr
    assert recap(first)["changed"] >= 1
    config = tmp_path / "root" / "etc" / "mepd" / "mepd.toml"
    assert oct(config.stat().st_mode & 0o777) == "0o640"
    check = run(str(VENV_BIN / "mepd"), "--check-config", str(config))
    assert (check.returncode, check.stdout) == (0, "ok\n"), check.stderr
    parsed = tomllib.loads(config.read_text())
    assert parsed["syslog"]["listen"] == listen
    assert parsed["daemon"]["log_level"] == "debug"
    assert parsed["journal"] == {"enabled": True}

    second = play(mepd_syslog_listen=listen, mepd_log_level="debug")
    assert second.returncode == 0, second.stdout + second.stderr
    assert recap(second)["changed"] == 0


def test_check_mode_shows_the_diff_and_changes_nothing(play: Play, tmp_path: Path) -> None:
    assert play().returncode == 0
    config = tmp_path / "root" / "etc" / "mepd" / "mepd.toml"
    before = config.read_text()
    result = play("--check", "--diff", mepd_log_level="warning")
    assert result.returncode == 0, result.stdout + result.stderr
    assert recap(result)["changed"] == 1
    assert '+log_level = "warning"' in result.stdout
    assert config.read_text() == before


def test_an_invalid_config_is_refused_and_the_old_one_kept(play: Play, tmp_path: Path) -> None:
    """The template's validate runs mepd --check-config: a bad value never reaches the host."""
    assert play().returncode == 0
    config = tmp_path / "root" / "etc" / "mepd" / "mepd.toml"
    before = config.read_text()
    result = play(mepd_drain_timeout="soon")
    assert result.returncode != 0
    assert "daemon.drain_timeout" in result.stdout
    assert config.read_text() == before
