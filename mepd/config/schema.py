"""mepd's config sections: one frozen dataclass per TOML table, with the checks that need the whole section.

`mepd.config.convert` builds them from the file, driven by their type hints (its
docstring lists the conventions: `Duration`, `Size`, `FilePath`, `Literal`, tuples
for arrays of tables, `check()`).  Adding a section is adding a dataclass here.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import ssl
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mepd.config.convert import Duration, FilePath, Size
from mepd.config.syntax import (
    DISTINCT_MAX,
    DISTINCT_TEMPLATE_FIELDS,
    LABEL_NAME,
    LOG_TEMPLATE_FIELDS,
    RECORD_FIELDS,
    TEMPLATE_FIELDS,
    compile_regex,
    glob_error,
    template_error,
)
from mepd.errors import quoted
from mepd.model import IncidentSeverity, severity_number
from mepd.units import parse_duration

_JOURNAL_FIELD: Final = re.compile(r"(?=.{1,64}$)_?[A-Z][A-Z0-9_]*")
_HOSTNAME: Final = re.compile(r"(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_-]{1,63})*\.?")


def split_address(text: str) -> tuple[str, int]:
    """("0.0.0.0", 514) from "0.0.0.0:514"; IPv6 hosts go in brackets: "[::1]:514"."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f'expected host:port like "127.0.0.1:514", got {quoted(text)}')
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        ipaddress.IPv6Address(host)
    elif ":" in host:
        raise ValueError(f'an IPv6 host goes in brackets, like "[::1]:514", got {quoted(text)}')
    elif not _HOSTNAME.fullmatch(host):
        raise ValueError(f"invalid host {quoted(host)} in {quoted(text)}")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"invalid port {quoted(port_text)} in {quoted(text)}; expected 1-65535")
    return host, int(port_text)


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
class SyslogListenConfig:
    proto: Literal["udp", "tcp", "tls", "unix", "relp"]
    address: str
    max_message_size: Size = 64 * 1024
    receive_buffer: Size = 8 * 1024 * 1024
    timezone: str = ""
    peer_as_host: bool = True
    tls_cert: FilePath = ""
    tls_key: FilePath = ""
    tls_client_ca: FilePath = ""
    tls_min_version: Literal["1.2", "1.3"] = "1.2"
    socket_mode: str = "0666"
    fd_name: str = ""
    max_connections: int = 1000
    idle_timeout: Duration = 3600.0
    handshake_timeout: Duration = 10.0

    def check(self) -> Iterator[tuple[str, str]]:
        if self.proto == "unix":
            if not os.path.isabs(self.address):
                yield "address", f"a unix socket address is an absolute path, got {quoted(self.address)}"
            elif len(os.fsencode(self.address)) > 107:
                yield "address", "path too long for a Unix socket (107 bytes at most)"
            if not re.fullmatch(r"0?[0-7]{3}", self.socket_mode):
                yield "socket_mode", f'expected an octal mode like "0666", got {quoted(self.socket_mode)}'
        else:
            try:
                split_address(self.address)
            except ValueError as e:
                yield "address", str(e)
        if self.timezone:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                yield "timezone", f'unknown time zone {quoted(self.timezone)}; expected a name like "Europe/Paris"'
        if self.max_message_size < 480:
            yield "max_message_size", "must be at least 480 bytes (RFC 5424's minimum)"
        if self.max_connections < 1:
            yield "max_connections", "must be at least 1"
        if self.handshake_timeout <= 0:
            yield "handshake_timeout", "must be positive"
        yield from self._check_tls()

    def _check_tls(self) -> Iterator[tuple[str, str]]:
        tls_keys = {"tls_cert": self.tls_cert, "tls_key": self.tls_key, "tls_client_ca": self.tls_client_ca}
        if not self.tls:
            for key, value in tls_keys.items():
                if value:
                    yield key, 'only used with proto = "tls", or "relp" with tls_cert and tls_key'
            return
        for key in ("tls_cert", "tls_key"):
            if not tls_keys[key]:
                yield key, f'required with proto = "{self.proto}" over TLS (a PEM file)'
        yield from _tls_file_errors(("tls_cert", self.tls_cert), ("tls_key", self.tls_key))
        if self.tls_client_ca:
            yield from _ca_file_errors("tls_client_ca", self.tls_client_ca)

    @property
    def key(self) -> str:
        return f"syslog/{self.proto} {self.address}"

    @property
    def tls(self) -> bool:
        """Over TLS: proto "tls", or "relp" given a certificate or key (as rsyslog's imrelp `tls="on"`)."""
        return self.proto == "tls" or (self.proto == "relp" and bool(self.tls_cert or self.tls_key))

    @property
    def mode(self) -> int:
        return int(self.socket_mode, 8)


@dataclass(frozen=True, slots=True)
class SyslogConfig:
    listen: tuple[SyslogListenConfig, ...] = ()


_NAME: Final = re.compile(r"[A-Za-z0-9_-]+")
_OID: Final = re.compile(r"\.?[0-9]+(\.[0-9]+)+")


def parse_rra(spec: str) -> tuple[float, float]:
    """("30m", "2w") style "RESOLUTION:SPAN" -> seconds; ValueError otherwise."""
    res, sep, span = spec.partition(":")
    if not sep:
        raise ValueError(f'expected "RESOLUTION:SPAN" like "30m:2w", got {quoted(spec)}')
    resolution, length = parse_duration(res), parse_duration(span)
    if resolution <= 0 or length < resolution:
        raise ValueError(f"the span must be at least the resolution in {quoted(spec)}")
    return resolution, length


@dataclass(frozen=True, slots=True)
class SnmpOidConfig:
    """A custom OID polled with the interfaces, like MRTG's custom targets: `snmp.<target>.<name>`."""

    name: str
    oid: str
    kind: Literal["gauge", "counter"] = field(default="gauge", metadata={"key": "type"})
    scale: float = 1.0
    max: float = 0.0

    def check(self) -> Iterator[tuple[str, str]]:
        if not _NAME.fullmatch(self.name):
            yield "name", f'use only letters, digits, "_" and "-", got {quoted(self.name)}'
        if not _OID.fullmatch(self.oid):
            yield "oid", f'expected a numeric OID like "1.3.6.1.4.1.2021.10.1.5.1", got {quoted(self.oid)}'


