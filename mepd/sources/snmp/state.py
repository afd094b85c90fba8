"""An SNMP target's last counters (interfaces' and custom OIDs'), kept across a restart of the daemon.

Rates are the difference of two polls, so without the last poll's counters the
first poll after a restart can only store unknown: a gap of one interval on
every interface's graph at each `systemctl restart mepd` (MRTG has none, its
counters live in its files between runs).  The counters are written when the
target stops and read when it starts, if they are recent enough that no
counter can have wrapped twice meanwhile (`MAX_AGE_INTERVALS`).  They belong to
one agent: a changed host or port starts afresh.  The agent's own clock in the
file still tells whether the agent restarted in between (mepd.analysis.counters).

A daemon killed without stopping (kill -9, a crash) writes nothing: its first
poll back stores unknown, as before.  A file that cannot be read is logged and
ignored, never a failed start.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from typing import Any, Final

from mepd.analysis.counters import AgentClock, CounterRow, Reading

log = logging.getLogger(__name__)

VERSION: Final = 1
MAX_AGE_INTERVALS: Final = 3  # older counters than this many poll intervals are not used


def path_of(state_dir: str, target: str) -> str:
    return os.path.join(state_dir, f"{target}.json")


def to_doc(agent: str, rows: Mapping[str, CounterRow], readings: Mapping[str, Reading]) -> dict[str, Any] | None:
    """A poll's interface counter rows and custom OID readings (all read at one agent clock) as JSON; None
    when there are none.  Also what goes with a shared target's lease (`Share.polled`)."""
    clock = next(itertools.chain((r.clock for r in rows.values()), (r.clock for r in readings.values())), None)
    if clock is None:
        return None
    return {
        "version": VERSION, "agent": agent, "clock": [clock.ts, clock.uptime, clock.boots],
        "rows": {name: [row.values, row.bits, list(row.marker) if isinstance(row.marker, tuple) else None]
                 for name, row in rows.items() if row.clock is clock},
        "oids": {key: [r.value, r.bits] for key, r in readings.items() if r.clock is clock},
    }


def save(path: str, agent: str, rows: Mapping[str, CounterRow], readings: Mapping[str, Reading]) -> None:
    """Write `to_doc` atomically; nothing when there are no counters."""
    doc = to_doc(agent, rows, readings)
    if doc is None:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".snmp-state.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


Saved = tuple[dict[str, CounterRow], dict[str, Reading]]


def load(path: str, agent: str, interval: float, now: float | None = None) -> Saved:
    """The rows and readings `save` wrote for this agent, if recent enough; none otherwise (and logged when
    the file cannot be read)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return from_doc(json.load(fh), agent, interval, now, path)
    except FileNotFoundError:
        return {}, {}
    except (OSError, ValueError) as e:
        log.warning("%s: ignoring the saved SNMP counters (%s: %s); the first poll's rates are unknown",
                    path, type(e).__name__, e)
        return {}, {}


def from_doc(doc: Any, agent: str, interval: float, now: float | None = None, where: str = "") -> Saved:
    """The rows and readings of a `to_doc` document for this agent, if recent enough; none otherwise (and
    logged, naming `where`, when it is malformed)."""
    try:
        return _saved(doc, agent, interval, time.time() if now is None else now)
    except (ValueError, TypeError, KeyError, IndexError) as e:
        log.warning("%s: ignoring the saved SNMP counters (%s: %s); the first poll's rates are unknown",
                    where or agent, type(e).__name__, e)
    return {}, {}


def _saved(doc: Any, agent: str, interval: float, now: float) -> Saved:
    if doc["version"] != VERSION or doc["agent"] != agent:
        return {}, {}
    ts, uptime, boots = doc["clock"]
    if not 0 <= now - float(ts) <= MAX_AGE_INTERVALS * interval:
        return {}, {}
    clock = AgentClock(float(ts), int(uptime), None if boots is None else int(boots))
    rows: dict[str, CounterRow] = {}
    for name, (values, bits, marker) in doc["rows"].items():
        if len(values) != len(bits):
            raise ValueError(f"interface {name}: {len(values)} values but {len(bits)} widths")
        rows[str(name)] = CounterRow(clock, [None if v is None else int(v) for v in values], [int(b) for b in bits],
                                     tuple(marker) if marker is not None else None)
    readings = {str(key): Reading(clock, int(value), int(bits)) for key, (value, bits) in doc["oids"].items()}
    return rows, readings
