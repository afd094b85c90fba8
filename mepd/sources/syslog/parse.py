"""One syslog message (bytes, already de-framed) to one LogRecord, whatever the sender got wrong.

`parse_message` never raises: input that fits neither RFC is kept whole as the
message and in `raw`, with `parse_error` saying why, so the listener stores and
counts it instead of losing it.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable
from datetime import tzinfo
from sys import intern
from types import MappingProxyType
from typing import Final

from mepd.model import SD, LogRecord
from mepd.sources.syslog import native, rfc3164, rfc5424
from mepd.sources.syslog.common import fraction, peer_host, second_epoch, wall_hour

log = logging.getLogger(__name__)

# rsyslog's default for a message without PRI: user.notice.
DEFAULT_FACILITY = 1
DEFAULT_SEVERITY = 5


NO_SD: Final[SD] = MappingProxyType({})  # shared by every record without structured data: 64 bytes each saved

# The usual RFC 5424 message in one match: PRI, a timestamp, four header fields, no structured data.
_USUAL_5424: Final = re.compile(
    r"<(\d{1,3})>1 (\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?([Zz]|[+-]\d\d:?\d\d)?"
    r" ([^ ]+) ([^ ]+) ([^ ]+) ([^ ]+) -(?: (.*))?\Z",
    re.S,
)


# The usual RFC 3164 message in one match: PRI, a BSD or RFC 3339 stamp, host, tag[pid]: (as rfc3164._TEXTBOOK).
_USUAL_3164: Final = re.compile(
    r"<(\d{1,3})>(?:([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d)"
    r"|(\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?([Zz]|[+-]\d\d:?\d\d)?)"
    r" (?!\d{4} )([A-Za-z0-9_.\-]{1,255}) ([^\s:\[\]=\",%]{1,64})(?:\[(\d{1,20})\])?: (.*)\Z",
    re.S,
)


# The LogRecord fields the C parser fills, in the order it expects them; it sets the others to None.
_FILLED: Final = ("ts", "received", "message", "source", "host", "app", "pid", "facility", "severity", "msgid",
                  "sd", "peer")
if native.setup is not None:
    native.setup(LogRecord, _FILLED, tuple(f.name for f in dataclasses.fields(LogRecord) if f.name not in _FILLED),
                 NO_SD, wall_hour, rfc3164.bsd_hour)


def decode(data: bytes) -> str:
    """The text of a frame: UTF-8 (invalid bytes replaced), without the trailing NUL/CR/LF some senders add."""
    return data.rstrip(b"\r\n\0").decode("utf-8", "replace")


def parse_message(
    data: bytes,
    *,
    received: float,
    source: str,
    peer: str | None = None,
    tz: tzinfo | None = None,
    peer_as_host: bool = True,
    pure: bool = False,
) -> LogRecord:
    """Parse RFC 5424 or RFC 3164 (with device variants); `tz` (None: local zone) applies to zone-less stamps."""
    return parse_many([data], received=received, source=source, peer=peer, tz=tz, peer_as_host=peer_as_host,
                      pure=pure)[0]


def parse_many(
    frames: Iterable[bytes],
    *,
    received: float,
    source: str,
    peer: str | None = None,
    tz: tzinfo | None = None,
    peer_as_host: bool = True,
    pure: bool = False,
) -> list[LogRecord]:
    """`parse_message` for what one sender sent at one time, without a call's overhead per message.

    The usual messages are parsed by the C speedups when they are built (`native`), the others by
    `_parse_one`; `pure` parses them all in Python, which the C code must match exactly.
    """
    fallback_host = peer_host(peer) if peer_as_host else None
    if native.parse_many is not None and not pure:
        return native.parse_many(frames, received, source, peer, tz, fallback_host, _parse_one)
    return [_parse_one(data, received, source, peer, tz, fallback_host) for data in frames]


def _parse_one(
    data: bytes, received: float, source: str, peer: str | None, tz: tzinfo | None, fallback_host: str | None,
) -> LogRecord:
    text = decode(data)
    try:
        return (_usual_5424(text, received, source, peer, tz, fallback_host)
                or _usual_3164(text, received, source, peer, tz)
                or _parse(text, received, source=source, peer=peer, tz=tz, fallback_host=fallback_host))
    except Exception as e:  # a parser bug must cost one message its fields, never the listener
        log.debug("syslog parser failed on %r", data[:200], exc_info=True)
        return LogRecord(
            ts=received, received=received, message=text, source=source, host=fallback_host,
            peer=peer, parse_error=f"parser failure: {type(e).__name__}", raw=text,
        )


def _usual_5424(
    text: str, received: float, source: str, peer: str | None, tz: tzinfo | None, fallback_host: str | None,
) -> LogRecord | None:
    """What `_parse` makes of the usual RFC 5424 message, at a third of the cost; None for anything else."""
    m = _USUAL_5424.match(text)
    if m is None:
        return None
    pri_digits, stamp, frac, zone, host, app, procid, msgid, message = m.groups()
    pri = int(pri_digits)
    whole = second_epoch(stamp, zone, tz)
    if pri > 191 or whole is None:
        return None
    if message is None:
        message = ""
    elif message[:1] == rfc5424.BOM:
        message = message[1:]
    # Interned: a sender repeats its host, app, pid and msgid, and records wait in queues by the
    # hundred thousand; one shared copy saves a third of a record's memory.
    return LogRecord(
        whole[0] + fraction(frac) - whole[1], received, message, source,
        fallback_host if host == "-" else intern(host), None if app == "-" else intern(app),
        None if procid == "-" else intern(procid), pri >> 3, pri & 7, None if msgid == "-" else intern(msgid),
        NO_SD, peer,
    )


def _usual_3164(text: str, received: float, source: str, peer: str | None, tz: tzinfo | None) -> LogRecord | None:
    """What `_parse` makes of the usual RFC 3164 line (rsyslog's traditional and high-precision forwarding
    formats, most daemons through syslog(3)), at half the cost; None for anything else."""
    m = _USUAL_3164.match(text)
    if m is None:
        return None
    pri_digits, mon, day, hh, mi, ss, stamp, frac, zone, host, app, pid, message = m.groups()
    pri = int(pri_digits)
    if pri > 191 or app.isdigit():
        return None
    ts: float | None
    if mon is not None:
        ts = rfc3164.wall(received, tz, zone=None, year=None, month=mon, day=day, hms=(hh, mi, ss), frac=None)
    else:
        whole = second_epoch(stamp, zone, tz)
        ts = None if whole is None else whole[0] + fraction(frac) - whole[1]
    if ts is None:
        return None
    return LogRecord(ts, received, message, source, intern(host), intern(app), None if pid is None else intern(pid),
                     pri >> 3, pri & 7, None, NO_SD, peer)


def _unparsed(
    text: str, error: str, *, received: float, source: str, peer: str | None, host: str | None,
    facility: int | None = None, severity: int | None = None,
) -> LogRecord:
    return LogRecord(
        ts=received, received=received, message=text, source=source, host=host, facility=facility,
        severity=severity, peer=peer, parse_error=error, raw=text,
    )


def _parse(
    text: str, received: float, *, source: str, peer: str | None, tz: tzinfo | None, fallback_host: str | None,
) -> LogRecord:
    if text[:1] != "<":
        p = rfc3164.parse(text, received, tz)
        return LogRecord(
            ts=received if p.ts is None else p.ts, received=received, message=p.message, source=source,
            host=p.host or fallback_host, app=p.app, pid=p.pid, facility=DEFAULT_FACILITY,
            severity=DEFAULT_SEVERITY, msgid=p.msgid, sd=p.sd, peer=peer, parse_error="missing PRI", raw=text,
        )
    end = text.find(">", 1, 5)
    digits = text[1:end] if end > 1 else ""
    if not (digits.isascii() and digits.isdigit()) or int(digits) > 191:
        return _unparsed(text, "invalid PRI", received=received, source=source, peer=peer, host=fallback_host)
    pri = int(digits)
    facility, severity = pri >> 3, pri & 7
    rest = text[end + 1 :]
    if rest[:2] == "1 ":
        try:
            q = rfc5424.parse(rest[2:], tz)
        except rfc5424.Rfc5424Error as e:
            return _unparsed(
                text, str(e), received=received, source=source, peer=peer, host=fallback_host,
                facility=facility, severity=severity,
            )
        return LogRecord(
            ts=received if q.ts is None else q.ts, received=received, message=q.message, source=source,
            host=q.host or fallback_host, app=q.app, pid=q.procid, facility=facility, severity=severity,
            msgid=q.msgid, sd=q.sd, peer=peer, parse_error=q.error, raw=text if q.error else None,
        )
    p = rfc3164.parse(rest, received, tz)
    return LogRecord(
        ts=received if p.ts is None else p.ts, received=received, message=p.message, source=source,
        host=p.host or fallback_host, app=p.app, pid=p.pid, facility=facility, severity=severity,
        msgid=p.msgid, sd=p.sd, peer=peer,
    )
