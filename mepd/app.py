"""The daemon: builds components from config, supervises them, handles signals.

Components are keyed; a reload validates the whole new config first, then
restarts only the components whose key or config changed (supervisord's
diff_to_active), so an unchanged listener never stops receiving.

Shutdown order (SIGTERM/SIGINT): stop accepting (API, sources), drain the
pipeline into the stores within `daemon.drain_timeout`, stop the sinks, close
the stores.  A second signal exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import gc
import logging
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from mepd import __version__
from mepd import config as config_mod
from mepd.alerts import engine as alerts_engine
from mepd.alerts import forecasts as alert_forecasts
from mepd.analysis import devicelogs, logmetrics
from mepd.analysis.weblog import live as weblog_live
from mepd.api import checks as checks_api
from mepd.api import incidents as incidents_api
from mepd.api import timeline as timeline_api
from mepd.api.metrics import MetricsApi
from mepd.api.protocol import DaemonStatus
from mepd.api.server import ApiServer
from mepd.api.weblog import WebLogApi
from mepd.config import Config, default_node
from mepd.config.syntax import compile_glob
from mepd.errors import AlreadyRunningError, ConfigErrors
from mepd.export import remote_write
from mepd.fleet import api as fleet_api
from mepd.fleet import consumer as fleet_consumer
from mepd.fleet import incidents as fleet_incidents
from mepd.fleet import metrics as fleet_metrics
from mepd.fleet import publisher as fleet_publisher
from mepd.fleet import sharing as fleet_sharing
from mepd.model import LogRecord
from mepd.pipeline import Accept, Counters, Pipeline, from_sources
from mepd.sources import journal as journal_source
from mepd.sources import tail as tail_source
from mepd.sources.host import checks as host_checks
from mepd.sources.host import metrics as host_metrics
from mepd.sources.snmp import interfaces as snmp_interfaces
from mepd.sources.snmp import target as snmp_source
from mepd.sources.syslog import relp
from mepd.sources.syslog import server as syslog_server
from mepd.sources.syslog.sockets import match_inherited
from mepd.store.logs.store import LogSink, LogStore
from mepd.store.rrd.files import FORECAST_PREFIX, HoltWinters
from mepd.store.rrd.store import Layouts, RrdSink, RrdStore, build_layouts
from mepd.store.weblog import WebLogStore
from mepd.supervisor import Component, State, Supervised
from mepd.systemd import Notifier, listen_fds, watchdog_interval
from mepd.web import export as web_export
from mepd.web import report as web_report
from mepd.web import server as web_server
from mepd.web.dashboard import Dashboard
from mepd.web.data import HOST_COMPONENT

log = logging.getLogger(__name__)

STATUS_INTERVAL: Final = 5.0
READY_TIMEOUT: Final = 30.0


@dataclass(frozen=True, slots=True)
class Spec:
    """How to build one component, and the config that decides whether a reload restarts it."""

    key: str
    config: object
    build: Callable[[], Component]


class App:
    def __init__(self, cfg: Config, notifier: Notifier | None = None) -> None:
        self.cfg = cfg
        self.notifier = notifier or Notifier()
        self.pipeline = Pipeline()
        self.logstore = LogStore(os.path.join(cfg.daemon.state_dir, "logs.db"), cfg.storage.logs)
        rrd = cfg.storage.rrd
        self.rrdstore = RrdStore(os.path.join(cfg.daemon.state_dir, rrd.dir), rrd.rrdcached, rrd_layouts(cfg))
        self.snmp_hub = snmp_source.SnmpHub(cfg.snmp, os.path.join(cfg.daemon.state_dir, "snmp"))
        self.api = ApiServer(self, cfg.daemon.control_socket)
        self.api.add_routes(MetricsApi(self.rrdstore).routes())
        self.alerts = alerts_engine.create(cfg, self.pipeline)
        self.api.add_routes(incidents_api.routes(self.alerts))
        self.api.add_routes(timeline_api.routes(self))
        self.api.add_routes(checks_api.routes(self))
        self.api.add_routes(fleet_api.routes(lambda: self.cfg))
        self.weblogstore = WebLogStore(os.path.join(cfg.daemon.state_dir, "weblog.db"))
        self.api.add_routes(WebLogApi(self.weblogstore).routes())
        self.weblog: weblog_live.WebLogAnalyzer | None = None
        self.logmetrics: logmetrics.LogMetrics | None = None
        self.devicelogs: devicelogs.DeviceLogs | None = None
        self.dashboard = Dashboard(self)
        self.exporter = web_export.Exporter(self.dashboard)
        self.api.add_routes(web_export.api_routes(self.exporter))
        self.api.add_routes(web_server.api_routes(lambda: self.cfg))
        self.api.add_routes(web_report.api_routes(self.dashboard.reports))
        self.started = time.time()
        self.sinks: list[Supervised] = []
        self.components: dict[str, tuple[object, Supervised]] = {}
        self.reloads = Counters()
        self.last_reload_error: str | None = None
        self._stop = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._signals = 0
        self.inherited = listen_fds()
        self.syslog_handover = syslog_server.Handover()

    @property
    def snmp_targets(self) -> tuple[config_mod.SnmpTargetConfig, ...]:
        return self.cfg.snmp.target

    def specs(self, cfg: Config) -> list[Spec]:
        """Every source component the config asks for; the single place a new source is wired in."""
        logs = self.pipeline.logs
        specs = [
            Spec(lc.key, lc, functools.partial(relp.RelpListener if lc.proto == "relp" else syslog_server.create, lc,
                                               logs, match_inherited(lc, self.inherited), self.syslog_handover))
            for lc in cfg.syslog.listen
        ]
        if cfg.journal.enabled:
            resume = functools.partial(self.logstore.cursor, journal_source.CURSOR_KEY)
            build = functools.partial(journal_source.create, cfg.journal, logs, resume)
            specs.append(Spec(journal_source.CURSOR_KEY, cfg.journal, build))
        samples = self.pipeline.samples
        if cfg.fleet is not None and cfg.fleet.share_polling and cfg.snmp.target:
            # Before the targets: they find the share on their hub when they start.
            specs.append(Spec("fleet/leases", (cfg.fleet, cfg.snmp.target),
                              functools.partial(self._poll_share, cfg.fleet, cfg.snmp.target)))
        specs += [Spec(f"snmp/{t.name}", t, functools.partial(snmp_source.create, t, self.snmp_hub, samples))
                  for t in cfg.snmp.target]
        if cfg.host.enabled:
            specs.append(Spec("host", cfg.host, functools.partial(host_metrics.create, cfg.host, samples)))
        specs += [Spec(f"{checks_api.PREFIX}{c.name}", c, functools.partial(host_checks.create, c, samples, logs))
                  for c in cfg.checks]
        for tc in cfg.tail:
            specs.append(Spec(f"tail:{tc.name}", tc,
                              functools.partial(tail_source.create, tc, logs, self.logstore.cursor)))
        if cfg.fleet is not None:
            if "logs" in cfg.fleet.publish:
                specs.append(Spec("fleet/publish", cfg.fleet,
                                  functools.partial(fleet_publisher.create, cfg.fleet, self.logstore)))
            if "incidents" in cfg.fleet.publish:
                specs.append(Spec("fleet/incidents", cfg.fleet, functools.partial(
                    fleet_incidents.create_publisher, cfg.fleet, self.alerts.path, self.logstore)))
            if cfg.fleet.central.enabled:
                specs.append(Spec("fleet/central", cfg.fleet,
                                  functools.partial(fleet_consumer.create, cfg.fleet, self.logstore, self.alerts.logs)))
                specs.append(Spec("fleet/central-incidents", cfg.fleet, functools.partial(
                    fleet_incidents.create_consumer, cfg.fleet, cfg.daemon.state_dir)))
                specs.append(Spec("fleet/central-metrics", cfg.fleet, functools.partial(
                    fleet_metrics.create_consumer, cfg.fleet, self.rrdstore)))
        if cfg.http.listen:
            dashboard = functools.partial(web_server.create, cfg.http, cfg.daemon.state_dir, self.dashboard)
            specs.append(Spec("http", cfg.http, dashboard))
        if cfg.http.export_dir:
            export = functools.partial(web_export.create_periodic, cfg.http, self.exporter)
            specs.append(Spec("http/export", cfg.http, export))
        if cfg.report.export_dir or cfg.report.mail_to:
            reports = functools.partial(web_report.MonthlyExport, cfg.report, cfg.daemon.state_dir,
                                        self.dashboard.reports)
            specs.append(Spec("report/export", cfg.report, reports))
        if predicted := tuple(r for r in cfg.alert.rule if r.forecast):
            watch = functools.partial(alert_forecasts.ForecastWatch, predicted, cfg.report.forecast_window,
                                      self.rrdstore, samples, interval=cfg.alert.forecast_interval)
            specs.append(Spec("alerts/forecast", (predicted, cfg.report.forecast_window, cfg.alert.forecast_interval),
                              watch))
        return specs

    def _poll_share(self, cfg: config_mod.FleetConfig,
                    targets: tuple[config_mod.SnmpTargetConfig, ...]) -> fleet_sharing.PollShare:
        share = self.snmp_hub.share = fleet_sharing.create(cfg, targets)
        return share

    def _build_sinks(self) -> list[Component]:
        sub = self.pipeline.logs.subscribe("store/logs", self.cfg.daemon.queue_size, durable=True)
        samples = self.pipeline.samples.subscribe("store/rrd", self.cfg.daemon.queue_size, durable=True)
        rrd = self.cfg.storage.rrd
        web = self.pipeline.logs.subscribe("analysis/weblog", self.cfg.daemon.queue_size, accept=web_records(self.cfg))
        self.weblog = weblog_live.create(weblog_live.web_sources(self.cfg.tail), web, self.pipeline.samples,
                                         self.weblogstore)
        derived = self.pipeline.logs.subscribe("analysis/logs", self.cfg.daemon.queue_size)
        self.logmetrics = logmetrics.create(self.cfg.logs, derived, self.pipeline.samples)
        devices = self.pipeline.logs.subscribe("analysis/devices", self.cfg.daemon.queue_size)
        self.devicelogs = devicelogs.create(self.cfg.snmp.target, self.snmp_hub, devices, self._link_line)
        node = self.cfg.fleet.node_name if self.cfg.fleet is not None else default_node()
        exports: list[Component] = []
        for i, rw in enumerate(self.cfg.metrics.remote_write):
            name = f"export/remote_write{i}"
            exported = self.pipeline.samples.subscribe(name, self.cfg.daemon.queue_size, durable=True)
            exports.append(remote_write.RemoteWrite(rw, name, self.cfg.daemon.state_dir, node, exported,
                                                    self.host_mounts))
        if self.cfg.fleet is not None and publishes_metrics(self.cfg):
            published = self.pipeline.samples.subscribe("fleet/metrics", self.cfg.daemon.queue_size, durable=True)
            exports.append(fleet_metrics.create_publisher(self.cfg.fleet, self.cfg.daemon.state_dir, published,
                                                          lambda: self.rrdstore.layouts))
        return [
            self.weblog,
            self.logmetrics,
            self.devicelogs,
            LogSink(self.logstore, sub, self.logstore.counters, self.pipeline.log_counters),
            RrdSink(self.rrdstore, samples, Counters(), self.pipeline.sample_counters,
                    batch_size=rrd.batch_size, flush_interval=rrd.flush_interval,
                    derived=self.pipeline.samples.offer_many),
            self.alerts,
            *exports,
        ]

    def _link_line(self, key: str, ts: float, value: float, line: str) -> None:
        """A device's link line states its interface's `oper_up`: the alert engine's rules act on it at once."""
        self.alerts.observe(key, ts, value, source="log", line=line)

    def host_mounts(self) -> dict[str, str]:
        """The host's file systems (key name -> mount point), once [host] has listed them; else none."""
        host = self.components.get(HOST_COMPONENT)
        mounts = getattr(host[1].component, "mounts", None) if host else None
        return dict(mounts) if isinstance(mounts, dict) else {}

    async def run(self) -> int:
        lock = lock_state_dir(self.cfg.daemon.state_dir)
        try:
            return await self._run()
        finally:
            os.close(lock)

    async def _run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_stop_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self._on_reload_signal)
        await self.api.start()
        try:
            try:
                await self.logstore.open()
            except sqlite3.Error as e:  # the sink retries its writes; nothing else waits for the log store
                log.error("log store %s cannot be opened, records wait in its queue: %s", self.logstore.path, e)
            await self.weblogstore.open()
            self.sinks = [Supervised(c) for c in self._build_sinks()]
            for s in self.sinks:
                s.start()
            # Checks start once the rest has settled: a check of mepd's own dashboard or listening port would
            # otherwise fail its first run against a server still binding.
            specs = self.specs(self.cfg)
            for spec in specs:
                if not spec.key.startswith(checks_api.PREFIX):
                    self._start(spec)
            await self._wait_settled([s for _, s in self.components.values()])
            for spec in specs:
                if spec.key.startswith(checks_api.PREFIX):
                    self._start(spec)
            await self._wait_settled([s for _, s in self.components.values()])
            self.notifier.notify("READY=1", f"MAINPID={os.getpid()}", self._status_line())
            log.info("mepd %s ready (pid %d)", __version__, os.getpid())
            background = [asyncio.create_task(self._report_status())]
            if (interval := watchdog_interval()) is not None:
                background.append(asyncio.create_task(self._watchdog(interval)))
            await self._stop.wait()
            for task in background:
                task.cancel()
            await self._shutdown()
        finally:
            await self.api.stop()
            await self.logstore.close()
            await self.weblogstore.close()
            await self.rrdstore.close()
            self.notifier.close()
        return 0

    def _start(self, spec: Spec) -> None:
        sup = Supervised(spec.build())
        sup.start()
        self.components[spec.key] = (spec.config, sup)

    @staticmethod
    async def _wait_settled(sups: list[Supervised]) -> None:
        """Until each component is listening or has failed once: what READY=1 means."""
        events = [s.settled.wait() for s in sups]
        if events:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*events), READY_TIMEOUT)

    async def _shutdown(self) -> None:
        self.notifier.notify("STOPPING=1", "STATUS=stopping: draining queues")
        log.info("stopping: draining queues (at most %.0fs)", self.cfg.daemon.drain_timeout)
        self.api.closing.set()
        await asyncio.gather(*(s.stop() for _, s in self.components.values()))
        self.syslog_handover.close_unclaimed()
        try:
            await asyncio.wait_for(self.pipeline.join(), self.cfg.daemon.drain_timeout)
        except TimeoutError:
            pending = sum(s.pending for s in self.pipeline.logs.subscribers)
            log.error("drain timed out with %d records not stored", pending)
        await asyncio.gather(*(s.stop() for s in self.sinks))

    def _on_stop_signal(self, sig: signal.Signals) -> None:
        self._signals += 1
        if self._signals > 1:
            log.warning("second %s: exiting now without draining", sig.name)
            os._exit(1)
        log.info("%s received: stopping", sig.name)
        self._stop.set()

    def _on_reload_signal(self) -> None:
        log.info("SIGHUP received: reloading %s", self.cfg.file)
        asyncio.get_running_loop().create_task(self.reload())

    async def reload(self) -> tuple[list[str], list[str]]:
        """Apply the config file again; on errors keep the running config. Returns (errors, warnings)."""
        async with self._reload_lock:
            self.notifier.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
            try:
                new = config_mod.load(self.cfg.file)
            except ConfigErrors as e:
                self.reloads.inc("failed")
                self.last_reload_error = str(e)
                for err in e.errors:
                    log.error("reload refused: %s", err)
                self.notifier.notify("READY=1", "STATUS=reload refused: invalid config; old config running")
                return [str(err) for err in e.errors], []
            warnings = [f"changes to [{section}] take effect at the next restart"
                        for section in ("daemon", "storage", "metrics")
                        if getattr(new, section) != getattr(self.cfg, section)]
            if new.fleet != self.cfg.fleet and (publishes_metrics(new) or publishes_metrics(self.cfg)):
                warnings.append("changes to [fleet] take effect for publishing metrics at the next restart")
            for warning in warnings:
                log.warning("reload: %s", warning)
            wanted = {spec.key: spec for spec in self.specs(new)}
            # A component that gave up (FATAL: its port was taken, say) is started again, as supervisord's update does.
            stale = [key for key, (conf, sup) in self.components.items()
                     if key not in wanted or wanted[key].config != conf or sup.state is State.FATAL]
            await asyncio.gather(*(self.components.pop(key)[1].stop() for key in stale))
            if "fleet/leases" not in wanted:
                self.snmp_hub.share = None  # the targets poll on their own again
            if self.weblog is not None:  # before new web tails start, so that their first records reach it
                self.weblog.logs.accept = web_records(new)
            fresh = [key for key in wanted if key not in self.components]
            for key in fresh:
                self._start(wanted[key])
            await self._wait_settled([self.components[key][1] for key in fresh])
            self.syslog_handover.close_unclaimed()  # the sockets of listeners the new config removed
            await self.alerts.reload(new.alert, new.snmp.target)
            if self.weblog is not None:
                self.weblog.configure(weblog_live.web_sources(new.tail))
            if self.logmetrics is not None:
                self.logmetrics.configure(new.logs)
            if self.devicelogs is not None:
                self.devicelogs.configure(new.snmp.target)
            self.cfg = new
            self.rrdstore.layouts = rrd_layouts(new)
            self.reloads.inc("ok")
            self.last_reload_error = None
            log.info("reload done: %d components started, %d stopped, %d unchanged",
                     len(fresh), len(stale), len(self.components) - len(fresh))
            self.notifier.notify("READY=1", self._status_line())
            return [], warnings

    def _status_line(self) -> str:
        c = self.pipeline.log_counters
        return (f"STATUS=records received {c.get('received')}, stored {c.get('stored')},"
                f" not stored (queue full) {c.get('dropped.queue_full.store/logs')}")

    async def _report_status(self) -> None:
        while True:
            await asyncio.sleep(STATUS_INTERVAL)
            self.notifier.notify(self._status_line())

    async def _watchdog(self, interval: float) -> None:
        """Pings come from the event loop itself, so a stuck loop stops them and systemd restarts us."""
        while True:
            self.notifier.notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    async def status(self) -> DaemonStatus:
        sups = [s for _, s in self.components.values()] + self.sinks
        return DaemonStatus(__version__, os.getpid(), self.started, time.time() - self.started, self.cfg.file,
                            [s.status() for s in sups], self.pipeline.status(), await self.logstore.stats(),
                            self.reloads.snapshot(), self.last_reload_error)


