"""`GET /metrics`: the latest values and mepd's own status in Prometheus' text format 0.0.4,
so that an existing Prometheus scrapes mepd as it scrapes snmp_exporter or node_exporter.

Names follow those exporters: targets, interfaces, web sources and components are
labels, never parts of a name; rates are gauges named with their unit
(`mepd_snmp_in_bytes_per_second`), since mepd has already turned the agents' counters
into rates (wraps and reboots handled, see mepd.analysis.counters); mepd's own counts
are counters ending in `_total`.

Unknown is absent, never 0: a key whose latest value is unknown (rrdtool's U: a first
poll, an agent reboot, a rate above the interface speed) is left out, and so is one
older than its RRD heartbeat (twice the step), which rrdtool stores as unknown too:
a target that stops answering does not repeat its last rate, its series go stale.
No timestamps are sent; Prometheus stamps the scrape, as with every exporter.

The text is made in a worker thread from a snapshot taken on the event loop: 90,000
series cost about 0.2 s of CPU, which would otherwise hold up syslog reception.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, get_args

from mepd.alerts.engine import NotRunningError
from mepd.analysis.weblog.live import max_age
from mepd.api.protocol import DaemonStatus
from mepd.model import Incident, IncidentSeverity, Sample
from mepd.store.rrd.store import RrdLayout
from mepd.supervisor import State
from mepd.web.dashboard import Dashboard
from mepd.web.data import HOST_COMPONENT, PolledInterface

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

# An interface's metric names (mepd.sources.snmp.interfaces.METRICS) -> family, help, factor.  Traffic is in bytes,
# Prometheus' base unit, as node_exporter's and snmp_exporter's (mepd's in_bps / 8; x 8 for bits).
SNMP: Final = {
    "in_bps": ("mepd_snmp_in_bytes_per_second", "Inbound traffic over the last poll interval, in bytes per second"
               " (mepd's in_bps / 8).", 0.125),
    "out_bps": ("mepd_snmp_out_bytes_per_second", "Outbound traffic over the last poll interval, in bytes per second"
                " (mepd's out_bps / 8).", 0.125),
    "in_pps": ("mepd_snmp_in_packets_per_second", "Inbound unicast packets per second over the last poll interval.",
               1.0),
    "out_pps": ("mepd_snmp_out_packets_per_second", "Outbound unicast packets per second over the last poll interval.",
                1.0),
    "in_errors": ("mepd_snmp_in_errors_per_second", "Inbound errors per second over the last poll interval.", 1.0),
    "out_errors": ("mepd_snmp_out_errors_per_second", "Outbound errors per second over the last poll interval.", 1.0),
    "in_discards": ("mepd_snmp_in_discards_per_second", "Inbound discards per second over the last poll interval.",
                    1.0),
    "out_discards": ("mepd_snmp_out_discards_per_second", "Outbound discards per second over the last poll interval.",
                     1.0),
    "oper_up": ("mepd_snmp_oper_up", "1 when the interface's ifOperStatus was up at the last poll, else 0.", 1.0),
}
# The host's metrics (mepd.sources.host.metrics.GROUPS) by (group, metric) -> family, help, factor, extra labels.
# node_exporter's name where it has the same gauge; its counters are rates here, named by the rule
# `node_X_total` -> `node_X_per_second`; the rest `mepd_host_*`.  Percentages become ratios (x 0.01).
_PER_POLL: Final = " over the last [host] interval."
HOST: Final[dict[tuple[str, str], tuple[str, str, float, tuple[tuple[str, str], ...]]]] = {
    ("net", "in_bps"): ("node_network_receive_bytes_per_second", "Bytes received per second" + _PER_POLL, 0.125, ()),
    ("net", "out_bps"): ("node_network_transmit_bytes_per_second", "Bytes sent per second" + _PER_POLL, 0.125, ()),
    ("net", "in_pps"): ("node_network_receive_packets_per_second", "Packets received per second" + _PER_POLL, 1.0,
                        ()),
    ("net", "out_pps"): ("node_network_transmit_packets_per_second", "Packets sent per second" + _PER_POLL, 1.0,
                         ()),
    ("net", "in_errors"): ("node_network_receive_errs_per_second", "Receive errors per second" + _PER_POLL, 1.0,
                           ()),
    ("net", "out_errors"): ("node_network_transmit_errs_per_second", "Transmit errors per second" + _PER_POLL, 1.0,
                            ()),
    ("net", "in_discards"): ("node_network_receive_drop_per_second", "Received packets dropped per second"
                             + _PER_POLL, 1.0, ()),
    ("net", "out_discards"): ("node_network_transmit_drop_per_second", "Packets to send dropped per second"
                              + _PER_POLL, 1.0, ()),
    ("net", "oper_up"): ("node_network_up", "1 when the interface's operstate is up, else 0.", 1.0, ()),
    **{("cpu", f"{mode}_pct"): ("mepd_host_cpu_ratio", "Share of all CPUs' time in the mode (user with nice, system"
                                " with irq and softirq)" + _PER_POLL, 0.01, (("mode", mode),))
       for mode in ("user", "system", "iowait", "steal")},
    **{("cpu", f"load{n}"): (f"node_load{n}", f"{n}m load average.", 1.0, ()) for n in (1, 5, 15)},
    ("mem", "total_bytes"): ("node_memory_MemTotal_bytes", "MemTotal of /proc/meminfo.", 1.0, ()),
    ("mem", "available_bytes"): ("node_memory_MemAvailable_bytes", "MemAvailable of /proc/meminfo.", 1.0, ()),
    ("mem", "used_bytes"): ("mepd_host_memory_used_bytes", "MemTotal - MemAvailable.", 1.0, ()),
    ("mem", "used_pct"): ("mepd_host_memory_used_ratio", "(MemTotal - MemAvailable) / MemTotal.", 0.01, ()),
    ("mem", "swap_total_bytes"): ("node_memory_SwapTotal_bytes", "SwapTotal of /proc/meminfo.", 1.0, ()),
    ("mem", "swap_used_bytes"): ("mepd_host_memory_swap_used_bytes", "SwapTotal - SwapFree.", 1.0, ()),
    ("mem", "swap_used_pct"): ("mepd_host_memory_swap_used_ratio", "(SwapTotal - SwapFree) / SwapTotal.", 0.01, ()),
    ("fs", "size_bytes"): ("node_filesystem_size_bytes", "File system size in bytes.", 1.0, ()),
    ("fs", "avail_bytes"): ("node_filesystem_avail_bytes", "Bytes available to unprivileged users.", 1.0, ()),
    ("fs", "used_bytes"): ("mepd_host_filesystem_used_bytes", "Size - free bytes, as df's Used.", 1.0, ()),
    ("fs", "used_pct"): ("mepd_host_filesystem_used_ratio", "Used / (used + available), as df's Use%.", 0.01, ()),
    ("fs", "inodes"): ("node_filesystem_files", "File nodes in the file system.", 1.0, ()),
    ("fs", "inodes_free"): ("node_filesystem_files_free", "Free file nodes.", 1.0, ()),
    ("fs", "inodes_used_pct"): ("mepd_host_filesystem_files_used_ratio", "Share of file nodes used.", 0.01, ()),
    ("disk", "read_ops"): ("node_disk_reads_completed_per_second", "Reads completed per second" + _PER_POLL, 1.0,
                           ()),
    ("disk", "write_ops"): ("node_disk_writes_completed_per_second", "Writes completed per second" + _PER_POLL,
                            1.0, ()),
    ("disk", "read_bytes"): ("node_disk_read_bytes_per_second", "Bytes read per second" + _PER_POLL, 1.0, ()),
    ("disk", "write_bytes"): ("node_disk_written_bytes_per_second", "Bytes written per second" + _PER_POLL, 1.0,
                              ()),
    ("disk", "busy_pct"): ("node_disk_io_time_seconds_per_second", "Seconds spent doing I/O per second"
                           + _PER_POLL, 0.01, ()),
    ("mepd", "cpu_pct"): ("process_cpu_seconds_per_second", "CPU seconds (user + system) mepd used per second"
                          + _PER_POLL, 0.01, ()),
    ("mepd", "rss_bytes"): ("process_resident_memory_bytes", "mepd's resident memory in bytes.", 1.0, ()),
}
# The label of a group's item (the fourth part of its keys), as node_exporter names it.
HOST_ITEM_LABELS: Final = {"net": "device", "fs": "mountpoint", "disk": "device"}
SNMP_OID: Final = ("mepd_snmp_oid", "A custom OID of [[snmp.target.oid]]: a gauge as read, a counter as a rate per"
                   " second; times its scale.")
# A web source's metric names (mepd.analysis.weblog.live.METRICS), the status classes apart -> family, help.
WEBLOG: Final = {
    "requests": ("mepd_weblog_requests", "Requests in the web source's last step (tail step, 5m by default)."),
    "bytes": ("mepd_weblog_sent_bytes", "Bytes sent in the web source's last step."),
    "5xx_ratio": ("mepd_weblog_server_error_ratio", "Share of 5xx responses among the last step's requests."),
}
WEBLOG_CLASSES: Final = ("mepd_weblog_responses", "Responses in the web source's last step, by status class.")
OTHER: Final = ("mepd_metric", "The latest value of a metric key that has no family of its own.")
SEVERITIES: Final = get_args(IncidentSeverity)
OPEN_STATES: Final = ("firing", "acknowledged")
_NOT_IN_NAME: Final = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one scrape shows, taken on the event loop; `keys` are those with a latest value then."""

    now: float
    status: DaemonStatus
    keys: Sequence[str]
    latest: Mapping[str, Sample]
    layouts: Callable[[str], RrdLayout]
    interfaces: Mapping[str, Mapping[str, PolledInterface]]  # SNMP target -> its interfaces at the last poll
    incidents: Sequence[Incident] | None  # the open ones; None: the alert engine is not running
    mounts: Mapping[str, str] = field(default_factory=dict)  # the host's file systems: key name -> mount point


