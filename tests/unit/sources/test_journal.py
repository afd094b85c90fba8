"""Journal entry -> LogRecord mapping, cursor parsing and the `[journal]` config section."""

from __future__ import annotations

import pytest

from mepd import config
from mepd.errors import ConfigErrors
from mepd.sources.journal import Cursor, entry_to_record, lost_between, unit_terms

CURSOR = (
    "s=55654e884fc6493792eeb674faa5a0ff;i=1f;b=6a0f1c3e2b7d4e58a9c0b1d2e3f40516;m=4c5310;t=60a24181e47d0;x=a5"
)


def test_service_entry() -> None:
    fields = {
        "_HOSTNAME": b"web1", "SYSLOG_IDENTIFIER": b"nginx", "_COMM": b"nginx: worker", "_PID": b"812",
        "PRIORITY": b"4", "SYSLOG_FACILITY": b"3", "MESSAGE": b"upstream timed out",
        "_SYSTEMD_UNIT": b"nginx.service",
        "MESSAGE_ID": b"fc2e22bc6ee647b6b90729ab34a250b1", "_BOOT_ID": b"6a0f1c3e2b7d4e58a9c0b1d2e3f40516",
    }
    r = entry_to_record(fields, 1_700_000_000_123_456, CURSOR, 5.0, ("MESSAGE_ID", "CODE_LINE"))
    assert (r.ts, r.received) == (1_700_000_000.123456, 5.0)
    assert (r.host, r.app, r.pid, r.severity, r.facility, r.msgid) == ("web1", "nginx", "812", 4, 3, None)
    assert r.message == "upstream timed out"
    assert r.source == "journal"
    assert r.sd == {"journal": {"unit": "nginx.service", "MESSAGE_ID": "fc2e22bc6ee647b6b90729ab34a250b1"}}
    assert r.cursor == ("journal", CURSOR)
    assert (r.parse_error, r.raw) == (None, None)


def test_comm_and_syslog_pid_stand_in() -> None:
    r = entry_to_record({"_COMM": b"kworker", "SYSLOG_PID": b"7", "MESSAGE": b"x"}, 0, CURSOR, 0.0)
    assert (r.app, r.pid, r.host, r.sd) == ("kworker", "7", None, {})


def test_binary_message_is_decoded_and_kept_escaped() -> None:
    r = entry_to_record({"MESSAGE": b"caf\xe9 \x1b[1mbold\x00"}, 0, CURSOR, 0.0)
    assert r.message == "caf\ufffd \x1b[1mbold\x00"
    assert r.raw == "caf\\xe9 \x1b[1mbold\x00"
    assert r.parse_error == "MESSAGE is not valid UTF-8"


def test_utf8_message_is_not_flagged() -> None:
    r = entry_to_record({"MESSAGE": "événement ✓".encode()}, 0, CURSOR, 0.0)
    assert (r.message, r.parse_error, r.raw) == ("événement ✓", None, None)


def test_missing_message_and_repeated_fields() -> None:
    assert entry_to_record({}, 0, CURSOR, 0.0).message == ""
    fields = {"MESSAGE": [b"a", b"b"], "_PID": [b"1", b"2"], "X": [b"\xff", b"y"]}
    r = entry_to_record(fields, 0, CURSOR, 0.0, ("X",))
    assert (r.message, r.pid, r.sd) == ("a\nb", "1", {"journal": {"X": "\ufffd"}})


@pytest.mark.parametrize(("priority", "facility", "expected"), [
    (b"0", b"23", (0, 23)), (b"7", b"0", (7, 0)), (b"8", b"24", (None, None)), (b"-1", b"x", (None, None)),
    (b"", b"", (None, None)),
])
def test_numbers_out_of_range_are_unknown(
    priority: bytes, facility: bytes, expected: tuple[int | None, ...]
) -> None:
    r = entry_to_record({"PRIORITY": priority, "SYSLOG_FACILITY": facility}, 0, CURSOR, 0.0)
    assert (r.severity, r.facility) == expected


def test_cursor_parse() -> None:
    c = Cursor.parse(CURSOR)
    assert c == Cursor("55654e884fc6493792eeb674faa5a0ff", 0x1F, 0x60A24181E47D0)
    assert Cursor.parse("s=1;i=zz;t=1") is None
    assert Cursor.parse("garbage") is None


def test_lost_between() -> None:
    saved = Cursor("a", 10, 100)
    assert lost_between(saved, Cursor("a", 11, 200)) == 0
    assert lost_between(saved, Cursor("a", 25, 200)) == 14
    assert lost_between(saved, Cursor("b", 25, 200)) is None
    assert lost_between(saved, None) is None


def test_unit_terms_follow_journalctl() -> None:
    assert [t[-1] for t in unit_terms("ssh")] == [
        "_SYSTEMD_UNIT=ssh.service", "COREDUMP_UNIT=ssh.service", "UNIT=ssh.service",
        "OBJECT_SYSTEMD_UNIT=ssh.service",
    ]
    assert next(unit_terms("cron.timer")) == ("_SYSTEMD_UNIT=cron.timer",)


def test_config_defaults_do_not_read_the_journal() -> None:
    cfg = config.parse({}, "/etc/mepd/mepd.toml")
    assert not cfg.journal.enabled
    assert (cfg.journal.path, cfg.journal.start, cfg.journal.fields) == ("", "tail", ())


def test_config_section() -> None:
    cfg = config.parse({"journal": {
        "enabled": True, "path": "j", "units": ["ssh"], "identifiers": ["cron"], "priority": "warning",
        "start": "head", "fields": ["MESSAGE_ID", "_CMDLINE"],
    }}, "/etc/mepd/mepd.toml")
    assert cfg.journal.path == "/etc/mepd/j"
    assert cfg.journal.units == ("ssh",)
    assert cfg.journal.fields == ("MESSAGE_ID", "_CMDLINE")


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigErrors) as info:
        config.parse({"journal": {"start": "middle"}}, "/m.toml")
    assert str(info.value) == '/m.toml: journal.start: expected "head" or "tail", got "middle"'
    bad = {"priority": "loud", "fields": ["message", "__CURSOR"], "units": ["a b"]}
    with pytest.raises(ConfigErrors) as info:
        config.parse({"journal": bad}, "/m.toml")
    assert [str(e) for e in info.value.errors] == [
        '/m.toml: journal.priority: unknown severity "loud"; expected one of emerg, alert, crit, err,'
        " warning, notice, info, debug",
        '/m.toml: journal.units[0]: invalid name "a b"',
        '/m.toml: journal.fields[0]: invalid journal field name "message"; expected one like "MESSAGE_ID"',
        '/m.toml: journal.fields[1]: invalid journal field name "__CURSOR"; expected one like "MESSAGE_ID"',
    ]
