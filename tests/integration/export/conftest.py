"""A real Prometheus (Debian's `prometheus`) with its remote write receiver, on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import free_port, wait_for


class Prometheus:
    """One Prometheus process at a time on a fixed port and TSDB directory: stop then start keeps the data."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.write_url = f"{self.url}/api/v1/write"
        (root / "prometheus.yml").write_text("")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.root / "prometheus.log").open("ab") as log:
            self.proc = subprocess.Popen(
                ["prometheus", f"--config.file={self.root / 'prometheus.yml'}",
                 f"--storage.tsdb.path={self.root / 'tsdb'}", f"--web.listen-address=127.0.0.1:{self.port}",
                 "--web.enable-remote-write-receiver"], stdout=log, stderr=log)
        wait_for(self._ready, what="prometheus ready")

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"prometheus exited {self.proc.returncode}: {(self.root / 'prometheus.log').read_text()}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=5) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)
        self.proc = None

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result: [{"metric": labels, "value": [t, "v"]} or "values": [[t, "v"], ...]]."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=30) as resp:
            answer = json.load(resp)
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])


@pytest.fixture
def prometheus(short_tmp: Path) -> Iterator[Prometheus]:
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus missing: apt-get install prometheus")
    root = short_tmp / "prometheus"
    root.mkdir()
    server = Prometheus(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
