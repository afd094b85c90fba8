"""The operations report of a period, gathered from the stores: `GET /v1/report` on the control socket
(`mepctl report`), `/report.html` on the dashboard, and the scheduled monthly export (`[report]`); and
the capacity forecasts (`GET /v1/forecast`, `mepctl forecast`, the report's last section).  With
`[report] mail_to` the monthly export also mails the report through `mail_command` (sendmail).

Everything comes from what is stored: rrdtool's figures of each interface's
file (`RrdStore.stats`), the rows of oper_up, of each check's `up` and of each
target's interfaces (availability and outages), the incident store, the log
store's counts and the web-log hours; `mepd.analysis.report` puts them together
and `mepd.analysis.report_render` draws them.  Months and days are in the
daemon's local time zone.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any, Final

from aiohttp import web

from mepd.alerts.actions import minimal_environment, run_action
from mepd.alerts.engine import NotRunningError
from mepd.analysis import report as analysis
from mepd.analysis.forecast import DISK_PCT, INTERFACE_SHARE, Forecast, forecast, soonest_first
from mepd.analysis.report_render import render_html, render_mail
from mepd.config import ReportConfig
from mepd.config.analysis import address_error
from mepd.config.outputs import default_node
from mepd.model import rfc3339
from mepd.pipeline import Counters
from mepd.store.rrd.files import RrdError
from mepd.store.weblog import UnknownWebSourceError
from mepd.units import parse_duration, parse_time
from mepd.web.data import DashboardData, interface_key

log = logging.getLogger(__name__)

PERCENTILE: Final = 95.0
STATE_METRICS: Final = ("in_errors", "out_errors", "in_discards", "out_discards")
GRAPH_SIZE: Final = (700, 180)
MAIL_KILL_GRACE: Final = 5.0  # seconds between SIGTERM and SIGKILL for a mail_command past mail_timeout


def local_tz() -> tzinfo:
    tz = datetime.now().astimezone().tzinfo
    assert tz is not None
    return tz


def period(month: str | None, since: str | None, until: str | None, now: float, tz: tzinfo) -> tuple[float, float]:
    """The report's [since, until): a month, times, or by default the last whole month; ValueError if bad."""
    if month:
        return analysis.month_period(month, tz)
    if since or until:
        start = parse_time(since, now) if since else now - 30 * 86400
        end = parse_time(until, now) if until else now
        if end <= start:
            raise ValueError("until: must be after since")
        return start, end
    return last_month(now, tz)


def last_month(now: float, tz: tzinfo) -> tuple[float, float]:
    today = datetime.fromtimestamp(now, tz)
    return analysis.month_period(f"{today.year - (today.month == 1)}-{(today.month - 2) % 12 + 1:02d}", tz)


