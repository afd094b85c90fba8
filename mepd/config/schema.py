"""mepd's config sections: one frozen dataclass per TOML table, with the checks that need the whole section.

`mepd.config.convert` builds them from the file, driven by their type hints (its
docstring lists the conventions: `Duration`, `Size`, `FilePath`, `Literal`, tuples
for arrays of tables, `check()`).  Adding a section is adding a dataclass to the module of its job (inputs, analysis,
alerts, outputs) and naming it in `Config` here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from mepd.config.alerts import AlertConfig
from mepd.config.analysis import LogsConfig, ReportConfig
from mepd.config.convert import Duration, FilePath, Size
from mepd.config.inputs import CheckConfig, HostConfig, JournalConfig, SnmpConfig, SyslogConfig, TailConfig
from mepd.config.outputs import FleetConfig, HttpConfig, MetricsConfig
from mepd.errors import quoted


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    state_dir: FilePath = "/var/lib/mepd"
    control_socket: FilePath = "/run/mepd/mepd.sock"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    drain_timeout: Duration = 10.0
    queue_size: int = 100_000

    def check(self) -> Iterator[tuple[str, str]]:
        if self.queue_size < 1:
            yield "queue_size", f"must be at least 1, got {self.queue_size}"
        if len(os.fsencode(self.control_socket)) > 107:
            yield "control_socket", "path too long for a Unix socket (107 bytes at most)"


@dataclass(frozen=True, slots=True)
class LogStorageConfig:
    retention: Duration = 30 * 86400.0
    max_size: Size = 2 * 1024**3
    batch_size: int = 2000
    flush_interval: Duration = 0.05  # what a kill -9 can lose at low rates; high rates fill batches first
    maintenance_interval: Duration = 300.0
    fulltext_index: bool = True

    def check(self) -> Iterator[tuple[str, str]]:
        if self.batch_size < 1:
            yield "batch_size", f"must be at least 1, got {self.batch_size}"
        if self.max_size < 1024 * 1024:
            yield "max_size", "must be at least 1MiB"
        if self.retention < 60:  # 0 would empty the store at every maintenance pass
            yield "retention", f"must be at least 1m (max_size bounds the store too), got {self.retention:g}s"


@dataclass(frozen=True, slots=True)
class RrdStorageConfig:
    dir: str = "rrd"
    rrdcached: str = ""
    step: Duration = 300.0
    batch_size: int = 10_000
    flush_interval: Duration = 0.0  # the rrdtool worker's own pace batches: see conf/mepd.toml

    def check(self) -> Iterator[tuple[str, str]]:
        if self.rrdcached and not self.rrdcached.startswith(("unix:", "/")):
            yield "rrdcached", f'expected "unix:/path/to/rrdcached.sock", got {quoted(self.rrdcached)}'
        if self.step < 1:
            yield "step", "must be at least 1s"
        if self.batch_size < 1:
            yield "batch_size", f"must be at least 1, got {self.batch_size}"


@dataclass(frozen=True, slots=True)
class StorageConfig:
    logs: LogStorageConfig = field(default_factory=LogStorageConfig)
    rrd: RrdStorageConfig = field(default_factory=RrdStorageConfig)


@dataclass(frozen=True, slots=True)
class Config:
    file: str = ""
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    syslog: SyslogConfig = field(default_factory=SyslogConfig)
    journal: JournalConfig = field(default_factory=JournalConfig)
    snmp: SnmpConfig = field(default_factory=SnmpConfig)
    host: HostConfig = field(default_factory=HostConfig)
    alert: AlertConfig = field(default_factory=AlertConfig)
    tail: tuple[TailConfig, ...] = ()
    logs: LogsConfig = field(default_factory=LogsConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    fleet: FleetConfig | None = None
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    checks: tuple[CheckConfig, ...] = field(default=(), metadata={"key": "check"})  # `check` names the method

    def check(self) -> Iterator[tuple[str, str]]:
        names: dict[str, int] = {}
        for i, c in enumerate(self.checks):
            if c.name in names:
                yield f"check[{i}].name", f"duplicate of check[{names[c.name]}]"
            names[c.name] = i
        seen: dict[str, int] = {}
        for i, listener in enumerate(self.syslog.listen):
            if listener.key in seen:
                yield f"syslog.listen[{i}].address", f"duplicate of syslog.listen[{seen[listener.key]}]"
            seen[listener.key] = i
        tails: dict[str, int] = {}
        for i, t in enumerate(self.tail):
            if t.name in tails:
                yield f"tail[{i}].name", f"duplicate of tail[{tails[t.name]}]"
            tails[t.name] = i
        if self.host.enabled:
            own = self.host.host_name
            for i, target in enumerate(self.snmp.target):
                if target.name == own:
                    yield f"snmp.target[{i}].name", (f"{quoted(own)} is this host's name, which its own interfaces"
                                                     " use on the dashboard; rename the target or set [host] name")
