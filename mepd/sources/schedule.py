"""The polling sources' cycle: on a fixed grid of the interval, skipping the slots a slow cycle ran past."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import NoReturn

from mepd.pipeline import Counters


async def every(interval: float, cycle: Callable[[], Awaitable[object]], counters: Counters,
                overrun: Callable[[float, int], None]) -> NoReturn:
    """Await `cycle` every `interval` seconds for ever.

    A cycle that ends past its slot skips the slots it missed rather than running
    late ones back to back: they count as `overruns` and `skipped_cycles`, and
    `overrun(took, missed)` is told (to log it).
    """
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while True:
        began = loop.time()
        await cycle()
        next_at += interval
        now = loop.time()
        if now > next_at:
            missed = int((now - next_at) // interval) + 1
            counters.inc("overruns")
            counters.inc("skipped_cycles", missed)
            overrun(now - began, missed)
            next_at += missed * interval
        await asyncio.sleep(next_at - loop.time())
