"""Hourly web-log aggregates in SQLite: reports from stored hours equal the one-shot analysis of the lines."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC
from pathlib import Path

import pytest

from bench.weblog.genlog import lines as gen_lines
from mepd.analysis.weblog.accesslog import parse_access_line
from mepd.analysis.weblog.aggregate import Aggregate
from mepd.analysis.weblog.report import report_from_aggregate
from mepd.store.weblog import UnknownWebSourceError, WebLogStore

SITE = ("www.example.com",)


def parsed(n: int, seed: int) -> list[tuple[float, dict[str, str] | None]]:
    out: list[tuple[float, dict[str, str] | None]] = []
    for line in gen_lines(n, seed=seed, days=2.0, oddities=True):
        try:
            out.append(parse_access_line(line, "combined"))
        except ValueError:
            out.append((0, None))
    return out


def deltas(records: list[tuple[float, dict[str, str] | None]], every: int) -> Iterator[list[tuple[int, Aggregate]]]:
    """What the live analyser flushes: per-hour aggregates, a batch every `every` records."""
    pending: dict[int, Aggregate] = {}
    last_ts = 0.0
    for i, (when, fields) in enumerate(records):
        ts = when if fields else last_ts
        last_ts = ts
        agg = pending.setdefault(int(ts) // 3600 * 3600, Aggregate("combined", SITE))
        if fields is None:
            agg.add_rejected()
        else:
            agg.add_fields(ts, fields)
        if (i + 1) % every == 0:
            for a in pending.values():
                a.settle()
            yield sorted(pending.items())
            pending = {}
    for a in pending.values():
        a.settle()
    yield sorted(pending.items())


def one_shot(records: list[tuple[float, dict[str, str] | None]], lo: float = 0, hi: float = 2**62) -> Aggregate:
    agg = Aggregate("combined", SITE)
    last_ts = 0.0
    for when, fields in records:
        ts = when if fields else last_ts
        last_ts = ts
        if not lo <= int(ts) // 3600 * 3600 < hi:
            continue
        if fields is None:
            agg.add_rejected()
        else:
            agg.add_fields(ts, fields)
    agg.settle()
    return agg


@pytest.fixture(scope="module")
def records() -> list[tuple[float, dict[str, str] | None]]:
    return parsed(8_000, seed=3)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[WebLogStore]:
    s = WebLogStore(str(tmp_path / "weblog.db"))
    await s.open()
    yield s
    await s.close()


def same_report(stored: dict[str, object], expected: dict[str, object]) -> None:
    for key in ("summary", "status", "methods", "protocols", "series"):
        assert stored[key] == expected[key], key
    top_s, top_e = stored["top"], expected["top"]
    assert isinstance(top_s, dict)
    assert isinstance(top_e, dict)
    for dim, section in top_e.items():
        assert top_s[dim] == section, dim


async def test_stored_hours_report_like_the_one_shot(store: WebLogStore, records: list[
        tuple[float, dict[str, str] | None]]) -> None:
    for batch in deltas(records, every=700):
        await store.add("web", batch)
    stored = await store.report("web", top=7, tz=UTC)
    expected = report_from_aggregate(one_shot(records), "web", top=7, tz=UTC)
    assert stored["source"] == "web"
    summary = stored["summary"]
    assert isinstance(summary, dict)
    assert summary["requests"] == sum(1 for _, f in records if f)
    assert summary["unparsed_lines"] == sum(1 for _, f in records if f is None) > 0
    same_report(stored, expected)
    assert await store.sources() == [{"name": "web", "first_hour": min(int(t) // 3600 * 3600 for t, f in records if f),
                                      "last_hour": max(int(t) // 3600 * 3600 for t, f in records if f),
                                      "requests": summary["requests"]}]


async def test_range_reports_cover_the_hours_they_overlap(store: WebLogStore, records: list[
        tuple[float, dict[str, str] | None]]) -> None:
    for batch in deltas(records, every=2_000):
        await store.add("web", batch)
    start = min(t for t, f in records if f)
    lo = int(start) // 3600 * 3600 + 5 * 3600
    hi = lo + 11 * 3600
    stored = await store.report("web", since=lo + 1800, until=hi, top=5, tz=UTC)
    expected = report_from_aggregate(one_shot(records, lo, hi), "web", top=5, tz=UTC)
    same_report(stored, expected)
    assert stored["since"] is not None


async def test_folded_hours_state_their_error_bound(tmp_path: Path, records: list[
        tuple[float, dict[str, str] | None]]) -> None:
    store = WebLogStore(str(tmp_path / "small.db"), keep=5)
    await store.open()
    try:
        for batch in deltas(records, every=300):
            await store.add("web", batch)
        report = await store.report("web", top=5)
    finally:
        await store.close()
    truth: Counter[str] = Counter(f["path"] for _, f in records if f)
    clients = {f["client"] for _, f in records if f}
    top = report["top"]
    assert isinstance(top, dict)
    paths = top["path"]
    assert not paths["exact"]
    bound = paths["max_error"]["requests"]
    assert bound > 0
    for row in paths["rows"]:
        assert truth[row["key"]] - bound <= row["requests"] <= truth[row["key"]]
    assert sum(r["requests"] for r in paths["rows"]) + paths["others"]["requests"] == sum(truth.values())
    summary = report["summary"]
    assert isinstance(summary, dict)
    assert summary["requests"] == sum(truth.values())
    assert summary["clients_exact"] is False
    assert abs(summary["clients"] - len(clients)) <= 0.05 * len(clients)
    status = report["status"]
    assert isinstance(status, dict)
    assert {r["key"]: r["requests"] for r in status["codes"]} == Counter(f["status"] for _, f in records if f)


async def test_persists_across_reopen_and_prunes(tmp_path: Path, records: list[
        tuple[float, dict[str, str] | None]]) -> None:
    path = str(tmp_path / "w.db")
    store = WebLogStore(path)
    await store.open()
    for batch in deltas(records, every=5_000):
        await store.add("web", batch)
    before = await store.report("web", tz=UTC)
    await store.close()
    store = WebLogStore(path)
    await store.open()
    try:
        assert await store.report("web", tz=UTC) == before
        first = min(int(t) // 3600 * 3600 for t, f in records if f)
        assert await store.prune(first + 3600) == 1
        after = await store.report("web", tz=UTC)
        summary, old = after["summary"], before["summary"]
        assert isinstance(summary, dict)
        assert isinstance(old, dict)
        assert summary["requests"] == old["requests"] - sum(
            1 for t, f in records if f and int(t) // 3600 * 3600 == first)
        with pytest.raises(UnknownWebSourceError):
            await store.report("nope")
    finally:
        await store.close()
