"""Child processes doing one job for the daemon through a process pool: the log writer.

Each is a one-worker ProcessPoolExecutor started with spawn (the daemon has
threads, and a forked copy of their locks can deadlock).  Such a worker would
outlive a daemon killed with SIGKILL: it holds both ends of its own call
queue's pipe, so it never reads end-of-file.  These ones have the kernel kill
them when the daemon dies (PR_SET_PDEATHSIG), and they ignore SIGINT and
SIGTERM, which a terminal and systemd send to the whole process group or
cgroup: the daemon stops them itself, after its last writes.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Final

_PR_SET_PDEATHSIG: Final = 1


def single_worker(initializer: Callable[..., None], *initargs: Any, nice: int = 0) -> ProcessPoolExecutor:
    """A pool of one child process, set up by `initializer(*initargs)`; submit from the event loop's thread.

    The death signal is tied to the thread that starts the child, so that has
    to be a thread that lives as long as the daemon.  `nice` lowers the child's
    priority: work that can wait for a queue yields the CPU to the receiving loop.
    """
    return ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn"),
        initializer=_start, initargs=(os.getpid(), nice, initializer, initargs),
    )


def _start(parent: int, nice: int, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
    with contextlib.suppress(OSError):  # a priority is a preference: never a reason not to start
        os.nice(nice)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the daemon died before the death signal was set
        os._exit(1)
    initializer(*initargs)
