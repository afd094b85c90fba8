"""mepd started through the real systemd-socket-activate with the sockets of units/mepd.socket and mepd-tcp.socket.

The listen entries are the packaged config's (conf/mepd.toml: 0.0.0.0:514 with
fd_name), the names those of the socket units; only the port is a free loopback
one.  Two chained systemd-socket-activate processes pass a UDP and a TCP socket,
as systemd passes the two units' sockets; the first datagram starts mepd, as
with a socket unit.
"""

from __future__ import annotations

import configparser
import json
import os
import socket
import tomllib
from collections.abc import Callable

from tests.helpers import ROOT, Mepd, free_port, wait_for
from tests.integration.deploy.tools import tool

MakeMepd = Callable[..., Mepd]


def fd_name(unit: str) -> str:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.read_string((ROOT / "units" / unit).read_text())
    return parser["Socket"]["FileDescriptorName"]


def packaged_listen_entries() -> str:
    """conf/mepd.toml's [[syslog.listen]] entries as TOML: flat tables, whose JSON values are valid TOML."""
    entries = tomllib.loads((ROOT / "conf" / "mepd.toml").read_text())["syslog"]["listen"]
    out = []
    for entry in entries:
        out.append("[[syslog.listen]]")
        for key, value in entry.items():
            out.append(f"{key} = {json.dumps(value)}")
    return "\n".join(out) + "\n"


def udp_bound(port: int) -> bool:
    """Whether a UDP socket is bound to the port on 127.0.0.1, from the kernel's table (no datagram sent)."""
    with open("/proc/net/udp") as table:
        return any(line.split()[1] == f"0100007F:{port:04X}" for line in list(table)[1:])


def udp6_bound(port: int) -> bool:
    with open("/proc/net/udp6") as table:
        return any(line.split()[1].endswith(f":{port:04X}") for line in list(table)[1:])


def test_packaged_sockets_are_inherited_and_receive(mepd_factory: MakeMepd) -> None:
    udp_name, tcp_name = fd_name("mepd.socket"), fd_name("mepd-tcp.socket")
    port = free_port()
    d = mepd_factory(packaged_listen_entries())
    env = [f"-E{name}" for name in ("PATH", "HOME") if name in os.environ]
    env += [f"-ENOTIFY_SOCKET={d.notify.path}", f"-EPYTHONPATH={ROOT}"]
    activate = tool("systemd-socket-activate")
    wrapper = (
        activate, "--datagram", "-l", f"127.0.0.1:{port}", f"--fdname={udp_name}", *env,
        # The second one passes the first's socket on, then its own: names in that order.
        activate, "-l", f"127.0.0.1:{port}", f"--fdname={udp_name}:{tcp_name}", *env,
    )
    d.start(wait_ready=False, wrapper=wrapper)

    wait_for(lambda: udp_bound(port), what="systemd-socket-activate to bind the UDP port")
    # Nothing runs mepd until a datagram arrives: it is read from the inherited socket.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b"<14>1 2026-11-28T10:00:00Z act1 app - - - first datagram, starts mepd", ("127.0.0.1", port))
    d.wait_ready()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as tcp:
        tcp.sendall(b"<14>1 2026-11-28T10:00:01Z act2 app - - - over the inherited tcp socket\n")

    udp_record = d.wait_logs(1, "--host", "act1")[0]
    tcp_record = d.wait_logs(1, "--host", "act2")[0]
    assert (udp_record["message"], udp_record["source"]) == ("first datagram, starts mepd", "syslog/udp")
    assert (tcp_record["message"], tcp_record["source"]) == ("over the inherited tcp socket", "syslog/tcp")
    # Both listeners say so; neither bound 0.0.0.0:514 of its entry itself.
    wait_for(lambda: d.stderr().count("(inherited from systemd)") == 2, what="both listeners inherited")
    assert d.stop() == 0


def test_ipv4_senders_on_the_dual_stack_socket_keep_their_ipv4_address(mepd_factory: MakeMepd) -> None:
    """`ListenDatagram=514` is a [::] socket that IPv4 reaches as ::ffff:a.b.c.d: stored as a.b.c.d, as rsyslog does."""
    port = free_port()
    d = mepd_factory(packaged_listen_entries())
    env = [f"-E{name}" for name in ("PATH", "HOME") if name in os.environ]
    env += [f"-ENOTIFY_SOCKET={d.notify.path}", f"-EPYTHONPATH={ROOT}"]
    wrapper = (tool("systemd-socket-activate"), "--datagram", "-l", str(port), f"--fdname={fd_name('mepd.socket')}",
               *env)
    d.start(wait_ready=False, wrapper=wrapper)
    wait_for(lambda: udp6_bound(port), what="systemd-socket-activate to bind [::] on the port")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b"<13>Nov 28 10:00:00 su: no hostname here", ("127.0.0.1", port))
    d.wait_ready()
    record = d.wait_logs(1, "--grep", "no hostname here")[0]
    assert record["host"] == "127.0.0.1"
    assert str(record["peer"]).startswith("127.0.0.1:")
    assert d.stop() == 0