@dataclass(frozen=True, slots=True)
class SnmpTargetConfig:
    """One agent (`[[snmp.target]]`); secrets may come from `keys_file`, a TOML file only mepd can read.

    `syslog_hosts`: the names its device's syslog records carry, besides its `host` and sysName."""

    name: str
    host: str
    port: int = 161
    version: Literal["2c", "3"] = "2c"
    community: str = "public"
    user: str = ""
    auth_protocol: Literal["none", "MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512"] = "SHA"
    auth_key: str = ""
    priv_protocol: Literal["none", "DES", "3DES", "AES", "AES-192", "AES-256"] = "AES"
    priv_key: str = ""
    context: str = ""
    keys_file: FilePath = ""
    interval: Duration = 300.0
    timeout: Duration = 2.0
    retries: int = 1
    max_repetitions: int = 25
    interfaces: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    if_index: tuple[int, ...] = ()
    if_type: tuple[int, ...] = ()
    skip_down: bool = False
    skip_admin_down: bool = False
    max_bps: float = 0.0
    rra: tuple[str, ...] = ()
    oid: tuple[SnmpOidConfig, ...] = ()
    syslog_hosts: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()  # targets in front of this one: while one is down, its incidents are suppressed
    parent: str = ""  # a metric key saying the path to this target is up: at 0, its incidents are suppressed

    def check(self) -> Iterator[tuple[str, str]]:
        if not _NAME.fullmatch(self.name):
            yield "name", f'use only letters, digits, "_" and "-", got {quoted(self.name)}'
        if not 0 < self.port < 65536:
            yield "port", f"expected 1-65535, got {self.port}"
        if self.interval < 1:
            yield "interval", "must be at least 1s"
        if not 0 < self.timeout <= 60:
            yield "timeout", "expected more than 0s and at most 60s"
        if not 0 <= self.retries <= 10:
            yield "retries", f"expected 0-10, got {self.retries}"
        if not 1 <= self.max_repetitions <= 1000:
            yield "max_repetitions", f"expected 1-1000, got {self.max_repetitions}"
        file_errors = list(_check_keys_file(self.keys_file)) if self.keys_file else []
        yield from (("keys_file", msg) for msg in file_errors)
        if self.version == "3" and not file_errors:
            secrets = self.secrets()
            yield from self._check_v3(secrets["auth_key"], secrets["priv_key"])
        if self.version == "3" and not self.user:
            yield "user", "SNMPv3 needs a user"
        for i, spec in enumerate(self.rra):
            try:
                parse_rra(spec)
            except ValueError as e:
                yield f"rra[{i}]", str(e)
        names = [o.name for o in self.oid]
        for i, name in enumerate(names):
            if name in names[:i]:
                yield f"oid[{i}].name", f"duplicate name {quoted(name)}"

    def _check_v3(self, auth_key: str, priv_key: str) -> Iterator[tuple[str, str]]:
        if self.auth_protocol != "none" and len(auth_key) < 8:
            yield "auth_key", "SNMPv3 keys are at least 8 characters"
        if self.priv_protocol != "none":
            if self.auth_protocol == "none":
                yield "priv_protocol", "privacy needs authentication: set auth_protocol"
            if len(priv_key) < 8:
                yield "priv_key", "SNMPv3 keys are at least 8 characters"

    def secrets(self) -> dict[str, str]:
        """community, auth_key and priv_key: from keys_file when set, else from the target itself."""
        base = {"community": self.community, "auth_key": self.auth_key, "priv_key": self.priv_key}
        if not self.keys_file:
            return base
        with open(self.keys_file, "rb") as fh:
            data = tomllib.load(fh)
        return {k: str(data.get(k, v)) for k, v in base.items()}


def _tls_file_errors(cert: tuple[str, str], key: tuple[str, str]) -> Iterator[tuple[str, str]]:
    """Load the pair as the server will, so an empty or mismatched PEM fails `--check-config`, not the start."""
    if not (cert[1] and key[1]):
        return  # the missing half is its own error
    unreadable = [(name, f"cannot read {quoted(path)}") for name, path in (cert, key) if not os.access(path, os.R_OK)]
    yield from unreadable
    if not unreadable:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert[1], key[1])
        except (ssl.SSLError, OSError) as e:
            yield cert[0], f"cannot load {quoted(cert[1])} with {key[0]} {quoted(key[1])}: {e}"


def _ca_file_errors(name: str, path: str) -> Iterator[tuple[str, str]]:
    if not os.access(path, os.R_OK):
        yield name, f"cannot read {quoted(path)}"
        return
    try:
        ssl.create_default_context(cafile=path)
    except (ssl.SSLError, OSError) as e:
        yield name, f"no CA certificate in {quoted(path)}: {e}"


def _check_keys_file(path: str) -> Iterator[str]:
    try:
        st = os.stat(path)
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as e:
        yield f"cannot read {path}: {e.strerror}"
        return
    except tomllib.TOMLDecodeError as e:
        yield f"{path}: invalid TOML: {e}"
        return
    if st.st_mode & 0o077:
        yield f"{path} is readable by others (mode {st.st_mode & 0o777:o}); chmod 600 it"
    unknown = set(data) - {"community", "auth_key", "priv_key"}
    if unknown:
        yield f"{path}: unknown keys {', '.join(sorted(unknown))}; expected community, auth_key, priv_key"


@dataclass(frozen=True, slots=True)
class SnmpConfig:
    max_parallel: int = 32
    target: tuple[SnmpTargetConfig, ...] = ()

    def check(self) -> Iterator[tuple[str, str]]:
        if self.max_parallel < 1:
            yield "max_parallel", f"must be at least 1, got {self.max_parallel}"
        seen: dict[str, int] = {}
        for i, t in enumerate(self.target):
            if t.name in seen:
                yield f"target[{i}].name", f"duplicate of snmp.target[{seen[t.name]}]"
            seen[t.name] = i
        names = {t.name for t in self.target}
        for i, t in enumerate(self.target):
            for j, parent in enumerate(t.depends_on):
                if parent not in names or parent == t.name:
                    yield (f"target[{i}].depends_on[{j}]",
                           f"expected the name of another snmp.target, got {quoted(parent)}")
            if t.parent and any(c.isspace() for c in t.parent):
                yield f"target[{i}].parent", f"expected a metric key, got {quoted(t.parent)}"


