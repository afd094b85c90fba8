"""Remote write throughput and CPU: SNMP-shaped samples through a Pipeline into `RemoteWrite`, to a real receiver.

The exporting side is this process, built as the daemon builds it (mepd.app): a `Pipeline`, a durable
subscription of the daemon's default queue_size, a `RemoteWrite` with the default config (batch 2,000),
its disk queue in a temp directory.  The receiver is a real Prometheus (--web.enable-remote-write-receiver)
or VictoriaMetrics, started on 127.0.0.1 and stopped by its PID.  A cycle is what one SNMP poll of
`--interfaces` interfaces stores: 9 samples an interface (the 8 rates and oper_up, keys
snmp.tK.ifN.metric over 10 targets), all with the poll's time, put on the pipeline at once; the cycle ends
when every sample is sent (acknowledged by the receiver) and the queue is empty.  Cycle 1 makes the
series (labels encoded once per key); the later ones are the steady state.  CPU is this process' CPU
time (all its threads: the event loop, the queue's thread); the receiver's from /proc/PID/stat.  At the
end the receiver is asked how many series it holds at the last cycle's time and how many samples one
series holds: it must be all of them.

`--stages` times each step alone, as CPU µs per sample, no receiver.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mepd.config import RemoteWriteConfig
from mepd.export import prompb
from mepd.export.remote_write import DiskQueue, RemoteWrite, request_body
from mepd.model import Sample
from mepd.pipeline import Pipeline

METRICS = ("in_bps", "out_bps", "in_pps", "out_pps", "in_errors", "out_errors", "in_discards", "out_discards",
           "oper_up")
TARGETS = 10
INTERVAL = 60
TICK = os.sysconf("SC_CLK_TCK")
NAME = "export/remote_write0"


def sample_keys(interfaces: int) -> list[str]:
    per = max(1, interfaces // TARGETS)
    return [f"snmp.t{t}.if{i}.{m}" for t in range(TARGETS) for i in range(per) for m in METRICS]


def cycle_samples(keys: list[str], cycle: int, ts: float) -> list[Sample]:
    return [Sample(k, ts, float((cycle * 7919 + i) % 100_000)) for i, k in enumerate(keys)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(cond: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        if result := cond():
            return result
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


class Receiver:
    """A receiver process on 127.0.0.1: Prometheus or VictoriaMetrics; both answer Prometheus' query API."""

    def __init__(self, kind: str, root: Path) -> None:
        self.kind, self.root = kind, root
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.write_url = f"{self.url}/api/v1/write"
        if kind == "prometheus":
            (root / "prometheus.yml").write_text("")
            args = ["prometheus", f"--config.file={root / 'prometheus.yml'}", f"--storage.tsdb.path={root / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}", "--web.enable-remote-write-receiver"]
            self.ready_path = "/-/ready"
        else:
            args = ["victoria-metrics", f"-storageDataPath={root / 'vm'}", f"-httpListenAddr=127.0.0.1:{port}",
                    "-retentionPeriod=1y"]
            self.ready_path = "/health"
        with (root / f"{kind}.log").open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log)
        wait(self._ready, f"{kind} ready")
        self.version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", kind], check=False,
                                      capture_output=True, text=True).stdout or "?"

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise SystemExit(f"{self.kind} exited: {(self.root / f'{self.kind}.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(self.url + self.ready_path, timeout=5) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def query(self, expr: str, at: float) -> list[Any]:
        params = urllib.parse.urlencode({"query": expr, "time": at, "nocache": 1})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{params}", timeout=60) as resp:
            answer = json.load(resp)
        return list(answer["data"]["result"])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=120)


async def all_sent(rw: RemoteWrite, total: int) -> None:
    """Polled: the counters have no event to wait on; waking every 5 ms costs this process next to nothing."""
    while True:
        if rw.counters.get("sent") == total and rw.counters.get("queued") == 0:
            return
        await asyncio.sleep(0.005)


async def against(kind: str, keys: list[str], cycles: int, root: Path) -> dict[str, Any]:
    receiver = await asyncio.to_thread(Receiver, kind, root)
    try:
        pipeline = Pipeline()
        subscription = pipeline.samples.subscribe(NAME, 100_000, durable=True)
        rw = RemoteWrite(RemoteWriteConfig(receiver.write_url), NAME, str(root), "bench", subscription, dict)
        started = asyncio.Event()
        task = asyncio.create_task(rw.run(started.set))
        await started.wait()
        first = int(time.time()) - INTERVAL * (cycles + 1)
        results = []
        for c in range(cycles):
            samples, total = cycle_samples(keys, c, first + INTERVAL * c), (c + 1) * len(keys)
            cpu, rcpu, wall = time.process_time(), receiver.cpu(), time.perf_counter()
            await pipeline.samples.put_many(samples)
            await all_sent(rw, total)
            wall, cpu, rcpu = time.perf_counter() - wall, time.process_time() - cpu, receiver.cpu() - rcpu
            results.append({"cycle": c + 1, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                            "receiver_cpu_s": round(rcpu, 2), "samples_per_s": round(len(keys) / wall)})
            print(f"  {kind} cycle {c + 1}: {len(keys)} samples in {wall:.2f} s ({len(keys) / wall:,.0f}/s),"
                  f" mepd CPU {cpu:.2f} s, receiver CPU {rcpu:.2f} s", flush=True)
        counters = {k: rw.counters.get(k) for k in ("sent", "retried", "dropped.rejected", "dropped.queue_full")}
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        last = first + INTERVAL * (cycles - 1)
        series = await asyncio.to_thread(wait, lambda: _count(receiver, 'count({node="bench"})', last, len(keys)),
                                         f"{len(keys)} series in {kind}")
        one = 'count_over_time(mepd_snmp_in_bytes_per_second{target="t0",interface="if0"}[1h])'
        per_series = await asyncio.to_thread(wait, lambda: _count(receiver, one, last, cycles), f"{kind}'s samples")
        return {"receiver": kind, "version": receiver.version, "cycles": results, "counters": counters,
                "series_found": series, "samples_in_one_series": per_series}
    finally:
        await asyncio.to_thread(receiver.stop)


