"""Interface naming and selection, and the [[snmp.target]] config checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mepd.config import SnmpTargetConfig, parse
from mepd.errors import ConfigErrors
from mepd.sources.snmp import Interface, interfaces_from, metric_name, select
from mepd.sources.snmpwire import Counter32, Counter64, Gauge32


def test_metric_name_replaces_unsafe_characters() -> None:
    assert metric_name("GigabitEthernet0/1.100") == "GigabitEthernet0_1_100"
    assert metric_name("eth0") == "eth0"


def table() -> dict[str, dict[tuple[int, ...], object]]:
    return {
        "descr": {(1,): b"lo", (2,): b"Intel eth", (3,): b"port 3",
                  (4,): b"dup"},
        "name": {(1,): b"lo", (2,): b"Gi0/1", (4,): b"Gi0/1"},
        "type": {(1,): 24, (2,): 6, (3,): 6, (4,): 6},
        "oper": {(1,): 1, (2,): 1, (3,): 2, (4,): 1},
        "admin": {(1,): 1, (2,): 1, (3,): 2, (4,): 1},
        "speed": {(1,): Gauge32(10_000_000), (2,): Gauge32(4294967295), (3,): Gauge32(100_000_000)},
        "high_speed": {(2,): Gauge32(10_000)},
        "hc_in_octets": {(1,): Counter64(5), (2,): Counter64(2**40)},
        "in_octets": {(3,): Counter32(7)},
    }


def test_interfaces_are_named_by_ifname_then_ifdescr_and_made_unique() -> None:
    ifs = interfaces_from(table())
    assert [i.name for i in ifs] == ["lo", "Gi0_1", "port_3", "Gi0_1_4"]
    assert [i.speed_bps for i in ifs] == [10e6, 10e9, 100e6, 0.0]
    assert ifs[1].counters["hc_in_octets"] == (2**40, 64)
    assert ifs[2].counters == {"in_octets": (7, 32)}


def cfg(**kw: object) -> SnmpTargetConfig:
    return SnmpTargetConfig(name="t", host="127.0.0.1", **kw)  # type: ignore[arg-type]


def names(ifs: list[Interface]) -> list[str]:
    return [i.name for i in ifs]


def test_selection() -> None:
    ifs = interfaces_from(table())
    assert names(select(ifs, cfg())) == ["lo", "Gi0_1", "port_3", "Gi0_1_4"]
    assert names(select(ifs, cfg(interfaces=("Gi*",)))) == ["Gi0_1", "Gi0_1_4"]
    assert names(select(ifs, cfg(interfaces=("Intel*",)))) == ["Gi0_1"]
    assert names(select(ifs, cfg(exclude=("lo",)))) == ["Gi0_1", "port_3", "Gi0_1_4"]
    assert names(select(ifs, cfg(if_index=(1, 3)))) == ["lo", "port_3"]
    assert names(select(ifs, cfg(if_type=(24,)))) == ["lo"]
    assert names(select(ifs, cfg(skip_down=True))) == ["lo", "Gi0_1", "Gi0_1_4"]
    assert names(select(ifs, cfg(skip_admin_down=True))) == ["lo", "Gi0_1", "Gi0_1_4"]


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


@pytest.mark.parametrize("bad", ["tcp:x", "relative.sock"])
def test_rrdcached_address(tmp_path: Path, bad: str) -> None:
    assert errors(f'[storage.rrd]\nrrdcached = "{bad}"\n', tmp_path)[0].startswith("storage.rrd.rrdcached")
