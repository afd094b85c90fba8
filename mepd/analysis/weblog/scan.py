"""The one-shot analyser's reading of a whole file: byte ranges counted in parallel processes, then merged.

The per-line cost is Python's, so a big file is cut into byte ranges that
every worker splits into the same lines (a line belongs to the range holding
its first byte); each range gives an `Aggregate`, and the merge is exact
because every table adds.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Final

from mepd.analysis.weblog.accesslog import AccessFormat
from mepd.analysis.weblog.aggregate import DEFAULT_KEEP, Aggregate

BLOCK: Final = 2 << 20
PARALLEL_MIN_BYTES: Final = 32 << 20


def _lines(chunks: Iterable[bytes]) -> Iterator[list[str]]:
    """Lists of complete lines from byte chunks; a last line without its newline comes last."""
    tail = b""
    for chunk in chunks:
        data = tail + chunk
        cut = data.rfind(b"\n") + 1
        tail = data[cut:]
        if cut:
            yield data[:cut].decode("utf-8", "replace").split("\n")
    if tail:
        yield tail.decode("utf-8", "replace").split("\n")


def _range_chunks(f: io.BufferedReader, start: int, end: int) -> Iterator[bytes]:
    """The bytes of the lines whose first byte is in [start, end): the same split every worker agrees on."""
    pos = start
    if start > 0:
        f.seek(start - 1)
        pos = start - 1 + len(f.readline())
    data = b"\n"
    while pos < end:
        data = f.read(min(BLOCK, end - pos))
        if not data:
            return
        pos += len(data)
        yield data
    if not data.endswith(b"\n"):
        yield f.readline()


def _blocks(path: str, start: int, end: int) -> Iterator[list[str]]:
    with open(path, "rb") as f:
        yield from _lines(_range_chunks(f, start, end))


def _scan_range(path: str, start: int, end: int, fmt: AccessFormat, site_hosts: tuple[str, ...],
                keep: int) -> Aggregate:
    agg = Aggregate(fmt, site_hosts, keep)
    for lines in _blocks(path, start, end):
        agg.scan(lines)
    agg.settle()
    return agg


def analyze_file(path: str, fmt: AccessFormat = "combined", site_hosts: Sequence[str] = (),
                 keep: int = DEFAULT_KEEP, workers: int | None = None) -> Aggregate:
    """Count a whole file ("-" for stdin, *.gz decompressed) in memory bounded by `keep`.

    A plain file of at least 32 MiB is cut into byte ranges counted by
    `workers` processes (default: the CPUs this process may use), since the
    per-line cost is Python's; the merge is exact because every table adds.
    """
    hosts = tuple(site_hosts)
    if path == "-" or path.endswith(".gz"):
        agg = Aggregate(fmt, hosts, keep)
        stream: io.BufferedIOBase | io.RawIOBase
        with (gzip.open(path, "rb") if path != "-" else open(sys.stdin.fileno(), "rb", closefd=False)) as stream:
            for lines in _lines(iter(lambda: stream.read(BLOCK), b"")):
                agg.scan(lines)
        agg.settle()
        return agg
    size = os.path.getsize(path)
    if workers is None:
        workers = len(os.sched_getaffinity(0))
    if workers <= 1 or size < PARALLEL_MIN_BYTES:
        return _scan_range(path, 0, size, fmt, hosts, keep)
    parts = max(workers, math.ceil(size / (64 << 20)))
    bounds = [size * i // parts for i in range(parts + 1)]
    total = Aggregate(fmt, hosts, keep)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_scan_range, path, bounds[i], bounds[i + 1], fmt, hosts, keep) for i in range(parts)]
        for future in futures:
            total.merge(future.result())
    return total
