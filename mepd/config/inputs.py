"""The config of what comes in: syslog listeners, SNMP targets, the host, tailed files, the journal, checks."""

from __future__ import annotations

import os
import re
import socket
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mepd.config.common import (
    JOURNAL_FIELD,
    NAME,
    OID,
    ca_file_errors,
    check_keys_file,
    parse_rra,
    split_address,
    tls_file_errors,
)
from mepd.config.convert import Duration, FilePath, Size
from mepd.config.syntax import (
    glob_error,
)
from mepd.errors import quoted
from mepd.model import severity_number


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
        yield from tls_file_errors(("tls_cert", self.tls_cert), ("tls_key", self.tls_key))
        if self.tls_client_ca:
            yield from ca_file_errors("tls_client_ca", self.tls_client_ca)

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


@dataclass(frozen=True, slots=True)
class SnmpOidConfig:
    """A custom OID polled with the interfaces, like MRTG's custom targets: `snmp.<target>.<name>`."""

    name: str
    oid: str
    kind: Literal["gauge", "counter"] = field(default="gauge", metadata={"key": "type"})
    scale: float = 1.0
    max: float = 0.0

    def check(self) -> Iterator[tuple[str, str]]:
        if not NAME.fullmatch(self.name):
            yield "name", f'use only letters, digits, "_" and "-", got {quoted(self.name)}'
        if not OID.fullmatch(self.oid):
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
        if not NAME.fullmatch(self.name):
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
        file_errors = list(check_keys_file(self.keys_file)) if self.keys_file else []
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
        if self.name and not NAME.fullmatch(self.name):
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
            if not JOURNAL_FIELD.fullmatch(name):
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
        if not NAME.fullmatch(self.name):
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
                yield from ca_file_errors("ca_file", self.ca_file)
        elif kind == "tcp":
            try:
                split_address(self.tcp)
            except ValueError as e:
                yield "tcp", str(e)
        elif kind == "process" and self.process and ("/" in self.process or len(self.process) > 255):
            yield "process", f'expected a program name like "sshd" (no path), got {quoted(self.process)}'
