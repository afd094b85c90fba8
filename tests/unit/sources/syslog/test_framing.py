"""RFC 6587 framing as a TCP sender may mix it: octet counting, LF, NUL, CRLF, oversized frames."""

from __future__ import annotations

import asyncio

import pytest

from mepd.sources.syslog.framing import FrameReader


async def frames(data: bytes, limit: int = 100, chunk: int = 7) -> list[tuple[bytes, int]]:
    reader = asyncio.StreamReader()
    for i in range(0, len(data), chunk):
        reader.feed_data(data[i:i + chunk])
    reader.feed_eof()
    fr = FrameReader(reader, limit)
    out = []
    while (frame := await fr.next_frame()) is not None:
        out.append((frame, fr.oversized))
    return out


@pytest.mark.parametrize("chunk", [1, 3, 7, 1000])
async def test_mixed_framings_on_one_connection(chunk: int) -> None:
    data = b"11 <13>1 - a b\n<13>lf one\n<13>nul two\x00<13>crlf\r\n5 12345<13>last no newline"
    assert await frames(data, chunk=chunk) == [
        (b"<13>1 - a b", 0), (b"<13>lf one", 0), (b"<13>nul two", 0), (b"<13>crlf", 0), (b"12345", 0),
        (b"<13>last no newline", 0),
    ]


async def test_octet_counted_frame_may_contain_newlines() -> None:
    assert await frames(b"11 <13>a\nb\nc d\n") == [(b"<13>a\nb\nc d", 0)]


async def test_oversized_frames_are_cut_and_the_rest_kept() -> None:
    long_lf = b"<13>" + b"x" * 300 + b"\n"
    long_counted = b"304 <13>" + b"y" * 300
    result = await frames(long_lf + long_counted + b"<13>after\n", limit=50)
    assert result == [(b"<13>" + b"x" * 46, 304), (b"<13>" + b"y" * 46, 304), (b"<13>after", 0)]


async def test_digits_without_length_prefix_are_a_plain_line() -> None:
    assert await frames(b"123abc\n") == [(b"123abc", 0)]


async def test_truncated_counted_frame_at_eof() -> None:
    assert await frames(b"50 <13>short") == [(b"<13>short", 0)]
