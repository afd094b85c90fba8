"""Metric routes of the control API: keys with their latest value, points from the RRDs, graphs.

`GET /v1/metrics[?prefix=P]`, `GET /v1/metrics/{key}?since=1h[&until=T][&cf=AVERAGE|MAX]`,
`GET /v1/graph?key=K[&key=K2][&period=day|week|month|year][&format=png|svg]`.
A key's latest value is the newest sample written since the daemon started,
else the last one its file holds.  A graph of an interface (`snmp.sw1.eth0`,
or either of its bps keys) draws in and out together, MRTG-style.
"""

from __future__ import annotations

import time
from typing import Final, get_args

from aiohttp import web

from mepd.model import rfc3339
from mepd.store.rrd.store import ImageFormat, Period, RrdError, RrdStore
from mepd.units import parse_time

CONTENT_TYPES: Final = {"png": "image/png", "svg": "image/svg+xml"}
PAIR: Final = ("in_bps", "out_bps")


def graph_keys(requested: list[str], known: set[str]) -> list[str]:
    """An interface prefix or one of its bps keys -> its in and out keys; other keys as given."""
    out: list[str] = []
    for key in requested:
        base, _, last = key.rpartition(".")
        prefix = base if last in PAIR else key
        pair = [f"{prefix}.{name}" for name in PAIR]
        out += pair if all(k in known for k in pair) else [key]
    return list(dict.fromkeys(out))


class MetricsApi:
    def __init__(self, store: RrdStore) -> None:
        self.store = store

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/metrics", self.list_metrics),
            web.get("/v1/metrics/{key}", self.show),
            web.get("/v1/graph", self.graph),
        ]

    async def list_metrics(self, request: web.Request) -> web.Response:
        prefix = request.query.get("prefix", "")
        keys = [k for k in await self.store.list_keys() if k.startswith(prefix)]
        latest = self.store.latest
        found = {k: s for k in keys if (s := latest.get(k)) is not None}
        if len(found) < len(keys):
            found.update(await self.store.last_values([k for k in keys if k not in found]))
        rows = [{"key": k, "ts": rfc3339(s.ts) if s is not None else None, "value": s.value if s is not None else None}
                for k in keys for s in (found.get(k),)]
        return web.json_response({"metrics": rows})

    async def show(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        now = time.time()
        since = parse_time(request.query.get("since") or "1h", now)
        until = parse_time(request.query["until"], now) if request.query.get("until") else now
        cf = request.query.get("cf", "AVERAGE").upper()
        if cf not in ("AVERAGE", "MAX"):
            raise web.HTTPBadRequest(text=f"cf: expected AVERAGE or MAX, got {cf!r}")
        try:
            data = await self.store.fetch(key, since, until, cf)
        except RrdError as e:
            raise web.HTTPNotFound(text=str(e)) from None
        points = data.pop("points")
        assert isinstance(points, list)
        data["points"] = [{"ts": rfc3339(ts), "value": v} for ts, v in points]
        return web.json_response(data)

    async def graph(self, request: web.Request) -> web.Response:
        requested = request.query.getall("key", [])
        period, fmt = request.query.get("period", "day"), request.query.get("format", "png")
        if not requested:
            raise web.HTTPBadRequest(text="key: give at least one metric key")
        if period not in get_args(Period):
            raise web.HTTPBadRequest(text=f"period: expected day, week, month or year, got {period!r}")
        if fmt not in get_args(ImageFormat):
            raise web.HTTPBadRequest(text=f"format: expected png or svg, got {fmt!r}")
        keys = graph_keys(requested, set(await self.store.list_keys()))
        try:
            image = await self.store.graph(keys, period, fmt)  # type: ignore[arg-type]
        except RrdError as e:
            raise web.HTTPNotFound(text=str(e)) from None
        return web.Response(body=image, content_type=CONTENT_TYPES[fmt])
