"""One timeline per SNMP target or interface: its device's log lines, its incidents and their actions, in time order.

`GET /v1/timeline/{subject}?since=1d[&until=T]`, subject `snmp.<target>` or
`snmp.<target>.<interface>` (the interface as in its metric keys).  The lines
are the stored records of the target's device (mepd.analysis.devicelogs: sent
from its address, or naming as their host its address or one of its host
names), for an interface those that name it (through
mepd.analysis.links, aliases included), found again at query time by the same
rules, so nothing extra is stored.  The incidents are those whose series key
is the subject's or one of its keys (an interface's `oper_up` rule), with the
history the incident store keeps: fired, acknowledged, resolved, actions.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from aiohttp import web

from mepd.alerts.engine import AlertEngine, NotRunningError
from mepd.analysis.devicelogs import DeviceIndex, HubLike, TargetLike, link_record
from mepd.model import Incident, LogQuery, LogRecord, rfc3339
from mepd.units import parse_time

MAX_LINES: Final = 1000  # the newest linked lines shown


class LogsLike(Protocol):
    async def query(self, q: LogQuery) -> list[dict[str, object]]: ...


class AlertsLike(Protocol):
    async def list_incidents(self, *, include_resolved: bool = False, limit: int = 1000) -> list[Incident]: ...

    async def show(self, iid: int) -> tuple[Incident, list[dict[str, object]]]: ...


@dataclass(frozen=True, slots=True)
class Subject:
    target: str
    interface: str | None

    @classmethod
    def parse(cls, text: str) -> Subject:
        parts = text.split(".", 2)
        if len(parts) < 2 or parts[0] != "snmp" or not parts[1]:
            raise ValueError(f"expected snmp.<target> or snmp.<target>.<interface>, got {text!r}")
        return cls(parts[1], parts[2] if len(parts) == 3 and parts[2] else None)

    @property
    def key(self) -> str:
        return f"snmp.{self.target}" + (f".{self.interface}" if self.interface else "")


def epoch(stamp: object) -> float:
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()


def _interface_of(inc: Incident, target: str) -> str | None:
    """The interface an incident is about: its `interface` label, or the third part of its `snmp.T.I.*` key."""
    if found := inc.labels.get("interface"):
        return found
    parts = inc.labels.get("key", "").split(".")
    return parts[2] if len(parts) >= 4 and parts[:2] == ["snmp", target] else None


def _concerns(inc: Incident, subject: Subject) -> bool:
    key = inc.labels.get("key", "")
    if key == subject.key or key.startswith(subject.key + "."):
        return True
    return inc.labels.get("target") == subject.target and (
        subject.interface is None or inc.labels.get("interface") == subject.interface)


async def timeline(subject: Subject, since: float, until: float, *, targets: Sequence[TargetLike], hub: HubLike,
                   logs: LogsLike, alerts: AlertsLike | None) -> list[dict[str, Any]]:
    """The subject's events in time order, as JSON objects with `ts` (RFC 3339), `kind` (log, incident) and
    `interface` (None: the whole device)."""
    if not any(t.name == subject.target for t in targets):
        raise LookupError(f"no SNMP target {subject.target!r}")
    index = DeviceIndex.build(targets, hub.sys_names)
    events: list[tuple[float, dict[str, Any]]] = []
    seen: set[object] = set()
    queries = [LogQuery(since=since, until=until, host=host, limit=MAX_LINES)
               for host in sorted(set(index.hosts_of(subject.target)) | set(index.addresses_of(subject.target)))]
    queries += [LogQuery(since=since, until=until, peer=address, limit=MAX_LINES)
                for address in sorted(index.addresses_of(subject.target))]
    for q in queries:
        for row in await logs.query(q):
            if row.get("id") in seen:
                continue
            seen.add(row.get("id"))
            rec = LogRecord(0.0, 0.0, str(row.get("message") or ""), str(row.get("source")),
                            host=_text(row.get("host")), peer=_text(row.get("peer")))
            linked = link_record(index, hub, rec)
            if linked is None or linked.target != subject.target:
                continue
            if subject.interface is not None and linked.interface != subject.interface:
                continue
            link = linked.link
            events.append((epoch(row["ts"]), {
                "ts": row["ts"], "kind": "log", "event": link.event if link else None,
                "interface": linked.interface, "host": row.get("host"), "app": row.get("app"),
                "severity": row.get("severity"), "message": row.get("message")}))
    if alerts is not None:
        for inc in await alerts.list_incidents(include_resolved=True):
            if not _concerns(inc, subject):
                continue
            _, history = await alerts.show(inc.id)
            for entry in history:
                ts = epoch(entry["ts"])
                if since <= ts <= until:
                    detail = {k: v for k, v in entry.items() if k not in ("ts", "event")}
                    events.append((ts, {"ts": entry["ts"], "kind": "incident", "event": entry["event"],
                                        "incident": inc.id, "rule": inc.rule, "summary": inc.summary,
                                        "interface": _interface_of(inc, subject.target), "detail": detail}))
    events.sort(key=lambda e: e[0])
    return [e for _, e in events]


def _text(value: object) -> str | None:
    return None if value is None else str(value)


class Daemon(Protocol):
    """What the timeline reads of the running daemon (mepd.app.App)."""

    @property
    def snmp_targets(self) -> Sequence[TargetLike]: ...
    @property
    def snmp_hub(self) -> HubLike: ...
    @property
    def logstore(self) -> LogsLike: ...
    @property
    def alerts(self) -> AlertEngine: ...


async def for_daemon(daemon: Daemon, subject: Subject, since: float, until: float) -> list[dict[str, Any]]:
    try:
        daemon.alerts.store  # noqa: B018 - raises while the engine is not running: the lines alone, then
        alerts: AlertsLike | None = daemon.alerts
    except NotRunningError:
        alerts = None
    return await timeline(subject, since, until, targets=daemon.snmp_targets, hub=daemon.snmp_hub,
                          logs=daemon.logstore, alerts=alerts)


def routes(daemon: Daemon) -> list[web.RouteDef]:
    async def show(request: web.Request) -> web.Response:
        now = time.time()
        try:
            subject = Subject.parse(request.match_info["subject"])
            since = parse_time(request.query.get("since") or "1d", now)
            until = parse_time(request.query["until"], now) if request.query.get("until") else now
        except ValueError as e:
            raise web.HTTPBadRequest(text=str(e)) from None
        try:
            events = await for_daemon(daemon, subject, since, until)
        except LookupError as e:
            raise web.HTTPNotFound(text=str(e)) from None
        return web.json_response({"subject": subject.key, "since": rfc3339(since), "until": rfc3339(until),
                                  "events": events})

    return [web.get("/v1/timeline/{subject}", show)]
