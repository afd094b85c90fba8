"""What several config sections check alike: addresses, RRA specs, TLS, key and secret files."""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
import tomllib
from collections.abc import Iterator
from typing import Final

from mepd.errors import quoted
from mepd.units import parse_duration

JOURNAL_FIELD: Final = re.compile(r"(?=.{1,64}$)_?[A-Z][A-Z0-9_]*")
HOSTNAME: Final = re.compile(r"(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_-]{1,63})*\.?")


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
    elif not HOSTNAME.fullmatch(host):
        raise ValueError(f"invalid host {quoted(host)} in {quoted(text)}")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"invalid port {quoted(port_text)} in {quoted(text)}; expected 1-65535")
    return host, int(port_text)


NAME: Final = re.compile(r"[A-Za-z0-9_-]+")
OID: Final = re.compile(r"\.?[0-9]+(\.[0-9]+)+")


def parse_rra(spec: str) -> tuple[float, float]:
    """("30m", "2w") style "RESOLUTION:SPAN" -> seconds; ValueError otherwise."""
    res, sep, span = spec.partition(":")
    if not sep:
        raise ValueError(f'expected "RESOLUTION:SPAN" like "30m:2w", got {quoted(spec)}')
    resolution, length = parse_duration(res), parse_duration(span)
    if resolution <= 0 or length < resolution:
        raise ValueError(f"the span must be at least the resolution in {quoted(spec)}")
    return resolution, length


def tls_file_errors(cert: tuple[str, str], key: tuple[str, str]) -> Iterator[tuple[str, str]]:
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


def ca_file_errors(name: str, path: str) -> Iterator[tuple[str, str]]:
    if not os.access(path, os.R_OK):
        yield name, f"cannot read {quoted(path)}"
        return
    try:
        ssl.create_default_context(cafile=path)
    except (ssl.SSLError, OSError) as e:
        yield name, f"no CA certificate in {quoted(path)}: {e}"


def check_keys_file(path: str) -> Iterator[str]:
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


def secret_file_errors(path: str) -> Iterator[str]:
    try:
        st = os.stat(path)
        with open(path, "rb"):
            pass
    except OSError as e:
        yield f"cannot read {path}: {e.strerror}"
        return
    if st.st_mode & 0o077:
        yield f"{path} is readable by others (mode {st.st_mode & 0o777:o}); chmod 600 it"