# What node_exporter leaves out of its file systems: pseudo and read-only image file systems, and
# the kernel's and container runtimes' own mounts (its --collector.filesystem defaults).
HOST_FS_TYPES_EXCLUDE: Final = (
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts", "devtmpfs", "erofs",
    "fusectl", "hugetlbfs", "iso9660", "mqueue", "nsfs", "overlay", "proc", "procfs", "pstore", "rpc_pipefs",
    "securityfs", "selinuxfs", "squashfs", "sysfs", "tracefs",
)
HOST_MOUNTS_EXCLUDE: Final = ("/dev", "/dev/*", "/proc", "/proc/*", "/sys", "/sys/*", "/run/credentials/*",
                              "/var/lib/docker/*", "/var/lib/containers/storage/*")


@dataclass(frozen=True, slots=True)
class HostConfig:
    """`[host]`: this machine's own metrics, every `interval`, as samples `host.<name>.…`.

    Off unless asked for (the packaged and the dev config ask), so a config without the
    section stores nothing new.  `name` "" is the machine's short host name; its interfaces
    show on the dashboard as an SNMP target of that name.  `interfaces` and `exclude` are
    globs on interface names, as for SNMP targets; the file systems are the mounted ones
    but those of `fs_types_exclude` and `mounts_exclude` (globs on the mount point).
    """

    enabled: bool = False
    name: str = ""
    interval: Duration = 60.0
    interfaces: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    fs_types_exclude: tuple[str, ...] = HOST_FS_TYPES_EXCLUDE
    mounts_exclude: tuple[str, ...] = HOST_MOUNTS_EXCLUDE
    rra: tuple[str, ...] = ()

    @property
    def host_name(self) -> str:
        """`name`, else this machine's short host name as a metric key part."""
        if self.name:
            return self.name
        short = socket.gethostname().split(".")[0]
        return re.sub(r"[^A-Za-z0-9_-]", "_", short) or "localhost"

    def check(self) -> Iterator[tuple[str, str]]:
        if self.name and not _NAME.fullmatch(self.name):
            yield "name", f'use only letters, digits, "_" and "-", got {quoted(self.name)}'
        if self.interval < 1:
            yield "interval", "must be at least 1s"
        for key in ("interfaces", "exclude"):
            for i, glob in enumerate(getattr(self, key)):
                if err := glob_error(glob):
                    yield f"{key}[{i}]", err
        for i, glob in enumerate(self.mounts_exclude):
            if not glob.startswith("/"):
                yield f"mounts_exclude[{i}]", f'expected a mount point glob like "/run/*", got {quoted(glob)}'
        for i, spec in enumerate(self.rra):
            try:
                parse_rra(spec)
            except ValueError as e:
                yield f"rra[{i}]", str(e)


_TAIL_NAME: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True, slots=True)
class TailConfig:
    """One `[[tail]]`: log files followed like `tail -F`.

    `site_hosts`, `top` and `step` are read by the web-log analysis of
    combined/common logs; `rotate_wait` is how long a rotated or deleted file
    stays open for writers that have not reopened yet.
    """

    name: str
    path: FilePath
    format: Literal["combined", "common", "plain"] = "plain"
    start: Literal["end", "beginning"] = "end"
    rotate_wait: Duration = 5.0
    max_line_size: Size = 64 * 1024
    site_hosts: tuple[str, ...] = ()
    top: int = 10
    step: Duration = 300.0

    def check(self) -> Iterator[tuple[str, str]]:
        if not _TAIL_NAME.fullmatch(self.name):
            yield "name", f'expected 1-64 letters, digits, "_", "." or "-", got {quoted(self.name)}'
        if not self.path:
            yield "path", "must not be empty"
        if self.max_line_size < 256:
            yield "max_line_size", "must be at least 256 bytes"
        if self.top < 1:
            yield "top", f"must be at least 1, got {self.top}"
        if self.step <= 0:
            yield "step", "must be positive"


_LOG_METRIC_BY: Final = ("host", "app", "source")


@dataclass(frozen=True, slots=True)
class LogMetricConfig:
    """One `[[logs.metric]]`: a counter over the records whose message `pattern` (RE2) finds, filtered by
    globs on host/app/source and a severity (that level or more urgent); it sums the number `value` (a named
    group) captures, else counts.  `by` splits it per record field or named group, at most `max_series`."""

    name: str
    pattern: str
    host: str = ""
    app: str = ""
    source: str = ""
    severity: str = ""
    value: str = ""
    by: str = ""
    max_series: int = 100

    def check(self) -> Iterator[tuple[str, str]]:
        if not _NAME.fullmatch(self.name):
            yield "name", f'use only letters, digits, "_" and "-", got {quoted(self.name)}'
        groups: tuple[str, ...] = ()
        try:
            groups = tuple(getattr(compile_regex(self.pattern), "groupindex", {}))
        except ValueError as e:
            yield "pattern", f"invalid regular expression: {e}"
        for key in ("host", "app", "source"):
            if (glob := getattr(self, key)) and (err := glob_error(glob)):
                yield key, err
        if self.severity:
            try:
                severity_number(self.severity)
            except ValueError as e:
                yield "severity", str(e)
        if self.value and self.value not in groups:
            yield "value", f"no named group {quoted(self.value)} in pattern; write (?P<{self.value}>[0-9]+)"
        if self.by and self.by not in _LOG_METRIC_BY and self.by not in groups:
            yield "by", f"expected host, app, source or a named group of the pattern, got {quoted(self.by)}"
        if not 1 <= self.max_series <= 10000:
            yield "max_series", f"expected 1-10000, got {self.max_series}"


