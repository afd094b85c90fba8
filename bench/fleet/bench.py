"""Records/s from an edge's log store to a central's log store through JetStream, beside plain syslog TCP.

The central is a real mepd daemon (its own process, its log writer, its
full-text indexing); the edge is this process: a `LogStore` filled with N
records and the edge's publisher (`mepd.fleet.publisher`), as two daemons on
two machines would be, here on one.  Through one nats-server (R1) or three
clustered on loopback (R3).  Flat out: N records already in the edge's store,
timed from the first record in the central's store (connections and streams
made) until it holds N (then checked: each once).  Paced:
records written into the edge's store at --rate records/s for --seconds; the
lag is how far the central's store is behind, in seconds of the edge's writes,
sampled every 0.1 s.  Syslog: the same N records as RFC 5424 lines over one
TCP connection straight to a fresh central daemon's syslog listener, timed the
same way: the fleet's figure beside it is the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mepd.config import FleetConfig, LogStorageConfig
from mepd.fleet.publisher import Publisher
from mepd.model import LogRecord
from mepd.store.logs.store import LogStore

POLL = 0.01


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_servers(root: Path, replicas: int) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    ports, routes = [free_port() for _ in range(replicas)], [free_port() for _ in range(replicas)]
    procs, urls = [], []
    for i in range(replicas):
        args = ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(ports[i]), "-sd", str(root / f"js{i}")]
        if replicas > 1:
            conf = root / f"n{i}.conf"
            conf.write_text(f"server_name: n{i}\ncluster {{\n name: bench\n listen: 127.0.0.1:{routes[i]}\n"
                            f" routes: [{', '.join(f'nats-route://127.0.0.1:{p}' for p in routes)}]\n}}\n")
            args += ["-c", str(conf)]
        procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        urls.append(f"nats://127.0.0.1:{ports[i]}")
    return procs, urls


def message(i: int) -> str:
    return f"bench seq {i} " + "x" * 150


def records(first: int, n: int, now: float) -> list[LogRecord]:
    return [LogRecord(ts=now, received=now, message=message(i), source="syslog/tcp", host="web1", app="bench",
                      severity=6, facility=1) for i in range(first, first + n)]


class Central:
    """A mepd daemon in `root`, its config `extra`; its store counted read-only, cheaply, while it writes."""

    def __init__(self, root: Path, extra: str) -> None:
        root.mkdir()
        self.db = root / "state" / "logs.db"
        conf = root / "mepd.toml"
        conf.write_text(f'[daemon]\nstate_dir = "{root / "state"}"\ncontrol_socket = "{root / "mepd.sock"}"\n'
                        f'log_level = "warning"\n[http]\nlisten = ""\n{extra}')
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(root / "notify.sock"))
        with (root / "stderr.log").open("wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "mepd.cli.mepd", "--config", str(conf)],
                                         env={**os.environ, "NOTIFY_SOCKET": str(root / "notify.sock")},
                                         stdout=err, stderr=subprocess.STDOUT)
        self.notify.settimeout(60)
        while b"READY=1" not in self.notify.recv(65536):
            pass
        # Keep reading, as systemd does: an unread notify socket would stall the daemon.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        with contextlib.suppress(OSError):
            while self.notify.recv(65536):
                pass

    def query(self, sql: str) -> int:
        if not self.db.exists():
            return 0
        with contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)) as db:
            try:
                return int(db.execute(sql).fetchone()[0] or 0)
            except sqlite3.OperationalError:  # tables not made yet
                return 0

    def stored(self) -> int:
        return self.query("SELECT max(id) FROM logs")

    async def wait(self, n: int, limit: float) -> float:
        start = time.monotonic()
        while self.stored() < n:
            if self.proc.poll() is not None:
                raise SystemExit(f"the central mepd exited {self.proc.returncode}")
            if time.monotonic() - start > limit:
                raise TimeoutError(f"{self.stored()} of {n} records after {limit:.0f}s")
            await asyncio.sleep(POLL)
        return time.monotonic()

    def check(self, n: int) -> None:
        count = self.query("SELECT count(*) FROM logs")
        distinct = self.query("SELECT count(DISTINCT message) FROM logs")
        if (count, distinct) != (n, n):
            raise SystemExit(f"lost or doubled: {count} stored at the central ({distinct} distinct), {n} sent")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.notify.close()


def fleet_toml(urls: list[str], node: str, replicas: int, extra: str = "") -> str:
    servers = ", ".join(f'"{u}"' for u in urls)
    return f'[fleet]\nservers = [{servers}]\nnode = "{node}"\nreplicas = {replicas}\n{extra}'


@dataclass(frozen=True, slots=True)
class Figures:
    edge: float  # records/s from the edge's store into the stream, no central reading
    central: float  # records/s from the stream into the central's store, no edge publishing
    through: float  # records/s from the edge's store to the central's, both running
    lag: float  # worst, at the paced rate


async def fill(store: LogStore, first: int, n: int) -> None:
    now = time.time()
    for i in range(first, first + n, 5000):
        await store.write(records(i, min(5000, first + n - i), now))


async def until(what: Callable[[], bool], limit: float) -> float:
    start = time.monotonic()
    while not what():
        if time.monotonic() - start > limit:
            raise TimeoutError(f"not done after {limit:.0f}s")
        await asyncio.sleep(POLL)
    return time.monotonic()


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def fleet(root: Path, urls: list[str], replicas: int, n: int, rate: int, seconds: float,
                batch: int | None) -> Figures:
    """Each half alone (the edge into the stream, then the central from it), then both, then paced."""
    edge = LogStore(str(root / "edge.db"), LogStorageConfig())
    await edge.open()
    cfg = FleetConfig(servers=tuple(urls), node="web1", replicas=replicas)
    cfg = cfg if batch is None else dataclasses.replace(cfg, batch_size=batch)
    await fill(edge, 0, n)
    publisher = Publisher(cfg, edge)
    task = asyncio.create_task(publisher.run(lambda: None))
    start = await until(lambda: publisher.counters.get("published") > 0, 60)  # connected, the stream made
    first = publisher.counters.get("published")
    alone_edge = (n - first) / (await until(lambda: publisher.counters.get("published") >= n, 600) - start)
    await stop(task)
    central = Central(root / "central", fleet_toml(urls, "central", replicas, "publish = []\n")
                      + '[fleet.central]\nenabled = true\nconsumer = "bench"\n')
    try:
        start = await central.wait(1, 60)  # timed from the first record stored
        first = central.stored()
        alone_central = (n - first) / (await central.wait(n, 600) - start)
        await fill(edge, n, n)
        task = asyncio.create_task(Publisher(cfg, edge).run(lambda: None))
        start = await central.wait(n + 1, 60)
        first = central.stored()
        through = (2 * n - first) / (await central.wait(2 * n, 600) - start)
        # Paced: `rate` records/s in tenths of a second; lag = seconds of writes the central is behind.
        written: list[tuple[float, int]] = []
        worst = 0.0
        step = rate // 10
        t0 = time.monotonic()
        for k in range(int(seconds * 10)):
            await asyncio.sleep(max(0.0, t0 + k / 10 - time.monotonic()))
            await edge.write(records(2 * n + k * step, step, time.time()))
            written.append((time.monotonic(), edge.last_id))
            have = central.stored()
            behind = [t for t, last in written if last > have]
            if behind:
                worst = max(worst, time.monotonic() - behind[0])
        await central.wait(edge.last_id, 120)
        central.check(edge.last_id)  # fresh stores: the last id is the number of records
    finally:
        await stop(task)
        await edge.close()
        central.stop()
    return Figures(alone_edge, alone_central, through, worst)


def syslog_lines(n: int) -> Iterator[bytes]:
    for first in range(0, n, 5000):
        yield b"".join(f"<14>1 2024-05-01T10:00:00.000000Z web1 bench - - - {message(i)}\n".encode()
                       for i in range(first, min(n, first + 5000)))


def send(conn: socket.socket, chunks: list[bytes]) -> None:
    for chunk in chunks:
        conn.sendall(chunk)


async def syslog(root: Path, n: int) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    central = Central(root / "syslog-central",
                      f'[[syslog.listen]]\nproto = "tcp"\naddress = "127.0.0.1:{port}"\n')
    try:
        chunks = list(syslog_lines(n))
        with socket.create_connection(("127.0.0.1", port)) as conn:
            sender = asyncio.create_task(asyncio.to_thread(send, conn, chunks))
            start = await central.wait(1, 60)
            first = central.stored()
            end = await central.wait(n, 600)
            await sender
        central.check(n)
    finally:
        central.stop()
    return (n - first) / (end - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--batch", type=int, default=None, help="records per message (the edge's [fleet]"
                    " batch_size; default: its default)")
    ap.add_argument("--replicas", default="1,3")
    args = ap.parse_args()
    print(f"load before: {Path('/proc/loadavg').read_text().split()[:3]}")
    with tempfile.TemporaryDirectory() as tmp:
        tcp = asyncio.run(syslog(Path(tmp), args.records))
    print(f"syslog TCP straight to a central: {tcp:,.0f} records/s ({args.records:,} records), lossless")
    sys.stdout.flush()
    for replicas in map(int, args.replicas.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            procs, urls = start_servers(Path(tmp), replicas)
            try:
                time.sleep(3)  # a cluster elects its JetStream meta leader
                f = asyncio.run(fleet(Path(tmp), urls, replicas, args.records, args.rate, args.seconds, args.batch))
            finally:
                for p in procs:
                    p.kill()
                    p.wait()
        print(f"R{replicas}: {f.through:,.0f} records/s edge store to central store ({args.records:,} records,"
              f" {args.batch or FleetConfig(servers=('x',)).batch_size} a message;"
              f" {f.through / tcp:.2f} of syslog TCP's); alone: edge to stream {f.edge:,.0f}/s, stream to central"
              f" {f.central:,.0f}/s; worst lag {f.lag:.2f}s at {args.rate:,}/s for {args.seconds:.0f}s; lossless")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
