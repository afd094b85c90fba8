"""`[[metrics.remote_write]]`: every sample mepd stores, sent to a Prometheus remote write 1.0 receiver.

A pipeline consumer of the sample channel, beside the RRD store.  Samples get the names and labels
/metrics gives them (mepd.web.prometheus.series) plus `node`, and go first to a bounded queue on disk
(SQLite in the state directory), then to the receiver, oldest first, `batch` at a time: a receiver
that is down or answers 5xx or 429 delays them (retried with exponential backoff), loses none up to
`queue_max` queued samples, beyond which the oldest are dropped and counted.  A 4xx other than 429
(an out-of-order sample, a bad label) would fail again: the batch is dropped and counted.

The queue's SQLite calls, and turning samples into rows, run on one thread of their own, in order:
queuing an SNMP poll of 10,000 interfaces (90,000 samples) takes about 0.7 s, which would otherwise
hold up syslog reception.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import ssl
from collections.abc import Callable, Mapping
from typing import Final, Literal

import aiohttp
import cramjam

from mepd import __version__, diskqueue
from mepd.config import RemoteWriteConfig
from mepd.export import prompb
from mepd.model import Sample
from mepd.pipeline import Counters, Subscription
from mepd.web.prometheus import series
from mepd.workers import Thread

log = logging.getLogger(__name__)

LINGER: Final = 1.0  # seconds the consumer waits for a fuller batch before queuing what it has
BACKOFF_MIN: Final = 0.5
BACKOFF_MAX: Final = 30.0
Row = tuple[int, bytes, float, int]  # queue id, encoded labels, value, timestamp in ms
Outcome = Literal["sent", "rejected", "retry"]


class DiskQueue(diskqueue.DiskQueue):
    """Encoded samples waiting to be sent, oldest first, at most `limit`."""

    def __init__(self, path: str, limit: int) -> None:
        super().__init__(path, limit, "labels BLOB NOT NULL, value REAL NOT NULL, ts INTEGER NOT NULL")


def request_body(rows: list[Row]) -> bytes:
    """The snappy-compressed WriteRequest of the rows, one TimeSeries per series in order of first sample."""
    grouped: dict[bytes, list[tuple[float, int]]] = {}
    for _, lab, value, ts in rows:
        grouped.setdefault(lab, []).append((value, ts))
    return bytes(cramjam.snappy.compress_raw(prompb.write_request(grouped.items())))


def tls_context(cfg: RemoteWriteConfig) -> ssl.SSLContext | None:
    if not cfg.url.startswith("https:"):
        return None
    ctx = ssl.create_default_context(cafile=cfg.ca_file or None)
    if cfg.cert:
        ctx.load_cert_chain(cfg.cert, cfg.key)
    if cfg.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _secret(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


class RemoteWrite:
    """One receiver's consumer of the sample channel: takes samples to the disk queue, sends the queue."""

    def __init__(self, cfg: RemoteWriteConfig, name: str, state_dir: str, node: str,
                 subscription: Subscription[Sample], mounts: Callable[[], Mapping[str, str]]) -> None:
        self.name = name
        self.cfg = cfg
        self.node = node
        self.subscription = subscription
        self.mounts = mounts
        self.queue = DiskQueue(os.path.join(state_dir, name.replace("/", "_") + ".db"), cfg.queue_max)
        self.counters = Counters()
        self.counters.declare("queued", "sent", "retried", "dropped.rejected", "dropped.queue_full")
        self._labels: dict[str, bytes] = {}  # key -> its series' encoded labels
        self._wake = asyncio.Event()
        self._last_error = ""
        self._thread = Thread(self.name)
        self._call = self._thread.run

    def details(self) -> dict[str, object]:
        return {"url": self.cfg.url, **({"last_error": self._last_error} if self._last_error else {})}

    async def run(self, started: Callable[[], None]) -> None:
        try:
            self.counters.set("queued", await self._call(len, self.queue))
            headers = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
                       "X-Prometheus-Remote-Write-Version": "0.1.0", "User-Agent": f"mepd/{__version__}"}
            if self.cfg.bearer_token_file:
                headers["Authorization"] = f"Bearer {_secret(self.cfg.bearer_token_file)}"
            if (auth := self.cfg.basic_auth) is not None:  # by hand: aiohttp 3.14 deprecates BasicAuth
                pair = f"{auth.user}:{_secret(auth.password_file)}".encode()
                headers["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
            connector = aiohttp.TCPConnector(ssl=tls_context(self.cfg) or True)
            async with aiohttp.ClientSession(connector=connector, headers=headers,
                                             timeout=aiohttp.ClientTimeout(total=self.cfg.timeout)) as session:
                started()
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self._take())
                    tasks.create_task(self._send(session))
        finally:
            await asyncio.shield(self._call(self.queue.close))
            self._thread.stop(wait=False)

    async def _take(self) -> None:
        """Samples from the pipeline to the disk queue; done once they are on disk."""
        while True:
            batch = await self.subscription.get_batch(self.cfg.batch, LINGER)
            try:
                dropped = await self._call(self._queue, batch, self.mounts())
                self.counters.set("queued", await self._call(len, self.queue))
            finally:
                self.subscription.done(len(batch))
            if dropped:
                self.counters.inc("dropped.queue_full", dropped)
                log.warning("%s: queue full (queue_max %d), %d oldest samples dropped",
                            self.name, self.cfg.queue_max, dropped)
            self._wake.set()

    def _queue(self, batch: list[Sample], mounts: Mapping[str, str]) -> int:
        """On the queue's thread: a new poll of 10,000 interfaces is 1.2 s of encoding labels, 0.14 s after."""
        return self.queue.append(self._rows(batch, mounts))

    def _rows(self, batch: list[Sample], mounts: Mapping[str, str]) -> list[tuple[bytes, float, int]]:
        rows = []
        for s in batch:
            if s.value is None:  # unknown: no sample, as /metrics shows none
                continue
            family, pairs, value = series(s.key, s.value, mounts)
            lab = self._labels.get(s.key)
            if lab is None:
                lab = self._labels[s.key] = prompb.labels((("__name__", family), *pairs, ("node", self.node)))
            rows.append((lab, float(value), round(s.ts * 1000)))
        return rows

    async def _send(self, session: aiohttp.ClientSession) -> None:
        backoff = BACKOFF_MIN
        while True:
            self._wake.clear()
            rows = await self._call(self.queue.head, self.cfg.batch)
            if not rows:
                await self._wake.wait()
                continue
            outcome = await self._post(session, request_body(rows))
            if outcome == "retry":
                self.counters.inc("retried", len(rows))
                await asyncio.sleep(backoff)
                backoff = min(2 * backoff, BACKOFF_MAX)
                continue
            backoff = BACKOFF_MIN
            await self._call(self.queue.delete_through, rows[-1][0])
            self.counters.inc("sent" if outcome == "sent" else "dropped.rejected", len(rows))
            self.counters.set("queued", await self._call(len, self.queue))

    async def _post(self, session: aiohttp.ClientSession, body: bytes) -> Outcome:
        try:
            async with session.post(self.cfg.url, data=body) as resp:
                if resp.status < 300:
                    self._last_error = ""
                    return "sent"
                answer = (await resp.text(errors="replace"))[:300].strip()
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            self._last_error = f"{type(e).__name__}: {e}"
            log.warning("%s: %s; retrying", self.name, self._last_error)
            return "retry"
        self._last_error = f"HTTP {resp.status}: {answer}"
        if resp.status == 429 or resp.status >= 500:
            log.warning("%s: %s; retrying", self.name, self._last_error)
            return "retry"
        log.warning("%s: %s; batch dropped (dropped.rejected)", self.name, self._last_error)
        return "rejected"
