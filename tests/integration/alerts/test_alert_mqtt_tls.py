"""MQTT notification over TLS with a password, against a real mosquitto: the broker's second listener
takes TLS (certificate from the test CA) and refuses anonymous clients; the test's subscriber uses the
plain listener."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mepd.model import Sample
from tests.helpers import free_port
from tests.integration.alerts.conftest import Broker, StartEngine, Subscriber, alert_config, until
from tests.integration.alerts.test_alert_mqtt import mqtt_config


@pytest.fixture
def tls_broker(tmp_path: Path, pki: Path) -> Iterator[tuple[Broker, int]]:
    root = tmp_path / "mosquitto"
    root.mkdir()
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(root / "passwd"), "mepd", "s3cret"], check=True,
                   capture_output=True, timeout=30)
    tls_port = free_port()
    broker = Broker(root, [
        f"listener {tls_port} 127.0.0.1", f"cafile {pki / 'ca.pem'}", f"certfile {pki / 'server.pem'}",
        f"keyfile {pki / 'server.key'}", "allow_anonymous false", f"password_file {root / 'passwd'}",
    ], per_listener_settings=True)
    broker.start()
    yield broker, tls_port
    broker.stop()


def tls_notify(port: int, ca: Path, password: str) -> str:
    tls = f'tls = true\nca_file = "{ca}"\nusername = "mepd"\npassword = "{password}"\n'
    return mqtt_config(port, "").replace(f"port = {port}\n", f"port = {port}\n{tls}")


async def test_notifications_go_over_tls_with_a_password(
    tmp_path: Path, pki: Path, tls_broker: tuple[Broker, int], start_engine: StartEngine,
) -> None:
    broker, tls_port = tls_broker
    sub = Subscriber(broker.port)
    task = asyncio.create_task(sub.run())
    await until(sub.connected.is_set, "the test subscriber to connect")
    r = await start_engine(alert_config(tls_notify(tls_port, pki / "ca.pem", "s3cret"), tmp_path))
    for ts, v in ((1, 500), (2, 950)):
        await r.pipeline.samples.put(Sample("snmp.sw1.eth0.in_bps", ts, v))
    await until(lambda: sub.events() == [("firing", 1)], "the firing event, sent over TLS")
    assert r.engine.counters.get("mqtt.errors") == 0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


# paho-mqtt leaves the socket of a failed TLS handshake to the garbage collector (HABApp issue 88).
@pytest.mark.filterwarnings("ignore:Exception ignored in.*SSLSocket:pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(("ca", "password", "why"), [
    ("other", "s3cret", "certificate verify failed"),
    ("ca", "wrong", "Not authorized"),
])
async def test_a_wrong_ca_or_password_is_logged_once_and_the_notification_kept(
    tmp_path: Path, pki: Path, tls_broker: tuple[Broker, int], start_engine: StartEngine,
    caplog: pytest.LogCaptureFixture, ca: str, password: str, why: str,
) -> None:
    _, tls_port = tls_broker
    ca_file = pki / "ca.pem"
    if ca == "other":  # a CA that did not sign the broker's certificate: the system's bundle
        ca_file = Path("/etc/ssl/certs/ca-certificates.crt")
    caplog.set_level(logging.INFO, logger="mepd.alerts.notify.mqtt")
    r = await start_engine(alert_config(tls_notify(tls_port, ca_file, password), tmp_path))
    for ts, v in ((1, 500), (2, 950)):
        await r.pipeline.samples.put(Sample("snmp.sw1.eth0.in_bps", ts, v))
    await until(lambda: r.engine.counters.get("mqtt.errors") >= 3, "several connection attempts")
    warnings = [m.getMessage() for m in caplog.records if m.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert why.lower() in warnings[0].lower()
    assert password not in caplog.text, "secrets are never logged"
    assert r.engine.counters.get("mqtt.sent") == 0
    assert await r.engine._store.outbox_head("mqtt", 10), "the notification waits in the outbox"
