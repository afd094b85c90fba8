"""Fixtures: real nats-server processes with JetStream on loopback, started and stopped by PID.

`nats_cluster` is three servers routed to each other on loopback ports (one
JetStream cluster, streams with 3 replicas survive one of them killed).
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import nats
import nats.errors
import pytest

from tests.helpers import free_port, wait_for

NATS_SERVER = "nats-server"


class NatsServer:
    """One `nats-server -js` on 127.0.0.1, its store in a temp dir; `stop` and `start` keep port and store."""

    def __init__(self, root: Path, config: str = "", port: int = 0) -> None:
        self.root = root
        self.port = port or free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "nats.log"

    def start(self) -> NatsServer:
        args = [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.root / "js")]
        if self.config:
            conf = self.root / "nats.conf"
            conf.write_text(self.config)
            args += ["-c", str(conf)]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        wait_for(self._listening, what=f"nats-server on port {self.port}")
        return self

    def _listening(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"nats-server exited {self.proc.returncode}:\n{self.log.read_text()}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def nats_factory(tmp_path: Path) -> Iterator[Callable[..., NatsServer]]:
    """`nats_factory(config="", port=0)` starts a server; every one is stopped at the end, also on failure."""
    if shutil.which(NATS_SERVER) is None:
        pytest.fail("nats-server missing: apt-get install nats-server")
    made: list[NatsServer] = []

    def make(config: str = "", port: int = 0) -> NatsServer:
        root = tmp_path / f"nats{len(made)}"
        root.mkdir()
        server = NatsServer(root, config, port)
        made.append(server)
        return server.start()

    yield make
    for server in made:
        server.stop(signal.SIGKILL)


async def _jetstream_ready(urls: list[str]) -> bool:
    try:
        nc = await nats.connect(urls, connect_timeout=1, max_reconnect_attempts=0, allow_reconnect=False)
    except (nats.errors.Error, OSError, TimeoutError):
        return False
    try:
        await nc.jetstream(timeout=1).account_info()
        return True
    except (nats.errors.Error, TimeoutError):
        return False  # no JetStream meta leader elected yet
    finally:
        await nc.close()


def wait_jetstream(urls: list[str]) -> None:
    wait_for(lambda: asyncio.run(_jetstream_ready(urls)), what=f"JetStream answering on {urls}")


class NatsCluster:
    """Three servers in one JetStream cluster; `servers[i].stop(SIGKILL)` and `.start()` keep its port and store."""

    def __init__(self, servers: list[NatsServer]) -> None:
        self.servers = servers
        self.urls = [s.url for s in servers]

    def server_named(self, name: str) -> NatsServer:
        return self.servers[int(name.removeprefix("n"))]

    def wait_ready(self) -> None:
        wait_jetstream(self.urls)


def start_cluster(nats_factory: Callable[..., NatsServer], extra: str = "") -> NatsCluster:
    """Three nats-server processes named n0-n2, routed to each other on loopback ports, JetStream clustered;
    `extra` goes into each one's `cluster` block (`no_advertise: true`: clients learn no other server)."""
    ports, routes = [free_port() for _ in range(3)], [free_port() for _ in range(3)]
    urls = ", ".join(f"nats-route://127.0.0.1:{p}" for p in routes)
    servers = [nats_factory(f"server_name: n{i}\ncluster {{\n  name: mepd\n  listen: 127.0.0.1:{routes[i]}\n"
                            f"  routes: [{urls}]\n{extra}}}\n", port=ports[i]) for i in range(3)]
    cluster = NatsCluster(servers)
    cluster.wait_ready()
    return cluster


@pytest.fixture
def nats_cluster(nats_factory: Callable[..., NatsServer]) -> NatsCluster:
    """Three nats-server processes named n0-n2 in one JetStream cluster (`start_cluster`)."""
    return start_cluster(nats_factory)


@pytest.fixture
def nats_server(nats_factory: Callable[..., NatsServer]) -> NatsServer:
    return nats_factory()
