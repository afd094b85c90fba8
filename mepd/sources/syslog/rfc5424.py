"""RFC 5424: `VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]`.

The header is split with str.split (C speed); structured data is scanned with
str.find rather than a regex, since param values may hold escaped quotes and
brackets that a regex would have to backtrack over.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import NamedTuple

from mepd.sources.syslog.common import ISO_TS, iso_epoch

BOM = "\ufeff"
_BAD_NAME = frozenset('= ]"')


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


def _name(s: str, start: int, end: int, what: str) -> str:
    name = s[start:end]
    if not name or len(name) > 32 or not _BAD_NAME.isdisjoint(name):
        raise Rfc5424Error(f"invalid SD {what} {name[:40]!r}")
    return name


def _value(s: str, k: int) -> tuple[str, int]:
    """A PARAM-VALUE starting just after its opening quote: (unescaped value, index after the closing quote)."""
    parts: list[str] = []
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


def parse_sd(s: str) -> tuple[dict[str, dict[str, str]], int]:
    """STRUCTURED-DATA at the start of `s`: (elements, index just after it)."""
    if s[:1] == "-":
        return {}, 1
    sd: dict[str, dict[str, str]] = {}
    i, n = 0, len(s)
    if s[:1] != "[":
        raise Rfc5424Error("structured data must be '-' or start with '['")
    while i < n and s[i] == "[":
        j = i + 1
        while j < n and s[j] != " " and s[j] != "]":
            j += 1
        sd_id = _name(s, i + 1, j, "ID")
        params = sd.setdefault(sd_id, {})
        while j < n and s[j] == " ":
            eq = s.find("=", j + 1)
            if eq < 0:
                raise Rfc5424Error("SD param without '='")
            pname = _name(s, j + 1, eq, "param name")
            if s[eq + 1 : eq + 2] != '"':
                raise Rfc5424Error(f"SD param {pname!r} value is not quoted")
            params[pname], j = _value(s, eq + 2)
        if j >= n or s[j] != "]":
            raise Rfc5424Error(f"SD element {sd_id!r} not closed by ']'")
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
