"""What the pages show, gathered from the running daemon: targets, interfaces, web sources, intake, incidents.

The pages never touch the stores themselves; this module asks the RRD store,
the alert engine, the web-log store and the daemon's status, every call of
which runs off the event loop in the store's own worker.  The SNMP targets
and their interfaces come from the RRD files (so history stays visible after
a target leaves the config), with ifAlias, speed and status from the last
poll when the target is polled by this daemon, and an SNMP interface's timeline
(mepd.api.timeline) as its page's table and its graphs' marks.  The host's own interfaces
(`host.<host>.net.<interface>.*`, see mepd.sources.host.metrics) show as a
target named after the host; its CPU, memory, file systems and disks as graphs.
"""

from __future__ import annotations

import collections
import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

from mepd.alerts.engine import AlertEngine, NotRunningError
from mepd.analysis.devicelogs import HubLike, TargetLike
from mepd.api import timeline as timeline_api
from mepd.api.protocol import DaemonStatus
from mepd.config import Config
from mepd.model import Incident
from mepd.store.logs.store import LogStore
from mepd.store.rrd.marks import Mark
from mepd.store.rrd.store import PERIODS, Period, RrdError, RrdStore
from mepd.store.weblog import UnknownWebSourceError, WebLogStore
from mepd.supervisor import State, Supervised

IN_OUT: Final = ("in_bps", "out_bps")
HOST_COMPONENT: Final = "host"
FLEET_CENTRAL: Final = "fleet/central"
# What a host graph draws of each group (mepd.sources.host.metrics.GROUPS): the first as an area.
HOST_GRAPHS: Final = {
    "cpu": ("user_pct", "system_pct", "iowait_pct", "steal_pct"),
    "mem": ("used_bytes", "swap_used_bytes"),
    "fs": ("used_pct", "inodes_used_pct"),
    "disk": ("read_bytes", "write_bytes"),
}
HOST_GRAPH_TITLES: Final = {"cpu": "CPU %", "mem": "memory used", "fs": "used %", "disk": "disk bytes/s"}
WEB_FORMATS: Final = ("combined", "common")
INTAKE_PREFIXES: Final = ("syslog/", "journal", "tail:")
RECEIVED_COUNTERS: Final = ("received", "read", "lines")
RATE_WINDOW: Final = 300.0


class Daemon(Protocol):
    """What the dashboard reads of the running daemon (mepd.app.App)."""

    cfg: Config
    logstore: LogStore
    rrdstore: RrdStore
    alerts: AlertEngine
    components: dict[str, tuple[object, Supervised]]

    @property
    def weblogstore(self) -> WebLogStore | None: ...
    @property
    def snmp_targets(self) -> Sequence[TargetLike]: ...
    @property
    def snmp_hub(self) -> HubLike: ...

    async def status(self) -> DaemonStatus: ...


class PolledInterface(Protocol):
    """An interface as the SNMP source saw it at its last poll (mepd.sources.snmp.interfaces.Interface)."""

    index: int
    descr: str
    alias: str
    speed_bps: float
    admin: int
    oper: int


def interface_key(key: str) -> tuple[str, str] | None:
    """(target, interface) of an interface's graph key: `snmp.T.I`, or `host.H.net.I` (the host's own)."""
    parts = key.split(".")
    if len(parts) == 3 and parts[0] == "snmp":
        return parts[1], parts[2]
    if len(parts) == 4 and parts[0] == "host" and parts[2] == "net":
        return parts[1], parts[3]
    return None


def mark_kind(event: Mapping[str, Any]) -> str | None:
    """The graph mark (mepd.store.rrd.marks.KINDS) of a timeline event; None for those not drawn
    (notifications)."""
    if event.get("kind") == "log":
        return f"log-{event['event']}" if event.get("event") else "log"
    what = event.get("event")
    if what in ("fired", "acknowledged", "resolved"):
        return str(what)
    return "action" if what in ("action", "action_skipped") else None


