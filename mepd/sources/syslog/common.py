"""Pieces both syslog formats share: time arithmetic, peer addresses, the record builder.

Timestamps are turned into epoch seconds with integer calendar arithmetic and
a per-hour cache of local-zone offsets, because building a timezone-aware
datetime for every message would dominate the parse time.
"""

from __future__ import annotations

import functools
import re
import socket
from datetime import datetime, tzinfo
from typing import Final

MONTHS: Final = {
    name: i + 1
    for i, name in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"))
}
_MDAYS: Final = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_YEAR_SECONDS: Final = 365.2425 * 86400
FUTURE_SKEW: Final = 7 * 86400

# RFC 3339 as RFC 5424 and rsyslog's forwarding formats write it.  Lenient on
# purpose: lower-case t/z, up to 9 fraction digits, and a missing offset (then
# the listener's zone applies).  Fixed-width fields: no backtracking.
ISO_TS: Final = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d\d):?(\d\d))?"
)


def days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def valid_date(y: int, m: int, d: int) -> bool:
    if not 1 <= m <= 12 or d < 1:
        return False
    if m == 2 and d == 29:
        return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    return d <= _MDAYS[m - 1]


def seconds(hh: int, mm: int, ss: int) -> int | None:
    """Seconds since midnight, or None for an impossible time (60 is a leap second: the next minute)."""
    return hh * 3600 + mm * 60 + ss if hh < 24 and mm < 60 and ss <= 60 else None


def utc_epoch(y: int, m: int, d: int, secs: int) -> int:
    return days_from_civil(y, m, d) * 86400 + secs


@functools.lru_cache(maxsize=8192)
def _local_hour(tz: tzinfo | None, y: int, m: int, d: int, hh: int) -> float:
    """Epoch of the start of a local hour; None is the machine's zone (naive datetimes are local)."""
    return datetime(y, m, d, hh, tzinfo=tz).timestamp()


def local_epoch(tz: tzinfo | None, y: int, m: int, d: int, secs: int) -> float:
    """A wall-clock time (`secs` since midnight) in `tz` as epoch seconds; offsets are assumed to change on the hour."""
    hh = min(secs // 3600, 23)  # 23:59:60 stays in hour 23
    return _local_hour(tz, y, m, d, hh) + secs - hh * 3600


def resolve_year(tz: tzinfo | None, received: float, m: int, d: int, secs: int) -> float | None:
    """Give a year-less stamp the latest year that does not put it in the future.

    So a "Dec 31 23:59:59" received on January 1st is last year's.  A few days
    of sender clock skew are tolerated: "Jan 1 00:00:01" received on December
    31st is next year's.
    """
    year = 1970 + int(received // _YEAR_SECONDS)  # within one year of the local one: the loop covers it
    limit = received + FUTURE_SKEW
    for y in range(year + 2, year - 3, -1):
        if valid_date(y, m, d):
            t = local_epoch(tz, y, m, d, secs)
            if t <= limit:
                return t
    return None


def fraction(digits: str | None) -> float:
    return int(digits) / 10 ** len(digits) if digits else 0.0


def iso_epoch(match: re.Match[str], tz: tzinfo | None) -> float | None:
    """Epoch seconds of an ISO_TS match, or None when the date or time is impossible."""
    y, mo, d, hh, mi, ss = (int(match.group(i)) for i in range(1, 7))
    secs = seconds(hh, mi, ss)
    if secs is None or not valid_date(y, mo, d):
        return None
    frac = fraction(match.group(7))
    if match.group(8):
        return utc_epoch(y, mo, d, secs) + frac
    sign = match.group(9)
    if sign:
        offset = int(match.group(10)) * 3600 + int(match.group(11)) * 60
        return utc_epoch(y, mo, d, secs) - (offset if sign == "+" else -offset) + frac
    return local_epoch(tz, y, mo, d, secs) + frac


@functools.lru_cache(maxsize=1)
def _local_hostname() -> str:
    return socket.gethostname()


@functools.lru_cache(maxsize=4096)
def peer_host(peer: str | None) -> str | None:
    """The host part of "ip:port" / "[v6]:port"; a Unix socket path means this machine."""
    if not peer:
        return None
    if peer[0] == "[":
        end = peer.find("]")
        return peer[1:end] if end > 0 else peer
    if peer[0] == "/" or peer[0] == "@":
        return _local_hostname()
    host, sep, port = peer.rpartition(":")
    if sep and port.isdigit() and host and ":" not in host:
        return host
    return peer
