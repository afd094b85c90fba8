"""The process check's reading of /proc: stat lines with odd names, names longer than `comm`, pidfiles, CPU."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mepd.sources.host.checks_process import (
    CLOCK_TICKS,
    PAGE_SIZE,
    CpuMeter,
    ProcessStat,
    hidepid,
    named,
    read_stat,
    scan,
)

# proc(5): pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime
# cstime priority nice threads itrealvalue starttime vsize rss ...
STAT = "{pid} ({comm}) {state} 1 1 1 0 -1 4194560 100 0 0 0 {utime} {stime} 0 0 20 0 1 0 {start} 10000 {rss} 1 2 3\n"


def fake_proc(root: Path, pid: int, comm: str, *, state: str = "S", utime: int = 7, stime: int = 3,
              start: int = 1000, rss: int = 25, cmdline: bytes = b"") -> None:
    d = root / str(pid)
    d.mkdir()
    (d / "stat").write_text(STAT.format(pid=pid, comm=comm, state=state, utime=utime, stime=stime, start=start,
                                        rss=rss))
    (d / "cmdline").write_bytes(cmdline)


def test_stat_with_spaces_and_parentheses_in_the_name(tmp_path: Path) -> None:
    fake_proc(tmp_path, 42, "a (b) c")
    assert read_stat(42, str(tmp_path)) == ProcessStat(42, 1000, "a (b) c", 10, 25 * PAGE_SIZE)


def test_zombies_and_vanished_processes_are_not_running(tmp_path: Path) -> None:
    fake_proc(tmp_path, 42, "sshd", state="Z")
    assert read_stat(42, str(tmp_path)) is None
    assert read_stat(43, str(tmp_path)) is None


def test_names_longer_than_comm_match_on_argv0(tmp_path: Path) -> None:
    fake_proc(tmp_path, 1, "sshd", cmdline=b"/usr/sbin/sshd\0-D\0")
    fake_proc(tmp_path, 2, "sshd-session-he", cmdline=b"/usr/lib/openssh/sshd-session-helper\0")
    fake_proc(tmp_path, 3, "sshd-session-he", cmdline=b"/usr/lib/openssh/sshd-session-hex\0")
    fake_proc(tmp_path, 4, "other")
    proc = str(tmp_path)
    assert [s.pid for s in scan("sshd", "", proc)] == [1]
    assert [s.pid for s in scan("sshd-session-helper", "", proc)] == [2]
    assert sorted(s.pid for s in scan("sshd-session-he", "", proc)) == [2, 3]  # 15 bytes: `comm` says it all
    stat = read_stat(4, proc)
    assert stat is not None
    assert named(stat, "other", proc)


def test_pidfile(tmp_path: Path) -> None:
    fake_proc(tmp_path, 7, "myapp")
    pidfile = tmp_path / "myapp.pid"
    pidfile.write_text("7\n")
    proc = str(tmp_path)
    assert [s.pid for s in scan("", str(pidfile), proc)] == [7]
    assert [s.pid for s in scan("myapp", str(pidfile), proc)] == [7]
    assert scan("nginx", str(pidfile), proc) == []  # the pid now runs another program
    pidfile.write_text("garbage")
    with pytest.raises(ValueError, match="no pid in"):
        scan("", str(pidfile), proc)
    with pytest.raises(FileNotFoundError):
        scan("", str(tmp_path / "none.pid"), proc)


def test_cpu_between_scans_counts_processes_seen_in_both() -> None:
    meter = CpuMeter()
    a0, b0 = ProcessStat(1, 100, "x", 50, 0), ProcessStat(2, 100, "x", 10, 0)
    assert meter.update([a0, b0], 10.0) is None
    a1 = ProcessStat(1, 100, "x", 50 + CLOCK_TICKS, 0)  # one second of CPU over two seconds
    reused = ProcessStat(2, 999, "x", 10_000, 0)  # pid 2 again, but a new process: not compared
    assert meter.update([a1, reused], 12.0) == pytest.approx(50.0)
    assert meter.update([], 12.0) is None  # no time passed


def test_this_process_is_found_in_the_real_proc() -> None:
    stat = read_stat(os.getpid())
    assert stat is not None
    assert stat.rss_bytes > 0


MOUNTINFO = """\
22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
23 1 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw{options}
24 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
"""


@pytest.mark.parametrize(("options", "expected"), [
    ("", ""), (",hidepid=invisible", "hidepid=invisible"), (",hidepid=2", "hidepid=2"), (",hidepid=off", ""),
    (",hidepid=ptraceable,subset=pid", "hidepid=ptraceable"),
])
def test_hidden_processes_from_the_proc_mount(tmp_path: Path, options: str, expected: str) -> None:
    """systemd's ProtectProc=invisible mounts /proc with hidepid=invisible: other users' processes vanish."""
    path = tmp_path / "mountinfo"
    path.write_text(MOUNTINFO.format(options=options))
    assert hidepid(str(path)) == expected
    assert hidepid(str(tmp_path / "none")) == ""
