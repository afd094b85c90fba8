"""A real headless Chromium on a real mepd, logged in with the URL `mepctl dashboard url` prints: the overview,
interface and logs pages render with every image loaded and no console error, the live tail shows a syslog
line sent after the page loaded, the acknowledge button changes the incident, and the static export loads
from disk just as well."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp

from tests.helpers import Mepd, free_port, snmp_target, syslog_listen
from tests.integration.web.conftest import COMMUNITY, TARGET, UP_IF, Chromium, Page, until

MakeMepd = Callable[..., Mepd]
ALL_IMAGES = ("Array.from(document.images).every(i => { if (i.loading === 'lazy') i.loading = 'eager';"
              " return i.complete && i.naturalWidth > 0; })")


def config(syslog_port: int, http_port: int, snmpd_port: int, export_dir: Path) -> str:
    return syslog_listen(syslog_port, "udp") + f"""
[http]
listen = "127.0.0.1:{http_port}"
title = "test dashboard"
export_dir = "{export_dir}"
export_interval = "10s"
""" + snmp_target("local", snmpd_port, community=COMMUNITY, interval="2s", interfaces=["lo"],
                  rra=["2s:2h", "5m:2d"]) + """
[alert]
group_wait = "0s"
evaluation_interval = "100ms"
[[alert.rule]]
name = "ssh-brute"
pattern = "Failed password"
app = "sshd"
count = 2
window = "1h"
summary = "{count} failed logins"
"""


def logger(port: int, tag: str, message: str) -> None:
    subprocess.run(["logger", "-n", "127.0.0.1", "-P", str(port), "-d", "-t", tag, message], check=True, timeout=30)


async def status_of(url: str, headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession(headers=headers) as s, s.get(url) as resp:
        return resp.status


async def rendered(page: Page, url: str, shots: Path, name: str) -> None:
    """Load, wait for every image, save a screenshot, and fail on any browser error so far."""
    await page.goto(url)
    await page.wait(ALL_IMAGES, f"every image of {url} to load")
    shot = await page.screenshot(shots / f"{name}.png")
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.errors() == [], page.errors()


async def test_chromium_on_a_running_mepd(mepd_factory: MakeMepd, snmpd_port: int, browser: Chromium,
                                          rrd_files: Path, tmp_path: Path) -> None:
    syslog_port, http_port = free_port(), free_port()
    periodic = tmp_path / "periodic"
    d = mepd_factory(config(syslog_port, http_port, snmpd_port, periodic))
    await asyncio.to_thread(shutil.copytree, rrd_files, d.root / "state" / "rrd")
    await asyncio.to_thread(d.start)
    base = f"http://127.0.0.1:{http_port}"
    polled = f"{base}/if/local/lo.html"
    login = (await asyncio.to_thread(d.mepctl, "dashboard", "url")).stdout.strip()
    assert login.startswith(f"{base}/?token=")
    bearer = {"Authorization": f"Bearer {login.split('=', 1)[1]}"}

    async def lo_ready() -> bool:
        return await status_of(polled, bearer) == 200

    await until(lo_ready, "the dashboard to show the polled interface lo")
    for user in ("root", "admin"):
        await asyncio.to_thread(logger, syslog_port, "sshd", f"Failed password for {user} from 192.0.2.7")
    incidents = await until(lambda: d.mepctl_json("incidents"), "an incident")
    iid = incidents[0]["id"]

    anonymous = await browser.page()
    try:
        await anonymous.goto(f"{base}/")
        assert "authentication required" in await anonymous.eval("document.body.innerText")
    finally:
        await anonymous.close()
    page = await browser.page()
    try:
        await rendered(page, login, tmp_path, "overview")  # the login URL: a cookie, then the overview
        assert await page.eval("location.href") == f"{base}/"
        assert await page.eval("document.title") == "Overview - test dashboard"
        text = await page.eval("document.getElementById('incidents').innerText")
        assert "2 failed logins" in text
        assert "critical" in text or "warning" in text
        targets = await page.eval("document.getElementById('targets').innerText")
        assert "local" in targets
        assert TARGET in targets
        assert await page.eval("document.querySelectorAll('#targets img').length") == 3  # lo + two interfaces

        await rendered(page, polled, tmp_path, "interface-lo")
        assert await page.eval("document.querySelectorAll('#stats tr').length") == 5
        info = await page.eval("document.querySelector('table.info').innerText")
        assert "up" in info
        await rendered(page, f"{base}/if/{TARGET}/{UP_IF}.html", tmp_path, "interface-history")

        await rendered(page, f"{base}/logs.html", tmp_path, "logs")
        await page.wait("document.getElementById('live-state').textContent === '(live)'", "the live tail to connect")
        marker = f"live-{uuid.uuid4().hex}"
        await asyncio.to_thread(logger, syslog_port, "kernel", f"{marker} link down")
        await page.wait(f"document.getElementById('live').innerText.includes('{marker}')",
                        "the new syslog line in the live tail")
        row = await page.eval("document.querySelector('#live tbody tr').innerText")
        assert "kernel" in row
        assert page.errors() == [], page.errors()

        await rendered(page, f"{base}/incident/{iid}.html", tmp_path, "incident")
        assert "firing" in await page.eval("document.getElementById('incident').innerText")
        await page.click_and_wait_load('form[action$="/ack"] button')
        assert "acknowledged" in await page.eval("document.getElementById('incident').innerText")
        assert d.mepctl_json("incidents")[0]["state"] == "acknowledged"
        await page.screenshot(tmp_path / "incident-acked.png")
        assert page.errors() == [], page.errors()

        out = tmp_path / "export"
        result = await asyncio.to_thread(d.mepctl, "dashboard", "export", str(out))
        assert "exported" in result.stdout
        await rendered(page, (out / "index.html").as_uri(), tmp_path, "export-overview")
        assert "2 failed logins" in await page.eval("document.getElementById('incidents').innerText")
        await rendered(page, (out / "if" / "local" / "lo.html").as_uri(), tmp_path, "export-interface")
        assert await page.eval("document.forms.length") == 0
        await until((periodic / "if" / TARGET / f"{UP_IF}.html").exists, "the periodic export")
        assert (periodic / f"graph/snmp.{TARGET}.{UP_IF}/year.png").stat().st_size > 0
    finally:
        await page.close()
    assert d.stop() == 0
