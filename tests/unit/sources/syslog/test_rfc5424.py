"""RFC 5424 details the corpus does not isolate: SD escaping and errors, timestamps, decoding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mepd.model import LogRecord
from mepd.sources.syslog import rfc5424
from mepd.sources.syslog.parse import _parse, _usual_5424, parse_message

RECEIVED = datetime(2024, 3, 5, 12, tzinfo=UTC).timestamp()


def parse(data: bytes, tz: tzinfo | None = UTC) -> LogRecord:
    return parse_message(data, received=RECEIVED, source="syslog/udp", peer="192.0.2.1:514", tz=tz)


def test_sd_escapes_and_literal_backslash() -> None:
    sd, end = rfc5424.parse_sd(r'[a@1 x="\"q\"" y="1\\2" z="[\]]" w="\n" v="tail\\"] rest')
    assert sd == {"a@1": {"x": '"q"', "y": "1\\2", "z": "[]]", "w": "\\n", "v": "tail\\"}}
    assert end == len(r'[a@1 x="\"q\"" y="1\\2" z="[\]]" w="\n" v="tail\\"]')


def test_sd_unescaped_bracket_and_spaces_inside_value() -> None:
    sd, _ = rfc5424.parse_sd('[a@1 msg="x ] y [z" n="2"]')
    assert sd == {"a@1": {"msg": "x ] y [z", "n": "2"}}


def test_sd_multiple_elements_and_repeated_id_merge() -> None:
    sd, end = rfc5424.parse_sd('[a@1 x="1"][b@1][a@1 y="2"]')
    assert sd == {"a@1": {"x": "1", "y": "2"}, "b@1": {}}
    assert end == 27


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('[a@1 x="1"', "not closed"),
        ('[a@1 x="1]', "unterminated"),
        ("[a@1 x=1]", "not quoted"),
        ('[a=b x="1"]', "invalid SD ID"),
        ('[a@1 ="1"]', "invalid SD param name"),
        ("[a@1 x]", "without '='"),
        ("x", "must be '-'"),
        ("[" + "a" * 33 + "]", "invalid SD ID"),
    ],
)
def test_sd_errors(text: str, error: str) -> None:
    with pytest.raises(rfc5424.Rfc5424Error, match=error):
        rfc5424.parse_sd(text)


def test_bad_sd_keeps_header_fields_and_text() -> None:
    rec = parse(b'<14>1 2024-03-05T12:00:00Z h app 7 ID [a@1 x="1" hello')
    assert (rec.host, rec.app, rec.pid, rec.msgid) == ("h", "app", "7", "ID")
    assert rec.sd == {}
    assert rec.message == '[a@1 x="1" hello'
    assert rec.parse_error == "SD param without '='"
    assert rec.raw == '<14>1 2024-03-05T12:00:00Z h app 7 ID [a@1 x="1" hello'


def test_junk_right_after_sd_is_an_error() -> None:
    rec = parse(b'<14>1 - h app - - [a@1]x')
    assert rec.parse_error == "junk after structured data"
    assert rec.message == "[a@1]x"


def test_bom_stripped_only_at_start_and_invalid_utf8_replaced() -> None:
    rec = parse(b"<14>1 - h app - - - \xef\xbb\xbfa\xef\xbb\xbfb \xff end")
    assert rec.message == "a\ufeffb \ufffd end"


def test_message_that_is_a_dash_is_kept() -> None:
    assert parse(b"<14>1 - h app - - - -").message == "-"


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2024-03-05T12:00:00Z", datetime(2024, 3, 5, 12, tzinfo=UTC)),
        ("2024-03-05t12:00:00z", datetime(2024, 3, 5, 12, tzinfo=UTC)),
        ("2024-03-05T12:00:00.5-05:30", datetime(2024, 3, 5, 17, 30, 0, 500000, tzinfo=UTC)),
        ("2024-03-05T00:30:00+01:00", datetime(2024, 3, 4, 23, 30, tzinfo=UTC)),
        ("2024-02-29T23:59:60Z", datetime(2024, 3, 1, tzinfo=UTC)),
        ("1999-12-31T23:59:59.999999+00:00", datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ],
)
def test_timestamps_are_stored_in_utc(stamp: str, expected: datetime) -> None:
    rec = parse(f"<14>1 {stamp} h app - - - x".encode())
    assert rec.ts == pytest.approx(expected.timestamp(), abs=1e-6)
    assert rec.parse_error is None


def test_stamp_without_offset_uses_listener_zone() -> None:
    rec = parse(b"<14>1 2024-03-05T12:00:00 h app - - - x", tz=timezone(timedelta(hours=-3)))
    assert rec.ts == datetime(2024, 3, 5, 15, tzinfo=UTC).timestamp()


@pytest.mark.parametrize("stamp", ["2024-02-30T00:00:00Z", "2024-03-05T24:00:00Z", "2024-03-05", "yesterday"])
def test_impossible_timestamps_make_the_message_unparsed(stamp: str) -> None:
    rec = parse(f"<14>1 {stamp} h app - - - x".encode())
    assert rec.parse_error is not None
    assert rec.message == f"<14>1 {stamp} h app - - - x"
    assert rec.ts == RECEIVED
    assert (rec.facility, rec.severity, rec.host) == (1, 6, "192.0.2.1")


def test_version_other_than_1_is_read_as_bsd() -> None:
    rec = parse(b"<14>2 - h app - - - x")
    assert rec.parse_error is None
    assert rec.message == "2 - h app - - - x"


_FIELD = st.text(st.characters(blacklist_characters=" ", blacklist_categories=("Cs",)), min_size=0, max_size=12)


@settings(max_examples=400)
@given(
    st.sampled_from(["<0>", "<13>", "<191>", "<192>", "<999>", "<013>"]),
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)),
    st.sampled_from(["", ".5", ".123456", ".000000001", ".9999"]),
    st.sampled_from(["Z", "z", "+02:00", "-0530", "+00:00", ""]),
    st.lists(st.one_of(_FIELD, st.just("-")), min_size=4, max_size=4),
    st.sampled_from(["-", "- ", "- msg text", "- \ufeffbom", "-x", '[a@1 k="v"] m', "- a\nb"]),
    st.sampled_from([None, UTC, timezone(timedelta(hours=-3))]),
    st.sampled_from([None, "192.0.2.7:514"]),
)
def test_the_one_match_path_agrees_with_the_general_parser(
    pri: str, when: datetime, frac: str, zone: str, fields: list[str], tail: str, tz: tzinfo | None,
    fallback: str | None,
) -> None:
    """The fast path may decline a message, never read it differently."""
    text = f"{pri}1 {when:%Y-%m-%dT%H:%M:%S}{frac}{zone} {' '.join(fields)} {tail}"
    usual = _usual_5424(text, RECEIVED, "syslog/udp", "192.0.2.7:514", tz, fallback)
    if usual is not None:
        assert usual == _parse(text, RECEIVED, source="syslog/udp", peer="192.0.2.7:514", tz=tz,
                               fallback_host=fallback)


def test_the_one_match_path_takes_the_usual_message() -> None:
    text = "<134>1 2024-03-05T12:00:00.25+01:00 host app 42 ID7 - text"
    usual = _usual_5424(text, RECEIVED, "syslog/tcp", None, UTC, None)
    assert usual == _parse(text, RECEIVED, source="syslog/tcp", peer=None, tz=UTC, fallback_host=None)
    assert usual == LogRecord(ts=RECEIVED - 3600 + 0.25, received=RECEIVED, message="text", source="syslog/tcp",
                              host="host", app="app", pid="42", facility=16, severity=6, msgid="ID7")
