"""RELP, rsyslog's Reliable Event Logging Protocol (librelp's doc/relp.md): syslog acknowledged once stored.

A `syslog` command is answered `rsp 200` only when the log store's sink says
the record's batch committed (`LogRecord.on_stored`), so a sender (`omrelp`)
keeps and resends whatever mepd had not stored when it died: nothing is lost.
Responses go out in command order, as the spec demands, even when batches
commit out of order.  What was stored but not yet acknowledged is resent too;
a record carrying a uuid in its structured data (`[mepd@32473 uuid="..."]`,
rsyslog's `%uuid%` property) gets it as its `uid`, and the store keeps one
record per uid: exactly once.  Without one, delivery is at least once: at most
a window of repeats per session cut by a crash.

A malformed frame closes its session at once (the spec's error handling: no
answer is owed), logged and counted; other sessions go on.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from dataclasses import dataclass
from typing import Final

from mepd import __version__
from mepd.config import SyslogListenConfig
from mepd.model import LogRecord
from mepd.pipeline import Channel
from mepd.sources.syslog.server import Handover, StreamListener, Throttle
from mepd.systemd import ListenFd

log = logging.getLogger(__name__)

# RELP v1 fixes the largest DATA at 128 KiB (librelp's RELP_DFLT_MAX_DATA_SIZE): a conforming sender sends no more.
MAX_DATA: Final = 128 * 1024
# Commands read but not answered yet, per session; past it the session stops reading (omrelp's default is 128).
WINDOW: Final = 1024
# How long a session whose sender stopped sending waits for its last records to commit, to acknowledge them.
LINGER: Final = 10.0
UID_SD_ID: Final = "mepd@32473"  # 32473: the example enterprise number of RFC 5612
UID_PARAM: Final = "uuid"
_READ_CHUNK: Final = 65536
_TXNR_MAX: Final = 999_999_999  # after it, the next txnr is 1
_HEADER: Final = re.compile(rb"(\d{1,9}) ([A-Za-z]{1,32}) (\d{1,9})([ \n])")
# What a header cut short by the end of the buffer looks like so far.
_PARTIAL: Final = re.compile(rb"\d{0,9}(?: (?:[A-Za-z]{0,32}(?: \d{0,9})?)?)?")
_HEADER_MAX: Final = 9 + 1 + 32 + 1 + 9 + 1
_FIELD_END: Final = re.compile(rb"[ \n]")
_OFFERS: Final = b"relp_version=0\nrelp_software=mepd,%s\ncommands=syslog" % (
    __version__.encode())
SERVERCLOSE: Final = b"0 serverclose 0\n"


class RelpFrameError(Exception):
    """A frame that breaks RELP's framing or its session rules: the session is closed, saying this."""


@dataclass(frozen=True, slots=True)
class Frame:
    txnr: int
    command: str
    data: bytes


def _header_error(head: bytes) -> str:
    """Which part of a header that does not parse is wrong, for the log line."""
    txnr, _, rest = head.partition(b" ")
    if not re.fullmatch(rb"\d{1,9}", txnr):
        return f"bad TXNR {txnr[:20]!r}"
    command, _, rest = rest.partition(b" ")
    if not re.fullmatch(rb"[A-Za-z]{1,32}", command):
        return f"bad COMMAND {command[:40]!r}"
    return f"bad DATALEN {_FIELD_END.split(rest)[0][:20]!r}"


