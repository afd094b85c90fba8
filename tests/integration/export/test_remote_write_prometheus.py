"""Remote write against a real Prometheus: what arrives is queried back through its HTTP API."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from mepd.config import BasicAuthConfig, RemoteWriteConfig
from mepd.export.remote_write import RemoteWrite
from mepd.model import Sample
from mepd.pipeline import Pipeline
from tests.helpers import Mepd, until, wait_for
from tests.integration.export.conftest import Prometheus

MakeMepd = Callable[..., Mepd]
PASSWORD_HASH = "$2b$04$vU21PR8mumtyHZ6Tq.EojO/OzyB0tp48uH..lDArMDFgB/SjspKRq"  # bcrypt of s3cret-pw, cost 4
SERIES = 'mepd_snmp_in_bytes_per_second{target="r1",interface="eth0",node="n1"}'


def test_a_daemons_check_samples_reach_prometheus(prometheus: Prometheus, mepd_factory: MakeMepd) -> None:
    daemon = mepd_factory(
        f'[[check]]\nname = "prom"\ntcp = "127.0.0.1:{prometheus.port}"\ninterval = "2s"\ntimeout = "1s"\n'
        f'[fleet]\nservers = ["nats://127.0.0.1:1"]\nnode = "n7"\npublish = []\n'
        f'[[metrics.remote_write]]\nurl = "{prometheus.write_url}"\n').start()

    found = wait_for(lambda: prometheus.query('mepd_metric{key="check.prom.up"}'), what="check.prom.up in prometheus")
    assert found[0]["metric"] == {"__name__": "mepd_metric", "key": "check.prom.up", "node": "n7"}
    assert found[0]["value"][1] == "1"
    component = wait_for(lambda: next(c for c in daemon.mepctl_json("status")["components"]
                                      if c["name"] == "export/remote_write0" and c["counters"]["sent"] > 0),
                         what="sent counted")
    assert component["counters"]["dropped.rejected"] == 0
    assert "export/remote_write0" in daemon.mepctl("status").stdout
    assert daemon.stop() == 0


def counters(daemon: Mepd) -> dict[str, int]:
    return dict(next(c["counters"] for c in daemon.mepctl_json("status")["components"]
                     if c["name"] == "export/remote_write0"))


def test_what_is_queued_when_the_daemon_stops_is_sent_after_it_starts(
        prometheus: Prometheus, mepd_factory: MakeMepd) -> None:
    daemon = mepd_factory(
        f'[[check]]\nname = "prom"\ntcp = "127.0.0.1:{prometheus.port}"\ninterval = "1s"\ntimeout = "1s"\n'
        f'[[metrics.remote_write]]\nurl = "{prometheus.write_url}"\n').start()
    wait_for(lambda: counters(daemon)["sent"] > 0, what="a sample sent")
    prometheus.stop()
    # While Prometheus is down its port is closed: the check's samples are 0 (and its latency unknown, not
    # sent), and only on mepd's disk.  Up to two runs from before the stop (up 1 and a latency each) may wait
    # with them: 7 queued holds at least 3 zeros.
    wait_for(lambda: counters(daemon)["queued"] >= 7, what="samples queued during the outage")
    assert daemon.stop() == 0
    prometheus.start()
    daemon.start()

    def raw() -> list[tuple[float, str]] | None:
        result = prometheus.query('mepd_metric{key="check.prom.up"}[1h]')
        values = [(float(t), v) for t, v in result[0]["values"]] if result else []
        return values if "0" in {v for _, v in values} and values[-1][1] == "1" else None

    values = wait_for(raw, what="the outage's samples in prometheus")
    assert len({t for t, _ in values}) == len(values)
    assert sum(v == "0" for _, v in values) >= 3
    assert daemon.stop() == 0


@pytest.fixture
async def exporter(prometheus: Prometheus, tmp_path: Path) -> AsyncIterator[tuple[Pipeline, RemoteWrite]]:
    """A RemoteWrite fed by a pipeline in this process, as the daemon wires it."""
    pipeline = Pipeline()
    subscription = pipeline.samples.subscribe("export/remote_write0", 10_000, durable=True)
    rw = RemoteWrite(RemoteWriteConfig(prometheus.write_url, batch=7, timeout=5.0), "export/remote_write0",
                     str(tmp_path), "n1", subscription, dict)
    task = asyncio.create_task(rw.run(lambda: None))
    yield pipeline, rw
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def raw_samples(prometheus: Prometheus) -> list[tuple[float, float]]:
    """Every stored sample of SERIES in the last hour: (seconds, value)."""
    result = prometheus.query(SERIES + "[1h]")
    return [(float(t), float(v)) for t, v in result[0]["values"]] if result else []


async def test_an_outage_of_the_receiver_loses_and_doubles_nothing(
        prometheus: Prometheus, exporter: tuple[Pipeline, RemoteWrite]) -> None:
    pipeline, rw = exporter
    start = int(time.time()) - 600
    sent = [Sample("snmp.r1.eth0.in_bps", start + 10 * i, 800.0 * i) for i in range(20)]
    await pipeline.samples.put_many(sent[:10])
    await until(lambda: rw.counters.get("sent") == 10, "the first 10 sent")

    await asyncio.to_thread(prometheus.stop)
    await pipeline.samples.put_many(sent[10:])
    await until(lambda: rw.counters.get("retried") > 0 and rw.counters.get("queued") == 10,
                "the 10 samples queued on disk, a failed send retried")
    await asyncio.to_thread(prometheus.start)
    await until(lambda: rw.counters.get("sent") == 20 and rw.counters.get("queued") == 0, "the queue sent")

    assert await asyncio.to_thread(raw_samples, prometheus) == [(s.ts, s.value * 0.125) for s in sent]
    assert rw.counters.get("dropped.rejected") == rw.counters.get("dropped.queue_full") == 0


@pytest.mark.slow
async def test_a_minute_without_the_receiver_with_samples_flowing_loses_and_doubles_nothing(
        prometheus: Prometheus, exporter: tuple[Pipeline, RemoteWrite]) -> None:
    """The issue's outage: Prometheus down a full minute while a sample a second keeps coming."""
    pipeline, rw = exporter
    first = int(time.time()) + 1
    fed: list[Sample] = []
    stop = asyncio.Event()

    async def feed() -> None:
        """One sample a second, stamped with the second it is due (whole seconds: compared exactly)."""
        while not stop.is_set():
            due = first + len(fed)
            await asyncio.sleep(max(0.0, due - time.time()))  # pacing, not synchronisation
            sample = Sample("snmp.r1.eth0.in_bps", due, 8.0 * len(fed))
            await pipeline.samples.put_many([sample])
            fed.append(sample)

    feeding = asyncio.create_task(feed())
    try:
        await until(lambda: rw.counters.get("sent") >= 3, "samples sent before the outage")
        await asyncio.to_thread(prometheus.stop)
        fed_before = len(fed)
        await asyncio.sleep(60)  # the outage: a minute while the feed goes on
        assert len(fed) - fed_before >= 59
        # Nothing can be sent: the minute's samples wait on disk (less the last second's, still lingering).
        assert rw.counters.get("queued") >= 55
        assert rw.counters.get("retried") > 0
        await asyncio.to_thread(prometheus.start)
        fed_at_start = len(fed)
        await until(lambda: len(fed) >= fed_at_start + 3, "samples fed after the receiver is back")
    finally:
        stop.set()
        await asyncio.gather(feeding, return_exceptions=True)
    await until(lambda: rw.counters.get("sent") == len(fed) and rw.counters.get("queued") == 0,
                "the minute's samples sent", limit=90)

    assert await asyncio.to_thread(raw_samples, prometheus) == [(s.ts, s.value * 0.125) for s in fed]
    assert rw.counters.get("dropped.rejected") == rw.counters.get("dropped.queue_full") == 0


