"""RFC 3164 details the corpus does not isolate: zones, DST, year edges, tags, peers, the safety net."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mepd.model import LogRecord
from mepd.sources.syslog import common, rfc3164
from mepd.sources.syslog.parse import _parse, _usual_3164, parse_message

PARIS = ZoneInfo("Europe/Paris")


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, *, tz: tzinfo = UTC) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=tz).timestamp()


def parse(
    data: bytes, received: float = 0.0, tz: tzinfo | None = UTC, peer: str | None = "192.0.2.1:514",
) -> LogRecord:
    return parse_message(data, received=received or at(2024, 3, 5, 12), source="syslog/udp", peer=peer, tz=tz)


def test_zone_less_stamp_uses_listener_zone_across_dst() -> None:
    # Paris: CET (+1) until 2024-03-31 02:00, CEST (+2) after.
    before = parse(b"<13>Mar 31 01:30:00 h app: x", received=at(2024, 3, 31, 12))
    assert before.ts == at(2024, 3, 31, 1, 30)
    assert parse(b"<13>Mar 31 01:30:00 h app: x", received=at(2024, 3, 31, 12), tz=PARIS).ts == at(2024, 3, 31, 0, 30)
    assert parse(b"<13>Mar 31 03:30:00 h app: x", received=at(2024, 3, 31, 12), tz=PARIS).ts == at(2024, 3, 31, 1, 30)


def test_year_is_resolved_in_the_listener_zone() -> None:
    # 00:10 on January 1st in Paris is still December 31st in UTC.
    received = at(2024, 1, 1, 0, 10, tz=PARIS)
    rec = parse(b"<13>Dec 31 23:50:00 h app: x", received=received, tz=PARIS)
    assert rec.ts == at(2023, 12, 31, 23, 50, tz=PARIS)
    assert parse(b"<13>Jan  1 00:05:00 h app: x", received=received, tz=PARIS).ts == at(2024, 1, 1, 0, 5, tz=PARIS)


def test_a_stamp_weeks_ahead_is_last_years() -> None:
    assert parse(b"<13>Apr  1 00:00:00 h app: x").ts == at(2023, 4, 1)
    assert parse(b"<13>Mar  8 00:00:00 h app: x").ts == at(2024, 3, 8)  # within the tolerated skew


@pytest.fixture
def new_york_local() -> Iterator[None]:
    """The machine's zone (tz=None) set to America/New_York for one test."""
    old = time.tzname
    mp = pytest.MonkeyPatch()
    mp.setenv("TZ", "America/New_York")
    time.tzset()
    common.wall_hour.cache_clear()
    rfc3164.bsd_hour.cache_clear()
    yield
    mp.undo()
    time.tzset()
    common.wall_hour.cache_clear()
    rfc3164.bsd_hour.cache_clear()
    assert time.tzname == old


@pytest.mark.usefixtures("new_york_local")
def test_no_zone_means_the_machine_local_zone() -> None:
    assert parse(b"<13>Mar  5 07:00:00 h app: x", tz=None).ts == at(2024, 3, 5, 12)


@pytest.mark.parametrize(
    ("line", "app", "pid", "message"),
    [
        (b"<13>Mar  5 11:00:00 h app:no space", "app", None, "no space"),
        (b"<13>Mar  5 11:00:00 h app[]: empty pid", "app", None, "empty pid"),
        (b"<13>Mar  5 11:00:00 h app[12] no colon", "app", "12", "no colon"),
        (b"<13>Mar  5 11:00:00 h app:", "app", None, ""),
        (b"<13>Mar  5 11:00:00 h " + b"a" * 65 + b": too long", None, None, "a" * 65 + ": too long"),
        (b"<13>Mar  5 11:00:00 h key=value: x", None, None, "key=value: x"),
        (b'<13>Mar  5 11:00:00 h "quoted": x', None, None, '"quoted": x'),
        (b"<13>app: no stamp", "app", None, "no stamp"),
    ],
)
def test_tags(line: bytes, app: str | None, pid: str | None, message: str) -> None:
    rec = parse(line)
    assert (rec.app, rec.pid, rec.message) == (app, pid, message)


def test_ipv6_hostname() -> None:
    rec = parse(b"<13>Mar  5 11:00:00 2001:db8::1 app: x")
    assert (rec.host, rec.app, rec.message) == ("2001:db8::1", "app", "x")


@pytest.mark.parametrize(
    ("peer", "host"),
    [
        ("192.0.2.1:514", "192.0.2.1"),
        ("[2001:db8::2]:514", "2001:db8::2"),
        ("/run/mepd/dev-log", socket.gethostname()),
        (None, None),
    ],
)
def test_peer_gives_the_host_when_the_message_has_none(peer: str | None, host: str | None) -> None:
    rec = parse(b"<13>Mar  5 11:00:00 app: x", peer=peer)
    assert (rec.host, rec.peer) == (host, peer)


def test_message_host_wins_over_peer() -> None:
    assert parse(b"<13>Mar  5 11:00:00 web1 app: x").host == "web1"


# Cisco IOS (`service timestamps log datetime [msec] [year] [show-timezone]`, `logging origin-id hostname`):
# the device's time is taken whatever its clock marker, as rsyslog's pmciscoios does; `*` (clock never set)
# and `.` (NTP sync lost) flag it in sd as RFC 5424's timeQuality does.
UNSYNCED = {"timeQuality": {"isSynced": "0"}}


