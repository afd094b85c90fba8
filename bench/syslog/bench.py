"""mepd against rsyslog and syslog-ng as syslog receivers, on this machine, in one run.

Each daemon is started fresh for each scenario with its own temp config, fed by
the same C sender (bench/syslog/sender.c) whose messages all carry `seq=N`,
and read back after it stops: mepd from its SQLite database, rsyslog and
syslog-ng from their output files.  So loss and duplicates are exact counts,
not estimates.  Not a test: the figures depend on the machine and its load.

    sh bench/syslog/run.sh [--quick] [--daemons mepd,rsyslog] [--profile DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CLK_TCK = os.sysconf("SC_CLK_TCK")
POLL = 0.05
SEQ = re.compile(rb"seq=(\d{9})")


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    proto: str  # "tcp" (flat out), "udp" (paced) or "tcp-paced" (one connection, a sustained rate)
    count: int
    rate: int = 0  # messages/s when paced; 0 = TCP flat out
    conns: int = 1

    @property
    def quiet(self) -> float:
        """How long the stored count must stand still, once the sender is done, to call the run over."""
        return 3.0 if self.proto == "udp" else 10.0


@dataclass(slots=True)
class Result:
    daemon: str
    scenario: Scenario
    sent: int = 0
    sender_seconds: float = 0.0
    seconds: float = 0.0  # from the first message sent to the last one stored
    unique: int = 0
    duplicates: int = 0
    cpu_stored: float = 0.0  # daemon CPU seconds from the first message to the last one stored
    cpu_total: float = 0.0  # the same, until the daemon has nothing left to do (mepd: full-text index)
    rss_kib: int = 0
    rss_parts: list[int] = field(default_factory=list)  # the daemon, then each child process
    kernel_drops: int | None = None
    load: float = 0.0  # the machine's 1-minute load average at the end of the run: others' work skews it all
    busy_before: float = 0.0  # share of the CPUs busy in the second before the run
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    round: int = 0  # which of the `--repeat` rounds: the daemons of one round ran one right after the other

    @property
    def rate(self) -> float:
        return self.unique / self.seconds if self.seconds > 0 else 0.0

    @property
    def loss(self) -> float:
        return 100.0 * (self.sent - self.unique) / self.sent if self.sent else 0.0

    def cpu_per_100k(self, total: bool) -> float:
        cpu = self.cpu_total if total else self.cpu_stored
        return cpu * 100_000 / self.unique if self.unique else 0.0


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
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


def wait_until(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    while not (result := cond()):
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(POLL)
    return result


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (mepd's log writer is a child process)."""
    pids = [pid]
    for p in pids:
        for task in glob.glob(f"/proc/{p}/task/*/children"):
            with contextlib.suppress(OSError), open(task) as f:
                pids += [int(c) for c in f.read().split()]
    return pids


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process and its children (all their threads), from /proc/PID/stat."""
    total = 0.0
    for p in process_tree(pid):
        with contextlib.suppress(OSError), open(f"/proc/{p}/stat") as f:
            rest = f.read().rpartition(")")[2].split()
            total += (int(rest[11]) + int(rest[12])) / CLK_TCK
    return total


def vm_hwm_kib(pid: int) -> list[int]:
    """Peak RSS of the process, then of each child."""
    peaks = []
    for p in process_tree(pid):
        with contextlib.suppress(OSError), open(f"/proc/{p}/status") as f:
            peaks.append(next((int(line.split()[1]) for line in f if line.startswith("VmHWM:")), 0))
    return peaks


def udp_port_state(port: int) -> int | None:
    """The kernel's drop count for the UDP socket bound to 127.0.0.1:port, None if nothing is bound."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            if cols[1] == want:
                return int(cols[-1])
    return None