def host_graph(key: str) -> tuple[str, ...] | None:
    """The metric keys a host graph key (`host.H.cpu`, `host.H.fs.root`, ...) draws together, else None."""
    parts = key.split(".")
    if parts[0] != "host" or len(parts) not in (3, 4) or parts[2] not in HOST_GRAPHS:
        return None
    if (len(parts) == 4) != (parts[2] in ("fs", "disk")):
        return None
    return tuple(f"{key}.{n}" for n in HOST_GRAPHS[parts[2]])


@dataclass(frozen=True, slots=True)
class InterfaceView:
    target: str
    name: str
    key: str  # the key prefix of its metrics (`snmp.T.I`, `host.H.net.I`) and the key of its traffic graph
    alias: str = ""
    descr: str = ""
    index: int | None = None
    speed_bps: float | None = None
    status: str = "unknown"  # up | down | admin down | unknown
    in_bps: float | None = None
    out_bps: float | None = None
    updated: float | None = None


@dataclass(frozen=True, slots=True)
class TargetView:
    name: str
    host: str
    state: str  # ok | unreachable | starting | not polled (only in the RRDs) | failed
    error: str | None
    step: float
    interfaces: tuple[InterfaceView, ...]
    timeline: bool = False  # an SNMP target of this daemon: it has a timeline page

    @property
    def down(self) -> list[InterfaceView]:
        return [i for i in self.interfaces if i.status == "down"]

    @property
    def summary(self) -> str:
        if self.state not in ("ok", "not polled"):
            return self.state
        down = self.down
        if down:
            return f"{len(down)} of {len(self.interfaces)} interfaces down"
        return "up" if self.state == "ok" else self.state

    @property
    def healthy(self) -> bool:
        return self.state in ("ok", "not polled") and not self.down


@dataclass(frozen=True, slots=True)
class WebSourceView:
    name: str
    requests: int
    failed: int
    server_errors: int
    last: str | None
    has_data: bool
    graph_key: str | None

    @property
    def error_rate(self) -> float | None:
        return self.failed / self.requests if self.requests else None


@dataclass(frozen=True, slots=True)
class IntakeView:
    name: str
    state: str
    received: int
    rate: float | None
    dropped: int
    parse_errors: int


@dataclass(frozen=True, slots=True)
class NodeView:
    """A fleet node as this central knows it (`mepctl fleet status`): what it stored from the node, and the
    node's own latest heartbeat."""

    name: str
    last_heard: float | None
    records: int
    backlog: int | None
    backlog_oldest_age: float | None
    heartbeat: float | None


def _when(value: object) -> float | None:
    return datetime.fromisoformat(value).timestamp() if isinstance(value, str) else None


def fleet_nodes(status: DaemonStatus) -> list[NodeView] | None:
    """The nodes from the `fleet/central` component's details; None when this mepd is not a central."""
    central = next((c for c in status.components if c.name == FLEET_CENTRAL), None)
    if central is None:
        return None
    details = central.details or {}
    seen: Mapping[str, Mapping[str, Any]] = details.get("nodes") or {}  # type: ignore[assignment]
    beats: Mapping[str, Mapping[str, Any]] = details.get("heartbeats") or {}  # type: ignore[assignment]
    out = []
    for name in sorted({*seen, *beats}):
        node, beat = seen.get(name, {}), beats.get(name, {})
        backlog, age = beat.get("backlog"), beat.get("backlog_oldest_age")
        out.append(NodeView(name, _when(node.get("last_heard")), int(node.get("records", 0)),
                            backlog if isinstance(backlog, int) else None,
                            float(age) if isinstance(age, int | float) else None, _when(beat.get("time"))))
    return out


@dataclass(frozen=True, slots=True)
class Stat:
    """MRTG's table row: maximum, average and current of one direction over one period."""

    maximum: float | None
    average: float | None
    current: float | None