def escape(value: str) -> str:
    """A label value as the text format wants it: backslash, double quote and line feed escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """HELP text escapes backslash and line feed only."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def labels(pairs: Iterable[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{name}="{escape(value)}"' for name, value in pairs) + "}"


class Exposition:
    """Families in the order first declared, each with its samples together, as the format requires."""

    def __init__(self) -> None:
        self.families: dict[str, tuple[str, str, list[str]]] = {}

    def gauge(self, name: str, help_text: str) -> list[str]:
        return self._family(name, "gauge", help_text)

    def counter(self, name: str, help_text: str) -> list[str]:
        return self._family(name, "counter", help_text)

    def _family(self, name: str, kind: str, help_text: str) -> list[str]:
        """The list to append `{labels} value` strings to (a sample's name is the family's)."""
        entry = self.families.get(name)
        if entry is None:
            entry = self.families[name] = (kind, help_text, [])
        return entry[2]

    def text(self) -> str:
        out: list[str] = []
        for name, (kind, help_text, samples) in self.families.items():
            if samples:
                out.append(f"# HELP {name} {escape_help(help_text)}")
                out.append(f"# TYPE {name} {kind}")
                out.extend(name + s for s in samples)
        out.append("")
        return "\n".join(out)


def render(s: Snapshot) -> bytes:
    out = Exposition()
    _latest(out, s)
    up = _targets(out, s.status)
    _interfaces(out, {t: ifaces for t, ifaces in s.interfaces.items() if up.get(t) == 1})
    _daemon(out, s.status)
    if s.incidents is not None:
        _incidents(out, s.incidents)
    return out.text().encode()