def machine_busy(interval: float = 1.0) -> float:
    """Share (0-1) of all CPUs busy over `interval`, from /proc/stat."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:]]
        return sum(vals), vals[3] + vals[4]  # total, idle + iowait

    t1, i1 = sample()
    time.sleep(interval)
    t2, i2 = sample()
    return 1.0 - (i2 - i1) / max(t2 - t1, 1)


def wait_quiet(limit: float) -> float:
    """Wait (at most `limit` s) for other work on the machine to calm down; returns the busy share seen last."""
    end = time.monotonic() + limit
    while (busy := machine_busy()) > 0.15 and time.monotonic() < end:
        pass
    return busy


def tcp_accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.path)


class Daemon:
    """One receiver under test, started fresh in its own directory for each scenario."""

    name = ""

    def __init__(self, workdir: Path, port: int) -> None:
        self.dir = workdir
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def popen(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        with (self.dir / "stderr.log").open("wb") as err:
            self.proc = subprocess.Popen(argv, stdout=err, stderr=subprocess.STDOUT, env=env, cwd=self.dir)

    def start(self) -> None:
        raise NotImplementedError

    def wait_ready(self) -> None:
        def ready() -> bool:
            self.check_alive()
            return udp_port_state(self.port) is not None and tcp_accepts(self.port)

        wait_until(ready, 30, f"{self.name} to listen")

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            log = (self.dir / "stderr.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{log}")

    def stored(self) -> int:
        """Messages stored so far: cheap enough to call every 50 ms without loading the daemon."""
        raise NotImplementedError

    def idle(self) -> bool:
        """True once the daemon has no work left from what it stored (mepd: its full-text index)."""
        return True

    def drained(self) -> bool:
        """True when nothing received is still waiting to be stored (asked only once the count stands still)."""
        return True

    def collect(self) -> dict[str, Any]:
        """Daemon-specific counters, taken before it stops."""
        return {}

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def sequences(self) -> Iterator[bytes]:
        """Chunks of stored text in which every stored message's `seq=N` appears once."""
        raise NotImplementedError


class FileDaemon(Daemon):
    """A daemon writing one line per message to `out.log`: counted by reading the file as it grows."""

    def __init__(self, workdir: Path, port: int) -> None:
        super().__init__(workdir, port)
        self.out = workdir / "out.log"
        self._offset = 0
        self._lines = 0

    def stored(self) -> int:
        with contextlib.suppress(FileNotFoundError), self.out.open("rb") as f:
            f.seek(self._offset)
            while chunk := f.read(1 << 22):
                self._offset += len(chunk)
                self._lines += chunk.count(b"\n")
        return self._lines

    def sequences(self) -> Iterator[bytes]:
        with self.out.open("rb") as f:
            while chunk := f.read(1 << 24):
                chunk += f.readline()
                yield chunk


class Rsyslog(FileDaemon):
    name = "rsyslog"

    def start(self) -> None:
        (self.dir / "work").mkdir()
        conf = self.dir / "rsyslog.conf"
        conf.write_text(
            f'global(workDirectory="{self.dir / "work"}")\n'
            'module(load="imudp")\nmodule(load="imtcp")\n'
            f'input(type="imudp" address="127.0.0.1" port="{self.port}")\n'
            f'input(type="imtcp" address="127.0.0.1" port="{self.port}")\n'
            f'*.* action(type="omfile" file="{self.out}")\n'
        )
        self.popen([shutil.which("rsyslogd") or "/usr/sbin/rsyslogd", "-n", "-f", str(conf),
                    "-i", str(self.dir / "rsyslogd.pid")])


class SyslogNg(FileDaemon):
    name = "syslog-ng"
    binary = ""
    module_path = ""
    library_path = ""

    def start(self) -> None:
        conf = self.dir / "syslog-ng.conf"
        conf.write_text(
            "@version: 3.38\n"
            "options { stats_freq(0); };\n"
            f'source s_net {{ syslog(transport("tcp") ip("127.0.0.1") port({self.port}));\n'
            f'  syslog(transport("udp") ip("127.0.0.1") port({self.port})); }};\n'
            f'destination d_file {{ file("{self.out}"); }};\n'
            "log { source(s_net); destination(d_file); };\n"
        )
        env = dict(os.environ)
        argv = [self.binary, "-F", "--no-caps", "-f", str(conf), "-R", str(self.dir / "persist"),
                "-p", str(self.dir / "syslog-ng.pid"), "-c", str(self.dir / "ctl")]
        if self.module_path:
            argv.append(f"--module-path={self.module_path}")
        if self.library_path:
            env["LD_LIBRARY_PATH"] = self.library_path
        self.popen(argv, env)