@dataclass(frozen=True, slots=True)
class HostGraph:
    key: str  # a `host_graph` key
    label: str


@dataclass(frozen=True, slots=True)
class Overview:
    incidents: list[Incident] | None  # None: the alert engine is not running
    targets: list[TargetView]
    hosts: dict[str, list[HostGraph]]  # host -> its graphs
    web: list[WebSourceView]
    intake: list[IntakeView]
    pipeline_dropped: int
    stored: int
    step: float
    nodes: list[NodeView] | None = None  # a central's fleet nodes; None: not a central


@dataclass(slots=True)
class RateMeter:
    """Intake rates from successive status snapshots: records per second over the last few minutes."""

    window: float = RATE_WINDOW
    samples: collections.deque[tuple[float, dict[str, int]]] = field(default_factory=collections.deque)

    def observe(self, now: float, received: Mapping[str, int]) -> None:
        self.samples.append((now, dict(received)))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window:
            self.samples.popleft()

    def rate(self, name: str) -> float | None:
        if len(self.samples) < 2:
            return None
        (t0, first), (t1, last) = self.samples[0], self.samples[-1]
        if t1 - t0 < 1 or name not in first or name not in last:
            return None
        return max(0, last[name] - first[name]) / (t1 - t0)


def _sum_dropped(counters: Mapping[str, int]) -> int:
    return sum(v for k, v in counters.items() if k.startswith("dropped"))


