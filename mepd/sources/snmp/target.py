"""SNMP interface polling, MRTG-style: IF-MIB counters -> rate samples `snmp.<target>.<interface>.<name>`.

One component per `[[snmp.target]]`, each with its own loop, so a slow or dead
agent delays nobody else: a cycle that overruns its interval is counted and the
missed cycles are skipped, never stacked.  Every cycle starts with a GET of
sysUpTime and snmpEngineBoots (the agent's clock, which tells wraps from
reboots), then walks the IF-MIB columns (`interfaces`) with GETBULK, 64-bit
counters first and the 32-bit ones only for interfaces without them.  The
columns that describe an interface (names, alias, type, speed) are walked again
only when they may have changed: see `SnmpTarget._describe`.  They are a third
of the values, and an agent answers a walk at a cost proportional to the values
it returns.  A larger max-repetitions does not make fewer round trips on
net-snmp: snmpd returns at most `maxGetbulkResponses` values per GETBULK (100 by
default, rounded down to a multiple of the columns asked), so the 11 per-cycle
columns come 99 values, 9 rows, per response.  Rates come from
`mepd.analysis.counters`.  Requests go through a `session.Session`, v2c or v3
alike.

The bound on parallel requests (`snmp.max_parallel`) covers the walks only: the
per-cycle GET that shows whether an agent answers is not bounded, so dead
agents waiting for their timeout never hold the slots live ones need.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Final, Protocol

from mepd.analysis.counters import (
    AgentClock,
    CounterRow,
    Rate,
    RateTracker,
    Reading,
    Unknown,
    elapsed_ticks,
    row_rates,
)
from mepd.config import SnmpConfig, SnmpTargetConfig
from mepd.model import Sample
from mepd.pipeline import Channel, Counters
from mepd.sources.schedule import every
from mepd.sources.snmp import state, wire
from mepd.sources.snmp.interfaces import (
    COLUMNS,
    COLUMNS_32,
    DESCRIPTIVE,
    IF_TABLE_LAST_CHANGE,
    METRICS,
    PER_CYCLE,
    RATES,
    UP,
    Interface,
    as_counter,
    as_int,
    interfaces_from,
    select,
    status_kept,
)
from mepd.sources.snmp.session import Session, open_session
from mepd.sources.snmp.wire import Oid, SnmpError, parse_oid

log = logging.getLogger(__name__)

SYS_UPTIME: Final = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SYS_NAME: Final = (1, 3, 6, 1, 2, 1, 1, 5, 0)
ENGINE_BOOTS: Final = (1, 3, 6, 1, 6, 3, 10, 2, 1, 2, 0)
DESCRIBE_MAX_AGE: Final = 3600.0  # seconds: an ifAlias or speed changed with nothing else shows within the hour
STREAM_CHUNK: Final = 1000  # samples put on the pipeline at once while a walk goes on (`_Stream`)

Column = Mapping[bytes, object]  # a walked column: value by index as BER bytes
StatusColumns = tuple[Column, Column, Column]


class Share(Protocol):
    """Polling shared with other pollers (`[fleet] share_polling`, implemented in mepd.fleet.sharing): a
    target is polled only while this poller holds it, and its last counters go with it."""

    async def turn(self, target: str, wait: float) -> tuple[bool, Mapping[str, Any] | None]:
        """Wait up to `wait` seconds until this poller holds `target`: (held, the counters handed over with it)."""

    def holds(self, target: str) -> bool:
        """Whether this poller may poll `target` now."""

    def polled(self, target: str, counters: Mapping[str, Any] | None) -> None:
        """The counters of the target's last poll (`state.to_doc`), to go with its lease."""


class SnmpHub:
    """What the target components share: the bound on parallel walks, and where each keeps its last
    counters across a restart (`state`; None: nowhere); `share` when polling is shared with other pollers
    (None: not shared).  Shared with the device-log consumer (mepd.analysis.devicelogs), by target name:
    each target's last interfaces and sysName, which it reads, and the times its device's log said it
    restarted, which it writes and the target's next poll takes."""

    def __init__(self, cfg: SnmpConfig, state_dir: str | None = None) -> None:
        self.bound = asyncio.Semaphore(cfg.max_parallel)
        self.state_dir = state_dir
        self.interfaces: dict[str, Mapping[str, Interface]] = {}
        self.sys_names: dict[str, str] = {}
        self.restarts: dict[str, float] = {}
        self.share: Share | None = None


