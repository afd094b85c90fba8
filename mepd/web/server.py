"""The dashboard's HTTP server: a component of the daemon on `[http] listen`.

Security, in the order requests meet it:
- bound to 127.0.0.1 by default; optional TLS (`tls_cert`, `tls_key`);
- the Host header must name this server: an IP address, localhost, the listen host or one of
  `allowed_hosts`; any other name is a DNS-rebinding page's and gets 403;
- every request needs a credential, as the control socket needs group mepd: HTTP basic auth
  (`basic_auth_file`, lines of `user:password`), a bearer token (`token_file`), or, with neither
  configured, the token mepd keeps in `state_dir/dashboard-token` (mode 0640: root and group mepd
  read it; `mepctl dashboard url` prints the login URL).  `GET ...?token=T` (Jupyter's login URL)
  sets a session cookie (HttpOnly, SameSite=Strict, derived from the token) and redirects to the
  same page without the token;
- state-changing requests are POST forms carrying a token that is an HMAC of a
  random cookie (SameSite=Strict, HttpOnly) under a per-process secret; a POST
  without it, or from another origin, is refused with 403;
- a Content-Security-Policy that allows only this server's own scripts.

`GET /metrics` is Prometheus' scrape of the same daemon (mepd.web.prometheus), behind
the same authentication (Prometheus sends basic auth or a bearer token) unless
`metrics_auth = false`: metrics are not logs, and node_exporter serves them open too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import ssl
import sys
import time
from base64 import b64decode
from binascii import Error as Base64Error
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, urlencode, urlsplit

from aiohttp import web

from mepd.alerts.engine import NotFoundError, NotRunningError, StateError
from mepd.api.protocol import FOLLOW_FILTERS, LOG_FILTERS, count, log_params, log_query
from mepd.config import Config, HttpConfig, split_address
from mepd.pipeline import Counters
from mepd.units import parse_duration
from mepd.web import pages, prometheus
from mepd.web import report as web_report
from mepd.web.assets import STATIC
from mepd.web.dashboard import Dashboard, NotFound
from mepd.web.graphs import CONTENT_TYPES
from mepd.web.pages import Ctx

log = logging.getLogger(__name__)

COOKIE: Final = "mepd_csrf"
SESSION: Final = "mepd_session"
LOGIN_FILE: Final = "dashboard-token"  # in state_dir, when no credential is configured
TOKEN_MODE: Final = 0o640
NONCE: Final = re.compile(r"[A-Za-z0-9_-]{16,64}")
KEEPALIVE: Final = 15.0
STATUS_INTERVAL: Final = 10.0
CSP: Final = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
              "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Access:
    """Who may read the dashboard, and under which Host names; nobody without a credential."""

    users: dict[str, str]
    tokens: tuple[str, ...]
    hosts: frozenset[str] = frozenset({"localhost"})
    open_metrics: bool = False

    @classmethod
    def from_config(cls, cfg: HttpConfig, state_dir: str) -> Access:
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
        elif not users:
            tokens = (state_token(os.path.join(state_dir, LOGIN_FILE)),)
        names = ["localhost", *cfg.allowed_hosts]
        if cfg.listen:
            names.append(split_address(cfg.listen)[0])
        return cls(users, tokens, frozenset(n.lower().rstrip(".") for n in names), not cfg.metrics_auth)

    def allows(self, header: str | None, session: str | None = None) -> bool:
        if session and any(hmac.compare_digest(session, session_of(t)) for t in self.tokens):
            return True
        scheme, _, value = (header or "").partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            return self.admits_token(value)
        if scheme.lower() == "basic" and self.users:
            try:
                user, _, password = b64decode(value, validate=True).decode("utf-8").partition(":")
            except (Base64Error, UnicodeDecodeError):
                return False
            expected = self.users.get(user, "")
            return hmac.compare_digest(password.encode(), expected.encode()) and bool(expected)
        return False

    def admits_token(self, token: str) -> bool:
        return any(hmac.compare_digest(token.encode(), t.encode()) for t in self.tokens)

    def names_this_server(self, host: str) -> bool:
        """Whether a Host header may reach us: a rebinding page's is a name of its own, never an IP address."""
        try:
            name = (urlsplit(f"//{host}").hostname or "").rstrip(".")
        except ValueError:
            return False
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return name in self.hosts
        return True

    def challenge(self) -> str:
        return 'Basic realm="mepd", charset="UTF-8"' if self.users else 'Bearer realm="mepd"'


