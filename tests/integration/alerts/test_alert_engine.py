"""The engine as a whole: log rules through the pipeline, restart and reload keep open incidents."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from mepd.model import LogRecord, Sample
from tests.integration.alerts.conftest import Receiver, StartEngine, alert_config, until

RULES = '''
[alert]
group_wait = "0s"
evaluation_interval = "50ms"
[[alert.rule]]
name = "hot"
metric = "temp.*"
above = 50
clear_below = 40
[[alert.rule]]
name = "ssh-brute"
pattern = "Failed password for (invalid user )?\\\\w+"
app = "sshd"
count = 3
window = "1h"
attach = 2
per = ["host"]
summary = "{count} failed logins on {host}"
'''


def webhook(url: str) -> str:
    return f'[alert.notify.webhook]\nurl = "{url}"\nbackoff = "50ms"\n'


def sshd(host: str, message: str) -> LogRecord:
    now = time.time()
    return LogRecord(ts=now, received=now, message=message, source="syslog/udp", host=host, app="sshd")


async def test_log_pattern_incident_carries_the_first_lines(
    tmp_path: Path, receiver: Receiver, start_engine: StartEngine,
) -> None:
    r = await start_engine(alert_config(RULES + webhook(receiver.url), tmp_path))
    for i in range(4):
        await r.pipeline.logs.put(sshd("bastion", f"Failed password for root from 192.0.2.{i} port 22"))
    await r.pipeline.logs.put(sshd("other", "Failed password for root from 192.0.2.9 port 22"))
    await r.pipeline.logs.put(sshd("bastion", "Accepted password for alice"))
    await until(lambda: r.engine.counters.get("logs") == 6, "every record evaluated")
    await until(receiver.accepted, "the notification")
    [inc] = await r.engine.list_incidents()
    assert (inc.rule, dict(inc.labels)["host"], inc.count) == ("ssh-brute", "bastion", 4)
    assert inc.summary == "4 failed logins on bastion"
    assert [line.split(" ", 1)[1] for line in inc.lines] == [
        "bastion sshd: Failed password for root from 192.0.2.0 port 22",
        "bastion sshd: Failed password for root from 192.0.2.1 port 22",
    ]
    assert receiver.accepted()[0]["events"][0]["incident"]["lines"] == list(inc.lines)


async def test_lines_read_late_count_where_they_arrived(tmp_path: Path, start_engine: StartEngine) -> None:
    """The test holds incidents.db locked, so the engine runs behind: lines it reads more than `window` after
    they arrived still count (the windows ran on processing time: 1 incident for 11 hosts)."""
    rules = RULES.replace('count = 3\nwindow = "1h"', 'count = 1\nwindow = "1s"')
    r = await start_engine(alert_config(rules, tmp_path))
    logs = r.engine.logs
    assert logs is not None
    lock = sqlite3.connect(r.engine.path, isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        await r.pipeline.logs.put(sshd("host0", "Failed password for root"))
        # Read but not done: the engine waits on the file with host0's incident.
        await until(lambda: not len(logs) and logs.pending, "the engine to block on the locked file")
        for i in range(1, 11):
            await r.pipeline.logs.put(sshd(f"host{i}", "Failed password for root"))
        arrived = time.time()
        await until(lambda: time.time() > arrived + 1.5, "the waiting lines to be older than the window")
        assert r.engine.counters.get("logs") == 0
    finally:
        lock.close()
    await until(lambda: r.engine.counters.get("logs") == 11, "every line evaluated")
    raised = await r.engine.list_incidents(include_resolved=True)
    assert sorted(i.labels["host"] for i in raised) == sorted(f"host{i}" for i in range(11))


async def test_restart_keeps_open_incidents_and_does_not_notify_twice(
    tmp_path: Path, receiver: Receiver, start_engine: StartEngine,
) -> None:
    cfg = alert_config(RULES + webhook(receiver.url), tmp_path)
    first = await start_engine(cfg)
    await first.pipeline.samples.put(Sample("temp.cpu", 1, 90))
    await first.pipeline.samples.put(Sample("temp.gpu", 1, 90))
    await until(lambda: len(receiver.accepted()) == 1, "the firing notification")
    acked = await first.engine.acknowledge(1, "fan ordered")
    await first.stop()

    second = await start_engine(cfg)
    assert [(i.id, i.state, i.comment) for i in await second.engine.list_incidents()] == [
        (2, "firing", None), (1, "acknowledged", "fan ordered")]
    assert second.engine.rules["hot"].firing({"key": "temp.cpu"})
    await second.pipeline.samples.put(Sample("temp.cpu", 2, 45))  # inside the hysteresis band: still open
    await second.pipeline.samples.put(Sample("temp.gpu", 2, 30))
    await until(lambda: len(receiver.accepted()) == 2, "the resolution")
    assert [e["event"] for e in receiver.accepted()[1]["events"]] == ["resolved"]
    by_id = {i.id: i for i in await second.engine.list_incidents(include_resolved=True)}
    assert (by_id[1].state, by_id[1].started, by_id[1].acknowledged) == ("acknowledged", 1, acked.acknowledged)
    assert by_id[2].state == "resolved"
    assert len(by_id) == 2  # no duplicate incident after the restart


async def test_reload_keeps_open_incidents_and_resolves_those_of_removed_rules(
    tmp_path: Path, start_engine: StartEngine,
) -> None:
    r = await start_engine(alert_config(RULES, tmp_path))
    await r.pipeline.samples.put(Sample("temp.cpu", 1, 90))
    for i in range(3):
        await r.pipeline.logs.put(sshd("bastion", f"Failed password for bob {i}"))
    await until(lambda: len(r.engine.incidents.open) == 2, "two open incidents")

    edited = RULES.replace("above = 50\nclear_below = 40", "above = 80\nclear_below = 70")
    edited = edited[:edited.index('[[alert.rule]]\nname = "ssh-brute"')]
    await r.engine.reload(alert_config(edited, tmp_path))
    incidents = {i.rule: i for i in await r.engine.list_incidents(include_resolved=True)}
    assert incidents["hot"].state == "firing"
    assert incidents["ssh-brute"].state == "resolved"
    _, history = await r.engine.show(incidents["ssh-brute"].id)
    assert history[-1]["event"] == "resolved"
    assert history[-1]["by"] == "reload"
    assert "no longer configured" in str(history[-1]["comment"])

    await r.pipeline.samples.put(Sample("temp.cpu", 2, 75))  # the new hysteresis band keeps it open
    await r.pipeline.samples.put(Sample("temp.cpu", 3, 60))
    await until(lambda: not r.engine.incidents.open, "the resolution under the new thresholds")
    [hot] = [i for i in await r.engine.list_incidents(include_resolved=True) if i.rule == "hot"]
    assert (hot.id, hot.value) == (incidents["hot"].id, 60)


async def test_silence_and_resolve_by_hand(tmp_path: Path, receiver: Receiver, start_engine: StartEngine) -> None:
    r = await start_engine(alert_config(RULES + webhook(receiver.url), tmp_path))
    silence = await r.engine.silence("rule=hot,key=~temp\\.(cpu|gpu)", 3600, "maintenance")
    await r.pipeline.samples.put(Sample("temp.cpu", 1, 90))
    await r.pipeline.samples.put(Sample("temp.disk", 1, 90))
    await until(lambda: len(receiver.accepted()) == 1, "the notification of the unsilenced incident")
    assert [e["incident"]["labels"]["key"] for e in receiver.accepted()[0]["events"]] == ["temp.disk"]
    assert len(r.engine.incidents.open) == 2  # silenced, not suppressed
    assert [s.id for s in r.engine.silences()] == [silence.id]

    [cpu] = [i for i in r.engine.incidents.open.values() if i.labels["key"] == "temp.cpu"]
    await r.engine.resolve(cpu.id, "replaced the fan")
    await r.pipeline.samples.put(Sample("temp.cpu", 2, 95))  # still hot: the rule fires anew
    await until(lambda: len(r.engine.incidents.open) == 2, "a new incident for temp.cpu")
    assert {i.id for i in r.engine.incidents.open.values()} == {2, 3}
    await r.engine.unsilence(silence.id)
    assert r.engine.silences() == []
    await until(lambda: len(receiver.accepted()) == 2, "the notification once the silence is lifted")
    assert [e["incident"]["id"] for e in receiver.accepted()[1]["events"]] == [3]