class Mepd(Daemon):
    name = "mepd"
    bindir = ROOT / ".venv" / "bin"
    storage = ""  # TOML lines for its [storage.logs] (`--mepd-storage`)

    def __init__(self, workdir: Path, port: int) -> None:
        super().__init__(workdir, port)
        self.db_path = workdir / "state" / "logs.db"
        self.sock = workdir / "mepd.sock"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(workdir / "notify.sock"))
        self.notify.setblocking(False)
        self._db: sqlite3.Connection | None = None

    def start(self) -> None:
        conf = self.dir / "mepd.toml"
        conf.write_text(
            f'[daemon]\nstate_dir = "{self.dir / "state"}"\ncontrol_socket = "{self.sock}"\nlog_level = "warning"\n'
            f'[[syslog.listen]]\nproto = "udp"\naddress = "127.0.0.1:{self.port}"\n'
            f'[[syslog.listen]]\nproto = "tcp"\naddress = "127.0.0.1:{self.port}"\n'
            + (f"[storage.logs]\n{self.storage.replace(';', chr(10))}\n" if self.storage else "")
        )
        env = {**os.environ, "NOTIFY_SOCKET": str(self.dir / "notify.sock")}
        self.popen([str(self.bindir / "mepd"), "--config", str(conf)], env)

    def wait_ready(self) -> None:
        got: list[bytes] = []

        def ready() -> bool:
            self.check_alive()
            with contextlib.suppress(BlockingIOError):
                while True:
                    got.append(self.notify.recv(65536))
            return any(b"READY=1" in m for m in got)

        wait_until(ready, 30, "READY=1 from mepd")
        # Keep reading like systemd does: mepd's sd_notify socket is blocking, and an unread
        # queue (net.unix.max_dgram_qlen, 10 datagrams) would stall its event loop after ~50 s.
        self.notify.setblocking(True)
        threading.Thread(target=self._drain_notify, daemon=True).start()
        self._db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, isolation_level=None)

    def _drain_notify(self) -> None:
        with contextlib.suppress(OSError):
            while self.notify.recv(65536):
                pass

    def _one(self, sql: str) -> int:
        assert self._db is not None
        try:
            return int(self._db.execute(sql).fetchone()[0] or 0)
        except sqlite3.OperationalError:  # busy during a checkpoint: ask again at the next poll
            return -1

    def stored(self) -> int:
        return self._one("SELECT max(id) FROM logs")

    def idle(self) -> bool:
        upto = self._one("SELECT value FROM meta WHERE key = 'words_upto'")
        return upto >= 0 and upto >= self.stored()

    def index_state(self) -> tuple[int, float]:
        """(records not yet in the word index, seconds the oldest of them has waited), from `mepctl status`'s API."""
        store = self.status()["store"]["logs"]
        return int(store.get("index_backlog") or 0), float(store.get("index_age") or 0.0)

    def grep_finds(self, text: str) -> tuple[bool, float]:
        """Whether `mepctl logs --grep TEXT` prints a record, and how long it took."""
        t0 = time.monotonic()
        out = subprocess.run([str(self.bindir / "mepctl"), "--socket", str(self.sock), "logs", "--grep", text,
                              "--limit", "1", "--json"], capture_output=True, text=True, timeout=60, check=False)
        return out.returncode == 0 and text in out.stdout, time.monotonic() - t0

    def status(self) -> dict[str, Any]:
        """GET /v1/status on the control socket, without starting a mepctl process."""
        conn = UnixHTTPConnection(str(self.sock))
        try:
            conn.request("GET", "/v1/status")
            return dict(json.loads(conn.getresponse().read()))
        finally:
            conn.close()

    def drained(self) -> bool:
        # A stalled writer (see the README: GIL hand-offs under a UDP flood) also leaves the count still.
        # queued: channel -> consumer -> items; a channel's dict is truthy even when all its counts are 0.
        queued = self.status()["pipeline"]["queued"]
        return not any(n for consumers in queued.values() for n in consumers.values())

    def collect(self) -> dict[str, Any]:
        out = subprocess.run([str(self.bindir / "mepctl"), "--socket", str(self.sock), "status", "--json"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
        status = json.loads(out)
        comps = {c["name"]: c["counters"] for c in status["components"]}
        return {"pipeline": status["pipeline"]["logs"], "components": comps}

    def stop(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        super().stop()
        self.notify.shutdown(socket.SHUT_RDWR)
        self.notify.close()

    def sequences(self) -> Iterator[bytes]:
        with contextlib.closing(sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)) as db:
            cur = db.execute("SELECT message FROM logs")
            while rows := cur.fetchmany(50_000):
                yield "\n".join(r[0] for r in rows).encode()


DAEMONS: dict[str, type[Daemon]] = {"mepd": Mepd, "rsyslog": Rsyslog, "syslog-ng": SyslogNg}


def count_sequences(chunks: Iterator[bytes], sent: int) -> tuple[int, int]:
    """(distinct messages of this run stored, duplicates) from every `seq=N` in the stored text."""
    seen = bytearray(sent)
    total = 0
    for chunk in chunks:
        for m in SEQ.finditer(chunk):
            n = int(m.group(1))
            if n < sent:
                total += 1
                if seen[n] < 255:
                    seen[n] += 1
    unique = sent - seen.count(0)
    return unique, total - unique


class Profiler:
    """py-spy on mepd's runs: raw collapsed stacks, summarised by profile_summary.py."""

    def __init__(self, outdir: Path | None, native: bool) -> None:
        self.outdir = outdir
        self.native = native
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, daemon: Daemon, scenario: Scenario) -> None:
        if self.outdir is None or not isinstance(daemon, Mepd):
            return
        spy = shutil.which("py-spy", path=str(Mepd.bindir)) or shutil.which("py-spy")
        if spy is None:
            print("  (no py-spy: pip install py-spy into .venv to profile)", file=sys.stderr)
            return
        self.outdir.mkdir(parents=True, exist_ok=True)
        out = self.outdir / f"mepd-{scenario.name.replace('/', '-')}.txt"
        # --native shows sqlite's C frames but has to pause the process for each sample.
        how = ["--native"] if self.native else ["--nonblocking"]
        self.proc = subprocess.Popen(
            [spy, "record", "--pid", str(daemon.pid), "--rate", "200", "--threads", "--subprocesses", "--format", "raw",
             "--output", str(out), *how],
            stdout=subprocess.DEVNULL, stderr=(self.outdir / "py-spy.log").open("ab"),
        )
        time.sleep(1.0)  # py-spy attaches before the load starts

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=60)
            self.proc = None


