"""Syslog listeners: one component per `[[syslog.listen]]` entry.

UDP cannot push back on its senders, so a datagram that finds the pipeline full
is dropped and counted; stream transports (TCP, TLS) wait instead, which stops
reading and lets TCP slow the sender down.  Everything else, including input
that parses as nothing, is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import operator
import os
import socket
import ssl
import time
from collections.abc import Callable
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from mepd.config import SyslogListenConfig
from mepd.model import LogRecord
from mepd.pipeline import Channel, Counters
from mepd.sources.syslog import sockets
from mepd.sources.syslog.framing import FrameSplitter
from mepd.sources.syslog.parse import parse_many
from mepd.systemd import ListenFd

log = logging.getLogger(__name__)

KERNEL_DROPS_INTERVAL = 5.0
DRAIN_MAX = 512
_DATAGRAM_MAX = 65536
_READ_CHUNK = 262144
TLS_HANDSHAKE_TIMEOUT = 30.0


@functools.lru_cache(maxsize=4096)
def _peer(addr: Any) -> str | None:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = addr[0]
        if host.startswith("::ffff:") and "." in host:  # an IPv4 sender on a dual-stack socket (systemd's [::]:514)
            host = host[7:]
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
    if isinstance(addr, str) and addr:
        return addr
    return None


class SyslogIntake:
    """Turns received bytes into records on the log channel: the part every transport shares."""

    def __init__(self, cfg: SyslogListenConfig, logs: Channel[LogRecord], counters: Counters) -> None:
        self.cfg = cfg
        self.local_host = socket.gethostname() if cfg.proto == "unix" else None
        self.source = f"syslog/{cfg.proto}"
        self.logs = logs
        self.counters = counters
        self.tz: tzinfo | None = ZoneInfo(cfg.timezone) if cfg.timezone else None

    def records(self, frames: list[tuple[bytes, int]], peer: str | None) -> list[LogRecord]:
        """Parse what one read brought: (frame, its size when the transport already cut it) pairs.

        They share one reception time: they arrived together.
        """
        cfg = self.cfg
        limit = cfg.max_message_size
        out = parse_many([data[:limit] for data, _ in frames if data], received=time.time(), source=self.source,
                         peer=peer, tz=self.tz, peer_as_host=cfg.peer_as_host)
        self._check(out, [max(len(data), size) for data, size in frames if data])
        return out

    def _check(self, records: list[LogRecord], sizes: list[int]) -> None:
        """Count the records, their parse errors and truncations; mark truncated ones, name the local host."""
        self.counters.inc("received", len(records))
        limit = self.cfg.max_message_size
        for rec, size in zip(records, sizes, strict=True):
            if rec.parse_error is not None:
                self.counters.inc("parse_errors")
            if rec.host is None and self.local_host is not None:
                rec.host = self.local_host
            if size > limit:
                self.counters.inc("truncated")
                rec.sd = {**rec.sd, "mepd": {"truncated_from": str(size)}}


class DatagramListener:
    """`[[syslog.listen]]` with proto "udp", or "unix" (a local datagram socket like /dev/log)."""

    def __init__(self, cfg: SyslogListenConfig, logs: Channel[LogRecord], inherited: ListenFd | None) -> None:
        self.name = cfg.key
        self.counters = Counters()
        self.counters.declare("received", "parse_errors", "truncated", "dropped.kernel", "dropped.queue_full")
        self.intake = SyslogIntake(cfg, logs, self.counters)
        self.inherited = inherited
        self._view = memoryview(bytearray(_DATAGRAM_MAX))

    def _socket(self) -> socket.socket:
        cfg = self.intake.cfg
        if self.inherited is not None:
            sock = sockets.adopt(self.inherited)
        elif cfg.proto == "unix":
            sock = sockets.bind_unix_datagram(cfg)
        else:
            sock = sockets.bind_inet(cfg, socket.SOCK_DGRAM)
        sockets.set_receive_buffer(sock, cfg.receive_buffer, self.name)
        return sock

    async def run(self, started: Callable[[], None]) -> None:
        sock = self._socket()
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        loop.add_reader(sock.fileno(), self._drain, sock)
        how = "inherited from systemd" if self.inherited else "bound"
        log.info("listening for syslog on %s %s (%s)", self.intake.cfg.proto, self.intake.cfg.address, how)
        started()
        try:
            while True:
                drops = await loop.run_in_executor(None, sockets.kernel_udp_drops, sock)
                if drops is not None:
                    self.counters.set("dropped.kernel", drops)
                await asyncio.sleep(KERNEL_DROPS_INTERVAL)
        finally:
            loop.remove_reader(sock.fileno())
            sock.close()
            if self.intake.cfg.proto == "unix" and self.inherited is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.intake.cfg.address)

    def _drain(self, sock: socket.socket) -> None:
        """Read every waiting datagram (up to a bound, to let other work run) and hand them on at once.

        One datagram per event-loop pass, as asyncio's datagram transport does,
        costs more than parsing it.
        """
        received: list[tuple[bytes, Any]] = []
        recv, view = sock.recvfrom_into, self._view
        for _ in range(DRAIN_MAX):
            try:
                size, addr = recv(view)
                data = bytes(view[:size])  # not recvfrom: a 64 KiB allocation per datagram, shrunk, fragments the heap
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                self.counters.inc("socket_errors")
                log.warning("%s: socket error: %s", self.name, e)
                break
            received.append((data, addr))
        records: list[LogRecord] = []
        for addr, group in itertools.groupby(received, key=operator.itemgetter(1)):  # runs from one sender
            records += self.intake.records([(data, 0) for data, _ in group], _peer(addr))
        if not records:
            return
        # Lost for good: a store's queue was full (the pipeline counts each consumer's drops).
        if lost := self.intake.logs.offer_many(records):
            self.counters.inc("dropped.queue_full", lost)


class StreamListener:
    """`[[syslog.listen]]` with proto "tcp" or "tls" (RFC 5425); a slow store stops reading, never drops."""

    def __init__(self, cfg: SyslogListenConfig, logs: Channel[LogRecord], inherited: ListenFd | None) -> None:
        self.name = cfg.key
        self.counters = Counters()
        self.counters.declare("received", "parse_errors", "truncated")
        self.intake = SyslogIntake(cfg, logs, self.counters)
        self.inherited = inherited
        self.tls: ssl.SSLContext | None = sockets.tls_context(cfg) if cfg.proto == "tls" else None

    async def run(self, started: Callable[[], None]) -> None:
        cfg = self.intake.cfg
        if self.inherited is not None:
            sock = sockets.adopt(self.inherited)
        else:
            sock = sockets.bind_inet(cfg, socket.SOCK_STREAM)
        server = await asyncio.start_server(self._serve, sock=sock, limit=2**20)
        how = "inherited from systemd" if self.inherited else "bound"
        log.info("listening for syslog on %s %s (%s)", cfg.proto, cfg.address, how)
        started()
        async with server:
            await server.serve_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer.get_extra_info("peername"))
        try:
            if self.tls is not None and not await self._handshake(writer, peer):
                return
            self.counters.inc("connections")
            splitter = FrameSplitter(self.intake.cfg.max_message_size)
            while True:
                data = await reader.read(_READ_CHUNK)
                frames = splitter.feed(data) if data else splitter.finish()
                if frames and (records := self.intake.records(frames, peer)):
                    await self.intake.logs.put_many(records)
                if not data:
                    break
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as e:
            self.counters.inc("connection_errors")
            log.info("%s: connection from %s ended: %s", self.name, peer, e)
        finally:
            writer.close()

    async def _handshake(self, writer: asyncio.StreamWriter, peer: str | None) -> bool:
        assert self.tls is not None
        try:
            await writer.start_tls(self.tls, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT)
        except (ssl.SSLError, ConnectionError, TimeoutError, OSError) as e:
            self.counters.inc("tls_handshake_errors")
            log.warning("%s: TLS handshake with %s failed: %s", self.name, peer, e)
            return False
        return True


def create(cfg: SyslogListenConfig, logs: Channel[LogRecord],
           inherited: ListenFd | None = None) -> DatagramListener | StreamListener:
    if cfg.proto in ("udp", "unix"):
        return DatagramListener(cfg, logs, inherited)
    return StreamListener(cfg, logs, inherited)
