"""Microseconds of CPU per message for each stage of mepd's syslog path, measured one by one.

    .venv/bin/python bench/syslog/stages.py [--count 100000] [--sender var/sender]

The daemon benchmark (bench.py) says how fast mepd is; this says where the
time goes, without a profiler's sampling error, and what the store would cost
with other settings (batch sizes, the host/app indexes mepd dropped,
synchronous=OFF, another FTS tokenizer).  Each stage runs mepd's own code in
the shape the daemon feeds it: 256 KiB TCP reads to FrameSplitter.feed, lists
of 1,000 frames to SyslogIntake.records, bursts to Channel.put_many and
offer_many, 2,000-row batches to the writer.

mepd splits the work over two processes: the daemon's event loop (receive,
framing, parse, pipeline, and turning each batch into rows and pickling them
for the writer) and the log writer (`mepd.store.logs.worker`: insert, FTS fill),
a process of its own.  Here the writer's functions are called in this process,
so the rows marked "writer" are what the writer process spends, on the other
core.  Store variants are made on a scratch database with mepd's own schema.

Figures are CPU time of this process (all threads), so other load on the
machine matters less than for wall-clock figures.  The UDP stages need the
compiled sender.c (--sender); their cost per datagram depends on how many
datagrams each wake-up finds (paced at 40k/s, sendmmsg of up to 64), and the
datagrams they lose (printed beside them) on how busy the machine is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pickle
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from mepd.config import DaemonConfig, LogStorageConfig, SyslogListenConfig
from mepd.model import LogRecord
from mepd.pipeline import Channel, Counters, from_sources
from mepd.sources.syslog import sockets
from mepd.sources.syslog.framing import FrameSplitter
from mepd.sources.syslog.parse import parse_message
from mepd.sources.syslog.server import _READ_CHUNK, DRAIN_MAX, DatagramListener, Handover, SyslogIntake
from mepd.store.logs import native as lognative
from mepd.store.logs import store as logstore
from mepd.store.logs import worker as logwriter

STAMP = time.strftime("%Y-%m-%dT%H:%M:%S.123456Z", time.gmtime())
QUEUE = DaemonConfig().queue_size
BATCH = LogStorageConfig().batch_size
LINGER = LogStorageConfig().flush_interval
PEER = "127.0.0.1:5000"
STORE_RUNS = 3  # store figures are the least of this many runs: other load on the machine only adds
Result = tuple[str, str, float]  # stage, process it runs in, µs per message


def message(seq: int) -> bytes:
    """The same message as sender.c writes."""
    return (
        f"<134>1 {STAMP} bench-host.example.net benchapp 4242 ID47 - seq={seq:09d} user=alice action=login"
        f" result=ok src=192.0.2.{seq % 250 + 1} session={seq * 2654435761 & 0xFFFFFFFF:08x}"
        ' detail="the quick brown fox jumps over the lazy dog"'
    ).encode()


BSD = b"<38>Mar  5 11:58:01 bastion sshd[2211]: Accepted publickey for deploy from 198.51.100.20 port 51514 ssh2"


def report(results: list[Result], name: str, where: str, us: float, note: str = "") -> None:
    results.append((name, where, us))
    print(f"{name:<80} {us:8.2f} µs/msg {note}", file=sys.stderr)


@contextmanager
def timed(results: list[Result], name: str, n: int, where: str = "daemon") -> Iterator[None]:
    t0 = time.process_time()
    yield
    report(results, name, where, (time.process_time() - t0) * 1e6 / n)


def framing(chunks: list[bytes], limit: int) -> int:
    """What the TCP listener does with each read: feed it, take the frames it completes."""
    splitter = FrameSplitter(limit)
    n = 0
    for chunk in chunks:
        n += len(splitter.feed(chunk))
    return n + len(splitter.finish())


async def consume(sub: Any, total: int) -> None:
    """The log sink's side of the pipeline: batches of 2,000, lingering as mepd does."""
    got = 0
    while got < total:
        b = await sub.get_batch(BATCH, LINGER)
        sub.done(len(b))
        got += len(b)


