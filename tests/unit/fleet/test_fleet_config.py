"""`[fleet]` errors name their key path; the wire shape round-trips a record with its node."""

from __future__ import annotations

import json
import tomllib

import pytest

from mepd import config
from mepd.errors import ConfigErrors
from mepd.fleet import wire


@pytest.mark.parametrize(("section", "path"), [
    ('servers = ["http://x:1"]', "fleet.servers[0]"),
    ('servers = ["nats://x:1"]\nnode = "a.b"', "fleet.node"),
    ('servers = ["nats://x:1"]\nuser = "u"', "fleet.password_file"),
    ('servers = ["nats://x:1"]\nreplicas = 7', "fleet.replicas"),
    ('servers = ["nats://x:1"]\n[fleet.central]\nconsumer = "a b"', "fleet.central.consumer"),
])
def test_fleet_errors_name_the_key(section: str, path: str) -> None:
    with pytest.raises(ConfigErrors) as e:
        config.parse(tomllib.loads(f"[fleet]\n{section}\n"), "/etc/mepd.toml")
    assert f"/etc/mepd.toml: {path}:" in str(e.value)


def test_a_line_that_is_no_record_is_kept_raw() -> None:
    (back,), _ = wire.decode(b"not json\n", "web2", 5.0)
    assert (back.node, back.raw, back.received) == ("web2", "not json", 5.0)
    assert back.parse_error is not None


def test_every_kind_of_line_in_one_message_is_read_as_if_alone() -> None:
    good = json.dumps({"ts": "2026-12-06T10:00:00.000001Z", "message": "ok \u2028 \x85", "node": "web1"})
    lines = [good, "", "  ", good + "  ", "  " + good, "not json", "[1, 2]", '{"message": "no time"}', "5",
             "[" * 100_000, '{"ts": "2026-12-06T10:00:00Z", "message": "a"} {"x": 1}', good]
    records, bad = wire.decode("\n".join(lines).encode(), "web2", 5.0)
    assert [r.message for r in records if r.parse_error is None] == ["ok \u2028 \x85"] * 4
    assert [r.raw for r in records if r.parse_error is not None] == lines[5:-1]
    assert bad == len(lines[5:-1])
    assert all(r.node == ("web1" if r.parse_error is None else "web2") for r in records)