@dataclass(frozen=True, slots=True)
class LogsConfig:
    """`[logs]`: metrics derived from the log records (mepd.analysis.logmetrics), at `step`.

    `intake` turns on the per host / app / severity record counts (off unless asked for, so a config
    without the section stores nothing new); `[[logs.metric]]` counters work either way."""

    intake: bool = False
    step: Duration = 60.0
    top_apps: int = 10
    max_hosts: int = 200
    rra: tuple[str, ...] = ()
    metric: tuple[LogMetricConfig, ...] = ()

    def check(self) -> Iterator[tuple[str, str]]:
        if self.step < 1:
            yield "step", "must be at least 1s"
        if not 1 <= self.top_apps <= 1000:
            yield "top_apps", f"expected 1-1000, got {self.top_apps}"
        if not 1 <= self.max_hosts <= 100000:
            yield "max_hosts", f"expected 1-100000, got {self.max_hosts}"
        for i, spec in enumerate(self.rra):
            try:
                parse_rra(spec)
            except ValueError as e:
                yield f"rra[{i}]", str(e)
        names: dict[str, int] = {}
        for i, m in enumerate(self.metric):
            if m.name in names:
                yield f"metric[{i}].name", f"duplicate of metric[{names[m.name]}]"
            names[m.name] = i


@dataclass(frozen=True, slots=True)
class JournalConfig:
    """`[journal]`: off unless asked for, so a config without the section never reads the system journal.

    `units` match like `journalctl -u` (a name without a dot gets ".service"), `identifiers` match
    SYSLOG_IDENTIFIER, `priority` keeps entries at that severity or more urgent; different kinds of
    match must all hold.  `start` applies only when no cursor was saved yet.
    """

    enabled: bool = False
    path: FilePath = ""
    units: tuple[str, ...] = ()
    identifiers: tuple[str, ...] = ()
    priority: str = ""
    start: Literal["head", "tail"] = "tail"
    fields: tuple[str, ...] = ()

    def check(self) -> Iterator[tuple[str, str]]:
        if self.priority:
            try:
                severity_number(self.priority)
            except ValueError as e:
                yield "priority", str(e)
        for key, values in (("units", self.units), ("identifiers", self.identifiers)):
            for i, value in enumerate(values):
                if not value or "=" in value or any(c.isspace() for c in value):
                    yield f"{key}[{i}]", f"invalid name {quoted(value)}"
        for i, name in enumerate(self.fields):
            if not _JOURNAL_FIELD.fullmatch(name):
                yield f"fields[{i}]", f'invalid journal field name {quoted(name)}; expected one like "MESSAGE_ID"'


CheckKind = Literal["systemd_unit", "http", "tcp", "filesystem", "process"]
_CHECK_KINDS: Final = ("systemd_unit", "http", "tcp", "filesystem", "process")
_UNIT: Final = re.compile(r"[A-Za-z0-9:_.\\@-]+\.(service|socket|target|mount|timer|path|swap|device|scope|slice)")


@dataclass(frozen=True, slots=True)
class CheckConfig:
    """One `[[check]]`, Monit style: what it watches is the one kind key set (`systemd_unit`, `http`, `tcp`,
    `filesystem`, or `process` and/or `pidfile`); its results are the samples `check.<name>.<metric>`.

    `timeout` bounds one run and is at most `interval`, so runs never overlap.  HTTPS is verified
    against the system's CAs, or `ca_file` (a private CA, or a self-signed certificate itself);
    `tls_verify = false` accepts any certificate and still reports its days left.  `bus` is the
    D-Bus address of a `systemd_unit` check's manager: "" is the system bus (a user manager's is
    "unix:path=/run/user/UID/bus").
    """

    name: str
    interval: Duration = 30.0
    timeout: Duration = 10.0
    systemd_unit: str = ""
    bus: str = ""
    http: str = ""
    expect_status: int = 0  # 0: any status below 400
    contains: str = ""
    tls_verify: bool = True
    ca_file: FilePath = ""
    tcp: str = ""
    filesystem: FilePath = ""
    process: str = ""
    pidfile: FilePath = ""

    @property
    def kind(self) -> CheckKind:
        if self.systemd_unit:
            return "systemd_unit"
        if self.http:
            return "http"
        if self.tcp:
            return "tcp"
        return "filesystem" if self.filesystem else "process"

    @property
    def target(self) -> str:
        """What the check watches, as the config names it."""
        if self.kind == "process":
            return " ".join(part for part in (self.process, self.pidfile and f"pidfile {self.pidfile}") if part)
        return str(getattr(self, self.kind))

    def check(self) -> Iterator[tuple[str, str]]:  # noqa: PLR0912 - one branch per documented constraint
        if not _NAME.fullmatch(self.name):
            yield "name", f'use only letters, digits, "_" and "-", got {quoted(self.name)}'
        kinds = [k for k in _CHECK_KINDS if getattr(self, k) or (k == "process" and self.pidfile)]
        if len(kinds) != 1:
            what = f"one of {', '.join(_CHECK_KINDS)} (or pidfile)"
            if kinds:
                yield kinds[1], f"a check watches one thing: {kinds[0]} is set already"
            else:
                yield "", f"a check needs what it watches: {what}"
            return
        if self.interval < 1:
            yield "interval", "must be at least 1s"
        if not 0 < self.timeout <= self.interval:
            yield "timeout", f"must be more than 0s and at most the interval ({self.interval:g}s)"
        kind = self.kind
        for key in ("expect_status", "contains", "ca_file"):
            if getattr(self, key) and kind != "http":
                yield key, "only used with http"
        if not self.tls_verify and kind != "http":
            yield "tls_verify", "only used with http"
        if self.bus and kind != "systemd_unit":
            yield "bus", "only used with systemd_unit"
        if kind == "systemd_unit":
            if not _UNIT.fullmatch(self.systemd_unit):
                yield "systemd_unit", f'expected a unit name like "apache2.service", got {quoted(self.systemd_unit)}'
            if self.bus and not self.bus.startswith("unix:"):
                yield "bus", f'expected a D-Bus address like "unix:path=/run/user/1000/bus", got {quoted(self.bus)}'
        elif kind == "http":
            if not re.match(r"https?://[^/\s]+", self.http):
                yield "http", f"expected an http:// or https:// URL, got {quoted(self.http)}"
            if self.expect_status and not 100 <= self.expect_status <= 599:
                yield "expect_status", f"expected an HTTP status 100-599 (or 0: below 400), got {self.expect_status}"
            if self.ca_file:
                if not self.tls_verify:
                    yield "ca_file", "tls_verify = false accepts any certificate: drop one of them"
                yield from _ca_file_errors("ca_file", self.ca_file)
        elif kind == "tcp":
            try:
                split_address(self.tcp)
            except ValueError as e:
                yield "tcp", str(e)
        elif kind == "process" and self.process and ("/" in self.process or len(self.process) > 255):
            yield "process", f'expected a program name like "sshd" (no path), got {quoted(self.process)}'


