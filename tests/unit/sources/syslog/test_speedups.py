"""The C speedups (`_speedups.c`) give exactly what the pure Python path gives, frame for frame and record
for record: on the whole parser corpus, on random bytes, and on syslog lines built from parts that are each
sometimes wrong (a digit that is not ASCII, invalid UTF-8, a control character, a field one past its bound).

Without the extension these tests skip, unless MEPD_REQUIRE_SPEEDUPS=1 (set by `make test`) says it must be
there.  The other syslog tests run whichever path is in use; `MEPD_PURE=1` runs them on the pure one.
"""

from __future__ import annotations

import os
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mepd.model import LogRecord
from mepd.sources.syslog import native
from mepd.sources.syslog.framing import FrameSplitter
from mepd.sources.syslog.parse import parse_many
from tests.unit.sources.syslog.test_syslog_corpus import DEFAULT_PEER, DEFAULT_RECEIVED, ENTRIES, _epoch

pytestmark = pytest.mark.skipif(
    native.parse_many is None and not os.environ.get("MEPD_REQUIRE_SPEEDUPS"),
    reason="the C speedups are not built (or MEPD_PURE is set)",
)

RECEIVED = 1709640000.0  # 2024-03-05T12:00:00Z
PARIS = ZoneInfo("Europe/Paris")


def test_the_speedups_are_in_use() -> None:
    assert native.datagrams is not None  # compared with the pure path in test_server.py's read_datagrams tests
    assert native.frames is not None
    assert native.parse_many is not None


def slots(rec: LogRecord) -> list[Any]:
    """Every field, those left out of == (cursor, on_stored) included."""
    return [getattr(rec, name) for name in rec.__slots__]


def same(frames: list[bytes], *, received: float = RECEIVED, peer: str | None = DEFAULT_PEER,
         tz: tzinfo | None = None, peer_as_host: bool = True) -> list[LogRecord]:
    """Both paths on one burst: asserts they agree, returns the records."""
    kw: dict[str, Any] = {"received": received, "source": "syslog/tcp", "peer": peer, "tz": tz,
                          "peer_as_host": peer_as_host}
    fast = parse_many(frames, **kw)
    pure = parse_many(frames, **kw, pure=True)
    assert [slots(r) for r in fast] == [slots(r) for r in pure]
    assert [type(r.ts) for r in fast] == [float] * len(frames)
    return fast


@pytest.mark.parametrize("entry", ENTRIES, ids=[f"{i}:{e['from'][:50]}" for i, e in enumerate(ENTRIES)])
def test_corpus_line(entry: dict[str, Any]) -> None:
    data = entry["input"].encode("utf-8")
    received = _epoch(entry.get("received", DEFAULT_RECEIVED))
    for tz in (ZoneInfo(entry.get("tz", "UTC")), None, PARIS):
        same([data], received=received, peer=entry.get("peer", DEFAULT_PEER), tz=tz,
             peer_as_host=entry.get("peer_as_host", True))


def test_whole_corpus_in_one_burst() -> None:
    """One call for all: what one parse remembers for the next (hour bases, repeated fields) changes nothing."""
    same([e["input"].encode("utf-8") for e in ENTRIES] * 2, tz=PARIS)


def test_usual_messages_are_parsed_in_c() -> None:
    """The shapes the C code is for never reach the Python fallback."""
    assert native.parse_many is not None

    def slow(*args: object) -> LogRecord:
        raise AssertionError(f"left to Python: {args[0]!r}")

    frames = [
        b"<134>1 2024-03-05T11:58:01.123456Z bench-host benchapp 4242 ID47 - seq=1 user=alice",
        b"<165>1 2024-03-05T11:58:01+01:00 h - - - -",
        b"<13>1 2024-03-05T11:58:01 h app 1 - - \xef\xbb\xbfwith BOM, local time",
        b"<38>Mar  5 11:58:01 bastion sshd[2211]: Accepted publickey for deploy",
        b"<38>Dec 31 23:59:59 bastion cron: last year's",
        b"<30>2024-03-05T11:58:01.5+01:00 web1 nginx[1]: rsyslog's forwarding format",
    ]
    recs = native.parse_many(frames, RECEIVED, "syslog/tcp", DEFAULT_PEER, None, "192.0.2.1", slow)
    assert [r.app for r in recs] == ["benchapp", None, "app", "sshd", "cron", "nginx"]
    same(frames)


