"""Flap damping against a real broker and webhook receiver: exactly the notifications described."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mepd.model import Sample
from tests.integration.alerts.conftest import (
    Receiver,
    Running,
    StartEngine,
    Subscriber,
    alert_config,
    notify_toml,
    until,
)

KEY = "snmp.sw1.ge-0_0_1.oper_up"


def flap_config(broker_port: int, url: str) -> str:
    return f'''
[alert]
group_wait = "0s"
repeat_interval = "2s"
evaluation_interval = "50ms"
{notify_toml(broker_port, url)}[[alert.rule]]
name = "link-down"
metric = "{KEY}"
below = 1
flap_threshold = 2
flap_window = "6s"
'''


async def history(r: Running, event: str) -> list[dict[str, Any]]:
    out = []
    for inc in await r.engine.list_incidents(include_resolved=True):
        out += [h for h in (await r.engine.show(inc.id))[1] if h["event"] == event]
    return out


def published(sub: Subscriber) -> list[tuple[str, int]]:
    return sub.events()


def hooked(receiver: Receiver) -> list[tuple[str, int]]:
    return [(e["event"], e["incident"]["id"]) for body in receiver.accepted() for e in body["events"]]


async def test_a_flapping_link_is_announced_once_then_once_when_stable(
    tmp_path: Path, broker: Any, subscriber: Subscriber, receiver: Receiver, start_engine: StartEngine,
) -> None:
    r = await start_engine(alert_config(flap_config(broker.port, receiver.url), tmp_path))
    expected: list[tuple[str, int]] = []
    ts = 0.0

    async def link(value: float, event: str | None, iid: int) -> None:
        nonlocal ts
        ts += 30  # a link that goes down and up every 30 s
        await r.pipeline.samples.put(Sample(KEY, ts, value))
        if event is not None:
            expected.append((event, iid))
            await until(lambda: published(subscriber) == expected and hooked(receiver) == expected,
                        f"{event} of incident {iid}")

    for iid in (1, 2):
        await link(0, "firing", iid)
        await link(1, "resolved", iid)
    await link(0, "firing", 3)
    await link(1, "flapping", 3)  # the third cycle within flap_window: more than flap_threshold
    [inc] = await r.engine.list_incidents()
    assert (inc.id, inc.state, inc.flapping is not None) == (3, "firing", True)

    fired = len(await history(r, "fired"))
    await link(0, None, 3)  # fires again while flapping: recorded, not notified, no new incident
    await until(lambda: _more(r, "fired", fired), "the refire on the history")
    await link(1, None, 3)
    await until(lambda: _more(r, "cleared", 1), "the second clear on the history")
    assert [i.id for i in await r.engine.list_incidents()] == [3]

    expected.append(("resolved", 3))  # stable (clear) for flap_window: one notification ends it
    await until(lambda: published(subscriber) == expected and hooked(receiver) == expected,
                "the resolution once stable", limit=30)
    [inc] = [i for i in await r.engine.list_incidents(include_resolved=True) if i.id == 3]
    assert (inc.state, inc.flapping) == ("resolved", None)
    assert [h["stable_for"] for h in await history(r, "resolved") if "stable_for" in h] == [6.0]
    assert published(subscriber) == expected  # no repeat while it flapped, nothing after
    assert r.engine.counters.get("incidents.flapping") == 1


async def _more(r: Running, event: str, than: int) -> bool:
    return len(await history(r, event)) > than
