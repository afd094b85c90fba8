"""Where blocking work runs off the event loop: child processes doing one job (the log writer, rrdtool), called
over a pipe, and `Thread`, one thread for a blocking handle that must stay on one thread (a SQLite connection).

A worker is `python -c` running `mepd.worker_child.serve` with only its own
module imported (not the daemon's code, not even asyncio), so it costs a few
MB, not a copy of the daemon.  Requests
go down its stdin and answers come back up its stdout, one pickled frame each,
in order: several calls can be in flight, so the worker never waits for the
daemon between two of them.  When the daemon dies, even by SIGKILL, the worker
reads end-of-file and exits after the call it is running.  It ignores SIGINT
and SIGTERM, which a terminal and systemd send to the whole process group or
cgroup: the daemon stops it itself, after its last writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pickle
import sys
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, ParamSpec, TypeVar

from mepd.worker_child import FRAME

_PACKAGE_ROOT: Final = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PIPE_SIZE: Final = 1 << 20  # fs.pipe-max-size's default

P = ParamSpec("P")
T = TypeVar("T")


class Thread:
    """One thread running blocking calls in the order made: for work that is small per call or needs the
    daemon's objects (a SQLite connection, the journal's handle), where a worker process would cost more.
    The thread starts at the first call, and again at the first call after `stop` (a component run again)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._pool: ThreadPoolExecutor | None = None

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
        return await asyncio.get_running_loop().run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    def stop(self, wait: bool = True, last: Callable[[], object] | None = None) -> None:
        """No more calls, then `last` (closing a handle: queued behind a call still running, never under it);
        with `wait`, returns once they have run."""
        pool, self._pool = self._pool, None
        if pool is not None:
            if last is not None:
                pool.submit(last)
            pool.shutdown(wait=wait)


def worker_argv() -> list[str]:
    """A worker process: it reads requests on its stdin and answers on its stdout (`mepd.worker_child.serve`)."""
    return [sys.executable, "-c",
            f"import sys; sys.path.insert(0, {_PACKAGE_ROOT!r}); from mepd.worker_child import serve; serve()"]


class WorkerDiedError(Exception):
    """The worker process exited or was killed; calls in flight are lost with it."""


class Worker:
    """The daemon's side: start a worker with `module.init(*args, *state())`, then `call` that module's functions.

    The process starts on the first call, and again on the first call after it
    died; calls made while it starts wait in order behind its init, so there
    is never more than one process, and the calls reach it in the order made.
    `state`, when given, is called as the init is sent: what a new process must
    be told of the caller's state at that moment (the RRD store's key names).
    """

    def __init__(self, module: str, init: str, *args: Any, nice: int = 0,
                 state: Callable[[], tuple[Any, ...]] | None = None) -> None:
        self.module = module
        self._init = init
        self._args = args
        self._nice = nice
        self._state = state
        self._proc: asyncio.subprocess.Process | None = None
        self._pending: deque[asyncio.Future[Any]] = deque()
        self._backlog: list[tuple[str, tuple[Any, ...]]] = []  # calls made while the process starts
        self._starting: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def _start(self) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(
                *worker_argv(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        except BaseException as e:  # fork failed, no file descriptors left: the waiting calls fail with it
            self._starting = None
            self._backlog.clear()
            self._fail(e if isinstance(e, Exception) else WorkerDiedError(f"worker {self.module} did not start"))
            if isinstance(e, Exception):
                return
            raise
        _widen(proc.stdin)
        state = self._state() if self._state is not None else ()
        self._send(proc, (self.module, self._init, self._args + state, self._nice))
        for message in self._backlog:
            self._send(proc, message)
        self._backlog.clear()
        self._proc, self._starting = proc, None
        self._reader = asyncio.create_task(self._answers(proc))

    @staticmethod
    def _send(proc: asyncio.subprocess.Process, message: object) -> None:
        assert proc.stdin is not None
        data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        proc.stdin.write(FRAME.pack(len(data)) + data)

    async def call(self, fn: str, *args: Any) -> Any:
        """`module.fn(*args)` in the worker; raises what it raised, or WorkerDiedError."""
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append(answer)
        proc = self._proc
        if proc is None:
            self._backlog.append((fn, args))
            if self._starting is None:
                self._starting = asyncio.create_task(self._start())
        else:
            self._send(proc, (fn, args))
            assert proc.stdin is not None
            with contextlib.suppress(ConnectionError):  # the reader sees the answers end and fails every call
                await proc.stdin.drain()
        return await answer

    async def _answers(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        try:
            while True:
                (size,) = FRAME.unpack(await proc.stdout.readexactly(FRAME.size))
                ok, value = pickle.loads(await proc.stdout.readexactly(size))  # noqa: S301 - our own child
                answer = self._pending.popleft()
                if not answer.done():
                    if ok:
                        answer.set_result(value)
                    else:
                        answer.set_exception(value)
        except asyncio.IncompleteReadError:
            pass
        finally:
            self._died(proc)

    def _died(self, proc: asyncio.subprocess.Process) -> None:
        if self._proc is proc:
            self._proc = None
        self._fail(WorkerDiedError(f"worker {self.module} (pid {proc.pid}) died"))

    def _fail(self, error: Exception) -> None:
        while self._pending:
            answer = self._pending.popleft()
            if not answer.done():
                answer.set_exception(error)

    async def stop(self) -> None:
        """Close its input (it exits after the calls it has) and wait for it."""
        if self._starting is not None:
            await self._starting
        proc, reader = self._proc, self._reader
        if proc is None or reader is None:
            return
        assert proc.stdin is not None
        proc.stdin.close()
        with contextlib.suppress(ConnectionError):
            await proc.stdin.wait_closed()
        await reader
        await proc.wait()


def _widen(stream: asyncio.StreamWriter | None) -> None:
    """Make the request pipe hold whole requests (a 2,000-record batch pickles to ~350 KB).

    With the default 64 KiB the worker would read a batch in pieces, each
    refilled only when the event loop comes back to its pipe: while the loop
    parses a large read, the worker would wait instead of writing.
    """
    assert stream is not None
    pipe = stream.transport.get_extra_info("pipe")
    with contextlib.suppress(OSError):  # over the user's pipe quota: the default size still works
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
