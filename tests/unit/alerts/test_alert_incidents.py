"""Incident lifecycle and Alertmanager-style grouping on a real SQLite file, with explicit times."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from mepd.alerts import rules
from mepd.alerts.incidents import Batch, Incidents, NotFoundError, StateError
from mepd.alerts.store import IncidentStore, Outgoing
from mepd.config import AlertConfig, AlertRuleConfig
from mepd.config.syntax import parse_matchers
from mepd.model import Sample
from mepd.pipeline import Counters


class Recorder:
    """A channel that keeps the batches it is given and queues one row per batch."""

    name = "test"

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.woken = 0

    def render(self, batch: Batch) -> list[Outgoing]:
        self.batches.append(batch)
        ids = tuple(i.id for _, i in batch.changed)
        return [Outgoing(self.name, ids, "x", json.dumps([[e, i.id] for e, i in batch.changed]))]

    def wake(self) -> None:
        self.woken += 1

    def take(self) -> list[list[tuple[str, str]]]:
        out = [[(e, i.labels["key"]) for e, i in b.changed] for b in self.batches]
        self.batches.clear()
        return out


CFG = AlertConfig(group_wait=30.0, repeat_interval=3600.0,
                  rule=(AlertRuleConfig(name="hot", metric="temp.*", above=50.0),))
Opener = Callable[..., Any]


@pytest_asyncio.fixture
async def opened(tmp_path: Path) -> AsyncIterator[Opener]:
    stores: list[IncidentStore] = []

    async def open_(cfg: AlertConfig = CFG, now: float = 0.0) -> tuple[Incidents, Recorder, dict[str, rules.Rule]]:
        store = IncidentStore(str(tmp_path / "incidents.db"))
        stores.append(store)
        loaded = await store.open(now - 3600)
        incidents = Incidents(store, cfg, Counters())
        incidents.load(loaded.incidents, loaded.next_id, loaded.silences)
        rec = Recorder()
        incidents.channels = [rec]
        return incidents, rec, {r.name: rules.build(r, now) for r in cfg.rule}

    yield open_
    for s in stores:
        await s.close()


async def sample(incidents: Incidents, rs: dict[str, rules.Rule], key: str, ts: float, value: float) -> list[str]:
    changes = [c for r in rs.values() for c in r.observe_sample(Sample(key, ts, value), ts)]
    return [event for event, _ in await incidents.apply(changes, rs, ts)]


async def test_group_wait_collects_then_one_notification(opened: Opener) -> None:
    incidents, rec, rs = await opened()
    assert await sample(incidents, rs, "temp.a", 100, 60) == ["firing"]
    assert await incidents.flush(110) == 0
    assert await sample(incidents, rs, "temp.b", 120, 70) == ["firing"]
    assert await incidents.flush(129) == 0
    assert await incidents.flush(130) == 1
    assert rec.take() == [[("firing", "temp.a"), ("firing", "temp.b")]]
    assert await incidents.flush(131) == 0
    rows = await incidents.store.outbox_head("test", 10)
    assert [r.incidents for r in rows] == [(1, 2)]


async def test_repeat_interval_and_ack_stops_repeats(opened: Opener) -> None:
    incidents, rec, rs = await opened()
    await sample(incidents, rs, "temp.a", 0, 60)
    await incidents.flush(30)
    rec.take()
    assert await incidents.flush(3629) == 0
    assert await incidents.flush(3630) == 1
    assert rec.take() == [[("repeat", "temp.a")]]
    inc = await incidents.acknowledge(1, "on it", 3700)
    assert (inc.state, inc.comment) == ("acknowledged", "on it")
    assert rec.take() == [[("acknowledged", "temp.a")]]  # ack is announced at once, not grouped
    assert await incidents.flush(9000) == 0


async def test_resolution_is_notified_once_and_only_if_firing_was(opened: Opener) -> None:
    incidents, rec, rs = await opened()
    await sample(incidents, rs, "temp.a", 0, 60)
    await sample(incidents, rs, "temp.b", 0, 60)
    await incidents.flush(30)
    rec.take()
    assert await sample(incidents, rs, "temp.a", 40, 10) == ["resolved"]
    await sample(incidents, rs, "temp.c", 41, 60)
    assert await sample(incidents, rs, "temp.c", 42, 10) == ["resolved"]  # gone before group_wait ended
    await incidents.flush(70)
    [batch] = rec.batches
    assert rec.take() == [[("resolved", "temp.a")]]
    assert [i.labels["key"] for i in batch.active] == ["temp.b"]
    assert await incidents.flush(80) == 0


async def test_silence_mutes_notifications_not_incidents(opened: Opener) -> None:
    incidents, rec, rs = await opened()
    silence = await incidents.add_silence(parse_matchers("rule=hot,key=~temp\\.a"), 100.0, "maintenance", 0)
    await sample(incidents, rs, "temp.a", 1, 60)
    await sample(incidents, rs, "temp.b", 1, 60)
    await incidents.flush(40)
    assert rec.take() == [[("firing", "temp.b")]]
    assert {i.labels["key"] for i in incidents.open.values()} == {"temp.a", "temp.b"}
    assert await incidents.flush(99) == 0
    await incidents.flush(100)  # the silence ended: temp.a is news now, after group_wait
    assert await incidents.flush(130) == 1
    assert rec.take() == [[("firing", "temp.a")]]
    assert [s.id for s in incidents.active_silences(50)] == [silence.id]
    assert incidents.active_silences(150) == []


async def test_a_backtracking_silence_regex_against_a_long_label_returns(opened: Opener) -> None:
    """`(a|a)+` takes Python's re 2**n steps on n characters, at every flush; RE2 is linear."""
    incidents, rec, rs = await opened()
    await incidents.add_silence(parse_matchers('key=~"temp\\.(a|a)+"'), 100.0, "", 0)
    key = "temp." + "a" * 64 + "b"
    await sample(incidents, rs, key, 1, 60)
    await incidents.flush(40)
    assert rec.take() == [[("firing", key)]]


