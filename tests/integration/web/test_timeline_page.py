"""The interface page of a real mepd polling snmpd: its device's log line (a datagram from the target's
address, 127.0.0.1) in the timeline table below the graphs, escaped, and marked on its graphs; a headless
Chromium loads the page with its graph image and the timeline row."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from datetime import datetime

import aiohttp

from mepd.store.rrd.marks import KINDS
from tests.helpers import Mepd, free_port, snmp_target, syslog_listen
from tests.integration.web.conftest import COMMUNITY, Chromium, until
from tests.unit.store.rrd.test_rrd_marks import svg_stroke

LINE = "<b>evil</b> lo: Link is Down"  # the Linux driver's form, with markup a page must not render


def send(port: int, text: str) -> None:
    """One raw datagram from 127.0.0.1: the SNMP target's own address, as the daemon sees it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.sendto(text.encode(), ("127.0.0.1", port))


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    async with session.get(url) as resp:
        return resp.status, await resp.read()


async def test_the_interface_page_shows_and_marks_its_device_log(
        mepd_factory: Callable[..., Mepd], snmpd_port: int, browser: Chromium) -> None:
    syslog_port, http_port = free_port(), free_port()
    # One poll an hour: the RRD files do not change while the test runs, so only the mark redraws the graph.
    d = mepd_factory(syslog_listen(syslog_port, "udp") + f'[http]\nlisten = "127.0.0.1:{http_port}"\n'
                     + snmp_target("local", snmpd_port, community=COMMUNITY, interval="1h", interfaces=["lo"]))
    await asyncio.to_thread(d.start)
    base = f"http://127.0.0.1:{http_port}"
    login = (await asyncio.to_thread(d.mepctl, "dashboard", "url")).stdout.strip()
    graph = f"{base}/graph/snmp.local.lo/day.svg"
    mark = svg_stroke(KINDS["log-down"].colour)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {login.split('=', 1)[1]}"}) as s:
        async def page_ready() -> str | None:
            status, body = await get(s, f"{base}/if/local/lo.html")
            return body.decode() if status == 200 else None

        assert "No events." in await until(page_ready, "the interface page of lo")
        status, before = await get(s, graph)
        assert status == 200
        assert mark not in before

        stamp = datetime.now().strftime("%b %e %H:%M:%S")  # RFC 3164 stamps are local time
        await asyncio.to_thread(send, syslog_port, f"<3>{stamp} 127.0.0.1 kernel: {LINE}")
        timeline = await until(lambda: d.mepctl_json("timeline", "snmp.local.lo")["events"], "the linked line")
        assert [(e["kind"], e["event"]) for e in timeline] == [("log", "down")]

        html = (await get(s, f"{base}/if/local/lo.html"))[1].decode()
        table = html.split("<section id=timeline>", 1)[1]
        assert "&lt;b&gt;evil&lt;/b&gt; lo: Link is Down" in table
        assert "<b>evil" not in html
        status, after = await get(s, graph)
        assert status == 200
        assert mark in after  # drawn again although no RRD file changed: the mark is part of the cache key
        assert (await get(s, f"{base}/graph/snmp.local.lo/mini.png"))[0] == 200  # small graphs: no marks

    page = await browser.page()
    try:
        await page.goto(login)
        await page.goto(f"{base}/if/local/lo.html")
        await page.wait("Array.from(document.querySelectorAll('section.graph img')).every(i => {"
                        " i.loading = 'eager'; return i.complete && i.naturalWidth > 0; })",
                        "the interface's graphs to load")
        rows = await page.eval("Array.from(document.querySelectorAll('#timeline tr')).map(r => r.innerText)")
        assert len(rows) == 2, rows
        assert "down" in rows[1]
        assert "<b>evil</b> lo: Link is Down" in rows[1]
        assert await page.eval("document.querySelectorAll('#timeline b').length") == 0
        assert page.errors() == [], page.errors()
    finally:
        await page.close()