class ReportBuilder:
    """Gathers a period's report from the running daemon's stores (the dashboard's `DashboardData`)."""

    def __init__(self, data: DashboardData) -> None:
        self.data = data

    async def build(self, since: float, until: float, tz: tzinfo | None = None) -> dict[str, object]:
        tz = tz or local_tz()
        before = analysis.previous_period(since, until, tz)
        keys = set(await self.data.daemon.rrdstore.list_keys())
        interfaces, targets = await self._interfaces(keys, since, until)
        return {
            "since": rfc3339(since), "until": rfc3339(until),
            "previous": {"since": rfc3339(before[0]), "until": rfc3339(before[1])},
            "generated": rfc3339(time.time()),
            "percentile": PERCENTILE,
            "interfaces": interfaces,
            "targets": targets,
            "checks": await self._checks(keys, since, until),
            "incidents": await self._incidents(since, until),
            "logs": await self._logs(since, until, before),
            "web": await self._web(since, until, before),
            "forecasts": [f.to_json() for f in await self.forecasts(until)],
        }

    async def _points(self, key: str, since: float, until: float) -> tuple[list[analysis.Point], float]:
        data = await self.data.daemon.rrdstore.fetch(key, since, until)
        points: list[analysis.Point] = [(float(ts), v) for ts, v in data["points"]  # type: ignore[attr-defined]
                                        if ts <= until]
        return points, float(data["step"])  # type: ignore[arg-type]

    async def _interfaces(self, keys: set[str], since: float, until: float
                          ) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        store = self.data.daemon.rrdstore
        out: list[dict[str, object]] = []
        rows_of: dict[str, dict[float, bool]] = {}  # SNMP target -> row time -> whether any interface has data
        steps: dict[str, float] = {}
        for key in sorted(keys):
            base, _, metric = key.rpartition(".")
            found = interface_key(base) if metric == "in_bps" and f"{base}.out_bps" in keys else None
            if found is None:
                continue
            target, name = found
            stats: dict[str, Mapping[str, object]] = {}
            for m in ("in_bps", "out_bps", *STATE_METRICS):
                if f"{base}.{m}" in keys:
                    stats[m] = await store.stats(f"{base}.{m}", since, until, PERCENTILE)
            polled = self.data.polled(target).get(name)
            entry: dict[str, object] = {"target": target, "name": name, "key": base,
                                        **analysis.interface_summary(stats, polled.speed_bps if polled else None)}
            if f"{base}.oper_up" in keys:
                points, step = await self._points(f"{base}.oper_up", since, until)
                entry |= analysis.state_summary(points, step)
                if base.startswith("snmp."):
                    seen = rows_of.setdefault(target, {})
                    steps[target] = step
                    for ts, v in points:
                        seen[ts] = seen.get(ts, False) or v is not None
            out.append(entry)
        targets = [{"name": t, **analysis.target_summary([(ts, 1.0 if ok else None) for ts, ok in sorted(r.items())],
                                                         steps[t])}
                   for t, r in sorted(rows_of.items())]
        return out, targets

    async def _checks(self, keys: set[str], since: float, until: float) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for key in sorted(k for k in keys if k.startswith("check.") and k.endswith(".up")):
            points, step = await self._points(key, since, until)
            out.append({"name": key.removeprefix("check.").removesuffix(".up"), **analysis.state_summary(points, step)})
        return out

    async def _incidents(self, since: float, until: float) -> dict[str, object] | None:
        try:
            store = self.data.daemon.alerts.store
        except NotRunningError:
            return None
        incidents, history = await store.in_period(since, until)
        runs = [analysis.ActionRun(h.incident, h.ts, h.event, h.detail) for h in history]
        return analysis.incident_summary(incidents, runs, since, until)

    async def _logs(self, since: float, until: float, before: tuple[float, float]) -> dict[str, object]:
        logstore = self.data.daemon.logstore
        counts, errors = await logstore.period_counts(since, until)
        old_counts, old_errors = await logstore.period_counts(*before)
        return analysis.log_summary(counts, errors, old_counts, old_errors)

    async def _web(self, since: float, until: float, before: tuple[float, float]) -> list[dict[str, object]]:
        store = self.data.daemon.weblogstore
        if store is None:
            return []
        out: list[dict[str, object]] = []
        for source in await store.sources():
            name = str(source["name"])
            try:
                now = await store.report(name, since, until, top=1)
                old: dict[str, object] | None = await store.report(name, *before, top=1)
            except UnknownWebSourceError:
                continue
            out.append({"name": name, **analysis.weblog_summary(now, old)})
        return out

    async def forecasts(self, until: float, window: float | None = None) -> list[Forecast]:
        """Each interface direction (against 80 % of its speed), file system (90 %) and `[[report.forecast]]`
        metric: its trend over `window` (the config's by default) before `until`, soonest crossing first."""
        cfg = self.data.cfg.report
        window = window or cfg.forecast_window
        keys = set(await self.data.daemon.rrdstore.list_keys())
        wanted: dict[str, float] = {}
        for key in sorted(keys):
            base, _, metric = key.rpartition(".")
            parts = key.split(".")
            found = interface_key(base) if metric in ("in_bps", "out_bps") else None
            if found is not None:
                polled = self.data.polled(found[0]).get(found[1])
                if polled is not None and polled.speed_bps:
                    wanted[key] = INTERFACE_SHARE * polled.speed_bps
            elif len(parts) == 5 and parts[0] == "host" and parts[2] == "fs" and metric == "used_pct":
                wanted[key] = DISK_PCT
        wanted |= {f.metric: f.above for f in cfg.forecast}
        out: list[Forecast] = []
        for key, threshold in wanted.items():
            try:
                stats = await self.data.daemon.rrdstore.stats(key, until - window, until)
            except RrdError as e:
                log.warning("forecast: %s: %s", key, e)
                continue
            out.append(forecast(key, stats, threshold, until))
        return soonest_first(out)

    async def interface_forecasts(self, base: str, speed_bps: float | None, now: float) -> list[Forecast]:
        """An interface's in and out forecasts against 80 % of its speed (its page shows them); none unknown."""
        if not speed_bps:
            return []
        window = self.data.cfg.report.forecast_window
        out: list[Forecast] = []
        for key in (f"{base}.in_bps", f"{base}.out_bps"):
            try:
                out.append(forecast(key, await self.data.daemon.rrdstore.stats(key, now - window, now),
                                    INTERFACE_SHARE * speed_bps, now))
            except RrdError:
                continue
        return out

    async def graphs(self, report: Mapping[str, Any]) -> dict[str, bytes]:
        """Each interface's traffic over the period (with its 95th percentiles and trend), by interface key."""
        since, until = parse_time(report["since"], 0), parse_time(report["until"], 0)
        out: dict[str, bytes] = {}
        for i in report["interfaces"]:
            key = str(i["key"])
            try:
                out[key] = await self.data.daemon.rrdstore.period_graph(
                    [f"{key}.in_bps", f"{key}.out_bps"], since, until, "png", f"{i['target']} {i['name']}",
                    GRAPH_SIZE, trend=True)
            except RrdError as e:
                log.warning("report: no graph of %s: %s", key, e)
        return out

    async def html(self, since: float, until: float) -> tuple[dict[str, object], str]:
        """The report and its self-contained page: graphs embedded as data: URIs."""
        report = await self.build(since, until)
        return report, _page(report, await self.graphs(report))

    def node(self) -> str:
        """The name the mail's subject gives this mepd: its fleet node name, else the host name."""
        fleet = self.data.cfg.fleet
        return fleet.node_name if fleet is not None else default_node()

    async def mail(self, since: float, until: float, to: Sequence[str], sender: str) -> bytes:
        """The report as a message for `sendmail -t`: text, and the page with its graphs as cid: parts."""
        report = await self.build(since, until)
        return render_mail(report, await self.graphs(report), sender, to, self.node())

    async def export(self, folder: str, since: float, until: float, name: str, mail_to: Sequence[str] = (),
                     sender: str = "") -> tuple[list[str], bytes | None]:
        """Write `name`.html and `name`.json into `folder`, and `name`.eml when there is `mail_to`; the paths
        written and the message."""
        report = await self.build(since, until)
        graphs = await self.graphs(report)
        files: dict[str, str | bytes] = {os.path.join(folder, f"{name}.html"): _page(report, graphs),
                                         os.path.join(folder, f"{name}.json"): json.dumps(report, indent=1)}
        message = render_mail(report, graphs, sender, mail_to, self.node()) if mail_to else None
        if message is not None:
            files[os.path.join(folder, f"{name}.eml")] = message
        await asyncio.to_thread(_write_files, folder, files)
        return list(files), message


