"""Control API routes for incidents and silences: what `mepctl incidents/ack/resolve/silence` call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from mepd.alerts.engine import AlertEngine, NotFoundError, NotRunningError, StateError
from mepd.units import parse_duration

Handler = Callable[[web.Request], Awaitable[web.Response]]


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name) in ("1", "true", "yes")


def _int(text: str, what: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{what}: expected a number, got {text!r}")
    return int(text)


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    data = await request.json()
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return data


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise web.HTTPBadRequest(text=f"{key}: expected a string")
    return value


def _errors(handler: Handler) -> Handler:
    """The engine's errors as HTTP statuses; the server's middleware makes them JSON sentences."""
    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except NotFoundError as e:
            raise web.HTTPNotFound(text=str(e)) from None
        except StateError as e:
            raise web.HTTPConflict(text=str(e)) from None
        except NotRunningError as e:
            raise web.HTTPServiceUnavailable(text=str(e)) from None

    return wrapped


def routes(engine: AlertEngine) -> list[web.RouteDef]:
    async def list_incidents(request: web.Request) -> web.Response:
        limit = _int(request.query.get("limit", "1000"), "limit")
        found = await engine.list_incidents(include_resolved=_flag(request, "all"), limit=limit)
        return web.json_response({"incidents": [i.to_json() for i in found]})

    async def show(request: web.Request) -> web.Response:
        inc, history = await engine.show(_int(request.match_info["id"], "incident id"))
        return web.json_response({"incident": inc.to_json(), "history": history})

    async def actions(_: web.Request) -> web.Response:
        return web.json_response({"actions": await engine.action_stats()})

    async def ack(request: web.Request) -> web.Response:
        comment = _str(await _body(request), "comment")
        inc = await engine.acknowledge(_int(request.match_info["id"], "incident id"), comment)
        return web.json_response({"incident": inc.to_json()})

    async def resolve(request: web.Request) -> web.Response:
        comment = _str(await _body(request), "comment")
        inc = await engine.resolve(_int(request.match_info["id"], "incident id"), comment)
        return web.json_response({"incident": inc.to_json()})

    async def list_silences(request: web.Request) -> web.Response:
        found = engine.silences(include_expired=_flag(request, "all"))
        return web.json_response({"silences": [s.to_json() for s in found]})

    async def add_silence(request: web.Request) -> web.Response:
        data = await _body(request)
        duration = parse_duration(_str(data, "for") or "2h")
        silence = await engine.silence(_str(data, "matchers"), duration, _str(data, "comment"))
        return web.json_response({"silence": silence.to_json()}, status=201)

    async def expire_silence(request: web.Request) -> web.Response:
        silence = await engine.unsilence(_int(request.match_info["id"], "silence id"))
        return web.json_response({"silence": silence.to_json()})

    return [
        web.get("/v1/incidents", _errors(list_incidents)),
        web.get("/v1/incidents/{id}", _errors(show)),
        web.post("/v1/incidents/{id}/ack", _errors(ack)),
        web.get("/v1/actions", _errors(actions)),
        web.post("/v1/incidents/{id}/resolve", _errors(resolve)),
        web.get("/v1/silences", _errors(list_silences)),
        web.post("/v1/silences", _errors(add_silence)),
        web.delete("/v1/silences/{id}", _errors(expire_silence)),
    ]
