from __future__ import annotations

import pytest

from mepd.units import format_duration, parse_duration, parse_size, parse_time


@pytest.mark.parametrize(("text", "seconds"), [
    ("500ms", 0.5), ("30s", 30), ("5m", 300), ("1h30m", 5400), ("2d", 172800), ("1w", 604800), ("1.5h", 5400),
])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "-5m", "5 minutes", "m5", "5m3"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)


@pytest.mark.parametrize(("text", "size"), [
    ("512", 512), ("1KiB", 1024), ("100MB", 10**8), ("2GiB", 2 * 2**30), ("1.5k", 1500), ("64KiB", 65536),
])
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0.4, 42, 312, 3 * 86400 + 4 * 3600 + 5)] == ["0.4s", "42s", "5m12s", "3d4h"]


def test_parse_time() -> None:
    now = 1_800_000_000.0
    assert parse_time("10m", now) == now - 600
    assert parse_time("2026-11-28T10:00:00Z", now) == 1795860000.0
    assert parse_time("now", now) == now
    with pytest.raises(ValueError, match="expected a time"):
        parse_time("last tuesday", now)
