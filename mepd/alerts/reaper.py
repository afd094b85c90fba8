"""Runs one corrective action as a child subreaper, so what it daemonizes can still be killed at its timeout.

`run_action` starts this file as `python -P -s reaper.py STATUS_FD GRACE ARGV...`; mepd never calls it
in-process.  PR_SET_CHILD_SUBREAPER makes every orphaned descendant (`setsid -f`, a double fork) a child of
this process instead of init's, so the action's whole tree stays findable through the parent links in /proc
whatever sessions or process groups it made.  SIGTERM (the action's timeout) sends SIGTERM and SIGCONT to
every descendant, then SIGKILL to what is left after GRACE seconds; SIGINT (mepd shutting down) sends SIGKILL
at once.  Either way this process exits only when no descendant it may signal is left (a setuid program
may refuse; mepd.service's NoNewPrivileges rules those out).  When the action exits by itself,
what it daemonized is left running: starting a service is what such an action is for.

The action's fate is written to STATUS_FD as one line: "exit N", "signal N", or "error TEXT" when it could
not be started.  Standard library only: this file runs outside mepd's package, without mepd on sys.path.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from typing import Final

PR_SET_CHILD_SUBREAPER: Final = 36
POLL: Final = 0.05
# run_action sets it so that Python does not add LC_CTYPE to the action's minimal environment (PEP 538).
COERCE_VAR: Final = "PYTHONCOERCECLOCALE"
WAITED: Final = frozenset({signal.SIGCHLD, signal.SIGTERM, signal.SIGINT})


def descendants(root: int) -> list[int]:
    """The live (not zombie) processes below `root`, found through the parent links in /proc."""
    children: dict[int, list[int]] = {}
    dead: set[int] = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                state, ppid = f.read().rsplit(b")", 1)[1].split()[:2]  # the name in () may hold anything
        except OSError:  # exited meanwhile
            continue
        children.setdefault(int(ppid), []).append(int(name))
        if state in (b"Z", b"X"):
            dead.add(int(name))
    found: list[int] = []
    todo = [root]
    while todo:
        for pid in children.get(todo.pop(), ()):
            todo.append(pid)
            if pid not in dead:
                found.append(pid)
    return found


def become_subreaper() -> None:
    """Without it (a seccomp filter refusing prctl) the action still runs, and its output says what is lost."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print(f"mepd: prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}; what this action "
              "daemonizes escapes its timeout", file=sys.stderr, flush=True)


def reap(action: int) -> int | None:
    """Collect every exited child; the action's wait status if it is among them."""
    status = None
    while True:
        try:
            pid, st = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status
        if pid == 0:
            return status
        if pid == action:
            status = st


def signal_all(pids: list[int], sig: signal.Signals) -> bool:
    """Whether any of them took the signal (a setuid program, sudo, may refuse it)."""
    took = False
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
            took = True
    return took


def supervise(action: int, grace: float) -> int:
    """Wait for the action; after SIGTERM or SIGINT, for its whole tree to be gone.  Its wait status."""
    status: int | None = None
    kill_at: float | None = None  # set by SIGTERM/SIGINT: when the survivors get SIGKILL
    termed: set[int] = set()
    while True:
        info = signal.sigwaitinfo(WAITED) if kill_at is None else signal.sigtimedwait(WAITED, POLL)
        if info is not None and info.si_signo == signal.SIGTERM and kill_at is None:
            kill_at = time.monotonic() + grace
        elif info is not None and info.si_signo == signal.SIGINT:
            kill_at = time.monotonic()
        st = reap(action)
        status = st if st is not None else status
        if kill_at is None:
            if status is not None:
                return status  # exited by itself: what it daemonized stays
            continue
        live = descendants(os.getpid())
        if not live and status is not None:
            return status
        if time.monotonic() >= kill_at:
            if not signal_all(live, signal.SIGKILL) and status is not None:
                return status  # what is left cannot be killed by this user: waiting would not help
        else:
            new = [pid for pid in live if pid not in termed]
            signal_all(new, signal.SIGTERM)
            signal_all(new, signal.SIGCONT)  # a stopped process acts on SIGTERM only once continued
            termed.update(new)


def main(args: list[str]) -> int:
    status_fd, grace, argv = int(args[0]), float(args[1]), args[2:]
    os.set_inheritable(status_fd, False)
    become_subreaper()
    signal.pthread_sigmask(signal.SIG_BLOCK, WAITED)
    env = {k: v for k, v in os.environ.items() if k != COERCE_VAR}
    try:
        # The action gets no blocked signals and SIGPIPE/SIGXFSZ back to default, as subprocess would give it.
        action = os.posix_spawnp(argv[0], argv, env, setsigmask=(),
                                 setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
    except OSError as e:
        os.write(status_fd, f"error {type(e).__name__}: {e}\n".encode())
        return 0
    status = supervise(action, grace)
    code = os.waitstatus_to_exitcode(status)
    os.write(status_fd, (f"exit {code}\n" if code >= 0 else f"signal {-code}\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