class _Handover(Exception):  # noqa: N818 - a signal between two methods, not an error
    """Polling changes hands: the shared target's lease was lost, or sharing was turned on or off."""


@dataclass(slots=True)
class TargetStatus:
    """What `mepctl status` shows of a target beyond its counters."""

    state: str = "starting"
    last_error: str | None = None
    last_poll: float | None = None
    last_duration: float | None = None
    cycles: int = 0
    interfaces: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "state": self.state, "last_error": self.last_error, "last_poll": self.last_poll,
            "last_duration": self.last_duration, "cycles": self.cycles, "interfaces": self.interfaces,
        }


@dataclass(slots=True)
class Described:
    """The last walk of the descriptive columns, what it was taken with, and the last poll's agent clock
    (see `SnmpTarget._describe`); `interfaces` are what it describes, with their index as BER bytes (the
    walks' keys), and whether the target's name and type selection keeps them."""

    walked_at: float
    clock: AgentClock
    last_change: object
    oper: Column
    discontinuity: Column
    interfaces: list[tuple[Interface, bytes, bool]]


_RATE_COLUMNS: Final = tuple(hc for _, hc, _, _ in RATES)
_RATE_COLUMNS_32: Final = tuple(c32 for _, _, c32, _ in RATES)
_SCALES: Final = tuple(scale for *_, scale in RATES)
_IS_BPS: Final = tuple(metric.endswith("_bps") for metric, *_ in RATES)
_BITS: Final = {wire.Counter64: 64, wire.Counter32: 32}
_STATUS_OIDS: Final = tuple(PER_CYCLE[c] for c in ("admin", "oper", "discontinuity"))
_RATE_OIDS: Final = tuple(PER_CYCLE[c] for c in _RATE_COLUMNS)


def _status_columns(walked: Mapping[Oid, Column]) -> StatusColumns:
    """ifAdminStatus, ifOperStatus and ifCounterDiscontinuityTime of a per-cycle walk, done or going on."""
    admins, opers, discs = (walked[oid] for oid in _STATUS_OIDS)
    return admins, opers, discs


def _rate_columns(walked: Mapping[Oid, Column]) -> list[Column]:
    """The counters of a per-cycle walk, done or going on, in `RATES` order (64-bit ones where there are two)."""
    return [walked[oid] for oid in _RATE_OIDS]


def _polled(cfg: SnmpTargetConfig, iface: Interface, raw: bytes, wanted: bool, status: StatusColumns) -> bool:
    """Set an interface's admin and oper status and discontinuity time from this poll's walk; whether the
    target polls it: its selection (`wanted`), then skip_admin_down and skip_down.  The one place both the
    stream and the rest of the cycle read an interface's status."""
    admins, opers, discs = status
    iface.admin = as_int(admins.get(raw)) or 0
    iface.oper = as_int(opers.get(raw)) or 0
    iface.discontinuity = as_int(discs.get(raw)) or 0
    return wanted and status_kept(cfg, iface)


def _fall_back(raw: bytes, values: list[Any], bits: list[int],
               columns32: Sequence[Column] | None) -> int:
    """Where a row has no counter (bits 0): the 32-bit one when walked, else None; how many stay missing."""
    missing = 0
    for i in range(len(bits)):
        if not bits[i] and columns32 is not None:
            values[i] = columns32[i].get(raw)
            bits[i] = _BITS.get(type(values[i]), 0)
        if not bits[i]:
            values[i] = None
            missing += 1
    return missing


