"""A log writer like a daemon's: appends numbered lines, reopens its file on SIGHUP (logrotate's postrotate).

Usage: writer.py PATH FIRST COUNT PACE_SECONDS; prints the number written and exits.
"""

from __future__ import annotations

import os
import signal
import sys
import time

reopen = False


def _hup(_signum: int, _frame: object) -> None:
    global reopen  # noqa: PLW0603 - a signal handler can only talk through a global
    reopen = True


def main() -> None:
    global reopen  # noqa: PLW0603
    path, first, count, pace = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    signal.signal(signal.SIGHUP, _hup)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    fd = os.open(path, flags, 0o644)
    for i in range(first, first + count):
        if reopen:
            reopen = False
            os.close(fd)
            fd = os.open(path, flags, 0o644)
        os.write(fd, b"line %08d some payload to make the line longer\n" % i)
        if pace:
            time.sleep(pace)  # workload pacing, not synchronisation
    os.close(fd)
    print(count, flush=True)


if __name__ == "__main__":
    main()
