"""mepctl finds a real daemon through --config even when a section it does not need fails the daemon's checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from mepd import config
from mepd.errors import ConfigErrors
from tests.helpers import ROOT, Mepd, free_port, snmp_target


def test_mepctl_finds_the_socket_when_a_keys_file_fails_its_check(mepd_factory: Callable[..., Mepd]) -> None:
    d = mepd_factory(snmp_target("sw1", free_port(), keys_file="keys.toml"))
    keys = d.root / "keys.toml"
    keys.write_text('community = "s3cret"\n')
    keys.chmod(0o600)
    d.start()
    # As mepctl's user sees it: a keys_file only mepd may read (root reads all, so "readable by others" stands in).
    keys.chmod(0o644)
    with pytest.raises(ConfigErrors, match="keys_file"):
        config.load(d.config_path)
    env = {k: v for k, v in os.environ.items() if k not in ("MEPD_SOCKET", "MEPD_CONFIG")}
    result = subprocess.run(
        [sys.executable, "-m", "mepd.cli.mepctl", "--config", str(d.config_path), "status", "--json"],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT, env=env,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["pid"] == d.proc.pid  # type: ignore[union-attr]
