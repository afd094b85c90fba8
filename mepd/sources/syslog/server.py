"""Syslog listeners: one component per `[[syslog.listen]]` entry.

UDP cannot push back on its senders, so a datagram that finds the pipeline full
is dropped and counted; stream transports (TCP, TLS) wait instead, which stops
reading and lets TCP slow the sender down.  Everything else, including input
that parses as nothing, is stored.

A listener stopped by a reload parks its bound socket in the `Handover`, and the
listener that replaces it on the same address takes it over with its counters:
what arrives during the swap waits in the kernel's buffer instead of being lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import itertools
import logging
import mmap
import operator
import os
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from mepd.config import SyslogListenConfig
from mepd.model import LogRecord
from mepd.pipeline import Channel, Counters
from mepd.sources.syslog import native, sockets
from mepd.sources.syslog.framing import FrameSplitter
from mepd.sources.syslog.parse import parse_many
from mepd.systemd import ListenFd

log = logging.getLogger(__name__)

KERNEL_DROPS_INTERVAL = 5.0
DRAIN_MAX = 512
# A UDP socket with traffic is read on a timer, every POLL_INTERVAL, and waited on again once a read finds it
# empty: at 100,000 datagrams a second a wakeup per few datagrams cost more than their reading.  The kernel's
# receive buffer holds them meanwhile (2 ms at 100,000/s: 200).  Not a unix socket: its queue is 10 to 512
# datagrams (net.unix.max_dgram_qlen), past which a local program's syslog() blocks.
POLL_INTERVAL = 0.002
_DATAGRAM_MAX = 65536
# Where the datagrams of one recvmmsg call land, a slot each (64 at most: the C code's batch).  Anonymous
# memory: only the pages the datagrams touch are ever resident.
_RECEIVE_AREA = 64 * _DATAGRAM_MAX
_READ_CHUNK = 262144
_STREAM_LIMIT = 2**20
_BACKLOG = 100
ACCEPT_RETRY_DELAY = 1.0
WARN_INTERVAL = 10.0
# What accept() says when the process or the machine is out of file descriptors or memory: the pending
# connection stays queued, so retrying at once fails again at once (asyncio's own loop logged 4,000 lines a second).
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


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


Datagram = tuple[bytes, int, str | None]


def read_datagrams(sock: socket.socket, area: memoryview, slot: int, limit: int, *,
                   pure: bool = False) -> tuple[list[Datagram], int]:
    """Up to `limit` waiting datagrams, as (data cut at `slot` bytes, its whole size when cut else 0, the
    sender as `_peer` gives it), and the errno that stopped the reading (0: none waits, or `limit` reached).

    Read into `area` (writable, at least one `slot`).  The C speedups do it in recvmmsg calls, a batch of
    datagrams each: a recvfrom_into per datagram cost as much as parsing it.
    """
    if native.datagrams is not None and not pure:
        return native.datagrams(sock.fileno(), area, slot, limit)
    out: list[Datagram] = []
    recv, view = sock.recvfrom_into, area[:slot]
    for _ in range(limit):
        try:
            size, addr = recv(view, 0, socket.MSG_TRUNC)  # the datagram's whole size, even past the buffer
        except (BlockingIOError, InterruptedError):
            break
        except OSError as e:
            return out, e.errno or errno.EIO
        # not recvfrom: a 64 KiB allocation per datagram, shrunk, fragments the heap
        out.append((bytes(view[:size]), size if size > slot else 0, _peer(addr)))
    return out, 0


class Throttle:
    """One log line per `interval` for a fault that can repeat thousands of times a second; its counter has them all."""

    __slots__ = ("_held", "_next", "interval")

    def __init__(self, interval: float = WARN_INTERVAL) -> None:
        self.interval = interval
        self._next = 0.0
        self._held = 0

    def due(self) -> int:
        """Note one occurrence: how many to report in a line now (this one included), or 0 to stay quiet."""
        self._held += 1
        now = time.monotonic()
        if now < self._next:
            return 0
        held, self._held, self._next = self._held, 0, now + self.interval
        return held


def _forget(e: BaseException) -> None:
    """Drop a handled connection error's traceback: its frames hold the connection (for TLS an SSLProtocol and its
    256 KiB buffer) in a reference cycle that only a full collection frees, rare with mepd's gc thresholds."""
    e.__traceback__ = None


@dataclass(slots=True)
class _Parked:
    sock: socket.socket
    unlink: str | None  # the unix socket file to remove if no listener takes the socket back
    kernel_drops: int  # the kernel's drop count for it already added to the listener's counters


