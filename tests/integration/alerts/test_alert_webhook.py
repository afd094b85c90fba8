"""Webhook notification against a real aiohttp receiver: Alertmanager's payload, retries, refusals."""

from __future__ import annotations

from pathlib import Path

from mepd.model import Sample
from tests.integration.alerts.conftest import Receiver, StartEngine, alert_config, until


def webhook_config(url: str, fmt: str = "alertmanager", group_wait: str = "0s") -> str:
    return f'''
[alert]
group_wait = "{group_wait}"
evaluation_interval = "50ms"
[[alert.rule]]
name = "disk-full"
metric = "df.*.used_ratio"
above = 0.9
severity = "critical"
summary = "{{key}} is {{value:.0%}} full"
[alert.notify.webhook]
url = "{url}"
format = "{fmt}"
backoff = "50ms"
backoff_max = "100ms"
'''


async def test_alertmanager_payload_with_retries_on_500(
    tmp_path: Path, receiver: Receiver, start_engine: StartEngine,
) -> None:
    receiver.statuses = [500, 503]
    r = await start_engine(alert_config(webhook_config(receiver.url), tmp_path))
    await r.pipeline.samples.put(Sample("df.root.used_ratio", 100.0, 0.95))
    await until(lambda: len(receiver.accepted()) == 1, "the firing notification to be accepted")
    assert receiver.answered == [500, 503, 200]
    assert receiver.bodies[0] == receiver.bodies[2]  # the same notification, retried
    body = receiver.accepted()[0]
    assert {k: body[k] for k in ("version", "status", "groupLabels", "receiver")} == {
        "version": "4", "status": "firing", "groupLabels": {"rule": "disk-full"}, "receiver": "mepd@testhost"}
    [alert] = body["alerts"]
    assert alert["status"] == "firing"
    assert alert["labels"] == {"alertname": "disk-full", "rule": "disk-full", "severity": "critical",
                               "key": "df.root.used_ratio"}
    assert alert["annotations"]["summary"] == "df.root.used_ratio is 95% full"
    assert (alert["startsAt"], alert["endsAt"]) == ("1970-01-01T00:01:40.000000Z", "0001-01-01T00:00:00Z")
    assert body["commonLabels"] == alert["labels"]

    await r.pipeline.samples.put(Sample("df.root.used_ratio", 200.0, 0.5))
    await until(lambda: len(receiver.accepted()) == 2, "the resolved notification")
    resolved = receiver.accepted()[1]
    assert resolved["status"] == "resolved"
    assert [(a["status"], a["endsAt"]) for a in resolved["alerts"]] == [("resolved", "1970-01-01T00:03:20.000000Z")]
    [inc] = await r.engine.list_incidents(include_resolved=True)
    notified = [h for h in (await r.engine.show(inc.id))[1] if h["event"] == "notified"]
    assert [(h["state"], h["attempts"]) for h in notified] == [("firing", 3), ("resolved", 1)]


async def test_group_wait_sends_one_post_for_a_burst(
    tmp_path: Path, receiver: Receiver, start_engine: StartEngine,
) -> None:
    r = await start_engine(alert_config(webhook_config(receiver.url, "mepd", group_wait="300ms"), tmp_path))
    for disk in ("root", "var", "home"):
        await r.pipeline.samples.put(Sample(f"df.{disk}.used_ratio", 1.0, 0.99))
    await until(receiver.accepted, "the grouped notification")
    [body] = receiver.bodies
    assert body["version"] == 1
    assert sorted(e["incident"]["labels"]["key"] for e in body["events"]) == [
        "df.home.used_ratio", "df.root.used_ratio", "df.var.used_ratio"]
    assert {e["event"] for e in body["events"]} == {"firing"}


async def test_a_4xx_refusal_is_dropped_and_noted(
    tmp_path: Path, receiver: Receiver, start_engine: StartEngine,
) -> None:
    receiver.statuses = [400]
    r = await start_engine(alert_config(webhook_config(receiver.url), tmp_path))
    await r.pipeline.samples.put(Sample("df.root.used_ratio", 1.0, 0.99))
    await until(lambda: r.engine.counters.get("webhook.dropped") == 1, "the refusal")
    [inc] = await r.engine.list_incidents()
    failed = [h for h in (await r.engine.show(inc.id))[1] if h["event"] == "notify_failed"]
    assert [(h["channel"], h["error"]) for h in failed] == [("webhook", "HTTP 400 Bad Request")]
    assert receiver.answered == [400]
