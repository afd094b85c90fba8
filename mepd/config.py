"""TOML config file -> typed, frozen config objects.

The sections are plain dataclasses; one generic converter walks them, driven by
their type hints, so adding a section is adding a dataclass.  Every problem is
collected (not just the first) and names the file and the key path, such as
``syslog.listen[1].address``.  List indexes in key paths count from 0.

Field conventions read by the converter:
- ``Annotated[float, DURATION]``: "5m" style durations, in seconds;
- ``Annotated[int, SIZE]``: "2GiB" style sizes, in bytes;
- ``Annotated[str, PATH]``: a path, resolved against the config file's folder;
- ``Literal[...]``: one of the given strings;
- ``tuple[X, ...]``: a TOML array (of tables, for dataclasses);
- ``field(metadata={"key": "for"})``: the TOML key when it is not a Python name;
- a ``check()`` method returning ``(subkey, message)`` pairs validates a section as a whole.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeVar, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mepd.errors import ConfigError, ConfigErrors
from mepd.model import severity_number
from mepd.units import parse_duration, parse_size

DURATION: Final = "duration"
SIZE: Final = "size"
PATH: Final = "path"

Duration = Annotated[float, DURATION]
Size = Annotated[int, SIZE]
FilePath = Annotated[str, PATH]

_JOURNAL_FIELD: Final = re.compile(r"(?=.{1,64}$)_?[A-Z][A-Z0-9_]*")
_HOSTNAME: Final = re.compile(r"(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_-]{1,63})*\.?")


def split_address(text: str) -> tuple[str, int]:
    """("0.0.0.0", 514) from "0.0.0.0:514"; IPv6 hosts go in brackets: "[::1]:514"."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f'expected host:port like "127.0.0.1:514", got {text!r}')
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        ipaddress.IPv6Address(host)
    elif ":" in host:
        raise ValueError(f'an IPv6 host goes in brackets, like "[::1]:514", got {text!r}')
    elif not _HOSTNAME.fullmatch(host):
        raise ValueError(f"invalid host {host!r} in {text!r}")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"invalid port {port_text!r} in {text!r}; expected 1-65535")
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
    flush_interval: Duration = 0.2
    maintenance_interval: Duration = 300.0

    def check(self) -> Iterator[tuple[str, str]]:
        if self.batch_size < 1:
            yield "batch_size", f"must be at least 1, got {self.batch_size}"
        if self.max_size < 1024 * 1024:
            yield "max_size", "must be at least 1MiB"


@dataclass(frozen=True, slots=True)
class RrdStorageConfig:
    dir: str = "rrd"
    rrdcached: str = ""


@dataclass(frozen=True, slots=True)
class StorageConfig:
    logs: LogStorageConfig = field(default_factory=LogStorageConfig)
    rrd: RrdStorageConfig = field(default_factory=RrdStorageConfig)


@dataclass(frozen=True, slots=True)
class SyslogListenConfig:
    proto: Literal["udp", "tcp", "tls", "unix"]
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

    def check(self) -> Iterator[tuple[str, str]]:
        if self.proto == "unix":
            if not os.path.isabs(self.address):
                yield "address", f"a unix socket address is an absolute path, got {self.address!r}"
            elif len(os.fsencode(self.address)) > 107:
                yield "address", "path too long for a Unix socket (107 bytes at most)"
            if not re.fullmatch(r"0?[0-7]{3}", self.socket_mode):
                yield "socket_mode", f"expected an octal mode like \"0666\", got {self.socket_mode!r}"
        else:
            try:
                split_address(self.address)
            except ValueError as e:
                yield "address", str(e)
        if self.timezone:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                yield "timezone", f"unknown time zone {self.timezone!r}; expected a name like 'Europe/Paris'"
        if self.max_message_size < 480:
            yield "max_message_size", "must be at least 480 bytes (RFC 5424's minimum)"
        yield from self._check_tls()

    def _check_tls(self) -> Iterator[tuple[str, str]]:
        tls_keys = {"tls_cert": self.tls_cert, "tls_key": self.tls_key, "tls_client_ca": self.tls_client_ca}
        if self.proto != "tls":
            for key, value in tls_keys.items():
                if value:
                    yield key, 'only used with proto = "tls"'
            return
        for key in ("tls_cert", "tls_key"):
            if not tls_keys[key]:
                yield key, 'required with proto = "tls" (a PEM file)'
        for key, value in tls_keys.items():
            if value and not os.access(value, os.R_OK):
                yield key, f"cannot read {value!r}"

    @property
    def key(self) -> str:
        return f"syslog/{self.proto} {self.address}"

    @property
    def mode(self) -> int:
        return int(self.socket_mode, 8)


@dataclass(frozen=True, slots=True)
class SyslogConfig:
    listen: tuple[SyslogListenConfig, ...] = ()


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
                    yield f"{key}[{i}]", f"invalid name {value!r}"
        for i, name in enumerate(self.fields):
            if not _JOURNAL_FIELD.fullmatch(name):
                yield f"fields[{i}]", f"invalid journal field name {name!r}; expected one like 'MESSAGE_ID'"


