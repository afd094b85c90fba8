"""The operations report over real stores (mepd.web.report): availability and outages from rows written with
explicit times, incidents and log counts, and the self-contained HTML page in a real headless Chromium."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

import pytest

from mepd.model import LogRecord, Sample, rfc3339
from mepd.sources.snmp.interfaces import METRICS
from mepd.store.rrd.store import Layouts, RrdStore, layout
from mepd.units import parse_time
from mepd.web.data import DashboardData
from mepd.web.report import ReportBuilder, last_month, local_tz
from tests.helpers import Mepd, until
from tests.integration.web.conftest import STEP, TARGET, Chromium, Served, State, raise_incident

T0 = 1_772_323_200  # 2026-03-01 00:00 UTC
HOUR = 3600
DAY = 86400


def down_for_check(ts: int) -> bool:
    return T0 + 6 * HOUR < ts <= T0 + 7 * HOUR


def target_silent(ts: int) -> bool:
    return T0 + 10 * HOUR < ts <= T0 + 12 * HOUR


def interface_down(ts: int) -> bool:
    return T0 + 15 * HOUR < ts <= T0 + 16 * HOUR


async def write_day(root: Path) -> None:
    """A day of 5-minute polls from T0 (and two before it, so the first row of the day is whole): check `web`
    fails for an hour, target `rep` does not answer for two, its eth0 is down for one."""
    store = RrdStore(str(root), layouts=Layouts(layout(STEP), {"snmp.rep.": layout(STEP, group=METRICS),
                                                               f"snmp.{TARGET}.": layout(STEP, group=METRICS)}))
    samples = []
    for ts in range(T0 - 2 * STEP, T0 + DAY + 1, STEP):
        samples.append(Sample("check.web.up", ts, 0.0 if down_for_check(ts) else 1.0))
        if not target_silent(ts):
            values = {"in_bps": 1e6, "out_bps": 2e6, "oper_up": 0.0 if interface_down(ts) else 1.0}
            samples += [Sample(f"snmp.rep.eth0.{m}", ts, values.get(m, 0.0)) for m in METRICS]
    result = await store.write(samples)
    assert not result.errors, result.errors
    await store.close()


def outage(start: int, end: int) -> dict[str, object]:
    return {"start": rfc3339(start), "end": rfc3339(end), "seconds": end - start}


async def test_availability_and_outages_are_those_written(state: State) -> None:
    await write_day(Path(state.rrdstore.root))
    report = await ReportBuilder(DashboardData(state)).build(T0, T0 + DAY)
    check = next(c for c in report["checks"] if c["name"] == "web")  # type: ignore[attr-defined]
    assert check["outages"] == [outage(T0 + 6 * HOUR, T0 + 7 * HOUR)]
    assert check["availability_pct"] == pytest.approx(100 * (288 - 12) / 288)
    target = next(t for t in report["targets"] if t["name"] == "rep")  # type: ignore[attr-defined]
    # The first poll after the silence covers more than the heartbeat: rrdtool stores its row unknown too.
    assert target["outages"] == [outage(T0 + 10 * HOUR, T0 + 12 * HOUR + STEP)]
    assert target["availability_pct"] == pytest.approx(100 * (288 - 25) / 288)
    eth0 = next(i for i in report["interfaces"] if i["key"] == "snmp.rep.eth0")  # type: ignore[attr-defined]
    assert eth0["outages"] == [outage(T0 + 15 * HOUR, T0 + 16 * HOUR)]
    assert eth0["availability_pct"] == pytest.approx(100 * (263 - 12) / 263)
    assert eth0["in"]["average_bps"] == 1e6
    assert eth0["out"]["p95_bps"] == 2e6
    assert eth0["in"]["bytes"] == pytest.approx(1e6 / 8 * 263 * STEP)  # bits/s x seconds of the known rows / 8


async def test_incidents_and_logs_of_the_period(state: State) -> None:
    now = time.time()
    await raise_incident(state)
    await state.logstore.write([
        LogRecord(ts=now - 60, received=now, message=f"disk error on /dev/sda sector {n} at 10.0.0.{n}",
                  source="syslog/udp", host="db1", severity=3) for n in range(5)])
    report = await ReportBuilder(DashboardData(state)).build(now - HOUR, now + HOUR)
    incidents = report["incidents"]
    assert incidents["by_rule"] == {"ssh-brute": 1}  # type: ignore[index]
    assert incidents["by_severity"] == {"critical": 1}  # type: ignore[index]
    assert incidents["longest"][0]["rule"] == "ssh-brute"  # type: ignore[index]
    logs = report["logs"]
    top = logs["top_errors"][0]  # type: ignore[index]
    assert top == {"template": "disk error on /dev/sda sector <n> at <ip>", "count": 5, "previous": 0}
    assert {h["host"]: h["records"] for h in logs["hosts"]}["db1"] == 5  # type: ignore[index]


async def test_the_html_report_shows_its_graphs_in_chromium(state: State, browser: Chromium, tmp_path: Path) -> None:
    await write_day(Path(state.rrdstore.root))
    builder = ReportBuilder(DashboardData(state))
    paths, _ = await builder.export(str(tmp_path / "reports"), T0, T0 + DAY, "report-2026-03")
    page = await browser.page()
    try:
        await page.goto(Path(paths[0]).as_uri())
        count = await page.wait("document.images.length", "the report's graphs")
        assert count >= 2  # rep's eth0 and core-sw1's interfaces (no data in the period, but a graph)
        assert await page.images_loaded() == []
        assert all(src.startswith("data:image/png;base64,")
                   for src in await page.eval("Array.from(document.images).map(i => i.src)"))
        assert page.errors() == []
    finally:
        await page.close()


async def test_the_dashboard_serves_the_report(state: State, serve: Callable[[], Awaitable[Served]]) -> None:
    await write_day(Path(state.rrdstore.root))
    served: Served = await serve()
    period = {"since": rfc3339(T0), "until": rfc3339(T0 + DAY)}
    async with served.session.get(f"{served.url}/report.html", params=period) as resp:
        assert resp.status == 200
        text = await resp.text()
    assert "Operations report 2026-03-01" in text
    assert 'src="data:image/png;base64,' in text
    async with served.session.get(f"{served.url}/report.html?month=2026-13") as resp:
        assert resp.status == 400


async def test_mepctl_report_and_the_monthly_export(mepd_factory: Callable[..., Mepd], short_tmp: Path) -> None:
    exports = short_tmp / "reports"
    daemon = mepd_factory(f'[report]\nexport_dir = "{exports}"\n')
    await write_day(daemon.root / "state" / "rrd")
    daemon.start()
    report = daemon.mepctl_json("report", "--since", rfc3339(T0), "--until", rfc3339(T0 + DAY))
    check = next(c for c in report["checks"] if c["name"] == "web")
    assert check["outages"] == [outage(T0 + 6 * HOUR, T0 + 7 * HOUR)]
    assert "web: 95.83% available" in daemon.mepctl("report", "--since", rfc3339(T0), "--until",
                                                     rfc3339(T0 + DAY)).stdout
    page = daemon.mepctl("report", "--month", "2026-03", "--html").stdout
    assert page.startswith("<!DOCTYPE html>")
    assert 'src="data:image/png;base64,' in page
    # At its start the daemon writes last month's report, the month being over.
    month = datetime.fromtimestamp(last_month(time.time(), local_tz())[0], local_tz()).strftime("%Y-%m")
    written = await until(lambda: (exports / f"report-{month}.html").exists()
                          and (exports / f"report-{month}.json").exists(), "last month's report files")
    assert written
    assert json.loads((exports / f"report-{month}.json").read_text())["since"].startswith(month)


async def test_mepctl_forecast_lists_the_soonest_crossing(mepd_factory: Callable[..., Mepd]) -> None:
    daemon = mepd_factory('[[report.forecast]]\nmetric = "app.queue"\nabove = 1000\n')
    end = int(time.time()) // STEP * STEP
    start = end - 2 * DAY
    store = RrdStore(str(daemon.root / "state" / "rrd"), layouts=Layouts(layout(STEP)))
    # The disk fills by 1 % a day from 50 %: 90 % in 40 days.  The queue stays flat.
    await store.write([Sample(k, ts, v) for ts in range(start, end + 1, STEP)
                       for k, v in (("host.h.fs.root.used_pct", 50.0 + (ts - end) / DAY), ("app.queue", 10.0))])
    await store.close()
    daemon.start()
    found = daemon.mepctl_json("forecast", "--window", "1d")["forecasts"]
    assert [f["key"] for f in found] == ["host.h.fs.root.used_pct", "app.queue"]
    crossing = parse_time(found[0]["crossing"], 0)
    assert abs(crossing - (end + 40 * DAY)) <= STEP
    assert found[1]["crossing"] is None
    assert "not within a year" in daemon.mepctl("forecast", "--window", "1d").stdout


# A mail_command: what sendmail gets on its stdin, written to the file named by its argument.
CAPTURE = "import shutil, sys\nwith open(sys.argv[1], 'wb') as f:\n    shutil.copyfileobj(sys.stdin.buffer, f)\n"


def parse_mail(raw: bytes) -> EmailMessage:
    msg = BytesParser(policy=default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    return msg


def export_counters(daemon: Mepd) -> dict[str, int]:
    status = daemon.mepctl_json("status")
    return dict(next(c for c in status["components"] if c["name"] == "report/export")["counters"])


def this_last_month() -> str:
    return datetime.fromtimestamp(last_month(time.time(), local_tz())[0], local_tz()).strftime("%Y-%m")


async def test_the_monthly_report_is_mailed_and_kept(mepd_factory: Callable[..., Mepd], short_tmp: Path) -> None:
    exports, sent = short_tmp / "reports", short_tmp / "sent.eml"
    script = short_tmp / "capture.py"
    script.write_text(CAPTURE)
    daemon = mepd_factory(f'[report]\nexport_dir = "{exports}"\nmail_to = ["ops@example.org"]\n'
                          f'mail_from = "mepd@mon.example.org"\n'
                          f'mail_command = ["{sys.executable}", "{script}", "{sent}"]\n')
    await write_day(daemon.root / "state" / "rrd")
    daemon.start()
    await until(lambda: export_counters(daemon).get("mailed") == 1, "the month's report mailed")
    month = this_last_month()
    msg = parse_mail(sent.read_bytes())
    assert msg["To"] == "ops@example.org"
    assert msg["From"] == "mepd@mon.example.org"
    assert msg["Subject"].startswith(f"mepd operations report {month}-01 to ")
    assert msg.get_content_type() == "multipart/alternative"
    assert (exports / f"report-{month}.eml").read_bytes() == sent.read_bytes()
    assert (exports / f"report-{month}.html").exists()
    assert export_counters(daemon).get("mail_failed", 0) == 0
    # Mailed once: a restart does not send it again.
    daemon.stop()
    sent.unlink()
    daemon.start()
    assert export_counters(daemon).get("mailed", 0) == 0
    assert not sent.exists()


@pytest.mark.parametrize(("script_text", "mail_timeout", "why"), [
    ("import sys\nsys.stdin.read()\nprint('no MTA here')\nsys.exit(1)\n", "30s", "exit status 1"),
    ("import time\ntime.sleep(3600)\n", "1s", "timed out after 1s"),
])
async def test_a_mail_command_that_fails_is_a_warning(mepd_factory: Callable[..., Mepd], short_tmp: Path,
                                                      script_text: str, mail_timeout: str, why: str) -> None:
    script = short_tmp / "sendmail.py"
    script.write_text(script_text)
    daemon = mepd_factory(f'[report]\nmail_to = ["ops@example.org"]\nmail_timeout = "{mail_timeout}"\n'
                          f'mail_command = ["{sys.executable}", "{script}"]\n')
    daemon.start()
    await until(lambda: export_counters(daemon).get("mail_failed") == 1, "the failed mail counted")
    assert export_counters(daemon).get("mailed", 0) == 0
    warning = await until(lambda: next((line for line in daemon.stderr().splitlines()
                                        if f"report: mailing {this_last_month()}" in line), None), "the warning")
    assert " WARNING mepd.web.report: " in warning
    assert why in warning
    assert daemon.mepctl("status").returncode == 0  # the daemon is fine


async def test_mepctl_report_mail(mepd_factory: Callable[..., Mepd]) -> None:
    daemon = mepd_factory()
    await write_day(daemon.root / "state" / "rrd")
    daemon.start()
    period = ("--since", rfc3339(T0), "--until", rfc3339(T0 + DAY))
    out = daemon.mepctl("report", *period, "--mail", "--to", "a@example.org", "--to", "b@example.org",
                        "--from", "me@example.org").stdout
    msg = parse_mail(out.encode())
    assert [a.addr_spec for a in msg["To"].addresses] == ["a@example.org", "b@example.org"]
    assert msg["From"] == "me@example.org"
    text, related = msg.iter_parts()
    assert "web: 95.83% available" in text.get_content()
    page, *images = related.iter_parts()
    assert "data:" not in page.get_content()
    assert images
    assert all(i.get_content_type() == "image/png" and i.get_content().startswith(b"\x89PNG") for i in images)
    # Without --to and [report] mail_to: a usage error that says what to do.
    refused = daemon.mepctl("report", *period, "--mail", check=False)
    assert refused.returncode == 2
    assert "--to ADDR" in refused.stderr
    assert "[report] mail_to" in refused.stderr