@dataclass(slots=True)
class _Pass:
    """One poll's rate bookkeeping, fed in parts: rows streamed while the walk goes on, then the rest.
    `rows` are the counter rows read so far, by interface name."""

    clock: AgentClock
    rows: dict[str, CounterRow] = field(default_factory=dict)
    reasons: dict[Unknown, int] = field(default_factory=dict)
    ticks_of: dict[int, int | None] = field(default_factory=dict)  # by id() of a previous clock: once per poll
    limits_of: dict[float | None, list[float | None]] = field(default_factory=dict)  # by interface speed
    missing: int = 0


class _Stream:
    """Samples of the rows a walk has completed, put on the pipeline while it goes on, so the RRD
    worker writes them while this and the other targets still poll (10 targets used to finish
    together, then wait a third of the cycle for the worker).

    Only when the last descriptive walk still holds (`SnmpTarget._describe_due`), and only up to
    the first row whose oper status or discontinuity time differs from it, or that is new: the
    cycle then walks the descriptive columns again, and the rows after it wait for that.  Rows that
    lack a 64-bit counter wait for the 32-bit walk at the end."""

    def __init__(self, target: SnmpTarget, known: Described, rates: _Pass) -> None:
        self.target = target
        self.known = known
        self.rates = rates
        self.samples: list[Sample] = []  # of the rows done; the first `put` are on the pipeline
        self.put = 0
        self._next = 0  # position in known.interfaces
        self._on = True

    async def rows(self, out: dict[Oid, dict[bytes, object]], upto: Oid) -> None:
        if not self._on:
            return
        known, cfg, target = self.known, self.target.cfg, self.target
        status = _status_columns(out)
        _, opers, discs = status
        ifaces = known.interfaces
        chosen: list[tuple[Interface, bytes]] = []
        i = self._next
        while i < len(ifaces):
            iface, raw, wanted = ifaces[i]
            if (iface.index,) > upto:
                break
            oper, disc = opers.get(raw), discs.get(raw)
            if oper != known.oper.get(raw) or disc != known.discontinuity.get(raw) or oper is None:
                self._on = False
                break
            i += 1
            if _polled(cfg, iface, raw, wanted, status):
                chosen.append((iface, raw))
        self._next = i
        if chosen:
            columns = _rate_columns(out)
            self.samples += target._rate_samples(self.rates, chosen, columns, None, complete_only=True)
        if len(self.samples) - self.put >= STREAM_CHUNK:
            ready, self.put = self.samples[self.put:], len(self.samples)
            await target._put(ready)