class FrameParser:
    """RELP frames from a byte stream: TXNR SP COMMAND SP DATALEN [SP DATA] LF, DATALEN at most `max_data`."""

    def __init__(self, max_data: int = MAX_DATA) -> None:
        self.max_data = max_data
        self.buf = b""

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes; returns the frames they complete.  Raises RelpFrameError on a malformed one."""
        buf = self.buf + data if self.buf else data
        out: list[Frame] = []
        pos, n = 0, len(buf)
        header = _HEADER.match
        while pos < n:
            m = header(buf, pos)
            if m is None:
                if n - pos < _HEADER_MAX and _PARTIAL.fullmatch(buf, pos):
                    break  # the header is not all there yet
                raise RelpFrameError(_header_error(buf[pos : pos + 64]))
            length = int(m.group(3))
            if length > self.max_data:
                raise RelpFrameError(f"DATALEN {length} is over the {self.max_data} bytes accepted")
            start = m.end()
            if m.group(4) == b"\n":
                if length:
                    raise RelpFrameError(f"DATALEN {length} but the frame ends after its header")
                out.append(Frame(int(m.group(1)), m.group(2).decode(), b""))
                pos = start
                continue
            end = start + length
            if end >= n:
                break
            if buf[end] != 10:
                raise RelpFrameError(f"no LF after the {length} bytes of DATALEN: a DATALEN that lies or a frame"
                                     " without its trailer")
            out.append(Frame(int(m.group(1)), m.group(2).decode(), buf[start:end]))
            pos = end + 1
        self.buf = buf[pos:]
        return out


def rsp(txnr: int, data: bytes) -> bytes:
    """A response frame."""
    return b"%d rsp %d %s\n" % (txnr, len(data), data) if data else b"%d rsp 0\n" % txnr


def offers(data: bytes) -> dict[str, list[str]]:
    """An `open` command's offers: LF-separated `name[=value,value...]`."""
    out: dict[str, list[str]] = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        if line:
            name, _, values = line.partition("=")
            out[name] = values.split(",") if values else []
    return out


def take_uid(record: LogRecord) -> None:
    """Move the sender's uuid from the record's structured data to its `uid`."""
    element = record.sd.get(UID_SD_ID)
    if not element or not (uid := element.get(UID_PARAM)):
        return
    record.uid = uid
    rest = {k: v for k, v in element.items() if k != UID_PARAM}
    record.sd = {k: v for k, v in record.sd.items() if k != UID_SD_ID} | ({UID_SD_ID: rest} if rest else {})


class _Txn:
    """A command awaiting its response; `reply` is set when it can be sent (for `syslog`: once stored)."""

    __slots__ = ("reply", "session", "txnr")

    def __init__(self, session: _Session, txnr: int, reply: bytes | None = None) -> None:
        self.session = session
        self.txnr = txnr
        self.reply = reply

    def stored(self, duplicate: bool) -> None:
        """The log store's word: the record is committed (or was already, from an earlier send)."""
        self.reply = b"200 OK"
        if duplicate:
            self.session.listener.counters.inc("duplicates_dropped")
        self.session.ready()


class _Session:
    """One connection's state: the next txnr, and the commands not answered yet, in order."""

    def __init__(self, listener: RelpListener, writer: asyncio.StreamWriter, peer: str | None) -> None:
        self.listener = listener
        self.writer = writer
        self.peer = peer
        self.opened = False
        self.closing = False  # `close` received: answer what is pending, then close
        self.expected = 1
        self.pending: deque[_Txn] = deque()
        self.room = asyncio.Event()
        self.answered = asyncio.Event()  # nothing pending
        self.answered.set()
        self._flush_due = False

    def ready(self) -> None:
        """A response may be sendable: write what is at the head of the queue, once per loop pass."""
        if not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._flush_due = False
        pending = self.pending
        out: list[bytes] = []
        acked = 0
        while pending and pending[0].reply is not None:
            txn = pending.popleft()
            assert txn.reply is not None
            out.append(rsp(txn.txnr, txn.reply))
            acked += txn.reply == b"200 OK"
        if out and not self.writer.is_closing():
            self.writer.write(b"".join(out))
            self.listener.counters.inc("acknowledged", acked)
        if len(pending) < WINDOW:
            self.room.set()
        if not pending:
            self.answered.set()

    def answer(self, txnr: int, reply: bytes | None) -> _Txn:
        txn = _Txn(self, txnr, reply)
        self.pending.append(txn)
        self.answered.clear()
        if reply is not None:
            self.ready()
        return txn

    def command(self, frame: Frame) -> _Txn | None:
        """Check one frame against the session's rules and answer it; a `syslog` command's _Txn is returned,
        for its record to be stored first."""
        if frame.txnr == 0:
            return None  # a hint: never answered, none is meaningful to a server
        if self.closing:
            raise RelpFrameError(f"{frame.command} after close")
        if frame.txnr != self.expected:
            raise RelpFrameError(f"TXNR {frame.txnr} where {self.expected} was expected")
        self.expected = frame.txnr + 1 if frame.txnr < _TXNR_MAX else 1
        if frame.command == "open":
            if self.opened:
                raise RelpFrameError("open in a session already open")
            self._open(frame)
            return None
        if not self.opened:
            raise RelpFrameError(f"{frame.command!r} before open")
        if frame.command == "syslog":
            if not frame.data:
                self.listener.counters.inc("rejected")
                self.answer(frame.txnr, b"500 empty message: nothing to store")
                return None
            return self.answer(frame.txnr, None)
        if frame.command == "close":
            self.closing = True
            self.answer(frame.txnr, b"")
            return None
        self.listener.counters.inc("rejected")
        self.answer(frame.txnr, b"500 command not supported: " + frame.command.encode())
        return None

    def _open(self, frame: Frame) -> None:
        offered = offers(frame.data)
        if "relp_version" not in offered:
            self.writer.write(rsp(frame.txnr, b"500 the relp_version offer is missing"))
            raise RelpFrameError("open without relp_version")
        if "syslog" not in offered.get("commands", []):
            self.writer.write(rsp(frame.txnr, b"500 required command not supported by client"))
            raise RelpFrameError("open without commands=syslog")
        self.opened = True
        self.answer(frame.txnr, b"200 OK\n" + _OFFERS)


