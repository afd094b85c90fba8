"""SNMP interface polling, MRTG-style: IF-MIB counters -> rate samples `snmp.<target>.<interface>.<name>`.

One component per `[[snmp.target]]`, each with its own loop, so a slow or dead
agent delays nobody else: a cycle that overruns its interval is counted and the
missed cycles are skipped, never stacked.  Every cycle starts with a GET of
sysUpTime and snmpEngineBoots (the agent's clock, which tells wraps from
reboots), then walks the IF-MIB columns with GETBULK, 64-bit counters first and
the 32-bit ones only for interfaces without them.  The columns that describe an
interface (names, alias, type, speed) are walked again only when they may have
changed: see `SnmpTarget._describe`.  They are a third of the values, and an
agent answers a walk at a cost proportional to the values it returns.  A larger
max-repetitions does not make fewer round trips on net-snmp: snmpd returns at most
`maxGetbulkResponses` values per GETBULK (100 by default, rounded down to a
multiple of the columns asked), so the 11 per-cycle columns come 99 values, 9
rows, per response.  Rates come from
`mepd.analysis.counters`; interfaces are keyed by ifName, so history follows
an interface renumbered after a reboot.  SNMPv2c goes through mepd's own codec
(`snmpwire`, twenty times cheaper in CPU than pysnmp); SNMPv3 through pysnmp.

The bound on parallel requests (`snmp.max_parallel`) covers the walks only: the
per-cycle GET that shows whether an agent answers is not bounded, so dead
agents waiting for their timeout never hold the slots live ones need.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Final

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
from mepd.errors import MepdError
from mepd.model import Sample
from mepd.pipeline import Channel, Counters
from mepd.sources import snmpstate
from mepd.sources import snmpwire as wire

log = logging.getLogger(__name__)

Oid = tuple[int, ...]

SYS_DESCR: Final = (1, 3, 6, 1, 2, 1, 1, 1, 0)
SYS_UPTIME: Final = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SYS_NAME: Final = (1, 3, 6, 1, 2, 1, 1, 5, 0)
ENGINE_BOOTS: Final = (1, 3, 6, 1, 6, 3, 10, 2, 1, 2, 0)
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
DESCRIBE_MAX_AGE: Final = 3600.0  # seconds: an ifAlias or speed changed with nothing else shows within the hour
STREAM_CHUNK: Final = 1000  # samples put on the pipeline at once while a walk goes on (`_Stream`)
# Walked only when some selected interface has no 64-bit counters (no ifXTable).
COLUMNS_32: Final[dict[str, Oid]] = {
    "in_octets": (*IF, 10), "in_ucast": (*IF, 11), "out_octets": (*IF, 16), "out_ucast": (*IF, 17),
}
SPEED_MAX_32: Final = 4294967295
UP: Final = 1
TOO_BIG: Final = 1

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


Progress = Callable[[dict[Oid, dict[bytes, object]], Oid], Awaitable[None]]


class SnmpError(MepdError):
    """The agent did not answer, or answered with an error: the target is unreachable this cycle."""


def metric_name(text: str) -> str:
    """An ifName as it appears in metric keys: every character outside [A-Za-z0-9_-] becomes '_'."""
    return text if _SAFE.fullmatch(text) else (_UNSAFE.sub("_", text) or "_")


def parse_oid(text: str) -> Oid:
    return tuple(int(p) for p in text.strip(".").split("."))


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").rstrip("\0")
    return ""


def _int(value: object) -> int | None:
    """Any SNMP integer type (Integer32, Gauge32, Counter32/64, TimeTicks); None otherwise."""
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _counter(value: object) -> tuple[int, int] | None:
    """(value, bits) of a counter; None for a missing or non-counter value."""
    if isinstance(value, wire.Counter64):
        return int(value), 64
    if isinstance(value, wire.Counter32):
        return int(value), 32
    return None


class Session:
    """One agent: GET and the multi-column GETBULK walk; errors raise SnmpError with the reason.

    Requests carry OIDs as BER bytes (`snmpwire.oid_bytes`): a walk tells whether a
    returned OID is still in its column by a byte-prefix test and decodes only the index.
    """

    max_repetitions: int
    resent = 0  # requests sent again after a timeout: lost datagrams, or an agent slower than `timeout`

    async def get(self, oids: Sequence[Oid]) -> dict[Oid, object]:
        status, index, varbinds = await self.request([wire.oid_bytes(o) for o in oids])
        self._check(status, index, varbinds)
        return {wire.decode_oid(raw): value for raw, value in varbinds}

    async def request(self, oids: Sequence[bytes], bulk: tuple[int, int] | None = None,
                      ) -> tuple[int, int, wire.VarBinds]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the socket or engine."""

    async def walk(self, columns: Iterable[Oid],
                   bound: asyncio.Semaphore | None = None) -> dict[Oid, dict[Oid, object]]:
        """Every row of the given table columns, fetched together with GETBULK: {column: {index: value}}."""
        raw = await self.walk_raw(columns, bound)
        subids = wire.subids
        return {col: {subids(k): v for k, v in values.items()} for col, values in raw.items()}

    async def walk_raw(self, columns: Iterable[Oid], bound: asyncio.Semaphore | None = None,
                       progress: Progress | None = None) -> dict[Oid, dict[bytes, object]]:
        """`walk` with each index as its BER bytes (`snmpwire.subids` decodes it): the poller's hot path.

        `progress`, after each response but the last, gets what is walked so far and the index up to
        which every row is complete (every column still walked has passed it)."""
        cols = list(columns)
        out: dict[Oid, dict[bytes, object]] = {c: {} for c in cols}  # by the index's BER bytes
        prefix = {c: wire.oid_bytes(c) for c in cols}
        pending: dict[Oid, tuple[bytes, Oid]] = {c: (prefix[c], ()) for c in cols}  # last OID as bytes, its index
        reps = self.max_repetitions
        while pending:
            asked = list(pending)
            request = [pending[c][0] for c in asked]
            if bound is None:
                status, index, varbinds = await self.request(request, (0, reps))
            else:
                async with bound:
                    status, index, varbinds = await self.request(request, (0, reps))
            if status == TOO_BIG and reps > 1:
                reps = max(1, reps // 2)
                continue
            self._check(status, index, varbinds)
            if not varbinds:
                raise SnmpError("empty GETBULK response")
            _take(asked, prefix, out, pending, varbinds)
            if progress is not None and pending:
                await progress(out, min(idx for _, idx in pending.values()))
        return out

    @staticmethod
    def _check(status: int, index: int, varbinds: wire.VarBinds) -> None:
        if status:
            name = wire.ERROR_NAMES[status] if 0 <= status < len(wire.ERROR_NAMES) else str(status)
            where = ""
            if 0 < index <= len(varbinds):
                where = " at " + ".".join(map(str, wire.decode_oid(varbinds[index - 1][0])))
            raise SnmpError(f"agent error {name}{where}")


def _take(asked: list[Oid], prefix: Mapping[Oid, bytes], out: dict[Oid, dict[bytes, object]],
          pending: dict[Oid, tuple[bytes, Oid]], varbinds: wire.VarBinds) -> None:
    """Read one GETBULK response into `out`; a column that ended leaves `pending`, the others move on.

    GETBULK answers row by row: column i's values are varbinds[i::n].  Each column's run is read
    until it leaves the column; only its first index is decoded and compared with the last one (an
    agent that loops is stopped rather than walked forever)."""
    subids, end = wire.subids, wire.END_OF_MIB_VIEW
    n = len(asked)
    oids, values = varbinds.oids, varbinds.values
    for i, col in enumerate(asked):
        head = prefix[col]
        cut = len(head)
        dest = out[col]
        last_raw, last_idx = pending[col]
        first = True
        finished = False
        for raw, value in zip(oids[i::n], values[i::n]):  # noqa: B905 - the same length
            if len(raw) <= cut or not raw.startswith(head) or value is end:
                finished = True
                break
            if first:
                if subids(raw[cut:]) <= last_idx:
                    finished = True
                    break
                first = False
            dest[raw[cut:]] = value
            last_raw = raw
        if finished:
            del pending[col]
        elif not first:
            pending[col] = (last_raw, subids(last_raw[cut:]))


class V2cSession(Session):
    """SNMPv2c through mepd's own codec (see snmpwire: pysnmp's decoding is the bottleneck at scale)."""

    def __init__(self, cfg: SnmpTargetConfig) -> None:
        self.client = wire.V2cClient(cfg.host, cfg.port, cfg.secrets()["community"], cfg.timeout, cfg.retries)
        self.max_repetitions = cfg.max_repetitions

    async def request(self, oids: Sequence[bytes], bulk: tuple[int, int] | None = None,
                      ) -> tuple[int, int, wire.VarBinds]:
        try:
            return await self.client.request(oids, bulk)
        except (wire.V2cError, OSError) as e:
            raise SnmpError(str(e)) from None
        finally:
            self.resent, self.client.resent = self.resent + self.client.resent, 0

    def close(self) -> None:
        self.client.close()


def open_session(cfg: SnmpTargetConfig) -> Session:
    """A v2c session (mepd's codec), or a v3 one through pysnmp, imported only then: 25 MB the
    daemon does not hold when no target is v3."""
    if cfg.version == "3":
        from mepd.sources.snmpv3 import V3Session  # noqa: PLC0415 - pysnmp only for v3 targets

        return V3Session(cfg)
    return V2cSession(cfg)


class SnmpHub:
    """What the target components share: the bound on parallel walks, and where each keeps its last
    counters across a restart (`snmpstate`; None: nowhere)."""

    def __init__(self, cfg: SnmpConfig, state_dir: str | None = None) -> None:
        self.bound = asyncio.Semaphore(cfg.max_parallel)
        self.state_dir = state_dir


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
        name = metric_name(_text(names.get(key)) or _text(descrs.get(key)) or f"if{index}")
        if name in seen:
            name = f"{name}_{index}"
        seen.add(name)
        high, speed = _int(high_speeds.get(key)), _int(speeds.get(key))
        speed_bps = float(high) * 1e6 if high else float(speed or 0)
        if speed == SPEED_MAX_32 and not high:
            speed_bps = 0.0
        iface = Interface(
            index=index, name=name, descr=_text(descrs.get(key)), alias=_text(aliases.get(key)),
            type=_int(types.get(key)) or 0, speed_bps=speed_bps,
            admin=_int(admins.get(key)) or 0, oper=_int(opers.get(key)) or 0,
            discontinuity=_int(discontinuities.get(key)) or 0,
        )
        for counter, column in counters:
            if (value := _counter(column.get(key))) is not None:
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
    oper: Mapping[bytes, object]
    discontinuity: Mapping[bytes, object]
    interfaces: list[tuple[Interface, bytes, bool]]


_RATE_COLUMNS: Final = tuple(hc for _, hc, _, _ in RATES)
_RATE_COLUMNS_32: Final = tuple(c32 for _, _, c32, _ in RATES)
_SCALES: Final = tuple(scale for *_, scale in RATES)
_IS_BPS: Final = tuple(metric.endswith("_bps") for metric, *_ in RATES)
_BITS: Final = {wire.Counter64: 64, wire.Counter32: 32}


def _fall_back(raw: bytes, values: list[Any], bits: list[int],
               columns32: Sequence[Mapping[bytes, object]] | None) -> int:
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
    lack a 64-bit counter wait for the 32-bit walk at the end.  An unchanged row's oper status and
    discontinuity time are those the last poll set on its `Interface`."""

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
        admins, opers, discs = (out[PER_CYCLE[c]] for c in ("admin", "oper", "discontinuity"))
        columns = [out[PER_CYCLE[c]] for c in _RATE_COLUMNS]
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
            iface.admin = _int(admins.get(raw)) or 0  # oper and discontinuity are the last poll's, unchanged
            if wanted and status_kept(cfg, iface):
                chosen.append((iface, raw))
        self._next = i
        if chosen:
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
            self._rows, readings = await asyncio.to_thread(snmpstate.load, path, self._agent(), self.cfg.interval)
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
                    snmpstate.save(path, self._agent(), self._rows, self.tracker.readings())
                except OSError as e:
                    log.warning("%s: cannot keep the last counters in %s: %s", self.name, path, e)

    def _state_path(self) -> str | None:
        return snmpstate.path_of(self.hub.state_dir, self.cfg.name) if self.hub.state_dir else None

    def _agent(self) -> str:
        return f"{self.cfg.host}:{self.cfg.port}"

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.cfg.interval
        next_at = loop.time()
        while True:
            began = loop.time()
            await self.poll_once()
            next_at += interval
            now = loop.time()
            if now > next_at:
                missed = int((now - next_at) // interval) + 1
                self.counters.inc("overruns")
                self.counters.inc("skipped_cycles", missed)
                log.warning("%s: cycle took %.1fs, longer than the %.0fs interval: skipping %d cycle(s)",
                            self.name, now - began, interval, missed)
                next_at += missed * interval
            await asyncio.sleep(next_at - loop.time())

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
        if self._session is not None and self._session.resent:
            self.counters.inc("resent", self._session.resent)
            self._session.resent = 0
        await self._put(samples[sent:])
        return samples

    async def _put(self, samples: list[Sample]) -> None:
        await self.samples.put_many(samples)
        self.counters.inc("samples", len(samples))

    async def _poll(self) -> tuple[list[Sample], int]:
        """The cycle's samples, and how many of them (the first) are on the pipeline already."""
        session = self._session
        assert session is not None
        scalars = await session.get([SYS_UPTIME, ENGINE_BOOTS, IF_TABLE_LAST_CHANGE, *self.extra_oids.values()])
        ts = self._clock()
        uptime = _int(scalars.get(SYS_UPTIME))
        if uptime is None:
            raise SnmpError("no sysUpTime in the answer")
        clock = AgentClock(ts, uptime, _int(scalars.get(ENGINE_BOOTS)))
        last_change = scalars.get(IF_TABLE_LAST_CHANGE)
        rates = _Pass(clock)
        known = self._described
        stream = None
        if known is not None and not self._describe_due(known, clock, last_change):
            stream = _Stream(self, known, rates)
        table = await session.walk_raw(PER_CYCLE.values(), self.hub.bound, stream.rows if stream else None)
        cycle = {name: table[oid] for name, oid in PER_CYCLE.items()}
        described = await self._describe(session, cycle, clock, last_change)
        admins, opers, discs = cycle["admin"], cycle["oper"], cycle["discontinuity"]
        cfg = self.cfg
        chosen: list[tuple[Interface, bytes]] = []
        done = rates.rows  # the interfaces streamed
        # Of the description the stream used (not one walked again since), those were read and chosen already.
        streamed = done if described is known else {}
        for iface, raw, wanted in described.interfaces:
            if iface.name in streamed:
                chosen.append((iface, raw))
                continue
            iface.admin = _int(admins.get(raw)) or 0
            iface.oper = _int(opers.get(raw)) or 0
            iface.discontinuity = _int(discs.get(raw)) or 0
            if wanted and status_kept(cfg, iface):
                chosen.append((iface, raw))
        columns = [cycle[c] for c in _RATE_COLUMNS]
        hc_in = columns[0]
        columns32: Sequence[Mapping[bytes, object]] | None = None
        if any(type(hc_in.get(raw)) is not wire.Counter64 for _, raw in chosen):
            self.counters.inc("walks_32bit")
            table32 = await session.walk_raw(COLUMNS_32.values(), self.hub.bound)
            by_name32 = {name: table32[oid] for name, oid in COLUMNS_32.items()}
            columns32 = [by_name32[c] if c in by_name32 else cycle[c] for c in _RATE_COLUMNS_32]
        self.status.last_poll = ts
        self.status.interfaces = len(chosen)
        self.interfaces = {i.name: i for i, _ in chosen}
        out = stream.samples if stream else []
        out += self._rate_samples(rates, [c for c in chosen if c[0].name not in done], columns, columns32)
        self._end_pass(rates)
        out += self._extra_samples(scalars, clock)
        self.tracker.forget({f"oid.{name}" for name in self.extra_oids})
        return out, stream.put if stream else 0

    def _rate_samples(self, p: _Pass, chosen: list[tuple[Interface, bytes]],
                      columns: Sequence[Mapping[bytes, object]], columns32: Sequence[Mapping[bytes, object]] | None,
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
            elif o.kind == "counter" and (counter := _counter(value)) is not None:
                r = self.tracker.update(f"oid.{o.name}", Reading(clock, *counter), o.scale, o.max or None)
                out.append(self._sample(key, clock.ts, r))
            elif (number := _int(value)) is not None:
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


def _speed(bps: float) -> str:
    for unit, size in (("Gb/s", 1e9), ("Mb/s", 1e6), ("kb/s", 1e3)):
        if bps >= size:
            return f"{bps / size:g} {unit}"
    return f"{bps:g} b/s"


def _toml(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_STATUS: Final = {1: "up", 2: "down", 3: "testing", 5: "dormant", 6: "notPresent", 7: "lowerLayerDown"}


async def discover(cfg: SnmpTargetConfig) -> str:
    """Walk an agent and describe it as `[[snmp.target]]` TOML with one comment line per interface (cfgmaker)."""
    session = open_session(cfg)
    try:
        system = await session.get([SYS_NAME, SYS_DESCR])
        table = await session.walk(COLUMNS.values())
    finally:
        session.close()
    interfaces = interfaces_from({name: table[oid] for name, oid in COLUMNS.items()})
    sys_name = _text(system.get(SYS_NAME))
    name = cfg.name if cfg.name != "discover" else metric_name(sys_name or cfg.host)
    lines = [
        f"# {cfg.host}:{cfg.port}  sysName: {sys_name or '-'}",
        f"# sysDescr: {' '.join(_text(system.get(SYS_DESCR)).split()) or '-'}",
        "[[snmp.target]]",
        f"name = {_toml(name)}",
        f"host = {_toml(cfg.host)}",
        f"port = {cfg.port}",
        f"version = {_toml(cfg.version)}",
    ]
    secrets = cfg.secrets()
    if cfg.version == "3":
        lines += [f"user = {_toml(cfg.user)}", f"auth_protocol = {_toml(cfg.auth_protocol)}",
                  f"auth_key = {_toml(secrets['auth_key'])}", f"priv_protocol = {_toml(cfg.priv_protocol)}",
                  f"priv_key = {_toml(secrets['priv_key'])}"]
        if cfg.context:
            lines.append(f"context = {_toml(cfg.context)}")
    else:
        lines.append(f"community = {_toml(secrets['community'])}")
    lines += ['interval = "5m"', "# interfaces (ifIndex  key name  ifAlias  speed  oper/admin):"]
    for i in interfaces:
        state = f"{_STATUS.get(i.oper, str(i.oper))}/{_STATUS.get(i.admin, str(i.admin))}"
        has64 = "" if "hc_in_octets" in i.counters else "  (32-bit counters)"
        lines.append(f"#   {i.index:>5}  {i.name}  {_toml(i.alias)}  {_speed(i.speed_bps)}  {state}{has64}")
    down = [i.name for i in interfaces if i.admin != UP]
    if down:
        lines.append(f"# administratively down: {', '.join(down)}; add skip_admin_down = true to leave them out")
    return "\n".join(lines) + "\n"
