"""Microseconds per message for each stage of mepd's syslog path, measured one by one.

    .venv/bin/python bench/syslog/stages.py [--count 100000]

The daemon benchmark (bench.py) says how fast mepd is; this says where the
time goes, without a profiler's sampling error, and what the store would cost
with other settings (batch sizes, fewer indexes, another FTS tokenizer).  The
store variants are made on a scratch copy of mepd's own schema: mepd's code is
used as it is.  CPU time of this process (all threads), so other load on the
machine matters less than for wall-clock figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from mepd.config import LogStorageConfig, SyslogListenConfig
from mepd.model import LogRecord
from mepd.pipeline import Channel, Counters
from mepd.sources.syslog.framing import FrameReader
from mepd.sources.syslog.parse import parse_message
from mepd.sources.syslog.server import SyslogIntake
from mepd.store import logs as logstore

STAMP = time.strftime("%Y-%m-%dT%H:%M:%S.123456Z", time.gmtime())


def message(seq: int) -> bytes:
    """The same message as sender.c writes."""
    return (
        f"<134>1 {STAMP} bench-host.example.net benchapp 4242 ID47 - seq={seq:09d} user=alice action=login"
        f" result=ok src=192.0.2.{seq % 250 + 1} session={seq * 2654435761 & 0xFFFFFFFF:08x}"
        ' detail="the quick brown fox jumps over the lazy dog"'
    ).encode()


BSD = b"<38>Mar  5 11:58:01 bastion sshd[2211]: Accepted publickey for deploy from 198.51.100.20 port 51514 ssh2"


@contextmanager
def timed(results: list[tuple[str, float]], name: str, n: int) -> Iterator[None]:
    t0 = time.process_time()
    yield
    us = (time.process_time() - t0) * 1e6 / n
    results.append((name, us))
    print(f"{name:<62} {us:8.2f} µs/msg", file=sys.stderr)


def framing(frames: list[bytes]) -> int:
    data = b"".join(b"%d %s" % (len(f), f) for f in frames)

    async def run() -> int:
        reader = asyncio.StreamReader(limit=2**20)
        reader.feed_data(data)
        reader.feed_eof()
        fr = FrameReader(reader, 65536)
        n = 0
        while await fr.next_frame() is not None:
            n += 1
        return n

    return asyncio.run(run())


def pipeline_roundtrip(records: list[LogRecord], batch: int) -> None:
    async def run() -> None:
        ch: Channel[LogRecord] = Channel("logs", Counters())
        sub = ch.subscribe("store/logs", 100_000)

        async def consume() -> None:
            got = 0
            while got < len(records):
                b = await sub.get_batch(batch, 0.2)
                sub.done(len(b))
                got += len(b)

        consumer = asyncio.create_task(consume())
        for r in records:
            await ch.put(r)
        await consumer

    asyncio.run(run())


def pipeline_per_item(records: list[LogRecord], batch: int) -> None:
    """UDP's pattern: one item per event-loop iteration, so the consumer wakes for each."""
    async def run() -> None:
        ch: Channel[LogRecord] = Channel("logs", Counters())
        sub = ch.subscribe("store/logs", 100_000)
        loop = asyncio.get_running_loop()
        it = iter(records)

        def produce() -> None:
            r = next(it, None)
            if r is not None:
                ch.offer(r)
                loop.call_soon(produce)

        async def consume() -> None:
            got = 0
            while got < len(records):
                b = await sub.get_batch(batch, 0.2)
                sub.done(len(b))
                got += len(b)

        loop.call_soon(produce)
        await consume()

    asyncio.run(run())


def store_write(records: list[LogRecord], batch: int, prepare: Callable[[sqlite3.Connection], None] | None) -> float:
    """CPU µs/record for LogStore._write in batches of `batch`, on a fresh database."""
    with tempfile.TemporaryDirectory() as d:
        store = logstore.LogStore(os.path.join(d, "logs.db"), LogStorageConfig())
        store._open()
        assert store._wconn is not None
        if prepare is not None:
            prepare(store._wconn)
        t0 = time.process_time()
        for i in range(0, len(records), batch):
            store._write(records[i : i + batch])
        us = (time.process_time() - t0) * 1e6 / len(records)
        store._wconn.close()
    return us