def session_of(token: str) -> str:
    """The session cookie a token's login sets: it lasts as long as the token, and does not reveal it."""
    return hmac.new(token.encode(), b"mepd dashboard session", hashlib.sha256).hexdigest()


def state_token(path: str) -> str:
    """The token in `path`, made (random, mode 0640, the daemon's group) when missing, too short, or
    readable by others: such a one may have been read already."""
    try:
        with open(path, encoding="utf-8") as fh:
            token = fh.read().strip()
            mode = os.fstat(fh.fileno()).st_mode
        if len(token) >= 16 and not mode & 0o007:
            return token
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(32)
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, TOKEN_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fd, TOKEN_MODE)  # the umask may have taken the group's bit
        fh.write(token + "\n")
    os.replace(tmp, path)
    log.info("dashboard: made a new login token in %s", path)
    return token


def login_url(cfg: HttpConfig, token: str | None) -> str:
    """Where a browser on this machine reaches the dashboard (with `?token=` when it logs in with one)."""
    host, port = split_address(cfg.listen)
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).is_unspecified:  # listening everywhere: loopback is one of them
            host = "127.0.0.1" if "." in host else "::1"
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if cfg.tls_cert else "http"
    return f"{scheme}://{host}:{port}/" + (f"?token={quote(token, safe='')}" if token else "")


def configured_token(cfg: Config) -> str | None:
    """The token a login URL carries: token_file's, or state_dir's when no credential is configured."""
    if cfg.http.token_file:
        path = cfg.http.token_file
    elif cfg.http.basic_auth_file:
        return None
    else:
        path = os.path.join(cfg.daemon.state_dir, LOGIN_FILE)
    with open(path, encoding="utf-8") as fh:
        return fh.read().strip()


def api_routes(current: Callable[[], Config]) -> list[web.RouteDef]:
    """`GET /v1/dashboard/url` on the control socket (which admits root and group mepd): the login URL."""

    async def url(_request: web.Request) -> web.Response:
        cfg = current()
        if not cfg.http.listen:
            raise web.HTTPConflict(text='the dashboard is off: [http] listen = ""')
        try:
            token = await asyncio.to_thread(configured_token, cfg)
        except FileNotFoundError as e:
            raise web.HTTPServiceUnavailable(text=f"no token yet in {e.filename}: has the dashboard started?") from None
        except OSError as e:
            raise web.HTTPInternalServerError(text=f"cannot read {e.filename}: {e.strerror}") from None
        return web.json_response({"url": login_url(cfg.http, token)})

    return [web.get("/v1/dashboard/url", url)]


def tls_context(cfg: HttpConfig) -> ssl.SSLContext | None:
    if not cfg.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cfg.tls_cert, cfg.tls_key)
    return ctx


