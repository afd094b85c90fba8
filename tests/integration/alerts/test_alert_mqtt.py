"""MQTT notification against a real mosquitto: lifecycle in order, retained state, broker outage."""

from __future__ import annotations

from pathlib import Path

from mepd.model import Sample
from tests.integration.alerts.conftest import (
    HOST,
    Broker,
    Running,
    StartEngine,
    Subscriber,
    alert_config,
    retained,
    until,
)


def mqtt_config(port: int, extra: str = "") -> str:
    return f'''
[alert]
group_wait = "0s"
evaluation_interval = "50ms"
[[alert.rule]]
name = "uplink"
metric = "snmp.sw1.*.in_bps"
above = 900
clear_below = 800
summary = "{{key}} at {{value:g}} bps"
labels = {{ team = "net" }}
{extra}
[alert.notify.mqtt]
host = "127.0.0.1"
port = {port}
backoff = "50ms"
backoff_max = "200ms"
'''


async def put(r: Running, key: str, ts: float, value: float) -> None:
    await r.pipeline.samples.put(Sample(key, ts, value))


async def test_fire_ack_resolve_in_order_with_retained_state(
    tmp_path: Path, broker: Broker, subscriber: Subscriber, start_engine: StartEngine,
) -> None:
    r = await start_engine(alert_config(mqtt_config(broker.port), tmp_path))
    event_topic = f"mep/{HOST}/incidents/uplink"
    for ts, v in ((1, 500), (2, 950), (3, 850), (4, 910)):  # hovering: one incident thanks to hysteresis
        await put(r, "snmp.sw1.eth0.in_bps", ts, v)
    await until(lambda: subscriber.events() == [("firing", 1)], "the firing event")
    [inc] = await r.engine.list_incidents()
    state_topic = f"{event_topic}/{inc.fingerprint}"
    firing_state = await retained(broker.port, state_topic)
    assert [m.doc["state"] for m in firing_state] == ["firing"]
    assert firing_state[0].doc["labels"] == {"rule": "uplink", "severity": "warning", "team": "net",
                                             "key": "snmp.sw1.eth0.in_bps"}

    await r.engine.acknowledge(inc.id, "looking")
    await until(lambda: len(subscriber.events()) == 2, "the acknowledged event")
    await put(r, "snmp.sw1.eth0.in_bps", 5, 700)
    await until(lambda: len(subscriber.events()) == 3, "the resolved event")
    await until(lambda: len(subscriber.messages) == 6, "the resolved event's state message")

    assert subscriber.events() == [("firing", 1), ("acknowledged", 1), ("resolved", 1)]
    assert [m.topic for m in subscriber.messages] == [event_topic, state_topic] * 3
    docs = [m.doc for m in subscriber.messages]
    assert docs[0]["incident"]["summary"] == "snmp.sw1.eth0.in_bps at 910 bps"  # as of the notification
    assert docs[0]["host"] == HOST
    assert (docs[3]["state"], docs[3]["comment"]) == ("acknowledged", "looking")
    assert docs[4]["incident"]["value"] == 700
    assert docs[5] is None  # the empty retained message that clears the state topic
    assert await retained(broker.port, state_topic) == []
    history = [h["event"] for h in (await r.engine.show(inc.id))[1]]
    assert history.count("notified") == 3
    assert (await r.engine.store.outbox_size()) == {}


async def test_broker_down_then_up_delivers_queued_notifications_once(
    tmp_path: Path, broker: Broker, subscriber: Subscriber, start_engine: StartEngine,
) -> None:
    r = await start_engine(alert_config(mqtt_config(broker.port), tmp_path))
    await put(r, "snmp.sw1.eth0.in_bps", 1, 950)
    await until(lambda: subscriber.events() == [("firing", 1)], "the first firing event")
    mqtt = r.engine.channels[0]
    await until(lambda: mqtt.connected, "mepd to be connected")

    broker.stop()
    await until(lambda: not subscriber.connected.is_set(), "the subscriber to notice the outage")
    await put(r, "snmp.sw1.eth1.in_bps", 2, 990)  # fires while the broker is down
    await put(r, "snmp.sw1.eth0.in_bps", 3, 100)  # resolves while the broker is down
    async def two_queued() -> bool:
        return await queued(r) == 2

    await until(two_queued, "two notifications queued in the outbox")
    # mepd keeps trying meanwhile, with backoff, and nothing is lost:
    await until(lambda: r.engine.counters.get("mqtt.errors") >= 2, "reconnection attempts")
    assert await queued(r) == 2

    broker.start()
    await until(lambda: len(subscriber.events()) == 3, "the queued events after the broker came back")
    await until(lambda: r.engine.counters.get("mqtt.sent") == 3, "every notification sent")
    assert await queued(r) == 0
    assert subscriber.events() == [("firing", 1), ("firing", 2), ("resolved", 1)]
    ids = [m.doc["notification"] for m in subscriber.messages if m.doc and "notification" in m.doc]
    assert len(ids) == len(set(ids)) == 3


async def queued(r: Running) -> int:
    return sum((await r.engine.store.outbox_size()).values())
