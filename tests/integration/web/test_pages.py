"""The dashboard over real stores: RRD files made by rrdtool, a log store, incidents from a running
alert engine, web-log hours; every page over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import re
import ssl
import struct
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from mepd.api.protocol import MAX_GREP
from mepd.config import HttpConfig, SnmpConfig, SnmpTargetConfig
from mepd.model import LogRecord, Sample
from mepd.supervisor import ComponentStatus, Supervised
from mepd.supervisor import State as SupervisorState
from mepd.web.dashboard import Dashboard
from mepd.web.export import Exporter
from mepd.web.pages import si
from mepd.web.server import COOKIE, Access, WebServer
from tests.helpers import free_port
from tests.integration.web.conftest import (
    DOWN_IF,
    PEAK_IN,
    TARGET,
    TOKEN,
    UP_IF,
    Served,
    State,
    raise_incident,
    until,
)

Serve = Callable[..., Awaitable[Served]]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE, "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


async def get(served: Served, path: str, status: int = 200, **kw: object) -> str:
    async with served.session.get(served.url + path, **kw) as resp:  # type: ignore[arg-type]
        text = await resp.text()
        assert resp.status == status, f"{path}: {resp.status}: {text[:500]}"
        return text


async def get_bytes(served: Served, path: str) -> tuple[str, bytes]:
    async with served.session.get(served.url + path) as resp:
        assert resp.status == 200, f"{path}: {resp.status}"
        return resp.content_type, await resp.read()


def csrf_token(html: str) -> str:
    m = re.search(r'name=csrf value="([0-9a-f]+)"', html)
    assert m, "no form token in the page"
    return m.group(1)


async def test_overview_shows_incidents_targets_web_and_intake(state: State, serve: Serve) -> None:
    iid = await raise_incident(state)
    served = await serve()
    html = await get(served, "/")
    incidents = html.split("<section id=incidents", 1)[1].split("</section>", 1)[0]
    assert "Incidents (1 open)" in incidents
    assert f'href="incident/{iid}.html"' in incidents
    assert "2 failed logins" in incidents
    assert 'class="badge critical"' in incidents
    assert 'class="badge firing"' in incidents
    assert html.index("id=incidents") < html.index("id=targets")

    targets = html.split("<section id=targets>", 1)[1].split("</section>", 1)[0]
    assert TARGET in targets
    assert "1 of 2 interfaces down" in targets
    for name in (UP_IF, DOWN_IF):
        assert f'href="if/{TARGET}/{name}.html"' in targets
        assert f'src="graph/snmp.{TARGET}.{name}/mini.png" width="300" height="90"' in targets
    assert 'class="badge bad">down' in targets

    web = html.split("<section id=web>", 1)[1].split("</section>", 1)[0]
    assert 'href="web/web.html"' in web
    assert "<td>100</td>" in web  # requests in the last 24 hours
    assert "10.0%" in web  # 7 not found + 3 server errors of 100
    assert "<td>3</td>" in web  # server errors

    intake = html.split("<section id=intake>", 1)[1].split("</section>", 1)[0]
    assert "syslog/udp 127.0.0.1:5514" in intake
    assert "<td>1,234</td>" in intake
    assert "5 dropped" in intake
    assert '<meta http-equiv="refresh" content="300">' in html  # the RRD step
    assert "<script" not in html  # the overview needs no JavaScript


async def test_target_states_from_the_daemon_status(state: State, serve: Serve) -> None:
    targets = (SnmpTargetConfig(name="edge", host="192.0.2.9"), SnmpTargetConfig(name="dist", host="192.0.2.10"))
    state.cfg = dataclasses.replace(state.cfg, snmp=SnmpConfig(target=targets))
    state.more = [
        ComponentStatus("snmp/edge", SupervisorState.RUNNING, state.started, 0, None, {},
                        {"state": "unreachable", "last_error": "no answer after 2 tries"}),
        ComponentStatus("snmp/dist", SupervisorState.BACKOFF, state.started, 1, "bad community file", {}),
    ]
    served = await serve()
    targets_html = (await get(served, "/")).split("<section id=targets>", 1)[1].split("</section>", 1)[0]
    edge = targets_html.split('id="target-edge"', 1)[1].split("</h3>", 1)[0]
    assert 'class="badge bad">unreachable' in edge
    assert "no answer after 2 tries" in edge
    assert "192.0.2.9" in edge
    dist = targets_html.split('id="target-dist"', 1)[1].split("</h3>", 1)[0]
    assert 'class="badge bad">failed' in dist
    assert "bad community file" in dist


async def test_intake_rate_from_successive_status(state: State, serve: Serve) -> None:
    served = await serve()
    data = served.dashboard.data
    clock = [1000.0]
    data.clock = lambda: clock[0]
    data.observe(await state.status())
    state.received += 600
    clock[0] += 60
    html = await get(served, "/")
    assert "10.0/s" in html.split("<section id=intake>", 1)[1]


async def test_interface_page_like_mrtg(state: State, serve: Serve) -> None:
    served = await serve()
    html = await get(served, f"/if/{TARGET}/{UP_IF}.html")
    assert f"<h1>{TARGET} {UP_IF}</h1>" in html
    stats = html.split("<table class=list id=stats>", 1)[1].split("</table>", 1)[0]
    rows = {m.group(1): re.findall(r"<td>([^<]*)</td>", m.group(2))
            for m in re.finditer(r"<tr><th>(day|week|month|year)</th>(.*?)</tr>", stats)}
    assert set(rows) == {"day", "week", "month", "year"}
    assert rows["day"][0] == si(PEAK_IN, "b/s")  # max in: the peak an hour ago
    assert all(v != "-" for v in rows["day"])
    assert 'class="badge ok">up' in html
    for period in ("day", "week", "month", "year"):
        assert f'src="../../graph/snmp.{TARGET}.{UP_IF}/{period}.png" width="700" height="270"' in html
        assert f'href="../../graph/snmp.{TARGET}.{UP_IF}/{period}.svg"' in html
    down = await get(served, f"/if/{TARGET}/{DOWN_IF}.html")
    assert 'class="badge bad">down' in down
    await get(served, f"/if/{TARGET}/nope.html", status=404)
    await get(served, "/if/no-such/eth0.html", status=404)


async def test_graphs_png_svg_sizes_and_cache(state: State, serve: Serve) -> None:
    served = await serve()
    key = f"snmp.{TARGET}.{UP_IF}"
    for period, size in (("day", (700, 270)), ("year", (700, 270)), ("mini", (300, 90))):
        ctype, data = await get_bytes(served, f"/graph/{key}/{period}.png")
        assert ctype == "image/png"
        assert png_size(data) == size
    ctype, svg = await get_bytes(served, f"/graph/{key}/week.svg")
    assert ctype == "image/svg+xml"
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.attrib["viewBox"] == "0 0 700 270"

    cache = served.dashboard.graphs
    drawn = cache.drawn
    again = await get_bytes(served, f"/graph/{key}/day.png")
    assert cache.drawn == drawn  # the RRD did not change: served from the cache
    await state.rrdstore.write([Sample(f"{key}.{m}", time.time() + 1, 1e6) for m in ("in_bps", "out_bps")])
    changed = await get_bytes(served, f"/graph/{key}/day.png")
    assert cache.drawn == drawn + 1
    assert png_size(changed[1]) == png_size(again[1])

    shared = await asyncio.gather(*(get_bytes(served, f"/graph/{key}/month.png") for _ in range(5)))
    assert cache.drawn == drawn + 2  # five requests of one stale graph, one drawing
    assert len({data for _, data in shared}) == 1
    async with served.session.get(f"{served.url}/graph/snmp.nope.eth0/day.png") as resp:
        assert resp.status == 404


async def test_web_source_page_is_the_weblog_report(state: State, serve: Serve) -> None:
    served = await serve()
    html = await get(served, "/web/web.html")
    assert "<h2>Web report: web</h2>" in html
    assert re.search(r"Failed \(4xx, 5xx\)</th><td>10<", html)
    assert "/page0.html" in html
    assert ".weblog table{" in html  # the report's style, scoped to it
    await get(served, "/web/unknown.html", status=404)


async def test_logs_search_uses_mepctl_filters(state: State, serve: Serve) -> None:
    await state.log("disk /dev/sda1 is 91% full", app="df", host="db1", severity=4)
    await state.log("session opened for user backup", app="cron", host="db1", severity=6)
    served = await serve()
    html = await get(served, "/logs.html?grep=disk&host=db1")
    results = html.split("<h2>Found", 1)[1]
    assert "91% full" in results
    assert "session opened" not in results
    html = await get(served, "/logs.html?severity=warning")
    assert "91% full" in html.split("<h2>Found", 1)[1]
    assert "session opened" not in html.split("<h2>Found", 1)[1]
    bad = await get(served, "/logs.html?since=yesterdayish", status=400)
    assert "class=bad" in bad
    assert 'data-stream="logs/stream"' in await get(served, "/logs.html")


async def test_logs_filters_too_big_or_too_slow_are_refused_with_a_sentence(state: State, serve: Serve) -> None:
    await state.log("disk /dev/sda1 is 91% full", app="df", host="db1", severity=4)
    served = await serve()
    huge = "limit: at most 9223372036854775807, got 18446744073709551616"
    assert f"<p class=bad>{huge}</p>" in await get(served, "/logs.html?limit=18446744073709551616", status=400)
    long, too_long = f"grep={'x' * (MAX_GREP + 1)}", f"grep: at most {MAX_GREP} characters, got {MAX_GREP + 1}"
    assert f"<p class=bad>{too_long}</p>" in await get(served, f"/logs.html?{long}", status=400)
    async with served.session.get(f"{served.url}/logs/stream?{long}") as resp:
        assert (resp.status, await resp.text()) == (400, too_long)
    async with served.session.get(f"{served.url}/logs/stream", headers={"Last-Event-ID": "²"}) as resp:
        assert resp.status == 200, "an event id not ours resumes at the end"
    state.logstore.query_timeout = 0.0
    for _ in range(5):
        await state.logstore.write([LogRecord(ts=1.0, received=1.0, message=f"{i}", source="t") for i in range(1000)])
    slow = await get(served, "/logs.html?grep=nothing+like+it", status=503)
    assert "<p class=bad>the query took longer than 0 s; narrow it with --since, --host or --app</p>" in slow


async def test_live_tail_streams_new_records(state: State, serve: Serve) -> None:
    served = await serve()
    await state.log("before the stream", app="kernel")
    async with served.session.get(f"{served.url}/logs/stream?app=kernel") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/event-stream"
        assert (await resp.content.readline()).startswith(b"retry:")
        await state.log("ignored: another app", app="sshd")
        await state.log("link eth0 down", app="kernel")
        events = []
        async with asyncio.timeout(20):
            while not events:
                line = await resp.content.readline()
                if line.startswith(b"data: "):
                    events.append(json.loads(line[6:]))
    assert [e["message"] for e in events] == ["link eth0 down"]


async def test_incident_actions_need_the_form_token(state: State, serve: Serve) -> None:
    iid = await raise_incident(state)
    served = await serve()
    page = await get(served, f"/incident/{iid}.html")
    assert 'class="badge firing"' in page
    assert "Failed password for admin" in page
    token = csrf_token(page)

    async with served.session.post(f"{served.url}/incident/{iid}/ack", data={"comment": "x"}) as resp:
        assert resp.status == 403
    other = aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        async with other.post(f"{served.url}/incident/{iid}/ack", data={"csrf": token}) as resp:
            assert resp.status == 403  # a form token without its cookie: another browser's
    finally:
        await other.close()
    async with served.session.post(f"{served.url}/incident/{iid}/ack", data={"csrf": token},
                                   headers={"Origin": "http://evil.example"}) as resp:
        assert resp.status == 403
    assert (await state.alerts.show(iid))[0].state == "firing"

    async with served.session.post(f"{served.url}/incident/{iid}/ack", data={"csrf": token, "comment": "on it"},
                                   allow_redirects=False) as resp:
        assert resp.status == 303
        assert resp.headers["Location"] == f"../{iid}.html"
    inc, history = await state.alerts.show(iid)
    assert (inc.state, inc.comment) == ("acknowledged", "on it")
    assert [h["event"] for h in history] == ["fired", "acknowledged"]
    again = await get(served, f"/incident/{iid}.html")
    assert 'class="badge acknowledged"' in again
    assert f'action="../incident/{iid}/ack"' not in again

    async with served.session.post(f"{served.url}/incident/{iid}/silence",
                                   data={"csrf": token, "matchers": "rule=ssh-brute", "for": "1h"}) as resp:
        assert resp.status == 200  # followed the redirect
    [silence] = state.alerts.silences()
    assert 3590 < silence.ends - silence.starts <= 3600
    async with served.session.post(f"{served.url}/incident/{iid}/silence",
                                   data={"csrf": token, "matchers": "rule", "for": "1h"}) as resp:
        assert resp.status == 400
        assert "bad matcher" in await resp.text()

    listing = await get(served, "/incidents.html")
    assert "rule=ssh-brute" in listing.split("id=silences", 1)[1]
    async with served.session.post(f"{served.url}/incident/{iid}/resolve", data={"csrf": token}) as resp:
        assert resp.status == 200
    history_section = (await get(served, "/incidents.html")).split("<section id=history>", 1)[1]
    assert f'href="incident/{iid}.html"' in history_section
    assert 'class="badge resolved"' in history_section


async def test_auth_basic_and_bearer(state: State, serve: Serve) -> None:
    served = await serve(Access({"admin": "s3cret-pass"}, ("a-token-of-32-characters-or-more",)))
    async with served.session.get(served.url + "/") as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Basic")
    for header in (f"Basic {base64.b64encode(b'admin:wrong').decode()}", "Bearer nope", "Basic !!!"):
        async with served.session.get(served.url + "/", headers={"Authorization": header}) as resp:
            assert resp.status == 401, header
    good = (f"Basic {base64.b64encode(b'admin:s3cret-pass').decode()}", "Bearer a-token-of-32-characters-or-more")
    for header in good:
        async with served.session.get(served.url + "/graph/snmp.core-sw1.ge-0-0-1/mini.png",
                                      headers={"Authorization": header}) as resp:
            assert resp.status == 200, header


async def test_security_headers_and_cookie(state: State, serve: Serve) -> None:
    served = await serve()
    async with served.session.get(served.url + "/") as resp:
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Frame-Options"] == "DENY"
        cookie = resp.cookies[COOKIE]
        assert cookie["httponly"]
        assert cookie["samesite"] == "Strict"


async def test_static_export_has_relative_links_only(state: State, serve: Serve, tmp_path: Path) -> None:
    iid = await raise_incident(state)
    served = await serve()
    out = tmp_path / "export"
    result = await Exporter(served.dashboard).export(str(out))
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert result.files == len(files)
    expected = {"index.html", "incidents.html", "logs.html", "static/mepd.css", f"incident/{iid}.html",
                f"if/{TARGET}/{UP_IF}.html", f"if/{TARGET}/{DOWN_IF}.html", "web/web.html",
                f"graph/snmp.{TARGET}.{UP_IF}/mini.png", f"graph/snmp.{TARGET}.{UP_IF}/year.png"}
    assert expected <= files
    for name in files:
        if not name.endswith(".html"):
            continue
        page = out / name
        html = page.read_text()
        assert "<form" not in html
        assert "<script" not in html
        for link in re.findall(r'(?:href|src)="([^"]*)"', html):
            if link.startswith("data:"):
                continue
            assert not link.startswith(("/", "http:", "https:")), f"{name}: absolute link {link}"
            target = (page.parent / link.split("#", 1)[0]).resolve()
            assert target.is_file(), f"{name}: broken link {link}"
    assert png_size((out / f"graph/snmp.{TARGET}.{UP_IF}/day.png").read_bytes()) == (700, 270)


async def test_server_component_with_tls_and_auth_files(state: State, tmp_path: Path) -> None:
    """The component as the daemon runs it: TLS from a certificate made by openssl, users from a file."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    await asyncio.to_thread(subprocess.run, [
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
        "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60)
    users = tmp_path / "users"
    await asyncio.to_thread(users.write_text, "# dashboard users\nadmin:s3cret-pass\n")
    users.chmod(0o600)
    port = free_port()
    cfg = HttpConfig(listen=f"127.0.0.1:{port}", tls_cert=str(cert), tls_key=str(key), basic_auth_file=str(users))
    assert list(cfg.check()) == []
    sup = Supervised(WebServer(cfg, str(tmp_path), Dashboard(state)))
    sup.start()
    tls = ssl.create_default_context(cafile=str(cert))
    auth = {"Authorization": f"Basic {base64.b64encode(b'admin:s3cret-pass').decode()}"}
    try:
        async with aiohttp.ClientSession() as session:
            async def answers() -> bool:
                try:
                    async with session.get(f"https://127.0.0.1:{port}/", ssl=tls) as resp:
                        return resp.status == 401
                except aiohttp.ClientConnectionError:
                    return False

            await until(answers, "the dashboard to answer over TLS")
            async with session.get(f"https://127.0.0.1:{port}/", ssl=tls, headers=auth) as resp:
                assert resp.status == 200
                assert "<h1>Overview</h1>" in await resp.text()
                assert resp.cookies[COOKIE]["secure"]
            with pytest.raises(aiohttp.ClientConnectionError):  # plain HTTP to the TLS port
                async with session.get(f"http://127.0.0.1:{port}/"):
                    pass
    finally:
        await sup.stop()
