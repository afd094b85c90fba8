"""RFC 6587 framing as a TCP sender may mix it: octet counting, LF, NUL, CRLF, oversized frames."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mepd.sources.syslog.framing import FrameSplitter


def frames(data: bytes, limit: int = 100, chunk: int = 7) -> list[tuple[bytes, int]]:
    splitter = FrameSplitter(limit)
    out = []
    for i in range(0, len(data), chunk):
        out += splitter.feed(data[i:i + chunk])
    return out + splitter.finish()


@pytest.mark.parametrize("chunk", [1, 3, 7, 1000])
def test_mixed_framings_on_one_connection(chunk: int) -> None:
    data = b"11 <13>1 - a b\n<13>lf one\n<13>nul two\x00<13>crlf\r\n5 <1>45<13>last no newline"
    assert frames(data, chunk=chunk) == [
        (b"<13>1 - a b", 0), (b"<13>lf one", 0), (b"<13>nul two", 0), (b"<13>crlf", 0), (b"<1>45", 0),
        (b"<13>last no newline", 0),
    ]


def test_octet_counted_frame_may_contain_newlines() -> None:
    assert frames(b"11 <13>a\nb\nc d\n") == [(b"<13>a\nb\nc d", 0)]


@pytest.mark.parametrize("chunk", [1, 5, 1000])
def test_oversized_frames_are_cut_and_the_rest_kept(chunk: int) -> None:
    long_lf = b"<13>" + b"x" * 300 + b"\n"
    long_counted = b"304 <13>" + b"y" * 300
    long_nul = b"<13>" + b"z" * 100 + b"\0"
    result = frames(long_lf + long_counted + long_nul + b"<13>after\n", limit=50, chunk=chunk)
    assert result == [(b"<13>" + b"x" * 46, 304), (b"<13>" + b"y" * 46, 304), (b"<13>" + b"z" * 46, 104),
                      (b"<13>after", 0)]


def test_oversized_line_cut_at_end_of_stream() -> None:
    assert frames(b"<13>" + b"x" * 96, limit=50) == [(b"<13>" + b"x" * 46, 100)]


def test_digits_without_length_prefix_are_a_plain_line() -> None:
    assert frames(b"123abc\n") == [(b"123abc", 0)]
    assert frames(b"12345678901234 starts with digits\n", limit=100) == [
        (b"12345678901234 starts with digits", 0)]


@pytest.mark.parametrize("chunk", [1, 4, 1000])
def test_a_line_starting_with_a_number_does_not_swallow_the_connection(chunk: int) -> None:
    """rsyslog's fallback: without a PRI after `LEN SP`, it is no length but a line (a message without PRI)."""
    data = b"<13>ok1\n123456789 starts with a number\n99999999999 x\n" + b"".join(
        b"<13>msg %d\n" % i for i in range(50))
    assert frames(data, chunk=chunk) == [
        (b"<13>ok1", 0), (b"123456789 starts with a number", 0), (b"99999999999 x", 0),
        *((b"<13>msg %d" % i, 0) for i in range(50))]


def test_truncated_counted_frame_at_eof() -> None:
    assert frames(b"50 <13>short") == [(b"<13>short", 0)]


def test_frames_come_out_as_soon_as_complete() -> None:
    splitter = FrameSplitter(100)
    assert splitter.feed(b"<13>one\n<13>tw") == [(b"<13>one", 0)]
    assert splitter.feed(b"o\n9 <13>thr") == [(b"<13>two", 0)]
    assert splitter.feed(b"ee") == [(b"<13>three", 0)]
    assert splitter.finish() == []


@given(st.lists(st.binary(min_size=1, max_size=120).filter(lambda b: not b[:1].isdigit()), max_size=20),
       st.integers(min_value=1, max_value=50), st.booleans())
def test_any_chunking_gives_the_same_frames(messages: list[bytes], chunk: int, counted: bool) -> None:
    """Octet-counted frames come back byte for byte; every split of the stream gives the same frames."""
    if counted:  # an octet-counted message starts with its PRI
        messages = [b"<" + m for m in messages]
        data = b"".join(b"%d %s" % (len(m), m) for m in messages)
    else:
        data = b"".join(m.replace(b"\n", b" ").replace(b"\0", b" ") + b"\n" for m in messages)
    whole = frames(data, limit=80, chunk=len(data) or 1)
    assert frames(data, limit=80, chunk=chunk) == whole
    if counted:
        assert whole == [(m[:80], len(m) if len(m) > 80 else 0) for m in messages]
