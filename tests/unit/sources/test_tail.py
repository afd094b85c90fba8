"""Positions, fingerprints and line splitting of the tail source: the logic restarts and rotation rely on."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from mepd.sources.tail import (
    FP_LEN,
    LineSplitter,
    Position,
    _line_start_before,
    _watch_root,
    cursor_key,
    fingerprint,
    same_content,
)

HEAD = b"127.0.0.1 - - [10/Oct/2025:13:55:36 +0000] \"GET / HTTP/1.1\" 200 2326\n" * 4


def test_position_round_trips_and_rejects_garbage() -> None:
    p = Position(1234, fingerprint(HEAD[:FP_LEN]), 1767225600123)
    assert p.encode() == f"1234:{p.fp}:1767225600123"
    assert Position.decode(p.encode()) == p
    bad_positions = (
        None, "", "12", "12:256-0123456789abcdef", "x:256-0123456789abcdef:1", "12:256-short:1",
        "12:abc-0123456789abcdef:1", "-1:0-00:1", "12:256-0123456789abcdef:-5", "1:2:3:4",
    )
    for bad in bad_positions:
        assert Position.decode(bad) is None


def test_cursor_key_names_source_device_and_inode() -> None:
    assert cursor_key("web", 2049, 131) == "tail:web:2049:131"


def test_resume_at_saved_offset_when_file_unchanged_and_grown() -> None:
    p = Position(100, fingerprint(HEAD[:FP_LEN]))
    assert p.resume_offset(HEAD[:FP_LEN], 100) == 100
    assert p.resume_offset(HEAD[:FP_LEN], 5000) == 100


def test_no_resume_after_truncation() -> None:
    p = Position(100, fingerprint(HEAD[:FP_LEN]))
    assert p.resume_offset(HEAD[:FP_LEN], 99) is None


def test_no_resume_when_first_bytes_changed_reused_inode() -> None:
    p = Position(100, fingerprint(HEAD[:FP_LEN]))
    other = b"x" + HEAD[1:FP_LEN]
    assert p.resume_offset(other, 10_000) is None


def test_short_fingerprint_still_matches_after_file_grew() -> None:
    short = HEAD[:40]
    p = Position(40, fingerprint(short))
    assert same_content(HEAD[:FP_LEN], p.fp)
    assert p.resume_offset(HEAD[:FP_LEN], 300) == 40
    assert not same_content(HEAD[:39], p.fp)  # a file now shorter than the fingerprint is another file


def test_empty_file_fingerprint_matches_anything() -> None:
    p = Position(0, fingerprint(b""))
    assert p.resume_offset(b"", 0) == 0
    assert p.resume_offset(HEAD, len(HEAD)) == 0


def test_splitter_holds_partial_line_until_newline() -> None:
    sp = LineSplitter(10, 1000)
    assert sp.feed(b"abc") == []
    assert (sp.committed, sp.read_pos, sp.pending) == (10, 13, 3)
    lines = sp.feed(b"def\ngh")
    assert [(ln.text, ln.end) for ln in lines] == [(b"abcdef", 17)]
    assert (sp.committed, sp.read_pos) == (17, 19)
    lines = sp.feed(b"\n\n")
    assert [(ln.text, ln.end) for ln in lines] == [(b"gh", 20), (b"", 21)]


def test_splitter_truncates_long_line_and_counts_dropped_bytes() -> None:
    sp = LineSplitter(0, 8)
    assert sp.feed(b"0123456789") == []
    assert sp.read_pos == 10
    assert sp.feed(b"abc") == []
    (line,) = sp.feed(b"d\nok\n")[:1]
    assert (line.text, line.dropped, line.end) == (b"01234567", 6, 15)
    sp2 = LineSplitter(0, 8)
    first, second = sp2.feed(b"0123456789abc\nok\n")
    assert (first.text, first.dropped, first.end) == (b"01234567", 5, 14)
    assert (second.text, second.dropped, second.end) == (b"ok", 0, 17)


def test_splitter_flush_emits_partial_line_once() -> None:
    sp = LineSplitter(0, 4)
    sp.feed(b"a\nbcdefg")
    line = sp.flush()
    assert line is not None
    assert (line.text, line.dropped, line.end) == (b"bcde", 2, 8)
    assert sp.committed == 8
    assert sp.flush() is None


@given(st.lists(st.binary(max_size=40), max_size=20), st.integers(min_value=1, max_value=16))
def test_splitter_agrees_with_split_whatever_the_chunking(chunks: list[bytes], cap: int) -> None:
    data = b"".join(chunks)
    sp = LineSplitter(0, cap)
    lines = [ln for c in chunks for ln in sp.feed(c)]
    *complete, rest = data.split(b"\n")
    assert [ln.text for ln in lines] == [c[:cap] for c in complete]
    assert [ln.dropped for ln in lines] == [max(0, len(c) - cap) for c in complete]
    assert sp.committed == len(data) - len(rest)
    assert sp.read_pos == len(data)
    ends = [ln.end for ln in lines]
    assert all(data[e - 1:e] == b"\n" for e in ends)


def test_line_start_before(tmp_path: Path) -> None:
    path = tmp_path / "f"
    for content, limit, expected in (
        (b"", 100, 0),
        (b"a\nb\n", 100, 4),
        (b"a\nbc", 100, 2),
        (b"abc", 100, 0),
        (b"a\n" + b"x" * 50, 10, 41),
    ):
        path.write_bytes(content)
        fd = os.open(path, os.O_RDONLY)
        try:
            assert _line_start_before(fd, len(content), limit) == expected, content
        finally:
            os.close(fd)


def test_watch_root() -> None:
    assert _watch_root("/var/log/nginx/access.log") == ("/var/log/nginx", False)
    assert _watch_root("/var/log/nginx/*.access.log") == ("/var/log/nginx", False)
    assert _watch_root("/var/log/*/access.log") == ("/var/log", True)
    assert _watch_root("/*.log") == ("/", False)
