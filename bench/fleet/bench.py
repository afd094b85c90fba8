"""Records/s from an edge's log store to a central's log store through JetStream, and the lag at a paced rate.

In one process: an edge `LogStore` filled with N records, the edge's publisher
(`mepd.fleet.publisher`) and a central's consumer (`mepd.fleet.consumer`) into
a second `LogStore`, through one nats-server (R1) or three clustered on
loopback (R3).  Flat out: N records already in the edge's store, timed until
the central's store holds N (then checked: each once).  Paced: records written
into the edge's store at --rate records/s for --seconds; the lag is how far the
central's store is behind, in seconds of the edge's writes, sampled every 0.1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mepd.config import FleetCentralConfig, FleetConfig, LogStorageConfig
from mepd.fleet.consumer import Consumer
from mepd.fleet.publisher import Publisher
from mepd.model import LogRecord
from mepd.store.logs.store import LogStore


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


def records(first: int, n: int, now: float) -> list[LogRecord]:
    return [LogRecord(ts=now, received=now, message=f"bench seq {i} " + "x" * 150, source="syslog/tcp",
                      host="web1", app="bench", severity=6, facility=1) for i in range(first, first + n)]


async def wait_ready(store: LogStore, n: int, limit: float) -> float:
    start = time.monotonic()
    while store.last_id < n:
        if time.monotonic() - start > limit:
            raise TimeoutError(f"{store.last_id} of {n} records after {limit:.0f}s")
        await asyncio.sleep(0.01)
    return time.monotonic()


async def run(root: Path, urls: list[str], replicas: int, n: int, rate: int, seconds: float) -> tuple[float, float]:
    cfg = FleetConfig(servers=tuple(urls), node="web1", replicas=replicas)
    central_cfg = FleetConfig(servers=tuple(urls), node="central", replicas=replicas, publish=(),
                              central=FleetCentralConfig(enabled=True, consumer="bench"))
    edge, central = (LogStore(str(root / name), LogStorageConfig()) for name in ("edge.db", "central.db"))
    await edge.open()
    await central.open()
    now = time.time()
    for i in range(0, n, 5000):
        await edge.write(records(i, min(5000, n - i), now))
    consumer = Consumer(central_cfg, central)
    tasks = [asyncio.create_task(consumer.run(lambda: None))]
    await asyncio.sleep(1.0)  # connected, stream made, nothing to fetch yet
    start = time.monotonic()
    tasks.append(asyncio.create_task(Publisher(cfg, edge).run(lambda: None)))
    end = await wait_ready(central, n, 600)
    throughput = n / (end - start)
    # Paced: `rate` records/s in tenths of a second; lag = seconds of writes the central is behind.
    written: list[tuple[float, int]] = []
    worst = 0.0
    step = rate // 10
    t0 = time.monotonic()
    for k in range(int(seconds * 10)):
        await asyncio.sleep(max(0.0, t0 + k / 10 - time.monotonic()))
        await edge.write(records(n + k * step, step, time.time()))
        written.append((time.monotonic(), edge.last_id))
        have = central.last_id
        behind = [t for t, last in written if last > have]
        if behind:
            worst = max(worst, time.monotonic() - behind[0])
    await wait_ready(central, edge.last_id, 120)
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    total, count = edge.last_id, central.last_id  # fresh stores: the last id is the number of records
    await edge.close()
    await central.close()
    if count != total:
        raise SystemExit(f"lost or doubled: {count} stored at the central, {total} sent")
    return throughput, worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--replicas", default="1,3")
    args = ap.parse_args()
    print(f"load before: {Path('/proc/loadavg').read_text().split()[:3]}")
    for replicas in map(int, args.replicas.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            procs, urls = start_servers(Path(tmp), replicas)
            try:
                time.sleep(3)  # a cluster elects its JetStream meta leader
                rps, lag = asyncio.run(run(Path(tmp), urls, replicas, args.records, args.rate, args.seconds))
            finally:
                for p in procs:
                    p.kill()
                    p.wait()
        print(f"R{replicas}: {rps:,.0f} records/s flat out ({args.records:,} records), "
              f"worst lag {lag:.2f}s at {args.rate:,}/s for {args.seconds:.0f}s, lossless")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