@pytest.mark.parametrize("line", [
    b"<13>1 2024-02-30T00:00:00Z h a p m - impossible date",
    b"<13>1 2024-03-05T24:00:00Z h a p m - hour 24",
    b"<13>1 2024-03-05T23:59:60Z h a p m - leap second",
    b"<13>1 2024-03-05T23:59:60 h a p m - leap second, local",
    b"<13>1 0000-03-05T12:00:00 h a p m - year 0, local: the datetime fails",
    b"<13>1 0000-01-01T12:00:00Z h a p m - year 0 in UTC",
    b"<13>1 9999-12-31T23:59:59+99:99 h a p m - odd offset",
    b"<13>1 2024-03-05T12:00:00.1234567890Z h a p m - ten fraction digits",
    b"<13>1 2024-03-05T12:00:00.\xd9\xa3Z h a p m - arabic digit in the fraction",
    b"<\xd9\xa1\xd9\xa3>1 2024-03-05T12:00:00Z h a p m - arabic digits in the PRI",
    b"<192>1 2024-03-05T12:00:00Z h a p m - PRI past 191",
    b"<0013>1 2024-03-05T12:00:00Z h a p m - four PRI digits",
    b"<13>1 2024-03-05T12:00:00Z h\xff a\x1b[31m p\xe2\x82 m\x00 - invalid UTF-8 and controls in fields",
    b"<13>1 2024-03-05T12:00:00Z h a p m - \xef\xbb\xbf\xef\xbb\xbftwo BOMs",
    b"<13>1 2024-03-05T12:00:00Z h a p m -",
    b"<13>1 2024-03-05T12:00:00Z h a p m - ",
    b"<13>1 2024-03-05T12:00:00Z h a p m -x",
    b"<13>1 2024-03-05T12:00:00Z h a p m [x@1 a=\"b\"] with SD",
    b"<13>1 2024-03-05T12:00:00Z  a p m - empty host",
    b"<13>1 - h a p m - nil stamp",
    b"<13>Mar  5 24:00:00 h app: hour 24",
    b"<13>Mar 31 12:00:60 h app: second 60",
    b"<13>Feb 29 12:00:00 h app: a leap day some years back",
    b"<13>Foo  5 12:00:00 h app: not a month",
    b"<13>Mar  5 12:00:00 2024 app: host is a year",
    b"<13>Mar  5 12:00:00 12345 app: five digits are a host",
    b"<13>Mar  5 12:00:00 h 12345: numeric tag",
    b"<13>Mar  5 12:00:00 h a\x1cb: tag with a separator control",
    b"<13>Mar  5 12:00:00 h a\x01b: tag with another control",
    b"<13>Mar  5 12:00:00 h \xc3\xa9t\xc3\xa9: non-ASCII tag",
    b"<13>Mar  5 12:00:00 h app[123456789012345678901]: 21-digit pid",
    b"<13>Mar  5 12:00:00 h app[]: empty pid",
    b"<13>Mar 05 12:00:00 h app:no space",
    b"<13>Mar 123 12:00:00 h app: three-digit day",
    b"<13>Mar   5 12:00:00 h app: three spaces",
    b"<13>Mar  5 12:00:00 " + b"h" * 255 + b" app: 255-char host",
    b"<13>Mar  5 12:00:00 " + b"h" * 256 + b" app: 256-char host",
    b"<13>Mar  5 12:00:00 h " + b"t" * 64 + b": 64-char tag",
    b"<13>Mar  5 12:00:00 h " + b"t" * 65 + b": 65-char tag",
    b"<13>2024-03-05T12:00:00Z h app: ISO stamp",
    b"<13>2024-03-05T12:00:00 h app: ISO stamp, local",
    b"<13>2024-03-05 12:00:00 h app: no T",
    b"<189>123: router: *Mar  1 18:48:50.483 UTC: %SYS-5-CONFIG_I: Cisco",
    b"no PRI at all",
    b"",
    b"<13>",
    b"<13>Mar  5 12:00:00 h app: trailing\r\n\x00",
])
@pytest.mark.parametrize("tz", [None, PARIS])
def test_edge_cases(line: bytes, tz: tzinfo | None) -> None:
    same([line], tz=tz)


