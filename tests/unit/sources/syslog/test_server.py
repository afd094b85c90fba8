"""The listeners in process, with real sockets on loopback: what hostile or broken senders cost (issue 17)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import mmap
import os
import select
import socket
import time
from asyncio import sslproto
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from mepd import config
from mepd.app import GC_THRESHOLDS
from mepd.model import LogRecord
from mepd.pipeline import Pipeline, Subscription
from mepd.sources.syslog import native, server
from tests.helpers import free_port, until

Listener = server.DatagramListener | server.StreamListener


@asynccontextmanager
async def listening(tmp_path: Path, **entry: Any) -> AsyncIterator[tuple[Listener, Subscription[LogRecord]]]:
    """A listener built from one `[[syslog.listen]]` entry, running until the block ends."""
    cfg = config.parse({"syslog": {"listen": [entry]}}, str(tmp_path / "mepd.toml"))
    pipeline = Pipeline()
    sub = pipeline.logs.subscribe("test", 10_000)
    handover = server.Handover()
    listener = server.create(cfg.syslog.listen[0], pipeline.logs, None, handover)
    ready = asyncio.Event()
    task = asyncio.create_task(listener.run(ready.set))
    await until(lambda: ready.is_set() or task.done(), "the listener to start")
    try:
        yield listener, sub
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        handover.close_unclaimed()


def counted(listener: Listener, name: str, value: int) -> Callable[[], bool]:
    return lambda: listener.counters.get(name) == value


async def closed_by_server(conn: socket.socket) -> bool:
    """Wait (off the loop) until the server closes `conn`: recv sees the end of the stream or a reset."""
    def recv() -> bool:
        try:
            return conn.recv(1) == b""
        except ConnectionResetError:
            return True
    return await asyncio.to_thread(recv)


def tls_entry(port: int, pki: Path, **more: Any) -> dict[str, Any]:
    return {"proto": "tls", "address": f"127.0.0.1:{port}", "tls_cert": str(pki / "server.pem"),
            "tls_key": str(pki / "server.key"), **more}


async def test_failed_tls_handshakes_are_freed_at_once_counted_and_logged_sparingly(
        tmp_path: Path, pki: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Plaintext sent to a TLS listener: each failed SSLProtocol (256 KiB buffer) was kept in a reference cycle
    until a full collection, which mepd's thresholds make rare: 4,000 such connections held 1.58 GB."""
    caplog.set_level(logging.INFO, logger=server.__name__)
    port, attempts = free_port(), 40
    gc.collect()
    thresholds = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    gc.disable()  # only reference counting frees: what mepd's raised thresholds leave in practice
    try:
        async with listening(tmp_path, **tls_entry(port, pki)) as (listener, _):
            for _ in range(attempts):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"<14>1 - plain app - - - not a ClientHello\n" * 100)
                writer.close()
            await until(counted(listener, "tls_handshake_errors", attempts), "every failed handshake counted")
            await until(lambda: not any(isinstance(o, sslproto.SSLProtocol) for o in gc.get_objects()),
                        "the failed TLS connections to be freed without a garbage collection")
    finally:
        gc.enable()
        gc.set_threshold(*thresholds)
    lines = [r.getMessage() for r in caplog.records if "TLS handshake with" in r.getMessage()]
    assert 1 <= len(lines) <= 3, "one line per interval, not one per failure"
    assert lines[0].endswith("(1 failed since the last message)")


async def test_handshake_timeout_frees_a_silent_client(tmp_path: Path, pki: Path) -> None:
    port = free_port()
    async with listening(tmp_path, **tls_entry(port, pki, handshake_timeout="200ms")) as (listener, _):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            assert await closed_by_server(conn)
        await until(counted(listener, "tls_handshake_errors", 1), "the timed-out handshake counted")
        assert isinstance(listener, server.StreamListener)
        await until(lambda: listener.connections == 0, "its slot given back")