def _latest(out: Exposition, s: Snapshot) -> None:
    """Each key's latest value, if known and current, in the family its key's shape says."""
    snmp = {name: (out.gauge(family, help_text), factor) for name, (family, help_text, factor) in SNMP.items()}
    out.gauge(*SNMP_OID)
    for family, help_text, _, _ in HOST.values():
        out.gauge(family, help_text)
    for pair in (*WEBLOG.values(), WEBLOG_CLASSES):
        out.gauge(*pair)
    out.gauge(*OTHER)
    families = {name: samples for name, (_, _, samples) in out.families.items()}
    cutoffs: dict[str, float] = {}  # an SNMP target's or a web source's key prefix -> the oldest time still current
    prefixes: dict[str, str] = {}  # an interface's key prefix -> its labels
    get, layouts, now = s.latest.get, s.layouts, s.now
    for key in s.keys:
        sample = get(key)
        if sample is None or sample.value is None:
            continue
        parts = key.split(".")
        group = f"{parts[0]}.{parts[1]}" if parts[0] == "snmp" and len(parts) > 1 else key.rpartition(".")[0]
        cutoff = cutoffs.get(group)
        if cutoff is None:
            step = layouts(key).step
            cutoff = cutoffs[group] = now - (max_age(step) if parts[0] in ("weblog", "logs") else 2 * step)
        if sample.ts < cutoff:
            continue
        if parts[0] == "snmp" and len(parts) == 4 and parts[3] in snmp:
            prefix = key[: -len(parts[3]) - 1]
            lab = prefixes.get(prefix)
            if lab is None:
                lab = prefixes[prefix] = labels((("target", parts[1]), ("interface", parts[2])))
            samples, factor = snmp[parts[3]]
            samples.append(f"{lab} {sample.value * factor!r}")
            continue
        family, pairs, value = series(key, sample.value, s.mounts)
        families[family].append(f"{labels(pairs)} {value!r}")