def pipeline_put_many(bursts: list[list[LogRecord]]) -> None:
    """TCP's shape: one put_many per read, and the listener awaits its next read in between; fanned out to the
    daemon's five log consumers (the web-log analyser's filter, with no web tail, takes none)."""
    async def run() -> None:
        ch: Channel[LogRecord] = Channel("logs", Counters())
        subs = [ch.subscribe("store/logs", QUEUE, durable=True),
                *(ch.subscribe(name, QUEUE) for name in ("analysis/logs", "analysis/devices", "alerts"))]
        ch.subscribe("analysis/weblog", QUEUE, accept=from_sources([]))
        total = sum(map(len, bursts))
        consumers = [asyncio.create_task(consume(sub, total)) for sub in subs]
        for b in bursts:
            await ch.put_many(b)
            await asyncio.sleep(0)
        await asyncio.gather(*consumers)

    asyncio.run(run())


def pipeline_offer_many(bursts: list[list[LogRecord]]) -> None:
    """UDP's shape: one offer_many per event-loop pass (a drained socket), the consumer in between."""
    async def run() -> None:
        ch: Channel[LogRecord] = Channel("logs", Counters())
        sub = ch.subscribe("store/logs", QUEUE, durable=True)
        loop = asyncio.get_running_loop()
        it = iter(bursts)

        def produce() -> None:
            b = next(it, None)
            if b is not None:
                ch.offer_many(b)
                loop.call_soon(produce)

        loop.call_soon(produce)
        await consume(sub, sum(map(len, bursts)))

    asyncio.run(run())


@contextmanager
def writer_db(prepare: Callable[[sqlite3.Connection], None] | None = None) -> Iterator[sqlite3.Connection]:
    """logwriter opened on a fresh database in this process, as the writer process's initializer does."""
    with tempfile.TemporaryDirectory() as d:
        logwriter.open(os.path.join(d, "logs.db"))
        try:
            conn = logwriter._db()
            if prepare is not None:
                prepare(conn)
            yield conn
        finally:
            logwriter.close()


def least_cpu(rows: list[tuple[Any, ...]], batch: int,
              write: Callable[[sqlite3.Connection, int, list[tuple[Any, ...]]], object],
              prepare: Callable[[sqlite3.Connection], None] | None = None) -> float:
    """CPU µs/row for `write(conn, first, rows)` of the rows in batches of `batch`, on a fresh database each
    run: the least of `STORE_RUNS`."""
    runs: list[float] = []
    for _ in range(STORE_RUNS):
        with writer_db(prepare) as conn:
            t0 = time.process_time()
            for i in range(0, len(rows), batch):
                write(conn, i, rows[i : i + batch])
            runs.append((time.process_time() - t0) * 1e6 / len(rows))
    return min(runs)


def in_transaction(insert: Callable[[sqlite3.Connection, list[tuple[Any, ...]]], object]
                   ) -> Callable[[sqlite3.Connection, int, list[tuple[Any, ...]]], None]:
    def write(conn: sqlite3.Connection, _first: int, rows: list[tuple[Any, ...]]) -> None:
        conn.execute("BEGIN")
        insert(conn, rows)
        conn.execute("COMMIT")
    return write


def store_write(rows: list[tuple[Any, ...]], batch: int,
                prepare: Callable[[sqlite3.Connection], None] | None = None) -> float:
    """CPU µs/row for logwriter.write in batches of `batch`."""
    now = time.time()
    return least_cpu(rows, batch, lambda _conn, i, chunk: logwriter.write(f"b{i}", chunk, {}, now),
                     prepare)


def packed_write(rows: list[tuple[Any, ...]], batch: int) -> float:
    """CPU µs/row for logwriter.write of the batches packed (`mepd.store.logs.native`), as the daemon sends them."""
    assert lognative.pack is not None
    now = time.time()
    packed = {i: lognative.pack(rows[i : i + batch], logwriter.PACK_FORMS) for i in range(0, len(rows), batch)}
    return least_cpu(rows, batch, lambda _conn, i, _chunk: logwriter.write(f"b{i}", packed[i], {}, now))