async def test_connections_past_max_connections_are_closed_and_counted(tmp_path: Path) -> None:
    port = free_port()
    entry = {"proto": "tcp", "address": f"127.0.0.1:{port}", "max_connections": 2}
    async with listening(tmp_path, **entry) as (listener, sub):
        first = socket.create_connection(("127.0.0.1", port), timeout=30)
        second = socket.create_connection(("127.0.0.1", port), timeout=30)
        for i, conn in enumerate((first, second)):
            conn.sendall(b"<14>1 - h app - - - open %d\n" % i)
        await until(counted(listener, "received", 2), "both connections served")
        with socket.create_connection(("127.0.0.1", port), timeout=30) as third:
            assert await closed_by_server(third)
        assert listener.counters.get("connections_refused") == 1
        first.close()
        assert isinstance(listener, server.StreamListener)
        await until(lambda: listener.connections == 1, "the closed connection's slot given back")
        with socket.create_connection(("127.0.0.1", port), timeout=30) as fourth:
            fourth.sendall(b"<14>1 - h app - - - in the freed slot\n")
        await until(counted(listener, "received", 3), "the new connection served")
        second.close()
        assert listener.counters.get("connections_refused") == 1
        assert sorted(r.message for r in await sub.get_batch(10, 0)) == ["in the freed slot", "open 0", "open 1"]


async def test_idle_connection_is_closed_after_idle_timeout(tmp_path: Path) -> None:
    port = free_port()
    entry = {"proto": "tcp", "address": f"127.0.0.1:{port}", "idle_timeout": "300ms"}
    async with listening(tmp_path, **entry) as (listener, _):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            conn.sendall(b"<14>1 - h app - - - then silence\n")
            assert await closed_by_server(conn)
        assert (listener.counters.get("received"), listener.counters.get("idle_closed")) == (1, 1)


async def test_unix_datagram_past_64_kib_is_flagged_truncated(tmp_path: Path, short_tmp: Path) -> None:
    path = short_tmp / "log.sock"
    size = 100_000
    async with listening(tmp_path, proto="unix", address=str(path)) as (listener, sub):
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * size)
            head = b"<14>1 - big app - - - "
            s.sendto(head + b"x" * (size - len(head)), str(path))
        await until(counted(listener, "received", 1), "the datagram")
        record = (await sub.get_batch(1, 0))[0]
    assert record.sd["mepd"] == {"truncated_from": str(size)}
    assert len(record.message) < 64 * 1024
    assert listener.counters.get("truncated") == 1


def test_throttle_reports_what_it_held_back(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    throttle = server.Throttle(interval=10)
    assert [throttle.due() for _ in range(4)] == [1, 0, 0, 0]
    now[0] += 10
    assert (throttle.due(), throttle.due()) == (4, 0)




# read_datagrams: the C path (recvmmsg) and the pure one (recvfrom_into) on the same real traffic.
PATHS = [pytest.param(True, id="pure"),
         pytest.param(False, id="C", marks=pytest.mark.skipif(native.datagrams is None,
                                                               reason="the C speedups are not built"))]
SLOT = 1024


def read_all(sock: socket.socket, count: int, pure: bool, limit: int = server.DRAIN_MAX,
             slot: int = SLOT) -> list[list[server.Datagram]]:
    """What successive read_datagrams calls return until `count` datagrams came, a list per call."""
    area = memoryview(mmap.mmap(-1, 4 * slot))
    calls: list[list[server.Datagram]] = []
    while sum(map(len, calls)) < count:
        assert select.select([sock], [], [], 30)[0], "the datagrams did not arrive"
        got, error = server.read_datagrams(sock, area, slot, limit, pure=pure)
        assert error == 0
        assert len(got) <= limit
        calls.append(got)
    return calls


@pytest.mark.parametrize("pure", PATHS)
def test_read_datagrams_gives_data_whole_sizes_when_cut_and_senders(pure: bool) -> None:
    sizes = [0, 1, 100, SLOT - 1, SLOT, SLOT + 1, 3000, 9000]
    with contextlib.ExitStack() as stack:
        receiver = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        receiver.bind(("127.0.0.1", 0))
        receiver.setblocking(False)
        senders = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) for _ in range(3)]
        want: list[server.Datagram] = []
        for i, size in enumerate(sizes * 3):
            s = senders[i % 3 if i < 12 else 2]  # alternating senders, then a run from one
            data = bytes([65 + i % 26]) * size
            s.sendto(data, receiver.getsockname())
            want.append((data[:SLOT], size if size > SLOT else 0, f"127.0.0.1:{s.getsockname()[1]}"))
        assert [d for call in read_all(receiver, len(want), pure) for d in call] == want


