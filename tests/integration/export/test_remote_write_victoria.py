"""Remote write to a second receiver, Debian's `victoria-metrics`: the same WriteRequest, read back exactly."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from mepd.config import RemoteWriteConfig
from mepd.export.remote_write import RemoteWrite
from mepd.model import Sample
from mepd.pipeline import Pipeline
from tests.helpers import free_port, until, wait_for


@pytest.fixture
def victoria(short_tmp: Path) -> Iterator[str]:
    """The base URL of a VictoriaMetrics on 127.0.0.1."""
    if shutil.which("victoria-metrics") is None:
        pytest.fail("victoria-metrics missing: apt-get install victoria-metrics")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (short_tmp / "victoria.log").open("ab") as log:
        proc = subprocess.Popen(["victoria-metrics", f"-storageDataPath={short_tmp / 'vm'}",
                                 f"-httpListenAddr=127.0.0.1:{port}", "-retentionPeriod=1y"], stdout=log, stderr=log)
    try:
        def ready() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"victoria-metrics exited {proc.returncode}: {(short_tmp / 'victoria.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:
                    return bool(resp.status == 200)
            except OSError:
                return False

        wait_for(ready, what="victoria-metrics ready")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def force_flush(url: str) -> None:
    """Make what VictoriaMetrics accepted searchable now, not up to a second later (a CI run's export read
    the first batch alone)."""
    with urllib.request.urlopen(f"{url}/internal/force_flush", timeout=30) as resp:
        assert resp.status == 200


def exported(url: str) -> list[dict[str, object]]:
    """Every raw sample of the series, as /api/v1/export gives them (one JSON line per series)."""
    query = urllib.parse.urlencode({"match[]": 'mepd_snmp_in_bytes_per_second{target="r1"}'})
    with urllib.request.urlopen(f"{url}/api/v1/export?{query}", timeout=30) as resp:
        return [json.loads(line) for line in resp.read().splitlines() if line.strip()]


async def test_samples_reach_victoria_metrics(victoria: str, tmp_path: Path) -> None:
    pipeline = Pipeline()
    name = "export/remote_write0"
    rw = RemoteWrite(RemoteWriteConfig(f"{victoria}/api/v1/write", batch=3), name, str(tmp_path), "n1",
                     pipeline.samples.subscribe(name, 100, durable=True), dict)
    task = asyncio.create_task(rw.run(lambda: None))
    try:
        start = int(time.time()) - 300
        await pipeline.samples.put_many([Sample("snmp.r1.eth0.in_bps", start + 10 * i, 8.0 * i) for i in range(5)])
        await until(lambda: rw.counters.get("sent") == 5, "5 samples sent")
        force_flush(victoria)
        series = exported(victoria)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert series == [{
        "metric": {"__name__": "mepd_snmp_in_bytes_per_second", "target": "r1", "interface": "eth0", "node": "n1"},
        "values": [0, 1, 2, 3, 4], "timestamps": [(start + 10 * i) * 1000 for i in range(5)],
    }]
