"""Monit-style checks (`[[check]]`): one component each, whose results are samples `check.<name>.<metric>`.

Every check is a metric and a state.  Its samples go on the pipeline like an
SNMP target's, so the RRD store keeps them and alert rules, incidents and
actions use them unchanged (`check.apache.up below 1` restarts Apache); its
state (ok, failed, unknown: the check cannot tell) is its component's
`details()`, which `mepctl checks` and the dashboard's Checks page show, and
each change of state is also a log record (source `check:<name>`).

Each check runs in its own loop every `interval`, bounded by `timeout`, so a
slow one delays nobody else; nothing blocks the event loop: HTTP and TCP are
asyncio, statvfs and the /proc scan run in threads, systemd is asked over
D-Bus (`checks_systemd`), whose change signal runs a `systemd_unit` check at
once instead of at its next interval.  A failure to check is a state, never a
component failure: no system bus (a container) makes the state "unknown" with
the reason, and `up` unknown, which no threshold rule fires on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

import aiohttp
from yarl import URL

from mepd import __version__
from mepd.config import CheckConfig, split_address
from mepd.errors import quoted
from mepd.model import LogRecord, Sample, rfc3339
from mepd.pipeline import Channel, Counters
from mepd.sources.host.checks_process import CpuMeter, hidepid, scan
from mepd.sources.host.checks_systemd import NoBusError, SystemdClient, SystemdError

log = logging.getLogger(__name__)

CheckState = Literal["starting", "ok", "failed", "unknown"]
# The metric names of each kind, after `up` (1 when the check passes, 0 when it fails, unknown when it cannot tell).
METRICS: Final = {
    "systemd_unit": ("restarts",),
    "http": ("latency_seconds", "status_code", "cert_days_left"),
    "tcp": ("latency_seconds",),
    "filesystem": ("used_pct", "free_bytes", "inodes_used_pct"),
    "process": ("count", "cpu_pct", "rss_bytes"),
}
MIN_GAP: Final = 1.0  # seconds between runs woken by change signals (a flapping unit), and RRD's smallest step
MAX_BODY: Final = 1024 * 1024  # what an HTTP check reads of an answer, and searches for `contains`
USER_AGENT: Final = f"mepd/{__version__} (check)"
SEVERITY: Final = {"ok": 5, "failed": 3, "unknown": 4}  # notice, err, warning: of a state change's log record


def metric_names(cfg: CheckConfig) -> tuple[str, ...]:
    names = METRICS[cfg.kind]
    if cfg.kind == "http" and not cfg.http.startswith("https:"):
        names = tuple(n for n in names if n != "cert_days_left")
    return ("up", *names)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One run's verdict: `up` None when the check cannot tell (no system bus); `values` by metric name."""

    up: bool | None
    message: str
    values: Mapping[str, float | None] = field(default_factory=dict)


class Probe:
    """What a kind of check does once (`run`); `changed`, when a probe has it, is set when a new run is due now."""

    changed: asyncio.Event | None = None

    async def run(self) -> Outcome:
        raise NotImplementedError

    async def close(self) -> None:
        """Let go of what the probe keeps between runs (a D-Bus connection)."""