@pytest.mark.parametrize("pure", PATHS)
def test_read_datagrams_stops_at_its_limit(pure: bool) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        receiver.bind(("127.0.0.1", 0))
        receiver.setblocking(False)
        for i in range(10):
            sender.sendto(b"%d" % i, receiver.getsockname())
        calls = read_all(receiver, 10, pure, limit=3)
    assert [data for call in calls for data, _, _ in call] == [b"%d" % i for i in range(10)]
    assert all(len(call) == 3 for call in calls[:3])


@pytest.mark.parametrize("pure", PATHS)
def test_read_datagrams_names_ipv6_and_ipv4_mapped_senders(pure: bool) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as receiver, \
            socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as v6, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as v4:
        receiver.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        try:
            receiver.bind(("::ffff:127.0.0.1", 0))
            v6.bind(("::1", 0))
        except OSError as e:
            pytest.skip(f"no IPv6 loopback: {e}")
        receiver.setblocking(False)
        port = receiver.getsockname()[1]
        receiver_v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        with receiver_v6:
            receiver_v6.bind(("::1", 0))
            receiver_v6.setblocking(False)
            v6.sendto(b"six", receiver_v6.getsockname())
            v4.sendto(b"four", ("127.0.0.1", port))
            assert read_all(receiver_v6, 1, pure) == [[(b"six", 0, f"[::1]:{v6.getsockname()[1]}")]]
        assert read_all(receiver, 1, pure) == [[(b"four", 0, f"127.0.0.1:{v4.getsockname()[1]}")]]


@pytest.mark.parametrize("pure", PATHS)
def test_read_datagrams_names_unix_senders_by_path_only(pure: bool, short_tmp: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver, \
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as named, \
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as unnamed, \
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as abstract:
        receiver.bind(str(short_tmp / "log.sock"))
        receiver.setblocking(False)
        named.bind(str(short_tmp / "app.sock"))
        abstract.bind(b"\0mepd-test-%d" % os.getpid())
        for s in (named, unnamed, abstract, named):
            s.sendto(b"<14>hello", str(short_tmp / "log.sock"))
        got = [d for call in read_all(receiver, 4, pure) for d in call]
    path = str(short_tmp / "app.sock")
    assert got == [(b"<14>hello", 0, path), (b"<14>hello", 0, None), (b"<14>hello", 0, None),
                   (b"<14>hello", 0, path)]


@pytest.mark.parametrize("pure", PATHS)
def test_read_datagrams_reports_a_socket_error(pure: bool) -> None:
    """A connected UDP socket hears ICMP "port unreachable" as ECONNREFUSED on its next read."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.connect(("127.0.0.1", free_port()))
        sock.setblocking(False)
        sock.send(b"to nobody")
        assert select.select([sock], [], [], 30)[0], "no ICMP error"
        area = memoryview(mmap.mmap(-1, SLOT))
        assert server.read_datagrams(sock, area, SLOT, 8, pure=pure) == ([], errno.ECONNREFUSED)



async def test_udp_with_traffic_is_read_again_on_a_timer_and_waited_on_once_idle(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []  # datagrams each read brought

    def spy(*args: Any, **kwargs: Any) -> tuple[list[server.Datagram], int]:
        got = read_datagrams(*args, **kwargs)
        reads.append(len(got[0]))
        return got

    read_datagrams = server.read_datagrams
    monkeypatch.setattr(server, "read_datagrams", spy)
    port = free_port()
    async with listening(tmp_path, proto="udp", address=f"127.0.0.1:{port}") as (listener, sub):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"<14>1 - h app - - - first", ("127.0.0.1", port))
            # Read when it came, then once more by the timer, which found nothing: no third read without data.
            await until(lambda: reads == [1, 0], "the timer's read")
            s.sendto(b"<14>1 - h app - - - second", ("127.0.0.1", port))  # the socket is waited on again
            await until(counted(listener, "received", 2), "the second datagram")
        assert reads[:3] == [1, 0, 1]
        assert [r.message for r in await sub.get_batch(2, 0)] == ["first", "second"]
