from __future__ import annotations

import asyncio
from collections.abc import Callable

from mepd.pipeline import Counters
from mepd.supervisor import State, Supervised


class Flaky:
    """Fails `failures` times, then runs until cancelled."""

    def __init__(self, failures: int) -> None:
        self.name = "flaky"
        self.counters = Counters()
        self.failures = failures
        self.runs = 0
        self.running = asyncio.Event()

    async def run(self, started: Callable[[], None]) -> None:
        self.runs += 1
        if self.runs <= self.failures:
            raise RuntimeError(f"boom {self.runs}")
        started()
        self.running.set()
        await asyncio.Future()


async def test_failing_component_is_restarted_with_backoff() -> None:
    comp = Flaky(failures=3)
    backoffs: list[tuple[State, float]] = []

    async def sleep(delay: float) -> None:
        backoffs.append((sup.state, delay))

    sup = Supervised(comp, backoff_base=1.0, sleep=sleep)
    sup.start()
    await asyncio.wait_for(comp.running.wait(), 10)
    assert sup.state is State.RUNNING
    # In BACKOFF before each restart, for a jittered (±20 %) delay that doubles at each quick failure.
    assert [state for state, _ in backoffs] == [State.BACKOFF] * 3
    for (_, delay), base in zip(backoffs, (1.0, 2.0, 4.0), strict=True):
        assert 0.8 * base <= delay <= 1.2 * base
    assert sup.restarts == 3
    assert sup.last_error == "RuntimeError: boom 3"
    await sup.stop()
    assert sup.state is State.STOPPED
    assert sup.status().restarts == 3


async def test_gives_up_after_quick_failures_without_raising() -> None:
    comp = Flaky(failures=100)
    sup = Supervised(comp, backoff_base=0.001, max_quick_failures=3)
    task = sup.start()
    await asyncio.wait_for(task, 10)
    assert sup.state is State.FATAL
    assert comp.runs == 3
    assert task.exception() is None
