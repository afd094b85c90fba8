"""Static export: the dashboard as HTML and PNG files for any web server, like MRTG's WorkDir.

The files have the live server's paths (index.html, if/T/I.html, timeline/T.html, graph/KEY/day.png...)
and relative links only, so the folder can be served under any URL or opened
from disk.  Forms and the live tail are left out.  Each file is written to a
temporary name and renamed, so a web server never sends half a page; graphs
come from the same cache as the live server's.

`mepctl dashboard export DIR` asks the daemon over the control socket
(`POST /v1/dashboard/export`); `[http] export_dir` repeats it every
`export_interval`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from mepd.config import HttpConfig
from mepd.pipeline import Counters
from mepd.web.assets import CSS
from mepd.web.dashboard import GRAPH_NAMES, LOG_LIMIT, Dashboard, NotFound
from mepd.web.graphs import PERIOD_NAMES, TREND

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ExportResult:
    dir: str
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {"dir": self.dir, "files": self.files, "bytes": self.bytes, "seconds": round(self.seconds, 3)}


def _write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


class Exporter:
    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard

    async def _timelines(self, put: Callable[[str, str], Awaitable[None]]) -> None:
        """Each SNMP target's timeline page."""
        for t in self.dashboard.daemon.cfg.snmp.target:
            await put(f"timeline/{t.name}.html", await self.dashboard.target_timeline(self.dashboard.ctx(
                "../", static=True), t.name))

    async def export(self, folder: str) -> ExportResult:
        """Write every page and graph under `folder` (absolute; created if needed); returns what was written."""
        began = time.monotonic()
        result = ExportResult(folder)
        d = self.dashboard

        async def put(rel: str, data: str | bytes) -> None:
            raw = data.encode() if isinstance(data, str) else data
            await asyncio.to_thread(_write, os.path.join(result.dir, rel), raw)
            result.files += 1
            result.bytes += len(raw)

        top = d.ctx("", static=True)
        await put("static/mepd.css", CSS)
        await put("index.html", await d.overview(top))
        for target, names in (await d.interface_list()).items():
            for name in names:
                key = d.data.interface_prefix(target, name)
                try:
                    page = await d.interface(d.ctx("../../", static=True), target, name)
                    for graph in GRAPH_NAMES:
                        await put(f"graph/{key}/{graph}.png", await d.graph(key, graph, "png"))
                except NotFound as e:
                    log.warning("export: skipping %s %s: %s", target, name, e)
                    continue
                with contextlib.suppress(NotFound):  # no forecast (no speed known): the page shows no trend
                    await put(f"graph/{key}/{TREND}.png", await d.graph(key, TREND, "png"))
                await put(f"if/{target}/{name}.html", page)
        await self._timelines(put)
        for key in await d.host_graph_keys():
            for graph in GRAPH_NAMES:
                await put(f"graph/{key}/{graph}.png", await d.graph(key, graph, "png"))
        for key in await d.web_graph_keys():
            for period in PERIOD_NAMES:
                await put(f"graph/{key}/{period}.png", await d.graph(key, period, "png"))
        stored = await d.daemon.weblogstore.sources() if d.daemon.weblogstore is not None else []
        for name in d.data.web_source_names(str(s["name"]) for s in stored):
            await put(f"web/{name}.html", await d.web_source(d.ctx("../", static=True), name))
        await put("checks.html", await d.checks(top))
        await put("intake.html", await d.intake(top))
        for key in [*await d.check_graph_keys(), *await d.intake_graph_keys()]:
            for graph in ("mini", "day"):
                await put(f"graph/{key}/{graph}.png", await d.graph(key, graph, "png"))
        await put("incidents.html", await d.incidents(top))
        for inc in await d.data.incidents(include_resolved=True, limit=200) or []:
            await put(f"incident/{inc.id}.html", await d.incident(d.ctx("../", static=True), inc.id))
        await put("logs.html", await d.logs(top, {"limit": str(LOG_LIMIT)}))
        result.seconds = time.monotonic() - began
        return result


class PeriodicExport:
    """The component behind `[http] export_dir`: an export every `export_interval`."""

    def __init__(self, cfg: HttpConfig, exporter: Exporter) -> None:
        self.name = "http/export"
        self.cfg = cfg
        self.exporter = exporter
        self.counters = Counters()

    async def run(self, started: Callable[[], None]) -> None:
        started()
        while True:
            result = await self.exporter.export(self.cfg.export_dir)
            self.counters.inc("exports")
            self.counters.inc("files", result.files)
            log.debug("exported %d files to %s in %.1fs", result.files, result.dir, result.seconds)
            await asyncio.sleep(self.cfg.export_interval)


def create_periodic(cfg: HttpConfig, exporter: Exporter) -> PeriodicExport:
    return PeriodicExport(cfg, exporter)


def api_routes(exporter: Exporter) -> list[web.RouteDef]:
    """`POST /v1/dashboard/export {"dir": ABSOLUTE_PATH}` on the control socket."""

    async def export(request: web.Request) -> web.Response:
        data = await request.json() if request.can_read_body else {}
        folder = data.get("dir") if isinstance(data, dict) else None
        if not isinstance(folder, str) or not os.path.isabs(folder):
            raise web.HTTPBadRequest(text="dir: expected an absolute path")
        try:
            result = await exporter.export(folder)
        except OSError as e:
            raise web.HTTPInternalServerError(text=f"cannot write {folder}: {e.strerror or e}") from None
        return web.json_response(result.to_json())

    return [web.post("/v1/dashboard/export", export)]
