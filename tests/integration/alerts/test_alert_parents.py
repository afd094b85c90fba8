"""Suppression behind a failed parent, with real snmpd agents polled by real SNMP targets.

core-sw1 is the parent; sw-a, sw-b and sw-d are the same agent under other
target names (behind the same uplink, they go down with it); sw-c is another
agent.  Every target's incident is an absence of its `lo` interface's samples.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import tomllib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mepd import config
from mepd.config import SnmpConfig
from mepd.model import Incident
from mepd.sources.snmp.target import SnmpHub, SnmpTarget
from tests.helpers import wait_for
from tests.integration.alerts.conftest import Receiver, Running, StartEngine, Subscriber, notify_toml, until
from tests.integration.snmp.conftest import COMMUNITY, agent_answers, free_udp_port, stop

CHILDREN = ("sw-a", "sw-b", "sw-d")


class Agent:
    """net-snmp's snmpd on a fixed loopback port; stop() and start() keep the port."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_udp_port()
        (root / "persist").mkdir(parents=True)
        self.conf = root / "snmpd.conf"
        self.conf.write_text(f"[snmp] persistentDir {root / 'persist'}\nagentAddress udp:127.0.0.1:{self.port}\n"
                             f"rocommunity {COMMUNITY} 127.0.0.1\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.root / "snmpd.log").open("ab") as log:
            self.proc = subprocess.Popen(["snmpd", "-f", "-Lo", "-C", "-m", "", "-c", str(self.conf),
                                          "-p", str(self.root / "pid")], stdout=log, stderr=subprocess.STDOUT)
        proc = self.proc
        wait_for(lambda: proc.poll() is not None or agent_answers(self.port), what="snmpd to answer")
        if proc.poll() is not None:
            pytest.fail(f"snmpd exited: {(self.root / 'snmpd.log').read_text()}")

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


@pytest.fixture
def agents() -> Iterator[tuple[Agent, Agent]]:
    """Two agents in a temp dir they can read after dropping to `nobody` (tmp_path is mode 700)."""
    root = Path(tempfile.mkdtemp(prefix="mepd-parents-", dir="/tmp"))
    root.chmod(0o755)
    pair = Agent(root / "uplink"), Agent(root / "other")
    try:
        for a in pair:
            a.start()
        yield pair
    finally:
        for a in pair:
            a.stop()
        shutil.rmtree(root, ignore_errors=True)


def parents_config(base: Path, broker_port: int, url: str, uplink: int, other: int) -> config.Config:
    targets = "".join(
        f'[[snmp.target]]\nname = "{name}"\nhost = "127.0.0.1"\nport = {port}\ninterval = "1s"\ntimeout = "300ms"\n'
        f'retries = 0\ninterfaces = ["lo"]\n{extra}\n'
        for name, port, extra in (("core-sw1", uplink, ""), *((c, uplink, 'depends_on = ["core-sw1"]')
                                                              for c in CHILDREN),
                                  ("sw-c", other, 'depends_on = ["core-sw1"]')))
    text = f'''
{targets}
[alert]
group_wait = "2s"
evaluation_interval = "50ms"
{notify_toml(broker_port, url)}[[alert.rule]]
name = "unreachable"
metric = "snmp.*.lo.oper_up"
absent = "4s"
per = ["key"]
'''
    return config.parse(tomllib.loads(text), str(base / "mepd.toml"))


def target(inc: Incident | dict[str, Any]) -> str:
    labels = inc.labels if isinstance(inc, Incident) else inc["labels"]
    return str(labels["key"]).split(".")[1]


def mqtt_events(sub: Subscriber) -> list[tuple[str, str, Any]]:
    return [(m.doc["event"], target(m.doc["incident"]), m.doc.get("suppressed_children"))
            for m in sub.messages if m.doc is not None and "event" in m.doc]


def hook_events(receiver: Receiver) -> list[tuple[str, str]]:
    return [(e["event"], target(e["incident"])) for body in receiver.accepted() for e in body["events"]]


async def incidents(r: Running) -> dict[str, list[Incident]]:
    out: dict[str, list[Incident]] = {}
    for inc in sorted(await r.engine.list_incidents(include_resolved=True), key=lambda i: i.id):
        out.setdefault(target(inc), []).append(inc)
    return out


def paired(events: list[tuple[str, str]]) -> bool:
    """Every firing has its resolved, after it; no resolved without a firing."""
    open_: Counter[str] = Counter()
    for event, name in events:
        if event == "firing":
            open_[name] += 1
        elif event == "resolved":
            if open_[name] == 0:
                return False
            open_[name] -= 1
    return not +open_


async def test_children_behind_a_dead_uplink_are_suppressed_and_pairs_match(
    tmp_path: Path, broker: Any, subscriber: Subscriber, receiver: Receiver, start_engine: StartEngine,
    agents: tuple[Agent, Agent],
) -> None:
    uplink, other = agents
    cfg = parents_config(tmp_path, broker.port, receiver.url, uplink.port, other.port)
    r = await start_engine(cfg.alert, cfg.snmp.target)
    hub = SnmpHub(SnmpConfig())
    pollers = [SnmpTarget(t, hub, r.pipeline.samples) for t in cfg.snmp.target]
    tasks = [asyncio.create_task(p.run(lambda: None)) for p in pollers]
    try:
        rule = r.engine.rules["unreachable"]
        await until(lambda: len(rule.series) == 5, "every target's lo to be seen")

        other.stop()  # sw-c goes down alone: notified, as its parent is up
        await until(lambda: ("firing", "sw-c", None) in mqtt_events(subscriber), "sw-c's firing")

        uplink.stop()  # the uplink dies: its children are suppressed, its own notification names them
        await until(lambda: any(e[:2] == ("firing", "core-sw1") for e in mqtt_events(subscriber)),
                    "core-sw1's firing", limit=30)
        [(_, _, children)] = [e for e in mqtt_events(subscriber) if e[:2] == ("firing", "core-sw1")]
        assert children == {"count": 3, "names": list(CHILDREN)}
        [body] = [b for b in receiver.accepted() if any(target(e["incident"]) == "core-sw1" for e in b["events"])]
        assert body["events"][0]["suppressed_children"] == children
        found = await incidents(r)
        assert {c: [i.suppressed for i in found[c]] for c in CHILDREN} == {c: ["core-sw1"] for c in CHILDREN}
        assert [i.suppressed for i in found["sw-c"]] == [None]  # notified before: not suppressed

        uplink.start()  # all behind it recover: no "resolved" for a "firing" never sent
        await until(lambda: ("resolved", "core-sw1", None) in mqtt_events(subscriber), "core-sw1's resolved",
                    limit=30)
        await until(lambda: _all_resolved(r, ("core-sw1", *CHILDREN)), "the children to resolve")
        other.start()
        await until(lambda: ("resolved", "sw-c", None) in mqtt_events(subscriber), "sw-c's resolved", limit=30)

        # Both down at once: sw-c is suppressed too; the uplink comes back first, sw-c still down: notified then.
        uplink.stop()
        other.stop()
        await until(lambda: _suppressed(r, ("sw-c", *CHILDREN)), "all four children suppressed", limit=30)
        uplink.start()
        await until(lambda: [e[:2] for e in mqtt_events(subscriber)].count(("firing", "sw-c")) == 2,
                    "sw-c notified once its parent is back", limit=30)
        other.start()
        await until(lambda: _all_resolved(r, ("core-sw1", "sw-c", *CHILDREN)), "everything to resolve", limit=30)
        await until(lambda: [e[:2] for e in mqtt_events(subscriber)].count(("resolved", "sw-c")) == 2,
                    "sw-c's second resolved")
        await until(lambda: hook_events(receiver) == [e[:2] for e in mqtt_events(subscriber)],
                    "the webhook to carry the same events")
        events = [e[:2] for e in mqtt_events(subscriber)]
        assert not [e for e in events if e[1] in CHILDREN]
        assert paired(events), events
        assert [e for e in events if e[1] == "sw-c"] == [("firing", "sw-c"), ("resolved", "sw-c")] * 2
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _all_resolved(r: Running, names: tuple[str, ...]) -> bool:
    found = await incidents(r)
    return all(found.get(n) and all(i.state == "resolved" for i in found[n]) for n in names)


async def _suppressed(r: Running, names: tuple[str, ...]) -> bool:
    found = await incidents(r)
    return all(found.get(n) and found[n][-1].open and found[n][-1].suppressed == "core-sw1" for n in names)
