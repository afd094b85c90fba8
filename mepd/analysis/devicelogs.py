"""Device syslog tied to its SNMP target: a record from a target's device, and what it says of its interfaces.

A record is from a target's device when it came from the target's address (the
datagram's or connection's peer), or names as its host the target's `host`,
its name, its sysName (as the last poll read it) or one of its `syslog_hosts`.
Its message is then read by `mepd.analysis.links`: a restart is handed to the
target through the SNMP hub (`restarts`), so its next poll computes no rate
across it; a link event is matched to the interface of the target's last poll
(ifName or ifDescr, aliases included) and, through `observe` (the alert
engine's), states the interface's `oper_up` (0 down, 1 up) at once, so a rule
on it need not wait for the next poll.  The timeline (mepd.api.timeline) uses
`DeviceIndex` and the same parse to find a target's linked lines in the store.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from mepd.analysis import links
from mepd.model import LogRecord
from mepd.pipeline import Counters, Subscription

log = logging.getLogger(__name__)


class TargetLike(Protocol):
    """The fields of a `[[snmp.target]]` read here (the config owns the dataclass)."""

    @property
    def name(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def syslog_hosts(self) -> Sequence[str]: ...


class InterfaceLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def descr(self) -> str: ...


class HubLike(Protocol):
    """What the SNMP targets share (mepd.sources.snmp.target.SnmpHub), by target name."""

    @property
    def interfaces(self) -> Mapping[str, Mapping[str, InterfaceLike]]: ...
    @property
    def sys_names(self) -> Mapping[str, str]: ...
    @property
    def restarts(self) -> MutableMapping[str, float]: ...


def peer_address(peer: str | None) -> str | None:
    """"192.0.2.1:514" or "[2001:db8::1]:514" -> the address, normalised; None for a socket path or nothing."""
    if not peer:
        return None
    host = peer.rpartition(":")[0] if ":" in peer else peer
    host = host.strip("[]")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class DeviceIndex:
    """Target by address and by host name (lower case), from the config and the sysNames polled."""

    by_address: Mapping[str, str]
    by_name: Mapping[str, str]

    @classmethod
    def build(cls, targets: Sequence[TargetLike], sys_names: Mapping[str, str]) -> DeviceIndex:
        by_address: dict[str, str] = {}
        by_name: dict[str, str] = {}
        for t in targets:
            with contextlib.suppress(ValueError):  # a host name: matched by name only
                by_address.setdefault(str(ipaddress.ip_address(t.host)), t.name)
            for name in (t.host, *t.syslog_hosts, sys_names.get(t.name, "")):
                if name:
                    by_name.setdefault(name.lower(), t.name)
                    if peer_address(name) is None:  # an address's first octet is no host's name
                        by_name.setdefault(name.lower().split(".")[0], t.name)  # sysName is often the FQDN
        return cls(by_address, by_name)

    def target_of(self, rec: LogRecord) -> str | None:
        address = peer_address(rec.peer)
        if address is not None and (found := self.by_address.get(address)) is not None:
            return found
        if not rec.host:
            return None
        host = rec.host.lower()
        found = self.by_name.get(host)
        if found is None and peer_address(host) is None:
            found = self.by_name.get(host.split(".")[0])  # an FQDN for a short sysName
        return found

    def hosts_of(self, target: str) -> list[str]:
        """The host names records of `target` may carry (for a store query)."""
        return [name for name, t in self.by_name.items() if t == target]

    def addresses_of(self, target: str) -> list[str]:
        return [address for address, t in self.by_address.items() if t == target]


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """A record's link to a target: the event its message states and the interface (ifName) it names."""

    target: str
    link: links.Link | None
    interface: str | None


def link_record(index: DeviceIndex, hub: HubLike, rec: LogRecord) -> DeviceEvent | None:
    """The record's link to a target, None when it is from no target's device."""
    target = index.target_of(rec)
    if target is None:
        return None
    link = links.parse(rec.message)
    interface = None
    if link is not None and link.interface is not None:
        table = hub.interfaces.get(target, {})
        interface = links.find_interface(link.interface, ((i.name, i.descr) for i in table.values()))
    return DeviceEvent(target, link, interface)


# (metric key, arrival time, value, the line): what a link line states, for the alert engine
Observe = Callable[[str, float, float, str], None]


def oper_up_key(target: str, interface: str) -> str:
    """The key of the interface's polled `oper_up` (mepd.sources.snmp.interfaces), which a link line states."""
    return f"snmp.{target}.{interface}.oper_up"


class DeviceLogs:
    """The consumer: links each record to its target, hands restarts to the targets' polls."""

    def __init__(self, targets: Sequence[TargetLike], hub: HubLike, logs: Subscription[LogRecord],
                 *, observe: Observe | None = None, batch_size: int = 2000) -> None:
        self.name = "analysis/devices"
        self.observe = observe
        self.counters = Counters()
        self.counters.declare("linked", "link_events", "restarts", "unknown_interface")
        self.hub = hub
        self.logs = logs
        self.batch_size = batch_size
        self.targets: Sequence[TargetLike] = ()
        self._index = DeviceIndex({}, {})
        self._sys_names: dict[str, str] = {}
        self.configure(targets)

    def configure(self, targets: Sequence[TargetLike]) -> None:
        self.targets = targets
        self._sys_names = dict(self.hub.sys_names)
        self._index = DeviceIndex.build(targets, self._sys_names)

    @property
    def index(self) -> DeviceIndex:
        if self.hub.sys_names != self._sys_names:  # a poll read a (new) sysName
            self.configure(self.targets)
        return self._index

    async def run(self, started: Callable[[], None]) -> None:
        started()
        await self.logs.consume(self.process, self.batch_size, 0.05)

    def process(self, records: Sequence[LogRecord]) -> None:
        if not self.targets:
            return
        index = self.index
        for rec in records:
            event = link_record(index, self.hub, rec)
            if event is None:
                continue
            self.counters.inc("linked")
            if event.link is None:
                continue
            if event.link.event == "restart":
                self.counters.inc("restarts")
                self.hub.restarts[event.target] = rec.received
                log.info("%s: the device's log says it restarted: its counters' next rates are unknown",
                         event.target)
            elif event.interface is None:
                self.counters.inc("unknown_interface")
            else:
                self.counters.inc("link_events")
                if self.observe is not None:
                    self.observe(oper_up_key(event.target, event.interface), rec.received,
                                 0.0 if event.link.event == "down" else 1.0, rec.message)


def create(targets: Sequence[TargetLike], hub: HubLike, logs: Subscription[LogRecord],
           observe: Observe | None = None) -> DeviceLogs:
    return DeviceLogs(targets, hub, logs, observe=observe)