Labels = tuple[tuple[str, str], ...]


def series(key: str, value: float, mounts: Mapping[str, str]) -> tuple[str, Labels, float]:
    """The family, labels and value under which /metrics shows a key's value; remote write
    (mepd.export) sends the same series.  `mounts`: the host's file systems, key name -> mount point."""
    parts = key.split(".")
    if parts[0] == "snmp" and len(parts) == 4 and parts[3] in SNMP:
        family, _, factor = SNMP[parts[3]]
        return family, (("target", parts[1]), ("interface", parts[2])), value * factor
    if parts[0] == "snmp" and len(parts) == 3:
        return SNMP_OID[0], (("target", parts[1]), ("name", parts[2])), value
    if parts[0] == "weblog" and len(parts) >= 3:
        source, name = key[len("weblog."): -len(parts[-1]) - 1], parts[-1]
        if name in WEBLOG:
            return WEBLOG[name][0], (("source", source),), value
        if name.startswith("status_"):
            return WEBLOG_CLASSES[0], (("source", source), ("class", name.removeprefix("status_"))), value
    found = HOST.get((parts[2], parts[-1])) if parts[0] == "host" and len(parts) in (4, 5) else None
    if found is None:
        return OTHER[0], (("key", key),), value
    family, _, factor, extra = found
    pairs = [("host", parts[1]), *extra]
    if len(parts) == 5:
        item = mounts.get(parts[3], parts[3]) if parts[2] == "fs" else parts[3]
        pairs.append((HOST_ITEM_LABELS[parts[2]], item))
    return family, tuple(pairs), value * factor


