"""`[fleet]` errors name their key path; the wire shape round-trips a record with its node."""

from __future__ import annotations

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
    (back,) = wire.decode(b"not json\n", "web2", 5.0)
    assert (back.node, back.raw, back.received) == ("web2", "not json", 5.0)
    assert back.parse_error is not None
