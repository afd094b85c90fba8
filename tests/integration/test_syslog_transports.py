"""Syslog transports with real peers: TLS (and mutual TLS), a local datagram socket with
`logger -u`, systemd socket activation, and a real rsyslogd forwarding over UDP and TCP."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import Mepd, free_port, start_rsyslogd, stop_process, syslog_listen, wait_for

MakeMepd = Callable[..., Mepd]


def tls_listen(port: int, pki: Path, mutual: bool) -> str:
    text = syslog_listen(port, "tls") + f'tls_cert = "{pki / "server.pem"}"\ntls_key = "{pki / "server.key"}"\n'
    return text + (f'tls_client_ca = "{pki / "ca.pem"}"\n' if mutual else "")


def tls_send(port: int, pki: Path, payload: bytes, client_cert: bool) -> None:
    """Send, then wait for the server to close: with TLS 1.3 a refused certificate shows only then."""
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if client_cert:
        ctx.load_cert_chain(str(pki / "client.pem"), str(pki / "client.key"))
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        s.sendall(payload)
        s.unwrap()


def tls_refused(port: int, pki: Path, payload: bytes) -> bool:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(payload)
            return s.recv(1) == b""
    except (ssl.SSLError, ConnectionError):
        return True


def test_tls_with_python_ssl_client(mepd_factory: MakeMepd, pki: Path) -> None:
    port = free_port()
    d = mepd_factory(tls_listen(port, pki, mutual=False)).start()
    tls_send(port, pki, b"29 <14>1 - h1 app - - - over tls<14>1 - h1 app - - - second\n", client_cert=False)
    records = d.wait_logs(2, "--host", "h1")
    assert [(r["message"], r["source"]) for r in records] == [("over tls", "syslog/tls"), ("second", "syslog/tls")]


def test_mutual_tls_refuses_a_client_without_certificate(mepd_factory: MakeMepd, pki: Path) -> None:
    port = free_port()
    d = mepd_factory(tls_listen(port, pki, mutual=True)).start()
    assert tls_refused(port, pki, b"<14>1 - nocert app - - - refused\n")
    tls_send(port, pki, b"<14>1 - withcert app - - - accepted\n", client_cert=True)
    assert d.wait_logs(1, "--host", "withcert")[0]["message"] == "accepted"
    status = d.mepctl_json("status")
    tls = next(c for c in status["components"] if c["name"].startswith("syslog/tls"))
    wait_for(lambda: next(c for c in d.mepctl_json("status")["components"]
                          if c["name"].startswith("syslog/tls"))["counters"].get("tls_handshake_errors") == 1,
             what="the refused handshake to be counted")
    assert tls["state"] == "running"
    assert d.logs("--host", "nocert") == []
    assert "TLS handshake with 127.0.0.1:" in d.stderr()


def test_openssl_s_client(mepd_factory: MakeMepd, pki: Path) -> None:
    port = free_port()
    d = mepd_factory(tls_listen(port, pki, mutual=False)).start()
    subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(pki / "ca.pem"),
                    "-verify_return_error", "-quiet", "-no_ign_eof"],
                   input=b"<14>1 - sclient app - - - from s_client\n", check=True, capture_output=True, timeout=60)
    assert d.wait_logs(1, "--host", "sclient")[0]["message"] == "from s_client"


def test_local_datagram_socket_with_logger(mepd_factory: MakeMepd, short_tmp: Path) -> None:
    path = short_tmp / "dev-log"
    d = mepd_factory(f'[[syslog.listen]]\nproto = "unix"\naddress = "{path}"\n').start()
    assert oct(path.stat().st_mode & 0o777) == "0o666"
    subprocess.run(["logger", "-u", str(path), "-t", "localapp", "local hello"], check=True, timeout=30)
    record = d.wait_logs(1, "--app", "localapp")[0]
    assert (record["message"], record["source"]) == ("local hello", "syslog/unix")
    assert record["host"] == socket.gethostname()


def test_socket_activation_uses_inherited_sockets(mepd_factory: MakeMepd) -> None:
    port = free_port()
    # The entry names a port nobody could bind here (514 needs root): only the inherited fd serves it.
    d = mepd_factory('[[syslog.listen]]\nproto = "tcp"\naddress = "0.0.0.0:514"\nfd_name = "syslog-tcp"\n')
    env_names = ["PATH", "HOME", "NOTIFY_SOCKET", "PYTHONPATH", "VIRTUAL_ENV"]
    wrapper = ("systemd-socket-activate", "-l", f"127.0.0.1:{port}", "--fdname=syslog-tcp",
               *(f"-E{name}" for name in env_names if name in os.environ or name == "NOTIFY_SOCKET"))
    d.extra_env["PYTHONPATH"] = str(Path(__file__).parent.parent.parent)
    d.start(wait_ready=False, wrapper=wrapper)

    def connect() -> socket.socket | None:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=30)
        except ConnectionRefusedError:
            return None

    conn = wait_for(connect, what="systemd-socket-activate to listen")
    with conn:
        conn.sendall(b"<14>1 - act app - - - via the inherited socket\n")
    d.wait_ready()
    assert d.wait_logs(1, "--host", "act")[0]["message"] == "via the inherited socket"
    assert "inherited from systemd" in d.stderr()
    assert d.stop() == 0


@pytest.fixture
def rsyslog(short_tmp: Path) -> Iterator[Callable[[str], Path]]:
    """Start a real rsyslogd reading a private socket and forwarding with the given omfwd action."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(action: str) -> Path:
        return start_rsyslogd(short_tmp / "rsyslog", f"*.* {action}\n", procs)

    yield start
    for proc in procs:
        stop_process(proc)