@pytest.mark.parametrize(
    ("line", "ts", "host", "sd"),
    [
        (b"<189>123: *Mar  1 18:48:50.483 UTC: %SYS-5-CONFIG_I: Configured from console by vty0",
         at(2024, 3, 1, 18, 48) + 50.483, None, {"meta": {"sequenceId": "123"}, **UNSYNCED}),
        (b"<189>123: .Mar  1 18:48:50.483 UTC: %SYS-5-CONFIG_I: Configured from console by vty0",
         at(2024, 3, 1, 18, 48) + 50.483, None, {"meta": {"sequenceId": "123"}, **UNSYNCED}),
        (b"<189>123: Mar  1 18:48:50.483 UTC: %SYS-5-CONFIG_I: Configured from console by vty0",
         at(2024, 3, 1, 18, 48) + 50.483, None, {"meta": {"sequenceId": "123"}}),
        (b"<189>123: Mar  1 18:48:50: %SYS-5-CONFIG_I: Configured from console by vty0",
         at(2024, 3, 1, 18, 48) + 50, None, {"meta": {"sequenceId": "123"}}),
        (b"<189>*Mar  1 18:48:50.483: %SYS-5-CONFIG_I: Configured from console by vty0",
         at(2024, 3, 1, 18, 48) + 50.483, None, UNSYNCED),
        (b"<189>Mar  1 18:48:50.483 UTC: %SYS-5-CONFIG_I: Configured from console by vty0",
         at(2024, 3, 1, 18, 48) + 50.483, None, {}),
        (b"<189>123: *Mar  1 2023 18:48:50.483 UTC: %SYS-5-CONFIG_I: Configured from console by vty0",
         at(2023, 3, 1, 18, 48) + 50.483, None, {"meta": {"sequenceId": "123"}, **UNSYNCED}),
        (b"<189>123: rtr-1.example.net: *Mar  1 18:48:50.483 UTC: %SYS-5-CONFIG_I: Configured from console by vty0",
         at(2024, 3, 1, 18, 48) + 50.483, "rtr-1.example.net", {"meta": {"sequenceId": "123"}, **UNSYNCED}),
        (b"<189>123: rtr1: .Mar  1 2024 18:48:50 UTC: %SYS-5-CONFIG_I: Configured from console by vty0",
         at(2024, 3, 1, 18, 48) + 50, "rtr1", {"meta": {"sequenceId": "123"}, **UNSYNCED}),
    ],
)
def test_cisco_ios_device_time_and_clock_flag(line: bytes, ts: float, host: str | None, sd: object) -> None:
    rec = parse(line, peer=None)
    assert (rec.ts, rec.host, rec.msgid, rec.sd) == (ts, host, "SYS-5-CONFIG_I", sd)
    assert rec.message == "%SYS-5-CONFIG_I: Configured from console by vty0"
    assert rec.parse_error is None


def test_a_parser_bug_costs_the_fields_not_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    # A fault that cannot be produced for real: the parser itself failing.
    def broken(*_: object) -> None:
        raise IndexError("bug")

    monkeypatch.setattr(rfc3164, "parse", broken)
    rec = parse(b"<13>Mar  5 11:00:00 h app x\n")  # no "tag:": not the one-match path
    assert rec.parse_error == "parser failure: IndexError"
    assert (rec.message, rec.raw) == ("<13>Mar  5 11:00:00 h app x",) * 2
    assert (rec.host, rec.ts) == ("192.0.2.1", rec.received)


@settings(max_examples=500)
@given(
    st.sampled_from(["<13>", "<191>", "<192>", "<0>"]),
    st.one_of(
        st.builds("{} {:>2} {:02d}:{:02d}:{:02d}".format, st.sampled_from(["Mar", "Dec", "Feb", "Foo", "mar"]),
                  st.integers(0, 32), st.integers(0, 25), st.integers(0, 61), st.integers(0, 61)),
        st.builds("{}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}{}{}".format, st.sampled_from(["2024", "1999", "2100"]),
                  st.integers(0, 13), st.integers(0, 32), st.integers(0, 25), st.integers(0, 61),
                  st.integers(0, 61), st.sampled_from(["", ".5", ".123456"]),
                  st.sampled_from(["", "Z", "+02:00", "-0530"])),
    ),
    st.sampled_from(["h", "web-1.example.org", "2024", "1234", "%h", "h:"]),
    st.sampled_from(["app", "123", "sshd", "a b", "%SYS-5-X", "[x]", "CRON"]),
    st.sampled_from(["", "[42]", "[]", "[x1]"]),
    st.sampled_from([": msg", ":msg", " msg", ": ", ": a\nb"]),
    st.sampled_from([None, UTC, PARIS]),
)
def test_the_one_match_path_agrees_with_the_general_parser(
    pri: str, stamp: str, host: str, tag: str, pid: str, tail: str, tz: tzinfo | None,
) -> None:
    """The fast path may decline a line, never read it differently."""
    text = f"{pri}{stamp} {host} {tag}{pid}{tail}"
    received = at(2024, 3, 5, 12)
    usual = _usual_3164(text, received, "syslog/udp", "192.0.2.1:514", tz)
    if usual is not None:
        assert usual == _parse(text, received, source="syslog/udp", peer="192.0.2.1:514", tz=tz,
                               fallback_host="192.0.2.1")


def test_the_one_match_path_takes_both_forwarding_formats() -> None:
    received = at(2024, 3, 5, 12)
    for line in ("<30>Mar  5 11:58:01 web1 nginx[812]: GET /",
                 "<30>2024-03-05T11:58:01.5+00:00 web1 nginx[812]: GET /"):
        usual = _usual_3164(line, received, "syslog/tcp", None, UTC)
        assert usual is not None, line
        assert (usual.host, usual.app, usual.pid, usual.message, usual.facility, usual.severity) == (
            "web1", "nginx", "812", "GET /", 3, 6)
        assert usual == _parse(line, received, source="syslog/tcp", peer=None, tz=UTC, fallback_host=None)
