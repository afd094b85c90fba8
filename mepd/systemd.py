"""The two systemd protocols a daemon speaks: sd_notify and socket activation.

Both are tiny, documented wire protocols (sd_notify(3), sd_listen_fds(3)); they
are spoken here directly so that they work the same with or without
libsystemd, and so tests can play systemd's part with a plain socket.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from typing import Final

log = logging.getLogger(__name__)

SD_LISTEN_FDS_START: Final = 3


class Notifier:
    """Sends state lines to $NOTIFY_SOCKET; does nothing when not run by systemd."""

    def __init__(self, address: str | None = None) -> None:
        addr = os.environ.get("NOTIFY_SOCKET", "") if address is None else address
        self._address: str | bytes | None = None
        if addr.startswith("@"):
            self._address = b"\0" + addr[1:].encode()
        elif addr.startswith("/"):
            self._address = addr
        self._sock: socket.socket | None = None
        self.dropped = 0

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *lines: str) -> None:
        if self._address is None:
            return
        if self._sock is None:
            # Non-blocking: a manager that stops reading must never freeze the event loop.
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
        try:
            self._sock.sendto("\n".join(lines).encode(), self._address)
        except BlockingIOError:
            self.dropped += 1
        except OSError as e:
            log.warning("sd_notify to %r failed: %s", self._address, e)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval() -> float | None:
    """Half the watchdog timeout systemd expects pings within, or None when there is none."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2e6


@dataclass(frozen=True, slots=True)
class ListenFd:
    """A socket inherited from systemd; `name` is the unit's FileDescriptorName (or "unknown")."""

    fd: int
    name: str
    family: int
    type: int
    address: str


def listen_fds(unset_environment: bool = True) -> list[ListenFd]:
    """The sockets passed by socket activation (LISTEN_FDS/LISTEN_FDNAMES), for this process only."""
    if os.environ.get("LISTEN_PID", "") != str(os.getpid()):
        return []
    count_text = os.environ.get("LISTEN_FDS", "0")
    count = int(count_text) if count_text.isdigit() else 0
    names = os.environ.get("LISTEN_FDNAMES", "").split(":")
    if unset_environment:
        for var in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            os.environ.pop(var, None)
    out = []
    for i in range(count):
        fd = SD_LISTEN_FDS_START + i
        os.set_inheritable(fd, False)
        sock = socket.socket(fileno=fd)
        try:
            address = _format_sockname(sock.family, sock.getsockname())
            out.append(ListenFd(fd, names[i] if i < len(names) and names[i] else "unknown",
                                sock.family, sock.type, address))
        finally:
            sock.detach()
    return out


def _format_sockname(family: int, name: object) -> str:
    if family == socket.AF_INET and isinstance(name, tuple):
        return f"{name[0]}:{name[1]}"
    if family == socket.AF_INET6 and isinstance(name, tuple):
        return f"[{name[0]}]:{name[1]}"
    if isinstance(name, bytes):
        return name.decode(errors="replace")
    return str(name)