class Site:
    """The aiohttp application: routes, auth, CSRF and security headers around a Dashboard."""

    def __init__(self, dashboard: Dashboard, access: Access, *, secure: bool = False,
                 counters: Counters | None = None) -> None:
        self.dashboard = dashboard
        self.access = access
        self.secure = secure
        self.counters = counters or Counters()
        self.closing = asyncio.Event()
        self.app = web.Application(middlewares=[self._headers, self._host, self._auth, self._errors])
        self.app.add_routes([
            web.get("/", self.overview),
            web.get("/index.html", self.overview),
            web.get("/if/{target}/{name}.html", self.interface),
            web.get("/timeline/{target}.html", self.target_timeline),
            web.get("/web/{name}.html", self.web_source),
            web.get("/logs.html", self.logs),
            web.get("/logs/stream", self.stream),
            web.get("/incidents.html", self.incidents),
            web.get("/checks.html", self.checks),
            web.get("/report.html", self.report),
            web.get("/intake.html", self.intake),
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
    async def _host(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self.access.names_this_server(request.host):
            self.counters.inc("refused.host")
            raise web.HTTPForbidden(text=f"refused: {request.host!r} is not a name of this dashboard"
                                         " (add it to [http] allowed_hosts)\n")
        return await handler(request)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        token = request.query.get("token")
        if token is not None and request.method == "GET" and self.access.admits_token(token):
            return self._login(request, token)
        if request.path == "/metrics" and self.access.open_metrics:
            return await handler(request)
        if not self.access.allows(request.headers.get("Authorization"), request.cookies.get(SESSION)):
            self.counters.inc("refused.auth")
            raise web.HTTPUnauthorized(
                text="authentication required: open the login URL that `mepctl dashboard url` prints\n",
                headers={"WWW-Authenticate": self.access.challenge()})
        return await handler(request)

    def _login(self, request: web.Request, token: str) -> web.StreamResponse:
        """Jupyter's login URL: the session cookie, then the same page without the token in the address bar.
        The redirect is relative, so it stays right under a proxy's path prefix."""
        self.counters.inc("logins")
        rest = urlencode([(k, v) for k, v in request.query.items() if k != "token"])
        location = (request.path.rsplit("/", 1)[1] or "./") + (f"?{rest}" if rest else "")
        response = web.HTTPSeeOther(location)
        response.set_cookie(SESSION, session_of(token), path="/", httponly=True, samesite="Strict",
                            secure=self.secure)
        return response

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

    async def target_timeline(self, request: web.Request) -> web.Response:
        target = request.match_info["target"]
        return await self._page(request, lambda ctx: self.dashboard.target_timeline(ctx, target))

    async def web_source(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        return await self._page(request, lambda ctx: self.dashboard.web_source(ctx, name))

    async def logs(self, request: web.Request) -> web.Response:
        params = {k: v for k, v in request.query.items() if k in LOG_FILTERS}
        result = await self.dashboard.logs_result(params)
        return await self._page(request, lambda ctx: self.dashboard.logs(ctx, params, result), result.status)

    async def incidents(self, request: web.Request) -> web.Response:
        return await self._page(request, self.dashboard.incidents)

    async def checks(self, request: web.Request) -> web.Response:
        return await self._page(request, self.dashboard.checks)

    async def report(self, request: web.Request) -> web.Response:
        """The operations report (`?month=YYYY-MM`, `?since=&until=`; last month by default): one
        self-contained page, as `mepctl report --html` writes it."""
        try:
            since, until = web_report.page_period(request.query)
        except ValueError as e:
            raise web.HTTPBadRequest(text=str(e)) from None
        _, page = await self.dashboard.reports.html(since, until)
        return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store"})

    async def intake(self, request: web.Request) -> web.Response:
        return await self._page(request, self.dashboard.intake)

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
        last_id = store.last_id
        with contextlib.suppress(ValueError):  # an id not ours (none, garbage, beyond the store's) resumes at the end
            last_id = min(count("Last-Event-ID", request.headers.get("Last-Event-ID", "")), last_id)
        await response.write(b"retry: 3000\n: connected\n\n")
        async with contextlib.aclosing(store.follow(q, last_id, self.closing, KEEPALIVE)) as batches:
            async for records in batches:
                events = "".join(f"id: {r['id']}\nevent: record\ndata: {json.dumps(r, ensure_ascii=False)}\n\n"
                                 for r in records)
                await response.write(events.encode() if events else b": keepalive\n\n")
        return response


class WebServer:
    """The component: serves the Site on `listen`; feeds the intake rate meter between page views."""

    def __init__(self, cfg: HttpConfig, state_dir: str, dashboard: Dashboard) -> None:
        self.name = "http"
        self.cfg = cfg
        self.state_dir = state_dir
        self.dashboard = dashboard
        self.counters = Counters()

    def announcement(self) -> str:
        """Once per start.  The login URL carries the token: it is shown only on a terminal (`make run`,
        one click), never into the journal, which more people read than group mepd."""
        base = login_url(self.cfg, None)
        if self.cfg.token_file or self.cfg.basic_auth_file:
            return f"dashboard on {base} (credentials from [http] basic_auth_file/token_file)"
        path = os.path.join(self.state_dir, LOGIN_FILE)
        if sys.stderr.isatty():
            with open(path, encoding="utf-8") as fh:
                return f"dashboard on {login_url(self.cfg, fh.read().strip())}"
        return f"dashboard on {base} (log in with the URL `mepctl dashboard url` prints; token in {path})"

    async def run(self, started: Callable[[], None]) -> None:
        host, port = split_address(self.cfg.listen)
        access = Access.from_config(self.cfg, self.state_dir)
        tls = tls_context(self.cfg)
        site = Site(self.dashboard, access, secure=tls is not None, counters=self.counters)
        runner = web.AppRunner(site.app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            tcp = web.TCPSite(runner, host, port, ssl_context=tls, reuse_address=True)
            await tcp.start()
            log.info("%s", self.announcement())
            started()
            while True:
                self.dashboard.data.observe(await self.dashboard.daemon.status())
                self.counters.inc("status_samples")
                await asyncio.sleep(STATUS_INTERVAL)
        finally:
            site.closing.set()
            await self.dashboard.daemon.logstore.wake_followers()  # live tails see `closing` and end
            await runner.cleanup()


def create(cfg: HttpConfig, state_dir: str, dashboard: Dashboard) -> WebServer:
    return WebServer(cfg, state_dir, dashboard)
