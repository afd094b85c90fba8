"""The log writer, except that it kills itself (SIGKILL) once, right after its first batch commits.

Run as a worker module in place of `mepd.store.logs.worker`: a writer dying between its commit and its
answer, which the OOM killer can do at any instant but no test can time from outside.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from mepd.store.logs import worker

_marker = ""


def open(path: str) -> None:  # noqa: A001 - the writer's own name for its first call
    global _marker  # noqa: PLW0603 - one writer per process, as in the module it wraps
    _marker = path + ".killed"  # the next writer process, started for the retry, must not die again
    worker.open(path)


def write(*args: Any) -> Any:
    last = worker.write(*args)
    if not os.path.exists(_marker):
        Path(_marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return last


def __getattr__(name: str) -> Any:
    return getattr(worker, name)
