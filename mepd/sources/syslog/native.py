"""The C speedups of the syslog path (`_speedups.c`), or None for each when they are not in use.

They are not when the extension was not built (no compiler where mepd was installed) or when
MEPD_PURE=1 is in the environment: the pure Python path, which they must match exactly, then runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from datetime import tzinfo

from mepd.model import LogRecord

Datagrams = Callable[[int, memoryview, int, int], tuple[list[tuple[bytes, int, str | None]], int]]
Frames = Callable[[bytes, int, int, list[tuple[bytes, int]]], int]
Slow = Callable[[bytes, float, str, str | None, tzinfo | None, str | None], LogRecord]
ParseMany = Callable[[Iterable[bytes], float, str, str | None, tzinfo | None, str | None, Slow], list[LogRecord]]

datagrams: Datagrams | None = None
frames: Frames | None = None
parse_many: ParseMany | None = None
setup: Callable[..., None] | None = None

if os.environ.get("MEPD_PURE", "") in ("", "0"):
    try:
        from mepd.sources.syslog import _speedups
    except ImportError:
        pass
    else:
        datagrams, frames = _speedups.datagrams, _speedups.frames
        parse_many, setup = _speedups.parse_many, _speedups.setup