@pytest.mark.parametrize(("proto", "action"), [
    ("udp", 'action(type="omfwd" target="127.0.0.1" port="{port}" protocol="udp")'),
    ("tcp", 'action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp" TCP_Framing="octet-counted"'
            ' template="RSYSLOG_SyslogProtocol23Format")'),
    ("tcp", 'action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp" template="RSYSLOG_ForwardFormat")'),
])
def test_rsyslog_forwarding_arrives_exactly_once(mepd_factory: MakeMepd, rsyslog: Callable[[str], Path],
                                                 proto: str, action: str) -> None:
    port = free_port()
    d = mepd_factory(syslog_listen(port, proto)).start()
    sock = rsyslog(action.format(port=port))
    count = 200
    for i in range(count):
        subprocess.run(["logger", "-u", str(sock), "-t", "fwdapp", "-p", "daemon.warning", f"forwarded {i:04d}"],
                       check=True, timeout=30)
    records = d.wait_logs(count, "--app", "fwdapp")
    # rsyslog's %msg% of a local message keeps the space after "TAG:"; the 5424 template sends it as is.
    messages = sorted(r["message"].lstrip(" ") for r in records)
    assert messages == [f"forwarded {i:04d}" for i in range(count)]
    assert {(r["facility"], r["severity"], r["source"], r["host"]) for r in records} == {
        ("daemon", "warning", f"syslog/{proto}", socket.gethostname())}
    assert all(r["parse_error"] is None for r in records)


def test_status_reports_kernel_drops_for_udp(mepd_factory: MakeMepd) -> None:
    d = mepd_factory(syslog_listen(free_port(), "udp")).start()

    def kernel_counter() -> bool:
        udp = next(c for c in d.mepctl_json("status")["components"] if c["name"].startswith("syslog/udp"))
        return "dropped.kernel" in udp["counters"]

    wait_for(kernel_counter, what="the kernel drop counter in status")
    assert sys.platform == "linux"


def test_out_of_file_descriptors_accepting_backs_off_and_logs_sparingly(mepd_factory: MakeMepd) -> None:
    """Issue 17 item 13: with descriptors exhausted, asyncio's accept loop wrote 103,683 error lines in 25 s."""
    port = free_port()
    d = mepd_factory(syslog_listen(port, "tcp"))
    d.start(wrapper=("prlimit", "--nofile=40:40", "--"))  # about 20 more than the daemon holds at rest
    clients = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(60)]
    try:
        wait_for(lambda: "Too many open files" in d.stderr(), what="the daemon to run out of descriptors")
    finally:
        for c in clients:
            c.close()

    def tcp_counters() -> dict[str, int]:
        status = d.mepctl_json("status")
        return dict(next(c for c in status["components"] if c["name"].startswith("syslog/tcp"))["counters"])

    counters = wait_for(lambda: (c := tcp_counters())["connections"] == 60 and c, what="every connection served")
    assert d.stderr().count("Too many open files") <= 3, "one line per interval while it lasts"
    assert counters["accept_errors"] >= 1
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"<14>1 - h app - - - accepted again\n")
    assert d.wait_logs(1, "--grep", "accepted again")
