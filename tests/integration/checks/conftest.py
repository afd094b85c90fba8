"""Real peers for the checks: a TLS web server with a self-signed certificate of known expiry, listening and
closed TCP ports, test child processes with a name of their own, and a real D-Bus daemon.

systemd itself cannot run here (it needs to be PID 1): the D-Bus tests talk to a real
`dbus-daemon` on which `fake_systemd` owns org.freedesktop.systemd1 with the objects,
properties and signals the check uses; the test against the real systemd is skipped
unless the machine runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import tomllib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

from mepd import config
from mepd.config import CheckConfig
from mepd.model import LogRecord, Sample
from mepd.pipeline import Pipeline, Subscription
from mepd.sources.host.checks import Check
from tests.conftest import openssl
from tests.helpers import free_port, wait_for

CERT_DAYS = 30
# A program name longer than the 15 bytes the kernel keeps in `comm`: found through argv[0].
SLEEPER = "mepd-test-sleeper"


def check_config(text: str, base: Path) -> CheckConfig:
    """One [[check]] through the real config loader, so tests use exactly what users write."""
    return config.parse(tomllib.loads("[[check]]\n" + text), str(base / "mepd.toml")).checks[0]


def harness(cfg: CheckConfig) -> tuple[Check, Subscription[Sample], Subscription[LogRecord]]:
    """A Check on a real pipeline, and subscriptions to the samples and log records it puts there."""
    pipeline = Pipeline()
    samples = pipeline.samples.subscribe("test", 10_000)
    logs = pipeline.logs.subscribe("test", 10_000)
    return Check(cfg, pipeline.samples, pipeline.logs), samples, logs


def values(samples: list[Sample]) -> dict[str, float | None]:
    """The samples of one run by metric name."""
    return {s.key.rpartition(".")[2]: s.value for s in samples}


@pytest.fixture(scope="session")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cert.pem and key.pem for 127.0.0.1, valid CERT_DAYS days from now, made by openssl."""
    d = tmp_path_factory.mktemp("tls")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-days", str(CERT_DAYS),
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1")
    return d


@dataclass
class WebServer:
    url: str
    hits: int = 0


@pytest_asyncio.fixture
async def https_server(self_signed: Path) -> AsyncIterator[WebServer]:
    """/health answers "ok"; /teapot 418; /hang never answers."""
    server = WebServer("")

    async def health(_request: web.Request) -> web.Response:
        server.hits += 1
        return web.Response(text="status: ok\n")

    async def teapot(_request: web.Request) -> web.Response:
        return web.Response(status=418, text="short and stout\n")

    async def hang(_request: web.Request) -> web.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    app = web.Application()
    app.add_routes([web.get("/health", health), web.get("/teapot", teapot), web.get("/hang", hang)])
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(self_signed / "cert.pem", self_signed / "key.pem")
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls).start()
    server.url = f"https://127.0.0.1:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


@pytest.fixture
def listening() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, never listened, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def sleeper_exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/bin/sleep copied under SLEEPER's name, so its processes are this test's alone."""
    path = tmp_path_factory.mktemp("bin") / SLEEPER
    shutil.copy("/bin/sleep", path)
    return path


@pytest.fixture
def start_sleeper(sleeper_exe: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Start a SLEEPER child; each is killed by PID at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([str(sleeper_exe), "600"])
        started.append(proc)
        wait_for(lambda: os.path.exists(f"/proc/{proc.pid}/exe") and _comm(proc.pid) == SLEEPER[:15],
                 what="the sleeper to start")
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


@dataclass
class DbusDaemon:
    address: str
    proc: subprocess.Popen[bytes]


@pytest.fixture
def dbus_daemon(tmp_path: Path) -> Iterator[DbusDaemon]:
    """A real dbus-daemon (Debian's dbus-daemon package) on a socket of the test's own, stopped by PID."""
    exe = shutil.which("dbus-daemon")
    if exe is None:
        pytest.fail("dbus-daemon is not installed (apt-get install dbus-daemon)")
    path = Path(f"/tmp/mepd-dbus-{os.getpid()}-{tmp_path.name[-12:]}")
    address = f"unix:path={path}"
    proc = subprocess.Popen([exe, "--session", "--nofork", "--nopidfile", f"--address={address}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: path.exists() or proc.poll() is not None, what="dbus-daemon's socket")
        if proc.poll() is not None:
            assert proc.stderr is not None
            pytest.fail(f"dbus-daemon exited: {proc.stderr.read().decode()}")
        yield DbusDaemon(address, proc)
    finally:
        proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