class MonthlyExport:
    """The component behind `[report] export_dir` and `mail_to`: each month's report once the month is over
    (at start, the last month's when its file is missing or it was not mailed yet), as report-YYYY-MM.html
    and .json (and .eml), and mailed.  The last month mailed is kept in state_dir/report-mailed; a mail
    that failed is tried again at the next check (hourly)."""

    def __init__(self, cfg: ReportConfig, state_dir: str, builder: ReportBuilder,
                 clock: Callable[[], float] = time.time) -> None:
        self.name = "report/export"
        self.cfg = cfg
        self.mailed_file = os.path.join(state_dir, "report-mailed")
        self.builder = builder
        self.clock = clock
        self.counters = Counters()

    async def export_due(self) -> str | None:
        """Export and mail last month unless done; the month exported or mailed, if any."""
        tz = local_tz()
        since, until = last_month(self.clock(), tz)
        month = datetime.fromtimestamp(since, tz).strftime("%Y-%m")
        name = f"report-{month}"
        folder = self.cfg.export_dir
        to_export = bool(folder) and not await asyncio.to_thread(os.path.exists, os.path.join(folder, f"{name}.html"))
        to_mail = bool(self.cfg.mail_to) and await asyncio.to_thread(_read_text, self.mailed_file) != month
        if not to_export and not to_mail:
            return None
        message = None
        if to_export:
            _, message = await self.builder.export(folder, since, until, name, self.cfg.mail_to, self.cfg.sender)
            self.counters.inc("exports")
            log.info("report: %s written to %s", month, folder)
        if to_mail:
            if message is None:
                message = await self.builder.mail(since, until, self.cfg.mail_to, self.cfg.sender)
            if await self.send(month, message):
                await asyncio.to_thread(_write_files, os.path.dirname(self.mailed_file), {self.mailed_file: month})
        return month

    async def send(self, month: str, message: bytes) -> bool:
        """Run `mail_command` with the message on its stdin; whether it took it (exit status 0 in time)."""
        argv = self.cfg.mail_command
        result = await run_action(argv, minimal_environment(), self.cfg.mail_timeout, MAIL_KILL_GRACE,
                                  stdin=message)
        if result.exit_status == 0 and not result.timed_out:
            self.counters.inc("mailed")
            log.info("report: %s mailed to %s", month, ", ".join(self.cfg.mail_to))
            return True
        self.counters.inc("mail_failed")
        why = ("timed out after " + f"{self.cfg.mail_timeout:g}s" if result.timed_out
               else result.error or f"exit status {result.exit_status}, signal {result.signal}")
        log.warning("report: mailing %s with %s failed (%s), tried again in an hour: %s", month, argv[0], why,
                    result.output.strip()[:500])
        return False

    async def run(self, started: Callable[[], None]) -> None:
        started()
        while True:
            await self.export_due()
            now = self.clock()
            # Next month's first day, checked at least hourly (a clock set forward, a suspended machine).
            _, month_end = analysis.month_period(datetime.fromtimestamp(now, local_tz()).strftime("%Y-%m"), local_tz())
            await asyncio.sleep(min(3600.0, max(1.0, month_end - now + 60)))