class Handover:
    """Per listener key, what outlives a listener restarted by a reload: its counters and its bound socket.

    The daemon holds one; it closes the sockets nobody took back once a reload has started its listeners, and
    at shutdown.
    """

    def __init__(self) -> None:
        self._counters: dict[str, Counters] = {}
        self._parked: dict[str, _Parked] = {}

    def counters(self, key: str) -> Counters:
        return self._counters.setdefault(key, Counters())

    def take(self, key: str) -> _Parked | None:
        return self._parked.pop(key, None)

    @contextlib.contextmanager
    def lease(self, key: str, parked: _Parked) -> Iterator[_Parked]:
        """A listener's use of its socket: parked when the listener is stopped (cancelled), closed when it fails."""
        try:
            yield parked
        except asyncio.CancelledError:
            self._parked[key] = parked
            raise
        except BaseException:
            _close(parked)
            raise
        _close(parked)

    def close_unclaimed(self) -> None:
        for parked in self._parked.values():
            _close(parked)
        self._parked.clear()


def _close(parked: _Parked) -> None:
    parked.sock.close()
    if parked.unlink is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(parked.unlink)


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
        frames = [frame for frame in frames if frame[0]]
        out = parse_many([data[:limit] for data, _ in frames], received=time.time(), source=self.source,
                         peer=peer, tz=self.tz, peer_as_host=cfg.peer_as_host)
        self._check(out, frames)
        return out

    def _check(self, records: list[LogRecord], frames: list[tuple[bytes, int]]) -> None:
        """Count the records, their parse errors and truncations; mark truncated ones, name the local host.

        It runs for every message, beside a parse in C that costs about as much: no call per record in it."""
        self.counters.inc("received", len(records))
        limit = self.cfg.max_message_size
        local_host = self.local_host
        for rec, (data, size) in zip(records, frames, strict=True):
            if rec.parse_error is not None:
                self.counters.inc("parse_errors")
            if rec.host is None and local_host is not None:
                rec.host = local_host
            if size > limit or len(data) > limit:
                self.counters.inc("truncated")
                rec.sd = {**rec.sd, "mepd": {"truncated_from": str(max(size, len(data)))}}


