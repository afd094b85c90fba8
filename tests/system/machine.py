"""A booted Debian 12: a cached mmdebstrap root file system run by systemd-nspawn --boot.

Each container boots from an overlay on the cached root file system (its
changes go to a temp dir, the cache stays clean), has a private network (only
its own loopback: port 514 inside is not the host's) and is entered with
`nsenter -a` on its systemd.  The root file system is built from Debian's
packages with the package's dependencies already in, so `apt-get install
./mepd_*.deb` inside needs no network.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.helpers import ROOT, wait_for

SUITE = "bookworm"
# What every test machine has besides the package's own dependencies: an init,
# D-Bus for systemctl, useradd for the test users, rsyslog to forward; sshd,
# sudo and python3-apt for Ansible (its apt module needs python3-apt on the host).
BASE_PACKAGES = ("systemd", "systemd-sysv", "dbus", "passwd", "rsyslog", "procps",
                 "openssh-server", "sudo", "python3-apt")
CACHE = ROOT / "var" / "system"
MAX_AGE = 7 * 24 * 3600.0
BOOT_TIMEOUT = 120.0


def _mirror() -> list[str]:
    """The Debian archive the host's apt uses (its deb822 sources), else mmdebstrap's default."""
    override = os.environ.get("MEPD_SYSTEM_MIRROR")
    if override:
        return [override]
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    return [str(sources)] if sources.is_file() else []


def debian_root(packages: Sequence[str], base: Sequence[str] = BASE_PACKAGES) -> Path:
    """A Debian 12 root file system with `packages` (and `base`) installed, cached under var/system for a week.

    Keyed by the package list, so a package with new dependencies gets a new
    one; built into a temp dir and renamed, under a lock, so concurrent runs
    never see half of one.
    """
    for name in ("mmdebstrap", "systemd-nspawn", "nsenter"):
        if shutil.which(name) is None:
            pytest.fail(f"{name} is needed for this test; install it (apt: mmdebstrap systemd-container util-linux)")
    wanted = sorted(set(base) | set(packages))
    key = hashlib.sha256(" ".join(wanted).encode()).hexdigest()[:12]
    root = CACHE / f"debian12-{key}"
    stamp = root / ".mepd-built"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and time.time() - stamp.stat().st_mtime < MAX_AGE:
            return root
        for old in CACHE.glob(f"debian12-{key}*"):
            shutil.rmtree(old)
        tmp = CACHE / f"debian12-{key}.tmp"
        result = subprocess.run(
            ["mmdebstrap", "--variant=minbase", f"--include={','.join(wanted)}",
             "--skip=cleanup/apt/lists", SUITE, str(tmp), *_mirror()],
            capture_output=True, text=True, timeout=900, check=False)
        if result.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            pytest.fail(f"mmdebstrap exited {result.returncode}:\n{result.stderr[-4000:]}")
        tmp.rename(root)
        stamp.touch()
    return root


def package_depends(deb: Path) -> list[str]:
    """The package names in a .deb's Depends (first of each alternative, versions dropped)."""
    depends = subprocess.run(["dpkg-deb", "-f", str(deb), "Depends"], capture_output=True, text=True,
                             check=True).stdout
    return [re.split(r"[ (:|]", d.strip(), maxsplit=1)[0] for d in depends.split(",") if d.strip()]


