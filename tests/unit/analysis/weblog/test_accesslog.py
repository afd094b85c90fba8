"""Access-log line parsing: the formats Apache and nginx write, and what real logs hold."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mepd.analysis.weblog.accesslog import (
    FIELDS,
    AccessFormat,
    access_groups,
    access_time,
    parse_access_line,
    split_request,
)

APACHE_DOC = (
    '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 '
    '"http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"'
)


def fields_of(line: str, fmt: AccessFormat) -> dict[str, str]:
    return parse_access_line(line, fmt)[1]


def test_apache_documentation_example_combined() -> None:
    assert fields_of(APACHE_DOC, "combined") == {
        "client": "127.0.0.1", "ident": "-", "user": "frank", "time": "10/Oct/2000:13:55:36 -0700",
        "method": "GET", "path": "/apache_pb.gif", "query": "", "protocol": "HTTP/1.0",
        "status": "200", "bytes": "2326", "referer": "http://www.example.com/start.html",
        "agent": "Mozilla/4.08 [en] (Win98; I ;Nav)", "vhost": "",
    }


def test_common_format_has_empty_referer_and_agent() -> None:
    line = '127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /a/b?x=1&y=2 HTTP/1.1" 304 -'
    fields = fields_of(line, "common")
    assert (fields["path"], fields["query"], fields["status"], fields["bytes"]) == ("/a/b", "x=1&y=2", "304", "0")
    assert (fields["referer"], fields["agent"]) == ("", "")
    # a combined line read as common keeps the common fields and drops the rest
    common = fields_of(APACHE_DOC, "common")
    assert (common["status"], common["referer"], common["agent"]) == ("200", "", "")


def test_every_field_is_present_and_a_string() -> None:
    fields = fields_of(APACHE_DOC, "combined")
    assert tuple(fields) == FIELDS
    assert all(isinstance(v, str) for v in fields.values())


def test_dash_request_and_binary_junk() -> None:
    dash = fields_of('10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] "-" 408 - "-" "-"', "combined")
    assert (dash["method"], dash["path"], dash["protocol"], dash["status"], dash["bytes"]) == ("", "-", "", "408", "0")
    junk = fields_of(
        r'10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" 400 226 "-" "-"',
        "combined",
    )
    assert junk["method"] == ""
    assert junk["path"] == r"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
    assert junk["status"] == "400"


def test_escaped_quotes_in_agent_and_request() -> None:
    line = (
        r'1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "GET /q?s=\"x\" HTTP/1.1" 200 5 "-" '
        r'"Mozilla/5.0 \"quoted\" (compatible; Bot/1.0; \\path)"'
    )
    fields = fields_of(line, "combined")
    assert fields["query"] == r"s=\"x\""
    assert fields["agent"] == r"Mozilla/5.0 \"quoted\" (compatible; Bot/1.0; \\path)"
    assert fields["status"] == "200"


def test_ipv6_client_and_vhost_prefix() -> None:
    line = ('www.example.org:443 2001:db8::17 - - [01/Jan/2024:00:00:00 +0100] "POST /login HTTP/2.0" 302 0 '
            '"-" "curl/8.0"')
    fields = fields_of(line, "combined")
    assert (fields["vhost"], fields["client"], fields["method"], fields["protocol"]) == (
        "www.example.org:443", "2001:db8::17", "POST", "HTTP/2.0")
    plain = fields_of(line.split(" ", 1)[1], "combined")
    assert (plain["vhost"], plain["client"]) == ("", "2001:db8::17")


def test_extra_nginx_fields_after_agent_and_missing_referer() -> None:
    line = '1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.0" "203.0.113.9" rt=0.001'
    fields = fields_of(line, "combined")
    assert fields["agent"] == "curl/8.0"
    short = fields_of('1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 612', "combined")
    assert (short["referer"], short["agent"]) == ("", "")


@pytest.mark.parametrize("line", [
    "",
    "hello world",
    "Jan  1 00:00:00 host sshd[1]: Accepted publickey",
    '1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" abc 5',
    '1.2.3.4 - - 01/Jan/2024:00:00:00 +0000 "GET / HTTP/1.1" 200 5',
])
def test_non_access_lines_are_refused(line: str) -> None:
    with pytest.raises(ValueError, match="not a combined access log line"):
        parse_access_line(line, "combined")


@pytest.mark.parametrize("time", [
    "2024-03-05T10:11:12+00:00", "2024-03-05 10:11:12", "05/Mar/2024:25:11:12 +0000", "05/Mar/2024:10:61:12 +0000",
    "05/Mar/2024:10:11:12 UTC", "05/Mar/2024:10:11", "",
])
def test_a_time_that_is_not_apaches_is_refused(time: str) -> None:
    """Nothing else in the line says when the request happened: it is no request, on any path."""
    with pytest.raises(ValueError, match="bad time"):
        parse_access_line(f'1.2.3.4 - - [{time}] "GET / HTTP/1.1" 200 5 "-" "curl/8"', "combined")


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31)),
       st.sampled_from(["+0000", "-0700", "+0530", ""]))
def test_line_time_is_access_time(moment: datetime, zone: str) -> None:
    """The cached hour starts of `access_groups` give what `access_time` gives for the whole text."""
    text = moment.strftime("%d/%b/%Y:%H:%M:%S") + (f" {zone}" if zone else "")
    ts, _ = access_groups(f'1.2.3.4 - - [{text}] "GET / HTTP/1.1" 200 5')
    assert ts == access_time(text)


def test_pathological_quotes_and_backslashes_end() -> None:
    """Would take exponential time with a naive `(\\\\.|[^"])*` alternation; must just return."""
    evil = '1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "' + '\\"' * 5000 + "\\" * 5001
    with pytest.raises(ValueError, match="not a combined access log line"):
        parse_access_line(evil, "combined")
    ok = '1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "' + '\\"' * 5000 + '" 200 1 "-" "' + "\\\\" * 5000 + '"'
    fields = fields_of(ok, "combined")
    assert fields["status"] == "200"


@pytest.mark.parametrize(("request_line", "expected"), [
    ("GET /a?b=c HTTP/1.1", ("GET", "/a", "b=c", "HTTP/1.1")),
    ("GET /a", ("GET", "/a", "", "")),
    ("GET /a b c HTTP/1.0", ("GET", "/a b c", "", "HTTP/1.0")),
    ("M-SEARCH * HTTP/1.1", ("M-SEARCH", "*", "", "HTTP/1.1")),
    ("get /lower HTTP/1.1", ("", "get /lower HTTP/1.1", "", "")),
    ("-", ("", "-", "", "")),
    ("", ("", "", "", "")),
])
def test_split_request(request_line: str, expected: tuple[str, str, str, str]) -> None:
    assert split_request(request_line) == expected


@pytest.mark.parametrize("text", [
    "10/Oct/2000:13:55:36 -0700", "01/Jan/1970:00:00:00 +0000", "29/Feb/2024:23:59:59 +0530",
    "31/Dec/2023:23:30:00 -1200", "15/Jun/2031:12:00:01 +1400",
])
def test_access_time_matches_strptime(text: str) -> None:
    assert access_time(text) == datetime.strptime(text, "%d/%b/%Y:%H:%M:%S %z").timestamp()


def test_access_time_without_zone_is_utc() -> None:
    assert access_time("01/Jan/1970:00:01:00") == 60.0


@pytest.mark.parametrize("text", [
    "", "10/Foo/2000:13:55:36 -0700", "10/Oct/2000 13:55:36 -0700", "10/Oct/2000:25:55:36 -0700",
    "10/Oct/2000:13:55:36 0700", "31/Feb/2000:13:55:36 +0000", "xx/Oct/2000:13:55:36 +0000",
])
def test_access_time_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError, match=r"access-log|day is out of range"):
        access_time(text)


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31)),
       st.integers(min_value=-12 * 60, max_value=14 * 60))
def test_access_time_agrees_with_strptime(moment: datetime, offset_minutes: int) -> None:
    sign = "-" if offset_minutes < 0 else "+"
    zone = f"{sign}{abs(offset_minutes) // 60:02d}{abs(offset_minutes) % 60:02d}"
    text = moment.strftime("%d/%b/%Y:%H:%M:%S ") + zone
    assert access_time(text) == datetime.strptime(text, "%d/%b/%Y:%H:%M:%S %z").timestamp()


_token = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters='"\\[]'),
                 min_size=1, max_size=20)
_quoted = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters='"\\'),
                  max_size=60)


@given(client=_token, user=_token, path=_token.map(lambda s: "/" + s), query=_token,
       status=st.integers(100, 599), size=st.integers(0, 10**12), referer=_quoted, agent=_quoted,
       vhost=st.one_of(st.just(""), _token))
def test_round_trip_of_generated_lines(client: str, user: str, path: str, query: str, status: int, size: int,
                                       referer: str, agent: str, vhost: str) -> None:
    path = path.replace("?", "")
    prefix = f"{vhost} " if vhost else ""
    line = (f'{prefix}{client} - {user} [05/Mar/2024:10:11:12 +0000] "GET {path}?{query} HTTP/1.1" '
            f'{status} {size} "{referer}" "{agent}"')
    fields = fields_of(line, "combined")
    assert fields == {
        "client": client, "ident": "-", "user": user, "time": "05/Mar/2024:10:11:12 +0000", "method": "GET",
        "path": path, "query": query, "protocol": "HTTP/1.1", "status": str(status), "bytes": str(size),
        "referer": referer, "agent": agent, "vhost": vhost,
    }