def _targets(out: Exposition, status: DaemonStatus) -> dict[str, int]:
    """Each SNMP target's reachability and last poll; returns target -> up, for targets whose state is known."""
    up_family = out.gauge("mepd_snmp_target_up",
                          "1 when the target's last poll was answered, 0 when it was not or the poller failed.")
    last = out.gauge("mepd_snmp_last_poll_timestamp_seconds", "When the target last answered a poll.")
    took = out.gauge("mepd_snmp_last_poll_duration_seconds", "How long the target's last poll took.")
    up: dict[str, int] = {}
    for comp in status.components:
        if not comp.name.startswith("snmp/"):
            continue
        target = comp.name.removeprefix("snmp/")
        details = comp.details or {}
        lab = labels((("target", target),))
        if comp.state in (State.FATAL, State.BACKOFF) or details.get("state") == "unreachable":
            up[target] = 0
        elif details.get("state") == "ok":
            up[target] = 1
        if target in up:
            up_family.append(f"{lab} {up[target]}")
        if details.get("last_poll") is not None:
            last.append(f"{lab} {details['last_poll']!r}")
        if details.get("last_duration") is not None:
            took.append(f"{lab} {details['last_duration']!r}")
    return up


def _interfaces(out: Exposition, interfaces: Mapping[str, Mapping[str, PolledInterface]]) -> None:
    """What the last poll said of each interface of the targets that answered it."""
    info = out.gauge("mepd_snmp_interface_info", "Always 1; ifDescr and ifAlias of the interface.")
    speed = out.gauge("mepd_snmp_speed_bytes_per_second",
                      "The interface's speed (ifHighSpeed, else ifSpeed), in bytes per second.")
    admin = out.gauge("mepd_snmp_admin_up", "1 when the interface's ifAdminStatus is up, else 0.")
    for target, ifaces in interfaces.items():
        for name, i in ifaces.items():
            pairs = (("target", target), ("interface", name))
            lab = labels(pairs)
            info.append(f"{labels((*pairs, ('descr', i.descr), ('alias', i.alias)))} 1")
            if i.speed_bps:
                speed.append(f"{lab} {i.speed_bps / 8!r}")
            admin.append(f"{lab} {int(i.admin == 1)}")


