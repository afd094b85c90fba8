"""The real daemon's `[host]` metrics against the kernel: interface rates on a veth pair in network
namespaces of the test's own, and a tmpfs the test fills until a rule fires.

Needs root (namespaces, veth, mount), as the rest of the integration suite's deploy tests do.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from mepd.sources.host.metrics import mount_name
from tests.helpers import Mepd, free_port, prometheus_samples, wait_for

MakeMepd = Callable[..., Mepd]
INTERVAL = 2  # seconds: [host] interval, also the RRD step
PACKETS = 400
PAYLOAD = 1000  # bytes of each UDP datagram

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and mounts")


def run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60).stdout


@dataclass(frozen=True, slots=True)
class VethPair:
    """Two namespaces joined by a veth pair: `dev` (address .1) in `ns`, its peer (address .2) in `peer_ns`."""

    ns: str
    peer_ns: str
    dev: str
    peer: str

    def counter(self, name: str) -> int:
        """The kernel's counter as sysfs shows it inside the namespace: independent of /proc/net/dev."""
        return int(run("ip", "netns", "exec", self.ns, "cat", f"/sys/class/net/{self.dev}/statistics/{name}"))


@pytest.fixture
def veth() -> Iterator[VethPair]:
    tag = f"{os.getpid() % 100000}"
    pair = VethPair(f"mepdh{tag}a", f"mepdh{tag}b", f"mh{tag}a", f"mh{tag}b")
    made: list[str] = []
    try:
        for ns in (pair.ns, pair.peer_ns):
            run("ip", "netns", "add", ns)
            made.append(ns)
            # No IPv6 (router solicitations, DAD) and no ARP (permanent neighbours): only the test's datagrams move.
            run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1")
        run("ip", "link", "add", pair.dev, "netns", pair.ns, "type", "veth", "peer", "name", pair.peer,
            "netns", pair.peer_ns)
        macs = {}
        for ns, dev, addr in ((pair.ns, pair.dev, "10.213.0.1/30"), (pair.peer_ns, pair.peer, "10.213.0.2/30")):
            run("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            macs[dev] = run("ip", "netns", "exec", ns, "cat", f"/sys/class/net/{dev}/address").strip()
        run("ip", "-n", pair.ns, "neigh", "add", "10.213.0.2", "lladdr", macs[pair.peer], "nud", "permanent",
            "dev", pair.dev)
        run("ip", "-n", pair.peer_ns, "neigh", "add", "10.213.0.1", "lladdr", macs[pair.dev], "nud",
            "permanent", "dev", pair.peer)
        for ns, dev in ((pair.ns, pair.dev), (pair.peer_ns, pair.peer)):
            run("ip", "-n", ns, "link", "set", dev, "up")
        yield pair
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], check=False, timeout=60)


def host_section(name: str, extra: str = "") -> str:
    return f'[host]\nenabled = true\nname = "{name}"\ninterval = "{INTERVAL}s"\n{extra}'


def points(d: Mepd, key: str) -> list[tuple[float, float | None]]:
    show = d.mepctl_json("metrics", "show", key, "--since", "10m")
    return [(datetime.fromisoformat(p["ts"]).timestamp(), p["value"]) for p in show["points"]]


def latest(d: Mepd, prefix: str) -> dict[str, dict[str, Any]]:
    return {m["key"]: m for m in d.mepctl_json("metrics", "list") if m["key"].startswith(prefix)}


def test_interface_rates_equal_the_kernel_counters(mepd_factory: MakeMepd, veth: VethPair) -> None:
    d = mepd_factory(host_section("nsbox", f'interfaces = ["{veth.dev}"]\n'))
    d.start(wrapper=("ip", "netns", "exec", veth.ns))
    prefix = f"host.nsbox.net.{veth.dev}"

    # A known rate stored first: the daemon has read the counters once before the traffic.
    wait_for(lambda: any(v is not None for _, v in points(d, f"{prefix}.out_bps")), what="a first known rate")
    before = {c: veth.counter(c) for c in ("tx_bytes", "tx_packets", "rx_bytes")}
    sender = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
              f"for _ in range({PACKETS}): s.sendto(b'x' * {PAYLOAD}, ('10.213.0.2', 9))")
    run("ip", "netns", "exec", veth.ns, sys.executable, "-c", sender)
    after = {c: veth.counter(c) for c in before}
    sent_at = datetime.now().timestamp()
    delta = {c: after[c] - before[c] for c in before}
    assert delta["tx_packets"] == PACKETS
    assert delta["tx_bytes"] >= PACKETS * PAYLOAD

    # Wait for complete RRD rows well after the traffic: then every byte counted is in a stored rate.
    def settled() -> bool:
        return any(ts > sent_at + 3 * INTERVAL and v is not None for ts, v in points(d, f"{prefix}.out_bps"))

    wait_for(settled, what="stored rates after the traffic")
    stored = {name: [v for _, v in points(d, f"{prefix}.{name}")] for name in ("out_bps", "out_pps", "in_bps")}
    total_bits = sum(v for v in stored["out_bps"] if v is not None) * INTERVAL
    total_packets = sum(v for v in stored["out_pps"] if v is not None) * INTERVAL
    # Rates divide by the monotonic clock in 1/100 s, rrdtool weighs them by the wall clock: each stored
    # interval may be off by a tick or two of INTERVAL * 100.
    tolerance = 2 / (INTERVAL * 100)
    assert total_bits == pytest.approx(delta["tx_bytes"] * 8, rel=tolerance)
    assert total_packets == pytest.approx(PACKETS, rel=tolerance)
    # What came back (ICMP port unreachable from the peer, rate-limited) is counted the same way.
    total_in = sum(v for v in stored["in_bps"] if v is not None) * INTERVAL
    assert total_in == pytest.approx(delta["rx_bytes"] * 8, rel=tolerance)

    shown = latest(d, prefix)
    assert shown[f"{prefix}.oper_up"]["value"] == 1.0