def long_form(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row of any of `logwriter.ROW_FORMS` with all the columns, its empty ones None (every row before issue 26)."""
    fields = dict(zip(next(f for f in logwriter.ROW_FORMS if len(f) == len(row)), row, strict=True))
    return tuple(fields.get(name) for name in logwriter.COLUMNS)


def fts_fill(rows: list[tuple[Any, ...]], options: str) -> float:
    """CPU µs/row for filling the full-text index after the rows are stored, FTS_CHUNK rows per call."""
    now = time.time()
    with writer_db() as conn:
        for i in range(0, len(rows), BATCH):
            logwriter.write(f"b{i}", rows[i : i + BATCH], {}, now)
        if options:
            conn.executescript(
                "DROP TABLE logs_words;"
                f"CREATE VIRTUAL TABLE logs_words USING fts5(message, content='logs', content_rowid='id', {options});"
            )
        t0 = time.process_time()
        while logwriter.index(logstore.FTS_CHUNK).value < len(rows):
            pass
        return (time.process_time() - t0) * 1e6 / len(rows)


def with_host_app_indexes(conn: sqlite3.Connection) -> None:
    conn.executescript("CREATE INDEX logs_host_ts ON logs (host, ts); CREATE INDEX logs_app_ts ON logs (app, ts);")


def synchronous_off(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA synchronous=OFF")


def without_ts_index(conn: sqlite3.Connection) -> None:
    conn.execute("DROP INDEX logs_ts")


def pragma(setting: str) -> Callable[[sqlite3.Connection], None]:
    def prepare(conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA {setting}")
    return prepare


def row_by_row(rows: list[tuple[Any, ...]], batch: int) -> float:
    """CPU µs/row for inserting the rows with executemany, one statement step per row."""
    return least_cpu(rows, batch, in_transaction(lambda conn, chunk: conn.executemany(logwriter.INSERT, chunk)))


def unstored(sql: str) -> str:
    """The INSERT binding and stepping its rows but storing none."""
    head, values = sql.split(" VALUES ", 1)
    return f"{head} SELECT * FROM (VALUES {values}) WHERE 0"


class Unstored:
    """The writer's connection as `logwriter._insert` uses it, its INSERTs storing nothing."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def getlimit(self, category: int) -> int:
        return self.conn.getlimit(category)

    def execute(self, sql: str, args: list[Any]) -> None:
        self.conn.execute(unstored(sql), args)

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self.conn.executemany(unstored(sql), rows)


def bind_alone(rows: list[tuple[Any, ...]], batch: int) -> float:
    """CPU µs/row for binding and stepping the rows as logwriter.write does, storing none."""
    return least_cpu(rows, batch, in_transaction(
        lambda conn, chunk: logwriter._insert(cast(sqlite3.Connection, Unstored(conn)), chunk)))


def udp_receive(sender: str, how: str, rate: int = 40_000, seconds: int = 2) -> tuple[float, int, int, int]:
    """CPU µs per datagram received from the C sender; datagrams received, reader wake-ups, kernel drops.

    how: "protocol" (asyncio's datagram transport: one datagram_received per
    event-loop pass), "drain" (an add_reader callback reading until
    BlockingIOError, at most DRAIN_MAX: mepd's loop, counting only), "mepd"
    (mepd's DatagramListener._drain itself: parse and offer_many included,
    with the log sink's get_batch taking the records), or "thread" (a plain
    thread blocked in recv_into).  Receiving goes on until the socket has
    been idle for 0.3 s, so what was not received was dropped by the kernel.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    count = rate * seconds
    got = 0
    wakes = 0  # callbacks run (datagram_received, or the reader callback of a drain loop)
    t0 = time.process_time()
    snd = subprocess.Popen([sender, "udp", "127.0.0.1", str(port), str(count), str(rate)], stdout=subprocess.DEVNULL)
    if how == "thread":
        sock.settimeout(0.3)
        buf = bytearray(65536)
        with contextlib.suppress(TimeoutError):
            while True:
                sock.recv_into(buf)
                got += 1
        snd.wait()
        us = (time.process_time() - t0) * 1e6 / max(got, 1)
        drops = sockets.kernel_udp_drops(sock) or 0
        sock.close()
        return us, got, got, drops

    class Proto(asyncio.DatagramProtocol):
        def datagram_received(self, _data: bytes, _addr: object) -> None:
            nonlocal got, wakes
            got += 1
            wakes += 1

    def drain() -> None:
        nonlocal got, wakes
        wakes += 1
        for _ in range(DRAIN_MAX):
            try:
                sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                break
            got += 1

    async def run() -> int:
        nonlocal got
        loop = asyncio.get_running_loop()
        transport = listener = consumer = None
        if how == "protocol":
            transport, _ = await loop.create_datagram_endpoint(Proto, sock=sock)
        else:
            sock.setblocking(False)
            if how == "drain":
                loop.add_reader(sock.fileno(), drain)
            else:
                ch: Channel[LogRecord] = Channel("logs", Counters())
                sub = ch.subscribe("store/logs", QUEUE, durable=True)
                consumer = asyncio.create_task(consume(sub, count))
                cfg = SyslogListenConfig(proto="udp", address="127.0.0.1:0")
                listener = DatagramListener(cfg, ch, None, Handover())
                mepd_drain = listener._drain

                def counted(sock: socket.socket) -> None:
                    nonlocal wakes
                    wakes += 1
                    mepd_drain(sock)

                loop.add_reader(sock.fileno(), counted, sock)
        await loop.run_in_executor(None, snd.wait)
        while True:  # until the socket buffer is empty
            before = wakes
            await asyncio.sleep(0.3)
            if wakes == before:
                break
        if listener is not None:
            got = listener.counters.get("received")
        if consumer is not None:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
        drops = sockets.kernel_udp_drops(sock) or 0
        if transport is not None:
            transport.close()  # closes the socket
        else:
            loop.remove_reader(sock.fileno())
            sock.close()
        return drops

    drops = asyncio.run(run())
    return (time.process_time() - t0) * 1e6 / max(got, 1), got, wakes, drops


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=100_000)
    p.add_argument("--sender", default="", help="the compiled sender.c, for the UDP receive stages")
    args = p.parse_args()
    n = args.count
    load0 = os.getloadavg()
    frames = [message(i) for i in range(n)]
    results: list[Result] = []
    print(f"{n:,} messages of {len(frames[0])} bytes (RFC 5424, as sender.c)", file=sys.stderr)

    cfg = SyslogListenConfig(proto="tcp", address="127.0.0.1:1")
    stream = b"".join(b"%d %s" % (len(f), f) for f in frames)
    chunks = [stream[i : i + _READ_CHUNK] for i in range(0, len(stream), _READ_CHUNK)]
    with timed(results, f"TCP framing: FrameSplitter.feed, {_READ_CHUNK // 1024} KiB reads, octet-counted", n):
        got = framing(chunks, cfg.max_message_size)
    assert got == n, got
    with timed(results, "parse_message (RFC 5424 bench line)", n):
        for f in frames:
            parse_message(f, received=1.0, source="syslog/tcp", peer=PEER)
    with timed(results, "parse_message (RFC 3164 sshd line)", n):
        for _ in range(n):
            parse_message(BSD, received=1.0, source="syslog/udp", peer=PEER)
    intake = SyslogIntake(cfg, Channel("x", Counters()), Counters())
    frame_lists = [[(f, 0) for f in frames[i : i + 1000]] for i in range(0, n, 1000)]
    with timed(results, "SyslogIntake.records, lists of 1,000 frames (parse, clock, counters)", n):
        bursts = [intake.records(fl, PEER) for fl in frame_lists]
    records = [r for b in bursts for r in b]
    with timed(results, "pipeline: put_many per 1,000 -> 5 consumers' get_batch(2000) (TCP)", n):
        pipeline_put_many(bursts)
    udp_bursts = [records[i : i + DRAIN_MAX] for i in range(0, n, DRAIN_MAX)]
    with timed(results, f"pipeline: offer_many per {DRAIN_MAX} -> get_batch(2000) (UDP drain)", n):
        pipeline_offer_many(udp_bursts)

    with timed(results, "store: logs._rows, records -> row tuples", n):
        rows = logstore._rows(records).rows
    with timed(results, f"store: pickle.dumps of {BATCH}-row lists (hop to the writer)", n):
        pickles = [pickle.dumps(rows[i : i + BATCH], pickle.HIGHEST_PROTOCOL) for i in range(0, n, BATCH)]
    print(f"{'':<80} ({sum(map(len, pickles)) / n:.0f} pickled bytes per row)", file=sys.stderr)
    with timed(results, "store: pickle.loads of them (the writer's side of the hop)", n, "writer"):
        for data in pickles:
            pickle.loads(data)
    if lognative.pack is not None:
        with timed(results, f"store: native.pack of {BATCH}-row lists, then pickle.dumps (the packed hop)", n):
            packs = [pickle.dumps(lognative.pack(rows[i : i + BATCH], logwriter.PACK_FORMS), pickle.HIGHEST_PROTOCOL)
                     for i in range(0, n, BATCH)]
        with timed(results, "store: pickle.loads of them", n, "writer"):
            for data in packs:
                pickle.loads(data)
    store_write(rows[: 10 * BATCH], BATCH)  # not reported: whichever store figure came first ran a third high
    for batch in (200, 2000, 10000):
        report(results, f"store: logwriter.write, batches of {batch}", "writer", store_write(rows, batch))
    if lognative.pack is not None:
        report(results, f"store: logwriter.write, batches of {BATCH} packed (the daemon's way)", "writer",
               packed_write(rows, BATCH))
    long_rows = [long_form(row) for row in rows]
    report(results, f"store: batches of {BATCH}, every row with all {len(logwriter.COLUMNS)} columns (None bound)",
           "writer", store_write(long_rows, BATCH))
    report(results, f"store: batches of {BATCH}, all columns, a step per row (executemany: the writer until 2026-12)",
           "writer", row_by_row(long_rows, BATCH))
    report(results, f"store: batches of {BATCH}, binding alone (the INSERT's rows filtered out by WHERE 0)",
           "writer", bind_alone(rows, BATCH))
    for name, prep in (("with the old host/app indexes", with_host_app_indexes),
                       ("without the ts index", without_ts_index),
                       ("synchronous=OFF", synchronous_off),
                       ("wal_autocheckpoint=0 (never)", pragma("wal_autocheckpoint=0")),
                       ("wal_autocheckpoint=10000", pragma("wal_autocheckpoint=10000")),
                       ("cache_size 64 MiB", pragma("cache_size=-65536"))):
        report(results, f"store: batches of {BATCH}, {name}", "writer", store_write(rows, BATCH, prep))
    for name, options in (("mepd's (ascii words, detail=none)", ""),
                          ("trigram (mepd's before issue 26)", "tokenize='trigram'"),
                          ("trigram, detail=none (LIKE still indexed)", "tokenize='trigram', detail='none'"),
                          ("unicode61 (words, not substrings)", "tokenize='unicode61'")):
        report(results, f"FTS5 index fill via logwriter.index, {name}", "writer", fts_fill(rows, options))

    if args.sender:
        for name, how in (("asyncio DatagramProtocol, counting only", "protocol"),
                          (f"add_reader drain loop (recvfrom, up to {DRAIN_MAX}), counting only", "drain"),
                          ("thread blocked in recv_into, counting only", "thread"),
                          ("mepd's DatagramListener._drain + get_batch", "mepd")):
            us, got, wakes, drops = udp_receive(args.sender, how)
            report(results, f"UDP receive at 40k/s: {name}", "daemon", us,
                   f"({got:,} of 80,000 received, {drops:,} dropped by the kernel, {got / max(wakes, 1):.1f}"
                   " per callback)")

    load1 = os.getloadavg()
    print("| stage (CPU of this process, all threads) | runs in | µs/msg | msgs/s per core |")
    print("| --- | --- | ---: | ---: |")
    for name, where, us in results:
        print(f"| {name} | {where} | {us:.2f} | {1e6 / us:,.0f} |")
    print(f"\nLoad average (1, 5, 15 min): {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} at the start,"
          f" {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} at the end; {os.cpu_count()} CPUs.")


if __name__ == "__main__":
    main()
