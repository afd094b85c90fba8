"""Web-log routes of the control API: reports from the stored hourly aggregates.

`GET /v1/weblog` lists the web sources with stored hours;
`GET /v1/weblog/{name}?since=T&until=T&top=N` is the report of one source
(JSON; mepctl renders it as text or one HTML page).  Days and hours of day
are in the daemon's local time zone.
"""

from __future__ import annotations

import time

from aiohttp import web

from mepd.analysis.weblog.report import DEFAULT_TOP
from mepd.store.weblog import UnknownWebSourceError, WebLogStore
from mepd.units import parse_time


async def report(store: WebLogStore, name: str, since: float | None = None, until: float | None = None,
                 top: int = DEFAULT_TOP) -> dict[str, object]:
    """The report of web source `name` over [since, until); UnknownWebSourceError if it has no data."""
    return await store.report(name, since, until, top)


class WebLogApi:
    def __init__(self, store: WebLogStore) -> None:
        self.store = store

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/v1/weblog", self.list_sources), web.get("/v1/weblog/{name}", self.get_report)]

    async def list_sources(self, _request: web.Request) -> web.Response:
        return web.json_response({"sources": await self.store.sources()})

    async def get_report(self, request: web.Request) -> web.Response:
        now = time.time()
        q = request.query
        since = parse_time(q["since"], now) if q.get("since") else None
        until = parse_time(q["until"], now) if q.get("until") else None
        top_text = q.get("top") or str(DEFAULT_TOP)
        if not top_text.isdigit() or int(top_text) < 1:
            raise web.HTTPBadRequest(text=f"top: expected a number of rows, got {top_text!r}")
        try:
            data = await report(self.store, request.match_info["name"], since, until, int(top_text))
        except UnknownWebSourceError as e:
            raise web.HTTPNotFound(text=str(e)) from None
        return web.json_response(data)