@dataclass(frozen=True, slots=True)
class Config:
    file: str = ""
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    syslog: SyslogConfig = field(default_factory=SyslogConfig)
    journal: JournalConfig = field(default_factory=JournalConfig)

    def check(self) -> Iterator[tuple[str, str]]:
        seen: dict[str, int] = {}
        for i, listener in enumerate(self.syslog.listen):
            if listener.key in seen:
                yield f"syslog.listen[{i}].address", f"duplicate of syslog.listen[{seen[listener.key]}]"
            seen[listener.key] = i


T = TypeVar("T")


class _Converter:
    """Builds dataclasses from parsed TOML, collecting every error."""

    def __init__(self, file: str, base_dir: Path) -> None:
        self.file = file
        self.base_dir = base_dir
        self.errors: list[ConfigError] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(ConfigError(self.file, path, message))

    def build(self, cls: type[T], data: object, path: str) -> T | None:
        if not isinstance(data, dict):
            self.error(path, f"expected a table, got {_describe(data)}")
            return None
        hints = typing.get_type_hints(cls, include_extras=True)
        fields = {f.metadata.get("key", f.name): f for f in dataclasses.fields(cls) if f.init and f.name != "file"}  # type: ignore[arg-type]
        for key in data:
            if key not in fields:
                known = ", ".join(sorted(fields))
                self.error(_join(path, key), f"unknown key; known keys here: {known}")
        values: dict[str, Any] = {}
        ok = True
        for key, f in fields.items():
            sub = _join(path, key)
            if key not in data:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    self.error(sub, "missing required key")
                    ok = False
                continue
            before = len(self.errors)
            value = self.value(hints[f.name], data[key], sub)
            if len(self.errors) > before:
                ok = False
            else:
                values[f.name] = value
        if not ok:
            return None
        obj = cls(**values)
        check = getattr(obj, "check", None)
        if check is not None:
            for subkey, message in check():
                self.error(_join(path, subkey), message)
        return obj

    def value(self, hint: Any, data: object, path: str) -> Any:  # noqa: PLR0911 - one branch per kind
        origin, args = get_origin(hint), get_args(hint)
        if origin is Annotated:
            return self.annotated(args[0], args[1], data, path)
        if origin is Literal:
            if data not in args:
                choices = " or ".join(repr(a) for a in args)
                self.error(path, f"expected {choices}, got {_describe(data)}")
            return data
        if origin in (types.UnionType, typing.Union):
            if data is None and type(None) in args:
                return None
            return self.value(next(a for a in args if a is not type(None)), data, path)
        if origin is tuple:
            if not isinstance(data, list):
                self.error(path, f"expected an array, got {_describe(data)}")
                return ()
            return tuple(self.value(args[0], item, f"{path}[{i}]") for i, item in enumerate(data))
        if origin is dict:
            if not isinstance(data, dict):
                self.error(path, f"expected a table, got {_describe(data)}")
                return {}
            return {str(k): self.value(args[1], v, _join(path, str(k))) for k, v in data.items()}
        if dataclasses.is_dataclass(hint):
            return self.build(hint, data, path)  # type: ignore[arg-type]
        return self.scalar(hint, data, path)

    def annotated(self, base: Any, kind: str, data: object, path: str) -> Any:
        if kind == PATH:
            if not isinstance(data, str):
                self.error(path, f"expected a path string, got {_describe(data)}")
                return data
            return os.path.normpath(self.base_dir / data) if data and not os.path.isabs(data) else data
        parse = parse_duration if kind == DURATION else parse_size
        if kind == SIZE and isinstance(data, int) and not isinstance(data, bool) and data >= 0:
            return data
        if not isinstance(data, str):
            example = '"5m"' if kind == DURATION else '"2GiB"'
            self.error(path, f"expected a {kind} like {example}, got {_describe(data)}")
            return data
        try:
            return base(parse(data))
        except ValueError as e:
            self.error(path, str(e))
            return data

    def scalar(self, hint: Any, data: object, path: str) -> Any:
        if hint is float and isinstance(data, int) and not isinstance(data, bool):
            return float(data)
        if hint in (str, int, float, bool) and type(data) is hint:
            return data
        self.error(path, f"expected {_TYPE_NAMES.get(hint, str(hint))}, got {_describe(data)}")
        return data


_TYPE_NAMES: Final = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return repr(value)


def load(path: str | os.PathLike[str]) -> Config:
    """Read and validate a config file; raise ConfigErrors listing every problem."""
    file = os.path.abspath(path)
    try:
        with open(file, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigErrors([ConfigError(file, "", "no such file")]) from None
    except PermissionError:
        raise ConfigErrors([ConfigError(file, "", "permission denied")]) from None
    except IsADirectoryError:
        raise ConfigErrors([ConfigError(file, "", "is a directory, expected a TOML file")]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigErrors([ConfigError(file, "", f"invalid TOML: {e}")]) from None
    except UnicodeDecodeError:
        raise ConfigErrors([ConfigError(file, "", "invalid TOML: not UTF-8")]) from None
    return parse(data, file)


def parse(data: dict[str, Any], file: str) -> Config:
    conv = _Converter(file, Path(file).parent)
    cfg = conv.build(Config, data, "")
    if conv.errors or cfg is None:
        raise ConfigErrors(conv.errors)
    return dataclasses.replace(cfg, file=file)
