"""The host source on a fake /proc and /sys: the SNMP rate rules on kernel counters (wrap, reset, a
re-created interface), the interface status in IF-MIB terms, CPU shares, memory, file systems as df."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from mepd.config import HostConfig
from mepd.model import Sample
from mepd.pipeline import Channel, Counters
from mepd.sources.host import metrics
from mepd.sources.host.metrics import HostMetrics, cpu_shares, fs_values, mount_name, parse_mounts, parse_net_dev
from mepd.sources.snmp.interfaces import METRICS

NET_HEADER = ("Inter-|   Receive                                                |  Transmit\n"
              " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls"
              " carrier compressed\n")


class FakeHost:
    """A /proc and /sys tree with one interface, eth0, whose counters the test sets."""

    def __init__(self, root: Path) -> None:
        self.proc, self.sys = root / "proc", root / "sys"
        (self.proc / "net").mkdir(parents=True)
        (self.proc / "self").mkdir()
        self.set_cpu([100, 0, 50, 850, 0, 0, 0, 0])
        (self.proc / "loadavg").write_text("0.50 0.25 0.10 1/100 4242\n")
        (self.proc / "meminfo").write_text("MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 250 kB\n"
                                           "SwapTotal: 0 kB\nSwapFree: 0 kB\n")
        (self.proc / "self" / "mounts").write_text(f"tmpfs {root} tmpfs rw 0 0\nproc /proc proc rw 0 0\n")
        (self.proc / "diskstats").write_text("   8 0 sda 10 0 80 5 20 0 160 7 0 30 12 0 0 0 0\n"
                                             "   8 1 sda1 10 0 80 5 20 0 160 7 0 30 12 0 0 0 0\n")
        (self.proc / "self" / "stat").write_text("1 (mepd (x)) S 0 1 1 0 -1 0 0 0 0 0 30 20 0 0\n")
        (self.proc / "self" / "statm").write_text("1000 200 100 1 0 100 0\n")
        self.set_link(ifindex=2, operstate="up", speed="1000")
        self.set_counters(rx_bytes=0, tx_bytes=0)

    def set_cpu(self, values: list[int]) -> None:
        (self.proc / "stat").write_text("cpu  " + " ".join(map(str, values)) + " 0 0\ncpu0 1 2 3\n")

    def set_link(self, ifindex: int, operstate: str, speed: str, flags: str = "0x1003") -> None:
        base = self.sys / "class" / "net" / "eth0"
        base.mkdir(parents=True, exist_ok=True)
        for name, text in {"ifindex": str(ifindex), "operstate": operstate, "speed": speed, "flags": flags,
                           "type": "1", "ifalias": "uplink", "carrier": "1"}.items():
            (base / name).write_text(text + "\n")

    def set_counters(self, rx_bytes: int, tx_bytes: int, rx_packets: int = 0) -> None:
        row = [rx_bytes, rx_packets, 0, 0, 0, 0, 0, 0, tx_bytes, 0, 0, 0, 0, 0, 0, 0]
        (self.proc / "net" / "dev").write_text(NET_HEADER + "  eth0: " + " ".join(map(str, row)) + "\n")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake(tmp_path: Path) -> FakeHost:
    return FakeHost(tmp_path)


def source(fake: FakeHost, monkeypatch: pytest.MonkeyPatch, **cfg: object) -> tuple[HostMetrics, Clock]:
    """A source on the fake tree whose wall and monotonic clocks both move only with `Clock.now`."""
    clock = Clock()
    monkeypatch.setattr(metrics.time, "monotonic", lambda: clock.now - 1_700_000_000.0)
    host = HostMetrics(HostConfig(enabled=True, name="box", **cfg),  # type: ignore[arg-type]
                       Channel("samples", Counters()), str(fake.proc), str(fake.sys), clock)
    return host, clock


def values(samples: list[Sample]) -> Mapping[str, float | None]:
    return {s.key: s.value for s in samples}


def test_interface_rates_follow_the_snmp_rules(fake: FakeHost, monkeypatch: pytest.MonkeyPatch) -> None:
    host, clock = source(fake, monkeypatch)
    fake.set_counters(rx_bytes=2**64 - 1000, tx_bytes=5000)
    first = values(host.collect())
    assert [first[f"host.box.net.eth0.{m}"] for m in METRICS] == [None] * 8 + [1.0]  # no rate at the first

    clock.now += 10
    fake.set_counters(rx_bytes=9000, tx_bytes=15000)  # rx wrapped past 2**64
    wrapped = values(host.collect())
    assert wrapped["host.box.net.eth0.in_bps"] == 10000 * 8 / 10
    assert wrapped["host.box.net.eth0.out_bps"] == 10000 * 8 / 10

    clock.now += 10
    fake.set_counters(rx_bytes=100, tx_bytes=25000)  # rx went far back: reset (a driver reload), not a wrap
    reset = values(host.collect())
    assert reset["host.box.net.eth0.in_bps"] is None
    assert reset["host.box.net.eth0.out_bps"] == 8000.0

    clock.now += 10
    fake.set_link(ifindex=7, operstate="up", speed="1000")  # deleted and created again between two readings
    fake.set_counters(rx_bytes=50, tx_bytes=30000)
    again = values(host.collect())
    assert again["host.box.net.eth0.out_bps"] is None

    clock.now += 10
    fake.set_counters(rx_bytes=50, tx_bytes=30000 + 10 * 200_000_000)  # 1.6 Gb/s on a 1 Gb/s link
    fast = values(host.collect())
    assert fast["host.box.net.eth0.out_bps"] is None
    assert fast["host.box.net.eth0.in_bps"] == 0.0


def test_interface_status_in_if_mib_terms(fake: FakeHost, monkeypatch: pytest.MonkeyPatch) -> None:
    host, _ = source(fake, monkeypatch)
    host.collect()
    eth0 = host.interfaces["eth0"]
    assert (eth0.index, eth0.descr, eth0.alias, eth0.speed_bps, eth0.admin, eth0.oper, eth0.type) == (
        2, "eth0", "uplink", 1e9, 1, 1, 6)
    fake.set_link(ifindex=2, operstate="down", speed="-1", flags="0x1002")
    down = values(host.collect())
    assert down["host.box.net.eth0.oper_up"] == 0.0
    assert (host.interfaces["eth0"].admin, host.interfaces["eth0"].oper, host.interfaces["eth0"].speed_bps) == (
        2, 2, 0.0)
    fake.set_link(ifindex=2, operstate="unknown", speed="-1", flags="0x9")  # loopback: no operstate, carrier
    assert values(host.collect())["host.box.net.eth0.oper_up"] == 1.0


def test_interface_selection_by_glob(fake: FakeHost, monkeypatch: pytest.MonkeyPatch) -> None:
    host, _ = source(fake, monkeypatch, exclude=("eth*",))
    assert not [s for s in host.collect() if ".net." in s.key]


def test_cpu_memory_disks_and_own_process(fake: FakeHost, monkeypatch: pytest.MonkeyPatch) -> None:
    host, clock = source(fake, monkeypatch)
    first = values(host.collect())
    assert first["host.box.cpu.user_pct"] is None
    assert first["host.box.cpu.load5"] == 0.25
    assert (first["host.box.mem.used_bytes"], first["host.box.mem.used_pct"]) == (750 * 1024, 75.0)
    assert first["host.box.mem.swap_used_pct"] is None  # no swap: unknown, not 0 %
    assert not [k for k in first if k.startswith("host.box.disk.sda1.")], "partitions are left out"
    clock.now += 10
    fake.set_cpu([160, 20, 70, 1100, 30, 5, 5, 10])  # +60 user +20 nice +20 system +250 idle +30 iowait ...
    (fake.proc / "diskstats").write_text("   8 0 sda 30 0 280 5 20 0 160 7 0 1030 12 0 0 0 0\n")
    (fake.proc / "self" / "stat").write_text("1 (mepd (x)) S 0 1 1 0 -1 0 0 0 0 0 80 70 0 0\n")
    later = values(host.collect())
    total = 60 + 20 + 20 + 250 + 30 + 5 + 5 + 10
    assert later["host.box.cpu.user_pct"] == pytest.approx(100 * 80 / total)
    assert later["host.box.cpu.system_pct"] == pytest.approx(100 * 30 / total)
    assert later["host.box.cpu.steal_pct"] == pytest.approx(100 * 10 / total)
    assert later["host.box.disk.sda.read_ops"] == 2.0
    assert later["host.box.disk.sda.read_bytes"] == 200 * 512 / 10
    assert later["host.box.disk.sda.busy_pct"] == 10.0  # 1000 ms busy in 10 s
    assert later["host.box.mepd.cpu_pct"] == pytest.approx(100 * 100 / os.sysconf("SC_CLK_TCK") / 10)
    assert later["host.box.mepd.rss_bytes"] == 200 * os.sysconf("SC_PAGE_SIZE")


def test_file_systems_as_statvfs(fake: FakeHost, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    host, _ = source(fake, monkeypatch)
    got = values(host.collect())
    name = mount_name(str(tmp_path))
    st = os.statvfs(tmp_path)
    assert got[f"host.box.fs.{name}.size_bytes"] == st.f_blocks * st.f_frsize
    assert got[f"host.box.fs.{name}.inodes"] == st.f_files
    assert host.mounts == {name: str(tmp_path)}
    assert not [k for k in got if ".fs.proc." in k], "proc is not a file system with space"


def test_parsers() -> None:
    assert parse_net_dev(NET_HEADER + " lo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n") == {"lo": list(range(1, 17))}
    assert list(parse_mounts("/dev/sda1 /mnt/my\\040disk ext4 rw 0 0\n")) == [("/dev/sda1", "/mnt/my disk", "ext4")]
    assert (mount_name("/"), mount_name("/var/log"), mount_name("/mnt/my disk")) == ("root", "var_log", "mnt_my_disk")
    assert cpu_shares([0] * 8, [0] * 8) == [None] * 4
    assert cpu_shares([5, 0, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0]) == [None] * 4  # went back: reset
    st = os.statvfs_result((4096, 4096, 100, 40, 30, 10, 5, 5, 0, 255))
    assert fs_values(st) == [100 * 4096, 60 * 4096, 30 * 4096, 100 * 60 / 90, 10, 5, 50.0]
