"""A sink stopped while it lingers for a fuller batch must stop, even if an item arrives at that moment."""

from __future__ import annotations

import asyncio

import pytest

from mepd.pipeline import Subscription


async def test_cancel_landing_with_an_item_is_not_swallowed() -> None:
    sub: Subscription[int] = Subscription("s", 10)
    sub.push_many([1])
    task = asyncio.create_task(sub.get_batch(5, 5.0))
    for _ in range(3):  # let it reach the linger wait (scheduling steps, not time)
        await asyncio.sleep(0)
    sub.push_many([2])
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
