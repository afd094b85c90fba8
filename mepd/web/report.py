"""The operations report of a period, gathered from the stores: `GET /v1/report` on the control socket
(`mepctl report`), `/report.html` on the dashboard, and the scheduled monthly export (`[report]`); and
the capacity forecasts (`GET /v1/forecast`, `mepctl forecast`, the report's last section).

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
from collections.abc import Callable, Mapping
from datetime import datetime, tzinfo
from typing import Any, Final

from aiohttp import web

from mepd.alerts.engine import NotRunningError
from mepd.analysis import report as analysis
from mepd.analysis.forecast import DISK_PCT, INTERFACE_SHARE, Forecast, forecast, soonest_first
from mepd.analysis.report_render import render_html
from mepd.config import ReportConfig
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
        graphs = await self.graphs(report)
        return report, render_html(report, {k: "data:image/png;base64," + base64.b64encode(v).decode()
                                            for k, v in graphs.items()})

    async def export(self, folder: str, since: float, until: float, name: str) -> list[str]:
        """Write `name`.html and `name`.json into `folder`; the paths written."""
        report, page = await self.html(since, until)
        paths = [os.path.join(folder, f"{name}.html"), os.path.join(folder, f"{name}.json")]
        await asyncio.to_thread(_write_files, folder, {paths[0]: page, paths[1]: json.dumps(report, indent=1)})
        return paths


class MonthlyExport:
    """The component behind `[report] export_dir`: each month's report once the month is over (at start, the
    last month's when its file is missing), as report-YYYY-MM.html and .json."""

    def __init__(self, cfg: ReportConfig, builder: ReportBuilder, clock: Callable[[], float] = time.time) -> None:
        self.name = "report/export"
        self.cfg = cfg
        self.builder = builder
        self.clock = clock
        self.counters = Counters()

    async def export_due(self) -> str | None:
        """Export last month unless its report is there; the month exported, if any."""
        tz = local_tz()
        since, until = last_month(self.clock(), tz)
        month = datetime.fromtimestamp(since, tz).strftime("%Y-%m")
        name = f"report-{month}"
        if await asyncio.to_thread(os.path.exists, os.path.join(self.cfg.export_dir, f"{name}.html")):
            return None
        await self.builder.export(self.cfg.export_dir, since, until, name)
        self.counters.inc("exports")
        log.info("report: %s written to %s", month, self.cfg.export_dir)
        return month

    async def run(self, started: Callable[[], None]) -> None:
        started()
        while True:
            await self.export_due()
            now = self.clock()
            # Next month's first day, checked at least hourly (a clock set forward, a suspended machine).
            _, month_end = analysis.month_period(datetime.fromtimestamp(now, local_tz()).strftime("%Y-%m"), local_tz())
            await asyncio.sleep(min(3600.0, max(1.0, month_end - now + 60)))


def _write_files(folder: str, files: Mapping[str, str]) -> None:
    os.makedirs(folder, exist_ok=True)
    for path, text in files.items():
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)


def api_routes(builder: ReportBuilder) -> list[web.RouteDef]:
    """`GET /v1/report?month=YYYY-MM|since=T&until=T[&format=json|html]` and `GET /v1/forecast[?window=30d]`
    on the control socket."""

    async def report(request: web.Request) -> web.Response:
        q = request.query
        try:
            since, until = period(q.get("month"), q.get("since"), q.get("until"), time.time(), local_tz())
        except ValueError as e:
            raise web.HTTPBadRequest(text=str(e)) from None
        if q.get("format") == "html":
            return web.Response(text=(await builder.html(since, until))[1], content_type="text/html")
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