def fts_fill(records: list[LogRecord], options: str) -> float:
    """CPU µs/record for filling the full-text index after the rows are stored (what `_index` does)."""
    with tempfile.TemporaryDirectory() as d:
        store = logstore.LogStore(os.path.join(d, "logs.db"), LogStorageConfig())
        store._open()
        conn = store._wconn
        assert conn is not None
        for i in range(0, len(records), 2000):
            store._write(records[i : i + 2000])
        if options:
            conn.executescript(
                "DROP TABLE logs_fts;"
                f"CREATE VIRTUAL TABLE logs_fts USING fts5(message, content='logs', content_rowid='id', {options});"
            )
        t0 = time.process_time()
        while store._index(logstore.FTS_CHUNK) < len(records):
            pass
        us = (time.process_time() - t0) * 1e6 / len(records)
        conn.close()
    return us


def udp_receive(sender: str, asyncio_loop: bool, rate: int = 40_000, seconds: int = 2) -> tuple[float, int]:
    """CPU µs per datagram received by this process from the C sender, and how many arrived.

    Either through asyncio (one `datagram_received` per event-loop pass, as mepd does) or a
    plain thread blocked in recv_into (what a receiving thread or worker process would do).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    count = rate * seconds
    got = 0
    t0 = time.process_time()
    snd = subprocess.Popen([sender, "udp", "127.0.0.1", str(port), str(count), str(rate)], stdout=subprocess.DEVNULL)
    if asyncio_loop:
        class Proto(asyncio.DatagramProtocol):
            def datagram_received(self, _data: bytes, _addr: object) -> None:
                nonlocal got
                got += 1

        async def run() -> None:
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_datagram_endpoint(Proto, sock=sock)
            await loop.run_in_executor(None, snd.wait)
            await asyncio.sleep(0.3)  # the last datagrams still in the socket buffer
            transport.close()

        asyncio.run(run())
    else:
        sock.settimeout(0.3)
        buf = bytearray(65536)
        with contextlib.suppress(TimeoutError):
            while True:
                sock.recv_into(buf)
                got += 1
        snd.wait()
        sock.close()
    return (time.process_time() - t0) * 1e6 / max(got, 1), got


def store_under_flood(records: list[LogRecord], sender: str, seconds: int = 4) -> tuple[float, float]:
    """Rows/s that LogStore._write achieves in its own thread, alone and while the event loop parses a UDP flood.

    mepd's shape: the event loop thread parses datagrams, the writer thread runs executemany, which
    takes the GIL back for every row it binds.  Returns (alone, during the flood).
    """
    with tempfile.TemporaryDirectory() as d:
        store = logstore.LogStore(os.path.join(d, "logs.db"), LogStorageConfig())
        store._open()
        stop = threading.Event()
        written = [0]

        def writer() -> None:
            i = 0
            while not stop.is_set():
                batch = records[i : i + 2000] or records[:2000]
                store._write(batch)
                written[0] += len(batch)
                i = (i + 2000) % len(records)

        def measure(window: float) -> float:
            w0, t0 = written[0], time.monotonic()
            time.sleep(window)
            return (written[0] - w0) / (time.monotonic() - t0)

        thread = threading.Thread(target=writer)
        thread.start()
        alone = measure(1.0)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        snd = subprocess.Popen([sender, "udp", "127.0.0.1", str(sock.getsockname()[1]), str(100_000 * seconds),
                                "100000"], stdout=subprocess.DEVNULL)

        class Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: object) -> None:
                parse_message(data, received=1.0, source="syslog/udp", peer=str(addr))

        async def flood() -> float:
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_datagram_endpoint(Proto, sock=sock)
            await asyncio.sleep(0.5)
            during = await loop.run_in_executor(None, measure, seconds - 1.0)
            transport.close()
            return during

        during = asyncio.run(flood())
        snd.wait()
        stop.set()
        thread.join()
        assert store._wconn is not None
        store._wconn.close()
    return alone, during


def drop_indexes(conn: sqlite3.Connection) -> None:
    conn.executescript("DROP INDEX logs_host_ts; DROP INDEX logs_app_ts;")


def synchronous_off(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA synchronous=OFF")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=100_000)
    p.add_argument("--sender", default="", help="the compiled sender.c, for the UDP receive stages")
    args = p.parse_args()
    n = args.count
    # The writer thread's own calls (_open, _write, _index) are run in this thread, to time them.
    frames = [message(i) for i in range(n)]
    results: list[tuple[str, float]] = []
    print(f"{n:,} messages of {len(frames[0])} bytes (RFC 5424, as sender.c)", file=sys.stderr)

    with timed(results, "TCP framing (FrameReader, octet-counted)", n):
        framing(frames)
    with timed(results, "parse_message (RFC 5424 bench line)", n):
        for f in frames:
            parse_message(f, received=1.0, source="syslog/tcp", peer="127.0.0.1:5000")
    with timed(results, "parse_message (RFC 3164 sshd line)", n):
        for _ in range(n):
            parse_message(BSD, received=1.0, source="syslog/udp", peer="127.0.0.1:5000")
    intake = SyslogIntake(SyslogListenConfig(proto="tcp", address="127.0.0.1:1"), Channel("x", Counters()),
                          Counters())
    with timed(results, "SyslogIntake.record (parse + time + counters)", n):
        records = [intake.record(f, "127.0.0.1:5000") for f in frames]
    with timed(results, "pipeline put -> get_batch(2000), items in bursts (TCP)", n):
        pipeline_roundtrip(records, 2000)
    with timed(results, "pipeline offer -> get_batch(2000), one item per loop pass (UDP)", n):
        pipeline_per_item(records, 2000)
    for batch in (200, 2000, 10000):
        us = store_write(records, batch, None)
        results.append((f"store: LogStore._write, batches of {batch}", us))
        print(f"{results[-1][0]:<62} {us:8.2f} µs/msg", file=sys.stderr)
    for name, prep in (("without the host/app indexes", drop_indexes), ("synchronous=OFF", synchronous_off)):
        us = store_write(records, 2000, prep)
        results.append((f"store: batches of 2000, {name}", us))
        print(f"{results[-1][0]:<62} {us:8.2f} µs/msg", file=sys.stderr)
    for name, options in (("mepd's (trigram)", ""), ("trigram, detail=none (LIKE still indexed)",
                                                    "tokenize='trigram', detail='none'"),
                          ("unicode61 (words, not substrings)", "tokenize='unicode61'")):
        us = fts_fill(records, options)
        results.append((f"FTS5 index fill, {name}", us))
        print(f"{results[-1][0]:<62} {us:8.2f} µs/msg", file=sys.stderr)

    if args.sender:
        for name, use_asyncio in (("asyncio DatagramProtocol, counting only", True),
                                  ("thread blocked in recv_into, counting only", False)):
            us, got = udp_receive(args.sender, use_asyncio)
            results.append((f"UDP receive at 40k/s: {name}", us))
            print(f"{results[-1][0]:<62} {us:8.2f} µs/msg ({got:,} of 80,000 received)", file=sys.stderr)
        alone, during = store_under_flood(records, args.sender)
        print(f"store writer thread: {alone:,.0f} rows/s alone, {during:,.0f} rows/s while the event loop"
              " parses a 100k/s UDP flood (GIL hand-offs, one per row bound)", file=sys.stderr)
        flood_note = (f"\nStore writer thread (batches of 2000): {alone:,.0f} rows/s alone, {during:,.0f} rows/s"
                      " while the event loop parses a 100k/s UDP flood.")
    else:
        flood_note = ""

    print("| stage (CPU of one process, all threads) | µs/msg | msgs/s per core |")
    print("| --- | ---: | ---: |")
    for name, us in results:
        print(f"| {name} | {us:.2f} | {1e6 / us:,.0f} |")
    print(flood_note)


if __name__ == "__main__":
    main()
