"""The timeline's device lines: those whose host names the target, and those sent from its address whatever
host they name (logger and most devices name themselves, not their address)."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field

from mepd.analysis.devicelogs import InterfaceLike
from mepd.api.timeline import Subject, timeline
from mepd.config import SnmpTargetConfig
from mepd.model import LogQuery, LogRecord

T0 = 1_800_000_000.0


@dataclass(frozen=True, slots=True)
class Iface:
    name: str
    descr: str


@dataclass(slots=True)
class Hub:
    interfaces: Mapping[str, Mapping[str, InterfaceLike]] = field(default_factory=dict)
    sys_names: Mapping[str, str] = field(default_factory=dict)
    restarts: MutableMapping[str, float] = field(default_factory=dict)


class Logs:
    """The log store's filters that the timeline uses: host, peer (the address, any port)."""

    def __init__(self, records: list[LogRecord]) -> None:
        self.rows = [{"id": i, **r.to_json()} for i, r in enumerate(records)]

    async def query(self, q: LogQuery) -> list[dict[str, object]]:
        def hit(row: dict[str, object]) -> bool:
            if q.host is not None:
                return row["host"] == q.host
            return q.peer is not None and str(row["peer"]).rpartition(":")[0].strip("[]") == q.peer

        return [row for row in self.rows if hit(row)]


async def test_lines_sent_from_the_targets_address_are_on_its_timeline_whatever_host_they_name() -> None:
    target = SnmpTargetConfig(name="sw", host="192.0.2.1", syslog_hosts=("sw1.example.net",))
    hub = Hub(interfaces={"sw": {"1": Iface("Gi0_1", "GigabitEthernet0/1")}})
    logs = Logs([
        LogRecord(T0, T0, "%LINK-3-UPDOWN: Interface Gi0/1, changed state to down", "syslog/udp",
                  host="buildhost", peer="192.0.2.1:50514"),
        LogRecord(T0 + 1, T0 + 1, "%SYS-5-RESTART: System restarted --", "syslog/udp", host="sw1.example.net"),
        LogRecord(T0 + 2, T0 + 2, "%LINK-3-UPDOWN: Interface Gi0/1, changed state to up", "syslog/udp",
                  host="buildhost", peer="192.0.2.7:514"),
    ])
    events = await timeline(Subject("sw", None), T0 - 60, T0 + 60, targets=[target], hub=hub, logs=logs, alerts=None)
    assert [(e["event"], e["interface"]) for e in events] == [("down", "Gi0_1"), ("restart", None)]
