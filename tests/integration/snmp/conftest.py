"""Real SNMP peers for the SNMP tests: net-snmp's snmpd, snmpsim replaying .snmprec files, rrdcached.

Each is started on 127.0.0.1 (a free high port or a temp socket) and stopped by
PID.  snmpsim runs from a venv of its own (`.venv-snmpsim`, made on first use):
it is a test peer, not a dependency of mepd, and its pysmi would change how
pysnmp behaves in the daemon's venv.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mepd.config import SnmpConfig, SnmpTargetConfig
from mepd.pipeline import Pipeline
from mepd.sources.snmp.target import SnmpHub, SnmpTarget
from tests.helpers import ROOT, stop_process, wait_for

SIM_VENV = ROOT / ".venv-snmpsim"
COMMUNITY = "public"
V3_USER, V3_AUTH, V3_PRIV = "mepdv3", "authpass123", "privpass123"

IF = "1.3.6.1.2.1.2.2.1"
IFX = "1.3.6.1.2.1.31.1.1.1"
T0 = 1_800_000_000.0


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def agent_answers(port: int, community: str = COMMUNITY) -> bool:
    result = subprocess.run(
        ["snmpget", "-v2c", "-c", community, "-t", "0.3", "-r", "0", "-m", "", f"127.0.0.1:{port}",
         "1.3.6.1.2.1.1.3.0"], capture_output=True, text=True, check=False,
    )
    return result.returncode == 0 and "Timeticks" in result.stdout


def stop(proc: subprocess.Popen[bytes]) -> None:
    stop_process(proc, timeout=10)


@pytest.fixture
def world_readable_tmp() -> Iterator[Path]:
    """A temp dir the agents can read after dropping to `nobody` (pytest's tmp_path is mode 700)."""
    path = Path(tempfile.mkdtemp(prefix="mepd-snmp-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@dataclass(slots=True)
class Snmpd:
    port: int
    proc: subprocess.Popen[bytes]


@pytest.fixture
def snmpd(world_readable_tmp: Path) -> Iterator[Snmpd]:
    """net-snmp's snmpd: v2c community `public`, v3 user with SHA/AES (authPriv)."""
    port = free_udp_port()
    root = world_readable_tmp / "snmpd"
    (root / "persist").mkdir(parents=True)
    conf = root / "snmpd.conf"
    conf.write_text(
        f"[snmp] persistentDir {root / 'persist'}\n"
        f"agentAddress udp:127.0.0.1:{port}\n"
        f"rocommunity {COMMUNITY} 127.0.0.1\n"
        f'createUser {V3_USER} SHA "{V3_AUTH}" AES "{V3_PRIV}"\n'
        f"rouser {V3_USER} priv\n"
    )
    log = (root / "snmpd.log").open("wb")
    proc = subprocess.Popen(["snmpd", "-f", "-Lo", "-C", "-m", "", "-c", str(conf), "-p", str(root / "pid")],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: proc.poll() is not None or agent_answers(port), what="snmpd to answer")
        if proc.poll() is not None:
            pytest.fail(f"snmpd exited: {(root / 'snmpd.log').read_text()}")
        yield Snmpd(port, proc)
    finally:
        stop(proc)
        log.close()


@dataclass(slots=True)
class Iface:
    """One interface of a simulated agent; `hc=False` leaves it out of ifXTable (32-bit counters only)."""

    index: int
    name: str
    in_octets: int = 0
    out_octets: int = 0
    speed: int = 1_000_000_000
    oper: int = 1
    admin: int = 1
    hc: bool = True
    extra: dict[str, int] = field(default_factory=dict)
    alias: str = ""  # ifAlias; "link <index>" when empty


def snmprec(uptime: int, ifaces: list[Iface], boots: int | None = None, extra: Mapping[str, str] | None = None) -> str:
    """An agent as a .snmprec file (records sorted by OID, as snmpsim requires)."""
    recs: dict[str, str] = {"1.3.6.1.2.1.1.3.0": f"67|{uptime}", "1.3.6.1.2.1.1.5.0": "4|simulated"}
    if boots is not None:
        recs["1.3.6.1.6.3.10.2.1.2.0"] = f"2|{boots}"
    for i in ifaces:
        n = i.index
        recs |= {
            f"{IF}.1.{n}": f"2|{n}", f"{IF}.2.{n}": f"4|{i.name} port", f"{IF}.3.{n}": "2|6",
            f"{IF}.5.{n}": f"66|{min(i.speed, 4294967295)}", f"{IF}.7.{n}": f"2|{i.admin}",
            f"{IF}.8.{n}": f"2|{i.oper}", f"{IF}.10.{n}": f"65|{i.in_octets % 2**32}",
            f"{IF}.11.{n}": "65|0", f"{IF}.13.{n}": "65|0", f"{IF}.14.{n}": f"65|{i.extra.get('in_errors', 0)}",
            f"{IF}.16.{n}": f"65|{i.out_octets % 2**32}", f"{IF}.17.{n}": "65|0", f"{IF}.19.{n}": "65|0",
            f"{IF}.20.{n}": "65|0",
        }
        if i.hc:
            recs |= {
                f"{IFX}.1.{n}": f"4|{i.name}", f"{IFX}.6.{n}": f"70|{i.in_octets}", f"{IFX}.7.{n}": "70|0",
                f"{IFX}.10.{n}": f"70|{i.out_octets}", f"{IFX}.11.{n}": "70|0",
                f"{IFX}.15.{n}": f"66|{i.speed // 1_000_000}", f"{IFX}.18.{n}": f"4|{i.alias or f'link {n}'}",
                f"{IFX}.19.{n}": "67|0",
            }
    recs |= dict(extra or {})
    lines = sorted(recs.items(), key=lambda kv: tuple(int(p) for p in kv[0].split(".")))
    return "".join(f"{oid}|{value}\n" for oid, value in lines)


@dataclass(slots=True)
class Sim:
    """A running snmpsim; `set(community, text)` replaces an agent's data between polls."""

    port: int
    data: Path
    proc: subprocess.Popen[bytes]
    _mtime: float = 2_000_000_000.0

    def set(self, community: str, text: str) -> None:
        path = self.data / f"{community}.snmprec"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.chmod(0o644)
        # snmpsim re-indexes a file when its mtime changes; two writes within the clock's
        # resolution would look unchanged, so every write gets a later mtime of its own.
        self._mtime += 10
        os.utime(tmp, (self._mtime, self._mtime))
        tmp.replace(path)


# The versions the tests were written against: a new release of the test peer must not turn CI red.
SIM_PACKAGES = ("snmpsim==1.2.2", "pysnmp==7.1.30", "pysmi==2.0.0", "cryptography==51.0.1")


def ensure_sim_venv() -> Path:
    exe = SIM_VENV / "bin" / "snmpsim-command-responder"
    if not exe.exists():
        subprocess.run(["/usr/bin/python3.11", "-m", "venv", str(SIM_VENV)], check=True)
        subprocess.run([str(SIM_VENV / "bin" / "pip"), "install", "--quiet", *SIM_PACKAGES], check=True)
    return exe


@pytest.fixture
def start_sim(world_readable_tmp: Path) -> Iterator[Callable[[Mapping[str, str]], Sim]]:
    """`start_sim({community: snmprec text})`: one snmpsim process serving every given agent."""
    exe = ensure_sim_venv()
    started: list[tuple[Sim, object]] = []

    def start(agents: Mapping[str, str]) -> Sim:
        root = world_readable_tmp / f"sim{len(started)}"
        data, cache = root / "data", root / "cache"
        data.mkdir(parents=True)
        cache.mkdir()
        shutil.chown(cache, "nobody", "nogroup")
        port = free_udp_port()
        log = (root / "sim.log").open("wb")
        proc = subprocess.Popen(
            [str(exe), f"--data-dir={data}", f"--cache-dir={cache}", f"--agent-udpv4-endpoint=127.0.0.1:{port}",
             "--process-user=nobody", "--process-group=nogroup", "--logging-method=stderr", "--log-level=error"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        sim = Sim(port, data, proc)
        started.append((sim, log))
        for community, text in agents.items():
            sim.set(community, text)
        first = next(iter(agents))
        wait_for(lambda: proc.poll() is not None or agent_answers(port, first), what="snmpsim to answer")
        if proc.poll() is not None:
            pytest.fail(f"snmpsim exited: {(root / 'sim.log').read_text()}")
        return sim

    yield start
    for sim, log in started:
        stop(sim.proc)
        log.close()  # type: ignore[attr-defined]


@dataclass(slots=True)
class Blackhole:
    """A UDP port that takes requests and never answers: a dead agent, as a hung device looks."""

    port: int
    sock: socket.socket

    def received(self) -> int:
        n = 0
        while True:
            try:
                self.sock.recv(65536)
            except BlockingIOError:
                return n
            n += 1


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield Blackhole(int(sock.getsockname()[1]), sock)
    sock.close()


@dataclass(slots=True)
class Rrdcached:
    address: str
    base: Path
    socket: Path
    proc: subprocess.Popen[bytes]

    def stats(self) -> dict[str, int]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(self.socket))
            s.sendall(b"STATS\n")
            data = b""
            while data.count(b"\n") < 1 or data.count(b"\n") <= int(data.split(b" ", 1)[0]):
                data += s.recv(65536)
        lines = data.decode().splitlines()[1:]
        return {k.strip(): int(v) for k, v in (line.split(":", 1) for line in lines)}


@pytest.fixture
def rrdcached(world_readable_tmp: Path) -> Iterator[Rrdcached]:
    base = world_readable_tmp / "rrd"
    journal = world_readable_tmp / "rrdcached-journal"
    base.mkdir()
    journal.mkdir()
    sock = world_readable_tmp / "rrdcached.sock"
    proc = subprocess.Popen(
        ["rrdcached", "-g", "-l", f"unix:{sock}", "-m", "0660", "-b", str(base), "-B", "-F", "-w", "3600",
         "-z", "1", "-p", str(world_readable_tmp / "rrdcached.pid"), "-j", str(journal)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: proc.poll() is not None or sock.exists(), what="rrdcached socket")
        assert proc.poll() is None, "rrdcached exited"
        yield Rrdcached(f"unix:{sock}", base, sock, proc)
    finally:
        stop(proc)


class FakeClock:
    """Sample timestamps 10 s apart, matching the 1000 ticks the .snmprec files add per poll."""

    def __init__(self) -> None:
        self.n = itertools.count()

    def __call__(self) -> float:
        return T0 + 10 * next(self.n)


@pytest.fixture
def hub() -> SnmpHub:
    return SnmpHub(SnmpConfig())


@pytest.fixture
def pipeline() -> Pipeline:
    p = Pipeline()
    p.samples.subscribe("test", 1_000_000)
    return p


Poller = Callable[..., Awaitable[SnmpTarget]]


@pytest.fixture
async def poller(hub: SnmpHub, pipeline: Pipeline) -> AsyncIterator[Poller]:
    """`await poller(cfg, clock=...)`: a target ready for `poll_once`, closed after the test."""
    made: list[SnmpTarget] = []

    async def make(cfg: SnmpTargetConfig, clock: Callable[[], float] | None = None) -> SnmpTarget:
        t = SnmpTarget(cfg, hub, pipeline.samples, clock or FakeClock())
        await t.open()
        made.append(t)
        return t

    yield make
    for t in made:
        t.close()
