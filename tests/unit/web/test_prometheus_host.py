"""`GET /metrics` for `[host]` keys: node_exporter's names where it has the gauge, `_per_second` for its
counters (ours are rates), `mepd_host_*` for the rest; the real mount point as label."""

from __future__ import annotations

from mepd.model import Sample
from mepd.sources.host.metrics import GROUPS
from mepd.store.rrd.store import Layouts, layout
from mepd.web import prometheus
from mepd.web.prometheus import Snapshot, render
from tests.unit.web.test_prometheus import NAME, NOW, daemon_status, families, value

HOST = {"host": "web1"}


def host_snapshot(samples: list[Sample]) -> Snapshot:
    latest = {s.key: s for s in samples}
    layouts = Layouts(layout(300), {"host.web1.": layout(60)})
    return Snapshot(NOW, daemon_status(), list(latest), latest, layouts, {}, None, {"var_log": "/var/log"})


def test_every_host_metric_has_a_family() -> None:
    assert set(prometheus.HOST) == {(group, name) for group, names in GROUPS.items() for name in names}
    assert all(NAME.fullmatch(family) for family, *_ in prometheus.HOST.values())


def test_host_families_names_and_labels() -> None:
    ts = NOW - 5
    samples = [Sample("host.web1.net.eth0.in_bps", ts, 8000.0), Sample("host.web1.net.eth0.oper_up", ts, 1.0),
               Sample("host.web1.cpu.iowait_pct", ts, 12.5), Sample("host.web1.cpu.load1", ts, 0.75),
               Sample("host.web1.mem.available_bytes", ts, 1e9), Sample("host.web1.fs.var_log.used_pct", ts, 40.0),
               Sample("host.web1.fs.var_log.avail_bytes", ts, 5e9), Sample("host.web1.disk.sda.busy_pct", ts, 50.0),
               Sample("host.web1.mepd.rss_bytes", ts, 3e7), Sample("host.web1.cpu.user_pct", ts, None),
               Sample("host.web1.cpu.steal_pct", NOW - 121, 1.0)]  # older than the heartbeat: left out
    text = render(host_snapshot(samples)).decode()
    assert value(text, "node_network_receive_bytes_per_second", **HOST, device="eth0") == 1000.0
    assert value(text, "node_network_up", **HOST, device="eth0") == 1.0
    assert value(text, "mepd_host_cpu_ratio", **HOST, mode="iowait") == 0.125
    assert value(text, "mepd_host_cpu_ratio", **HOST, mode="user") is None
    assert value(text, "mepd_host_cpu_ratio", **HOST, mode="steal") is None
    assert value(text, "node_load1", **HOST) == 0.75
    assert value(text, "node_memory_MemAvailable_bytes", **HOST) == 1e9
    assert value(text, "mepd_host_filesystem_used_ratio", **HOST, mountpoint="/var/log") == 0.4
    assert value(text, "node_filesystem_avail_bytes", **HOST, mountpoint="/var/log") == 5e9
    assert value(text, "node_disk_io_time_seconds_per_second", **HOST, device="sda") == 0.5
    assert value(text, "process_resident_memory_bytes", **HOST) == 3e7
    host_families = {family for family, *_ in prometheus.HOST.values()}
    assert {f.type for f in families(text).values() if f.name in host_families} == {"gauge"}
    assert "mepd_metric" not in text
