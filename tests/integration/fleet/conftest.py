"""Fixtures: real nats-server processes with JetStream on loopback, started and stopped by PID."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port, wait_for

NATS_SERVER = "nats-server"


class NatsServer:
    """One `nats-server -js` on 127.0.0.1, its store in a temp dir; `stop` and `start` keep port and store."""

    def __init__(self, root: Path, config: str = "") -> None:
        self.root = root
        self.port = free_port()
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
    """`nats_factory(config="")` starts a server; every one is stopped at the end, also on failure."""
    if shutil.which(NATS_SERVER) is None:
        pytest.fail("nats-server missing: apt-get install nats-server")
    made: list[NatsServer] = []

    def make(config: str = "") -> NatsServer:
        root = tmp_path / f"nats{len(made)}"
        root.mkdir()
        server = NatsServer(root, config)
        made.append(server)
        return server.start()

    yield make
    for server in made:
        server.stop(signal.SIGKILL)


@pytest.fixture
def nats_server(nats_factory: Callable[..., NatsServer]) -> NatsServer:
    return nats_factory()
