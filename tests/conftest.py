"""Shared fixtures: short socket paths and real mepd processes (see tests/helpers.py)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import Mepd


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temp dir with a short path: Unix socket paths are limited to ~107 bytes."""
    path = tempfile.mkdtemp(prefix="mepd-", dir="/tmp")
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def mepd_factory(short_tmp: Path) -> Iterator[Callable[..., Mepd]]:
    """Build (not start) a daemon: `mepd_factory(config_toml_after_daemon_section)`."""
    made: list[Mepd] = []

    def make(config_text: str = "", env: dict[str, str] | None = None) -> Mepd:
        root = short_tmp / f"d{len(made)}"
        root.mkdir()
        daemon = Mepd(root, config_text, env)
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()
        daemon.notify.close()