class DashboardData:
    def __init__(self, daemon: Daemon, clock: Any = time.time) -> None:
        self.daemon = daemon
        self.clock = clock
        self.meter = RateMeter()
        self._hosts: set[str] = set()  # targets that are hosts (from `host.H.net` keys), as last listed

    @property
    def cfg(self) -> Config:
        return self.daemon.cfg

    # -- SNMP ------------------------------------------------------------------------------------------------

    @property
    def host_name(self) -> str | None:
        """This host's name when `[host]` collects its metrics."""
        return self.cfg.host.host_name if self.cfg.host.enabled else None

    def is_host(self, target: str) -> bool:
        return target == self.host_name or target in self._hosts

    def interface_prefix(self, target: str, name: str) -> str:
        """The key prefix of an interface's metrics: the host's own, or an SNMP target's."""
        return f"host.{target}.net.{name}" if self.is_host(target) else f"snmp.{target}.{name}"

    async def interface_keys(self) -> dict[str, list[str]]:
        """target -> its interfaces with in and out traffic in the RRDs, in name order; a host's interfaces
        are its target's (config refuses an SNMP target named like the host)."""
        keys = set(await self.daemon.rrdstore.list_keys())
        out: dict[str, list[str]] = {}
        hosts = set()
        for key in sorted(keys):
            base, _, metric = key.rpartition(".")
            found = interface_key(base) if metric == IN_OUT[0] and f"{base}.{IN_OUT[1]}" in keys else None
            if found is not None:
                out.setdefault(found[0], []).append(found[1])
                if key.startswith("host."):
                    hosts.add(found[0])
        self._hosts = hosts
        return out

    def polled(self, target: str) -> Mapping[str, PolledInterface]:
        """The target's interfaces by name as its last poll saw them; empty when this daemon does not poll it."""
        name = HOST_COMPONENT if target == self.host_name else f"snmp/{target}"
        entry = self.daemon.components.get(name)
        interfaces = getattr(entry[1].component, "interfaces", None) if entry else None
        return interfaces if isinstance(interfaces, Mapping) else {}

    async def interface(self, target: str, name: str) -> InterfaceView:
        """One interface: last values from the store (its memory, else the file), the rest from the last poll."""
        prefix = self.interface_prefix(target, name)
        store = self.daemon.rrdstore
        latest = {n: store.latest.get(f"{prefix}.{n}") for n in (*IN_OUT, "oper_up")}
        values: dict[str, float | None] = {n: s.value if s else None for n, s in latest.items()}
        updated = max((s.ts for s in latest.values() if s is not None), default=None)
        if any(s is None for s in latest.values()):
            stored = await store.last_values([f"{prefix}.{n}" for n in latest])
            values = {n: s.value if (s := stored.get(f"{prefix}.{n}")) else None for n in latest}
            updated = max((s.ts for s in stored.values()), default=None)
        polled = self.polled(target).get(name)
        oper = values.get("oper_up")
        status = "unknown" if oper is None else "up" if oper >= 0.5 else "down"
        if polled is None:
            return InterfaceView(target, name, prefix, status=status, in_bps=values["in_bps"],
                                 out_bps=values["out_bps"], updated=updated)
        if polled.admin != 1:
            status = "admin down"
        return InterfaceView(target, name, prefix, polled.alias, polled.descr, polled.index,
                             polled.speed_bps or None, status, values["in_bps"], values["out_bps"], updated)

    async def targets(self, status: DaemonStatus) -> list[TargetView]:
        by_component = {c.name: c for c in status.components}
        found = await self.interface_keys()
        configured = {t.name: t for t in self.cfg.snmp.target}
        host = self.host_name
        out = []
        for name in sorted(set(found) | set(configured) | ({host} if host else set())):
            cfg = configured.get(name)
            comp = by_component.get(HOST_COMPONENT if name == host else f"snmp/{name}")
            details = (comp.details if comp else None) or {}
            if cfg is None and name != host:
                state, error = "not polled", None
            elif comp and comp.state in (State.FATAL, State.BACKOFF):
                state, error = "failed", comp.last_error
            else:
                last_error = details.get("last_error")
                state, error = str(details.get("state", "starting")), str(last_error) if last_error else None
            step = self.step_of(name)
            interfaces = []
            for iface in found.get(name, []):
                with contextlib.suppress(RrdError):
                    interfaces.append(await self.interface(name, iface))
            out.append(TargetView(name, cfg.host if cfg else "this host" if name == host else "", state, error,
                                  step, tuple(interfaces), timeline=cfg is not None and name != host))
        return out

    async def timeline(self, target: str, name: str | None, since: float, until: float
                       ) -> list[dict[str, Any]] | None:
        """An SNMP interface's timeline, or the whole target's (`name` None), as `mepctl timeline`; None when
        the target is not an SNMP target of this daemon (the host's own interfaces, a target only in the RRDs)."""
        if self.is_host(target):
            return None
        try:
            return await timeline_api.for_daemon(self.daemon, timeline_api.Subject(target, name), since, until)
        except LookupError:
            return None

    async def marks(self, target: str, name: str, period: Period) -> tuple[Mark, ...]:
        """The interface's timeline over the period, as graph marks."""
        now = self.clock()
        events = await self.timeline(target, name, now - PERIODS[period], now) or []
        return tuple((timeline_api.epoch(e["ts"]), kind) for e in events if (kind := mark_kind(e)) is not None)

    def step_of(self, target: str) -> float:
        if target == self.host_name:
            return self.cfg.host.interval
        return next((t.interval for t in self.cfg.snmp.target if t.name == target), self.cfg.storage.rrd.step)

    async def host_graphs(self) -> dict[str, list[HostGraph]]:
        """host -> the graphs of its CPU, memory, file systems and disks that the RRDs hold, in that order."""
        out: dict[str, list[HostGraph]] = {}
        for key in sorted(set(await self.daemon.rrdstore.list_keys())):
            base = key.rpartition(".")[0]
            drawn = host_graph(base)
            if drawn is None or key != drawn[0]:
                continue
            parts = base.split(".")
            label = HOST_GRAPH_TITLES[parts[2]] if len(parts) == 3 else f"{parts[3]} {HOST_GRAPH_TITLES[parts[2]]}"
            out.setdefault(parts[1], []).append(HostGraph(base, label))
        order = list(HOST_GRAPHS)
        for graphs in out.values():
            graphs.sort(key=lambda g: order.index(g.key.split(".")[2]))
        return out

    async def stats(self, key: str, period: Period) -> Stat:
        """Maximum (of the MAX archive), average and current (of AVERAGE) of one key over a period."""
        store = self.daemon.rrdstore
        now = self.clock()
        since = now - PERIODS[period]
        avg = [v for _, v in await self._points(store, key, since, now, "AVERAGE") if v is not None]
        peaks = [v for _, v in await self._points(store, key, since, now, "MAX") if v is not None]
        return Stat(max(peaks, default=None), sum(avg) / len(avg) if avg else None, avg[-1] if avg else None)

    @staticmethod
    async def _points(store: RrdStore, key: str, since: float, until: float, cf: str) -> list[tuple[float, Any]]:
        data = await store.fetch(key, since, until, cf)
        points = data["points"]
        assert isinstance(points, list)
        return points

    # -- web sources -----------------------------------------------------------------------------------------

    def web_source_names(self, stored: Iterable[str] = ()) -> list[str]:
        names = {t.name for t in self.cfg.tail if t.format in WEB_FORMATS}
        return sorted(names | set(stored))

    async def web_sources(self) -> list[WebSourceView]:
        """Each web source's last 24 hours: requests, failed (4xx and 5xx) and server errors (5xx)."""
        store = self.daemon.weblogstore
        stored = [str(s["name"]) for s in await store.sources()] if store is not None else []
        keys = set(await self.daemon.rrdstore.list_keys())
        out = []
        for name in self.web_source_names(stored):
            graph = f"weblog.{name}.requests"
            report = await self.web_report(name, self.clock() - 86400, top=1)
            if report is None:
                out.append(WebSourceView(name, 0, 0, 0, None, False, graph if graph in keys else None))
                continue
            summary, classes = report["summary"], report["status"]["classes"]
            out.append(WebSourceView(name, int(summary["requests"]), int(summary["failed"]), int(classes["5xx"]),
                                     summary["last"], True, graph if graph in keys else None))
        return out

    async def web_report(self, name: str, since: float | None = None, top: int = 10) -> dict[str, Any] | None:
        store = self.daemon.weblogstore
        if store is None:
            return None
        try:
            return await store.report(name, since, None, top)
        except UnknownWebSourceError:
            return None

    # -- daemon ----------------------------------------------------------------------------------------------

    def intake(self, status: DaemonStatus) -> list[IntakeView]:
        rows = []
        received: dict[str, int] = {}
        for comp in status.components:
            if not comp.name.startswith(INTAKE_PREFIXES):
                continue
            counters = comp.counters
            count = next((counters[c] for c in RECEIVED_COUNTERS if c in counters), 0)
            received[comp.name] = count
            rows.append((comp.name, str(comp.state), count, _sum_dropped(counters), counters.get("parse_errors", 0)))
        self.meter.observe(self.clock(), received)
        return [IntakeView(n, s, c, self.meter.rate(n), d, p) for n, s, c, d, p in rows]

    def observe(self, status: DaemonStatus) -> None:
        """Feed the rate meter between page views (the server calls it every few seconds)."""
        self.intake(status)

    async def incidents(self, *, include_resolved: bool = False, limit: int = 1000) -> list[Incident] | None:
        try:
            return await self.daemon.alerts.list_incidents(include_resolved=include_resolved, limit=limit)
        except NotRunningError:
            return None

    async def overview(self) -> Overview:
        status = await self.daemon.status()
        targets = await self.targets(status)
        logs = status.pipeline.logs
        steps: Sequence[float] = [t.step for t in targets] or [self.cfg.storage.rrd.step]
        return Overview(
            incidents=await self.incidents(),
            targets=targets,
            hosts=await self.host_graphs(),
            web=await self.web_sources(),
            intake=self.intake(status),
            pipeline_dropped=_sum_dropped(logs),
            stored=logs.get("stored", 0),
            step=min(steps),
            nodes=fleet_nodes(status),
        )