def run_one(kind: type[Daemon], scenario: Scenario, sender: str, scratch: Path, profiler: Profiler,
            *, quiet_wait: float) -> Result:
    workdir = Path(tempfile.mkdtemp(prefix=f"{kind.name}-{scenario.name.replace('/', '-')}-", dir=scratch))
    port = free_port()
    daemon = kind(workdir, port)
    result = Result(kind.name, scenario)
    daemon.start()
    try:
        daemon.wait_ready()
        profiler.start(daemon, scenario)
        result.busy_before = wait_quiet(quiet_wait)
        drops0 = udp_port_state(port) or 0
        cpu0 = cpu_seconds(daemon.pid)
        arg = str(scenario.rate) if scenario.rate else str(scenario.conns)
        watch = LagWatch(daemon if isinstance(daemon, Mepd) and scenario.proto == "tcp-paced" else None)
        t0 = time.monotonic()
        snd = subprocess.Popen([sender, scenario.proto, "127.0.0.1", str(port), str(scenario.count), arg],
                               stdout=subprocess.PIPE)
        last, t_last, cpu_last, sender_done, next_check = 0, t0, cpu0, None, t0
        limit = max(120.0, scenario.count / 5000)
        while True:
            time.sleep(POLL)
            now = time.monotonic()
            daemon.check_alive()
            n = daemon.stored()
            if n > last:
                last, t_last, cpu_last = n, now, cpu_seconds(daemon.pid)
            watch.sample(now)
            if sender_done is None and snd.poll() is not None:
                sender_done = now
            if sender_done is not None and last >= scenario.count:
                break
            if sender_done is not None and now - max(t_last, sender_done) > scenario.quiet and now > next_check:
                if daemon.drained():
                    break
                next_check = now + 1.0
            if now - t0 > limit:
                result.notes.append(f"stopped waiting after {limit:.0f}s")
                break
        result.cpu_stored = cpu_last - cpu0
        result.seconds = t_last - t0
        if snd.poll() is None:
            snd.kill()
            result.notes.append("sender killed")
        out = snd.communicate()[0]
        report = json.loads(out) if out.strip() else {"sent": 0, "seconds": 0.0}
        result.sent = int(report["sent"]) or scenario.count
        result.sender_seconds = float(report["seconds"])
        watch.finish(result, sender_done if sender_done is not None else t0)
        try:
            wait_until(daemon.idle, max(120.0, scenario.count / 2000), f"{daemon.name} to finish its work")
        except TimeoutError as e:
            result.notes.append(str(e))
        result.cpu_total = cpu_seconds(daemon.pid) - cpu0
        profiler.stop()
        peaks = vm_hwm_kib(daemon.pid)
        result.rss_kib, result.rss_parts = sum(peaks), peaks
        result.load = os.getloadavg()[0]
        if scenario.proto == "udp":
            result.kernel_drops = (udp_port_state(port) or 0) - drops0
        result.extra.update(daemon.collect())  # beside the index-lag measures
    finally:
        profiler.stop()
        daemon.stop()
    result.unique, result.duplicates = count_sequences(daemon.sequences(), result.sent)
    shutil.rmtree(workdir, ignore_errors=True)
    return result


