"""Pieces both syslog formats share: time arithmetic and peer addresses (parse.py builds the records).

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
    r"(\d{4}-\d\d-\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d\d):?(\d\d))?"
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


@functools.lru_cache(maxsize=8192)
def wall_hour(tz: tzinfo | None, y: int, m: int, d: int, hh: int) -> float | None:
    """Epoch of the start of a local hour (None for an impossible date); tz None is the machine's zone.

    Offsets are assumed to change on the hour, which holds for every zone but
    a handful of half-hour DST shifts.
    """
    if not valid_date(y, m, d) or not 0 <= hh <= 23:
        return None
    return datetime(y, m, d, hh, tzinfo=tz).timestamp()  # a naive datetime is in the local zone


def resolved_hour(tz: tzinfo | None, m: int, d: int, hh: int, received_hour: int) -> float | None:
    """Like wall_hour for a year-less stamp: the latest year that does not put it in the future.

    So a "Dec 31 23:59:59" received on January 1st is last year's.  A few days
    of sender clock skew are tolerated (counted from the start of the hour of
    reception): "Jan 1 00:00:01" received on December 31st is next year's.
    """
    limit = received_hour * 3600 + FUTURE_SKEW
    year = 1970 + int(limit // _YEAR_SECONDS)  # off by at most one from the local year: start above it
    for y in range(year + 1, year - 9, -1):  # Feb 29 may be up to 8 years back
        t = wall_hour(tz, y, m, d, hh)
        if t is not None and t <= limit:
            return t
    return None


@functools.lru_cache(maxsize=4096)
def _utc_day(date: str) -> int | None:
    y, m, d = int(date[:4]), int(date[5:7]), int(date[8:10])
    return days_from_civil(y, m, d) * 86400 if valid_date(y, m, d) else None


def fraction(digits: str | None) -> float:
    return int(digits) / 10 ** len(digits) if digits else 0.0


def iso_epoch(match: re.Match[str], tz: tzinfo | None) -> float | None:
    """Epoch seconds of an ISO_TS match (its first 9 groups), or None when the date or time is impossible."""
    date, hh, mi, ss, frac, zulu, sign, off_h, off_m = match.group(1, 2, 3, 4, 5, 6, 7, 8, 9)
    whole = _whole_second(date, hh, mi, ss, zulu, sign, off_h, off_m, tz)
    if whole is None:
        return None
    t, offset = whole
    return t + fraction(frac) - offset


@functools.lru_cache(maxsize=4096)
def second_epoch(stamp: str, zone: str | None, tz: tzinfo | None) -> tuple[float, int] | None:
    """`_whole_second` of "YYYY-MM-DDThh:mm:ss" and its zone suffix, cached on those two strings."""
    m = ISO_TS.fullmatch(stamp + zone if zone else stamp)
    if m is None:
        return None
    date, hh, mi, ss, _, zulu, sign, off_h, off_m = m.groups()
    return _whole_second(date, hh, mi, ss, zulu, sign, off_h, off_m, tz)


@functools.lru_cache(maxsize=4096)
def _whole_second(
    date: str, hh: str, mi: str, ss: str, zulu: str | None, sign: str | None, off_h: str | None, off_m: str | None,
    tz: tzinfo | None,
) -> tuple[float, int] | None:
    """(epoch of the second before its UTC offset, the offset): a busy sender repeats a second many times."""
    secs = seconds(int(hh), int(mi), int(ss))
    if secs is None:
        return None
    if zulu or sign:
        day = _utc_day(date)
        if day is None:
            return None
        offset = int(off_h or 0) * 3600 + int(off_m or 0) * 60
        return day + secs, (offset if sign == "+" else -offset)
    hour = min(int(hh), 23)  # 23:59:60 stays in hour 23
    base = wall_hour(tz, int(date[:4]), int(date[5:7]), int(date[8:10]), hour)
    return None if base is None else (base + secs - hour * 3600, 0)


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
