"""The control API's view of the fleet on a central: the nodes' incidents (`mepctl incidents --node`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from mepd.config import Config
from mepd.fleet import incidents


def routes(config: Callable[[], Config]) -> list[web.RouteDef]:
    async def fleet_incidents(request: web.Request) -> web.Response:
        limit = request.query.get("limit", "1000")
        if not limit.isdigit():
            raise web.HTTPBadRequest(text=f"limit: expected a number, got {limit!r}")
        found = await asyncio.to_thread(incidents.query, config().daemon.state_dir, request.query.get("node", "*"),
                                        request.query.get("all") == "1", int(limit))
        return web.json_response({"incidents": found})

    return [web.get("/v1/fleet/incidents", fleet_incidents)]
