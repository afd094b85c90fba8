"""Test helpers shared by unit and integration tests: waiting, ports, a real mepd process.

`Mepd` starts the real daemon (`python -m mepd.cli.mepd`) with a temp config and
plays systemd's part: it listens on a NOTIFY_SOCKET and waits for READY=1, so no
test sleeps to guess when the daemon is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mepd.store.rrd.worker import LOCKED

DEADLINE = 30.0
ROOT = Path(__file__).parent.parent


def wait_for(condition: Callable[[], Any], timeout: float = DEADLINE, what: str = "condition") -> Any:
    """Poll `condition` until it returns something truthy; fail the test at the deadline."""
    end = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


def start_rsyslogd(d: Path, rules: str, procs: list[subprocess.Popen[bytes]]) -> Path:
    """A real rsyslogd in `d` (added to `procs`, for the fixture to stop) reading a private datagram socket, whose
    path it returns, with `rules` (modules, templates, actions) for what it reads."""
    (d / "work").mkdir(parents=True)
    sock = d / "in.sock"
    (d / "rsyslog.conf").write_text(
        f'global(workDirectory="{d / "work"}")\n'
        'module(load="imuxsock" SysSock.Use="off")\n'
        f'input(type="imuxsock" Socket="{sock}" CreatePath="on" RateLimit.Interval="0")\n' + rules)
    with (d / "stderr").open("wb") as err:
        procs.append(subprocess.Popen(["rsyslogd", "-n", "-f", str(d / "rsyslog.conf"), "-i", str(d / "pid")],
                                      stdout=subprocess.DEVNULL, stderr=err))
    wait_for(sock.exists, what="rsyslogd's input socket")
    return sock


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout`: a peer a fixture started, stopped by PID."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def until(condition: Callable[[], Any], what: str, limit: float = DEADLINE) -> Any:
    """`wait_for` for async tests: the condition may be sync or async; fail at the deadline."""
    end = time.monotonic() + limit
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > end:
            pytest.fail(f"timed out after {limit:.0f}s waiting for {what}")
        await asyncio.sleep(0.02)


def rrdtool_cli(*args: str) -> str:
    """What an rrdtool command prints about a file mepd may be writing: rrdtool locks a file for any use and
    fails at once on one another process holds, so the command is run again (as mepd runs its updates again)."""

    def attempt() -> str | None:
        out = subprocess.run(["rrdtool", *args], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            return out.stdout
        assert LOCKED in out.stderr, f"rrdtool {' '.join(args)}: {out.stderr}"
        return None

    return str(wait_for(attempt, what=f"rrdtool {args[0]} while the file is locked"))


async def rrdtool_info(path: str) -> str:
    """The rrdtool command's view of a file, not the binding's."""
    proc = await asyncio.create_subprocess_exec("rrdtool", "info", path, stdout=subprocess.PIPE)
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    return out.decode()


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (syslog listens on both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = int(t.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


class NotifyListener:
    """The systemd side of sd_notify: collects the datagrams the daemon sends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.messages: list[str] = []

    def poll(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(65536).decode())
            except BlockingIOError:
                return self.messages

    def lines(self) -> list[str]:
        return [line for msg in self.poll() for line in msg.split("\n")]

    def wait_line(self, predicate: Callable[[str], bool], what: str, after: int = 0) -> str:
        def find() -> str | None:
            return next((ln for ln in self.lines()[after:] if predicate(ln)), None)

        return str(wait_for(find, what=what))

    def close(self) -> None:
        self.sock.close()