async def test_a_rejected_batch_is_dropped_and_counted(
        prometheus: Prometheus, exporter: tuple[Pipeline, RemoteWrite]) -> None:
    pipeline, rw = exporter
    now = int(time.time())
    await pipeline.samples.put_many([Sample("snmp.r1.eth0.in_bps", now - 10, 8.0)])
    await until(lambda: rw.counters.get("sent") == 1, "the first sample sent")
    # Older than the series' last sample: Prometheus answers 400 (out of order), which retrying cannot mend.
    await pipeline.samples.put_many([Sample("snmp.r1.eth0.in_bps", now - 100, 16.0)])
    await until(lambda: rw.counters.get("dropped.rejected") == 1, "the rejected sample counted")
    assert rw.details()["last_error"] == "HTTP 400: out of order sample"
    await pipeline.samples.put_many([Sample("snmp.r1.eth0.in_bps", now - 5, 24.0)])
    await until(lambda: rw.counters.get("sent") == 2, "the next sample sent")

    assert await asyncio.to_thread(raw_samples, prometheus) == [(now - 10, 1.0), (now - 5, 3.0)]


async def test_tls_with_a_client_certificate_and_basic_auth(
        prometheus_factory: Callable[..., Prometheus], pki: Path, tmp_path: Path) -> None:
    web = (f"tls_server_config:\n  cert_file: {pki / 'server.pem'}\n  key_file: {pki / 'server.key'}\n"
           f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {pki / 'ca.pem'}\n"
           f"basic_auth_users:\n  mepd: {PASSWORD_HASH}\n")
    tls = ssl.create_default_context(cafile=pki / "ca.pem")
    tls.load_cert_chain(pki / "client.pem", pki / "client.key")
    server = await asyncio.to_thread(prometheus_factory, web_config=web, tls=tls, user=("mepd", "s3cret-pw"))
    pipeline = Pipeline()

    def exporter(name: str, password: str) -> RemoteWrite:
        password_file = tmp_path / name.replace("/", "_")
        password_file.write_text(password + "\n")
        cfg = RemoteWriteConfig(server.write_url, basic_auth=BasicAuthConfig("mepd", str(password_file)),
                                ca_file=str(pki / "ca.pem"), cert=str(pki / "client.pem"), key=str(pki / "client.key"))
        return RemoteWrite(cfg, name, str(tmp_path), "n1", pipeline.samples.subscribe(name, 100, durable=True), dict)

    right, wrong = exporter("export/remote_write0", "s3cret-pw"), exporter("export/remote_write1", "guess")
    tasks = [asyncio.create_task(rw.run(lambda: None)) for rw in (right, wrong)]
    try:
        now = int(time.time())
        await pipeline.samples.put_many([Sample("snmp.r1.eth0.in_bps", now - 10, 8.0)])
        await until(lambda: right.counters.get("sent") == 1 and wrong.counters.get("dropped.rejected") == 1,
                    "one sample sent with the password, one refused without it")
        assert str(wrong.details()["last_error"]).startswith("HTTP 401")
        assert await asyncio.to_thread(raw_samples, server) == [(now - 10, 1.0)]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