class RelpListener(StreamListener):
    """`[[syslog.listen]]` with proto "relp", over TLS when given `tls_cert` and `tls_key`."""

    def __init__(self, cfg: SyslogListenConfig, logs: Channel[LogRecord], inherited: ListenFd | None,
                 handover: Handover) -> None:
        super().__init__(cfg, logs, inherited, handover)
        self.counters.declare("acknowledged", "duplicates_dropped", "malformed_frames", "rejected")
        self.max_data = max(MAX_DATA, cfg.max_message_size)
        self._warn_malformed = Throttle()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str | None,
                       last: list[float]) -> None:
        loop = asyncio.get_running_loop()
        session = _Session(self, writer, peer)
        parser = FrameParser(self.max_data)
        try:
            while not session.closing:
                while len(session.pending) >= WINDOW:  # back-pressure: the sender waits for its responses
                    session.room.clear()
                    await session.room.wait()
                data = await reader.read(_READ_CHUNK)
                last[0] = loop.time()
                if not data:
                    if parser.buf:
                        log.info("%s: the RELP session from %s ended inside a frame", self.name, peer)
                    break
                txns: list[_Txn] = []
                frames: list[tuple[bytes, int]] = []
                try:
                    for frame in parser.feed(data):
                        txn = session.command(frame)
                        if txn is not None:
                            txns.append(txn)
                            frames.append((frame.data, 0))
                except RelpFrameError as e:  # the frames before it in this read are left for the sender to resend
                    self._malformed(peer, str(e))
                    return
                await self._store(frames, txns, peer)
            async with asyncio.timeout(LINGER):
                await session.answered.wait()
            if session.closing:
                writer.write(SERVERCLOSE)
        except TimeoutError:
            log.info("%s: closing the RELP session from %s with %d commands not answered: their records were"
                     " not stored within %.0fs", self.name, peer, len(session.pending), LINGER)

    async def _store(self, frames: list[tuple[bytes, int]], txns: list[_Txn], peer: str | None) -> None:
        if not frames:
            return
        records = self.intake.records(frames, peer)
        for record, txn in zip(records, txns, strict=True):
            take_uid(record)
            record.on_stored = txn.stored
        await self.intake.logs.put_many(records, urgent=True)

    def _malformed(self, peer: str | None, reason: str) -> None:
        self.counters.inc("malformed_frames")
        if n := self._warn_malformed.due():
            log.warning("%s: closing the RELP session from %s: %s (%d sessions closed so since the last message)",
                        self.name, peer, reason, n)