def _page(report: Mapping[str, Any], graphs: Mapping[str, bytes]) -> str:
    return render_html(report, {k: "data:image/png;base64," + base64.b64encode(v).decode() for k, v in graphs.items()})


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


def _write_files(folder: str, files: Mapping[str, str | bytes]) -> None:
    os.makedirs(folder, exist_ok=True)
    for path, content in files.items():
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
        os.replace(tmp, path)


NO_RECIPIENT: Final = ("to: no recipient: give --to ADDR (mepctl report --mail --to ops@example.org)"
                       " or set [report] mail_to")


def api_routes(builder: ReportBuilder) -> list[web.RouteDef]:
    """`GET /v1/report?month=YYYY-MM|since=T&until=T[&format=json|html|mail&to=ADDR...&from=ADDR]` and
    `GET /v1/forecast[?window=30d]` on the control socket.  A mail goes to `to` (repeated), by default
    `[report] mail_to`, from `from`, by default `[report] mail_from`."""

    async def report(request: web.Request) -> web.Response:
        q = request.query
        try:
            since, until = period(q.get("month"), q.get("since"), q.get("until"), time.time(), local_tz())
        except ValueError as e:
            raise web.HTTPBadRequest(text=str(e)) from None
        if q.get("format") == "html":
            return web.Response(text=(await builder.html(since, until))[1], content_type="text/html")
        if q.get("format") == "mail":
            cfg = builder.data.cfg.report
            to, sender = q.getall("to", []) or list(cfg.mail_to), q.get("from") or cfg.sender
            if not to:
                raise web.HTTPBadRequest(text=NO_RECIPIENT)
            for key, address in [*(("to", a) for a in to), ("from", sender)]:
                if err := address_error(address):
                    raise web.HTTPBadRequest(text=f"{key}: {err}")
            return web.Response(body=await builder.mail(since, until, to, sender), content_type="message/rfc822")
        return web.json_response(await builder.build(since, until))

    async def forecasts(request: web.Request) -> web.Response:
        text = request.query.get("window")
        try:
            window = parse_duration(text) if text else None
        except ValueError as e:
            raise web.HTTPBadRequest(text=f"window: {e}") from None
        found = await builder.forecasts(time.time(), window)
        return web.json_response({"forecasts": [f.to_json() for f in found]})

    return [web.get("/v1/report", report), web.get("/v1/forecast", forecasts)]


def page_period(query: Mapping[str, str]) -> tuple[float, float]:
    return period(query.get("month"), query.get("since"), query.get("until"), time.time(), local_tz())

