"""One retention pass of the log store's writer, step by step: what `worker.maintain` costs when `max_size` deletes.

    PYTHONPATH=. .venv/bin/python bench/syslog/retention.py --max-size 256M --fill 1.5

Fills a store through the writer's own functions (`worker.write`, then `worker.index` in the store's chunks) with
bench/syslog's ~200-byte messages until it uses `--fill` times `--max-size`, then runs one retention pass
(`worker.maintain` in the store's steps, as `LogStore.maintain` calls it) with every SQL statement it executes
timed, and reports the time per kind of statement and the longest step (how long a batch waited behind it).
The store near 2 GiB and over it by half, as in the index-lag scenario after its first 300 s, is
`--max-size 2G --fill 1.5`; a smaller `--max-size` keeps the same shape (rows, their index, the share deleted)
at a fraction of the time.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from collections import defaultdict
from typing import Any

from mepd.store.logs import worker
from mepd.store.logs.store import MAINTAIN_STEP

ROWS_PER_BATCH = 2000
INDEX_CHUNK = 20_000


def row(seq: int, now: float) -> tuple[Any, ...]:
    message = (f"seq={seq:09d} user=alice action=login result=ok src=192.0.2.{seq % 250 + 1} "
               f"session={seq * 2654435761 & 0xFFFFFFFF:08x} detail=\"the quick brown fox jumps over the lazy dog\"")
    return (now, now, "bench-host.example.net", "benchapp", "4242", 16, 6, "ID47", message, None, "tcp",
            "127.0.0.1:5555", None, None, None, None)


class Timed:
    """A connection whose statements are timed, grouped by their first words."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.spent: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        t0 = time.perf_counter()
        try:
            return self.conn.execute(sql, *args)
        finally:
            key = " ".join(sql.split()[:4])[:60]
            self.spent[key][0] += time.perf_counter() - t0
            self.spent[key][1] += 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--max-size", type=size, default=size("256M"))
    p.add_argument("--fill", type=float, default=1.5, help="fill the store to this many times max-size first")
    p.add_argument("--dir", default=None, help="where the database goes (default: a temporary directory)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="retention-", dir=args.dir) as d:
        path = os.path.join(d, "logs.db")
        worker.open(path)
        conn = worker._conn
        assert conn is not None
        seq, t0 = 0, time.perf_counter()
        while True:
            now = time.time()
            worker.write(f"b{seq}", [row(seq + i, now) for i in range(ROWS_PER_BATCH)], {}, now)
            seq += ROWS_PER_BATCH
            if seq % INDEX_CHUNK == 0:
                worker.index(INDEX_CHUNK)
                if worker._used_bytes(conn) >= args.fill * args.max_size:
                    break
        used = worker._used_bytes(conn)
        print(f"filled: {seq:,} rows, {used / 2**20:.0f} MiB used, file {os.path.getsize(path) / 2**20:.0f} MiB"
              f" in {time.perf_counter() - t0:.0f} s; max_size {args.max_size / 2**20:.0f} MiB")
        timed = Timed(conn)
        worker._conn = timed  # type: ignore[assignment]
        deleted, total, longest, steps, more, now = 0, 0.0, 0.0, 0, True, time.time()
        while more:
            t0 = time.perf_counter()
            step, more = worker.maintain(now, 30 * 86400.0, args.max_size, MAINTAIN_STEP).value
            took = time.perf_counter() - t0
            deleted, total, longest, steps = deleted + step, total + took, max(longest, took), steps + 1
        worker._conn = conn
        print(f"maintain: deleted {deleted:,} rows in {total:.2f} s ({1e6 * total / max(deleted, 1):.1f} µs a row),"
              f" {steps} steps, the longest {longest:.2f} s; {worker._used_bytes(conn) / 2**20:.0f} MiB used after,"
              f" file {os.path.getsize(path) / 2**20:.0f} MiB")
        for key, (spent, n) in sorted(timed.spent.items(), key=lambda kv: -kv[1][0]):
            if spent >= 0.005:
                print(f"  {spent:8.2f} s  {n:6d} x  {key}")
        t0 = time.perf_counter()
        worker.index(INDEX_CHUNK)
        now = time.time()
        worker.write("after", [row(seq + i, now) for i in range(ROWS_PER_BATCH)], {}, now)
        print(f"next write+index after the pass: {time.perf_counter() - t0:.3f} s")
        worker.close()


if __name__ == "__main__":
    main()
