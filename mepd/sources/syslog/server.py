"""Syslog listeners: one component per `[[syslog.listen]]` entry.

UDP cannot push back on its senders, so a datagram that finds the pipeline full
is dropped and counted (by the channel); everything else, including input that
parses as nothing, is stored.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import time
from collections.abc import Callable
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from mepd.config import SyslogListenConfig, split_address
from mepd.model import LogRecord
from mepd.pipeline import Channel, Counters
from mepd.sources.syslog.parse import parse_message

log = logging.getLogger(__name__)


def _peer(addr: Any) -> str | None:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = addr[0]
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
    if isinstance(addr, str) and addr:
        return addr
    return None


class SyslogIntake:
    """Turns received bytes into records on the log channel: the part every transport shares."""

    def __init__(self, cfg: SyslogListenConfig, logs: Channel[LogRecord], counters: Counters) -> None:
        self.cfg = cfg
        self.source = f"syslog/{cfg.proto}"
        self.logs = logs
        self.counters = counters
        self.tz: tzinfo | None = ZoneInfo(cfg.timezone) if cfg.timezone else None

    def record(self, data: bytes, peer: str | None) -> LogRecord:
        size = len(data)
        truncated = size > self.cfg.max_message_size
        if truncated:
            data = data[: self.cfg.max_message_size]
        rec = parse_message(
            data, received=time.time(), source=self.source, peer=peer, tz=self.tz,
            peer_as_host=self.cfg.peer_as_host,
        )
        self.counters.inc("received")
        if rec.parse_error is not None:
            self.counters.inc("parse_errors")
        if truncated:
            self.counters.inc("truncated")
            rec = dataclasses.replace(rec, sd={**rec.sd, "mepd": {"truncated_from": str(size)}})
        return rec


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, intake: SyslogIntake) -> None:
        self.intake = intake

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self.intake.logs.offer(self.intake.record(data, _peer(addr))):
            self.intake.counters.inc("dropped")

    def error_received(self, exc: Exception) -> None:
        self.intake.counters.inc("socket_errors")
        log.warning("%s: socket error: %s", self.intake.cfg.key, exc)


def bind_udp(cfg: SyslogListenConfig) -> socket.socket:
    host, port = split_address(cfg.address)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
    family, _, _, _, sockaddr = infos[0]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, cfg.receive_buffer)
        sock.bind(sockaddr)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class UdpListener:
    """`[[syslog.listen]]` with proto = "udp"."""

    def __init__(self, cfg: SyslogListenConfig, logs: Channel[LogRecord]) -> None:
        self.name = cfg.key
        self.counters = Counters()
        self.intake = SyslogIntake(cfg, logs, self.counters)

    async def run(self, started: Callable[[], None]) -> None:
        sock = bind_udp(self.intake.cfg)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self.intake), sock=sock)
        log.info("listening for syslog on udp %s", self.intake.cfg.address)
        started()
        try:
            await asyncio.Future()
        finally:
            transport.close()


_CHUNK = 65536


class FrameReader:
    """RFC 6587 framing, detected per frame from its first byte.

    A frame starting with a digit and `LEN SP` is octet-counted; anything else
    runs to the next LF or NUL (non-transparent framing).  A frame longer than
    the limit is cut there and the rest of it skipped, so one huge line does not
    cost the connection its other messages; `oversized` then holds its length.
    """

    def __init__(self, reader: asyncio.StreamReader, limit: int) -> None:
        self.reader = reader
        self.limit = limit
        self.buf = bytearray()
        self.eof = False
        self.oversized = 0

    async def _fill(self) -> bool:
        if self.eof:
            return False
        chunk = await self.reader.read(_CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    async def next_frame(self) -> bytes | None:
        """The next frame's bytes, or None at the end of the stream."""
        self.oversized = 0
        while True:
            skip = 0
            while skip < len(self.buf) and self.buf[skip] in (10, 13, 0, 32):
                skip += 1
            del self.buf[:skip]
            if self.buf:
                break
            if not await self._fill():
                return None
        if 48 <= self.buf[0] <= 57:
            while (space := self.buf.find(b" ", 0, 12)) == -1 and len(self.buf) < 12 and await self._fill():
                pass
            if space > 0 and self.buf[:space].isdigit():
                length = int(self.buf[:space])
                del self.buf[: space + 1]
                return await self._counted(length)
        return await self._delimited()

    async def _counted(self, length: int) -> bytes:
        want = min(length, self.limit)
        while len(self.buf) < want and await self._fill():
            pass
        take = min(want, len(self.buf))
        data = bytes(self.buf[:take])
        del self.buf[:take]
        if length > self.limit:
            self.oversized = length
        rest = length - take
        while rest > 0 and (self.buf or await self._fill()):
            k = min(rest, len(self.buf))
            del self.buf[:k]
            rest -= k
        return data

    def _find_delimiter(self, start: int) -> int:
        ends = [i for i in (self.buf.find(b"\n", start), self.buf.find(b"\0", start)) if i >= 0]
        return min(ends) if ends else -1

    async def _delimited(self) -> bytes:
        start = 0
        while True:
            end = self._find_delimiter(start)
            if 0 <= end <= self.limit:
                data = bytes(self.buf[:end])
                del self.buf[: end + 1]
                return data.rstrip(b"\r")
            if end > self.limit or len(self.buf) > self.limit:
                return await self._cut()
            start = len(self.buf)
            if not await self._fill():
                data = bytes(self.buf)
                self.buf.clear()
                return data.rstrip(b"\r")

    async def _cut(self) -> bytes:
        data = bytes(self.buf[: self.limit])
        size = self.limit
        del self.buf[: self.limit]
        while True:
            end = self._find_delimiter(0)
            if end >= 0:
                size += end
                del self.buf[: end + 1]
                break
            size += len(self.buf)
            self.buf.clear()
            if not await self._fill():
                break
        self.oversized = size
        return data


class TcpListener:
    """`[[syslog.listen]]` with proto = "tcp"; a slow store stops reading instead of dropping."""

    def __init__(self, cfg: SyslogListenConfig, logs: Channel[LogRecord]) -> None:
        self.name = cfg.key
        self.counters = Counters()
        self.intake = SyslogIntake(cfg, logs, self.counters)
        self.connections = 0

    async def run(self, started: Callable[[], None]) -> None:
        host, port = split_address(self.intake.cfg.address)
        server = await asyncio.start_server(self._serve, host, port, reuse_address=True)
        log.info("listening for syslog on tcp %s", self.intake.cfg.address)
        started()
        async with server:
            await server.serve_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer.get_extra_info("peername"))
        self.counters.inc("connections")
        frames = FrameReader(reader, self.intake.cfg.max_message_size)
        try:
            while (frame := await frames.next_frame()) is not None:
                if not frame:
                    continue
                rec = self.intake.record(frame, peer)
                if frames.oversized:
                    self.intake.counters.inc("truncated")
                    rec = dataclasses.replace(rec, sd={**rec.sd, "mepd": {"truncated_from": str(frames.oversized)}})
                    frames.oversized = 0
                await self.intake.logs.put(rec)
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            self.counters.inc("connection_errors")
            log.debug("%s: connection from %s ended: %s", self.name, peer, e)
        finally:
            writer.close()


def create(cfg: SyslogListenConfig, logs: Channel[LogRecord]) -> UdpListener | TcpListener:
    if cfg.proto == "udp":
        return UdpListener(cfg, logs)
    if cfg.proto == "tcp":
        return TcpListener(cfg, logs)
    raise NotImplementedError(f"syslog over {cfg.proto} is not available yet")
