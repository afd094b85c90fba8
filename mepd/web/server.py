"""The dashboard's HTTP server: a component of the daemon on `[http] listen`.

Security, in the order requests meet it:
- bound to 127.0.0.1 by default; optional TLS (`tls_cert`, `tls_key`);
- optional HTTP basic auth (`basic_auth_file`, lines of `user:password`) and/or a
  bearer token (`token_file`); with either set, every request needs one;
- state-changing requests are POST forms carrying a token that is an HMAC of a
  random cookie (SameSite=Strict, HttpOnly) under a per-process secret; a POST
  without it, or from another origin, is refused with 403;
- a Content-Security-Policy that allows only this server's own scripts.

`GET /metrics` is Prometheus' scrape of the same daemon (mepd.web.prometheus), behind
the same authentication: Prometheus sends basic auth or a bearer token as configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import re
import secrets
import ssl
import time
from base64 import b64decode
from binascii import Error as Base64Error
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from aiohttp import web

from mepd.alerts.engine import NotFoundError, NotRunningError, StateError
from mepd.api.protocol import FOLLOW_FILTERS, LOG_FILTERS, log_params, log_query
from mepd.config import HttpConfig, split_address
from mepd.pipeline import Counters
from mepd.units import parse_duration
from mepd.web import pages, prometheus
from mepd.web.assets import STATIC
from mepd.web.dashboard import Dashboard, NotFound
from mepd.web.graphs import CONTENT_TYPES
from mepd.web.pages import Ctx

log = logging.getLogger(__name__)

COOKIE: Final = "mepd_csrf"
NONCE: Final = re.compile(r"[A-Za-z0-9_-]{16,64}")
KEEPALIVE: Final = 15.0
STATUS_INTERVAL: Final = 10.0
CSP: Final = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
              "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Access:
    """Who may read the dashboard: nobody is asked when neither users nor tokens are configured."""

    users: dict[str, str]
    tokens: tuple[str, ...]

    @property
    def required(self) -> bool:
        return bool(self.users or self.tokens)

    @classmethod
    def from_config(cls, cfg: HttpConfig) -> Access:
        users: dict[str, str] = {}
        if cfg.basic_auth_file:
            with open(cfg.basic_auth_file, encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    text = line.strip()
                    if not text or text.startswith("#"):
                        continue
                    user, sep, password = text.partition(":")
                    if not sep or not user or not password:
                        raise ValueError(f"{cfg.basic_auth_file}:{n}: expected user:password")
                    users[user] = password
            if not users:
                raise ValueError(f"{cfg.basic_auth_file}: no user:password line")
        tokens: tuple[str, ...] = ()
        if cfg.token_file:
            with open(cfg.token_file, encoding="utf-8") as fh:
                token = fh.read().strip()
            if len(token) < 16:
                raise ValueError(f"{cfg.token_file}: the token must be at least 16 characters")
            tokens = (token,)
        return cls(users, tokens)

    def allows(self, header: str | None) -> bool:
        if not self.required:
            return True
        scheme, _, value = (header or "").partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            return any(hmac.compare_digest(value.encode(), t.encode()) for t in self.tokens)
        if scheme.lower() == "basic" and self.users:
            try:
                user, _, password = b64decode(value, validate=True).decode("utf-8").partition(":")
            except (Base64Error, UnicodeDecodeError):
                return False
            expected = self.users.get(user, "")
            return hmac.compare_digest(password.encode(), expected.encode()) and bool(expected)
        return False

    def challenge(self) -> str:
        return 'Basic realm="mepd", charset="UTF-8"' if self.users else 'Bearer realm="mepd"'


def tls_context(cfg: HttpConfig) -> ssl.SSLContext | None:
    if not cfg.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cfg.tls_cert, cfg.tls_key)
    return ctx


class Site:
    """The aiohttp application: routes, auth, CSRF and security headers around a Dashboard."""

    def __init__(self, dashboard: Dashboard, access: Access, *, secure: bool = False) -> None:
        self.dashboard = dashboard
        self.access = access
        self.secure = secure
        self.closing = asyncio.Event()
        self.app = web.Application(middlewares=[self._headers, self._auth, self._errors])
        self.app.add_routes([
            web.get("/", self.overview),
            web.get("/index.html", self.overview),
            web.get("/if/{target}/{name}.html", self.interface),
            web.get("/web/{name}.html", self.web_source),
            web.get("/logs.html", self.logs),
            web.get("/logs/stream", self.stream),
            web.get("/incidents.html", self.incidents),
            web.get("/checks.html", self.checks),
            web.get("/incident/{id:[0-9]+}.html", self.incident),
            web.post("/incident/{id:[0-9]+}/{verb:ack|resolve|silence}", self.incident_action),
            web.get("/graph/{key}/{name}.{fmt:png|svg}", self.graph),
            web.get("/static/{file}", self.static),
            web.get("/metrics", self.metrics),
        ])
        self.app.on_shutdown.append(self._on_shutdown)

    async def _on_shutdown(self, _app: web.Application) -> None:
        self.closing.set()

    # -- middlewares -----------------------------------------------------------------------------------------

    @web.middleware
    async def _headers(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as e:
            response = e
        if not response.prepared:
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "same-origin")
            response.headers.setdefault("X-Frame-Options", "DENY")
        if isinstance(response, web.HTTPException):
            raise response
        return response

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self.access.allows(request.headers.get("Authorization")):
            raise web.HTTPUnauthorized(text="authentication required\n",
                                       headers={"WWW-Authenticate": self.access.challenge()})
        return await handler(request)

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except NotFound as e:
            return self._error(request, 404, str(e))
        except NotRunningError as e:
            return self._error(request, 503, str(e))

    def _error(self, request: web.Request, status: int, message: str) -> web.Response:
        ctx = self.dashboard.ctx(self._root(request))
        return web.Response(text=pages.error_page(ctx, status, message), status=status, content_type="text/html")

    @staticmethod
    def _root(request: web.Request) -> str:
        """The way back to the top from this URL: one `../` per folder below it."""
        return "../" * request.path.count("/", 1)

    # -- pages -----------------------------------------------------------------------------------------------

    async def _page(self, request: web.Request, render: Callable[[Ctx], Awaitable[str]], status: int = 200
                    ) -> web.Response:
        cookie = request.cookies.get(COOKIE, "")
        nonce = cookie if NONCE.fullmatch(cookie) else secrets.token_urlsafe(24)
        ctx = self.dashboard.ctx(self._root(request), csrf=self.dashboard.form_token(nonce))
        response = web.Response(text=await render(ctx), status=status, content_type="text/html")
        response.headers["Cache-Control"] = "no-store"
        if nonce != cookie:
            response.set_cookie(COOKIE, nonce, path="/", httponly=True, samesite="Strict", secure=self.secure)
        return response

    async def overview(self, request: web.Request) -> web.Response:
        return await self._page(request, self.dashboard.overview)

    async def interface(self, request: web.Request) -> web.Response:
        target, name = request.match_info["target"], request.match_info["name"]
        return await self._page(request, lambda ctx: self.dashboard.interface(ctx, target, name))

    async def web_source(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        return await self._page(request, lambda ctx: self.dashboard.web_source(ctx, name))

    async def logs(self, request: web.Request) -> web.Response:
        params = {k: v for k, v in request.query.items() if k in LOG_FILTERS}
        return await self._page(request, lambda ctx: self.dashboard.logs(ctx, params))

    async def incidents(self, request: web.Request) -> web.Response:
        return await self._page(request, self.dashboard.incidents)

    async def checks(self, request: web.Request) -> web.Response:
        return await self._page(request, self.dashboard.checks)

    async def incident(self, request: web.Request) -> web.Response:
        iid = int(request.match_info["id"])
        return await self._page(request, lambda ctx: self.dashboard.incident(ctx, iid))

    # -- actions ---------------------------------------------------------------------------------------------

    def _same_origin(self, request: web.Request) -> bool:
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            return False
        origin = request.headers.get("Origin")
        if origin is None or origin == "null":
            return origin is None
        hosts = {request.host, request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()}
        return urlsplit(origin).netloc in hosts

    async def incident_action(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        token = form.get("csrf")
        if not self._same_origin(request) or not self.dashboard.valid_form_token(
                request.cookies.get(COOKIE), token if isinstance(token, str) else None):
            raise web.HTTPForbidden(text="refused: the form token is missing or wrong (reload the page and retry)\n")
        iid, verb = int(request.match_info["id"]), request.match_info["verb"]
        comment = str(form.get("comment") or "")
        engine = self.dashboard.daemon.alerts
        try:
            if verb == "ack":
                await engine.acknowledge(iid, comment)
            elif verb == "resolve":
                await engine.resolve(iid, comment)
            else:
                duration = parse_duration(str(form.get("for") or "2h"))  # the engine caps it
                await engine.silence(str(form.get("matchers") or ""), duration, comment)
        except NotFoundError as e:
            raise NotFound(str(e)) from None
        except (StateError, ValueError) as e:
            status, message = (409 if isinstance(e, StateError) else 400), str(e)
            return await self._page(request, lambda ctx: self.dashboard.incident(ctx, iid, message), status)
        log.info("dashboard: incident %d: %s by %s", iid, verb, request.remote)
        raise web.HTTPSeeOther(f"../{iid}.html")

    # -- graphs, static files, live tail ---------------------------------------------------------------------

    async def graph(self, request: web.Request) -> web.Response:
        fmt = request.match_info["fmt"]
        image = await self.dashboard.graph(request.match_info["key"], request.match_info["name"], fmt)
        etag = hashlib.blake2b(image, digest_size=12).hexdigest()
        headers = {"ETag": f'"{etag}"', "Cache-Control": "no-cache"}
        if request.headers.get("If-None-Match") == f'"{etag}"':
            return web.Response(status=304, headers=headers)
        return web.Response(body=image, content_type=CONTENT_TYPES[fmt], headers=headers)

    async def static(self, request: web.Request) -> web.Response:
        entry = STATIC.get(request.match_info["file"])
        if entry is None:
            raise NotFound(f"no file {request.match_info['file']!r}")
        content_type, text = entry
        return web.Response(text=text, content_type=content_type, headers={"Cache-Control": "max-age=3600"})

    async def metrics(self, _request: web.Request) -> web.Response:
        """Prometheus' scrape; gzip when asked for (Prometheus does: 90,000 series are 7 MB of text)."""
        body = await prometheus.exposition(self.dashboard)
        response = web.Response(body=body, headers={"Content-Type": prometheus.CONTENT_TYPE,
                                                    "Cache-Control": "no-store"})
        response.enable_compression()
        return response

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: each newly stored record matching the filters, as `event: record`."""
        try:
            q = log_query(log_params(request.query, FOLLOW_FILTERS), time.time())
        except ValueError as e:
            raise web.HTTPBadRequest(text=str(e)) from None
        store = self.dashboard.daemon.logstore
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        resume = request.headers.get("Last-Event-ID", "")
        last_id = int(resume) if resume.isdigit() and int(resume) <= store.last_id else store.last_id
        await response.write(b"retry: 3000\n: connected\n\n")
        async with contextlib.aclosing(store.follow(q, last_id, self.closing, KEEPALIVE)) as batches:
            async for records in batches:
                events = "".join(f"id: {r['id']}\nevent: record\ndata: {json.dumps(r, ensure_ascii=False)}\n\n"
                                 for r in records)
                await response.write(events.encode() if events else b": keepalive\n\n")
        return response


class WebServer:
    """The component: serves the Site on `listen`; feeds the intake rate meter between page views."""

    def __init__(self, cfg: HttpConfig, dashboard: Dashboard) -> None:
        self.name = "http"
        self.cfg = cfg
        self.dashboard = dashboard
        self.counters = Counters()

    async def run(self, started: Callable[[], None]) -> None:
        host, port = split_address(self.cfg.listen)
        access = Access.from_config(self.cfg)
        tls = tls_context(self.cfg)
        site = Site(self.dashboard, access, secure=tls is not None)
        runner = web.AppRunner(site.app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            tcp = web.TCPSite(runner, host, port, ssl_context=tls, reuse_address=True)
            await tcp.start()
            scheme = "https" if tls else "http"
            log.info("dashboard on %s://%s:%d/%s", scheme, host, port, " (authentication required)"
                     if access.required else "")
            started()
            while True:
                self.dashboard.data.observe(await self.dashboard.daemon.status())
                self.counters.inc("status_samples")
                await asyncio.sleep(STATUS_INTERVAL)
        finally:
            site.closing.set()
            await self.dashboard.daemon.logstore.wake_followers()  # live tails see `closing` and end
            await runner.cleanup()


def create(cfg: HttpConfig, dashboard: Dashboard) -> WebServer:
    return WebServer(cfg, dashboard)
