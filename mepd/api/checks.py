"""Control API route of the checks (`[[check]]`): `GET /v1/checks`, what `mepctl checks` calls.

A check's state is its component's `details()` (mepd.sources.host.checks), read
from the daemon's status, so the API, the dashboard and `mepctl status` never
disagree; a check whose component failed (a bug, not a failed check) says so.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from mepd.api.protocol import DaemonStatus

PREFIX = "check/"


class Daemon(Protocol):
    async def status(self) -> DaemonStatus: ...


def check_states(status: DaemonStatus) -> list[dict[str, object]]:
    """Each check's state, values and message, by name."""
    out = []
    for comp in status.components:
        if not comp.name.startswith(PREFIX):
            continue
        name = comp.name.removeprefix(PREFIX)
        state = dict(comp.details or {"name": name, "state": "starting", "message": "", "values": {}})
        if str(comp.state) in ("backoff", "fatal"):
            state["state"], state["message"] = "error", f"the check itself failed: {comp.last_error}"
        out.append(state)
    return sorted(out, key=lambda s: str(s["name"]))


def routes(daemon: Daemon) -> list[web.RouteDef]:
    async def list_checks(_request: web.Request) -> web.Response:
        return web.json_response({"checks": check_states(await daemon.status())})

    return [web.get("/v1/checks", list_checks)]
