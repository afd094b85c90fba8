"""The operations report's figures from what the stores hold: pure functions, no I/O.

rrdtool computes the interface figures (average, maximum, 95th percentile,
total: `RrdStore.stats`); here they are put together with the rest: the
availability and outages found in stored rows (oper_up, a check's up, a
target's rows with data), incident times, log counts grouped by message
template, and the change against the previous period.  The result is a
JSON-ready dict: the one shape the JSON, text and HTML outputs render.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Final

from mepd.model import Incident, rfc3339

Point = tuple[float, float | None]  # a stored row: its time (the end of the interval it covers) and value
TOP: Final = 10
SEVERITIES: Final = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")

# What varies between occurrences of one message, most specific first: each becomes a placeholder.
_VARIABLE: Final = (
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<uuid>"),
    (re.compile(r"\b(?:[0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}\b"), "<mac>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"(?<![\w:])(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}(?![\w:])"), "<ip>"),
    (re.compile(r"\b(?:0x)?[0-9a-fA-F]*\d[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\b|\b[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\d"
                r"[0-9a-fA-F]*\b"), "<id>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
)


def template(message: str) -> str:
    """A message with what varies (addresses, ids, numbers) replaced: `port 22 from 10.0.0.5` and
    `port 22 from 10.0.0.9` are one error."""
    for pattern, placeholder in _VARIABLE:
        message = pattern.sub(placeholder, message)
    return message


def month_period(month: str, tz: tzinfo) -> tuple[float, float]:
    """[first, next month's first) of `YYYY-MM` in `tz`; ValueError for another text."""
    found = re.fullmatch(r"(\d{4})-(\d{2})", month)
    if not found or not 1 <= int(found[2]) <= 12:
        raise ValueError(f"month: expected YYYY-MM, got {month!r}")
    year, number = int(found[1]), int(found[2])
    first = datetime(year, number, 1, tzinfo=tz)
    after = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=tz)
    return first.timestamp(), after.timestamp()


def previous_period(since: float, until: float, tz: tzinfo) -> tuple[float, float]:
    """The period a report is compared with: the month before a whole month, else as long just before."""
    start = datetime.fromtimestamp(since, tz)
    if start.day == 1 and start.hour == start.minute == start.second == 0:
        month = f"{start.year - (start.month == 1)}-{(start.month - 2) % 12 + 1:02d}"
        before = month_period(month, tz)
        if before[1] == since and month_period(f"{start.year}-{start.month:02d}", tz)[1] == until:
            return before
    return since - (until - since), since


@dataclass(frozen=True, slots=True)
class Outage:
    start: float
    end: float

    def to_json(self) -> dict[str, object]:
        return {"start": rfc3339(self.start), "end": rfc3339(self.end), "seconds": round(self.end - self.start)}


def outages(points: Sequence[Point], step: float, down: Callable[[float | None], bool]) -> list[Outage]:
    """The runs of rows that are `down`, each from the start of its first row's interval to the end of its last."""
    out: list[Outage] = []
    for ts, value in points:
        if not down(value):
            continue
        if out and out[-1].end >= ts - step:
            out[-1] = Outage(out[-1].start, ts)
        else:
            out.append(Outage(ts - step, ts))
    return out


def is_down(value: float | None) -> bool:
    """A known 0/1 state row (oper_up, a check's up) that is mostly down."""
    return value is not None and value < 0.5


def is_missing(value: float | None) -> bool:
    return value is None


def state_summary(points: Sequence[Point], step: float) -> dict[str, object]:
    """Availability and outages of a 0/1 state (a check's `up`, an interface's `oper_up`): rows averaging
    0.5 or more are up (a row of the coarser archives is the share of polls up in it)."""
    known = [v for _, v in points if v is not None]
    return {
        "availability_pct": 100.0 * statistics.fmean(known) if known else None,
        "outages": [o.to_json() for o in outages(points, step, is_down)],
    }


def target_summary(points: Sequence[Point], step: float) -> dict[str, object]:
    """An SNMP target's availability: the share of the period's rows its interfaces have data for (an agent
    that does not answer writes nothing; so does a stopped mepd), and the runs without any."""
    return {
        "availability_pct": 100.0 * sum(1 for _, v in points if v is not None) / len(points) if points else None,
        "outages": [o.to_json() for o in outages(points, step, is_missing)],
    }


def interface_summary(stats: Mapping[str, Mapping[str, object]], speed_bps: float | None) -> dict[str, object]:
    """An interface's figures from rrdtool's (`RrdStore.stats` by metric name: in_bps, out_bps, errors...)."""
    out: dict[str, object] = {"speed_bps": speed_bps}
    for direction in ("in", "out"):
        s = stats.get(f"{direction}_bps", {})
        total = s.get("total")
        p95 = s.get("percentile")
        out[direction] = {
            "average_bps": s.get("average"), "maximum_bps": s.get("maximum"), "p95_bps": p95,
            "bytes": float(total) / 8 if isinstance(total, float) else None,
            "p95_utilisation_pct": 100.0 * p95 / speed_bps if isinstance(p95, float) and speed_bps else None,
            "average_utilisation_pct": (100.0 * float(avg) / speed_bps
                                        if isinstance(avg := s.get("average"), float) and speed_bps else None),
        }
    for name in ("in_errors", "out_errors", "in_discards", "out_discards"):
        total = stats.get(name, {}).get("total")
        out[name] = round(float(total)) if isinstance(total, float) else None  # per second x seconds: a count
    return out


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