@dataclass(slots=True)
class LagWatch:
    """The index-lag scenario's measures on mepd (`daemon`; None on other runs: nothing to do)."""

    daemon: Mepd | None
    worst_age: float = 0.0
    worst_backlog: int = 0
    next_check: float = 0.0

    def sample(self, now: float) -> None:
        """The index's backlog through the run, from `mepctl status`'s API once a second."""
        if self.daemon is None or now < self.next_check:
            return
        backlog, age = self.daemon.index_state()
        self.worst_age, self.worst_backlog = max(self.worst_age, age), max(self.worst_backlog, backlog)
        self.next_check = now + 1.0

    def finish(self, result: Result, sender_done: float) -> None:
        """The newest message's unique token searched with `mepctl logs --grep` until found, from the end of
        sending; then the time until the index holds everything.  `--grep` also scans what is not indexed yet, so
        it finds the record either way: the backlog and its age say how current the index itself was."""
        if self.daemon is None:
            return
        backlog, age = self.daemon.index_state()
        token = f"seq={result.scenario.count - 1:09d}"
        tries = 0
        while True:
            tries += 1
            found, took = self.daemon.grep_finds(token)
            if found or time.monotonic() - sender_done > 120:
                break
        found_after = time.monotonic() - sender_done
        wait_until(self.daemon.idle, 600, "the index to catch up")
        result.extra["index_lag"] = {
            "found_after_s": round(found_after, 2) if found else -1.0, "last_grep_s": round(took, 3),
            "grep_tries": tries, "backlog_at_end": backlog, "age_at_end_s": round(age, 2),
            "indexed_after_s": round(time.monotonic() - sender_done, 2),
            "worst_backlog": self.worst_backlog, "worst_age_s": round(self.worst_age, 2)}


def fmt_ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


