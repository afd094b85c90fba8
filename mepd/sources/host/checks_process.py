"""The `process` check: processes found by name and/or pidfile in /proc, their count, CPU and RSS.

/proc is read directly (no psutil): one `stat` file per process tells the name,
the state, the CPU ticks and the resident pages, which is all this check needs.
The scan runs in a thread (`scan`), off the event loop.  CPU is a percentage
of one core over the time since the last scan, summed over the processes seen
in both (a process is told apart from a later one with the same pid by its
start time).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

PROC: Final = "/proc"
COMM_MAX: Final = 15  # the kernel keeps the first 15 bytes of a program's name in `comm`
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")
PAGE_SIZE: Final = os.sysconf("SC_PAGE_SIZE")

ProcessId = tuple[int, int]  # pid, start time in ticks since boot


@dataclass(frozen=True, slots=True)
class ProcessStat:
    pid: int
    start: int
    name: str  # `comm`
    ticks: int  # user + system CPU time
    rss_bytes: int


def read_stat(pid: int, proc: str = PROC) -> ProcessStat | None:
    """A process from /proc/PID/stat; None when it is gone or a zombie (which no longer runs)."""
    try:
        with open(f"{proc}/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:  # gone between the listing and the read, or not a process
        return None
    left, right = data.find(b"("), data.rfind(b")")
    fields = data[right + 2:].split()
    if left < 0 or right < left or len(fields) < 22 or fields[0] in (b"Z", b"X"):
        return None
    # Fields from 3 on (proc(5)): 14 utime, 15 stime, 22 starttime, 24 rss (pages).
    ticks = int(fields[11]) + int(fields[12])
    return ProcessStat(pid, int(fields[19]), data[left + 1:right].decode(errors="replace"), ticks,
                       int(fields[21]) * PAGE_SIZE)


def _argv0_name(pid: int, proc: str) -> str:
    try:
        with open(f"{proc}/{pid}/cmdline", "rb") as fh:
            argv0 = fh.read(4096).split(b"\0", 1)[0]
    except OSError:
        return ""
    return os.path.basename(argv0).decode(errors="replace")


def named(stat: ProcessStat, name: str, proc: str = PROC) -> bool:
    """Whether a process runs the program `name`: its `comm`, or for a name longer than `comm` keeps,
    the file name of its argv[0]."""
    if stat.name != name[:COMM_MAX]:
        return False
    return len(name) <= COMM_MAX or _argv0_name(stat.pid, proc) == name


def _pids(proc: str) -> Iterator[int]:
    with os.scandir(proc) as entries:
        for entry in entries:
            if entry.name.isdigit():
                yield int(entry.name)


def read_pidfile(path: str) -> int:
    """The pid in a pidfile; OSError or ValueError saying why there is none."""
    with open(path, "rb") as fh:
        text = fh.read(64).strip()
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"no pid in {path}")
    return int(text)


def scan(name: str, pidfile: str, proc: str = PROC) -> list[ProcessStat]:
    """The processes the check watches: the pidfile's (when it runs `name`, if a name is given), else every
    process running `name`.  OSError or ValueError when the pidfile cannot be read."""
    if pidfile:
        stat = read_stat(read_pidfile(pidfile), proc)
        return [stat] if stat is not None and (not name or named(stat, name, proc)) else []
    return [s for pid in _pids(proc) if (s := read_stat(pid, proc)) is not None and named(s, name, proc)]


def hidepid(mountinfo: str = "/proc/self/mountinfo") -> str:
    """The hidepid= option /proc is mounted with, "" when every process is visible.  With one, other users'
    processes are hidden from mepd: the packaged unit's ProtectProc=invisible does that."""
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return ""
    for line in lines:
        fields = line.split()
        if len(fields) > 4 and fields[4] == PROC:
            options = line.rpartition(" - ")[2].split()[-1].split(",")  # the file system's own options
            return next((o for o in options if o.startswith("hidepid=") and o not in ("hidepid=0", "hidepid=off")),
                        "")
    return ""


class CpuMeter:
    """CPU use between successive scans, as a percentage of one core."""

    def __init__(self) -> None:
        self._last: dict[ProcessId, int] = {}
        self._at: float | None = None

    def update(self, stats: list[ProcessStat], now: float) -> float | None:
        """None on the first scan (nothing to compare with), or when no time passed."""
        ticks = {(s.pid, s.start): s.ticks for s in stats}
        last, at = self._last, self._at
        self._last, self._at = ticks, now
        if at is None or now <= at:
            return None
        used = sum(t - last[pid] for pid, t in ticks.items() if pid in last)
        return 100.0 * used / CLOCK_TICKS / (now - at)
