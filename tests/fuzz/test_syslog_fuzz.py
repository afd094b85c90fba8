"""Property: the syslog parser never raises and never loses the text, whatever arrives."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from mepd.sources.syslog import rfc3164
from mepd.sources.syslog.parse import decode, parse_message

RECEIVED = 1709640000.0

# Fragments that steer random input into the deeper branches (PRI, stamps, SD, Cisco).
_PIECES = st.sampled_from([
    "<", ">", "<13>", "<189>", "<14>1 ", "1 ", "- ", "[", "]", '"', "\\", "=", " ", ":", ": ", "%", "*", ".",
    "Mar", "Feb 29", " 1 ", "12:00:00", ".123", "2024-03-05T12:00:00", "Z", "+01:00", "host", "app[1]",
    "a@1", 'x="y"', "\ufeff", "\udcff", "\x00", "\n", "123: ", "UTC", "%SYS-5-X: ", "2024 ",
])
_SYSLOGISH = st.lists(st.one_of(_PIECES, st.text(max_size=8)), max_size=30).map("".join)


def _check(data: bytes) -> None:
    rec = parse_message(data, received=RECEIVED, source="syslog/udp", peer="192.0.2.1:514")
    text = decode(data)
    assert text.endswith(rec.message)
    if rec.parse_error is not None:
        assert rec.raw == text
        assert not rec.parse_error.startswith("parser failure")  # the safety net must not be what catches it
    assert math.isfinite(rec.ts)
    assert rec.facility is None or 0 <= rec.facility <= 23
    assert rec.severity is None or 0 <= rec.severity <= 7
    assert rec.host is not None


@settings(max_examples=1000)
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    _check(data)


@settings(max_examples=1500)
@given(_SYSLOGISH)
def test_syslog_like_text(text: str) -> None:
    _check(text.encode("utf-8", "surrogatepass"))


def _one_of(*options: str) -> st.SearchStrategy[str]:
    return st.sampled_from(options)


# Lines shaped like `Mmm dd hh:mm:ss host tag[pid]: msg`, each part sometimes slightly wrong.
_TEXTBOOKISH = st.tuples(
    _one_of("Mar", "Feb", "Dec", "mar", "Xyz", "2024 Mar"),
    _one_of(" ", "  "),
    _one_of("5", "05", "29", "31", "30", "0"),
    _one_of(" "),
    _one_of("12:00:00", "00:00:00", "24:00:00", "12:00:60", "12:60:00", "1:00:00", "12:00:00.5", "12:00:00 2024"),
    _one_of(" "),
    _one_of("host", "h-1.example", "2024", "12345", "fe80::1", "%X", "a[1]", "app:"),
    _one_of(" ", "  ", ""),
    _one_of("app", "sshd", "12345", "a/b", "a=b", "%X-1-Y", "", "x" * 65),
    _one_of("", "[12]", "[]", "[x]"),
    _one_of(": ", ":", " ", ": : "),
    _one_of("msg", "", "a: b", "*Mar  1 00:00:00: %X-1-Y: z"),
).map("".join)


@settings(max_examples=1500)
@given(_TEXTBOOKISH)
def test_textbook_fast_path_agrees_with_general_path(text: str) -> None:
    assert rfc3164.parse(text, RECEIVED, None) == rfc3164.parse_general(text, RECEIVED, None)