@dataclass(frozen=True, slots=True)
class AlertActionConfig:
    """A corrective action, Monit style: an argv (never a shell line) with a timeout and a cooldown.

    With `verify`, the rule's actions are steps tried in turn: each must see the
    incident clear within `verify` of its exit, else it is run again (up to
    `attempts`) or the next step runs; when the last one failed the incident escalates."""

    argv: tuple[str, ...]
    timeout: Duration = 30.0
    cooldown: Duration = 600.0
    max_per_hour: int = 6
    on_resolved: bool = False
    kill_grace: Duration = 5.0
    verify: Duration = 0.0
    attempts: int = 1

    def check(self) -> Iterator[tuple[str, str]]:
        if not self.argv:
            yield "argv", 'must name a program, like ["/usr/bin/systemctl", "restart", "apache2"]'
        elif not os.path.isabs(self.argv[0]):
            yield "argv", f"the program must be an absolute path (no PATH search): {quoted(self.argv[0])}"
        if self.timeout <= 0:
            yield "timeout", "must be more than 0s"
        if self.max_per_hour < 1:
            yield "max_per_hour", f"must be at least 1, got {self.max_per_hour}"
        if self.verify < 0:
            yield "verify", "must be 0s (not verified) or more"
        if not 1 <= self.attempts <= 100:
            yield "attempts", f"expected 1-100, got {self.attempts}"
        if self.attempts > 1 and not self.verify:
            yield "attempts", "only for verified steps (with `verify`)"
        if self.verify and self.on_resolved:
            yield "on_resolved", "a verified step runs on firing, to clear the incident"


@dataclass(frozen=True, slots=True)
class AnomalyConfig:
    """`anomaly = { season = "1d" }` of a rule: rrdtool's Holt-Winters prediction of the metric over a season,
    abnormal when `failures` of the last `window` values leave the confidence band (rrdtool's defaults)."""

    season: Duration
    failures: int = 7
    window: int = 9

    def check(self) -> Iterator[tuple[str, str]]:
        if self.season < 60:
            yield "season", "must be at least 1m"
        if not 1 <= self.window <= HW_WINDOW_MAX:
            yield "window", f"must be from 1 to {HW_WINDOW_MAX} (rrdtool's limit), got {self.window}"
        if not 1 <= self.failures <= self.window:
            yield "failures", f"must be from 1 to `window` ({self.window}), got {self.failures}"


HW_WINDOW_MAX: Final = 28
FORECAST_HORIZON_MAX: Final = 365 * 86400.0  # mepd.analysis.forecast.HORIZON: no crossing is sought further


