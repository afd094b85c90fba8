"""The host's own metrics, read from the kernel: samples `host.<name>.<group>[.<item>].<metric>`.

Every `[host] interval` one collection reads /proc and /sys directly (not psutil:
the same files, parsed in a few lines, a third of psutil's cost per collection and
no dependency to package; see the README's "Host metrics"):

- `net.<interface>.*`: /proc/net/dev counters turned into rates by
  `mepd.analysis.counters` with the SNMP rules (wrap, reset, over speed, an interface
  re-created with a new ifindex), under the SNMP names (`in_bps`, ..., `oper_up`), so
  the dashboard shows them as an SNMP target named after the host;
- `cpu.*`: the share of CPU time in user (with nice), system (with irq and softirq),
  iowait and steal since the last collection, over all CPUs, and the load averages;
- `mem.*`: memory (used = total - available) and swap;
- `fs.<mount>.*`: each mounted file system's space and inodes (`os.statvfs`, as df);
- `disk.<device>.*`: I/O per whole block device (partitions left out, as node_exporter does);
- `mepd.*`: this process's CPU share and resident memory.

The reading runs in a thread: a hung network file system blocks `statvfs`, never the
event loop.  A collection still running at the next interval skips that one (counted).
The kernel's clock times the counters: elapsed time is the monotonic clock's, so a
step of the wall clock makes no spike.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Final

from mepd.analysis.counters import (
    TICKS_PER_SECOND,
    UPTIME_MODULUS,
    AgentClock,
    CounterRow,
    Unknown,
    counter_delta,
    elapsed_ticks,
    row_rates,
)
from mepd.config import HostConfig
from mepd.model import Sample
from mepd.pipeline import Channel, Counters
from mepd.sources.schedule import every
from mepd.sources.snmp.interfaces import METRICS as NET_METRICS
from mepd.sources.snmp.interfaces import RATES, UP, Interface, metric_name

log = logging.getLogger(__name__)

CPU_METRICS: Final = ("user_pct", "system_pct", "iowait_pct", "steal_pct", "load1", "load5", "load15")
MEM_METRICS: Final = ("total_bytes", "available_bytes", "used_bytes", "used_pct", "swap_total_bytes",
                      "swap_used_bytes", "swap_used_pct")
FS_METRICS: Final = ("size_bytes", "used_bytes", "avail_bytes", "used_pct", "inodes", "inodes_free",
                     "inodes_used_pct")
DISK_METRICS: Final = ("read_ops", "write_ops", "read_bytes", "write_bytes", "busy_pct")
SELF_METRICS: Final = ("cpu_pct", "rss_bytes")
# Each group's metric names: one RRD file per group and item (an interface, a mount, a disk), as MRTG's.
GROUPS: Final = {"net": NET_METRICS, "cpu": CPU_METRICS, "mem": MEM_METRICS, "fs": FS_METRICS,
                 "disk": DISK_METRICS, "mepd": SELF_METRICS}

# /proc/net/dev columns (receive 0-7, transmit 8-15) of each SNMP rate, in `RATES` order.
_NET_COLUMNS: Final = {"in_bps": 0, "out_bps": 8, "in_pps": 1, "out_pps": 9, "in_errors": 2, "out_errors": 10,
                       "in_discards": 3, "out_discards": 11}
NET_COLUMNS: Final = tuple(_NET_COLUMNS[name] for name, *_ in RATES)
_NET_SCALES: Final = tuple(scale for *_, scale in RATES)
_NET_IS_BPS: Final = tuple(name.endswith("_bps") for name, *_ in RATES)
# /proc/diskstats columns after the name: reads and writes completed, sectors read and written (512 bytes
# whatever the device's sector size), milliseconds spent doing I/O (-> percent busy).
_DISK_COLUMNS: Final = (0, 4, 2, 6, 9)
_DISK_SCALES: Final = (1.0, 1.0, 512.0, 512.0, 0.1)
_NO_LIMITS: Final = (None,) * len(DISK_METRICS)
_PARTITION: Final = re.compile(r"(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p|mmcblk\d+p)\d+")
_OCTAL: Final = re.compile(r"\\([0-7]{3})")
# Linux operstate -> IF-MIB ifOperStatus (RFC 2863 names both).
_OPER: Final = {"up": 1, "down": 2, "testing": 3, "unknown": 4, "dormant": 5, "notpresent": 6,
                "lowerlayerdown": 7}
_IFF_UP: Final = 0x1
# ARPHRD -> IF-MIB ifType for the common ones: ethernetCsmacd, softwareLoopback; other(1) otherwise.
_IF_TYPES: Final = {1: 6, 772: 24}
_COUNTER_BITS: Final = 64


def mount_name(mount_point: str) -> str:
    """A mount point as a metric key part: "/" is "root", "/var/log" is "var_log"."""
    return "root" if mount_point == "/" else metric_name(mount_point.strip("/"))


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def _read_sys(path: str) -> str | None:
    """A sysfs attribute, or None when the device has none to give (speed of a virtual link: EINVAL)."""
    try:
        return _read(path).strip()
    except OSError:
        return None


def _int(text: str | None, default: int = 0) -> int:
    try:
        return int(text, 0) if text is not None else default
    except ValueError:
        return default


def parse_net_dev(text: str) -> dict[str, list[int]]:
    """/proc/net/dev: interface -> its 16 counters (receive then transmit)."""
    out = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        if sep:
            out[name.strip()] = [int(v) for v in rest.split()[:16]]
    return out


def parse_mounts(text: str) -> Iterator[tuple[str, str, str]]:
    """(device, mount point, type) of each line of /proc/self/mounts, octal escapes decoded."""
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            device, point, fstype = (_OCTAL.sub(lambda m: chr(int(m[1], 8)), f) for f in fields[:3])
            yield device, point, fstype


def cpu_shares(prev: Sequence[int], cur: Sequence[int]) -> list[float | None]:
    """user, system, iowait and steal percent of the CPU time between two /proc/stat `cpu` lines
    (user nice system idle iowait irq softirq steal: guest time is inside user already)."""
    deltas = [counter_delta(p, c, _COUNTER_BITS) for p, c in zip(prev[:8], cur[:8], strict=False)]
    if len(deltas) < 8 or None in deltas:
        return [None] * 4
    user, nice, system, _idle, iowait, irq, softirq, steal = (d or 0 for d in deltas)
    total = user + nice + system + _idle + iowait + irq + softirq + steal
    if total <= 0:
        return [None] * 4
    return [100.0 * v / total for v in (user + nice, system + irq + softirq, iowait, steal)]


def fs_values(st: os.statvfs_result) -> list[float | None]:
    """FS_METRICS of one file system as df computes them: used = size - free, percent of used + available."""
    size, free, avail = st.f_blocks * st.f_frsize, st.f_bfree * st.f_frsize, st.f_bavail * st.f_frsize
    used = size - free
    pct = 100.0 * used / (used + avail) if used + avail > 0 else None
    inodes_pct = 100.0 * (st.f_files - st.f_ffree) / st.f_files if st.f_files > 0 else None
    return [float(size), float(used), float(avail), pct, float(st.f_files), float(st.f_ffree), inodes_pct]


@dataclass(frozen=True, slots=True)
class Reading:
    """What one collection read that the next one needs: the counters, by what they count."""

    clock: AgentClock
    net: dict[str, CounterRow]
    disks: dict[str, CounterRow]
    cpu: list[int]
    own: CounterRow | None


class HostMetrics:
    """The `[host]` component; `interfaces` (by key name) is what the dashboard shows of each, as for a target."""

    def __init__(self, cfg: HostConfig, samples: Channel[Sample], proc: str = "/proc", sys: str = "/sys",
                 clock: Callable[[], float] = time.time) -> None:
        self.name = "host"
        self.cfg = cfg
        self.host = cfg.host_name
        self.samples = samples
        self.proc, self.sys = proc, sys
        self.counters = Counters()
        self.counters.declare("cycles", "samples", "overruns", "skipped_cycles", "unreadable")
        self.interfaces: dict[str, Interface] = {}
        self.mounts: dict[str, str] = {}  # key name -> mount point
        self._clock = clock
        self._last: Reading | None = None
        self._state = "starting"
        self._last_poll: float | None = None
        self._last_duration: float | None = None
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._clk_tck = os.sysconf("SC_CLK_TCK")

    def details(self) -> dict[str, object]:
        """As an SNMP target's, so pages and /metrics read both alike."""
        return {"state": self._state, "last_error": None, "last_poll": self._last_poll,
                "last_duration": self._last_duration, "cycles": self.counters.get("cycles"),
                "interfaces": len(self.interfaces)}

    async def run(self, started: Callable[[], None]) -> None:
        started()
        interval = self.cfg.interval

        def overrun(_took: float, missed: int) -> None:
            log.warning("host: collection took longer than the %.0fs interval: skipping %d", interval, missed)

        await every(interval, self.collect_once, self.counters, overrun)

    async def collect_once(self) -> list[Sample]:
        began = time.monotonic()
        samples = await asyncio.to_thread(self.collect)
        self._last_duration = time.monotonic() - began
        self._state = "ok"
        self.counters.inc("cycles")
        await self.samples.put_many(samples)
        self.counters.inc("samples", len(samples))
        return samples

    def collect(self) -> list[Sample]:
        """One collection's samples (blocking: reads files); rates are unknown at the first."""
        ts = self._clock()
        clock = AgentClock(ts, int(time.monotonic() * TICKS_PER_SECOND) % UPTIME_MODULUS)
        prev = self._last
        ticks = elapsed_ticks(prev.clock, clock) if prev is not None else None
        prefix = f"host.{self.host}."
        out: list[Sample] = []
        net, interfaces = self._net(out, prefix, clock, prev, ticks)
        cpu = self._cpu(out, prefix, ts, prev)
        self._memory(out, prefix, ts)
        self._file_systems(out, prefix, ts)
        disks = self._disks(out, prefix, clock, prev, ticks)
        own = self._own(out, prefix, clock, prev, ticks)
        self._last = Reading(clock, net, disks, cpu, own)
        self.interfaces = interfaces
        self._last_poll = ts
        return out

    def _emit(self, out: list[Sample], prefix: str, ts: float, names: Sequence[str],
              values: Sequence[float | None]) -> None:
        out.extend(map(Sample, (prefix + n for n in names), repeat(ts), values))

    def _wanted(self, name: str) -> bool:
        cfg = self.cfg
        if cfg.interfaces and not any(fnmatch.fnmatchcase(name, g) for g in cfg.interfaces):
            return False
        return not any(fnmatch.fnmatchcase(name, g) for g in cfg.exclude)

    def _net(self, out: list[Sample], prefix: str, clock: AgentClock, prev: Reading | None,
             ticks: int | None) -> tuple[dict[str, CounterRow], dict[str, Interface]]:
        rows: dict[str, CounterRow] = {}
        interfaces: dict[str, Interface] = {}
        reasons: dict[Unknown, int] = {}
        for dev, counters in parse_net_dev(_read(os.path.join(self.proc, "net/dev"))).items():
            name = metric_name(dev)
            if not self._wanted(dev) or name in interfaces:
                continue
            iface = self._interface(dev, name)
            interfaces[name] = iface
            row = CounterRow(clock, [counters[c] for c in NET_COLUMNS], [_COUNTER_BITS] * len(NET_COLUMNS),
                             iface.index)
            rows[name] = row
            speed = iface.speed_bps or None
            limits = [speed if bps else None for bps in _NET_IS_BPS]
            before = prev.net.get(name) if prev is not None else None
            rates = row_rates(before, row, ticks, _NET_SCALES, limits, reasons)
            self._emit(out, f"{prefix}net.{name}.", clock.ts, NET_METRICS,
                       [*rates, 1.0 if iface.oper == UP else 0.0])
        return rows, interfaces

    def _interface(self, dev: str, name: str) -> Interface:
        """What sysfs says of an interface, in IF-MIB's terms: ifindex, status, speed, type, alias."""
        base = os.path.join(self.sys, "class/net", dev)

        def attr(leaf: str) -> str | None:
            return _read_sys(os.path.join(base, leaf))

        flags = _int(attr("flags"))
        oper = _OPER.get(attr("operstate") or "unknown", 4)
        if oper == _OPER["unknown"] and flags & _IFF_UP and attr("carrier") == "1":
            oper = UP  # loopback and tunnels report no operstate; net-snmp calls them up when running
        speed = _int(attr("speed"), -1)
        return Interface(index=_int(attr("ifindex")), name=name, descr=dev, alias=attr("ifalias") or "",
                         type=_IF_TYPES.get(_int(attr("type")), 1), speed_bps=speed * 1e6 if speed > 0 else 0.0,
                         admin=UP if flags & _IFF_UP else 2, oper=oper)

    def _cpu(self, out: list[Sample], prefix: str, ts: float, prev: Reading | None) -> list[int]:
        first = _read(os.path.join(self.proc, "stat")).partition("\n")[0].split()
        cpu = [int(v) for v in first[1:]]
        shares = cpu_shares(prev.cpu, cpu) if prev is not None else [None] * 4
        loads = [float(v) for v in _read(os.path.join(self.proc, "loadavg")).split()[:3]]
        self._emit(out, f"{prefix}cpu.", ts, CPU_METRICS, [*shares, *loads])
        return cpu

    def _memory(self, out: list[Sample], prefix: str, ts: float) -> None:
        info = {}
        for line in _read(os.path.join(self.proc, "meminfo")).splitlines():
            key, _, rest = line.partition(":")
            info[key] = int(rest.split()[0]) * 1024 if rest.split() else 0
        total = info.get("MemTotal", 0)
        available = info.get("MemAvailable", info.get("MemFree", 0))
        swap_total = info.get("SwapTotal", 0)
        swap_used = swap_total - info.get("SwapFree", 0)
        self._emit(out, f"{prefix}mem.", ts, MEM_METRICS, [
            float(total), float(available), float(total - available),
            100.0 * (total - available) / total if total else None,
            float(swap_total), float(swap_used), 100.0 * swap_used / swap_total if swap_total else None])

    def _file_systems(self, out: list[Sample], prefix: str, ts: float) -> None:
        cfg = self.cfg
        points: dict[str, str] = {}  # mount point -> its type; a later mount over the same point hides the first
        for _, point, fstype in parse_mounts(_read(os.path.join(self.proc, "self/mounts"))):
            if fstype in cfg.fs_types_exclude or any(fnmatch.fnmatchcase(point, g) for g in cfg.mounts_exclude):
                points.pop(point, None)
                continue
            points[point] = fstype
        mounts: dict[str, str] = {}
        for point in points:
            try:
                st = os.statvfs(point)
            except OSError as e:
                self.counters.inc("unreadable")
                log.debug("host: statvfs %s: %s", point, e)
                continue
            name = mount_name(point)
            while name in mounts:
                name += "_"
            mounts[name] = point
            self._emit(out, f"{prefix}fs.{name}.", ts, FS_METRICS, fs_values(st))
        self.mounts = mounts

    def _disks(self, out: list[Sample], prefix: str, clock: AgentClock, prev: Reading | None,
               ticks: int | None) -> dict[str, CounterRow]:
        rows: dict[str, CounterRow] = {}
        reasons: dict[Unknown, int] = {}
        for line in _read(os.path.join(self.proc, "diskstats")).splitlines():
            fields = line.split()
            if len(fields) < 14 or _PARTITION.fullmatch(fields[2]):
                continue
            name, stats = metric_name(fields[2]), fields[3:]
            row = CounterRow(clock, [int(stats[c]) for c in _DISK_COLUMNS], [_COUNTER_BITS] * len(_DISK_COLUMNS),
                             (fields[0], fields[1]))
            rows[name] = row
            before = prev.disks.get(name) if prev is not None else None
            rates = row_rates(before, row, ticks, _DISK_SCALES, _NO_LIMITS, reasons)
            self._emit(out, f"{prefix}disk.{name}.", clock.ts, DISK_METRICS, rates)
        return rows

    def _own(self, out: list[Sample], prefix: str, clock: AgentClock, prev: Reading | None,
             ticks: int | None) -> CounterRow | None:
        """mepd's own CPU share (of one CPU, as top shows a process) and resident memory."""
        stat = _read(os.path.join(self.proc, "self/stat")).rpartition(")")[2].split()
        rss = int(_read(os.path.join(self.proc, "self/statm")).split()[1]) * self._page
        row = CounterRow(clock, [int(stat[11]) + int(stat[12])], [_COUNTER_BITS])  # utime + stime, in clock ticks
        before = prev.own if prev is not None else None
        [cpu] = row_rates(before, row, ticks, (100.0 / self._clk_tck,), (None,), {})
        self._emit(out, f"{prefix}mepd.", clock.ts, SELF_METRICS, [cpu, float(rss)])
        return row


def key_groups(cfg: HostConfig) -> list[tuple[str, tuple[str, ...]]]:
    """(key prefix, metric names) of each group: the RRD store keeps each prefix's item in one file."""
    return [(f"host.{cfg.host_name}.{group}.", names) for group, names in GROUPS.items()]


def create(cfg: HostConfig, samples: Channel[Sample]) -> HostMetrics:
    return HostMetrics(cfg, samples)
