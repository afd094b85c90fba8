"""`[[snmp.target]]` sections: validation, errors naming the target, the keys file; and storage.rrd.rrdcached."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mepd.config import parse
from mepd.errors import ConfigErrors


def errors(text: str, tmp_path: Path) -> list[str]:
    import tomllib  # noqa: PLC0415

    try:
        parse(tomllib.loads(text), str(tmp_path / "m.toml"))
    except ConfigErrors as e:
        return [f"{err.path}: {err.message}" for err in e.errors]
    return []


def test_config_errors_name_the_target(tmp_path: Path) -> None:
    errs = errors('''
[[snmp.target]]
name = "a b"
host = "h"
interval = "500ms"
version = "3"
auth_key = "short"
priv_protocol = "AES"
rra = ["5m"]
[[snmp.target]]
name = "x"
host = "h"
[[snmp.target.oid]]
name = "cpu"
oid = "not.an.oid"
[[snmp.target]]
name = "x"
host = "h"
version = "1"
''', tmp_path)
    joined = "\n".join(errs)
    assert "snmp.target[0].name: use only letters" in joined
    assert "snmp.target[0].interval: must be at least 1s" in joined
    assert "snmp.target[0].user: SNMPv3 needs a user" in joined
    assert "snmp.target[0].auth_key: SNMPv3 keys are at least 8 characters" in joined
    assert "snmp.target[0].rra[0]:" in joined
    assert "snmp.target[1].oid[0].oid:" in joined
    assert 'snmp.target[2].version: expected "2c" or "3"' in joined


def test_keys_file_must_be_private(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text('auth_key = "authpass123"\npriv_key = "privpass123"\n')
    os.chmod(keys, 0o644)
    text = f'[[snmp.target]]\nname = "a"\nhost = "h"\nversion = "3"\nuser = "u"\nkeys_file = "{keys}"\n'
    assert any("readable by others" in e for e in errors(text, tmp_path))
    os.chmod(keys, 0o600)
    assert errors(text, tmp_path) == []
    cfg = parse(__import__("tomllib").loads(text), str(tmp_path / "m.toml")).snmp.target[0]
    assert cfg.secrets()["priv_key"] == "privpass123"


def test_duplicate_target_names(tmp_path: Path) -> None:
    text = '[[snmp.target]]\nname = "a"\nhost = "h"\n[[snmp.target]]\nname = "a"\nhost = "g"\n'
    assert errors(text, tmp_path) == ["snmp.target[1].name: duplicate of snmp.target[0]"]


def test_depends_on_names_another_target(tmp_path: Path) -> None:
    text = ('[[snmp.target]]\nname = "core"\nhost = "h"\n[[snmp.target]]\nname = "sw"\nhost = "g"\n'
            'depends_on = ["core", "nope", "sw"]\nparent = "snmp.core.ge0.oper_up"\n')
    assert errors(text, tmp_path) == [
        'snmp.target[1].depends_on[1]: expected the name of another snmp.target, got "nope"',
        'snmp.target[1].depends_on[2]: expected the name of another snmp.target, got "sw"',
    ]


@pytest.mark.parametrize("bad", ["tcp:x", "relative.sock"])
def test_rrdcached_address(tmp_path: Path, bad: str) -> None:
    assert errors(f'[storage.rrd]\nrrdcached = "{bad}"\n', tmp_path)[0].startswith("storage.rrd.rrdcached")