@dataclass(frozen=True, slots=True)
class AlertRuleConfig:
    """One rule: a metric threshold (`metric` + `above`/`below`), a log pattern, or an absence (`absent`)."""

    name: str
    severity: IncidentSeverity = "warning"
    labels: dict[str, str] = field(default_factory=dict, hash=False)  # hash=False: configs stay hashable
    summary: str = ""
    metric: str = ""
    above: float | None = None
    below: float | None = None
    clear_above: float | None = None
    clear_below: float | None = None
    for_: Duration = field(default=0.0, metadata={"key": "for"})
    samples: int = 1
    pattern: str = ""
    host: str = ""
    app: str = ""
    source: str = ""
    log_severity: str = ""
    count: int = 1
    window: Duration = 300.0
    distinct: str = ""  # a record field: `count` distinct values of it within `window`, not `count` lines
    attach: int = 10
    absent: Duration = 0.0
    per: tuple[str, ...] = ()
    action: tuple[AlertActionConfig, ...] = ()
    forecast: Duration = 0.0  # a horizon: fires when the metric's trend crosses `above` sooner than this
    anomaly: AnomalyConfig | None = None
    escalate_severity: IncidentSeverity | Literal[""] = ""  # "": one level up when the last verified step failed
    flap_threshold: int = 3  # fire-then-resolve cycles within flap_window; more makes the incident flapping
    flap_window: Duration = 3600.0
    flap_actions: bool = False  # run actions while flapping too
    parent: str = ""  # a metric key saying the path to this rule's series is up: 0 suppresses its incidents

    @property
    def steps(self) -> bool:
        """The actions are verified steps, tried in turn (else each runs on every firing)."""
        return any(a.verify for a in self.action)

    @property
    def kind(self) -> Literal["metric", "log", "absence"]:
        if self.absent > 0:
            return "absence"
        return "log" if self.pattern else "metric"

    @property
    def series_labels(self) -> tuple[str, ...]:
        """The labels that tell one incident of this rule from another."""
        if self.kind == "metric":
            return ("key",)
        return self.per

    def check(self) -> Iterator[tuple[str, str]]:  # noqa: PLR0912, PLR0915 - one branch per documented constraint
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            yield "name", f'expected letters, digits, "_", "." or "-" (MQTT topics use it), got {quoted(self.name)}'
        globs = {"metric": self.metric, "host": self.host, "app": self.app, "source": self.source}
        for key, glob in globs.items():
            if glob and (err := glob_error(glob)):
                yield key, err
        if self.pattern:
            try:
                compile_regex(self.pattern)
            except ValueError as e:
                yield "pattern", f"invalid regular expression (RE2 syntax): {e}"
        if self.log_severity:
            try:
                severity_number(self.log_severity)
            except ValueError as e:
                yield "log_severity", str(e)
        for name in self.labels:
            if not LABEL_NAME.fullmatch(name):
                yield f"labels.{name}", 'label names are letters, digits and "_", not starting with a digit'
        kind = self.kind
        is_log = bool(self.pattern or self.host or self.app or self.source or self.log_severity)
        if kind == "metric" and not self.metric:
            yield "metric", "a rule needs `metric` with `above` or `below`, a `pattern`, or `absent`"
        elif kind == "metric" and self.anomaly is None and (self.above is None) == (self.below is None):
            yield "above", "a metric rule needs exactly one of `above` and `below`"
        elif kind == "metric" and is_log:
            yield "metric", "a metric rule takes no log filters (pattern, host, app, source, log_severity)"
        if kind != "metric":
            for key, value in (("above", self.above), ("below", self.below), ("for", self.for_ or None)):
                if value is not None:
                    yield key, f"only for metric threshold rules, not {kind} rules"
        if kind == "log" and self.metric:
            yield "metric", "a log pattern rule cannot also watch a metric"
        if kind == "absence" and self.metric and is_log:
            yield "absent", "watch either a metric glob or log filters, not both"
        if self.clear_below is not None and (self.above is None or self.clear_below > self.above):
            yield "clear_below", "needs `above`, and must not be more than it"
        if self.clear_above is not None and (self.below is None or self.clear_above < self.below):
            yield "clear_above", "needs `below`, and must not be less than it"
        if self.samples < 1:
            yield "samples", f"must be at least 1, got {self.samples}"
        if self.count < 1:
            yield "count", f"must be at least 1, got {self.count}"
        if self.window <= 0:
            yield "window", "must be more than 0s"
        if self.attach < 0:
            yield "attach", f"must be 0 or more, got {self.attach}"
        yield from self._distinct_errors(kind)
        yield from self._prediction_errors(kind)
        if self.steps:
            for i, a in enumerate(self.action):
                if not a.verify:
                    yield f"action[{i}].verify", "either every action of a rule is a verified step, or none is"
        if self.escalate_severity and not self.steps:
            yield "escalate_severity", "only for rules whose actions are verified steps (with `verify`)"
        if self.flap_threshold < 0:
            yield "flap_threshold", f"must be 0 (no flap damping) or more, got {self.flap_threshold}"
        if not 0 < self.flap_window <= 7 * 86400:
            yield "flap_window", "expected more than 0s and at most 7d"
        if self.parent and any(c.isspace() for c in self.parent):
            yield "parent", f"expected a metric key, got {quoted(self.parent)}"
        allowed = () if kind == "metric" else ("key",) if self.metric else ("host", "app", "source")
        for i, name in enumerate(self.per):
            if name not in allowed:
                why = " or ".join(allowed) if allowed else "nothing (they are always per metric key)"
                yield f"per[{i}]", f"{kind} rules on {'metrics' if self.metric else 'logs'} split by {why}"
        fields = (TEMPLATE_FIELDS if kind != "log" else DISTINCT_TEMPLATE_FIELDS if self.distinct
                  else LOG_TEMPLATE_FIELDS)
        if err := template_error(self.summary, (*self.labels, *self.series_labels), fields):
            yield "summary", err

    def _prediction_errors(self, kind: str) -> Iterator[tuple[str, str]]:
        """A forecast rule is a metric rule with `above`; an anomaly rule takes no threshold."""
        if self.forecast and self.anomaly is not None:
            yield "forecast", "a rule is a forecast or an anomaly rule, not both"
        elif (self.forecast or self.anomaly is not None) and (kind != "metric" or not self.metric):
            yield "forecast" if self.forecast else "anomaly", "needs `metric` (and no pattern or absent)"
        elif self.forecast:
            if self.forecast < 0 or self.forecast > FORECAST_HORIZON_MAX:
                yield "forecast", "must be from 0s to 365d (forecasts look a year ahead)"
            for key, value in (("below", self.below), ("clear_above", self.clear_above),
                               ("clear_below", self.clear_below)):
                if value is not None:
                    yield key, "a forecast rule fires when the trend crosses `above`: give that alone"
        elif self.anomaly is not None:
            for key, value in (("above", self.above), ("below", self.below), ("clear_above", self.clear_above),
                               ("clear_below", self.clear_below)):
                if value is not None:
                    yield key, "an anomaly rule fires from rrdtool's FAILURES: it takes no threshold"

    def _distinct_errors(self, kind: str) -> Iterator[tuple[str, str]]:
        if not self.distinct:
            return
        if kind != "log":
            yield "distinct", f"only for log pattern rules, not {kind} rules"
        elif self.distinct not in RECORD_FIELDS:
            yield "distinct", f"unknown record field {quoted(self.distinct)}; known: {', '.join(RECORD_FIELDS)}"
        elif self.distinct in self.per:
            yield "distinct", (f"`per` already splits by {self.distinct}: each series would see one value;"
                               " drop it from `per`")
        if self.count > DISTINCT_MAX:
            yield "count", f"a distinct rule tracks at most {DISTINCT_MAX} values per window: it would never fire"


@dataclass(frozen=True, slots=True)
class MqttNotifyConfig:
    """Topics take {host} (this machine), {rule}, {fingerprint}, {id} and {severity}."""

    host: str
    port: int = 1883
    username: str = ""
    password: str = ""
    tls: bool = False
    ca_file: FilePath = ""
    client_id: str = ""
    topic: str = "mep/{host}/incidents/{rule}"
    state_topic: str = "mep/{host}/incidents/{rule}/{fingerprint}"
    keepalive: int = 60
    timeout: Duration = 10.0
    backoff: Duration = 0.5
    backoff_max: Duration = 60.0

    def check(self) -> Iterator[tuple[str, str]]:
        if not 0 < self.port < 65536:
            yield "port", f"expected 1-65535, got {self.port}"
        fields = {"host": "h", "rule": "r", "fingerprint": "f", "id": "1", "severity": "s"}
        for key, topic in (("topic", self.topic), ("state_topic", self.state_topic)):
            try:
                topic.format_map(fields)
            except (KeyError, ValueError, IndexError) as e:
                yield key, f"bad topic pattern ({type(e).__name__}: {e}); fields: {{{'}, {'.join(fields)}}}"
            if "+" in topic or "#" in topic:
                yield key, "a topic to publish to cannot hold the wildcards + or #"
        if self.topic == self.state_topic:
            yield "state_topic", "must differ from topic"
        if self.ca_file:
            if not self.tls:
                yield "ca_file", "only used with tls = true"
            yield from _ca_file_errors("ca_file", self.ca_file)


