"""Property: the RELP frame parser, fed any bytes in any pieces, returns frames or raises RelpFrameError, and
well-formed frames come back whole however the stream is cut."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mepd.sources.syslog.relp import Frame, FrameParser, RelpFrameError

_PIECES = st.sampled_from([b"1", b"0", b"999999999", b"1234567890", b" ", b"\n", b"syslog", b"open", b"rsp",
                           b"x" * 33, b"5", b"hello", b"2147483648", b"\x00", b"-1"])
_STREAM = st.lists(st.one_of(_PIECES, st.binary(max_size=8)), max_size=30).map(b"".join)
_FRAME = st.builds(Frame, st.integers(0, 999_999_999), st.from_regex(r"\A[A-Za-z]{1,32}\Z"),
                   st.binary(max_size=300))


def _cuts(data: bytes, sizes: list[int]) -> list[bytes]:
    out, pos = [], 0
    for size in sizes:
        out.append(data[pos : pos + size])
        pos += size
    return [*out, data[pos:]]


def _encode(frame: Frame) -> bytes:
    head = b"%d %s %d" % (frame.txnr, frame.command.encode(), len(frame.data))
    return head + (b" " + frame.data if frame.data else b"") + b"\n"


@settings(max_examples=1000)
@given(_STREAM, st.lists(st.integers(0, 40), max_size=10))
def test_any_bytes_in_any_pieces(data: bytes, sizes: list[int]) -> None:
    parser = FrameParser(max_data=1000)
    reason = ""
    try:
        for piece in _cuts(data, sizes):
            for frame in parser.feed(piece):
                assert 0 <= frame.txnr <= 999_999_999
                assert len(frame.data) <= 1000
    except RelpFrameError as e:
        reason = str(e) or "an empty reason"
    assert reason != "an empty reason"
    assert len(parser.buf) <= len(data)


@settings(max_examples=500)
@given(st.lists(_FRAME, max_size=8), st.lists(st.integers(0, 60), max_size=12))
def test_well_formed_frames_come_back_whole(frames: list[Frame], sizes: list[int]) -> None:
    parser = FrameParser(max_data=1000)
    got: list[Frame] = []
    for piece in _cuts(b"".join(map(_encode, frames)), sizes):
        got += parser.feed(piece)
    assert got == frames
    assert parser.buf == b""
