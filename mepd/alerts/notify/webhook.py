"""Webhook: one JSON POST per group notification, in mepd's shape or Alertmanager's.

`format = "alertmanager"` sends Alertmanager's webhook payload (version 4), so
receivers written for it (chat bridges, ticketing) work unchanged.  A 2xx
answer deletes the row; a network error, timeout, 408, 429 or 5xx is retried
with a jittered exponential backoff, in order; any other 4xx means the
receiver will never take it: the row is dropped and the refusal is noted on
the incidents.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Final

import aiohttp

from mepd.alerts.incidents import Batch
from mepd.alerts.notify import jittered, suppressed, wait_wake
from mepd.alerts.store import IncidentStore, OutboxRow, Outgoing
from mepd.config import WebhookNotifyConfig
from mepd.model import Incident, rfc3339
from mepd.pipeline import Counters

log = logging.getLogger(__name__)

RETRY_STATUSES: Final = frozenset({408, 425, 429})
ZERO_TIME: Final = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt for an alert still firing


def _alert(inc: Incident, status: str, children: Sequence[str] = ()) -> dict[str, object]:
    annotations = {"summary": inc.summary}
    if children:
        annotations["suppressed_children"] = f"{len(children)}: {', '.join(children)}"
    if inc.value is not None:
        annotations["value"] = f"{inc.value:g}"
    if inc.lines:
        annotations["lines"] = "\n".join(inc.lines)
    return {
        "status": status,
        "labels": {**inc.labels, "alertname": inc.rule},
        "annotations": annotations,
        "startsAt": rfc3339(inc.started),
        "endsAt": rfc3339(inc.resolved) if inc.resolved is not None else ZERO_TIME,
        "generatorURL": "",
        "fingerprint": inc.fingerprint,
    }


def alertmanager_payload(batch: Batch, receiver: str = "mepd") -> dict[str, object]:
    resolved = [inc for event, inc in batch.changed if event == "resolved"]
    alerts = ([_alert(i, "firing", batch.children.get(i.id, ())) for i in batch.active]
              + [_alert(i, "resolved") for i in resolved])
    label_sets = [{**i.labels, "alertname": i.rule} for i in (*batch.active, *resolved)]
    common = dict(label_sets[0]) if label_sets else {}
    for labels in label_sets[1:]:
        common = {k: v for k, v in common.items() if labels.get(k) == v}
    return {
        "version": "4",
        "groupKey": json.dumps(batch.group, sort_keys=True),
        "truncatedAlerts": 0,
        "status": "firing" if batch.active else "resolved",
        "receiver": receiver,
        "groupLabels": dict(batch.group),
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "",
        "alerts": alerts,
    }


class WebhookChannel:
    name = "webhook"

    def __init__(self, cfg: WebhookNotifyConfig, store: IncidentStore, host: str, counters: Counters) -> None:
        self.cfg = cfg
        self.store = store
        self.host = host
        self.counters = counters
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def render(self, batch: Batch) -> list[Outgoing]:
        if all(event == "acknowledged" for event, _ in batch.changed):
            return []
        if self.cfg.format == "alertmanager":
            body: dict[str, object] = alertmanager_payload(batch, receiver=f"mepd@{self.host}")
        else:
            body = {
                "version": 1,
                "host": self.host,
                "time": rfc3339(batch.now),
                "group": dict(batch.group),
                "status": "firing" if batch.active else "resolved",
                "events": [{"event": event, "incident": inc.to_json(),
                            **({"suppressed_children": suppressed(batch.children[inc.id])}
                               if inc.id in batch.children else {})} for event, inc in batch.changed],
                "incidents": [inc.to_json() for inc in batch.active],
            }
        body["notification"] = uuid.uuid4().hex
        ids = tuple(sorted({inc.id for _, inc in batch.changed}))
        events = sorted({event for event, _ in batch.changed})
        return [Outgoing(self.name, ids, ",".join(events), json.dumps(body, ensure_ascii=False))]

    async def run(self) -> None:
        headers = {"Content-Type": "application/json", **self.cfg.headers}
        timeout = aiohttp.ClientTimeout(total=self.cfg.timeout)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
            while True:
                rows = await self.store.outbox_head(self.name, 100)
                if not rows:
                    await wait_wake(self._wake)
                    continue
                for row in rows:
                    await self._deliver(session, row)

    async def _deliver(self, session: aiohttp.ClientSession, row: OutboxRow) -> None:
        """Until the receiver takes it or refuses it for good; later rows wait, so order holds."""
        delay = self.cfg.backoff
        while True:
            error = await self._post(session, row)
            if error is None:
                await self.store.outbox_done(row, time.time(), {"url": self.cfg.url})
                self.counters.inc("webhook.sent")
                return
            permanent, text = error
            self.counters.inc("webhook.errors")
            await self.store.outbox_failed(row, text, time.time(), drop=permanent)
            if permanent:
                self.counters.inc("webhook.dropped")
                log.error("webhook %s refused notification %d for good: %s", self.cfg.url, row.id, text)
                return
            log.warning("webhook %s: %s; retrying in %.1fs", self.cfg.url, text, delay)
            await asyncio.sleep(jittered(delay))
            delay = min(delay * 2, self.cfg.backoff_max)
            row = OutboxRow(row.id, row.channel, row.created, row.incidents, row.event, row.message, row.attempts + 1)

    async def _post(self, session: aiohttp.ClientSession, row: OutboxRow) -> tuple[bool, str] | None:
        """None when delivered, else (permanent?, why)."""
        try:
            async with session.post(self.cfg.url, data=row.message.encode()) as resp:
                if 200 <= resp.status < 300:
                    return None
                text = f"HTTP {resp.status} {resp.reason or ''}".strip()
                permanent = 400 <= resp.status < 500 and resp.status not in RETRY_STATUSES
                return permanent, text
        except (aiohttp.ClientError, TimeoutError) as e:
            return False, f"{type(e).__name__}: {e}"
