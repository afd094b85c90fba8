"""mepd.workers with a stdlib module as the job: calls, errors, pipelining, death and stop of the child."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from mepd.workers import Worker, WorkerDiedError
from tests.helpers import until


async def test_calls_run_in_a_child_in_order_and_errors_come_back() -> None:
    worker = Worker("os", "getpid")
    pid = await worker.call("getpid")
    assert pid == worker.pid
    assert pid != os.getpid()
    results = await asyncio.gather(*(worker.call("fspath", f"/file{i}") for i in range(200)))
    assert results == [f"/file{i}" for i in range(200)]
    with pytest.raises(FileNotFoundError):
        await worker.call("stat", "/no/such/file")
    assert await worker.call("getpid") == pid, "an error does not cost the worker"
    await worker.stop()
    assert worker.pid is None
    with pytest.raises(ProcessLookupError):  # exited and reaped
        os.kill(pid, 0)


async def test_an_answer_that_does_not_pickle_is_an_error_not_a_hang() -> None:
    worker = Worker("os", "getpid")
    with pytest.raises(RuntimeError, match="scandir"):
        await worker.call("scandir", "/")
    assert await worker.call("fspath", "still") == "still"
    await worker.stop()


async def test_a_killed_worker_fails_its_calls_and_the_next_call_starts_another() -> None:
    worker = Worker("time", "sleep", 0)
    await worker.call("monotonic")
    first = worker.pid
    assert first is not None
    waiting = asyncio.ensure_future(worker.call("sleep", 3600))
    await until(lambda: len(worker._pending) == 1, "the call to be in flight")
    os.kill(first, signal.SIGKILL)
    with pytest.raises(WorkerDiedError):
        await waiting
    await worker.call("monotonic")
    assert worker.pid not in (None, first)
    await worker.stop()


async def test_the_worker_ignores_sigterm_and_ends_when_its_input_closes() -> None:
    """systemd sends SIGTERM to the whole cgroup: the daemon, not the signal, ends its worker."""
    worker = Worker("os", "getpid")
    pid = await worker.call("getpid")
    os.kill(pid, signal.SIGTERM)
    assert await worker.call("getpid") == pid
    await worker.stop()
    with pytest.raises(ProcessLookupError):  # exited and reaped
        os.kill(pid, 0)


async def test_calls_made_while_the_worker_starts_go_to_one_process_in_order() -> None:
    worker = Worker("os", "getpid")
    answers = await asyncio.gather(*(worker.call("getpid") for _ in range(5)),
                                   *(worker.call("fspath", f"/file{i}") for i in range(5)))
    assert answers == [worker.pid] * 5 + [f"/file{i}" for i in range(5)]
    await worker.stop()


async def test_a_new_process_is_told_the_callers_state_at_its_start(tmp_path: Path) -> None:
    """`state` is read when each process starts: a replacement learns what the caller knows by then."""
    told = [tmp_path]
    worker = Worker("os", "chdir", state=lambda: (str(told[-1]),))
    assert await worker.call("getcwd") == str(tmp_path)
    pid = worker.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await until(lambda: worker.pid is None, "the worker's death to be seen")
    told.append(tmp_path / "second")
    told[-1].mkdir()
    assert await worker.call("getcwd") == str(tmp_path / "second")
    await worker.stop()
