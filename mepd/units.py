"""Durations and sizes as users write them in config and on the command line ("5m", "2GiB")."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final

from mepd.errors import quoted

_DURATION_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_SIZE: Final = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?", re.IGNORECASE)
_SIZE_POWERS: Final = {"k": 1, "m": 2, "g": 3, "t": 4}


def parse_duration(text: str) -> float:
    """Seconds from "500ms", "30s", "5m", "1h30m", "2d", "1w"; ValueError otherwise."""
    s = text.strip()
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos == 0 or pos != len(s):
        raise ValueError(f'expected a duration like "5m", got {quoted(text)}')
    return total


def parse_size(text: str) -> int:
    """Bytes from "512", "100MB" (10^6) or "2GiB" (2^30); ValueError otherwise."""
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise ValueError(f'expected a size like "2GiB", got {quoted(text)}')
    number, unit = float(m.group(1)), (m.group(2) or "b").lower()
    if unit == "b":
        return int(number)
    base = 1024 if "i" in unit else 1000
    return int(number * base ** _SIZE_POWERS[unit[0]])


def format_duration(seconds: float) -> str:
    """Compact human form for status output: 3d4h, 5m12s, 0.4s."""
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{int(seconds)}s"
    out, rest = [], int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out.append(f"{rest // size}{unit}")
            rest %= size
        if len(out) == 2:
            break
    return "".join(out)


def parse_time(text: str, now: float) -> float:
    """Epoch seconds from "10m" (that long ago), an RFC 3339 time, or a local "YYYY-MM-DD[ HH:MM[:SS]]"."""
    s = text.strip()
    try:
        return now - parse_duration(s)
    except ValueError:
        pass
    if s in ("now", "today", "yesterday"):
        if s == "now":
            return now
        midnight = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight.timestamp() - (86400 if s == "yesterday" else 0)
    try:
        when = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(
            f'expected a time like "10m" (ago), "2026-11-28T10:00:00Z" or "2026-11-28 10:00", got {quoted(text)}'
        ) from None
    return when.timestamp()