@dataclass(frozen=True, slots=True)
class ActionRun:
    """An action's history entry (`action`, `action_skipped`, or what the closed loop adds) in the period."""

    incident: int
    ts: float
    event: str
    detail: Mapping[str, object]

    @property
    def outcome(self) -> str:
        d = self.detail
        if isinstance(d.get("outcome"), str):
            return str(d["outcome"])
        if self.event != "action":
            return self.event.removeprefix("action_") or self.event
        return "ok" if d.get("exit_status") == 0 and not d.get("timed_out") and not d.get("error") else "failed"


def incident_summary(incidents: Sequence[Incident], actions: Iterable[ActionRun], since: float, until: float
                     ) -> dict[str, object]:
    """Counts by rule and severity, times to acknowledge and resolve (median, worst, in seconds), actions by
    outcome, and the longest incidents, over those open at some time in [since, until)."""
    acked = [i.acknowledged - i.started for i in incidents if i.acknowledged is not None]
    resolved = [i.resolved - i.started for i in incidents if i.resolved is not None]

    def duration(i: Incident) -> float:
        return min(i.resolved if i.resolved is not None else until, until) - max(i.started, since)

    longest = sorted(incidents, key=lambda i: (-duration(i), i.id))[:TOP]
    runs = Counter((a.event, a.outcome) for a in actions)
    return {
        "count": len(incidents),
        "started_in_period": sum(1 for i in incidents if i.started >= since),
        "by_rule": dict(sorted(Counter(i.rule for i in incidents).items())),
        "by_severity": dict(sorted(Counter(i.severity for i in incidents).items())),
        "time_to_ack": {"median_s": _median(acked), "worst_s": max(acked, default=None), "count": len(acked)},
        "time_to_resolve": {"median_s": _median(resolved), "worst_s": max(resolved, default=None),
                            "count": len(resolved)},
        "actions": [{"event": e, "outcome": o, "count": n} for (e, o), n in sorted(runs.items())],
        "longest": [{"id": i.id, "rule": i.rule, "severity": i.severity, "summary": i.summary,
                     "started": rfc3339(i.started), "resolved": rfc3339(i.resolved) if i.resolved else None,
                     "seconds_in_period": round(duration(i))} for i in longest],
    }


def change_pct(now: float | None, before: float | None) -> float | None:
    """The change from `before` to `now` in percent; None when there is nothing to compare with."""
    if now is None or not before:
        return None
    return 100.0 * (now - before) / before


def log_summary(counts: Iterable[tuple[str, int, int]], errors: Iterable[tuple[str, int]],
                previous_counts: Iterable[tuple[str, int, int]], previous_errors: Iterable[tuple[str, int]]
                ) -> dict[str, object]:
    """Records per host and severity, the top error templates, each against the previous period."""
    def per_host(rows: Iterable[tuple[str, int, int]]) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for host, severity, n in rows:
            name = SEVERITIES[severity] if 0 <= severity < len(SEVERITIES) else "none"
            by_sev = out.setdefault(host or "-", {})
            by_sev[name] = by_sev.get(name, 0) + n
        return out

    def templates(rows: Iterable[tuple[str, int]]) -> Counter[str]:
        out: Counter[str] = Counter()
        for message, n in rows:
            out[template(message)] += n
        return out

    hosts, hosts_before = per_host(counts), per_host(previous_counts)
    found, found_before = templates(errors), templates(previous_errors)
    total = sum(sum(v.values()) for v in hosts.values())
    total_before = sum(sum(v.values()) for v in hosts_before.values())
    return {
        "records": total,
        "records_change_pct": change_pct(total, total_before),
        "hosts": [{"host": h, "records": sum(sev.values()), "by_severity": sev,
                   "change_pct": change_pct(sum(sev.values()), sum(hosts_before.get(h, {}).values()))}
                  for h, sev in sorted(hosts.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))],
        "top_errors": [{"template": t, "count": n, "previous": found_before.get(t, 0)}
                       for t, n in sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]],
    }


def weblog_summary(now: Mapping[str, object], before: Mapping[str, object] | None) -> dict[str, object]:
    """A web source's summary (mepd.analysis.weblog.report) and each figure's change against the previous."""
    summary = now.get("summary")
    previous = before.get("summary") if before else None
    figures = summary if isinstance(summary, Mapping) else {}
    old = previous if isinstance(previous, Mapping) else {}
    return {"summary": dict(figures),
            "change_pct": {k: change_pct(float(v), float(old[k]) if isinstance(old.get(k), int | float) else None)
                           for k, v in figures.items() if isinstance(v, int | float) and not isinstance(v, bool)}}