class HttpProbe(Probe):
    """GET the URL on a fresh connection; up when the status is `expect_status` (or below 400) and the body
    holds `contains`.  The latency is the whole answer's (up to MAX_BODY).  Over HTTPS, the certificate's
    days left come from a TLS handshake of its own (aiohttp lets go of the connection, and of its certificate,
    as soon as a short answer is read), with the same verification: `tls_verify = false` accepts any
    certificate and still reports them."""

    def __init__(self, cfg: CheckConfig) -> None:
        self.cfg = cfg
        url = URL(cfg.http)
        self.host, self.port = url.host or "", url.port or 443
        self.https = url.scheme == "https"
        self._tls: ssl.SSLContext | None = None

    def _tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.cfg.ca_file or None)
        if not self.cfg.tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    async def run(self) -> Outcome:
        cfg = self.cfg
        if self.https and self._tls is None:
            self._tls = await asyncio.to_thread(self._tls_context)  # reads the CA bundle from disk
        began = time.monotonic()
        connector = aiohttp.TCPConnector(ssl=self._tls or True, force_close=True)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:
            try:
                async with session.get(cfg.http, allow_redirects=False, headers={"User-Agent": USER_AGENT}) as resp:
                    body = await _read_head(resp.content, MAX_BODY)
            except aiohttp.ClientError as e:
                return Outcome(False, str(e) or type(e).__name__)
        latency = time.monotonic() - began
        days = await self._cert_days_left() if self._tls is not None else None
        values = {"latency_seconds": latency, "status_code": float(resp.status), "cert_days_left": days}
        expected = resp.status == cfg.expect_status if cfg.expect_status else resp.status < 400
        answer = f"HTTP {resp.status} {resp.reason or ''}".rstrip()
        if not expected:
            wanted = cfg.expect_status or "below 400"
            return Outcome(False, f"{answer}, expected {wanted}", values)
        if cfg.contains and cfg.contains.encode() not in body:
            return Outcome(False, f"{answer} without {quoted(cfg.contains)} in the first {len(body):,} bytes", values)
        cert = f", certificate valid {days:.0f} more days" if days is not None else ""
        return Outcome(True, f"{answer} in {1000 * latency:.0f} ms{cert}", values)

    async def _cert_days_left(self) -> float | None:
        """Days until the server's certificate expires (negative once it has); None if the handshake fails."""
        try:
            _, writer = await asyncio.open_connection(self.host, self.port, ssl=self._tls, server_hostname=self.host)
        except (OSError, ssl.SSLError):
            return None
        try:
            tls = writer.get_extra_info("ssl_object")
            der = tls.getpeercert(binary_form=True) if tls is not None else None
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        if not der:
            return None
        from cryptography import x509  # noqa: PLC0415 - 7 MB of the daemon's memory, for https checks only
        return (x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp() - time.time()) / 86400


