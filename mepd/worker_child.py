"""The worker process's side of `mepd.workers`: stdlib only, so that a worker stays small."""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import signal
import struct
from typing import IO, Any, Final

FRAME: Final = struct.Struct("<Q")  # the length of the pickle that follows


def serve() -> None:
    """The worker process: run calls in order until the daemon closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    requests, answers = os.fdopen(os.dup(0), "rb"), os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the answers
    with open(os.devnull, "rb") as null:
        os.dup2(null.fileno(), 0)
    try:
        module_name, init, args, nice = receive(requests)
    except EOFError:
        return
    with contextlib.suppress(OSError):  # a priority is a preference: never a reason not to start
        os.nice(nice)
    module = importlib.import_module(module_name)
    getattr(module, init)(*args)
    while True:
        try:
            fn, args = receive(requests)
        except EOFError:
            return
        try:
            answer: tuple[bool, object] = (True, getattr(module, fn)(*args))
        except Exception as e:  # noqa: BLE001 - sent back to the caller, who raises it
            answer = (False, e)
        try:
            try:
                send(answers, answer)
            except Exception as e:  # noqa: BLE001 - an answer that does not pickle is an error too
                send(answers, (False, RuntimeError(f"{fn}: {type(e).__name__}: {e}")))
        except BrokenPipeError:
            return


def send(stream: IO[bytes], message: object) -> None:
    """One frame: the pickle's length, then the pickle; whole, then flushed."""
    data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    stream.write(FRAME.pack(len(data)) + data)
    stream.flush()


def receive(stream: IO[bytes]) -> Any:
    """The next frame's message; EOFError when the other side has gone."""
    head = stream.read(FRAME.size)
    if len(head) < FRAME.size:
        raise EOFError
    (size,) = FRAME.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)  # noqa: S301 - our own daemon, over our own pipe
