"""A device's log line -> what it says about its interfaces: link down or up, or a restart of the device.

The patterns are data (`PATTERNS`, extended by appending): each is an RE2 regex
(device messages are untrusted text, so matching is linear in time), the event
it means, and the named group `ifname` holding the interface, if any.  Tested
on a corpus of real formats: Cisco IOS/IOS-XE and NX-OS, Juniper Junos, Linux
kernels' drivers, net-snmp and Cisco cold starts.

Interface names in messages are abbreviated as the device pleases (`Gi0/1` in
one line, `GigabitEthernet0/1` in ifDescr): `canonical` reduces both to one
form, so `find_interface` matches a message's name to ifName or ifDescr.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from mepd.config.syntax import Regex, compile_regex

Event = Literal["down", "up", "restart"]


@dataclass(frozen=True, slots=True)
class Pattern:
    name: str
    regex: str
    event: Event


# Searched in the message (after the syslog header: app and pid are not in it).
PATTERNS: Final[list[Pattern]] = [
    # Cisco IOS: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down
    #            %LINEPROTO-5-UPDOWN: Line protocol on Interface Gi0/1, changed state to up
    #            %LINK-5-CHANGED: Interface Gi0/2, changed state to administratively down
    Pattern("cisco-updown", r"%(?:LINK|LINEPROTO)-\d-(?:UPDOWN|CHANGED): (?:Line protocol on )?Interface "
            r"(?P<ifname>[^,\s]+), changed state to (?:administratively )?down", "down"),
    Pattern("cisco-updown", r"%(?:LINK|LINEPROTO)-\d-(?:UPDOWN|CHANGED): (?:Line protocol on )?Interface "
            r"(?P<ifname>[^,\s]+), changed state to up", "up"),
    # Cisco NX-OS: %ETHPORT-5-IF_DOWN_LINK_FAILURE: Interface Ethernet1/1 is down (Link failure)
    Pattern("nxos-ethport", r"%ETHPORT-\d-IF_DOWN_\w+: Interface (?P<ifname>[^,\s]+) is down", "down"),
    Pattern("nxos-ethport", r"%ETHPORT-\d-IF_UP: Interface (?P<ifname>[^,\s]+) is up", "up"),
    # Cisco restarts: %SYS-5-RESTART: System restarted --   %SYS-5-RELOAD: Reload requested by ...
    Pattern("cisco-restart", r"%SYS-\d-(?:RESTART|RELOAD|COLDSTART)\b", "restart"),
    Pattern("cisco-snmp-coldstart", r"%SNMP-\d-COLDSTART\b", "restart"),
    # Junos: SNMP_TRAP_LINK_DOWN: ifIndex 531, ifAdminStatus up(1), ifOperStatus down(2), ifName ge-0/0/1
    Pattern("junos-link", r"SNMP_TRAP_LINK_DOWN: .*\bifName (?P<ifname>[^,\s]+)", "down"),
    Pattern("junos-link", r"SNMP_TRAP_LINK_UP: .*\bifName (?P<ifname>[^,\s]+)", "up"),
    # Junos restarts: SNMPD_TRAP_COLD_START: trap_generate_cold: SNMP trap: cold start
    Pattern("junos-coldstart", r"SNMPD_TRAP_COLD_START\b", "restart"),
    # Linux drivers: "e1000e 0000:00:19.0 eth0: NIC Link is Down", "r8169 ... enp2s0: Link is Down",
    # "igb 0000:01:00.0 enp1s0: igb: enp1s0 NIC Link is Up 1000 Mbps Full Duplex", "eth0: link down" (virtio)
    Pattern("linux-link", r"(?:^|\s)(?P<ifname>[A-Za-z][\w.@-]*): (?:\w+: \S+ )?(?:NIC )?[Ll]ink (?:is )?[Dd]own",
            "down"),
    Pattern("linux-link", r"(?:^|\s)(?P<ifname>[A-Za-z][\w.@-]*): (?:\w+: \S+ )?(?:NIC )?[Ll]ink (?:is )?[Uu]p",
            "up"),
    Pattern("linux-addrconf", r"ADDRCONF\(NETDEV_CHANGE\): (?P<ifname>[\w.@-]+): link becomes ready", "up"),
    # Any agent's cold start: net-snmp's "coldStart" trap notes, "cold start" in a vendor's words.
    Pattern("coldstart", r"(?i)\bcold[ _-]?start\b", "restart"),
]


@dataclass(frozen=True, slots=True)
class Link:
    """What a line says: the event, the interface as the line names it (None: the whole device), the pattern."""

    event: Event
    interface: str | None
    pattern: str


_COMPILED: dict[str, Regex] = {}


def _regex(p: Pattern) -> Regex:
    found = _COMPILED.get(p.regex)
    if found is None:
        found = _COMPILED[p.regex] = compile_regex(p.regex)
    return found


def parse(message: str, patterns: Iterable[Pattern] = PATTERNS) -> Link | None:
    """The first pattern that finds something in `message`, as a Link; None when none does."""
    for p in patterns:
        m = _regex(p).search(message)
        if m is not None:
            name = m.groupdict().get("ifname")  # type: ignore[attr-defined]
            return Link(p.event, name or None, p.name)
    return None


# Full interface type names (lower case) -> the short form both they and their abbreviations reduce to.
TYPES: Final = {
    "gigabitethernet": "gi", "fastethernet": "fa", "tengigabitethernet": "te", "tengige": "te",
    "twogigabitethernet": "tw", "twentyfivegige": "twe", "fortygigabitethernet": "fo", "fortygige": "fo",
    "hundredgigabitethernet": "hu", "hundredgige": "hu", "ethernet": "eth", "port-channel": "po",
    "portchannel": "po", "vlan": "vl", "loopback": "lo", "serial": "se", "tunnel": "tu", "management": "mgmt",
    "bundle-ether": "be",
}
_SPLIT: Final = re.compile(r"([A-Za-z-]*[A-Za-z])(.*)")
_NOT_KEY: Final = re.compile(r"[^A-Za-z0-9_-]")


def canonical(name: str) -> str:
    """`GigabitEthernet0/1`, `Gi0/1` and `gi0/1` -> `gi0/1`; names of other shapes (`ge-0/0/1`, `eth0`) lower-cased.

    An abbreviation is any prefix of at least two letters of a known type name
    (`Gig`, `Te`), so what a device writes matches what its ifDescr says."""
    m = _SPLIT.fullmatch(name.strip())
    if m is None:
        return name.strip().lower()
    kind, rest = m.group(1).lower(), m.group(2)
    if not rest or not rest[0].isdigit():
        return name.strip().lower()
    short = TYPES.get(kind)
    if short is None and len(kind) >= 2:
        short = next((s for full, s in TYPES.items() if full.startswith(kind)), None)
    return (short or kind) + rest.lower()


def _keyed(name: str) -> str:
    """`canonical` as a metric key part: the poller names interfaces so (`GigabitEthernet0_1`)."""
    return _NOT_KEY.sub("_", canonical(name))


def find_interface(named: str, interfaces: Iterable[tuple[str, str]]) -> str | None:
    """The name of the interface among (name as in metric keys, ifDescr) pairs that `named` (from a message)
    is; None."""
    want, keyed = canonical(named), _keyed(named)
    for if_name, descr in interfaces:
        if _keyed(if_name) == keyed or (descr and canonical(descr) == want):
            return if_name
    return None
