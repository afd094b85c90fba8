"""Real peers for the dashboard tests: RRD files made by rrdtool, a log store, a running alert engine,
a web-log store filled from access-log lines, and a headless Chromium driven over the DevTools protocol.

Chromium is Debian's (`apt-get install chromium`), started with a temp profile and
`--remote-debugging-port=0`; the port it picked is read from DevToolsActivePort in
the profile.  It is stopped by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from mepd import __version__
from mepd.alerts.engine import AlertEngine
from mepd.analysis.weblog.accesslog import parse_access_line
from mepd.analysis.weblog.aggregate import Aggregate
from mepd.api.protocol import DaemonStatus
from mepd.config import AlertConfig, AlertRuleConfig, Config, HttpConfig, SnmpConfig, SnmpTargetConfig, TailConfig
from mepd.model import LogRecord, Sample
from mepd.pipeline import Pipeline
from mepd.sources.snmp.interfaces import METRICS
from mepd.sources.snmp.target import SnmpHub
from mepd.store.logs.store import LogStore
from mepd.store.rrd.store import Layouts, RrdStore, layout
from mepd.store.weblog import WebLogStore
from mepd.supervisor import ComponentStatus, Supervised
from mepd.supervisor import State as SupervisorState
from mepd.web.dashboard import Dashboard
from mepd.web.server import Access, Site
from tests.helpers import until, wait_for
from tests.integration.snmp.conftest import COMMUNITY, agent_answers, free_udp_port, stop

DEADLINE = 30.0
CHROMIUM = "/usr/bin/chromium"
STEP = 300
TARGET = "core-sw1"
UP_IF, DOWN_IF = "ge-0-0-1", "ge-0-0-2"
HISTORY_DAYS = 40
PEAK_IN = 80e6  # ge-0-0-1's highest inbound rate, in the last day
TOKEN = "the-dashboard-token-of-the-tests"  # what `serve` admits by default



# -- RRD files -----------------------------------------------------------------------------------------------


def traffic(ts: float, base: float) -> float:
    """A daily wave, MRTG-like: base * (1.5 + sin)."""
    return base * (1.5 + math.sin(2 * math.pi * (ts % 86400) / 86400))


def interface_samples(now: float) -> list[Sample]:
    """40 days of 5-minute samples for two interfaces of core-sw1; ge-0-0-2 goes down at the end,
    ge-0-0-1 peaks at PEAK_IN once, an hour ago."""
    out = []
    end = int(now) // STEP * STEP
    start = end - HISTORY_DAYS * 86400
    peak = end - 3600
    for ts in range(start + STEP, end + 1, STEP):
        for name, base in ((UP_IF, 20e6), (DOWN_IF, 2e6)):
            prefix = f"snmp.{TARGET}.{name}."
            value_in = PEAK_IN if name == UP_IF and ts == peak else traffic(ts, base)
            up = 0.0 if name == DOWN_IF and ts > end - 1800 else 1.0
            values = {"in_bps": value_in, "out_bps": traffic(ts, base / 4), "oper_up": up}
            out += [Sample(prefix + m, float(ts), values.get(m, 0.0)) for m in METRICS]
    return out


def rrd_layouts() -> Layouts:
    return Layouts(layout(STEP), {f"snmp.{TARGET}.": layout(STEP, group=METRICS)})


async def make_rrds(root: Path, now: float) -> None:
    """The files the daemon's RRD sink would have written, made by rrdtool through a store of their own."""
    store = RrdStore(str(root), layouts=rrd_layouts())
    result = await store.write(interface_samples(now))
    assert not result.errors, result.errors
    await store.close()


# -- web log -------------------------------------------------------------------------------------------------

STATUSES = ["200"] * 90 + ["404"] * 7 + ["500"] * 3


def access_lines(now: float) -> list[str]:
    """100 requests over the last hours: 7 not found, 3 server errors."""
    out = []
    for i, status in enumerate(STATUSES):
        ts = time.gmtime(now - 3 * 3600 + i * 60)
        stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", ts)
        out.append(f'192.0.2.{i % 20} - - [{stamp}] "GET /page{i % 5}.html HTTP/1.1" {status} 1000 '
                   f'"-" "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"')
    return out


