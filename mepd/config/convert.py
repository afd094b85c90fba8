"""Parsed TOML -> typed, frozen dataclasses, driven by their type hints.

Nothing here knows mepd's sections (`mepd.config.inputs`, `alerts`, ...): adding a section is
adding a dataclass.  Every problem is collected (not just the first) and names
the file and the key path, such as ``syslog.listen[1].address``.  List indexes
in key paths count from 0.

Field conventions read by the converter:
- ``Annotated[float, DURATION]``: "5m" style durations, in seconds;
- ``Annotated[int, SIZE]``: "2GiB" style sizes, in bytes;
- ``Annotated[str, PATH]``: a path, resolved against the config file's folder;
- ``Literal[...]``: one of the given strings;
- ``tuple[X, ...]``: a TOML array (of tables, for dataclasses);
- ``field(metadata={"key": "for"})``: the TOML key when it is not a Python name;
- a field named ``file`` is no TOML key: `convert` sets it to the config file's path;
- a ``check()`` method returning ``(subkey, message)`` pairs validates a section as a whole.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeVar, get_args, get_origin

from mepd.errors import ConfigError, ConfigErrors, quoted
from mepd.units import parse_duration, parse_size

DURATION: Final = "duration"
SIZE: Final = "size"
PATH: Final = "path"

Duration = Annotated[float, DURATION]
Size = Annotated[int, SIZE]
FilePath = Annotated[str, PATH]

T = TypeVar("T")


def read(path: str | os.PathLike[str]) -> tuple[str, dict[str, Any]]:
    """The file's absolute path and its parsed TOML; ConfigErrors saying why it cannot be read."""
    file = os.path.abspath(path)
    try:
        with open(file, "rb") as fh:
            return file, tomllib.load(fh)
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


def convert(cls: type[T], data: dict[str, Any], file: str) -> T:
    """`cls` built from the parsed TOML of `file`; ConfigErrors listing every problem."""
    conv = _Converter(file, Path(file).parent)
    obj = conv.build(cls, data, "")
    if conv.errors or obj is None:
        raise ConfigErrors(conv.errors)
    if "file" in _field_names(cls):
        obj = dataclasses.replace(obj, file=file)  # type: ignore[type-var]
    return obj


def convert_key(cls: type[Any], key_path: str, data: dict[str, Any], file: str) -> Any:
    """The value at the dotted `key_path` (through tables, not arrays) of a `cls` table, or its default.

    Only that key is converted and only its own type is checked (no section's `check()` runs), so
    a problem elsewhere in the file, which is the daemon's to report, does not hide it.
    """
    keys = key_path.split(".")
    hint: Any = cls
    value: object = data
    path = ""
    for i, key in enumerate(keys):
        if not isinstance(value, dict):
            raise ConfigErrors([ConfigError(file, path, f"expected a table, got {_describe(value)}")])
        f = _fields(hint)[key]
        path = _join(path, key)
        if key not in value:
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                raise ConfigErrors([ConfigError(file, path, "missing required key")])
            for rest in keys[i + 1:]:
                default = getattr(default, _fields(type(default))[rest].name)
            return default
        hint = typing.get_type_hints(hint, include_extras=True)[f.name]
        value = value[key]
    conv = _Converter(file, Path(file).parent)
    converted = conv.value(hint, value, path)
    if conv.errors:
        raise ConfigErrors(conv.errors)
    return converted


def _fields(cls: type[Any]) -> dict[str, dataclasses.Field[Any]]:
    """The fields TOML can set, by their TOML key."""
    return {f.metadata.get("key", f.name): f for f in dataclasses.fields(cls) if f.init and f.name != "file"}


def _field_names(cls: type[Any]) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


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
        fields = _fields(cls)
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
                choices = " or ".join(quoted(a) for a in args)
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
    """`path.key`; a `check()` names the table itself with the subkey ""."""
    return f"{path}.{key}" if path and key else path or key


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return quoted(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return repr(value)