async def _read_head(content: aiohttp.StreamReader, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while size < limit and (chunk := await content.read(limit - size)):
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


class TcpProbe(Probe):
    """Connect and close: up when the connection is accepted; the latency is the connect time."""

    def __init__(self, cfg: CheckConfig) -> None:
        self.host, self.port = split_address(cfg.tcp)

    async def run(self) -> Outcome:
        began = time.monotonic()
        try:
            _, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as e:
            why = "connection refused" if isinstance(e, ConnectionRefusedError) else e.strerror or str(e)
            return Outcome(False, why)
        latency = time.monotonic() - began
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return Outcome(True, f"connected in {1000 * latency:.1f} ms", {"latency_seconds": latency})


class FilesystemProbe(Probe):
    """statvfs in a thread: used space as `df` counts it (of what unprivileged users may use), free bytes, inodes.
    A statvfs that has not returned (a hung NFS server) is not asked again until it does: threads do not pile up."""

    def __init__(self, cfg: CheckConfig) -> None:
        self.path = cfg.filesystem
        self._pending: asyncio.Future[os.statvfs_result] | None = None

    async def run(self) -> Outcome:
        if self._pending is not None and not self._pending.done():
            return Outcome(False, f"statvfs of {self.path} has not returned yet (a hung network file system?)")
        pending = self._pending = asyncio.ensure_future(asyncio.to_thread(os.statvfs, self.path))
        pending.add_done_callback(_retrieve)
        try:
            st = await asyncio.shield(pending)
        except OSError as e:
            return Outcome(False, f"{self.path}: {e.strerror or e}")
        used, avail = st.f_blocks - st.f_bfree, st.f_bavail
        used_pct = 100.0 * used / (used + avail) if used + avail else 0.0
        inodes = 100.0 * (st.f_files - st.f_ffree) / st.f_files if st.f_files else None
        free = avail * st.f_frsize
        values = {"used_pct": used_pct, "free_bytes": float(free), "inodes_used_pct": inodes}
        return Outcome(True, f"{used_pct:.1f}% used, {free / 2**30:.1f} GiB free", values)


def _retrieve(future: asyncio.Future[os.statvfs_result]) -> None:
    """Take the exception of a statvfs whose run timed out, so asyncio does not report it as lost."""
    if not future.cancelled():
        future.exception()


class ProcessProbe(Probe):
    """The processes running `process` (by name) or the pidfile's: up when at least one runs."""

    def __init__(self, cfg: CheckConfig) -> None:
        self.cfg = cfg
        self.meter = CpuMeter()
        self._hidden: str | None = None  # /proc's hidepid= option, which hides other users' processes

    async def run(self) -> Outcome:
        cfg = self.cfg
        if self._hidden is None:
            self._hidden = await asyncio.to_thread(hidepid)
        try:
            found = await asyncio.to_thread(scan, cfg.process, cfg.pidfile)
        except (OSError, ValueError) as e:
            found, why = [], f"pidfile {cfg.pidfile}: {e.strerror if isinstance(e, OSError) else e}"
        else:
            why = ""
        cpu = self.meter.update(found, time.monotonic())
        values = {"count": float(len(found)), "cpu_pct": cpu, "rss_bytes": float(sum(s.rss_bytes for s in found))}
        if not found:
            hint = (f" (or hidden: /proc is mounted {self._hidden}, so mepd sees only its own user's processes;"
                    " ProtectProc=default in a drop-in for mepd.service lets it see all)") if self._hidden else ""
            return Outcome(False, (why or f"{cfg.target} is not running") + hint, values)
        pids = ", ".join(str(s.pid) for s in found[:5]) + (", ..." if len(found) > 5 else "")
        return Outcome(True, f"{len(found)} running (pid {pids})", values)


class SystemdProbe(Probe):
    """The unit's ActiveState: up when active (or reloading); `changed` is systemd's change signal."""

    def __init__(self, cfg: CheckConfig) -> None:
        self.client = SystemdClient(cfg.systemd_unit, cfg.bus)
        self.changed = self.client.changed

    async def run(self) -> Outcome:
        unit = self.client.unit
        try:
            st = await self.client.state()
        except (NoBusError, SystemdError) as e:
            return Outcome(None, str(e))
        values = {"restarts": None if st.restarts is None else float(st.restarts)}
        if st.load == "not-found":
            return Outcome(False, f"no unit {unit}", values)
        restarts = f", restarted {st.restarts} times" if st.restarts else ""
        return Outcome(st.active in ("active", "reloading"), f"{unit} {st.active} ({st.sub}){restarts}", values)

    async def close(self) -> None:
        await self.client.close()


def probe_for(cfg: CheckConfig) -> Probe:
    kinds: dict[str, Callable[[CheckConfig], Probe]] = {
        "systemd_unit": SystemdProbe, "http": HttpProbe, "tcp": TcpProbe, "filesystem": FilesystemProbe,
        "process": ProcessProbe,
    }
    return kinds[cfg.kind](cfg)


@dataclass(slots=True)
class CheckStatus:
    """What `mepctl checks` and the Checks page show of a check: its state since when, and its last values."""

    name: str
    kind: str
    target: str
    state: CheckState = "starting"
    message: str = ""
    since: float = field(default_factory=time.time)
    last_run: float | None = None
    duration: float | None = None
    values: dict[str, float | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name, "kind": self.kind, "target": self.target, "state": self.state,
            "message": self.message, "since": rfc3339(self.since),
            "last_run": rfc3339(self.last_run) if self.last_run is not None else None,
            "duration": self.duration, "values": dict(self.values),
        }


class Check:
    """The component running one `[[check]]`."""

    def __init__(self, cfg: CheckConfig, samples: Channel[Sample], logs: Channel[LogRecord],
                 clock: Callable[[], float] = time.time) -> None:
        self.name = f"check/{cfg.name}"
        self.cfg = cfg
        self.samples = samples
        self.logs = logs
        self.counters = Counters()
        self.counters.declare("runs", "failed_runs", "samples", "state_changes")
        self.status = CheckStatus(cfg.name, cfg.kind, cfg.target, since=clock())
        self.keys = {m: f"check.{cfg.name}.{m}" for m in metric_names(cfg)}
        self._clock = clock
        self._host = socket.gethostname()

    def details(self) -> dict[str, object]:
        return self.status.to_json()

    async def run(self, started: Callable[[], None]) -> None:
        probe = probe_for(self.cfg)
        try:
            started()
            await self._loop(probe)
        finally:
            await probe.close()

    async def _loop(self, probe: Probe) -> None:
        loop = asyncio.get_running_loop()
        interval = self.cfg.interval
        next_at = loop.time()
        while True:
            ran_at = loop.time()
            if probe.changed is not None:
                probe.changed.clear()  # a change during the run wakes the next one
            await self.run_once(probe)
            if next_at <= ran_at:  # a scheduled run: the next is an interval on (missed ones are skipped)
                next_at += ((ran_at - next_at) // interval + 1) * interval
            if await _wait(probe.changed, next_at - loop.time()):
                await asyncio.sleep(max(0.0, ran_at + MIN_GAP - loop.time()))

    async def run_once(self, probe: Probe) -> Outcome:
        """One run within `timeout`: its samples on the pipeline, its state in `status`."""
        began = time.monotonic()
        try:
            async with asyncio.timeout(self.cfg.timeout):
                outcome = await probe.run()
        except TimeoutError:
            outcome = Outcome(False, f"no result within the {self.cfg.timeout:g}s timeout")
        now = self._clock()
        await self._record(outcome, now, time.monotonic() - began)
        return outcome

    async def _record(self, outcome: Outcome, now: float, duration: float) -> None:
        up = outcome.up
        values: dict[str, float | None] = {"up": None if up is None else float(up)}
        values |= {m: outcome.values.get(m) for m in self.keys if m != "up"}
        st = self.status
        st.last_run, st.duration, st.values, st.message = now, duration, values, outcome.message
        self.counters.inc("runs")
        if not up:
            self.counters.inc("failed_runs")
        state: CheckState = "unknown" if up is None else "ok" if up else "failed"
        if state != st.state:
            await self._changed(st.state, state, outcome.message, now)
            st.state, st.since = state, now
        await self.samples.put_many([Sample(key, now, values[m]) for m, key in self.keys.items()])
        self.counters.inc("samples", len(self.keys))

    async def _changed(self, old: CheckState, new: CheckState, message: str, now: float) -> None:
        """Log a change of state, and put it in the log store, except the first success: that is the normal start."""
        text = f"check {self.cfg.name} ({self.cfg.kind} {self.cfg.target}): {new}: {message}"
        log.log(logging.INFO if new == "ok" else logging.WARNING, "%s", text)
        if old == "starting" and new == "ok":
            return
        self.counters.inc("state_changes")
        await self.logs.put(LogRecord(now, now, text, f"check:{self.cfg.name}", host=self._host, app="mepd",
                                      severity=SEVERITY[new]))


async def _wait(event: asyncio.Event | None, delay: float) -> bool:
    """Sleep `delay` seconds, or less when `event` is set meanwhile: then True."""
    if delay <= 0:
        return False
    if event is None:
        await asyncio.sleep(delay)
        return False
    try:
        async with asyncio.timeout(delay):
            await event.wait()
    except TimeoutError:
        return False
    return True


def create(cfg: CheckConfig, samples: Channel[Sample], logs: Channel[LogRecord]) -> Check:
    return Check(cfg, samples, logs)