@dataclass(frozen=True, slots=True)
class WebhookNotifyConfig:
    url: str
    format: Literal["mepd", "alertmanager"] = "mepd"
    headers: dict[str, str] = field(default_factory=dict, hash=False)
    timeout: Duration = 10.0
    backoff: Duration = 1.0
    backoff_max: Duration = 300.0

    def check(self) -> Iterator[tuple[str, str]]:
        if not re.match(r"https?://[^/\s]+", self.url):
            yield "url", f"expected an http:// or https:// URL, got {quoted(self.url)}"


@dataclass(frozen=True, slots=True)
class AlertNotifyConfig:
    mqtt: MqttNotifyConfig | None = None
    webhook: WebhookNotifyConfig | None = None


@dataclass(frozen=True, slots=True)
class AlertConfig:
    """Alertmanager's grouping and repeat, over incidents kept in their own SQLite file."""

    group_wait: Duration = 30.0
    repeat_interval: Duration = 4 * 3600.0
    group_by: tuple[str, ...] = ("rule",)
    evaluation_interval: Duration = 1.0
    retention: Duration = 90 * 86400.0
    db: str = "incidents.db"
    outbox_max: int = 10_000  # queued notifications per channel; past it the oldest are dropped, counted
    max_incidents_per_rule: int = 1000  # open ones; a rule's fires past it are counted, not recorded
    rule: tuple[AlertRuleConfig, ...] = ()
    notify: AlertNotifyConfig = field(default_factory=AlertNotifyConfig)

    def check(self) -> Iterator[tuple[str, str]]:
        seen: dict[str, int] = {}
        for i, rule in enumerate(self.rule):
            if rule.name in seen:
                yield f"rule[{i}].name", f"duplicate of rule[{seen[rule.name]}] ({quoted(rule.name)})"
            seen[rule.name] = i
        if self.evaluation_interval <= 0:
            yield "evaluation_interval", "must be more than 0s"
        for key, value in (("outbox_max", self.outbox_max), ("max_incidents_per_rule", self.max_incidents_per_rule)):
            if value < 1:
                yield key, f"must be at least 1, got {value}"


def _secret_file_errors(path: str) -> Iterator[str]:
    try:
        st = os.stat(path)
        with open(path, "rb"):
            pass
    except OSError as e:
        yield f"cannot read {path}: {e.strerror}"
        return
    if st.st_mode & 0o077:
        yield f"{path} is readable by others (mode {st.st_mode & 0o777:o}); chmod 600 it"


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """`[http]`: the dashboard.  `listen = ""` turns the server off; `export_dir` alone still exports.

    Every request needs a credential: a user of `basic_auth_file` (lines of `user:password`), the token of
    `token_file`, or, with neither set, the token mepd keeps in state_dir (mepd.web.server).  `/metrics`
    needs one too unless `metrics_auth = false`.  The Host header must be an IP address, localhost, the
    listen host or one of `allowed_hosts` (DNS rebinding).
    """

    listen: str = "127.0.0.1:8080"
    basic_auth_file: FilePath = ""
    token_file: FilePath = ""
    allowed_hosts: tuple[str, ...] = ()
    metrics_auth: bool = True
    tls_cert: FilePath = ""
    tls_key: FilePath = ""
    title: str = "mepd"
    export_dir: FilePath = ""
    export_interval: Duration = 300.0

    def check(self) -> Iterator[tuple[str, str]]:
        if self.listen:
            try:
                split_address(self.listen)
            except ValueError as e:
                yield "listen", str(e)
        for key in ("basic_auth_file", "token_file"):
            path = getattr(self, key)
            yield from ((key, msg) for msg in (_secret_file_errors(path) if path else ()))
        for i, name in enumerate(self.allowed_hosts):
            if not _HOSTNAME.fullmatch(name):
                yield f"allowed_hosts[{i}]", f"expected a host name like monitor.example.org, got {quoted(name)}"
        if bool(self.tls_cert) != bool(self.tls_key):
            yield "tls_cert" if not self.tls_cert else "tls_key", "TLS needs both tls_cert and tls_key"
        yield from _tls_file_errors(("tls_cert", self.tls_cert), ("tls_key", self.tls_key))
        if self.export_interval < 10:
            yield "export_interval", "must be at least 10s"


@dataclass(frozen=True, slots=True)
class ForecastMetricConfig:
    """`[[report.forecast]]`: a metric whose trend is forecast, besides interfaces and file systems."""

    metric: str
    above: float


@dataclass(frozen=True, slots=True)
class ReportConfig:
    """`[report]`: the operations report and capacity forecasts (mepd.web.report).  With `export_dir`, last
    month's report is written there as report-YYYY-MM.html (self-contained) and .json once the month is over.
    Forecasts fit a line to the last `forecast_window` of each interface (against 80 % of its speed), file
    system (90 % used) and `forecast` metric."""

    export_dir: FilePath = ""
    schedule: Literal["monthly"] = "monthly"
    forecast_window: Duration = 30 * 86400.0
    forecast: tuple[ForecastMetricConfig, ...] = ()

    def check(self) -> Iterator[tuple[str, str]]:
        if self.forecast_window < 3600:
            yield "forecast_window", "must be at least 1h"


_NATS_URL: Final = re.compile(r"(nats|tls)://[^/\s]+")
_SUBJECT_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


def default_node() -> str:
    """The host name up to its first dot: a node is one token of a NATS subject (`mepd.logs.<node>`)."""
    name = socket.gethostname().split(".")[0]
    return re.sub(r"[^A-Za-z0-9_-]", "_", name) or "localhost"