class Machine:
    """One booted container; `sh` runs a script inside as root or as a user."""

    def __init__(self, lower: Path, work: Path) -> None:
        self.name = f"mepd-{uuid.uuid4().hex[:10]}"
        self.work = work
        self.root = work / "root"
        self.console = work / "console.log"
        for sub in ("root", "upper", "ovl"):
            (work / sub).mkdir()
        subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={lower},upperdir={work / 'upper'},workdir={work / 'ovl'}", str(self.root)],
            check=True, capture_output=True)
        self.leader: subprocess.Popen[bytes] | None = None

    def boot(self) -> None:
        """Start systemd-nspawn --boot and wait until the container's systemd says `running`."""
        with open(self.console, "wb") as out:
            self.leader = subprocess.Popen(
                ["systemd-nspawn", "-D", str(self.root), "-M", self.name, "--boot", "--register=no",
                 "--keep-unit", "--private-network", "--quiet"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self._init_pid, 30, f"the init of container {self.name}")
        # systemctl says "offline" until systemd's private bus socket exists; then --wait for the boot's end.
        wait_for(lambda: self.run("systemctl", "is-system-running").stdout.strip() not in ("", "offline"), 30,
                 f"the systemd of container {self.name} to answer")
        result = self.run("systemctl", "is-system-running", "--wait", timeout=BOOT_TIMEOUT)
        if result.stdout.strip() != "running":
            failed = self.run("systemctl", "--failed", "--no-pager").stdout
            pytest.fail(f"container {self.name} booted {result.stdout.strip()!r} ({result.stderr.strip()}):\n"
                        f"{failed}\n{self.console_tail()}")

    def _init_pid(self) -> int | None:
        assert self.leader is not None
        if self.leader.poll() is not None:
            pytest.fail(f"systemd-nspawn exited {self.leader.returncode}:\n{self.console_tail()}")
        children = Path(f"/proc/{self.leader.pid}/task/{self.leader.pid}/children")
        with contextlib.suppress(OSError):
            pids = children.read_text().split()
            if pids and Path(f"/proc/{pids[0]}/exe").resolve().name == "systemd":
                return int(pids[0])
        return None

    @property
    def init_pid(self) -> int:
        pid = self._init_pid()
        assert pid is not None, f"container {self.name} has no init"
        return pid

    def run(self, *argv: str, user: str | None = None, timeout: float = 120,
            check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run argv inside the container (as `user`, with runuser); the caller checks the result."""
        inner = ["runuser", "-u", user, "--", *argv] if user else list(argv)
        result = subprocess.run(["nsenter", "-t", str(self.init_pid), "-a", "--", *inner],
                                capture_output=True, text=True, timeout=timeout, check=False,
                                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
                                     "DEBIAN_FRONTEND": "noninteractive"})
        if check and result.returncode != 0:
            pytest.fail(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def sh(self, script: str, user: str | None = None, timeout: float = 120,
           check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a shell script inside; by default a non-zero exit fails the test."""
        return self.run("sh", "-ec", script, user=user, timeout=timeout, check=check)

    def console_tail(self) -> str:
        return self.console.read_text(errors="replace")[-4000:] if self.console.exists() else ""

    def stop(self) -> None:
        """Shut the container down (SIGTERM to the leader: an orderly poweroff), kill it past a deadline."""
        leader = self.leader
        if leader is not None and leader.poll() is None:
            leader.send_signal(signal.SIGTERM)
            try:
                leader.wait(60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(AssertionError, ProcessLookupError):
                    os.kill(self.init_pid, signal.SIGKILL)
                leader.kill()
                leader.wait(30)
        subprocess.run(["umount", str(self.root)], check=False, capture_output=True)


@contextlib.contextmanager
def booted(lower: Path, work: Path) -> Iterator[Machine]:
    """A booted machine on an overlay of `lower`; stopped and unmounted even when the test fails."""
    machine = Machine(lower, work)
    try:
        machine.boot()
        yield machine
    finally:
        machine.stop()


@contextlib.contextmanager
def forwarded(machine: Machine, port: int) -> Iterator[int]:
    """A port on the host's 127.0.0.1 whose connections reach `port` on the machine's own loopback.

    The machine's network is private (nothing but its loopback), so each
    connection accepted here is handed to the host's socat run in the machine's
    network namespace only (`nsenter -n`), which connects to 127.0.0.1:`port`
    there: no address outside the two loopbacks is used.  Yields the host port;
    the listener and every relay are stopped by their PIDs on the way out.
    """
    if shutil.which("socat") is None:
        pytest.fail("socat is needed for this test; install it (apt: socat)")
    listener = socket.create_server(("127.0.0.1", 0))
    relays: list[subprocess.Popen[bytes]] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # the listener was closed: the context is over
                return
            with conn:
                relays.append(subprocess.Popen(
                    ["nsenter", "-t", str(machine.init_pid), "-n", "--", "socat", "STDIO", f"TCP:127.0.0.1:{port}"],
                    stdin=conn.fileno(), stdout=conn.fileno(), stderr=subprocess.DEVNULL))

    thread = threading.Thread(target=accept, name=f"forward-{machine.name}-{port}", daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(10)
        for relay in relays:
            if relay.poll() is None:
                relay.kill()
            relay.wait(10)
