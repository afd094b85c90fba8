"""rrdtool graphs for the dashboard, cached per (keys, period, format, size, marks).

A graph is drawn again only when one of its RRD files changed: its mtime, or
the newest sample the store wrote for its keys (with rrdcached the file on
disk lags behind; the store's own record of what it wrote does not).  Drawing
runs on the RRD store's worker thread, never on the event loop, and two
requests for the same stale graph share one drawing.
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, get_args

from mepd.store.rrd.marks import Mark
from mepd.store.rrd.store import ImageFormat, Period, RrdError, RrdStore

Size = Literal["full", "mini"]
SIZES: Final[dict[Size, tuple[int, int]]] = {"full": (700, 270), "mini": (300, 90)}
PERIOD_NAMES: Final[tuple[Period, ...]] = get_args(Period)
TREND: Final = "trend"  # an interface's forecast graph (mepd.web.dashboard), not a period's
FORMATS: Final[tuple[ImageFormat, ...]] = get_args(ImageFormat)
CONTENT_TYPES: Final = {"png": "image/png", "svg": "image/svg+xml"}
MAX_ENTRIES: Final = 1024

Version = tuple[tuple[int, float], ...]


@dataclass(frozen=True, slots=True)
class GraphSpec:
    """What is drawn: the keys (an interface's in and out), the period, the format and the size, and the
    events marked on it (part of the cache key: a new event draws the graph again)."""

    keys: tuple[str, ...]
    period: Period
    fmt: ImageFormat = "png"
    size: Size = "full"
    title: str = ""
    marks: tuple[Mark, ...] = ()


class GraphCache:
    """Draws through `RrdStore.graph`; keeps at most MAX_ENTRIES images, least recently used out first."""

    def __init__(self, store: RrdStore, max_entries: int = MAX_ENTRIES) -> None:
        self.store = store
        self.max_entries = max_entries
        self.drawn = 0
        self._images: OrderedDict[GraphSpec, tuple[Version, bytes]] = OrderedDict()
        self._pending: dict[GraphSpec, asyncio.Future[bytes]] = {}

    def version(self, keys: Sequence[str]) -> Version:
        """What tells a changed RRD: each file's mtime and the newest sample written for its key."""
        out = []
        for key in keys:
            try:
                mtime = os.stat(self.store.read_location(key).path).st_mtime_ns
            except (OSError, ValueError):
                raise RrdError(f"no metric {key!r}") from None
            latest = self.store.latest.get(key)
            out.append((mtime, latest.ts if latest is not None else 0.0))
        return tuple(out)

    async def get(self, spec: GraphSpec) -> bytes:
        version = self.version(spec.keys)
        cached = self._images.get(spec)
        if cached is not None and cached[0] == version:
            self._images.move_to_end(spec)
            return cached[1]
        pending = self._pending.get(spec)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[spec] = future
        try:
            image = await self.store.graph(spec.keys, spec.period, spec.fmt, spec.title, size=SIZES[spec.size],
                                           legend=spec.size == "full", marks=spec.marks)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as e:
            future.set_exception(e)
            future.exception()  # marked retrieved: the waiters re-raise it, nobody else needs to
            raise
        finally:
            del self._pending[spec]
        future.set_result(image)
        self.drawn += 1
        self._images[spec] = (version, image)
        self._images.move_to_end(spec)
        while len(self._images) > self.max_entries:
            self._images.popitem(last=False)
        return image