def test_year_inference_at_new_year() -> None:
    new_year = _epoch("2024-01-01T00:10:00Z")
    for tz in (None, PARIS, ZoneInfo("UTC")):
        same([b"<13>Dec 31 23:50:00 h app: x", b"<13>Jan  1 00:05:00 h app: x", b"<13>Mar  8 00:00:00 h a: x"],
             received=new_year, tz=tz)


def test_no_peer() -> None:
    same([b"<13>1 2024-03-05T12:00:00Z - - - - - a", b"<13>Mar  5 12:00:00 h app: x"], peer=None)
    same([b"<13>1 2024-03-05T12:00:00Z - - - - - a"], peer_as_host=False)


# Lines built from parts, each part usually right and sometimes slightly wrong.
_DIGIT = st.sampled_from("0123456789")
_ODD = st.sampled_from(["", " ", "-", "\x00", "\x1c", "\t", "\xff", "\xe2\x82", "\u0663", "\ufeff", "é", "[", ":"])


def _num(width: int) -> st.SearchStrategy[str]:
    return st.one_of(st.lists(_DIGIT, min_size=width, max_size=width).map("".join),
                     st.lists(st.one_of(_DIGIT, _ODD), min_size=width - 1, max_size=width + 1).map("".join))


def _word(alphabet: str, max_size: int) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["-", "h", "web-1.example.org", "2024", "x" * 65]),
                     st.text(st.sampled_from(alphabet), min_size=1, max_size=max_size),
                     st.text(max_size=max_size))


_PRI = st.one_of(st.integers(0, 199).map(str), _num(3))
_ZONE = st.sampled_from(["", "Z", "z", "+01:00", "-0530", "+01:0", "+99:99", "UTC", "+1"])
_ISO = st.builds(
    "{}-{}-{}{}{}:{}:{}{}{}".format, _num(4), _num(2), _num(2), st.sampled_from("Tt "), _num(2), _num(2), _num(2),
    st.one_of(st.just(""), _num(3).map(".{}".format), st.integers(0, 10**11).map(".{}".format)), _ZONE)
_BSD = st.builds(
    "{} {}{} {}:{}:{}".format, st.sampled_from(["Mar", "Feb", "Dec", "Jan", "mar", "Xyz", "MAR"]),
    st.sampled_from(["", " ", "  "]), st.sampled_from(["5", "05", "29", "31", "30", "0", "123", "\u0665"]),
    _num(2), _num(2), _num(2))
_HOSTISH = "abcXYZ019_.-:%[]@"
_5424 = st.builds(
    "<{}>{} {} {} {} {} {} {}{}".format, _PRI, st.sampled_from(["1", "2", "1 "]),
    st.one_of(_ISO, st.just("-")), _word(_HOSTISH, 10), _word("ab1-_", 10), _word("0123", 5), _word("IDab", 5),
    st.sampled_from(["-", "- ", "-x", '[a@1 b="c"]', "", "- \ufeff", "- \ufeff\ufeff"]), st.text(max_size=20))
