"""IF-MIB: the columns polled, an agent's interfaces read from them, and a target's selection of them.

Interfaces are named by ifName (ifDescr where there is none), so history follows
an interface renumbered after a reboot.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from mepd.config import SnmpTargetConfig
from mepd.sources.snmp import wire
from mepd.sources.snmp.wire import Oid

IF_TABLE_LAST_CHANGE: Final = (1, 3, 6, 1, 2, 1, 31, 1, 5, 0)
IF: Final = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IFX: Final = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)

# Walked every cycle: what selects, names and rates an interface.
COLUMNS: Final[dict[str, Oid]] = {
    "descr": (*IF, 2), "type": (*IF, 3), "speed": (*IF, 5), "admin": (*IF, 7), "oper": (*IF, 8),
    "in_discards": (*IF, 13), "in_errors": (*IF, 14), "out_discards": (*IF, 19), "out_errors": (*IF, 20),
    "name": (*IFX, 1), "hc_in_octets": (*IFX, 6), "hc_in_ucast": (*IFX, 7), "hc_out_octets": (*IFX, 10),
    "hc_out_ucast": (*IFX, 11), "high_speed": (*IFX, 15), "alias": (*IFX, 18), "discontinuity": (*IFX, 19),
}
# Of those, what describes an interface, walked again only when it may have changed (`SnmpTarget._describe`).
DESCRIPTIVE: Final = ("descr", "type", "speed", "name", "high_speed", "alias")
PER_CYCLE: Final = {name: oid for name, oid in COLUMNS.items() if name not in DESCRIPTIVE}
# Walked only when some selected interface has no 64-bit counters (no ifXTable).
COLUMNS_32: Final[dict[str, Oid]] = {
    "in_octets": (*IF, 10), "in_ucast": (*IF, 11), "out_octets": (*IF, 16), "out_ucast": (*IF, 17),
}
SPEED_MAX_32: Final = 4294967295
UP: Final = 1

# (metric name, counter of the 64-bit walk, its 32-bit fallback, scale); in/out bits are capped by the speed.
RATES: Final = (
    ("in_bps", "hc_in_octets", "in_octets", 8.0),
    ("out_bps", "hc_out_octets", "out_octets", 8.0),
    ("in_pps", "hc_in_ucast", "in_ucast", 1.0),
    ("out_pps", "hc_out_ucast", "out_ucast", 1.0),
    ("in_errors", "in_errors", "in_errors", 1.0),
    ("out_errors", "out_errors", "out_errors", 1.0),
    ("in_discards", "in_discards", "in_discards", 1.0),
    ("out_discards", "out_discards", "out_discards", 1.0),
)
METRICS: Final = (*(name for name, *_ in RATES), "oper_up")
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_-]")
_SAFE: Final = re.compile(r"[A-Za-z0-9_-]+")


def metric_name(text: str) -> str:
    """An ifName as it appears in metric keys: every character outside [A-Za-z0-9_-] becomes '_'."""
    return text if _SAFE.fullmatch(text) else (_UNSAFE.sub("_", text) or "_")


def as_text(value: object) -> str:
    """An OCTET STRING as text; "" for anything else."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").rstrip("\0")
    return ""


def as_int(value: object) -> int | None:
    """Any SNMP integer type (Integer32, Gauge32, Counter32/64, TimeTicks); None otherwise."""
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def as_counter(value: object) -> tuple[int, int] | None:
    """(value, bits) of a counter; None for a missing or non-counter value."""
    if isinstance(value, wire.Counter64):
        return int(value), 64
    if isinstance(value, wire.Counter32):
        return int(value), 32
    return None


@dataclass(slots=True)
class Interface:
    index: int
    name: str
    descr: str
    alias: str
    type: int
    speed_bps: float
    admin: int
    oper: int
    counters: dict[str, tuple[int, int]] = field(default_factory=dict)
    discontinuity: int = 0


_COUNTER_COLUMNS: Final = tuple(sorted({c for _, hc, c32, _ in RATES for c in (hc, c32)}))


def interfaces_from(table: Mapping[str, Mapping[Oid, object]]) -> list[Interface]:
    """Interfaces of one walk, named by ifName (ifDescr where there is none), duplicates made unique."""
    empty: Mapping[Oid, object] = {}
    names, descrs, high_speeds, speeds = (table.get(c, empty) for c in ("name", "descr", "high_speed", "speed"))
    aliases, types, admins, opers = (table.get(c, empty) for c in ("alias", "type", "admin", "oper"))
    discontinuities = table.get("discontinuity", empty)
    counters = [(c, table[c]) for c in _COUNTER_COLUMNS if c in table]
    indexes = sorted({idx for col in (descrs, names, opers) for idx in col if len(idx) == 1})
    out: list[Interface] = []
    seen: set[str] = set()
    for key in indexes:
        index = key[0]
        name = metric_name(as_text(names.get(key)) or as_text(descrs.get(key)) or f"if{index}")
        if name in seen:
            name = f"{name}_{index}"
        seen.add(name)
        high, speed = as_int(high_speeds.get(key)), as_int(speeds.get(key))
        speed_bps = float(high) * 1e6 if high else float(speed or 0)
        if speed == SPEED_MAX_32 and not high:
            speed_bps = 0.0
        iface = Interface(
            index=index, name=name, descr=as_text(descrs.get(key)), alias=as_text(aliases.get(key)),
            type=as_int(types.get(key)) or 0, speed_bps=speed_bps,
            admin=as_int(admins.get(key)) or 0, oper=as_int(opers.get(key)) or 0,
            discontinuity=as_int(discontinuities.get(key)) or 0,
        )
        for counter, column in counters:
            if (value := as_counter(column.get(key))) is not None:
                iface.counters[counter] = value
        out.append(iface)
    return out


def status_kept(cfg: SnmpTargetConfig, iface: Interface) -> bool:
    """skip_admin_down and skip_down, which the poller applies at every poll."""
    return not (cfg.skip_admin_down and iface.admin != UP) and not (cfg.skip_down and iface.oper != UP)


def select(interfaces: Iterable[Interface], cfg: SnmpTargetConfig, by_status: bool = True) -> list[Interface]:
    """The interfaces the target's selection keys ask for; `by_status=False` leaves out
    skip_admin_down and skip_down (the poller applies those every poll, the rest once per describe walk)."""

    def wanted(i: Interface) -> bool:
        names = (i.name, i.descr)
        if cfg.if_index and i.index not in cfg.if_index:
            return False
        if cfg.if_type and i.type not in cfg.if_type:
            return False
        if cfg.interfaces and not any(fnmatch.fnmatchcase(n, g) for n in names for g in cfg.interfaces):
            return False
        if any(fnmatch.fnmatchcase(n, g) for n in names for g in cfg.exclude):
            return False
        return not by_status or status_kept(cfg, i)

    return [i for i in interfaces if wanted(i)]
