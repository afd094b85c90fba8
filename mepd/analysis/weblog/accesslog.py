"""Apache/nginx access-log lines (common, combined, vhost_combined) to fields.

One regular expression with no nested quantifier over the same characters, so
its cost is linear in the line whatever the line holds (a quoted string is the
unrolled `[^"\\]*(?:\\.[^"\\]*)*`, which cannot backtrack catastrophically).
Values are kept as logged (Apache's `\\"` escapes stay): reports show what the
server wrote, and nothing is lost for a reader who wants to unescape.

Real-world oddities accepted: a request of `"-"` or binary junk (status 400),
spaces inside the request target, escaped quotes in the user agent, IPv6
clients, an optional `vhost:port ` prefix (Apache's vhost_combined), a combined
line missing referer and agent, and extra fields after the agent (nginx logs
often append some).
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from typing import Any, Final, Literal

AccessFormat = Literal["combined", "common"]

FIELDS: Final = (
    "client", "ident", "user", "time", "method", "path", "query", "protocol",
    "status", "bytes", "referer", "agent", "vhost",
)

_QUOTED: Final = r'"([^"\\]*(?:\\.[^"\\]*)*)"'
ACCESS_LINE: Final = re.compile(
    r"(?:(\S+) )?(\S+) (\S+) (\S+) \[([^\]]*)\] "
    + _QUOTED
    + r" (\d{3}|-) (\d+|-)"
    + r"(?: " + _QUOTED + " " + _QUOTED + ")?"
)
# The common case (no vhost prefix, no backslash anywhere) costs half as much with
# plain quoted strings and no optional prefix; anything else falls back to ACCESS_LINE.
FAST_LINE: Final = re.compile(
    r'()(\S+) (\S+) (\S+) \[([^\]]*)\] "([^"]*)" (\d{3}|-) (\d+|-)(?: "([^"]*)" "([^"]*)")?'
)

_MONTHS: Final = {
    "Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6,
    "Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12,
}
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_MMSS: Final = {f"{m:02d}:{s:02d}": m * 60 + s for m in range(60) for s in range(61)}
_HOUR_STARTS: dict[str, int] = {}
"""Line time without its minutes and seconds -> epoch of that hour: a log has few hours and zones."""
_HOUR_STARTS_MAX: Final = 4096

Groups = tuple[str | Any, ...]
"""As `re` types Match.groups(): the optional ones (vhost, referer, agent) are None when absent."""


def access_groups(line: str, fmt: AccessFormat = "combined") -> tuple[int, Groups]:
    """(epoch seconds UTC, raw regex groups) of an access-log line; ValueError for anything else.

    The one verdict on a line, for the tail source (the live report) and the
    one-shot scan alike: a line of another shape, or whose bracketed time is
    not Apache's `10/Oct/2000:13:55:36 -0700` (an ISO time, say), is not a
    request, since nothing else says when it happened.  Groups are (vhost,
    client, ident, user, time, request, status, bytes, referer, agent); the
    hot path of the scan uses them directly and skips building a dict.
    `fmt` only names the format in the error.
    """
    m = FAST_LINE.match(line) if "\\" not in line else None
    if m is None:
        m = ACCESS_LINE.match(line)
        if m is None:
            raise ValueError(f"not a {fmt} access log line")
    groups = m.groups()
    t = groups[4] or ""
    # The start of the line's hour comes from a small cache; minutes and seconds from a table.
    key = t[:15] + t[20:]
    start = _HOUR_STARTS.get(key)
    try:
        if start is None:
            start = int(access_time(t[:15] + "00:00" + t[20:]))
            if len(_HOUR_STARTS) >= _HOUR_STARTS_MAX:
                _HOUR_STARTS.clear()
            _HOUR_STARTS[key] = start
        return start + _MMSS[t[15:20]], groups
    except (KeyError, ValueError):
        raise ValueError(f"bad time {t!r}") from None


def split_request(request: str) -> tuple[str, str, str, str]:
    """`GET /a?b=1 HTTP/1.1` -> (method, path, query, protocol).

    A request that is not `METHOD target [HTTP/x]` (a "-" from a client that sent
    nothing, TLS bytes on a plain port) gives method "" and the whole text as
    path, so reports still show what was asked.
    """
    parts = request.split(" ")
    n = len(parts)
    method = parts[0]
    if n < 2 or not method.isupper() or not method.isascii():
        return "", request, "", ""
    if n == 3 and parts[2].startswith("HTTP/"):
        target, protocol = parts[1], parts[2]
    elif n > 3 and parts[-1].startswith("HTTP/"):
        target, protocol = " ".join(parts[1:-1]), parts[-1]
    else:
        target, protocol = " ".join(parts[1:]), ""
    path, _, query = target.partition("?")
    return method, path, query, protocol


def parse_access_line(line: str, fmt: AccessFormat) -> tuple[int, dict[str, str]]:
    """(epoch seconds UTC, fields as strings) of one access-log line; ValueError when it is not one.

    The verdict is `access_groups`'.  `fmt` "common" ignores a referer and
    agent that may follow (they come out ""); "combined" accepts a line
    without them for the same reason: one misconfigured vhost should not make
    a whole log unreadable.  `bytes` is "0" for Apache's "-"; `vhost` is ""
    without the vhost_combined prefix.
    """
    ts, (vhost, client, ident, user, time, request, status, size, referer, agent) = access_groups(line, fmt)
    method, path, query, protocol = split_request(request or "")
    combined = fmt == "combined"
    return ts, {
        "client": client or "",
        "ident": ident or "",
        "user": user or "",
        "time": time or "",
        "method": method,
        "path": path,
        "query": query,
        "protocol": protocol,
        "status": status or "",
        "bytes": "0" if size == "-" else size or "0",
        "referer": (referer or "") if combined else "",
        "agent": (agent or "") if combined else "",
        "vhost": vhost or "",
    }


@lru_cache(maxsize=64)
def _day_epoch(day: str) -> int:
    """'10/Oct/2000' -> epoch seconds of that midnight UTC (cached: a log has few days)."""
    if len(day) != 11 or day[2] != "/" or day[6] != "/":
        raise ValueError(f"bad access-log date {day!r}")
    month = _MONTHS.get(day[3:6])
    if month is None:
        raise ValueError(f"bad access-log month in {day!r}")
    if not (day[:2].isdigit() and day[7:11].isdigit()):
        raise ValueError(f"bad access-log date {day!r}")
    return (date(int(day[7:11]), month, int(day[0:2])).toordinal() - _EPOCH_ORDINAL) * 86400


def access_time(text: str) -> float:
    """'10/Oct/2000:13:55:36 -0700' -> epoch seconds UTC; ValueError when malformed.

    Sliced by position rather than strptime (about 10x faster): the format is
    fixed by Apache and nginx alike.  A missing zone is read as UTC.
    """
    if len(text) < 20 or text[11] != ":" or text[14] != ":" or text[17] != ":":
        raise ValueError(f"bad access-log time {text!r}")
    hour, minute, second = text[12:14], text[15:17], text[18:20]
    if not (hour.isdigit() and minute.isdigit() and second.isdigit()):
        raise ValueError(f"bad access-log time {text!r}")
    if int(hour) > 23 or int(minute) > 59 or int(second) > 60:
        raise ValueError(f"access-log time out of range {text!r}")
    seconds = _day_epoch(text[:11]) + int(hour) * 3600 + int(minute) * 60 + int(second)
    zone = text[20:].strip()
    if not zone:
        return float(seconds)
    if len(zone) != 5 or zone[0] not in "+-" or not zone[1:].isdigit():
        raise ValueError(f"bad access-log time zone in {text!r}")
    offset = int(zone[1:3]) * 3600 + int(zone[3:5]) * 60
    return float(seconds - offset if zone[0] == "+" else seconds + offset)
