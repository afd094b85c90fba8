"""Fixtures of the tail tests: daemons on a temp database and writer processes, stopped at teardown."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from mepd.config import TailConfig
from tests.integration.tail.tailkit import Daemon, Writer


@pytest_asyncio.fixture
async def daemon_factory(tmp_path: Path) -> AsyncIterator[Callable[[TailConfig], Daemon]]:
    made: list[Daemon] = []

    def make(cfg: TailConfig) -> Daemon:
        d = Daemon(str(tmp_path / "state" / "logs.db"), cfg)
        made.append(d)
        return d

    yield make
    for d in made:
        await d.crash()


@pytest.fixture
def writers() -> Iterator[Callable[[Path, int, int, float], Writer]]:
    started: list[Writer] = []

    def start(path: Path, first: int, count: int, pace: float = 0.0) -> Writer:
        w = Writer(path, first, count, pace)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