@pytest.fixture
def tmpfs(short_tmp: Path) -> Iterator[Path]:
    mnt = short_tmp / "mnt"
    mnt.mkdir()
    run("mount", "-t", "tmpfs", "-o", "size=1m", "mepd-test", str(mnt))
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False, timeout=60)


def test_file_system_used_space_is_statvfs_and_fires_a_rule(mepd_factory: MakeMepd, tmpfs: Path) -> None:
    key = f"host.fsbox.fs.{mount_name(str(tmpfs))}"
    rule = f'''
[alert]
group_wait = "0s"
evaluation_interval = "100ms"

[[alert.rule]]
name = "disk-full"
metric = "{key}.used_pct"
above = 50
summary = "{{key}} above 50%"
'''
    d = mepd_factory(host_section("fsbox") + rule).start()

    def stored_after(since: float) -> dict[str, float] | None:
        rows = latest(d, key)
        stamps = [datetime.fromisoformat(r["ts"]).timestamp() for r in rows.values() if r["ts"]]
        if len(rows) < 7 or min(stamps) <= since:
            return None
        return {k.rpartition(".")[2]: r["value"] for k, r in rows.items()}

    def statvfs_used() -> int:
        st = os.statvfs(tmpfs)
        return (st.f_blocks - st.f_bfree) * st.f_frsize

    empty = wait_for(lambda: stored_after(0), what="the tmpfs's metrics")
    assert empty["used_bytes"] == statvfs_used()
    assert empty["size_bytes"] == os.statvfs(tmpfs).f_blocks * os.statvfs(tmpfs).f_frsize
    assert empty["used_pct"] < 50
    assert d.mepctl_json("incidents") == []

    (tmpfs / "fill").write_bytes(b"\0" * 800 * 1024)
    filled_at = datetime.now().timestamp()
    full = wait_for(lambda: stored_after(filled_at), what="the tmpfs's metrics after filling it")
    assert full["used_bytes"] == statvfs_used() >= 800 * 1024
    assert full["used_pct"] > 75

    [inc] = wait_for(lambda: d.mepctl_json("incidents"), what="the disk-full incident")
    assert (inc["rule"], inc["state"], inc["summary"]) == ("disk-full", "firing", f"{key}.used_pct above 50%")


def test_dashboard_and_metrics_show_the_host_like_a_target(mepd_factory: MakeMepd) -> None:
    port = free_port()
    d = mepd_factory(host_section("webbox") + f'[http]\nlisten = "127.0.0.1:{port}"\n').start()
    base = f"http://127.0.0.1:{port}/"

    def get(path: str) -> bytes:
        return d.dashboard_get(base + path)

    wait_for(lambda: b"\"if/webbox/lo.html\"" in get("") and b"graph/host.webbox.cpu/" in get(""),
             what="the host and its interface lo on the overview")
    overview = get("").decode()
    assert 'id="target-webbox"' in overview
    assert "graph/host.webbox.mem/mini.png" in overview
    page = get("if/webbox/lo.html").decode()
    assert "graph/host.webbox.net.lo/day.png" in page
    for graph in ("host.webbox.net.lo", "host.webbox.cpu", f"host.webbox.fs.{mount_name('/')}"):
        assert get(f"graph/{graph}/day.png").startswith(b"\x89PNG")

    def scraped() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        samples = prometheus_samples(get("metrics").decode())
        return samples if ("node_network_up", frozenset({("host", "webbox"), ("device", "lo")})) in samples else {}

    samples = wait_for(scraped, what="the host's families on /metrics")
    assert ("node_load1", frozenset({("host", "webbox")})) in samples
    assert ("node_filesystem_avail_bytes", frozenset({("host", "webbox"), ("mountpoint", "/")})) in samples
