"""One connection to the NATS cluster, kept up by nats-py, with a state to show.

The client reconnects by itself, forever, also before its first success; this
module turns its callbacks into a state (`connecting`, `connected`,
`disconnected`) and the last error, logged once per change: an unreachable
cluster, refused credentials or a failed TLS handshake is a line in `mepctl
status`, never a crash.  Secrets are read from their files at connect time and
never logged.
"""

from __future__ import annotations

import logging
import ssl
import time
from typing import Any, Final

import nats
import nats.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from mepd.config import FleetConfig

log = logging.getLogger(__name__)

RECONNECT_WAIT = 2.0
# A server that hangs (SIGSTOP, a half-open path through a firewall) answers no ping: noticed after
# PING_INTERVAL * MAX_PINGS seconds (nats-py's defaults would take 4 minutes), then the client reconnects
# elsewhere and the status says disconnected.
PING_INTERVAL: Final = 10
MAX_PINGS: Final = 3


def _secret(path: str) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read().strip()


def connect_options(cfg: FleetConfig) -> dict[str, Any]:
    """nats.connect's arguments for the auth and TLS the config names."""
    opts: dict[str, Any] = {}
    if cfg.user:
        opts["user"], opts["password"] = cfg.user, _secret(cfg.password_file)
    elif cfg.token_file:
        opts["token"] = _secret(cfg.token_file)
    elif cfg.creds_file:
        opts["user_credentials"] = cfg.creds_file
    if cfg.tls_ca or cfg.tls_cert or any(s.startswith("tls://") for s in cfg.servers):
        context = ssl.create_default_context(cafile=cfg.tls_ca or None)
        if cfg.tls_cert:
            context.load_cert_chain(cfg.tls_cert, cfg.tls_key)
        opts["tls"] = context
    return opts


class Link:
    """A connection's state for status: what it is, since when, and the last error the client reported."""

    def __init__(self, cfg: FleetConfig, name: str) -> None:
        self.cfg = cfg
        self.name = name  # the client's name, shown by the server (`nats-server` connz)
        self.state = "connecting"
        self.since = time.time()
        self.last_error: str | None = None
        self._refused = False  # the last error is the server's own word (wrong credentials, say)
        self.server: str | None = None
        self.nc: NatsClient | None = None

    def _set(self, state: str, error: str | None = None) -> None:
        if state != self.state or (error is not None and error != self.last_error):
            if error is not None:
                log.warning("fleet %s: %s: %s", self.name, state, error)
            else:
                log.info("fleet %s: %s %s", self.name, state, self.server or "")
        if state != self.state:
            self.since = time.time()
        self.state = state
        if error is not None:
            self.last_error = error
        elif state == "connected":
            self.last_error = None
            self._refused = False

    def mismatch(self, error: str, state: str = "stream mismatch") -> None:
        """Connected, but a stream is not as the config says or is refused (`mepd.fleet.streams`): nothing moves
        until fixed."""
        self._set(state, error)

    async def _on_error(self, e: Exception) -> None:
        if self._refused and self.state != "connected" and isinstance(e, OSError):
            return  # the server closing after its refusal: the refusal says why, the reset does not
        self._refused = isinstance(e, nats.errors.Error)
        text = str(e) or type(e).__name__
        self._set("disconnected" if self.state == "connected" else self.state, f"{type(e).__name__}: {text}")

    async def _on_disconnected(self) -> None:
        self._set("disconnected", self.last_error)

    async def _on_reconnected(self) -> None:
        self._note_server()
        self._set("connected")

    def _note_server(self) -> None:
        url = self.nc.connected_url if self.nc is not None else None
        self.server = f"{url.hostname}:{url.port}" if url is not None else None

    async def open(self) -> JetStreamContext:
        """Connect (waiting as long as it takes) and return the JetStream context."""
        self.nc = await nats.connect(
            list(self.cfg.servers), name=self.name, allow_reconnect=True, max_reconnect_attempts=-1,
            reconnect_time_wait=RECONNECT_WAIT, connect_timeout=max(1, round(self.cfg.timeout)),
            ping_interval=PING_INTERVAL, max_outstanding_pings=MAX_PINGS,
            error_cb=self._on_error, disconnected_cb=self._on_disconnected, reconnected_cb=self._on_reconnected,
            **connect_options(self.cfg),
        )
        self._note_server()
        self._set("connected")
        return self.nc.jetstream(timeout=self.cfg.timeout)

    async def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.close()
        self.nc = None

    def status(self) -> dict[str, object]:
        return {"state": self.state, "since": self.since, "server": self.server, "last_error": self.last_error}
