"""Property: the syslog parser never raises and never loses the text, whatever arrives."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

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
