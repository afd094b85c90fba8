"""RFC 3164 ("BSD syslog") as devices actually send it.

The RFC only describes `TIMESTAMP SP HOSTNAME SP TAG[PID]: MSG`; in practice
any part may be missing, and the timestamp comes in several shapes.  Each step
below looks at the next token and consumes it only when it is unambiguous, so
what is not understood stays in the message instead of being lost:

- Cisco IOS: `123: router: *Mar  1 18:48:50.483 UTC: %SYS-5-CONFIG_I: ...`
  (sequence number -> sd meta.sequenceId, optional origin -> host, the
  device's time taken whatever its clock marker, as rsyslog's pmciscoios does,
  and its `*` (never set) or `.` (lost NTP sync) -> sd timeQuality.isSynced=0,
  `%FAC-SEV-MNEMONIC` -> msgid, kept in message);
- timestamps `Mmm dd hh:mm:ss[.frac]` (with one or two spaces before a
  one-digit day, optional year before or after the time, optional zone),
  `YYYY Mmm dd hh:mm:ss` (NX-OS) and RFC 3339 (rsyslog's forwarding format);
- a missing HOSTNAME (the next token is a tag) or TAG (no `:` or `[pid]`),
  and numeric-only tags (relayed Cisco sequence numbers).

Year-less stamps get the year that puts them closest to reception time, in the
listener's zone.  Every pattern is anchored and made of fixed or bounded
character classes, so matching is linear.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, tzinfo
from typing import Final, NamedTuple

from mepd.sources.syslog.common import (
    ISO_TS,
    MONTHS,
    fraction,
    iso_epoch,
    resolved_hour,
    wall_hour,
)

_BSD_TS: Final = re.compile(
    r"([A-Za-z]{3}) {1,2}(\d{1,2})(?: (\d{4}))? (\d{1,2}):(\d\d):(\d\d)(?:\.(\d{1,9}))?"
    r"(?: (\d{4})(?= |$))?(?: ([A-Z]{2,5})(?=: %))?:?"
)
_YEAR_FIRST_TS: Final = re.compile(
    r"(\d{4}) ([A-Za-z]{3}) {1,2}(\d{1,2}) (\d{1,2}):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?: ([A-Z]{2,5})(?=: %))?:?"
)
_SEQ: Final = re.compile(r"(\d{1,20}):(?: |$)")
_ORIGIN: Final = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.\-]{0,254}): (?=[*.]?[A-Z][a-z][a-z] )")
_HOST: Final = re.compile(r"[A-Za-z0-9_.\-:%@/\[\]]{1,255}(?= |$)")
_TAG: Final = re.compile(r"([^\s:\[\]=\",]{1,64})(?:\[([^\]\s]{0,64})\])?(:)?")
_MNEMONIC: Final = re.compile(r"%([A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)*-\d-[A-Za-z0-9_]+):")
# The common case in one match.  The host may not be a 4-digit number (the
# general path reads that as a year) and the tag must be followed by ": ".
_TEXTBOOK: Final = re.compile(
    r"([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d) (?!\d{4} )([A-Za-z0-9_.\-]{1,255}) "
    r"([^\s:\[\]=\",%]{1,64})(?:\[(\d{1,20})\])?: "
)
_UTC_NAMES: Final = frozenset(("UTC", "GMT", "UT", "Z", "utc", "gmt"))


class Parsed3164(NamedTuple):
    ts: float | None
    host: str | None
    app: str | None
    pid: str | None
    msgid: str | None
    sd: dict[str, dict[str, str]]
    message: str


class _Stamp(NamedTuple):
    ts: float
    end: int
    marker: str  # "*" or "." before the stamp: the device's clock is not synchronised


@functools.lru_cache(maxsize=8192)
def bsd_hour(tz: tzinfo | None, stamp: tuple[str, str, str | None, str], received_hour: int) -> float | None:
    """Epoch of the start of the stamp's hour (month, day, year, hour), cached: a sender repeats it for an hour."""
    month, day, year, hh = stamp
    mo = MONTHS.get(month) or MONTHS.get(month.capitalize(), 0)
    if not mo:
        return None
    if year is None:
        return resolved_hour(tz, mo, int(day), int(hh), received_hour)
    return wall_hour(tz, int(year), mo, int(day), int(hh))


