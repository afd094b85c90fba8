"""Real peers for the alert engine: a mosquitto broker, an MQTT subscriber, a webhook receiver.

The broker runs on a free loopback port with persistence in a temp dir, and can
be stopped and started again on the same port (the outage tests).  The engine
runs in the test's event loop, fed through a real Pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import pytest_asyncio
from aiohttp import web

from mepd import config
from mepd.alerts.engine import AlertEngine
from mepd.config import AlertConfig, SnmpTargetConfig
from mepd.pipeline import Pipeline
from tests.helpers import free_port, until

DEADLINE = 20.0
HOST = "testhost"



def alert_config(text: str, base: Path) -> AlertConfig:
    """Through the real config loader, so tests use exactly what users write."""
    return config.parse(tomllib.loads(text), str(base / "mepd.toml")).alert


class Broker:
    """mosquitto on 127.0.0.1:`port`; stop() and start() keep the port and the persisted state."""

    def __init__(self, root: Path, extra: Sequence[str] = (), *, per_listener_settings: bool = False) -> None:
        """`extra`: more configuration lines, such as a second listener with settings of its own."""
        self.root = root
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not os.path.exists(exe):
            pytest.fail("mosquitto is not installed (apt-get install mosquitto mosquitto-clients)")
        self.exe = exe
        self.conf = root / "mosquitto.conf"
        lines = ["per_listener_settings true"] if per_listener_settings else []
        lines += [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "persistence true",
                 f"persistence_location {root}/", "log_dest stderr", "log_type all"]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to `mosquitto`, which cannot write the private temp dir
        lines += extra
        self.conf.write_text("\n".join(lines) + "\n")
        self.log = root / "mosquitto.log"

    def start(self) -> None:
        with self.log.open("ab") as err:
            self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=err)
        end = time.monotonic() + DEADLINE
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"mosquitto exited with {self.proc.returncode}:\n{self.log.read_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            if time.monotonic() > end:
                pytest.fail(f"mosquitto did not listen on {self.port}:\n{self.log.read_text()}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    root = tmp_path / "mosquitto"
    root.mkdir()
    b = Broker(root)
    b.start()
    yield b
    b.stop()


@dataclass
class Received:
    topic: str
    payload: bytes

    @property
    def doc(self) -> Any:
        return json.loads(self.payload) if self.payload else None


@dataclass
class Subscriber:
    """A persistent-session QoS 1 subscriber: it gets what was published while it (or the broker) was down."""

    port: int
    topic: str = "mep/#"
    client_id: str = "test-subscriber"
    messages: list[Received] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        subscribed = False
        while True:
            try:
                async with aiomqtt.Client("127.0.0.1", self.port, identifier=self.client_id,
                                          clean_session=False) as client:
                    if not subscribed:  # the session keeps it; subscribing again would resend retained messages
                        await client.subscribe(self.topic, qos=1)
                        subscribed = True
                    self.connected.set()
                    async for m in client.messages:
                        payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
                        self.messages.append(Received(m.topic.value, payload))
            except aiomqtt.MqttError:
                self.connected.clear()
                await asyncio.sleep(0.05)

    def events(self) -> list[tuple[str, int]]:
        """(event, incident id) of the event messages, in arrival order."""
        return [(m.doc["event"], m.doc["incident"]["id"]) for m in self.messages
                if m.doc is not None and "event" in m.doc]


@pytest_asyncio.fixture
async def subscriber(broker: Broker) -> AsyncIterator[Subscriber]:
    sub = Subscriber(broker.port)
    task = asyncio.create_task(sub.run())
    await until(sub.connected.is_set, "the test subscriber to connect")
    yield sub
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def notify_toml(broker_port: int, url: str) -> str:
    """[alert.notify] to the test's broker and webhook receiver, retrying fast."""
    return (f'[alert.notify.mqtt]\nhost = "127.0.0.1"\nport = {broker_port}\n'
            f'[alert.notify.webhook]\nurl = "{url}"\nbackoff = "50ms"\n')


async def retained(port: int, topic: str) -> list[Received]:
    """The retained messages under `topic` now: a marker subscribed after it proves they have all arrived."""
    marker = f"test-marker/{time.monotonic_ns()}"
    got: list[Received] = []
    async with asyncio.timeout(DEADLINE), aiomqtt.Client("127.0.0.1", port) as client:
        await client.publish(marker, b"end", qos=1, retain=True)
        await client.subscribe(topic, qos=1)
        await client.subscribe(marker, qos=1)
        async for m in client.messages:
            if m.topic.value == marker:
                break
            got.append(Received(m.topic.value, m.payload if isinstance(m.payload, bytes) else b""))
        await client.publish(marker, b"", qos=1, retain=True)
    return got


@dataclass
class Receiver:
    """A real aiohttp webhook receiver; answers `statuses` in turn, then 200."""

    url: str
    statuses: list[int] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        status = self.statuses.pop(0) if self.statuses else 200
        self.answered.append(status)
        return web.json_response({"status": status}, status=status)

    def accepted(self) -> list[Any]:
        return [b for b, s in zip(self.bodies, self.answered, strict=True) if s == 200]


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    rec = Receiver(f"http://127.0.0.1:{port}/hook")
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield rec
    await runner.cleanup()


@dataclass
class Running:
    engine: AlertEngine
    pipeline: Pipeline
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


StartEngine = Callable[..., Awaitable[Running]]  # (AlertConfig, targets=(SnmpTargetConfig, ...))


@pytest_asyncio.fixture
async def start_engine(tmp_path: Path) -> AsyncIterator[StartEngine]:
    """Start an engine on a state dir shared by every engine of the test (a restart reuses it)."""
    running: list[Running] = []
    state = tmp_path / "state"

    async def start(cfg: AlertConfig, targets: Sequence[SnmpTargetConfig] = ()) -> Running:
        pipeline = Pipeline()
        samples = pipeline.samples.subscribe("alerts", 10_000)
        logs = pipeline.logs.subscribe("alerts", 10_000)
        engine = AlertEngine(cfg, str(state), samples, logs, host=HOST, targets=targets)
        started = asyncio.Event()
        task = asyncio.create_task(engine.run(started.set))
        await until(lambda: started.is_set() or task.done(), "the engine to start")
        if task.done():
            task.result()
        r = Running(engine, pipeline, task)
        running.append(r)
        return r

    yield start
    for r in running:
        await r.stop()
