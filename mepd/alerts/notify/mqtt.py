"""MQTT: an event per incident state change, and a retained state topic per open incident.

Every change publishes a JSON event on `topic` (not retained) and the incident
itself, retained, on `state_topic`, so a dashboard subscribing late sees what
is open now; a resolution publishes an empty retained message there, which is
how MQTT deletes a retained message.  QoS 1: a row leaves the outbox once the
broker's PUBACK came back.  While the broker is away the rows wait, and the
client reconnects with a jittered exponential backoff.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
import uuid

import aiomqtt

from mepd.alerts.incidents import Batch
from mepd.alerts.notify import jittered, suppressed, wait_wake
from mepd.alerts.store import IncidentStore, OutboxRow, Outgoing
from mepd.config import MqttNotifyConfig
from mepd.model import Incident, rfc3339
from mepd.pipeline import Counters

log = logging.getLogger(__name__)


class MqttChannel:
    name = "mqtt"

    def __init__(self, cfg: MqttNotifyConfig, store: IncidentStore, host: str, counters: Counters) -> None:
        self.cfg = cfg
        self.store = store
        self.host = host
        self.counters = counters
        self.connected = False
        self.last_error = ""
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def topics(self, inc: Incident) -> tuple[str, str]:
        fields = {"host": self.host, "rule": inc.rule, "fingerprint": inc.fingerprint, "id": inc.id,
                  "severity": inc.severity}
        return self.cfg.topic.format_map(fields), self.cfg.state_topic.format_map(fields)

    def render(self, batch: Batch) -> list[Outgoing]:
        """One row per incident change: its event, then its retained state (not for repeats)."""
        out = []
        for event, inc in batch.changed:
            topic, state_topic = self.topics(inc)
            doc = {"notification": uuid.uuid4().hex, "event": event, "host": self.host, "time": rfc3339(batch.now),
                   "incident": inc.to_json()}
            if inc.id in batch.children:
                doc["suppressed_children"] = suppressed(batch.children[inc.id])
            messages = [{"topic": topic, "payload": json.dumps(doc, ensure_ascii=False), "retain": False}]
            if event != "repeat":
                state = "" if event == "resolved" else json.dumps(inc.to_json(), ensure_ascii=False)
                messages.append({"topic": state_topic, "payload": state, "retain": True})
            out.append(Outgoing(self.name, (inc.id,), event, json.dumps(messages)))
        return out

    def _client(self) -> aiomqtt.Client:
        cfg = self.cfg
        tls = ssl.create_default_context(cafile=cfg.ca_file or None) if cfg.tls else None
        return aiomqtt.Client(
            cfg.host, cfg.port, username=cfg.username or None, password=cfg.password or None,
            identifier=cfg.client_id or f"mepd-{self.host}", keepalive=cfg.keepalive, timeout=cfg.timeout,
            tls_context=tls,
        )

    async def run(self) -> None:
        """Connect, drain the outbox, repeat; never raises for a broker problem."""
        delay = self.cfg.backoff
        while True:
            try:
                async with self._client() as client:
                    self.connected = True
                    self.counters.inc("mqtt.connects")
                    log.info("mqtt: connected to %s:%d", self.cfg.host, self.cfg.port)
                    delay = self.cfg.backoff
                    self.last_error = ""
                    await self._drain(client)
            except (aiomqtt.MqttError, OSError, ssl.SSLError) as e:  # a CA file gone since the start: retried too
                self.counters.inc("mqtt.errors")
                if self.connected:
                    log.warning("mqtt: lost %s:%d (%s); queued notifications wait", self.cfg.host, self.cfg.port, e)
                elif str(e) != self.last_error:  # a wrong CA or password must show, once, not every retry
                    log.warning("mqtt: cannot connect to %s:%d: %s; notifications wait, retrying",
                                self.cfg.host, self.cfg.port, e)
                else:
                    log.debug("mqtt: cannot connect to %s:%d: %s", self.cfg.host, self.cfg.port, e)
                self.last_error = str(e)
            finally:
                self.connected = False
            await asyncio.sleep(jittered(delay))
            delay = min(delay * 2, self.cfg.backoff_max)

    async def _drain(self, client: aiomqtt.Client) -> None:
        while True:
            rows = await self.store.outbox_head(self.name, 100)
            if not rows:
                await wait_wake(self._wake)
                continue
            for row in rows:
                await self._send(client, row)

    async def _send(self, client: aiomqtt.Client, row: OutboxRow) -> None:
        try:
            for m in json.loads(row.message):
                await client.publish(m["topic"], m["payload"].encode(), qos=1, retain=m["retain"],
                                     timeout=self.cfg.timeout)
        except aiomqtt.MqttError as e:
            await self.store.outbox_failed(row, str(e), time.time(), drop=False)
            raise
        await self.store.outbox_done(row, time.time(), {"broker": f"{self.cfg.host}:{self.cfg.port}"})
        self.counters.inc("mqtt.sent")