def wall(
    received: float, tz: tzinfo | None, *, zone: str | None, year: str | None, month: str, day: str,
    hms: tuple[str, str, str], frac: str | None,
) -> float | None:
    """A BSD-style stamp: a zone named UTC/GMT overrides the listener's `tz`; no year means resolve it."""
    hh, mi, ss = hms
    minutes, secs = int(mi), int(ss)
    if minutes > 59 or secs > 60:
        return None
    base = bsd_hour(UTC if zone in _UTC_NAMES else tz, (month, day, year, hh), 0 if year else int(received // 3600))
    return None if base is None else base + minutes * 60 + secs + fraction(frac)


def _timestamp(s: str, i: int, received: float, tz: tzinfo | None) -> _Stamp | None:
    marker = s[i : i + 1]
    if marker in ("*", "."):
        i += 1
    else:
        marker = ""
    c = s[i : i + 1]
    ts: float | None
    if c.isascii() and c.isalpha():
        m = _BSD_TS.match(s, i)
        if m is None:
            return None
        mon, day, year, hh, mi, ss, frac, year_after, zone = m.groups()
        ts = wall(received, tz, zone=zone, year=year or year_after, month=mon, day=day, hms=(hh, mi, ss), frac=frac)
    elif c.isascii() and c.isdigit():
        if (iso := ISO_TS.match(s, i)) is not None:
            return _iso_stamp(s, iso, tz, marker)
        m = _YEAR_FIRST_TS.match(s, i)
        if m is None:
            return None
        year, mon, day, hh, mi, ss, frac, zone = m.groups()
        ts = wall(received, tz, zone=zone, year=year, month=mon, day=day, hms=(hh, mi, ss), frac=frac)
    else:
        return None
    if ts is None or not _ends(s, m.end()):
        return None
    return _Stamp(ts, m.end(), marker)


def _iso_stamp(s: str, m: re.Match[str], tz: tzinfo | None, marker: str) -> _Stamp | None:
    ts = iso_epoch(m, tz)
    end = m.end() + (s[m.end() : m.end() + 1] == ":")
    if ts is None or not _ends(s, end):
        return None
    return _Stamp(ts, end, marker)


def _ends(s: str, end: int) -> bool:
    return end == len(s) or s[end] == " "


def _skip_space(s: str, i: int) -> int:
    return i + 1 if s[i : i + 1] == " " else i


def _relayed_cisco(rest: str, i: int, received: float, tz: tzinfo | None, sd: dict[str, dict[str, str]]) -> int:
    """Skip the sequence number and device clock of a relayed Cisco line (`host 123: *Mar ...`), noting them in sd."""
    seq = _SEQ.match(rest, i)
    if seq is None:
        return i
    sd["meta"] = {"sequenceId": seq.group(1)}
    inner = _timestamp(rest, seq.end(), received, tz)
    if inner is None:
        return seq.end()
    if inner.marker:
        sd["timeQuality"] = {"isSynced": "0"}
    return _skip_space(rest, inner.end)


def parse(rest: str, received: float, tz: tzinfo | None) -> Parsed3164:
    """Parse what follows `<PRI>`; never fails (what is not understood stays in the message).

    The textbook line `Mmm dd hh:mm:ss host tag[pid]: msg` is matched by one
    regex; everything else takes the step-by-step path, which gives the same
    result for those lines (a property test checks it).
    """
    m = _TEXTBOOK.match(rest)
    if m is not None:
        mon, day, hh, mi, ss, host, app, pid = m.groups()
        if not app.isdigit():
            ts = wall(received, tz, zone=None, year=None, month=mon, day=day, hms=(hh, mi, ss), frac=None)
            if ts is not None:
                return Parsed3164(ts, host, app, pid, None, {}, rest[m.end() :])
    return parse_general(rest, received, tz)


def parse_general(rest: str, received: float, tz: tzinfo | None) -> Parsed3164:
    """The step-by-step parse of every variant."""
    sd: dict[str, dict[str, str]] = {}
    host: str | None = None
    i = 0
    seq = _SEQ.match(rest)
    if seq is None and rest.startswith(": "):  # NX-OS: `<189>: 2024 Mar  1 ...`
        i = 2
    elif seq is not None:
        sd["meta"] = {"sequenceId": seq.group(1)}
        i = seq.end()
        origin = _ORIGIN.match(rest, i)
        if origin is not None:
            host, i = origin.group(1), origin.end()
    stamp = _timestamp(rest, i, received, tz)
    ts: float | None = None
    if stamp is not None:
        ts, i = stamp.ts, _skip_space(rest, stamp.end)
        if stamp.marker:
            sd["timeQuality"] = {"isSynced": "0"}
        if host is None:
            h = _HOST.match(rest, i)
            if h is not None and h.group()[-1] != ":" and h.group()[0] != "%" and "[" not in h.group():
                host, i = h.group(), _skip_space(rest, h.end())
                if rest.startswith(": ", i):  # Cisco ASA: `asa1 : %ASA-...`
                    i += 2
        if seq is None:
            i = _relayed_cisco(rest, i, received, tz, sd)
    if rest.startswith("%", i):
        mnemonic = _MNEMONIC.match(rest, i)
        return Parsed3164(ts, host, None, None, mnemonic.group(1) if mnemonic else None, sd, rest[i:])
    tag = _TAG.match(rest, i)
    if tag is not None:
        name, pid, colon = tag.groups()
        end = tag.end()
        if (colon or pid is not None) and (colon or _ends(rest, end)):
            return Parsed3164(ts, host, name, pid or None, None, sd, rest[_skip_space(rest, end) :])
    return Parsed3164(ts, host, None, None, None, sd, rest[i:])
