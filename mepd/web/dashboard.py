"""The dashboard's pages and graphs, rendered the same way for the live server and the static export.

One Dashboard lives as long as the daemon (its graph cache survives a reload
of `[http]`); it reads the daemon's current config at every page.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final

from mepd.alerts.engine import NotFoundError, NotRunningError
from mepd.analysis.forecast import INTERFACE_SHARE, graph_end
from mepd.analysis.weblog.render import render_html
from mepd.api.checks import check_states
from mepd.api.protocol import log_query
from mepd.store.logs.store import QueryLimitError
from mepd.store.rrd.store import KEY, PERIODS, ImageFormat, Period, RrdError
from mepd.web import checks as checks_page
from mepd.web import logintake, pages
from mepd.web.data import IN_OUT, Daemon, DashboardData, Stat, host_graph, interface_key
from mepd.web.graphs import FORMATS, PERIOD_NAMES, SIZES, TREND, GraphCache, GraphSpec, Size
from mepd.web.pages import Ctx, crossing_text, si
from mepd.web.report import ReportBuilder

NAME: Final = re.compile(r"[A-Za-z0-9_.-]+")
GRAPH_NAMES: Final = (*PERIOD_NAMES, "mini")
LOG_LIMIT: Final = 200
TIMELINE_PERIOD: Final[Period] = "day"  # the interface page's table, as `mepctl timeline`'s default


class NotFound(Exception):  # noqa: N818 - reads as what the server answers
    """The page or graph asked for does not exist (unknown target, interface, source, incident)."""


@dataclass(frozen=True, slots=True)
class LogsResult:
    records: list[dict[str, object]]
    error: str | None
    truncated: bool
    status: int = 200  # the page's: 400 for filters that do not parse, 503 for a query over its time or size


class Dashboard:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.data = DashboardData(daemon)
        self.reports = ReportBuilder(self.data)
        self.graphs = GraphCache(daemon.rrdstore)
        self.secret = os.urandom(32)

    @property
    def site(self) -> str:
        return self.daemon.cfg.http.title

    def ctx(self, root: str = "", *, static: bool = False, csrf: str = "") -> Ctx:
        return Ctx(root, static, csrf, self.site)

    # -- CSRF ------------------------------------------------------------------------------------------------

    def form_token(self, nonce: str) -> str:
        """The token forms carry: an HMAC of the browser's cookie nonce, so a page of another site cannot forge it."""
        return hmac.new(self.secret, b"csrf:" + nonce.encode(), "sha256").hexdigest()

    def valid_form_token(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token:
            return False
        return hmac.compare_digest(self.form_token(nonce), token)

    # -- pages -----------------------------------------------------------------------------------------------

    async def overview(self, ctx: Ctx) -> str:
        return pages.overview(ctx, await self.data.overview(), time.time())

    async def interface(self, ctx: Ctx, target: str, name: str) -> str:
        if not (NAME.fullmatch(target) and NAME.fullmatch(name)):
            raise NotFound(f"no interface {name!r} on {target!r}")
        try:
            view = await self.data.interface(target, name)
            stats: dict[str, tuple[Stat, Stat]] = {}
            for period in PERIOD_NAMES:
                stats[period] = (await self.data.stats(f"{view.key}.{IN_OUT[0]}", period),
                                 await self.data.stats(f"{view.key}.{IN_OUT[1]}", period))
        except RrdError:
            raise NotFound(f"no traffic data for interface {name!r} of {target!r}") from None
        now = time.time()
        forecasts = await self.reports.interface_forecasts(view.key, view.speed_bps, now)
        events = await self.data.timeline(target, name, now - PERIODS[TIMELINE_PERIOD], now)
        return pages.interface(ctx, view, stats, self.data.step_of(target), forecasts, events)

    async def target_timeline(self, ctx: Ctx, target: str) -> str:
        """An SNMP target's whole timeline over the last day: the interface page's table, for every interface."""
        now = time.time()
        events = await self.data.timeline(target, None, now - PERIODS[TIMELINE_PERIOD], now) if NAME.fullmatch(
            target) else None
        if events is None:
            raise NotFound(f"no SNMP target {target!r}")
        return pages.target_timeline(ctx, target, events, self.data.step_of(target))

    async def web_source(self, ctx: Ctx, name: str) -> str:
        if not NAME.fullmatch(name):
            raise NotFound(f"no web source {name!r}")
        report = await self.data.web_report(name)
        if report is None and name not in self.data.web_source_names():
            raise NotFound(f"no web source {name!r}")
        key = f"weblog.{name}.requests"
        graph = key if key in await self.daemon.rrdstore.list_keys() else None
        html = await asyncio.to_thread(render_html, report) if report is not None else None
        step = next((t.step for t in self.daemon.cfg.tail if t.name == name), 300.0)
        return pages.web_source(ctx, name, html, graph, step)

    async def logs_result(self, params: Mapping[str, str], default_limit: int = LOG_LIMIT) -> LogsResult:
        try:
            q = log_query(params, time.time(), default_limit)
        except ValueError as e:
            return LogsResult([], str(e), False, 400)
        try:
            records = await self.daemon.logstore.query(q)
        except QueryLimitError as e:
            return LogsResult([], str(e), False, 503)
        return LogsResult(records, None, q.limit > 0 and len(records) >= q.limit)

    async def logs(self, ctx: Ctx, params: Mapping[str, str], result: LogsResult | None = None) -> str:
        """The page for `params`, or for the `result` already found for them."""
        result = result or await self.logs_result(params)
        fleet = self.daemon.cfg.fleet
        return pages.logs(ctx, params, result.records, result.error, result.truncated,
                          fleet is not None and fleet.central.enabled)

    async def incidents(self, ctx: Ctx) -> str:
        open_ = await self.data.incidents()
        recent = await self.data.incidents(include_resolved=True, limit=200) or []
        try:
            silences = [s.to_json() for s in self.daemon.alerts.silences()]
        except NotRunningError:  # the page says so, through `open_ is None`
            silences = []
        return pages.incidents(ctx, open_, recent, silences, time.time())

    async def incident(self, ctx: Ctx, iid: int, message: str = "") -> str:
        try:
            inc, history = await self.daemon.alerts.show(iid)
        except NotFoundError as e:
            raise NotFound(str(e)) from None
        return pages.incident(ctx, inc, history, time.time(), message)

    async def check_graph_keys(self) -> list[str]:
        """The Checks page's graphs: each check's main metric that has an RRD."""
        stored = set(await self.daemon.rrdstore.list_keys())
        return [key for c in self.daemon.cfg.checks if (key := f"check.{c.name}.{checks_page.MAIN_METRIC[c.kind]}")
                in stored]

    async def checks(self, ctx: Ctx) -> str:
        states = check_states(await self.daemon.status())
        refresh = min((c.interval for c in self.daemon.cfg.checks), default=self.daemon.cfg.storage.rrd.step)
        return checks_page.page(ctx, states, set(await self.check_graph_keys()), time.time(), refresh)

    async def intake(self, ctx: Ctx) -> str:
        store = self.daemon.rrdstore
        return logintake.page(ctx, await self.intake_graph_keys(), store.latest, self.daemon.cfg.logs.step)

    async def intake_graph_keys(self) -> list[str]:
        """The Log intake page's graphs: every log-derived key with an RRD."""
        return [k for k in await self.daemon.rrdstore.list_keys() if k.startswith(logintake.PREFIX)]

    # -- graphs ----------------------------------------------------------------------------------------------

    def graph_spec(self, key: str, name: str, fmt: str) -> GraphSpec:
        """`snmp.T.I` or `host.H.net.I` (an interface: in and out together), a host group (`host.H.cpu`,
        `host.H.fs.root`: see data.HOST_GRAPHS) or any metric key; `name` a period or "mini"."""
        if not KEY.fullmatch(key) or name not in GRAPH_NAMES or fmt not in FORMATS:
            raise NotFound(f"no graph {key}/{name}.{fmt}")
        keys: tuple[str, ...] = (key,)
        title = key
        if (iface := interface_key(key)) is not None:
            keys = tuple(f"{key}.{n}" for n in IN_OUT)
            title = f"{iface[0]} {iface[1]}"
        elif (drawn := host_graph(key)) is not None:
            keys = drawn
            title = " ".join(key.split(".")[1:])
        period: Period = "day" if name == "mini" else name  # type: ignore[assignment]
        size: Size = "mini" if name == "mini" else "full"
        return GraphSpec(keys, period, fmt, size, f"{title}: last {period}")

    async def graph(self, key: str, name: str, fmt: str) -> bytes:
        """The graph; an SNMP interface's full-size graphs with its timeline's events marked."""
        if name == TREND:
            return await self.trend_graph(key, fmt)
        spec = self.graph_spec(key, name, fmt)
        if spec.size == "full" and key.startswith("snmp.") and (iface := interface_key(key)) is not None:
            spec = replace(spec, marks=await self.data.marks(*iface, spec.period))
        try:
            return await self.graphs.get(spec)
        except RrdError as e:
            raise NotFound(str(e)) from None

    async def trend_graph(self, key: str, fmt: str) -> bytes:
        """An interface's forecast graph (`graph/KEY/trend.png`, on its page with the forecast): in and out over
        `[report] forecast_window`, each one's least-squares line drawn on ahead (`graph_end`), 80 % of the
        speed as a rule, and the crossings the page tells.  Drawn at each request: it moves with the clock."""
        iface = interface_key(key) if KEY.fullmatch(key) else None
        if iface is None or fmt not in FORMATS:
            raise NotFound(f"no graph {key}/{TREND}.{fmt}")
        now = time.time()
        window = self.daemon.cfg.report.forecast_window
        try:
            view = await self.data.interface(*iface)
            forecasts = await self.reports.interface_forecasts(view.key, view.speed_bps, now)
            if not forecasts:
                raise NotFound(f"no forecast for {key}: no speed known or no traffic stored")
            lines = [(now, f.now_value, f.slope_per_day / 86400)
                     if f.now_value is not None and f.slope_per_day is not None else None for f in forecasts]
            threshold = forecasts[0].threshold
            capacity = (threshold, f"{si(threshold, 'b/s')}: {INTERFACE_SHARE:.0%} of the speed")
            image_fmt: ImageFormat = "svg" if fmt == "svg" else "png"
            return await self.daemon.rrdstore.trend_graph(
                [f.key for f in forecasts], lines, now - window, graph_end(forecasts, now, window), capacity,
                [(f.crossing, crossing_text(f)) for f in forecasts], image_fmt,
                f"{iface[0]} {iface[1]}: trend and forecast", SIZES["full"])
        except RrdError as e:
            raise NotFound(str(e)) from None

    async def interface_list(self) -> dict[str, list[str]]:
        return await self.data.interface_keys()

    async def host_graph_keys(self) -> list[str]:
        return [g.key for graphs in (await self.data.host_graphs()).values() for g in graphs]

    async def web_graph_keys(self) -> list[str]:
        keys = await self.daemon.rrdstore.list_keys()
        return [k for k in keys if k.startswith("weblog.") and k.endswith(".requests")]
