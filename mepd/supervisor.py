"""Runs components so that one failing never takes the daemon down.

Like supervisord: STARTING -> RUNNING, on failure BACKOFF (jittered exponential
delay) then STARTING again, FATAL after too many failures in a row that each
ran less than `quick_seconds`.  State changes are logged, nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from mepd.model import rfc3339
from mepd.pipeline import Counters

log = logging.getLogger(__name__)


class Component(Protocol):
    """What every source, sink and service looks like to the daemon.

    `run` runs until cancelled; raising means it failed.  It calls `started()`
    once it is ready (listening, connected), which READY=1 waits for.  A
    component may also have `details() -> dict`, shown in status (an SNMP
    target's reachability and last error, which are states, not failures).
    """

    name: str
    counters: Counters

    async def run(self, started: Callable[[], None]) -> None: ...


class State(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    FATAL = "fatal"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    """One component as `mepctl status`, the dashboard and /metrics show it; `to_json` is the API's form."""

    name: str
    state: State
    since: float
    restarts: int
    last_error: str | None
    counters: Mapping[str, int]
    details: Mapping[str, object] | None = None  # the component's own `details()`, when it has one

    def to_json(self) -> dict[str, object]:
        return {
            **({"details": self.details} if self.details is not None else {}),
            "name": self.name,
            "state": str(self.state),
            "since": rfc3339(self.since),
            "restarts": self.restarts,
            "last_error": self.last_error,
            "counters": dict(self.counters),
        }


class Supervised:
    """One component under supervision; `status()` is what `mepctl status` shows of it."""

    def __init__(
        self,
        component: Component,
        *,
        quick_seconds: float = 10.0,
        max_quick_failures: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.component = component
        self.state = State.STOPPED
        self.restarts = 0
        self.last_error: str | None = None
        self.since = time.time()
        self.settled = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self._quick_seconds = quick_seconds
        self._max_quick = max_quick_failures
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._sleep = sleep  # a test's, to see the backoff delays without waiting them

    @property
    def name(self) -> str:
        return self.component.name

    def start(self) -> asyncio.Task[None]:
        self.task = asyncio.create_task(self._loop(), name=self.name)
        return self.task

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        self._set(State.STOPPED)

    def _set(self, state: State) -> None:
        if state is not self.state:
            log.info("%s: %s -> %s", self.name, self.state, state)
            self.state = state
            self.since = time.time()

    def _started(self) -> None:
        self._set(State.RUNNING)
        self.settled.set()

    async def _loop(self) -> None:
        quick_failures = 0
        loop = asyncio.get_running_loop()
        while True:
            self._set(State.STARTING)
            began = loop.time()
            try:
                await self.component.run(self._started)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.restarts += 1
                self.last_error = f"{type(e).__name__}: {e}"
                self.settled.set()
                if isinstance(e, OSError):  # the environment (a port in use, a missing file): its message says it all
                    log.error("%s failed: %s", self.name, self.last_error)
                else:
                    log.exception("%s failed", self.name)
            else:
                self.settled.set()
                self._set(State.STOPPED)
                return
            quick_failures = quick_failures + 1 if loop.time() - began < self._quick_seconds else 1
            if quick_failures >= self._max_quick:
                log.error("%s: giving up after %d quick failures: %s", self.name, quick_failures, self.last_error)
                self._set(State.FATAL)
                return
            self._set(State.BACKOFF)
            delay = min(self._backoff_max, self._backoff_base * 2 ** (quick_failures - 1))
            await self._sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not crypto

    def status(self) -> ComponentStatus:
        details = getattr(self.component, "details", None)
        return ComponentStatus(self.name, self.state, self.since, self.restarts, self.last_error,
                               self.component.counters.snapshot(), details() if callable(details) else None)
