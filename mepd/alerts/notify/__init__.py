"""Delivery of queued notifications: each channel renders batches into outbox rows, then drains its rows in order.

A row leaves the outbox only when the receiver acknowledged it (PUBACK, HTTP
2xx), so delivery is at least once; payloads carry a `notification` id for
receivers that want to drop the rare duplicate after a crash mid-send.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Sequence
from typing import Final

IDLE_RECHECK: Final = 30.0


def jittered(delay: float) -> float:
    return delay * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not crypto


async def wait_wake(event: asyncio.Event, recheck: float = IDLE_RECHECK) -> None:
    """Sleep until new rows are queued, or `recheck` seconds as a safety net."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), recheck)
    event.clear()


def suppressed(children: Sequence[str]) -> dict[str, object]:
    """What a parent's notification says of the incidents suppressed behind it."""
    return {"count": len(children), "names": list(children)}