def table(results: list[Result]) -> str:
    lines = [
        "| scenario | daemon | stored msg/s | loss % | dup | CPU s/100k (stored) | CPU s/100k (all work) "
        "| max RSS MB | kernel UDP drops | busy before / load |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    by_scenario: dict[str, list[Result]] = {}
    for r in results:
        by_scenario.setdefault(r.scenario.name, []).append(r)
    for name, rows in by_scenario.items():
        for r in rows:
            drops = "-" if r.kernel_drops is None else str(r.kernel_drops)
            lines.append(
                f"| {name} | {r.daemon} | {r.rate:,.0f} | {r.loss:.2f} | {r.duplicates} "
                f"| {r.cpu_per_100k(False):.2f} | {r.cpu_per_100k(True):.2f} | {r.rss_kib / 1024:.0f} | {drops} "
                f"| {100 * r.busy_before:.0f}% / {r.load:.1f} |"
            )
        for k in sorted({r.round for r in rows}):
            m = next((r for r in rows if r.daemon == "mepd" and r.round == k), None)
            rs = next((r for r in rows if r.daemon == "rsyslog" and r.round == k), None)
            if not (m and rs):
                continue
            lines.append(
                f"| {name} | **mepd ÷ rsyslog** | {fmt_ratio(m.rate, rs.rate)} | {m.loss:.2f} vs {rs.loss:.2f} "
                f"| {m.duplicates} vs {rs.duplicates} "
                f"| {fmt_ratio(m.cpu_per_100k(False), rs.cpu_per_100k(False))} "
                f"| {fmt_ratio(m.cpu_per_100k(True), rs.cpu_per_100k(True))} "
                f"| {fmt_ratio(m.rss_kib, rs.rss_kib)} | | |"
            )
    return "\n".join(lines)


def round_ratios(results: list[Result]) -> str:
    """mepd's rate and CPU per message (all work) ÷ each other daemon's, round by round, and their medians: one
    run of each says little when the same daemon's rate varies by a third from one run to the next."""
    by = {(r.scenario.name, r.round, r.daemon): r for r in results}
    rounds = sorted({r.round for r in results})
    measures: list[tuple[str, Callable[[Result], float]]] = [
        ("rate", lambda r: r.rate), ("CPU for all work", lambda r: r.cpu_per_100k(True))]
    lines = []
    for name in dict.fromkeys(r.scenario.name for r in results):
        for other in dict.fromkeys(r.daemon for r in results if r.daemon != "mepd"):
            pairs = [(by[name, k, "mepd"], by[name, k, other]) for k in rounds
                     if (name, k, "mepd") in by and (name, k, other) in by]
            for what, measure in measures:
                ratios = [measure(m) / measure(o) for m, o in pairs if measure(o)]
                if ratios:
                    lines.append(f"{name}: mepd's {what} ÷ {other}'s, {len(ratios)} rounds: "
                                 + ", ".join(f"{x:.2f}" for x in ratios) + f"; median {statistics.median(ratios):.2f}"
                                 + (f", {sum(x >= 1 for x in ratios)} at 1.00 or more" if what == "rate" else ""))
    return "\n".join(lines)


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    tcp = args.tcp_count or (50_000 if args.quick else 500_000)
    secs = args.udp_seconds or (2 if args.quick else 8)
    lag_secs = args.lag_seconds or (10 if args.quick else 300)
    return [
        Scenario("tcp-flat-out", "tcp", tcp, conns=args.conns),
        Scenario("udp-50k/s", "udp", 50_000 * secs, rate=50_000),
        Scenario("udp-100k/s", "udp", 100_000 * secs, rate=100_000),
        Scenario("index-lag", "tcp-paced", args.lag_rate * lag_secs, rate=args.lag_rate),
    ]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a small run (seconds, not minutes)")
    p.add_argument("--daemons", default="mepd,rsyslog,syslog-ng", help="comma-separated, from: " + ",".join(DAEMONS))
    p.add_argument("--scenarios", default="", help="comma-separated names (default: all)")
    p.add_argument("--tcp-count", type=int, default=0, help="messages in the TCP run (default 500000)")
    p.add_argument("--udp-seconds", type=int, default=0, help="length of each UDP run (default 8)")
    p.add_argument("--lag-rate", type=int, default=50_000, help="index-lag: messages/s over TCP (default 50000)")
    p.add_argument("--lag-seconds", type=int, default=0, help="index-lag: how long to send (default 300)")
    p.add_argument("--mepd-storage", default="", help="mepd's [storage.logs] settings, ';'-separated TOML, e.g."
                   " 'max_size = \"512MiB\"; maintenance_interval = \"75s\"' (default: none, mepd's defaults)")
    p.add_argument("--conns", type=int, default=4, help="TCP connections the sender opens (default 4)")
    p.add_argument("--sender", required=True, help="the compiled sender.c")
    p.add_argument("--syslog-ng", default="", help="syslog-ng binary; empty to skip it")
    p.add_argument("--syslog-ng-modules", default="", help="--module-path for an unpacked syslog-ng")
    p.add_argument("--syslog-ng-libs", default="", help="LD_LIBRARY_PATH for an unpacked syslog-ng")
    p.add_argument("--wait-idle", type=float, default=10.0,
                   help="before each run, wait up to this many seconds for the machine's CPUs to be <15%% busy")
    p.add_argument("--profile", type=Path, default=None, help="py-spy mepd's TCP run into this folder")
    p.add_argument("--profile-native", action="store_true", help="py-spy --native (slows mepd down)")
    p.add_argument("--out", type=Path, default=None, help="also write the Markdown table and raw JSON here")
    p.add_argument("--repeat", type=int, default=1, help="rounds of each scenario, the daemons' order reversed"
                   " every other round; prints mepd's rate ÷ each other daemon's by round and their median")
    args = p.parse_args()

    names = [n for n in args.daemons.split(",") if n]
    if "syslog-ng" in names and not args.syslog_ng:
        print("syslog-ng is not available: skipped", file=sys.stderr)
        names.remove("syslog-ng")
    Mepd.storage = args.mepd_storage
    SyslogNg.binary, SyslogNg.module_path, SyslogNg.library_path = (
        args.syslog_ng, args.syslog_ng_modules, args.syslog_ng_libs)
    chosen = [s for s in scenarios(args) if not args.scenarios or s.name in args.scenarios.split(",")]
    profiler = Profiler(args.profile, args.profile_native)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-syslog-") as scratch:
        for sc, k in ((sc, k) for sc in chosen for k in range(max(1, args.repeat))):
            for name in names if k % 2 == 0 else names[::-1]:  # neither daemon always runs first
                print(f"== {sc.name}: {name} ({sc.count:,} messages"
                      + (f" at {sc.rate:,}/s)" if sc.rate else f", {sc.conns} connections)"), file=sys.stderr)
                r = run_one(DAEMONS[name], sc, args.sender, Path(scratch), profiler,
                           quiet_wait=args.wait_idle)
                r.round = k
                parts = " + ".join(f"{k / 1024:.0f}" for k in r.rss_parts)
                print(f"   stored {r.unique:,}/{r.sent:,} in {r.seconds:.2f}s = {r.rate:,.0f}/s,"
                      f" loss {r.loss:.2f}%, dup {r.duplicates}, CPU {r.cpu_stored:.1f}s/{r.cpu_total:.1f}s,"
                      f" RSS {r.rss_kib / 1024:.0f} MB ({parts}), sender {r.sender_seconds:.2f}s,"
                      f" machine {100 * r.busy_before:.0f}% busy before, load {r.load:.1f}"
                      + (f", kernel drops {r.kernel_drops}" if r.kernel_drops is not None else "")
                      + "".join(f"; {n}" for n in r.notes), file=sys.stderr)
                if "index_lag" in r.extra:
                    print(f"   index lag: {json.dumps(r.extra['index_lag'])}", file=sys.stderr)
                if counters := {k: v for k, v in r.extra.items() if k != "index_lag"}:
                    print(f"   counters: {json.dumps(counters, sort_keys=True)}", file=sys.stderr)
                results.append(r)
    md = table(results)
    if args.repeat > 1:
        md += "\n\n" + round_ratios(results)
    print(md)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".md").write_text(md + "\n")
        args.out.with_suffix(".json").write_text(json.dumps([
            {"daemon": r.daemon, "scenario": r.scenario.name, "sent": r.sent, "unique": r.unique,
             "duplicates": r.duplicates, "seconds": r.seconds, "sender_seconds": r.sender_seconds,
             "cpu_stored": r.cpu_stored, "cpu_total": r.cpu_total, "rss_kib": r.rss_kib,
             "kernel_drops": r.kernel_drops, "load": r.load, "busy_before": r.busy_before,
             "notes": r.notes, "extra": r.extra, "round": r.round}
            for r in results], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
