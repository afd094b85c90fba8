"""`model.rfc3339` formats from a cached second: the same text as datetime's isoformat for every time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mepd.model import rfc3339


def reference(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@given(st.one_of(st.floats(min_value=0, max_value=253_402_300_799, allow_nan=False),
                 st.integers(min_value=0, max_value=4_102_444_800).map(lambda s: s + 0.9999995),
                 st.integers(min_value=0, max_value=4_102_444_800).map(lambda s: s + 0.0000005),
                 st.floats(min_value=-1e10, max_value=-1e-9)))
def test_the_same_text_as_datetime(ts: float) -> None:
    assert rfc3339(ts) == reference(ts)


@pytest.mark.parametrize("ts", [0.0, 1.5, 1764979286.383888, 1764979286.9999996, 253_402_300_798.5,
                                253_402_300_799.0])
def test_edges(ts: float) -> None:
    assert rfc3339(ts) == reference(ts)


@pytest.mark.parametrize("ts", [float("nan"), float("inf"), 1e20])
def test_what_datetime_refuses_is_refused(ts: float) -> None:
    with pytest.raises((ValueError, OverflowError, OSError)):
        reference(ts)
    with pytest.raises((ValueError, OverflowError, OSError)):
        rfc3339(ts)