@dataclass(frozen=True, slots=True)
class FleetCentralConfig:
    """`[fleet.central]`: this mepd also reads every node's records into its own stores."""

    enabled: bool = False
    consumer: str = "central"  # the durable consumer's name: each central has its own, and a full copy
    batch_size: int = 100  # messages per fetch

    def check(self) -> Iterator[tuple[str, str]]:
        if not _SUBJECT_TOKEN.fullmatch(self.consumer):
            yield "consumer", f"expected letters, digits, _ or - (at most 64), got {quoted(self.consumer)}"
        if self.batch_size < 1:
            yield "batch_size", f"must be at least 1, got {self.batch_size}"


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """`[fleet]`: publish what this node stores to NATS JetStream (mepd.fleet)."""

    servers: tuple[str, ...]
    node: str = ""  # "" = the host name (`default_node`)
    user: str = ""
    password_file: FilePath = ""
    token_file: FilePath = ""
    creds_file: FilePath = ""
    tls_ca: FilePath = ""
    tls_cert: FilePath = ""
    tls_key: FilePath = ""
    replicas: int = 1  # of the streams mepd creates: 3 on a three-server cluster
    publish: tuple[Literal["logs", "incidents"], ...] = ("logs", "incidents")
    batch_size: int = 500  # records per message
    duplicate_window: Duration = 120.0
    max_age: Duration = 7 * 86400.0  # of the streams mepd creates: how long a central may stay away
    timeout: Duration = 5.0  # for one publish acknowledgement or one API request
    central: FleetCentralConfig = field(default_factory=FleetCentralConfig)

    @property
    def node_name(self) -> str:
        return self.node or default_node()

    def check(self) -> Iterator[tuple[str, str]]:  # noqa: PLR0912 - one branch per documented constraint
        if not self.servers:
            yield "servers", 'expected at least one server, like ["nats://10.0.0.5:4222"]'
        for i, url in enumerate(self.servers):
            if not _NATS_URL.fullmatch(url):
                yield f"servers[{i}]", f'expected "nats://host:port" or "tls://host:port", got {quoted(url)}'
        if self.node and not _SUBJECT_TOKEN.fullmatch(self.node):
            yield "node", f"expected letters, digits, _ or - (one NATS subject token), got {quoted(self.node)}"
        methods = [k for k in ("user", "token_file", "creds_file") if getattr(self, k)]
        if len(methods) > 1:
            yield methods[1], f"choose one way to authenticate, not {' and '.join(methods)}"
        if bool(self.user) != bool(self.password_file):
            yield "password_file" if self.user else "user", "user and password_file go together"
        for key in ("password_file", "token_file", "creds_file"):
            path = getattr(self, key)
            yield from ((key, msg) for msg in (_secret_file_errors(path) if path else ()))
        if bool(self.tls_cert) != bool(self.tls_key):
            yield "tls_cert" if not self.tls_cert else "tls_key", "TLS needs both tls_cert and tls_key"
        yield from _tls_file_errors(("tls_cert", self.tls_cert), ("tls_key", self.tls_key))
        if self.tls_ca:
            yield from _ca_file_errors("tls_ca", self.tls_ca)
        if not 1 <= self.replicas <= 5:
            yield "replicas", f"expected 1 to 5 (JetStream's limit), got {self.replicas}"
        if len(set(self.publish)) != len(self.publish):
            yield "publish", "lists a kind twice"
        if self.batch_size < 1:
            yield "batch_size", f"must be at least 1, got {self.batch_size}"
        if self.duplicate_window < 1:
            yield "duplicate_window", "must be at least 1s"
        if self.max_age < self.duplicate_window:
            yield "max_age", "must be at least duplicate_window"
        if self.timeout <= 0:
            yield "timeout", "must be more than 0s"


@dataclass(frozen=True, slots=True)
class BasicAuthConfig:
    user: str
    password_file: FilePath

    def check(self) -> Iterator[tuple[str, str]]:
        yield from (("password_file", msg) for msg in _secret_file_errors(self.password_file))


@dataclass(frozen=True, slots=True)
class RemoteWriteConfig:
    """`[[metrics.remote_write]]`: every stored sample also goes to a Prometheus remote write receiver (mepd.export)."""

    url: str
    basic_auth: BasicAuthConfig | None = None
    bearer_token_file: FilePath = ""
    ca_file: FilePath = ""
    cert: FilePath = ""
    key: FilePath = ""
    insecure_skip_verify: bool = False
    timeout: Duration = 30.0  # for one request
    batch: int = 2000  # samples per request at most
    queue_max: int = 1_000_000  # samples waiting on disk at most; beyond, the oldest are dropped

    def check(self) -> Iterator[tuple[str, str]]:
        if not re.fullmatch(r"https?://[^/\s]+(/\S*)?", self.url):
            yield "url", f"expected an http:// or https:// URL, got {quoted(self.url)}"
        if self.basic_auth is not None and self.bearer_token_file:
            yield "bearer_token_file", "choose basic_auth or bearer_token_file, not both"
        if self.bearer_token_file:
            yield from (("bearer_token_file", msg) for msg in _secret_file_errors(self.bearer_token_file))
        if bool(self.cert) != bool(self.key):
            yield "key" if self.cert else "cert", "a client certificate needs both cert and key"
        yield from _tls_file_errors(("cert", self.cert), ("key", self.key))
        if self.ca_file:
            yield from _ca_file_errors("ca_file", self.ca_file)
        if self.timeout <= 0:
            yield "timeout", "must be positive"
        if self.batch < 1:
            yield "batch", f"must be at least 1, got {self.batch}"
        if self.queue_max < self.batch:
            yield "queue_max", f"must be at least batch ({self.batch}), got {self.queue_max}"


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """`[metrics]`: where stored samples go besides the RRD files."""

    remote_write: tuple[RemoteWriteConfig, ...] = ()

    def check(self) -> Iterator[tuple[str, str]]:
        urls: dict[str, int] = {}
        for i, rw in enumerate(self.remote_write):
            if rw.url in urls:
                yield f"remote_write[{i}].url", f"duplicate of remote_write[{urls[rw.url]}]"
            urls[rw.url] = i


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