_3164 = st.builds(
    "<{}>{}{}{}{}{}{}{}".format, _PRI, st.one_of(_BSD, _ISO), st.sampled_from([" ", "  ", ""]),
    _word(_HOSTISH, 10), st.sampled_from([" ", ""]), _word("abcs0123/=\x1c\x01é", 10),
    st.sampled_from(["", "[12]", "[]", "[x]", "[" + "1" * 21 + "]", "[" + "1" * 20 + "]"]),
    st.sampled_from([": ", ":", " ", ": : ", ""]).flatmap(lambda sep: st.text(max_size=20).map(sep.__add__)))
_RECEIVED = st.sampled_from([RECEIVED, _epoch("2024-01-01T00:10:00Z"), _epoch("2023-12-31T23:50:00Z"), 1.5e9,
                             RECEIVED + 0.123456])
_TZ = st.sampled_from([None, PARIS, ZoneInfo("UTC"), ZoneInfo("America/New_York")])


def _encoded(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


@settings(max_examples=800)
@given(st.lists(st.one_of(_5424, _3164).map(_encoded), min_size=1, max_size=8), _RECEIVED, _TZ)
@example([b"<13>1 2024-03-05T12:00:00Z h a p m - x"], RECEIVED, None)
def test_structured_but_mangled(frames: list[bytes], received: float, tz: tzinfo | None) -> None:
    same(frames, received=received, tz=tz)


@settings(max_examples=500)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=4), _TZ)
def test_random_bytes(frames: list[bytes], tz: tzinfo | None) -> None:
    same(frames, tz=tz)


@settings(max_examples=300)
@given(st.lists(st.one_of(_5424, _3164).map(_encoded), max_size=4).map(lambda fs: [
    bytes(b ^ 0x80 if i % 7 == 3 else b for i, b in enumerate(f)) for f in fs]))
def test_high_bit_flipped(frames: list[bytes]) -> None:
    """Invalid UTF-8 anywhere, ASCII delimiters turned into continuation bytes."""
    same(frames)


# Framing: a stream of frames in every framing, fed in random pieces, with random limits.
_FRAME = st.one_of(
    _5424.map(_encoded), _3164.map(_encoded), st.binary(max_size=40),
    st.sampled_from([b"123456789 starts with a number", b"99999999999 x", b"0 ", b"12 <1", b"5 <13>"]),
)


def _framed(frame: bytes, how: str) -> bytes:
    if how == "counted":
        return b"%d %s" % (len(frame), frame)
    return frame + {"lf": b"\n", "crlf": b"\r\n", "nul": b"\0", "none": b""}[how]


@settings(max_examples=500)
@given(st.lists(st.tuples(_FRAME, st.sampled_from(["counted", "lf", "crlf", "nul", "none"])), max_size=12),
       st.lists(st.integers(1, 300), min_size=1, max_size=10), st.sampled_from([1, 10, 60, 200, 2**20]))
def test_framing(parts: list[tuple[bytes, str]], pieces: list[int], limit: int) -> None:
    stream = b"".join(_framed(f, how) for f, how in parts)
    results = []
    for pure in (False, True):
        splitter = FrameSplitter(limit, pure=pure)
        out: list[tuple[bytes, int]] = []
        pos, k = 0, 0
        while pos < len(stream):
            size = pieces[k % len(pieces)]
            out += splitter.feed(stream[pos : pos + size])
            pos, k = pos + size, k + 1
        results.append(out + splitter.finish())
    assert results[0] == results[1]


def test_framing_whole_bench_stream() -> None:
    frames = [b"<134>1 2024-03-05T11:58:01Z h app %d - - seq=%d" % (i, i) for i in range(3000)]
    stream = b"".join(b"%d %s" % (len(f), f) for f in frames) + b"".join(f + b"\r\n" for f in frames)
    for size in (65536, 262144, 1000):
        got = []
        for pure in (False, True):
            splitter = FrameSplitter(2**20, pure=pure)
            got.append([f for i in range(0, len(stream), size) for f in splitter.feed(stream[i : i + size])]
                       + splitter.finish())
        assert got[0] == got[1] == [(f, 0) for f in frames * 2]
