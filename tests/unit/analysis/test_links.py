"""Device log lines -> link events, on a corpus of real formats; interface names matched through aliases."""

from __future__ import annotations

import pytest

from mepd.analysis.links import Link, canonical, find_interface, parse

# (message as stored: after the syslog header, what the device wrote; expected event and interface)
CORPUS: list[tuple[str, str | None, str | None]] = [
    # Cisco IOS / IOS-XE (the sequence number and timestamp are part of the message)
    ("12: *Mar  1 00:01:26.123: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down",
     "down", "GigabitEthernet0/1"),
    ("%LINEPROTO-5-UPDOWN: Line protocol on Interface GigabitEthernet0/1, changed state to down",
     "down", "GigabitEthernet0/1"),
    ("%LINK-3-UPDOWN: Interface FastEthernet0/24, changed state to up", "up", "FastEthernet0/24"),
    ("%LINEPROTO-5-UPDOWN: Line protocol on Interface Vlan10, changed state to up", "up", "Vlan10"),
    ("%LINK-5-CHANGED: Interface GigabitEthernet1/0/3, changed state to administratively down",
     "down", "GigabitEthernet1/0/3"),
    ("000123: Jan 12 10:00:01.555 UTC: %SYS-5-RESTART: System restarted --", "restart", None),
    ("%SYS-5-RELOAD: Reload requested by admin on vty0 (10.0.0.1). Reload Reason: Reload Command.",
     "restart", None),
    ("%SNMP-5-COLDSTART: SNMP agent on host sw1 is undergoing a cold start", "restart", None),
    # Cisco NX-OS
    ("%ETHPORT-5-IF_DOWN_LINK_FAILURE: Interface Ethernet1/1 is down (Link failure)", "down", "Ethernet1/1"),
    ("%ETHPORT-5-IF_UP: Interface Ethernet1/1 is up in mode access", "up", "Ethernet1/1"),
    # Juniper Junos (mib2d)
    ("SNMP_TRAP_LINK_DOWN: ifIndex 531, ifAdminStatus up(1), ifOperStatus down(2), ifName ge-0/0/1",
     "down", "ge-0/0/1"),
    ("SNMP_TRAP_LINK_UP: ifIndex 531, ifAdminStatus up(1), ifOperStatus up(1), ifName ge-0/0/1", "up", "ge-0/0/1"),
    ("SNMPD_TRAP_COLD_START: trap_generate_cold: SNMP trap: cold start", "restart", None),
    # Linux kernel drivers
    ("e1000e 0000:00:19.0 eth0: NIC Link is Down", "down", "eth0"),
    ("[ 1234.567890] r8169 0000:02:00.0 enp2s0: Link is Down", "down", "enp2s0"),
    ("eth0: Link is Down", "down", "eth0"),
    ("igb 0000:01:00.0 enp1s0: igb: enp1s0 NIC Link is Up 1000 Mbps Full Duplex, Flow Control: RX/TX", "up",
     "enp1s0"),
    ("e1000e 0000:00:1f.6 eno1: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: None", "up", "eno1"),
    ("IPv6: ADDRCONF(NETDEV_CHANGE): eth1: link becomes ready", "up", "eth1"),
    # net-snmp's own start
    ("Received coldStart trap from 192.0.2.1", "restart", None),
    # Not link events
    ("Accepted publickey for admin from 192.0.2.9 port 50122 ssh2", None, None),
    ("%SEC-6-IPACCESSLOGP: list 101 denied tcp 10.1.1.1(1234) -> 10.2.2.2(80), 1 packet", None, None),
    ("%SYS-5-CONFIG_I: Configured from console by admin on vty0", None, None),
    ("Interface GigabitEthernet0/1 description changed", None, None),
]


@pytest.mark.parametrize(("message", "event", "interface"), CORPUS)
def test_corpus(message: str, event: str | None, interface: str | None) -> None:
    found = parse(message)
    if event is None:
        assert found is None
    else:
        assert isinstance(found, Link)
        assert (found.event, found.interface) == (event, interface)


@pytest.mark.parametrize(("a", "b"), [
    ("Gi0/1", "GigabitEthernet0/1"), ("gi0/1", "GigabitEthernet0/1"), ("Te1/1/1", "TenGigabitEthernet1/1/1"),
    ("Po1", "Port-channel1"), ("Vl10", "Vlan10"), ("Eth1/1", "Ethernet1/1"), ("Fa0/24", "FastEthernet0/24"),
    ("ge-0/0/1", "GE-0/0/1"), ("Gi1/0/1.100", "GigabitEthernet1/0/1.100"),
])
def test_aliases_are_one_name(a: str, b: str) -> None:
    assert canonical(a) == canonical(b)


@pytest.mark.parametrize(("a", "b"), [("Gi0/1", "Gi0/10"), ("Gi0/1", "Te0/1"), ("eth0", "eth1"), ("Po1", "Lo1")])
def test_different_interfaces_stay_apart(a: str, b: str) -> None:
    assert canonical(a) != canonical(b)


def test_find_interface_by_ifname_or_ifdescr() -> None:
    table = [("Gi0/1", "GigabitEthernet0/1"), ("Gi0/2", "GigabitEthernet0/2"), ("eth0", "")]
    assert find_interface("GigabitEthernet0/2", table) == "Gi0/2"
    assert find_interface("Gi0/1", table) == "Gi0/1"
    assert find_interface("eth0", table) == "eth0"
    assert find_interface("GigabitEthernet0/3", table) is None


def test_find_interface_by_its_metric_key_name() -> None:
    """The poller names interfaces as key parts: "/" becomes "_"."""
    table = [("GigabitEthernet0_1", "GigabitEthernet0/1 port"), ("ge-0_0_1", "")]
    assert find_interface("Gi0/1", table) == "GigabitEthernet0_1"
    assert find_interface("ge-0/0/1", table) == "ge-0_0_1"
