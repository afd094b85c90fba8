"""systemd's D-Bus API, as the `systemd_unit` check reads it: a unit's states and restarts, and its changes.

dbus-fast (asyncio, maintained, wheels on PyPI with no C library to build
against) speaks the wire protocol itself; the low-level `Message` calls below
need no introspection.  One connection per check, made at its first run and
again after the bus drops it.  `LoadUnit` gives the unit's object path (and
loads a unit that is not loaded: an inactive unit is a state, not an error);
one `GetAll` per interface reads Unit's ActiveState, SubState and LoadState,
and Service's NRestarts.  systemd emits PropertiesChanged on a unit's object
only while some client has called Manager.Subscribe(), which the client does;
a match rule on that signal sets `changed`, so the check sees a failure at
once, not at its next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from typing import Any, Final

from dbus_fast import AuthError, DBusError, Message, MessageFlag, MessageType
from dbus_fast.aio import MessageBus

SYSTEMD: Final = "org.freedesktop.systemd1"
MANAGER_PATH: Final = "/org/freedesktop/systemd1"
MANAGER: Final = "org.freedesktop.systemd1.Manager"
UNIT: Final = "org.freedesktop.systemd1.Unit"
SERVICE: Final = "org.freedesktop.systemd1.Service"
PROPERTIES: Final = "org.freedesktop.DBus.Properties"
DBUS: Final = "org.freedesktop.DBus"
SYSTEM_BUS: Final = "unix:path=/run/dbus/system_bus_socket"


class NoBusError(Exception):
    """No D-Bus to talk to (a container without one), or it refused us: the check cannot tell the unit's state."""


class SystemdError(Exception):
    """The bus answers but systemd does not (not running there, access denied): the check cannot tell either."""


@dataclass(frozen=True, slots=True)
class UnitState:
    active: str  # ActiveState: active, reloading, inactive, failed, activating, deactivating
    sub: str  # SubState: running, exited, dead, failed, auto-restart...
    load: str  # LoadState: loaded, not-found, masked, error...
    restarts: int | None  # NRestarts of a service, since it was loaded; None for other unit types


class SystemdClient:
    """A connection to systemd on one bus (`address`, "" for the system bus) that watches one unit."""

    def __init__(self, unit: str, address: str = "") -> None:
        self.unit = unit
        self.address = address or os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or SYSTEM_BUS
        self.where = f"{'bus' if address else 'system bus'} {self.address}"
        self.changed = asyncio.Event()
        self._bus: MessageBus | None = None
        self._path: str | None = None

    async def state(self) -> UnitState:
        """The unit's state now; NoBusError or SystemdError when it cannot be read."""
        bus = await self._connected()
        try:
            if self._path is None:
                self._path = str(await self._call(bus, MANAGER_PATH, MANAGER, "LoadUnit", "s", self.unit))
                rule = (f"type='signal',sender='{SYSTEMD}',path='{self._path}',interface='{PROPERTIES}',"
                        "member='PropertiesChanged'")
                await self._call(bus, "/org/freedesktop/DBus", DBUS, "AddMatch", "s", rule, destination=DBUS)
            unit = await self._call(bus, self._path, PROPERTIES, "GetAll", "s", UNIT)
            service = (await self._call(bus, self._path, PROPERTIES, "GetAll", "s", SERVICE)
                       if self.unit.endswith(".service") else {})
        except DBusError as e:
            raise SystemdError(f"systemd does not answer on {self.where}: {e.text} ({e.type})") from None
        restarts = service.get("NRestarts")
        return UnitState(str(_value(unit, "ActiveState")), str(_value(unit, "SubState")),
                         str(_value(unit, "LoadState")), None if restarts is None else int(restarts.value))

    async def _connected(self) -> MessageBus:
        if self._bus is not None and self._bus.connected:
            return self._bus
        await self.close()
        bus = MessageBus(bus_address=self.address)
        try:
            await bus.connect()
        except OSError as e:
            raise NoBusError(f"no {self.where}: {e.strerror or e}") from None
        except (AuthError, ValueError) as e:  # refused us, or a bad address
            raise NoBusError(f"cannot use {self.where}: {e}") from None
        bus.add_message_handler(self._on_message)
        self._bus = bus
        try:
            await self._call(bus, MANAGER_PATH, MANAGER, "Subscribe", "")
        except DBusError as e:
            raise SystemdError(f"systemd does not answer on {self.where}: {e.text} ({e.type})") from None
        return bus

    def _on_message(self, msg: Message) -> None:
        if (msg.message_type is MessageType.SIGNAL and msg.member == "PropertiesChanged"
                and msg.path == self._path):
            self.changed.set()

    @staticmethod
    async def _call(bus: MessageBus, path: str, interface: str, member: str, signature: str, *body: Any,
                    destination: str = SYSTEMD) -> Any:
        # NO_AUTOSTART: a check looks, it never has the bus start a service to answer it.
        reply = await bus.call(Message(destination=destination, path=path, interface=interface, member=member,
                                       signature=signature, body=list(body), flags=MessageFlag.NO_AUTOSTART))
        if reply.message_type is MessageType.ERROR:
            raise DBusError(reply.error_name or "unknown", str(reply.body[0]) if reply.body else "", reply)
        return reply.body[0] if reply.body else None

    async def close(self) -> None:
        bus, self._bus, self._path = self._bus, None, None
        if bus is not None:
            bus.disconnect()
            with contextlib.suppress(Exception):  # how it ended does not matter any more
                await bus.wait_for_disconnect()  # type: ignore[no-untyped-call]


def _value(props: dict[str, Any], name: str) -> object:
    variant = props.get(name)
    return "" if variant is None else variant.value
