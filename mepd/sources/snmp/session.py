"""One agent's GET and multi-column GETBULK walk, over either client: SNMPv2c through mepd's own codec
(`wire.V2cClient`, twenty times cheaper in CPU than pysnmp), SNMPv3 through pysnmp (`v3.V3Client`).

Both clients implement `Client`, one request in and the raw answer out; everything else (the walk,
agent errors, the tooBig retry) is `Session`'s, once for both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Final, Protocol

from mepd.config import SnmpTargetConfig
from mepd.sources.snmp import wire
from mepd.sources.snmp.wire import Oid, SnmpError

TOO_BIG: Final = 1

Progress = Callable[[dict[Oid, dict[bytes, object]], Oid], Awaitable[None]]


class Client(Protocol):
    """Requests to one agent.  `request` sends a GET, or a GETBULK when `bulk` = (non-repeaters,
    max-repetitions), for OIDs as BER bytes (`wire.oid_bytes`), and returns (error status, error index,
    varbinds); no answer raises SnmpError."""

    resent: int  # requests sent again after a timeout: lost datagrams, or an agent slower than `timeout`

    async def request(self, oids: Sequence[bytes], bulk: tuple[int, int] | None = None,
                      ) -> tuple[int, int, wire.VarBinds]: ...

    def close(self) -> None:
        """Release the socket or engine."""


class Session:
    """GET and the multi-column GETBULK walk of one agent; errors raise SnmpError with the reason.

    Requests carry OIDs as BER bytes (`wire.oid_bytes`): a walk tells whether a
    returned OID is still in its column by a byte-prefix test and decodes only the index.
    """

    def __init__(self, client: Client, max_repetitions: int) -> None:
        self.client = client
        self.max_repetitions = max_repetitions

    async def get(self, oids: Sequence[Oid]) -> dict[Oid, object]:
        status, index, varbinds = await self.client.request([wire.oid_bytes(o) for o in oids])
        _check(status, index, varbinds)
        return {wire.decode_oid(raw): value for raw, value in varbinds}

    def take_resent(self) -> int:
        """The client's requests sent again since the last call."""
        resent, self.client.resent = self.client.resent, 0
        return resent

    def close(self) -> None:
        self.client.close()

    async def walk(self, columns: Iterable[Oid],
                   bound: asyncio.Semaphore | None = None) -> dict[Oid, dict[Oid, object]]:
        """Every row of the given table columns, fetched together with GETBULK: {column: {index: value}}."""
        raw = await self.walk_raw(columns, bound)
        subids = wire.subids
        return {col: {subids(k): v for k, v in values.items()} for col, values in raw.items()}

    async def walk_raw(self, columns: Iterable[Oid], bound: asyncio.Semaphore | None = None,
                       progress: Progress | None = None) -> dict[Oid, dict[bytes, object]]:
        """`walk` with each index as its BER bytes (`wire.subids` decodes it): the poller's hot path.

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
                status, index, varbinds = await self.client.request(request, (0, reps))
            else:
                async with bound:
                    status, index, varbinds = await self.client.request(request, (0, reps))
            if status == TOO_BIG and reps > 1:
                reps = max(1, reps // 2)
                continue
            _check(status, index, varbinds)
            if not varbinds:
                raise SnmpError("empty GETBULK response")
            _take(asked, prefix, out, pending, varbinds)
            if progress is not None and pending:
                await progress(out, min(idx for _, idx in pending.values()))
        return out


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


def open_session(cfg: SnmpTargetConfig) -> Session:
    """A v2c session (mepd's codec), or a v3 one through pysnmp, imported only then: 25 MB the
    daemon does not hold when no target is v3."""
    client: Client
    if cfg.version == "3":
        from mepd.sources.snmp.v3 import V3Client  # noqa: PLC0415 - pysnmp only for v3 targets

        client = V3Client(cfg)
    else:
        client = wire.V2cClient(cfg.host, cfg.port, cfg.secrets()["community"], cfg.timeout, cfg.retries)
    return Session(client, cfg.max_repetitions)