def _daemon(out: Exposition, status: DaemonStatus) -> None:
    """What `mepctl status` shows: version, components and their counters, pipeline, log store, reloads."""
    out.gauge("mepd_build_info", "Always 1; the version of mepd.").append(
        f"{labels((('version', status.version),))} 1")
    out.gauge("mepd_start_time_seconds", "When the daemon started, in seconds since the epoch.").append(
        f" {status.started!r}")

    state = out.gauge("mepd_component_state", "1 for the component's supervision state, 0 for the others.")
    restarts = out.counter("mepd_component_restarts_total", "Times the component failed and was restarted.")
    counted: dict[str, list[str]] = {}
    for comp in status.components:
        lab = labels((("component", comp.name),))
        state.extend(f"{labels((('component', comp.name), ('state', s.value)))} {int(comp.state == s)}" for s in State)
        restarts.append(f"{lab} {comp.restarts}")
        for counter, value in comp.counters.items():
            counted.setdefault(counter, []).append(f"{lab} {value}")
    for counter, samples in sorted(counted.items()):
        out.counter(f"mepd_component_{_NOT_IN_NAME.sub('_', counter)}_total",
                    f"The component's counter {counter}, as mepctl status shows it.").extend(samples)

    pipeline = status.pipeline
    out.counter("mepd_pipeline_received_total", "Items put on the pipeline: log records (channel logs), metric"
                " samples (channel samples).")
    out.counter("mepd_pipeline_stored_total", "Items the stores wrote: log records (channel logs), metric samples"
                " (channel samples).")
    dropped = out.counter("mepd_pipeline_dropped_total",
                          "Items that found a consumer's queue full, by consumer (the other consumers took them).")
    queued = out.gauge("mepd_pipeline_queued", "Items in a consumer's queue or being handled by it.")
    for channel in ("logs", "samples"):
        lab = labels((("channel", channel),))
        consumers = pipeline.queued[channel]
        queued.extend(f"{labels((('channel', channel), ('consumer', c)))} {n}" for c, n in consumers.items())
        # Every consumer's drops from the start, 0 included: increase() misses the first drops of a new series.
        none_dropped = {f"dropped.queue_full.{c}": 0 for c in consumers}
        counters = pipeline.logs if channel == "logs" else pipeline.samples
        for counter, value in {"received": 0, "stored": 0, **none_dropped, **counters}.items():
            consumer = counter.removeprefix("dropped.queue_full.")
            if consumer != counter:
                dropped.append(f"{labels((('channel', channel), ('consumer', consumer)))} {value}")
            else:
                out.counter(f"mepd_pipeline_{_NOT_IN_NAME.sub('_', counter)}_total",
                            f"Items counted as {counter} by the pipeline's channel.").append(f"{lab} {value}")

    logs: Mapping[str, Any] = status.logstore
    if logs.get("records") is not None:  # None: the store could not be read (its error is in `mepctl status`)
        out.gauge("mepd_logstore_records", "Log records in the store.").append(f" {int(logs['records'])}")
        out.gauge("mepd_logstore_size_bytes", "Bytes used by the log store's pages.").append(
            f" {int(logs['size_bytes'])}")
    if logs.get("index_backlog") is not None:
        out.gauge("mepd_logstore_index_backlog_records", "Stored records not yet in the search index.").append(
            f" {int(logs['index_backlog'])}")
        out.gauge("mepd_logstore_writer_busy_ratio", "Share of the log writer's time spent storing, over about"
                  " the last second.").append(f" {float(logs.get('writer_busy') or 0)!r}")
    if logs.get("index_age") is not None:
        out.gauge("mepd_logstore_index_age_seconds", "How long the oldest record not in the search index has"
                  " waited (0: none waits).").append(f" {float(logs['index_age'])!r}")
    if logs.get("oldest"):
        out.gauge("mepd_logstore_oldest_timestamp_seconds", "When the oldest stored record was received.").append(
            f" {datetime.fromisoformat(logs['oldest']).timestamp()!r}")

    out.counter("mepd_reloads_total", "Config reloads (SIGHUP, mepctl reload), by result.").extend(
        f"{labels((('result', r),))} {status.reloads.get(r, 0)}" for r in ("ok", "failed"))
    out.gauge("mepd_config_last_reload_successful", "0 when the last reload was refused (the old config runs).").append(
        f" {int(not status.last_reload_error)}")


def _incidents(out: Exposition, incidents: Sequence[Incident]) -> None:
    counts = {(sev, st): 0 for sev in SEVERITIES for st in OPEN_STATES}
    for inc in incidents:
        counts[inc.severity, inc.state] = counts.get((inc.severity, inc.state), 0) + 1
    family = out.gauge("mepd_incidents_open", "Open incidents (firing or acknowledged), by severity.")
    family.extend(f"{labels((('severity', sev), ('state', st)))} {n}" for (sev, st), n in counts.items())


async def snapshot(dashboard: Dashboard) -> Snapshot:
    daemon = dashboard.daemon
    status = await daemon.status()
    store = daemon.rrdstore
    try:
        incidents: list[Incident] | None = list(daemon.alerts.incidents.open.values())
    except NotRunningError:
        incidents = None
    interfaces = {t.name: dashboard.data.polled(t.name) for t in daemon.cfg.snmp.target}
    host = daemon.components.get(HOST_COMPONENT)
    mounts = getattr(host[1].component, "mounts", None) if host else None
    return Snapshot(time.time(), status, list(store.latest), store.latest, store.layouts, interfaces, incidents,
                    dict(mounts) if isinstance(mounts, dict) else {})


async def exposition(dashboard: Dashboard) -> bytes:
    """The scrape's body; made off the event loop."""
    return await asyncio.to_thread(render, await snapshot(dashboard))