class DatagramListener:
    """`[[syslog.listen]]` with proto "udp", or "unix" (a local datagram socket like /dev/log)."""

    def __init__(self, cfg: SyslogListenConfig, logs: Channel[LogRecord], inherited: ListenFd | None,
                 handover: Handover) -> None:
        self.name = cfg.key
        self.counters = handover.counters(cfg.key)
        self.counters.declare("received", "parse_errors", "truncated", "dropped.kernel", "dropped.queue_full")
        self.intake = SyslogIntake(cfg, logs, self.counters)
        self.inherited = inherited
        self.handover = handover
        # A slot sized past the largest datagram kept, so that a longer one (a unix socket carries more than
        # 64 KiB) is cut only by max_message_size, which flags it.
        self._slot = max(_DATAGRAM_MAX, cfg.max_message_size)
        self._area = memoryview(mmap.mmap(-1, max(_RECEIVE_AREA // self._slot, 1) * self._slot))
        self._timer: asyncio.TimerHandle | None = None

    def _socket(self) -> tuple[_Parked, str]:
        """The socket to read: the one a stopped listener on this address left, else systemd's, else bound."""
        cfg = self.intake.cfg
        parked = self.handover.take(self.name)
        if parked is not None:
            how = "taken over from the listener it replaces"
            if cfg.proto == "unix" and parked.unlink is not None:
                os.chmod(cfg.address, cfg.mode)
        elif self.inherited is not None:
            parked, how = _Parked(sockets.adopt(self.inherited), None, 0), "inherited from systemd"
        elif cfg.proto == "unix":
            parked, how = _Parked(sockets.bind_unix_datagram(cfg), cfg.address, 0), "bound"
        else:
            parked, how = _Parked(sockets.bind_inet(cfg, socket.SOCK_DGRAM), None, 0), "bound"
        try:
            sockets.set_receive_buffer(parked.sock, cfg.receive_buffer, self.name)
        except OSError:
            _close(parked)
            raise
        return parked, how

    async def run(self, started: Callable[[], None]) -> None:
        parked, how = self._socket()
        sock = parked.sock
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        with self.handover.lease(self.name, parked):
            loop.add_reader(sock.fileno(), self._readable, sock)
            log.info("listening for syslog on %s %s (%s)", self.intake.cfg.proto, self.intake.cfg.address, how)
            started()
            try:
                while True:
                    drops = await loop.run_in_executor(None, sockets.kernel_udp_drops, sock)
                    if drops is not None:  # counted as they grow: the counter outlives the socket
                        self.counters.inc("dropped.kernel", drops - parked.kernel_drops)
                        parked.kernel_drops = drops
                    await asyncio.sleep(KERNEL_DROPS_INTERVAL)
            finally:
                loop.remove_reader(sock.fileno())
                if self._timer is not None:
                    self._timer.cancel()

    def _readable(self, sock: socket.socket) -> None:
        """The socket has datagrams: read them, and go on reading on a timer while more come (UDP)."""
        read = self._drain(sock)
        if read and self.intake.cfg.proto == "udp":
            asyncio.get_running_loop().remove_reader(sock.fileno())
            self._read_again(sock, read)

    def _poll(self, sock: socket.socket) -> None:
        """Read what came since the last read; once none did, wait for the socket again."""
        read = self._drain(sock)
        if read:
            self._read_again(sock, read)
        else:
            self._timer = None
            asyncio.get_running_loop().add_reader(sock.fileno(), self._readable, sock)

    def _read_again(self, sock: socket.socket, read: int) -> None:
        """The next read: at once after a full one (more wait), else in `POLL_INTERVAL`."""
        delay = 0 if read >= DRAIN_MAX else POLL_INTERVAL
        self._timer = asyncio.get_running_loop().call_later(delay, self._poll, sock)

    def _drain(self, sock: socket.socket) -> int:
        """Read every waiting datagram (up to a bound, to let other work run) and hand them on at once; returns
        how many were read.

        One datagram per event-loop pass, as asyncio's datagram transport does,
        costs more than parsing it.
        """
        received, error = read_datagrams(sock, self._area, self._slot, DRAIN_MAX)
        if error:
            self.counters.inc("socket_errors")
            log.warning("%s: socket error: %s", self.name, OSError(error, os.strerror(error)))
        records: list[LogRecord] = []
        for peer, group in itertools.groupby(received, key=operator.itemgetter(2)):  # runs from one sender
            records += self.intake.records([(data, size) for data, size, _ in group], peer)
        # Lost for good: a store's queue was full (the pipeline counts each consumer's drops).
        if records and (lost := self.intake.logs.offer_many(records)):
            self.counters.inc("dropped.queue_full", lost)
        return len(received)


class StreamListener:
    """`[[syslog.listen]]` with proto "tcp" or "tls" (RFC 5425); a slow store stops reading, never drops.

    Connections are capped (`max_connections`, handshakes included: each pending TLS handshake holds 256 KiB)
    and closed after `idle_timeout` without data; what the cap refuses is closed at once and counted.
    """

    def __init__(self, cfg: SyslogListenConfig, logs: Channel[LogRecord], inherited: ListenFd | None,
                 handover: Handover) -> None:
        self.name = cfg.key
        self.counters = handover.counters(cfg.key)
        self.counters.declare("received", "parse_errors", "truncated", "connections_refused", "idle_closed",
                              "accept_errors", *(("tls_handshake_errors",) if cfg.tls else ()))
        self.intake = SyslogIntake(cfg, logs, self.counters)
        self.inherited = inherited
        self.handover = handover
        self.tls: ssl.SSLContext | None = sockets.tls_context(cfg) if cfg.tls else None
        self.connections = 0  # open now, handshakes included
        self._warn_handshake = Throttle()
        self._warn_refused = Throttle()
        self._warn_accept = Throttle()

    async def run(self, started: Callable[[], None]) -> None:
        cfg = self.intake.cfg
        parked = self.handover.take(self.name)
        how = "taken over from the listener it replaces"
        if parked is None and self.inherited is not None:
            parked, how = _Parked(sockets.adopt(self.inherited), None, 0), "inherited from systemd"
        elif parked is None:
            parked, how = _Parked(sockets.bind_inet(cfg, socket.SOCK_STREAM), None, 0), "bound"
        with self.handover.lease(self.name, parked):
            parked.sock.listen(_BACKLOG)
            log.info("listening for syslog on %s %s (%s)", cfg.proto, cfg.address, how)
            started()
            await self._accept(parked.sock)

    async def _accept(self, sock: socket.socket) -> None:
        """asyncio's accept loop, with a cap, and a pause that logs once when the process is out of descriptors."""
        loop = asyncio.get_running_loop()
        limit = self.intake.cfg.max_connections
        while True:
            try:
                conn, addr = await loop.sock_accept(sock)
            except ConnectionAbortedError:
                continue
            except OSError as e:
                if e.errno not in _OUT_OF_RESOURCES:
                    raise
                self.counters.inc("accept_errors")
                if n := self._warn_accept.due():
                    log.warning("%s: cannot accept connections: %s (%d times since the last message); retrying"
                                " every %.0fs", self.name, e.strerror, n, ACCEPT_RETRY_DELAY)
                _forget(e)
                await asyncio.sleep(ACCEPT_RETRY_DELAY)
                continue
            if self.connections >= limit:
                conn.close()
                self.counters.inc("connections_refused")
                if n := self._warn_refused.due():
                    log.warning("%s: refused a connection from %s: max_connections (%d) reached (%d refused since"
                                " the last message)", self.name, _peer(addr), limit, n)
                continue
            self.connections += 1  # given back by _serve, which the protocol starts
            try:
                await loop.connect_accepted_socket(self._protocol, conn)
            except OSError as e:
                self.connections -= 1
                conn.close()
                log.info("%s: connection from %s lost at once: %s", self.name, _peer(addr), e)
                _forget(e)

    def _protocol(self) -> asyncio.StreamReaderProtocol:
        """What asyncio.start_server makes for a connection: a stream that runs _serve, TLS's server side."""
        return asyncio.StreamReaderProtocol(asyncio.StreamReader(_STREAM_LIMIT), self._serve)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        peer = _peer(writer.get_extra_info("peername"))
        idle: asyncio.TimerHandle | None = None
        try:
            if self.tls is not None and not await self._handshake(writer, peer):
                return
            self.counters.inc("connections")
            cfg = self.intake.cfg
            last = [loop.time()]  # when the session last read: the idle timer's only cost per read

            def check_idle() -> None:  # one timer per connection, moved on lazily: a read only notes its time
                nonlocal idle
                if loop.time() < last[0] + cfg.idle_timeout:
                    idle = loop.call_at(last[0] + cfg.idle_timeout, check_idle)
                    return
                self.counters.inc("idle_closed")
                log.info("%s: closing the connection from %s: nothing received for %.0fs", self.name, peer,
                         cfg.idle_timeout)
                writer.transport.abort()

            if cfg.idle_timeout > 0:
                idle = loop.call_at(last[0] + cfg.idle_timeout, check_idle)
            await self._session(reader, writer, peer, last)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as e:
            self.counters.inc("connection_errors")
            log.info("%s: connection from %s ended: %s", self.name, peer, e)
            _forget(e)
        finally:
            if idle is not None:
                idle.cancel()
            writer.close()
            self.connections -= 1

    async def _session(self, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter,  # noqa: ARG002 - for RELP's, which answers
                       peer: str | None, last: list[float]) -> None:
        """Read syslog frames until the peer closes; `last[0]` is set to the time of each read (idle timeout)."""
        loop = asyncio.get_running_loop()
        splitter = FrameSplitter(self.intake.cfg.max_message_size)
        while True:
            data = await reader.read(_READ_CHUNK)
            last[0] = loop.time()
            frames = splitter.feed(data) if data else splitter.finish()
            if frames and (records := self.intake.records(frames, peer)):
                await self.intake.logs.put_many(records)
            if not data:
                break

    async def _handshake(self, writer: asyncio.StreamWriter, peer: str | None) -> bool:
        assert self.tls is not None
        try:
            await writer.start_tls(self.tls, ssl_handshake_timeout=self.intake.cfg.handshake_timeout)
        except (ssl.SSLError, ConnectionError, TimeoutError, OSError) as e:
            self.counters.inc("tls_handshake_errors")
            if n := self._warn_handshake.due():
                log.warning("%s: TLS handshake with %s failed: %s (%d failed since the last message)",
                            self.name, peer, e, n)
            _forget(e)
            return False
        return True


def create(cfg: SyslogListenConfig, logs: Channel[LogRecord], inherited: ListenFd | None = None,
           handover: Handover | None = None) -> DatagramListener | StreamListener:
    """A listener; `handover` is the daemon's, shared by every listener it builds (a fresh one if not given)."""
    handover = handover if handover is not None else Handover()
    if cfg.proto in ("udp", "unix"):
        return DatagramListener(cfg, logs, inherited, handover)
    return StreamListener(cfg, logs, inherited, handover)