async def fill_weblog(store: WebLogStore, source: str, lines: list[str]) -> None:
    hours: dict[int, Aggregate] = {}
    for line in lines:
        ts, fields = parse_access_line(line, "combined")
        hours.setdefault(int(ts) // 3600 * 3600, Aggregate("combined")).add_fields(ts, fields)
    for agg in hours.values():
        agg.settle()
    await store.add(source, sorted(hours.items()))


# -- a daemon made of real stores ----------------------------------------------------------------------------


@dataclass
class State:
    """What mepd.web.data.Daemon asks for, from real stores and a running alert engine."""

    cfg: Config
    logstore: LogStore
    rrdstore: RrdStore
    alerts: AlertEngine
    weblogstore: WebLogStore | None
    pipeline: Pipeline
    components: dict[str, tuple[object, Supervised]] = field(default_factory=dict)
    received: int = 1234
    dropped: int = 5
    more: list[ComponentStatus] = field(default_factory=list)  # other components' status
    started: float = field(default_factory=time.time)

    snmp_hub: SnmpHub = field(default_factory=lambda: SnmpHub(SnmpConfig()))

    @property
    def snmp_targets(self) -> tuple[SnmpTargetConfig, ...]:
        return self.cfg.snmp.target

    async def status(self) -> DaemonStatus:
        """As mepd.app.App.status() gives it, with made-up intake counts."""
        udp = {"received": self.received, "dropped.queue_full": self.dropped, "parse_errors": 2}
        running = SupervisorState.RUNNING
        components = [ComponentStatus("syslog/udp 127.0.0.1:5514", running, self.started, 0, None, udp),
                      ComponentStatus("journal", running, self.started, 0, None, {"read": 77}), *self.more]
        logs = {"received": self.received, "stored": self.received - self.dropped,
                "dropped.queue_full.store/logs": self.dropped}
        pipeline = dataclasses.replace(self.pipeline.status(), logs=logs)
        return DaemonStatus(__version__, os.getpid(), self.started, time.time() - self.started, self.cfg.file,
                            components, pipeline, await self.logstore.stats(), {"ok": 0}, None)

    async def log(self, message: str, app: str = "sshd", host: str = "web1", severity: int = 4) -> None:
        """A record through the pipeline (the alert engine sees it) and into the log store."""
        now = time.time()
        record = LogRecord(ts=now, received=now, message=message, source="syslog/udp", host=host, app=app,
                           severity=severity, facility=4)
        await self.pipeline.logs.put(record)
        await self.logstore.write([record])


RULE = AlertRuleConfig(name="ssh-brute", pattern="Failed password", app="sshd", count=2, window=3600.0,
                       severity="critical", summary="{count} failed logins")


def state_config(root: Path, http: HttpConfig | None = None) -> Config:
    return Config(
        file=str(root / "mepd.toml"),
        alert=AlertConfig(group_wait=0.0, evaluation_interval=0.1, rule=(RULE,)),
        tail=(TailConfig(name="web", path=str(root / "access.log"), format="combined"),),
        http=http or HttpConfig(listen=""),
    )


@pytest.fixture(scope="session")
def rrd_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The RRD files, made once per session (40 days of samples take a few seconds); tests get copies."""
    root = tmp_path_factory.mktemp("rrd-made")
    asyncio.run(make_rrds(root / "rrd", time.time()))
    return root / "rrd"


@pytest_asyncio.fixture
async def state(tmp_path: Path, rrd_files: Path) -> AsyncIterator[State]:
    now = time.time()
    await asyncio.to_thread(shutil.copytree, rrd_files, tmp_path / "rrd")
    cfg = state_config(tmp_path)
    pipeline = Pipeline()
    logstore = LogStore(str(tmp_path / "logs.db"), cfg.storage.logs)
    await logstore.open()
    weblog = WebLogStore(str(tmp_path / "weblog.db"))
    await weblog.open()
    await fill_weblog(weblog, "web", access_lines(now))
    engine = AlertEngine(cfg.alert, str(tmp_path), None, pipeline.logs.subscribe("alerts", 1000))
    sup = Supervised(engine)
    sup.start()
    st = State(cfg, logstore, RrdStore(str(tmp_path / "rrd"), layouts=rrd_layouts()), engine, weblog, pipeline)
    try:
        await until(lambda: engine._incidents is not None, "the alert engine to start")
        yield st
    finally:
        await sup.stop()
        await weblog.close()
        await logstore.close()
        await st.rrdstore.close()


async def raise_incident(st: State) -> int:
    for user in ("root", "admin"):
        await st.log(f"Failed password for {user} from 192.0.2.7 port 22 ssh2")
    found = await until(st.alerts.list_incidents, "an incident from two failed logins")
    return int(found[0].id)


@dataclass
class Served:
    url: str
    dashboard: Dashboard
    site: Site
    session: aiohttp.ClientSession


@pytest_asyncio.fixture
async def serve(state: State) -> AsyncIterator[Callable[..., Awaitable[Served]]]:
    """Start the dashboard's Site over `state` on a free loopback port: `await serve(access=...)`; by default
    it admits TOKEN, which the session sends."""
    runners: list[aiohttp.web.AppRunner] = []
    sessions: list[aiohttp.ClientSession] = []

    async def start(access: Access | None = None) -> Served:
        dashboard = Dashboard(state)
        site = Site(dashboard, access or Access({}, (TOKEN,)))
        runner = aiohttp.web.AppRunner(site.app, shutdown_timeout=0.5)
        await runner.setup()
        tcp = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
        await tcp.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                        headers=None if access else {"Authorization": f"Bearer {TOKEN}"})
        sessions.append(session)
        return Served(f"http://127.0.0.1:{port}", dashboard, site, session)

    yield start
    for s in sessions:
        await s.close()
    for r in runners:
        await r.cleanup()


# -- Chromium ------------------------------------------------------------------------------------------------


class Page:
    """One browser tab over the DevTools protocol: navigate, evaluate, screenshot; errors are collected."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.loads = 0
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            if "id" in data:
                future = self.pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            else:
                self.events.append(data)
                if data.get("method") == "Page.loadEventFired":
                    self.loads += 1

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        async with asyncio.timeout(DEADLINE):
            answer = await future
        if "error" in answer:
            pytest.fail(f"DevTools {method}: {answer['error']}")
        return dict(answer.get("result", {}))

    async def goto(self, url: str) -> None:
        loads = self.loads
        await self.send("Page.navigate", url=url)
        await until(lambda: self.loads > loads, f"{url} to load")

    async def eval(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            pytest.fail(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait(self, expression: str, what: str) -> Any:
        async def check() -> Any:
            return await self.eval(expression)

        return await until(check, what)

    async def click_and_wait_load(self, selector: str) -> None:
        loads = self.loads
        clicked = await self.eval(f"(() => {{ const b = document.querySelector({json.dumps(selector)});"
                                  " if (!b) return false; b.click(); return true; })()")
        assert clicked, f"nothing matches {selector}"
        await until(lambda: self.loads > loads, f"the page after clicking {selector}")

    async def screenshot(self, path: Path) -> bytes:
        data = await self.send("Page.captureScreenshot", format="png")
        import base64  # noqa: PLC0415 - only screenshots need it

        image = base64.b64decode(data["data"])
        await asyncio.to_thread(path.write_bytes, image)
        return image

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions, failed loads and error log entries seen so far."""
        out = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append(f"exception: {params['exceptionDetails']}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                out.append(f"console: {params.get('args')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                out.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
            elif method == "Network.loadingFailed" and not params.get("canceled"):
                out.append(f"network: {params.get('errorText')} ({params.get('type')})")
        return out

    async def images_loaded(self) -> list[str]:
        """The src of every image that did not load (empty when all did)."""
        return list(await self.eval(
            "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"))

    async def close(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader
        await self.ws.close()


class Chromium:
    def __init__(self, profile: Path) -> None:
        self.profile = profile
        self.log = (profile.parent / "chromium.log").open("wb")
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--remote-debugging-port=0",
             "--remote-allow-origins=*", "--window-size=1280,900", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=self.log,
        )
        self.session = aiohttp.ClientSession()
        self.port = 0

    async def start(self) -> None:
        active = self.profile / "DevToolsActivePort"

        def ready() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"chromium exited with {self.proc.returncode}")
            return active.exists() and bool(active.read_text().split("\n", 1)[0].strip())

        await until(ready, "chromium's DevTools port")
        self.port = int(active.read_text().split("\n", 1)[0])

    async def page(self) -> Page:
        async with self.session.put(f"http://127.0.0.1:{self.port}/json/new?about:blank") as resp:
            target = await resp.json()
        ws = await self.session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
        page = Page(ws)
        for domain in ("Page", "Runtime", "Log", "Network"):
            await page.send(f"{domain}.enable")
        return page

    async def stop(self) -> None:
        await self.session.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def chromium_profile() -> Iterator[Path]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (apt-get install chromium)")
    path = Path(tempfile.mkdtemp(prefix="mepd-chromium-"))
    (path / "profile").mkdir()
    yield path / "profile"
    shutil.rmtree(path, ignore_errors=True)


@pytest_asyncio.fixture
async def browser(chromium_profile: Path) -> AsyncIterator[Chromium]:
    b = Chromium(chromium_profile)
    try:
        await b.start()
        yield b
    finally:
        await b.stop()


# -- snmpd ---------------------------------------------------------------------------------------------------


@pytest.fixture
def snmpd_port() -> Iterator[int]:
    """net-snmp's snmpd on a free loopback port, community `public` (the daemon polls its `lo`)."""
    port = free_udp_port()
    root = Path(tempfile.mkdtemp(prefix="mepd-web-snmpd-"))
    (root / "persist").mkdir()
    conf = root / "snmpd.conf"
    conf.write_text(f"[snmp] persistentDir {root / 'persist'}\nagentAddress udp:127.0.0.1:{port}\n"
                    f"rocommunity {COMMUNITY} 127.0.0.1\n")
    with (root / "snmpd.log").open("wb") as log:
        proc = subprocess.Popen(["snmpd", "-f", "-Lo", "-C", "-m", "", "-c", str(conf), "-p", str(root / "pid")],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: proc.poll() is not None or agent_answers(port), what="snmpd to answer")
        if proc.poll() is not None:
            pytest.fail(f"snmpd exited: {(root / 'snmpd.log').read_text()}")
        yield port
    finally:
        stop(proc)
        shutil.rmtree(root, ignore_errors=True)
