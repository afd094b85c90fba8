"""Fixtures: a directory of real journal files, and source + log store pairs that can crash."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from mepd.config import JournalConfig
from tests.integration.journal.journal_files import JOURNAL_REMOTE, Daemon, JournalDir


@pytest.fixture
def journal_dir(tmp_path: Path) -> JournalDir:
    if shutil.which(JOURNAL_REMOTE) is None:
        pytest.fail(f"{JOURNAL_REMOTE} missing: apt-get install systemd-journal-remote")
    path = tmp_path / "journal"
    path.mkdir()
    return JournalDir(path)


@pytest.fixture
async def daemons(tmp_path: Path) -> AsyncIterator[Callable[..., Daemon]]:
    """`daemons(cfg)` builds one; each shares the same database, as restarts of one daemon do."""
    made: list[Daemon] = []

    def make(cfg: JournalConfig, queue: int = 100) -> Daemon:
        d = Daemon(tmp_path / "logs.db", cfg, queue)
        made.append(d)
        return d

    yield make
    for d in made:
        if any(not t.done() for t in d.tasks):
            await d.crash()
