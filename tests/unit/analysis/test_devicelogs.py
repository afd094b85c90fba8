"""Which SNMP target a syslog record comes from (`DeviceIndex`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mepd.analysis.devicelogs import DeviceIndex
from mepd.model import LogRecord


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    host: str
    syslog_hosts: tuple[str, ...] = field(default=())


def record(host: str | None, peer: str | None = None) -> LogRecord:
    return LogRecord(ts=0.0, received=0.0, source="syslog", message="x", host=host, peer=peer)


def test_a_target_is_found_by_sender_address_by_name_and_by_an_fqdn_of_its_short_sysname() -> None:
    index = DeviceIndex.build([Target("core", "192.0.2.1"), Target("edge", "edge-sw")], {"core": "core1"})
    assert index.target_of(record("whatever", "192.0.2.1:514")) == "core"
    assert index.target_of(record("CORE1.example.net")) == "core"
    assert index.target_of(record("edge-sw")) == "edge"
    assert index.target_of(record("other")) is None


def test_an_address_target_does_not_claim_hosts_named_after_its_first_octet() -> None:
    index = DeviceIndex.build([Target("lab", "127.0.0.1")], {})
    assert index.target_of(record("127")) is None
    assert index.target_of(record("127.example.net")) is None
    assert index.target_of(record("127.0.0.1")) == "lab"