class Mepd:
    """A real mepd process with its own state dir, socket and config."""

    def __init__(self, root: Path, config_text: str, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.socket = str(root / "run" / "mepd.sock")
        self.config_path = root / "mepd.toml"
        self.base = (
            f'[daemon]\nstate_dir = "{root / "state"}"\ncontrol_socket = "{self.socket}"\n'
            f'log_level = "debug"\ndrain_timeout = "10s"\n'
        )
        self.write_config(config_text)
        self.notify = NotifyListener(root / "notify.sock")
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr_path = root / "stderr.log"

    def write_config(self, config_text: str) -> None:
        # No dashboard on the default 127.0.0.1:8080 unless a test asks for one: daemons run side by side.
        http = "" if "[http]" in config_text else '[http]\nlisten = ""\n'
        self.config_path.write_text(self.base + http + config_text)

    def start(self, wait_ready: bool = True, wrapper: tuple[str, ...] = ()) -> Mepd:
        """Run the daemon, optionally under a `wrapper` command such as systemd-socket-activate."""
        env = {**os.environ, "NOTIFY_SOCKET": str(self.notify.path), **self.extra_env}
        env.pop("JOURNAL_STREAM", None)
        mark = len(self.notify.lines())
        with self.stderr_path.open("ab") as err:
            self.proc = subprocess.Popen(
                [*wrapper, sys.executable, "-m", "mepd.cli.mepd", "--config", str(self.config_path)],
                env=env, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT,
            )
        if wait_ready:
            self.wait_ready(after=mark)
        return self

    def wait_ready(self, after: int = 0) -> None:
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"mepd exited with {self.proc.returncode}:\n{self.stderr()}")
            return "READY=1" in self.notify.lines()[after:]

        wait_for(ready, what="READY=1 from mepd")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def mepctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "mepd.cli.mepctl", "--socket", self.socket, *args],
            capture_output=True, text=True, timeout=60, check=False,
            cwd=ROOT,
        )
        if check and result.returncode != 0:
            pytest.fail(f"mepctl {' '.join(args)} exited {result.returncode}: {result.stderr}")
        return result

    def mepctl_json(self, *args: str) -> Any:
        return json.loads(self.mepctl(*args, "--json").stdout)

    def dashboard_get(self, url: str) -> bytes:
        """A dashboard page, with the token mepd made (the dashboard answers nobody without a credential)."""
        token = (self.root / "state" / "dashboard-token").read_text().strip()
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            return bytes(resp.read())

    def logs(self, *args: str) -> list[dict[str, Any]]:
        return list(self.mepctl_json("logs", "--limit", "0", *args))

    def wait_logs(self, count: int, *args: str) -> list[dict[str, Any]]:
        """Wait until at least `count` records match (they are stored in batches)."""
        def enough() -> list[dict[str, Any]] | None:
            records = self.logs(*args)
            return records if len(records) >= count else None

        return list(wait_for(enough, what=f"{count} stored records matching {args}"))

    def send(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"mepd did not stop on signal {sig}:\n{self.stderr()}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def children(self) -> list[int]:
        """The daemon's child processes (its log writer, its rrdtool worker), from /proc."""
        assert self.proc is not None
        pids: list[int] = []
        for path in glob.glob(f"/proc/{self.proc.pid}/task/*/children"):
            with contextlib.suppress(OSError), open(path) as f:
                pids += [int(p) for p in f.read().split()]
        return pids


def prometheus_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """A scrape's samples by (name, labels), read by prometheus_client's own parser."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def syslog_listen(port: int, *protos: str) -> str:
    return "".join(f'[[syslog.listen]]\nproto = "{p}"\naddress = "127.0.0.1:{port}"\n' for p in protos)


def snmp_target(name: str, port: int, *, oid: Sequence[Mapping[str, str]] = (), **keys: object) -> str:
    """A `[[snmp.target]]` section for an agent on 127.0.0.1 (values as TOML), with its `oid` sub-sections."""
    lines = ["", "[[snmp.target]]", f'name = "{name}"', 'host = "127.0.0.1"', f"port = {port}"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
    for extra in oid:
        lines += ["[[snmp.target.oid]]", *(f"{k} = {json.dumps(v)}" for k, v in extra.items())]
    return "\n".join(lines) + "\n"


def dead_snmp_target(port: int) -> str:
    """A target nothing answers, given up on quickly."""
    return snmp_target("dead", port, interval="1s", timeout="200ms", retries=0)
