"""Routes of the control API: HTTP+JSON on a Unix socket, versioned under /v1/.

The socket is the access control: it is created mode 0660 so that root and
the mepd group may query, nobody else.  Every response carries the API
version in a header, which mepctl checks before trusting the body.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import socket
import stat
import time
from collections.abc import Awaitable, Callable
from typing import Final, Protocol

from aiohttp import web

from mepd.api.protocol import API_HEADER, API_VERSION, DaemonStatus, log_query
from mepd.errors import AlreadyRunningError
from mepd.model import LogQuery
from mepd.store.logs.store import LogStore, QueryLimitError

log = logging.getLogger(__name__)

SOCKET_MODE: Final = 0o660


class Daemon(Protocol):
    """What the API needs of the running daemon."""

    logstore: LogStore

    async def status(self) -> DaemonStatus: ...

    async def reload(self) -> tuple[list[str], list[str]]: ...


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error is JSON with a sentence in it; the version header is on every answer."""
    try:
        response = await handler(request)
    except web.HTTPException as e:
        response = web.json_response({"error": e.text or e.reason}, status=e.status)
    except ValueError as e:
        response = web.json_response({"error": str(e)}, status=400)
    except QueryLimitError as e:  # valid, but too costly to answer now: as Prometheus answers a query time-out
        response = web.json_response({"error": str(e)}, status=503)
    if not response.prepared:
        response.headers[API_HEADER] = str(API_VERSION)
    return response


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=message)


class ApiServer:
    def __init__(self, daemon: Daemon, path: str) -> None:
        self.daemon = daemon
        self.path = path
        self.app = web.Application(middlewares=[_errors])
        self.app.add_routes([
            web.get("/v1/status", self.get_status),
            web.get("/v1/logs", self.get_logs),
            web.post("/v1/reload", self.post_reload),
        ])
        self.runner: web.AppRunner | None = None
        self.closing = asyncio.Event()

    def add_routes(self, routes: list[web.RouteDef]) -> None:
        """Let other parts (metrics, incidents...) publish their routes before `start`."""
        self.app.add_routes(routes)

    async def start(self) -> None:
        sock = bind_control_socket(self.path)
        self.runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
        await self.runner.setup()
        await web.SockSite(self.runner, sock).start()
        log.info("control socket at %s", self.path)

    async def stop(self) -> None:
        self.closing.set()
        await self.daemon.logstore.wake_followers()  # followers see `closing` and end their streams
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    async def get_status(self, _request: web.Request) -> web.Response:
        return web.json_response((await self.daemon.status()).to_json())

    async def post_reload(self, _request: web.Request) -> web.Response:
        errors, warnings = await self.daemon.reload()
        if errors:
            return web.json_response({"error": "the new config is invalid; the old one keeps running",
                                      "errors": errors}, status=422)
        return web.json_response({"ok": True, "warnings": warnings})

    async def get_logs(self, request: web.Request) -> web.StreamResponse:
        try:
            q = log_query(request.query, time.time())
        except ValueError as e:
            raise _bad_request(str(e)) from None
        store = self.daemon.logstore
        if request.query.get("follow") not in ("1", "true"):
            records = await store.query(q)
            return web.json_response({"records": records, "truncated": q.limit > 0 and len(records) >= q.limit})
        return await self._follow(request, store, q)

    async def _follow(self, request: web.Request, store: LogStore, q: LogQuery) -> web.StreamResponse:
        """NDJSON: the latest matching records, then each new one as it is committed."""
        last_id = store.last_id
        latest = await store.query(dataclasses.replace(q, max_id=last_id))  # before the 200: it may fail
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson", API_HEADER: str(API_VERSION)})
        await response.prepare(request)
        await _write_lines(response, latest)
        async with contextlib.aclosing(store.follow(q, last_id, self.closing)) as batches:
            async for records in batches:
                await _write_lines(response, records)
        return response


async def _write_lines(response: web.StreamResponse, records: list[dict[str, object]]) -> None:
    if records:
        await response.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode())


def bind_control_socket(path: str) -> socket.socket:
    """Bind the control socket 0660, replacing a stale one; a live one means another daemon."""
    os.makedirs(os.path.dirname(path) or ".", mode=0o750, exist_ok=True)
    if os.path.lexists(path):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise AlreadyRunningError(f"{path} exists and is not a socket; remove it or set daemon.control_socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            log.info("removing stale control socket %s", path)
            os.unlink(path)
        else:
            raise AlreadyRunningError(f"another mepd is running (its control socket {path} answers)")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, SOCKET_MODE)
    except OSError:
        sock.close()
        raise
    return sock