def publishes_metrics(cfg: Config) -> bool:
    """`[fleet] publish` holds "metrics": a consumer of the sample channel, built at start like the stores'."""
    return cfg.fleet is not None and "metrics" in cfg.fleet.publish


def web_records(cfg: Config) -> Accept[LogRecord]:
    """What the web-log analyser subscribes to: its web sources' records, not the syslog and journal flow."""
    return from_sources(weblog_live.SOURCE_PREFIX + w.name for w in weblog_live.web_sources(cfg.tail))


def rrd_layouts(cfg: Config) -> Layouts:
    """Each SNMP target's RRDs step at its poll interval, with its archives, one file per interface; each web
    source's at its own `step` (with storage.rrd.step, a longer one outruns the heartbeat and stores unknown
    between samples); the host's at `[host] interval`, one file per group and item (an interface, a mount);
    each check's at its interval; the log-derived ones (`logs.`) at `[logs] step`; forecast rules' samples at
    `[alert] forecast_interval`; other keys at storage.rrd.step.  The keys of anomaly rules get the Holt-Winters
    archives of their season."""
    targets = [(f"snmp.{t.name}.", t.interval, [config_mod.parse_rra(r) for r in t.rra], snmp_interfaces.METRICS)
               for t in cfg.snmp.target]
    webs = [(weblog_live.metric_prefix(w.name), w.step, (), ()) for w in weblog_live.web_sources(cfg.tail)]
    host_rras = [config_mod.parse_rra(r) for r in cfg.host.rra]
    hosts = [(prefix, cfg.host.interval, host_rras, names) for prefix, names in host_metrics.key_groups(cfg.host)
             ] if cfg.host.enabled else []
    checks = [(f"check.{c.name}.", c.interval, (), ()) for c in cfg.checks]
    derived = [(logmetrics.PREFIX, cfg.logs.step, [config_mod.parse_rra(r) for r in cfg.logs.rra], ())]
    forecasts = [(FORECAST_PREFIX, cfg.alert.forecast_interval, (), ())]
    anomalies = [(compile_glob(r.metric), HoltWinters(r.anomaly.season, r.anomaly.failures, r.anomaly.window))
                 for r in cfg.alert.rule if r.anomaly is not None]
    return build_layouts(cfg.storage.rrd.step, [*targets, *webs, *hosts, *checks, *derived, *forecasts], anomalies)


def lock_state_dir(path: str) -> int:
    """One daemon per state_dir, held until it exits: two would tail the same files and store each line twice."""
    os.makedirs(path, mode=0o750, exist_ok=True)
    fd = os.open(os.path.join(path, "mepd.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise AlreadyRunningError(f"another mepd (pid {holder}) uses state_dir {path}; give each daemon its own"
                                  " daemon.state_dir") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


# Young-generation collections every 250,000 allocations instead of 700: the records and
# samples in flight hold no reference cycles, and a young collection costs what is alive
# then, not the threshold, so rarer ones cost less in all.  The default made the collector
# a sixth of the syslog path's CPU (bench/syslog); 50,000 still cost the SNMP poll of
# 10,000 interfaces 0.04-0.07 s a cycle (bench/snmp).  What is loaded at start-up is frozen.
GC_THRESHOLDS: Final = (250_000, 20, 100)


def tune_gc() -> None:
    """Freeze what is loaded so far out of the collector's scans and collect the young generation less often."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run(cfg: Config) -> int:
    tune_gc()
    try:
        return asyncio.run(App(cfg).run())
    except KeyboardInterrupt:
        return 1
    finally:
        sys.stderr.flush()
