"""A real Prometheus (Debian's `prometheus`) with its remote write receiver, on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import free_port, wait_for


class Prometheus:
    """One Prometheus process at a time on a fixed port and TSDB directory: stop then start keeps the data."""

    def __init__(self, root: Path, web_config: str = "", tls: ssl.SSLContext | None = None,
                 user: tuple[str, str] | None = None) -> None:
        """`web_config`: Prometheus' --web.config.file (TLS, basic auth); `tls` and `user` for the test's queries."""
        self.root = root
        self.port = free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.write_url = f"{self.url}/api/v1/write"
        (root / "prometheus.yml").write_text("")
        self.web_config = root / "web.yml" if web_config else None
        if self.web_config:
            self.web_config.write_text(web_config)
        self.tls = tls
        self.headers = {"Authorization": "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()
                        } if user else {}
        self.proc: subprocess.Popen[bytes] | None = None

    def get(self, path: str) -> Any:
        request = urllib.request.Request(self.url + path, headers=self.headers)
        with urllib.request.urlopen(request, timeout=30, context=self.tls) as resp:
            return json.load(resp) if path.startswith("/api/") else resp.status

    def start(self) -> None:
        with (self.root / "prometheus.log").open("ab") as log:
            self.proc = subprocess.Popen(
                ["prometheus", f"--config.file={self.root / 'prometheus.yml'}",
                 f"--storage.tsdb.path={self.root / 'tsdb'}", f"--web.listen-address=127.0.0.1:{self.port}",
                 "--web.enable-remote-write-receiver",
                 *([f"--web.config.file={self.web_config}"] if self.web_config else [])], stdout=log, stderr=log)
        wait_for(self._ready, what="prometheus ready")

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"prometheus exited {self.proc.returncode}: {(self.root / 'prometheus.log').read_text()}")
        try:
            return bool(self.get("/-/ready") == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)
        self.proc = None

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result: [{"metric": labels, "value": [t, "v"]} or "values": [[t, "v"], ...]]."""
        answer = self.get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])


@pytest.fixture
def prometheus_factory(short_tmp: Path) -> Iterator[Callable[..., Prometheus]]:
    """`prometheus_factory(**Prometheus's options)` starts one; each is stopped at the end, also on failure."""
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus missing: apt-get install prometheus")
    made: list[Prometheus] = []

    def make(**options: Any) -> Prometheus:
        root = short_tmp / f"prometheus{len(made)}"
        root.mkdir()
        server = Prometheus(root, **options)
        made.append(server)
        server.start()
        return server

    try:
        yield make
    finally:
        for server in made:
            server.stop()


@pytest.fixture
def prometheus(prometheus_factory: Callable[..., Prometheus]) -> Prometheus:
    return prometheus_factory()
