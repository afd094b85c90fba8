"""The part of systemd's D-Bus API the systemd_unit check uses, served on a real bus by dbus-fast.

It owns org.freedesktop.systemd1 and exports the Manager (LoadUnit, Subscribe) and one
unit object with the Unit (ActiveState, SubState, LoadState) and Service (NRestarts)
interfaces, under the names systemd's documentation gives.  `set_state` changes the unit
and emits PropertiesChanged as systemd does, only once a client has called Subscribe.
"""

from __future__ import annotations

from typing import Any

from dbus_fast import PropertyAccess
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusObjectPath, DBusStr, DBusUInt32
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

NAME = "org.freedesktop.systemd1"
MANAGER_PATH = "/org/freedesktop/systemd1"


def unit_path(unit: str) -> str:
    """systemd's object path of a unit: bytes other than [A-Za-z0-9] escaped as _XX."""
    return "/org/freedesktop/systemd1/unit/" + "".join(c if c.isalnum() else f"_{ord(c):02x}" for c in unit)


class Unit(ServiceInterface):
    def __init__(self) -> None:
        super().__init__("org.freedesktop.systemd1.Unit")
        self.active, self.sub, self.load = "active", "running", "loaded"

    @dbus_property(access=PropertyAccess.READ, name="ActiveState")
    def active_state(self) -> DBusStr:
        return self.active

    @dbus_property(access=PropertyAccess.READ, name="SubState")
    def sub_state(self) -> DBusStr:
        return self.sub

    @dbus_property(access=PropertyAccess.READ, name="LoadState")
    def load_state(self) -> DBusStr:
        return self.load


class Service(ServiceInterface):
    def __init__(self) -> None:
        super().__init__("org.freedesktop.systemd1.Service")
        self.restarts = 0

    @dbus_property(access=PropertyAccess.READ, name="NRestarts")
    def n_restarts(self) -> DBusUInt32:
        return self.restarts


class Manager(ServiceInterface):
    def __init__(self, units: dict[str, str]) -> None:
        super().__init__("org.freedesktop.systemd1.Manager")
        self.units = units
        self.subscribed = 0

    @dbus_method(name="LoadUnit")
    def load_unit(self, name: DBusStr) -> DBusObjectPath:
        return self.units.get(name, unit_path(name))

    @dbus_method(name="Subscribe")
    def subscribe(self):  # type: ignore[no-untyped-def]  # no "-> None": dbus-fast would read it as a signature
        self.subscribed += 1


class FakeSystemd:
    """One service unit, `unit`, on the bus at `address`."""

    def __init__(self, address: str, unit: str) -> None:
        self.address = address
        self.unit = Unit()
        self.service = Service()
        self.path = unit_path(unit)
        self.manager = Manager({unit: self.path})
        self.bus: MessageBus | None = None

    async def start(self) -> FakeSystemd:
        bus = self.bus = await MessageBus(bus_address=self.address).connect()
        bus.export(MANAGER_PATH, self.manager)
        bus.export(self.path, self.unit)
        bus.export(self.path, self.service)
        await bus.request_name(NAME)
        return self

    def set_state(self, active: str, sub: str, restarts: int | None = None) -> None:
        self.unit.active, self.unit.sub = active, sub
        changed: dict[str, Any] = {"ActiveState": active, "SubState": sub}
        if self.manager.subscribed:
            self.unit.emit_properties_changed(changed)
        if restarts is not None:
            self.service.restarts = restarts

    async def stop(self) -> None:
        if self.bus is not None:
            self.bus.disconnect()
            await self.bus.wait_for_disconnect()