async def test_silence_length_is_capped_by_the_engine(opened: Opener) -> None:
    incidents, _, _ = await opened()
    for days in (0, 31):
        with pytest.raises(ValueError, match="at most 30d"):
            await incidents.add_silence(parse_matchers("rule=hot"), days * 86400.0, "", 0)
    assert (await incidents.add_silence(parse_matchers("rule=hot"), 30 * 86400.0, "", 0)).ends == 30 * 86400.0


async def test_outbox_keeps_the_newest_rows_up_to_outbox_max(opened: Opener) -> None:
    """A receiver away for long: the oldest queued notifications go, counted, instead of filling the disk."""
    incidents, _, rs = await opened(dataclasses.replace(CFG, group_wait=0.0, outbox_max=2))
    for t, key in enumerate(("temp.a", "temp.b", "temp.c", "temp.d"), start=1):
        await sample(incidents, rs, key, t, 60)
        assert await incidents.flush(t) == 1
    assert await incidents.store.outbox_size() == {"test": 2}
    assert [row.incidents for row in await incidents.store.outbox_head("test", 10)] == [(3,), (4,)]
    assert incidents.counters.get("outbox.dropped.test") == 2


async def test_open_incidents_per_rule_are_capped_and_the_excess_counted(opened: Opener) -> None:
    incidents, _, rs = await opened(dataclasses.replace(CFG, max_incidents_per_rule=2))
    assert incidents.counters.snapshot()["incidents.over_limit"] == 0  # shown before the first one
    fired = [e for t, key in enumerate(("temp.a", "temp.b", "temp.c")) for e in await sample(incidents, rs, key, t, 60)]
    assert fired == ["firing", "firing"]
    assert sorted(i.labels["key"] for i in incidents.open.values()) == ["temp.a", "temp.b"]
    assert incidents.counters.get("incidents.over_limit") == 1
    assert await sample(incidents, rs, "temp.a", 5, 30) == ["resolved"]
    assert await sample(incidents, rs, "temp.d", 6, 60) == ["firing"]  # room again


async def test_expired_silence_by_hand(opened: Opener) -> None:
    incidents, rec, rs = await opened()
    s = await incidents.add_silence(parse_matchers("rule=hot"), 3600.0, "", 0)
    await sample(incidents, rs, "temp.a", 1, 60)
    await incidents.flush(40)
    assert rec.take() == []
    await incidents.expire_silence(s.id, 50)
    await incidents.flush(50)
    await incidents.flush(80)
    assert rec.take() == [[("firing", "temp.a")]]
    with pytest.raises(NotFoundError):
        await incidents.expire_silence(99, 80)


async def test_state_survives_a_restart(opened: Opener) -> None:
    incidents, _, rs = await opened()
    await sample(incidents, rs, "temp.a", 0, 60)
    await sample(incidents, rs, "temp.b", 0, 60)
    await incidents.flush(30)
    await sample(incidents, rs, "temp.b", 40, 10)  # resolved, its resolution not yet sent
    await incidents.add_silence(parse_matchers("key=temp.z"), 1000.0, "", 0)

    again, rec2, _ = await opened(now=50)
    assert [i.labels["key"] for i in again.open.values()] == ["temp.a"]
    assert again.open[rules.fingerprint("hot", {"key": "temp.a"})].notified == "firing"
    assert len(again.silences) == 1
    assert again.next_id == 3
    await again.flush(50)
    await again.flush(80)
    assert rec2.take() == [[("resolved", "temp.b")]]  # and no second "firing" for temp.a
    assert await again.flush(3679) == 0
    assert await again.flush(3680) == 1  # repeat counted from the group's last notification
    assert rec2.take() == [[("repeat", "temp.a")]]


async def test_repeat_clock_survives_a_restart(opened: Opener) -> None:
    incidents, _, rs = await opened()
    await sample(incidents, rs, "temp.a", 0, 60)
    await incidents.flush(30)
    again, rec, _ = await opened(now=1000)
    assert await again.flush(1000) == 0
    assert await again.flush(3629) == 0
    assert await again.flush(3630) == 1
    assert rec.take() == [[("repeat", "temp.a")]]


async def test_ack_and_resolve_by_hand(opened: Opener) -> None:
    incidents, _, rs = await opened()
    await sample(incidents, rs, "temp.a", 0, 60)
    with pytest.raises(NotFoundError):
        await incidents.acknowledge(7, "", 1)
    resolved = await incidents.resolve(1, "fixed the fan", 5)
    assert (resolved.state, resolved.resolved, resolved.comment) == ("resolved", 5, "fixed the fan")
    with pytest.raises(StateError, match="cannot acknowledge incident 1: it is resolved"):
        await incidents.acknowledge(1, "", 6)
    history = await incidents.store.history(1)
    assert [h["event"] for h in history] == ["fired", "resolved"]
    assert history[1]["by"] == "hand"


async def test_updates_keep_one_incident_with_count_and_last_value(opened: Opener) -> None:
    incidents, _, rs = await opened()
    for ts, v in ((0, 60), (10, 70), (20, 55)):
        await sample(incidents, rs, "temp.a", ts, v)
    [inc] = incidents.open.values()
    assert (inc.count, inc.value, inc.started, inc.last_seen) == (3, 55, 0, 20)
    stored = await incidents.store.incident(inc.id)
    assert stored == inc
