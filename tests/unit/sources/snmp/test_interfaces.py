"""Interface naming and selection."""

from __future__ import annotations

from mepd.config import SnmpTargetConfig
from mepd.sources.snmp.interfaces import Interface, interfaces_from, metric_name, select
from mepd.sources.snmp.wire import Counter32, Counter64, Gauge32


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
