"""The sockets syslog listens on: bound here, or inherited from systemd.

An inherited socket is what lets the unprivileged service receive port 514;
it is never closed by a listener that stops (it could not be bound again), a
listener works on a duplicate of it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
from collections.abc import Sequence

from mepd.config import SyslogListenConfig, split_address
from mepd.systemd import ListenFd

log = logging.getLogger(__name__)

_WILDCARDS = frozenset({"0.0.0.0", "::"})  # noqa: S104 - compared with, not bound to
_SO_RCVBUFFORCE = 33  # Linux's value; Python's socket module does not export it

_SOCK_TYPES = {"udp": socket.SOCK_DGRAM, "tcp": socket.SOCK_STREAM, "tls": socket.SOCK_STREAM,
               "unix": socket.SOCK_DGRAM, "relp": socket.SOCK_STREAM}


def _same_address(cfg: SyslogListenConfig, fd: ListenFd) -> bool:
    if cfg.proto == "unix":
        return fd.family == socket.AF_UNIX and fd.address == cfg.address
    if fd.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    host, port = split_address(cfg.address)
    fd_host, fd_port = split_address(fd.address)
    return port == fd_port and (host == fd_host or (host in _WILDCARDS and fd_host in _WILDCARDS))


def match_inherited(cfg: SyslogListenConfig, fds: Sequence[ListenFd]) -> ListenFd | None:
    """The inherited socket for a listen entry: by `fd_name` (FileDescriptorName=), else by address."""
    candidates = [fd for fd in fds if fd.type == _SOCK_TYPES[cfg.proto]]
    if cfg.fd_name:
        return next((fd for fd in candidates if fd.name == cfg.fd_name), None)
    return next((fd for fd in candidates if _same_address(cfg, fd)), None)


def adopt(fd: ListenFd) -> socket.socket:
    sock = socket.socket(fileno=os.dup(fd.fd))
    sock.setblocking(False)
    return sock


def set_receive_buffer(sock: socket.socket, size: int, where: str) -> int:
    """Ask for `size` bytes; with CAP_NET_ADMIN past net.core.rmem_max. Returns what the kernel gave."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, size)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2  # Linux reports twice the usable size
    if got < size:
        log.warning("%s: receive buffer is %d bytes, not the %d asked; raise net.core.rmem_max", where, got, size)
    return got


def bind_inet(cfg: SyslogListenConfig, kind: int) -> socket.socket:
    host, port = split_address(cfg.address)
    family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=kind, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(sockaddr)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def bind_unix_datagram(cfg: SyslogListenConfig) -> socket.socket:
    """A local datagram socket like /dev/log; a leftover file from a crashed run is replaced."""
    os.makedirs(os.path.dirname(cfg.address), exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(cfg.address)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(cfg.address)
        os.chmod(cfg.address, cfg.mode)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def tls_context(cfg: SyslogListenConfig) -> ssl.SSLContext:
    """RFC 5425 server side; with `tls_client_ca`, clients must present a certificate it signed."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3 if cfg.tls_min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cfg.tls_cert, cfg.tls_key)
    if cfg.tls_client_ca:
        ctx.load_verify_locations(cfg.tls_client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def kernel_udp_drops(sock: socket.socket) -> int | None:
    """Datagrams the kernel dropped for this socket (full receive buffer), from /proc/net/udp{,6}."""
    inode = str(os.fstat(sock.fileno()).st_ino)
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as fh:
                next(fh)
                for line in fh:
                    fields = line.split()
                    if len(fields) >= 13 and fields[9] == inode:
                        return int(fields[-1])
        except OSError:
            continue
    return None
