"""Human renderings of API answers for mepctl: aligned tables, journalctl-like log lines.

Every field that came from outside (a message, a host name, an ifAlias, an action's output) goes
through `printable` before it reaches a terminal; `--json` prints the exact text instead.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from mepd.terminal import printable
from mepd.units import format_duration


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Columns padded to their widest cell; the last column is never padded."""
    cells = [[str(h) for h in headers]] + [["" if c is None else printable(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=False)) + "  " + r[-1] for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def local_time(rfc3339: object) -> str:
    if not isinstance(rfc3339, str):
        return "-"
    return datetime.fromisoformat(rfc3339).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def log_line(r: Mapping[str, Any]) -> str:
    """`2026-11-28 15:20:01 host app[pid] <severity>: message`, like journalctl's short format."""
    app = r.get("app") or "-"
    if r.get("pid"):
        app += f"[{r['pid']}]"
    sev = r.get("severity") or "-"
    flag = " (unparsed)" if r.get("parse_error") else ""
    return printable(f"{local_time(r.get('ts'))} {r.get('host') or '-'} {app} <{sev}>{flag}: {r.get('message', '')}")


def _counters_text(counters: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in counters.items())


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Status' nested counters back to their dotted names: {"dropped": {"kernel": 3}} -> {"dropped.kernel": 3}."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def status(s: Mapping[str, Any]) -> str:
    logs = flatten(s["pipeline"]["logs"])
    # Each consumer has its own queue: a record dropped from the alerts' queue is still stored, so the headline
    # counts what never reached the store (the kernel's UDP drops, then the store's full queue).
    full = {k.removeprefix("dropped.queue_full."): int(v) for k, v in logs.items() if k.startswith("dropped.")}
    kernel = sum(int(c["counters"].get("dropped.kernel", 0)) for c in s["components"])
    parse_errors = sum(int(c["counters"].get("parse_errors", 0)) for c in s["components"])
    store = s["store"]["logs"]
    lines = [
        f"mepd {s['version']}  pid {s['pid']}  up {format_duration(float(s['uptime']))}  config {s['config']}",
        f"records   received {logs.get('received', 0)}  stored {logs.get('stored', 0)}  "
        f"dropped {kernel + full.get('store/logs', 0)}  unparsed (kept raw) {parse_errors}",
    ]
    if kernel:
        lines.append(f"  by the kernel (UDP receive buffer full): {kernel}")
    lines += [f"  queue full, not seen by {name}: {v}" for name, v in full.items()]
    if store.get("error"):
        lines.append(f"log store {store['path']}: cannot read it: {store['error']}")
    else:
        size_mb = float(store["size_bytes"]) / 1e6
        lines.append(f"log store {store['records']} records, {size_mb:.1f} MB, oldest {local_time(store['oldest'])}")
        if store.get("packed_rows") is False:  # the slower path, said where the admin looks (why: in the log)
            lines.append("  rows go to the log writer as tuples, at more CPU a row: mepd's packed rows (C) are"
                         " not in use, see mepd's log")
        if store.get("index_backlog"):
            lines.append(f"  not yet in the search index: {store['index_backlog']} records, the oldest waiting"
                         f" {format_duration(float(store.get('index_age') or 0))} (--grep scans them)")
            if (busy := float(store.get("writer_busy") or 0)) >= 0.1:  # why it waits: a burst is stored first
                lines.append(f"  the log writer spends {busy:.0%} of its time storing")
    lines += [f"  corrupt, set aside as {path}" for path in store.get("set_aside", ())]
    if store.get("future_dated"):
        lines.append(f"  dated ahead of their arrival, stored at it (sd.mepd.ts_claimed): {store['future_dated']}")
    reloads = s.get("reloads", {})
    if reloads.get("last_error"):
        lines.append(f"last reload refused:\n  {printable(reloads['last_error'])}")
    lines.append("")
    now = time.time()
    rows = [
        (c["name"], c["state"], format_duration(max(0.0, now - datetime.fromisoformat(c["since"]).timestamp())),
         c["restarts"], _counters_text(c["counters"]) or "-")
        for c in s["components"]
    ]
    lines.append(table(("COMPONENT", "STATE", "FOR", "RESTARTS", "COUNTERS"), rows))
    errors = [(c["name"], c["last_error"]) for c in s["components"] if c.get("last_error")]
    lines += [printable(f"{name}: last error: {err}") for name, err in errors]
    lines += [printable(f"{c['name']}: {d.get('state')}: {d['last_error']}") for c in s["components"]
              if (d := c.get("details")) and d.get("last_error")]
    lines += [printable(f"{c['name']}: no file matches {d['unmatched']}") for c in s["components"]
              if (d := c.get("details")) and d.get("unmatched")]
    lines += [printable(f"{c['name']}: cannot read {path}: {err}")
              for c in s["components"] for path, err in c.get("details", {}).get("errors", {}).items()]
    return "\n".join(lines)


def _number(value: object) -> str:
    return "U" if value is None else f"{float(value):.6g}"  # type: ignore[arg-type]


def metrics(rows: Iterable[Mapping[str, Any]]) -> str:
    return table(("KEY", "LATEST", "AT"), ((r["key"], _number(r["value"]), local_time(r["ts"])) for r in rows))


def points(data: Mapping[str, Any]) -> str:
    head = f"{data['key']}  {data['cf']} every {format_duration(float(data['step']))}"
    rows = ((local_time(p["ts"]), _number(p["value"])) for p in data["points"])
    return printable(head) + "\n" + table(("TIME", "VALUE"), rows)


def checks(items: Sequence[Mapping[str, Any]]) -> str:
    """`mepctl checks`: each check's state, for how long, what it watches and what its last run said."""
    if not items:
        return "no checks configured"
    now = time.time()
    rows = [(c["name"], c["state"], _ago(c.get("since"), now), c.get("kind", "-"), c.get("target", "-"),
             c.get("message") or "-") for c in items]
    return table(("CHECK", "STATE", "FOR", "KIND", "TARGET", "MESSAGE"), rows)


def _ago(rfc3339: object, now: float) -> str:
    if not isinstance(rfc3339, str):
        return "-"
    return format_duration(max(0.0, now - datetime.fromisoformat(rfc3339).timestamp()))


def _state(inc: Mapping[str, Any]) -> str:
    """The state with what closes the loop on it: escalated, flapping, suppressed (behind its parent)."""
    marks = [m for m in ("escalated", "flapping") if inc.get(m)]
    if inc.get("suppressed"):
        marks.append("suppressed")
    return "/".join([inc["state"], *marks])


def incidents(items: Sequence[Mapping[str, Any]]) -> str:
    """Newest first, like `mepctl incidents`; SINCE is how long ago it started."""
    if not items:
        return "no incidents"
    now = time.time()
    rows = [(i["id"], _state(i), i["severity"], i["rule"], _ago(i["started"], now), i["count"], i["summary"])
            for i in items]
    if any("node" in i for i in items):  # a central's view of its nodes' incidents
        return table(("NODE", "ID", "STATE", "SEVERITY", "RULE", "SINCE", "COUNT", "SUMMARY"),
                     [(i.get("node", "-"), *row) for i, row in zip(items, rows, strict=True)])
    return table(("ID", "STATE", "SEVERITY", "RULE", "SINCE", "COUNT", "SUMMARY"), rows)


def fleet_status(central: Mapping[str, Any]) -> str:
    """`mepctl fleet status`: each node as this central knows it (its records, its own heartbeat), the stream."""
    now = time.time()
    nodes, beats = central.get("nodes", {}), central.get("heartbeats", {})
    rows = []
    for name in sorted({*nodes, *beats}):
        seen, beat = nodes.get(name, {}), beats.get(name, {})
        age = beat.get("backlog_oldest_age")
        rows.append((name, _ago(seen["last_heard"], now) if seen else "-", seen.get("records", 0),
                     beat.get("backlog", "-"), "-" if age is None else format_duration(age),
                     _ago(beat["time"], now) if beat else "-"))
    stream = central.get("stream") or {}
    lines = [table(("NODE", "LAST HEARD", "RECORDS", "BACKLOG", "OLDEST", "HEARTBEAT"), rows) if rows else "no nodes"]
    if stream:
        lines.append(f"stream {stream['name']}: {stream['messages']} messages, {stream['bytes']} bytes,"
                     f" {stream['replicas']} replicas, leader {stream['leader'] or '-'}")
    lines.append(f"consumer {central.get('consumer')}: lag {central.get('lag', '-')} messages,"
                 f" {central.get('state')}")
    return "\n".join(lines)


def fleet_polling(polling: Mapping[str, Any]) -> str:
    """`mepctl fleet status` on a shared poller: which poller polls each SNMP target, and since when."""
    now = time.time()
    rows = [(name, t["poller"] or "-", _ago(t["since"], now) if t["since"] else "-")
            for name, t in sorted(polling.get("targets", {}).items())]
    return "\n".join([table(("TARGET", "POLLER", "SINCE"), rows) if rows else "no shared targets",
                      f"this poller {polling.get('node')}: {polling.get('held', 0)} held, {polling.get('state')}"])


def incident(inc: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> str:
    """One incident: its fields, attached lines, then its history (notifications, actions and their output)."""
    labels = " ".join(f"{k}={v}" for k, v in inc["labels"].items())
    lines = [
        f"incident {inc['id']}  {_state(inc)}  {inc['severity']}  rule {inc['rule']} ({inc['kind']})",
        f"summary   {inc['summary']}",
        f"labels    {labels}",
        f"started   {local_time(inc['started'])}   last seen {local_time(inc['last_seen'])}   count {inc['count']}"
        f"   value {inc['value'] if inc['value'] is not None else '-'}",
    ]
    if inc.get("acknowledged"):
        lines.append(f"acked     {local_time(inc['acknowledged'])}")
    if inc.get("resolved"):
        lines.append(f"resolved  {local_time(inc['resolved'])}")
    if inc.get("comment"):
        lines.append(f"comment   {inc['comment']}")
    if inc.get("suppressed"):
        lines.append(f"suppressed behind {inc['suppressed']} (not notified, no actions)")
    if inc["lines"]:
        lines.append("lines:")
        lines += [f"  {line}" for line in inc["lines"]]
    if inc.get("steps"):
        lines.append("steps:")
        lines += [f"  {_step(s)}" for s in inc["steps"]]
    lines.append("history:")
    for h in history:
        detail = {k: v for k, v in h.items() if k not in ("ts", "event", "output")}
        text = " ".join(f"{k}={v}" for k, v in detail.items() if v not in (None, "", []))
        lines.append(f"  {local_time(h['ts'])}  {h['event']:<14} {text}".rstrip())
        if h.get("output"):
            lines += [f"    | {out}" for out in str(h["output"]).rstrip("\n").split("\n")]
    return "\n".join(printable(line) for line in lines)


def _step(s: Mapping[str, Any]) -> str:
    """One corrective step: when, what it exited with, its outcome and how long the incident took to clear."""
    exit_ = ("timed out" if s.get("timed_out") else f"signal {s['signal']}" if s.get("signal")
             else s["error"] if s.get("error") else f"exit {s['exit_status']}" if "exit_status" in s else "-")
    clear = f"  cleared in {format_duration(float(s['time_to_clear']))}" if s.get("time_to_clear") is not None else ""
    argv = " ".join(str(a) for a in s.get("argv", []))
    return f"{s['step']}.{s['attempt']}  {local_time(s['started'])}  {s['outcome']:<9} {exit_}{clear}  {argv}"


def actions(items: Sequence[Mapping[str, Any]]) -> str:
    """`mepctl actions`: does a rule's step fix what it is for?"""
    if not items:
        return "no verified corrective steps have run"
    rows = [(a["rule"], a["step"], a["runs"], a["verified"], a["failed"],
             format_duration(a["median_time_to_clear"]) if a["median_time_to_clear"] is not None else "-",
             " ".join(a["argv"] or [])) for a in items]
    return table(("RULE", "STEP", "RUNS", "VERIFIED", "FAILED", "MEDIAN CLEAR", "ARGV"), rows)


def silences(items: Sequence[Mapping[str, Any]]) -> str:
    if not items:
        return "no silences"
    rows = [(s["id"], s["matchers"], local_time(s["starts"]), local_time(s["ends"]), s["comment"] or "-")
            for s in items]
    return table(("ID", "MATCHERS", "FROM", "UNTIL", "COMMENT"), rows)


def timeline(data: Mapping[str, Any]) -> str:
    """`mepctl timeline`: one line per event, oldest first: the device's lines and its incidents' history."""
    events = data["events"]
    if not events:
        return f"nothing on the timeline of {printable(data['subject'])} since {local_time(data['since'])}"
    rows = [(local_time(e["ts"]), e["kind"], e.get("event") or "-", timeline_what(e)) for e in events]
    return table(("TIME", "KIND", "EVENT", "WHAT"), rows)


def timeline_what(e: Mapping[str, Any]) -> str:
    """A timeline event's WHAT column (here and on the dashboard's interface page)."""
    if e["kind"] == "log":
        return f"{e.get('host') or '-'} {e.get('app') or '-'}: {e.get('message')}"
    return f"incident {e['incident']} ({e['rule']}): {e['summary']}"
