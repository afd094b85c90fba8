"""RFC 5424: `VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]`.

The header is split with str.split (C speed).  Structured data is matched by
small anchored regexes up to the first quote or backslash of a value; only
values holding escapes take the slower str.find loop, so no pattern ever has
to backtrack over escaped quotes.
"""

from __future__ import annotations

import re
from datetime import tzinfo
from typing import NamedTuple

from mepd.sources.syslog.common import ISO_TS, iso_epoch

BOM = "\ufeff"
_BAD_NAME = frozenset('= ]"')
# An SD-NAME is 1-32 printable characters except `= ]"`; a value runs to the first `"` or backslash
# (the escape path continues in _value).  Negated classes with bounds: linear matching.
_SD_ID = re.compile(r'\[([^ =\]"]{1,32})(?=[ \]])')
_PARAM = re.compile(r' ([^ =\]"]{1,32})="([^"\\]*)(["\\])')


class Rfc5424Error(ValueError):
    """The text after `<PRI>1 ` does not follow RFC 5424; the message says where."""


class Parsed5424(NamedTuple):
    ts: float | None
    host: str | None
    app: str | None
    procid: str | None
    msgid: str | None
    sd: dict[str, dict[str, str]]
    message: str
    error: str | None


def _nil(value: str) -> str | None:
    return None if value == "-" or not value else value


def _value(s: str, k: int, parts: list[str]) -> tuple[str, int]:
    """The rest of a PARAM-VALUE from index k (within it, after `parts`): (unescaped value, index after its quote)."""
    while True:
        q = s.find('"', k)
        if q < 0:
            raise Rfc5424Error("unterminated SD param value")
        b = s.find("\\", k, q)
        if b < 0:
            parts.append(s[k:q])
            return "".join(parts), q + 1
        parts.append(s[k:b])
        c = s[b + 1 : b + 2]
        if c in ('"', "\\", "]"):
            parts.append(c)
            k = b + 2
        else:  # any other backslash is an ordinary character (RFC 5424 6.3.3)
            parts.append("\\")
            k = b + 1


def _diagnose(s: str, j: int, sd_id: str) -> Rfc5424Error:
    """Why the SD element `sd_id` stops being valid at index j (only computed on the error path)."""
    if j >= len(s) or s[j] != " ":
        return Rfc5424Error(f"SD element {sd_id!r} not closed by ']'")
    eq = s.find("=", j + 1)
    if eq < 0:
        return Rfc5424Error("SD param without '='")
    name = s[j + 1 : eq]
    if not name or len(name) > 32 or not _BAD_NAME.isdisjoint(name):
        return Rfc5424Error(f"invalid SD param name {name[:40]!r}")
    if s[eq + 1 : eq + 2] != '"':
        return Rfc5424Error(f"SD param {name!r} value is not quoted")
    return Rfc5424Error("unterminated SD param value")


def parse_sd(s: str) -> tuple[dict[str, dict[str, str]], int]:
    """STRUCTURED-DATA at the start of `s`: (elements, index just after it)."""
    if s[:1] == "-":
        return {}, 1
    if s[:1] != "[":
        raise Rfc5424Error("structured data must be '-' or start with '['")
    sd: dict[str, dict[str, str]] = {}
    i = 0
    while s.startswith("[", i):
        m = _SD_ID.match(s, i)
        if m is None:
            raise Rfc5424Error(f"invalid SD ID at {s[i:i + 40]!r}")
        sd_id = m.group(1)
        params = sd.setdefault(sd_id, {})
        j = m.end()
        while (p := _PARAM.match(s, j)) is not None:
            name, value, stop = p.groups()
            if stop == '"':
                params[name], j = value, p.end()
            else:
                params[name], j = _value(s, p.end() - 1, [value])
        if not s.startswith("]", j):
            raise _diagnose(s, j, sd_id)
        i = j + 1
    return sd, i


def parse(rest: str, tz: tzinfo | None) -> Parsed5424:
    """Parse what follows `<PRI>1 `; raises Rfc5424Error when the header is unusable."""
    fields = rest.split(" ", 5)
    if len(fields) < 6:
        raise Rfc5424Error("RFC 5424 header is truncated")
    stamp, host, app, procid, msgid, tail = fields
    ts: float | None = None
    if stamp != "-":
        m = ISO_TS.fullmatch(stamp)
        ts = iso_epoch(m, tz) if m else None
        if ts is None:
            raise Rfc5424Error(f"invalid RFC 5424 timestamp {stamp[:40]!r}")
    error: str | None = None
    try:
        sd, end = parse_sd(tail)
    except Rfc5424Error as e:
        sd, error, message = {}, str(e), tail
    else:
        if end == len(tail):
            message = ""
        elif tail[end] == " ":
            message = tail[end + 1 :]
            if message[:1] == BOM:
                message = message[1:]
        else:
            sd, error, message = {}, "junk after structured data", tail
    return Parsed5424(ts, _nil(host), _nil(app), _nil(procid), _nil(msgid), sd, message, error)
