"""Events drawn on a graph at their times: rrdtool VRULEs, one colour and one fixed legend per kind.

A mark is only (time, kind): what the graph shows of an event is its kind's
legend from `KINDS`, never text of the event itself (a device's log line is
untrusted, and rrdtool reads `:` and `\\` in its arguments), so nothing of a
log message reaches rrdtool.  Imported by the RRD worker process: no daemon code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

Mark = tuple[float, str]  # (epoch seconds, a KINDS key): picklable, hashable, part of a graph's cache key


@dataclass(frozen=True, slots=True)
class Kind:
    legend: str
    colour: str


KINDS: Final[dict[str, Kind]] = {
    "log-down": Kind("link down (log)", "#E00000"),
    "log-up": Kind("link up (log)", "#0080FF"),
    "log-restart": Kind("restart (log)", "#FF9900"),
    "log": Kind("device log", "#808080"),
    "fired": Kind("incident fired", "#CC00CC"),
    "acknowledged": Kind("incident acked", "#8000FF"),
    "resolved": Kind("incident resolved", "#008080"),
    "action": Kind("action", "#000000"),
}


def rrd_escape(text: str) -> str:
    """`text` as one field of an rrdgraph argument: backslash and colon escaped (rrdgraph_graph's rule)."""
    return text.replace("\\", "\\\\").replace(":", "\\:")


def mark_args(marks: Iterable[Mark], start: float, end: float) -> list[str]:
    """VRULE arguments for the marks within [start, end], in time order; the first of each kind carries its
    legend, so the legend lists each kind once.  A kind not in KINDS is an error: the caller maps events."""
    out: list[str] = []
    seen: set[str] = set()
    for ts, kind in sorted(marks):
        style = KINDS.get(kind)
        if style is None:
            raise ValueError(f"no mark kind {kind!r}")
        if not start <= ts <= end:
            continue
        legend = "" if kind in seen else rrd_escape(style.legend)
        seen.add(kind)
        out.append(f"VRULE:{int(ts)}{style.colour}" + (f":{legend}" if legend else ""))
    return out