def _count(receiver: Receiver, expr: str, at: float, want: int) -> int | None:
    result = receiver.query(expr, at)
    n = int(float(result[0]["value"][1])) if result else 0
    return n if n == want else None


def stages(keys: list[str], root: Path) -> None:
    """CPU µs per sample of each step of the exporting side, alone."""
    rw = RemoteWrite(RemoteWriteConfig("http://127.0.0.1:1/api/v1/write"), NAME, str(root), "bench",
                     Pipeline().samples.subscribe(NAME, 10), dict)
    batch = 2000
    out: list[tuple[str, float]] = []

    def timed(what: str, fn: Callable[[], object]) -> None:
        cpu = time.process_time()
        fn()
        out.append((what, (time.process_time() - cpu) / len(keys) * 1e6))

    first, steady = cycle_samples(keys, 0, 1e9), cycle_samples(keys, 1, 1e9 + 60)
    chunks = [steady[i:i + batch] for i in range(0, len(steady), batch)]
    timed("_rows, cycle 1 (labels encoded)", lambda: rw._rows(first, {}))
    timed("_rows, steady", lambda: [rw._rows(chunk, {}) for chunk in chunks])
    rows = [rw._rows(chunk, {}) for chunk in chunks]
    queue = DiskQueue(str(root / "stages.db"), 1_000_000)
    timed("DiskQueue.append (with len), 2,000 a call", lambda: [queue.append(r) for r in rows])
    heads: list[Any] = []
    timed("DiskQueue.head(2000)", lambda: heads.extend(queue.head(batch) for _ in chunks))
    grouped = [[(lab, [(v, ts)]) for _, lab, v, ts in head] for head in heads]
    timed("prompb.write_request", lambda: [prompb.write_request(g) for g in grouped])
    timed("request_body (group, encode, snappy)", lambda: [request_body(h) for h in heads])

    def delete() -> None:
        for head in heads:
            queue.delete_through(head[-1][0])
            len(queue)

    timed("DiskQueue.delete_through + len", delete)
    queue.close()
    for what, us in out:
        print(f"{what:45}{us:8.2f} µs/sample")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--interfaces", type=int, default=10_000)
    p.add_argument("--cycles", type=int, default=6, help="cycle 1 makes the series; the rest are steady")
    p.add_argument("--receivers", default="prometheus,victoria-metrics")
    p.add_argument("--stages", action="store_true", help="time each step alone, no receiver")
    args = p.parse_args()
    keys = sample_keys(args.interfaces)
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(f"{len(keys)} samples a cycle ({args.interfaces} interfaces x {len(METRICS)}), load average {load}")
    with tempfile.TemporaryDirectory(prefix="mepd-rwbench.") as tmp:
        if args.stages:
            stages(keys, Path(tmp))
            return
        runs = []
        for kind in args.receivers.split(","):
            if shutil.which(kind) is None:
                sys.exit(f"{kind} missing: apt-get install {kind}")
            root = Path(tmp) / kind
            root.mkdir()
            runs.append(asyncio.run(against(kind, keys, args.cycles, root)))
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(f"\nload average at the end {load}")
    print(f"{'receiver':28}{'cycle 1 s':>10}{'steady s':>10}{'samples/s':>11}{'mepd CPU s':>11}"
          f"{'core share':>11}{'receiver CPU s':>15}")
    for run in runs:
        steady = run["cycles"][1:] or run["cycles"]
        wall, cpu, rcpu = (statistics.median(c[k] for c in steady) for k in ("wall_s", "cpu_s", "receiver_cpu_s"))
        print(f"{run['receiver'] + ' ' + run['version'].split('+')[0]:28}"
              f"{run['cycles'][0]['wall_s']:>10.2f}{wall:>10.2f}{len(keys) / wall:>11,.0f}{cpu:>11.2f}"
              f"{cpu / INTERVAL:>10.1%}{rcpu:>15.2f}")
        print(f"  counters {run['counters']}; series found {run['series_found']},"
              f" one series' samples {run['samples_in_one_series']}")
    print(f"core share: mepd's CPU for one cycle (median of cycles 2-{args.cycles}) / the {INTERVAL} s interval")


if __name__ == "__main__":
    main()