class SnmpTarget:
    """The component polling one agent; `details()` is its status for the API."""

    def __init__(self, cfg: SnmpTargetConfig, hub: SnmpHub, samples: Channel[Sample],
                 clock: Callable[[], float] = time.time) -> None:
        self.name = f"snmp/{cfg.name}"
        self.cfg = cfg
        self.hub = hub
        self.samples = samples
        self.counters = Counters()
        self.counters.declare("cycles", "failed_cycles", "overruns", "skipped_cycles", "resent", "samples")
        self.status = TargetStatus()
        self.interfaces: dict[str, Interface] = {}  # the last poll's, by name: ifAlias, speed, status
        self.tracker = RateTracker()  # custom OIDs' counters
        self._rows: dict[str, CounterRow] = {}  # interface counters of the last poll, by interface name
        self._keys: dict[str, tuple[str, ...]] = {}  # an interface's sample keys, in METRICS order
        self.extra_oids = {o.name: parse_oid(o.oid) for o in cfg.oid}
        self._clock = clock
        self._session: Session | None = None
        self._described: Described | None = None

    def details(self) -> dict[str, object]:
        return self.status.to_json()

    async def open(self) -> None:
        """Credentials and transport, and the counters the last run left, ready for `poll_once`; `run` does
        this itself."""
        self._session = open_session(self.cfg)
        if (path := self._state_path()) is not None:
            self._rows, readings = await asyncio.to_thread(state.load, path, self._agent(), self.cfg.interval)
            self.tracker.restore(readings)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    async def run(self, started: Callable[[], None]) -> None:
        try:
            await self.open()
            started()
            await self._loop()
        finally:
            self.close()
            if (path := self._state_path()) is not None:
                try:
                    # At stop: no await may follow a cancel.
                    state.save(path, self._agent(), self._rows, self.tracker.readings())
                except OSError as e:
                    log.warning("%s: cannot keep the last counters in %s: %s", self.name, path, e)

    def _state_path(self) -> str | None:
        return state.path_of(self.hub.state_dir, self.cfg.name) if self.hub.state_dir else None

    def _agent(self) -> str:
        return f"{self.cfg.host}:{self.cfg.port}"

    async def _loop(self) -> None:
        interval = self.cfg.interval

        def overrun(took: float, missed: int) -> None:
            log.warning("%s: cycle took %.1fs, longer than the %.0fs interval: skipping %d cycle(s)",
                        self.name, took, interval, missed)

        while True:
            share = self.hub.share
            if share is None:
                with contextlib.suppress(_Handover):
                    await every(interval, self._own_poll, self.counters, overrun)
                continue
            held, handed = await share.turn(self.cfg.name, interval)
            if not held:
                self.status.state = "polled elsewhere"
                continue
            self._take_over(handed)
            with contextlib.suppress(_Handover):
                await every(interval, self._shared_poll, self.counters, overrun)
            self.status.state = "polled elsewhere"
            self.counters.inc("handed_over")

    def _take_over(self, counters: Mapping[str, Any] | None) -> None:
        """Start a shared target afresh from the counters handed over with its lease (none: the first rates
        are unknown), not from what this poller read when it last held it."""
        rows, readings = state.from_doc(counters, self._agent(), self.cfg.interval) if counters else ({}, {})
        self._rows = rows
        self.tracker = RateTracker()
        self.tracker.restore(readings)
        self._described = None

    async def _own_poll(self) -> None:
        if self.hub.share is not None:
            raise _Handover
        await self.poll_once()

    async def _shared_poll(self) -> None:
        share = self.hub.share
        if share is None or not share.holds(self.cfg.name):
            raise _Handover
        await self.poll_once()
        share.polled(self.cfg.name, state.to_doc(self._agent(), self._rows, self.tracker.readings()))

    async def poll_once(self) -> list[Sample]:
        """One cycle: read, turn into samples, put them on the pipeline; an unreachable agent is a status."""
        began = time.monotonic()
        try:
            samples, sent = await self._poll()
        except SnmpError as e:
            self.status.last_duration = time.monotonic() - began
            self.counters.inc("failed_cycles")
            if self.status.state != "unreachable" or self.status.last_error != str(e):
                log.warning("%s: %s:%d unreachable: %s", self.name, self.cfg.host, self.cfg.port, e)
            self.status.state, self.status.last_error = "unreachable", str(e)
            return []
        if self.status.state != "ok":
            log.info("%s: %s:%d answering, %d interfaces", self.name, self.cfg.host, self.cfg.port,
                     self.status.interfaces)
        self.status.state, self.status.last_error = "ok", None
        self.status.last_duration = time.monotonic() - began
        self.status.cycles += 1
        self.counters.inc("cycles")
        if self._session is not None and (resent := self._session.take_resent()):
            self.counters.inc("resent", resent)
        await self._put(samples[sent:])
        return samples

    async def _put(self, samples: list[Sample]) -> None:
        await self.samples.put_many(samples)
        self.counters.inc("samples", len(samples))

    async def _poll(self) -> tuple[list[Sample], int]:
        """The cycle's samples, and how many of them (the first) are on the pipeline already."""
        session = self._session
        assert session is not None
        scalars = await session.get([SYS_UPTIME, ENGINE_BOOTS, IF_TABLE_LAST_CHANGE, SYS_NAME,
                                     *self.extra_oids.values()])
        ts = self._clock()
        if isinstance(sys_name := scalars.get(SYS_NAME), bytes) and sys_name:
            self.hub.sys_names[self.cfg.name] = sys_name.decode(errors="replace")
        restarted = self.hub.restarts.pop(self.cfg.name, None)
        if restarted is not None and restarted > (self.status.last_poll or -math.inf):
            # The device's log said it restarted since the last poll: its counters start again, whatever
            # sysUpTime says (a supervisor switchover keeps it), so no rate spans the restart.
            self._rows = {}
            self.counters.inc("log_restarts")
        uptime = as_int(scalars.get(SYS_UPTIME))
        if uptime is None:
            raise SnmpError("no sysUpTime in the answer")
        clock = AgentClock(ts, uptime, as_int(scalars.get(ENGINE_BOOTS)))
        last_change = scalars.get(IF_TABLE_LAST_CHANGE)
        rates = _Pass(clock)
        known = self._described
        stream = None
        if known is not None and not self._describe_due(known, clock, last_change):
            stream = _Stream(self, known, rates)
        table = await session.walk_raw(PER_CYCLE.values(), self.hub.bound, stream.rows if stream else None)
        cycle = {name: table[oid] for name, oid in PER_CYCLE.items()}
        described = await self._describe(session, cycle, clock, last_change)
        status = _status_columns(table)
        cfg = self.cfg
        chosen: list[tuple[Interface, bytes]] = []
        done = rates.rows  # the interfaces streamed
        # Of the description the stream used (not one walked again since), those were read and chosen already.
        streamed = done if described is known else {}
        for iface, raw, wanted in described.interfaces:
            if iface.name in streamed or _polled(cfg, iface, raw, wanted, status):
                chosen.append((iface, raw))
        columns = _rate_columns(table)
        hc_in = columns[0]
        columns32: Sequence[Column] | None = None
        if any(type(hc_in.get(raw)) is not wire.Counter64 for _, raw in chosen):
            self.counters.inc("walks_32bit")
            table32 = await session.walk_raw(COLUMNS_32.values(), self.hub.bound)
            by_name32 = {name: table32[oid] for name, oid in COLUMNS_32.items()}
            columns32 = [by_name32[c] if c in by_name32 else cycle[c] for c in _RATE_COLUMNS_32]
        self.status.last_poll = ts
        self.status.interfaces = len(chosen)
        self.interfaces = {i.name: i for i, _ in chosen}
        self.hub.interfaces[cfg.name] = self.interfaces
        out = stream.samples if stream else []
        out += self._rate_samples(rates, [c for c in chosen if c[0].name not in done], columns, columns32)
        self._end_pass(rates)
        out += self._extra_samples(scalars, clock)
        self.tracker.forget({f"oid.{name}" for name in self.extra_oids})
        return out, stream.put if stream else 0

    def _rate_samples(self, p: _Pass, chosen: list[tuple[Interface, bytes]],
                      columns: Sequence[Column], columns32: Sequence[Column] | None,
                      *, complete_only: bool = False) -> list[Sample]:
        """The samples of the chosen interfaces: their rates (`counters.row_rates`) and oper_up.
        `complete_only` leaves out (and does not record) the rows that lack a counter."""
        prefix = f"snmp.{self.cfg.name}."
        rows, keys_of, new_rows, reasons = self._rows, self._keys, p.rows, p.reasons
        ticks_of, limits_of = p.ticks_of, p.limits_of
        bits_of = _BITS
        clock = p.clock
        ts = clock.ts
        max_bps_cfg = self.cfg.max_bps
        out: list[Sample] = []
        extend = out.extend
        for iface, raw in chosen:
            name = iface.name
            values: list[Any] = [column.get(raw) for column in columns]
            bits = [bits_of.get(type(value), 0) for value in values]
            if 0 in bits:
                if complete_only:
                    continue
                p.missing += _fall_back(raw, values, bits, columns32)
            row = new_rows[name] = CounterRow(clock, values, bits, (iface.index, iface.discontinuity))
            prev = rows.get(name)
            ticks = None
            if prev is not None:
                key = id(prev.clock)
                if key in ticks_of:
                    ticks = ticks_of[key]
                else:
                    ticks = ticks_of[key] = elapsed_ticks(prev.clock, clock)
            max_bps = max_bps_cfg or iface.speed_bps or None
            limits = limits_of.get(max_bps)
            if limits is None:
                limits = limits_of[max_bps] = [max_bps if b else None for b in _IS_BPS]
            rates = row_rates(prev, row, ticks, _SCALES, limits, reasons)
            rates.append(1.0 if iface.oper == UP else 0.0)
            keys = keys_of.get(name)
            if keys is None:
                keys = keys_of[name] = tuple(f"{prefix}{name}.{metric}" for metric in METRICS)
            extend(map(Sample, keys, repeat(ts), rates))
        return out

    def _end_pass(self, p: _Pass) -> None:
        """The poll's counter rows become the previous ones; what made unknowns is counted."""
        self._rows = p.rows  # interfaces no longer polled are forgotten, so memory follows the agent
        keys_of = self._keys
        if len(keys_of) > 2 * len(p.rows) + 16:
            self._keys = {name: keys_of[name] for name in p.rows if name in keys_of}
        if p.missing:
            self.counters.inc("missing_counters", p.missing)
        for reason, n in p.reasons.items():
            self.counters.inc(f"unknown.{reason}", n)

    def _describe_due(self, known: Described, clock: AgentClock, last_change: object) -> bool:
        """Whether the descriptive columns are walked again for what is known before the cycle's walk:
        the last walk's age, ifTableLastChange, an agent restart (see `_describe`)."""
        return (clock.ts - known.walked_at >= DESCRIBE_MAX_AGE or last_change != known.last_change
                or elapsed_ticks(known.clock, clock) is None)

    async def _describe(self, session: Session, cycle: dict[str, dict[bytes, object]], clock: AgentClock,
                        last_change: object) -> Described:
        """The descriptive columns: walked again when this is the first poll, the agent restarted,
        ifTableLastChange moved, interfaces came or went, one changed its oper status or counter
        discontinuity time (a renegotiated link has a new speed), or the last walk is an hour old;
        otherwise the last walk's."""
        oper, disc = cycle.get("oper", {}), cycle.get("discontinuity", {})
        known = self._described
        if (known is None or self._describe_due(known, clock, last_change)
                or oper != known.oper or disc != known.discontinuity):
            self.counters.inc("describe_walks")
            walked = await session.walk_raw((COLUMNS[c] for c in DESCRIPTIVE), self.hub.bound)
            raw_table = {**{c: walked[COLUMNS[c]] for c in DESCRIPTIVE}, "admin": cycle.get("admin", {}),
                         "oper": oper, "discontinuity": disc}
            subids = wire.subids
            table = {c: {subids(k): v for k, v in col.items()} for c, col in raw_table.items()}
            ifaces = interfaces_from(table)
            wanted = {id(i) for i in select(ifaces, self.cfg, by_status=False)}
            known = self._described = Described(
                clock.ts, clock, last_change, oper, disc,
                [(i, wire.subid_bytes((i.index,)), id(i) in wanted) for i in ifaces])
        known.clock = clock
        return known

    def _extra_samples(self, scalars: Mapping[Oid, object], clock: AgentClock) -> list[Sample]:
        out = []
        for o in self.cfg.oid:
            key = f"snmp.{self.cfg.name}.{o.name}"
            value = scalars.get(self.extra_oids[o.name])
            if isinstance(value, wire.Exception_) or value is None:
                self.counters.inc("missing_oids")
                out.append(Sample(key, clock.ts, None))
            elif o.kind == "counter" and (counter := as_counter(value)) is not None:
                r = self.tracker.update(f"oid.{o.name}", Reading(clock, *counter), o.scale, o.max or None)
                out.append(self._sample(key, clock.ts, r))
            elif (number := as_int(value)) is not None:
                out.append(Sample(key, clock.ts, number * o.scale))
            else:
                self.counters.inc("missing_oids")
                out.append(Sample(key, clock.ts, None))
        return out

    def _sample(self, key: str, ts: float, r: Rate) -> Sample:
        if r.reason is not None:
            self.counters.inc(f"unknown.{r.reason}")
        return Sample(key, ts, r.value)


def create(cfg: SnmpTargetConfig, hub: SnmpHub, samples: Channel[Sample]) -> SnmpTarget:
    return SnmpTarget(cfg, hub, samples)
