"""The walk over any `Client` (a table answering GETBULK as an agent does), and pysnmp loaded for v3 only."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

import pytest

from mepd.sources.snmp import wire
from mepd.sources.snmp.session import Client, Session
from mepd.sources.snmp.wire import Oid, SnmpError
from tests.helpers import ROOT

IF_DESCR = (1, 3, 6, 1, 2, 1, 2, 2, 1, 2)
IF_OPER = (1, 3, 6, 1, 2, 1, 2, 2, 1, 8)


class TableAgent:
    """A `Client` answering from a table, as an agent does; refuses GETBULKs above `max_reps` with tooBig."""

    resent = 0

    def __init__(self, table: dict[Oid, object], max_reps: int = 100, status: int = 0) -> None:
        self.oids = sorted(table)
        self.table = table
        self.max_reps = max_reps
        self.status = status
        self.asked: list[int] = []  # max-repetitions of each GETBULK

    async def request(self, oids: Sequence[bytes], bulk: tuple[int, int] | None = None,
                      ) -> tuple[int, int, wire.VarBinds]:
        asked = [wire.decode_oid(o) for o in oids]
        if bulk is None:
            found = [(o, self.table.get(o, wire.NO_SUCH_OBJECT)) for o in asked]
            return self.status, 1 if self.status else 0, _varbinds(found)
        reps = bulk[1]
        self.asked.append(reps)
        if reps > self.max_reps:
            return 1, 0, wire.VarBinds()
        after = [[o for o in self.oids if o > start][:reps] for start in asked]
        rows = [(col[r], self.table[col[r]]) if r < len(col) else (asked[c], wire.END_OF_MIB_VIEW)
                for r in range(reps) for c, col in enumerate(after)]
        return 0, 0, _varbinds(rows)

    def close(self) -> None:
        """Nothing to release."""


def _varbinds(pairs: list[tuple[Oid, object]]) -> wire.VarBinds:
    return wire.VarBinds([wire.oid_bytes(o) for o, _ in pairs], [v for _, v in pairs])


def interfaces(n: int) -> dict[Oid, object]:
    table: dict[Oid, object] = {(1, 3, 6, 1, 2, 1, 1, 3, 0): wire.TimeTicks(5)}
    for i in range(1, n + 1):
        table[(*IF_DESCR, i)] = f"eth{i}".encode()
        table[(*IF_OPER, i)] = 1
    return table


async def test_a_walk_reads_every_row_of_every_column_and_halves_max_repetitions_on_toobig() -> None:
    agent = TableAgent(interfaces(7), max_reps=3)
    client: Client = agent
    got = await Session(client, max_repetitions=10).walk([IF_DESCR, IF_OPER])
    assert got == {IF_DESCR: {(i,): f"eth{i}".encode() for i in range(1, 8)}, IF_OPER: {(i,): 1 for i in range(1, 8)}}
    assert agent.asked[:3] == [10, 5, 2]  # tooBig twice, then walked 2 rows at a time
    assert set(agent.asked[2:]) == {2}


async def test_an_agent_error_names_the_oid() -> None:
    session = Session(TableAgent(interfaces(1), status=2), max_repetitions=10)
    with pytest.raises(SnmpError, match=r"agent error noSuchName at 1\.3\.6\.1\.2\.1\.1\.3\.0"):
        await session.get([(1, 3, 6, 1, 2, 1, 1, 3, 0)])


def test_resent_requests_are_taken_once() -> None:
    agent = TableAgent({})
    agent.resent = 3
    session = Session(agent, max_repetitions=10)
    assert (session.take_resent(), session.take_resent()) == (3, 0)


def test_pysnmp_is_loaded_only_for_v3_targets() -> None:
    """25 MB the daemon does not hold when no target is v3 (bench/README.md)."""
    code = """
import sys
from mepd import app
from mepd.cli import mepctl
from mepd.config import SnmpTargetConfig
from mepd.sources.snmp import discover, session
s = session.open_session(SnmpTargetConfig(name="a", host="127.0.0.1"))
s.close()
print("pysnmp" in sys.modules)
s = session.open_session(SnmpTargetConfig(name="b", host="127.0.0.1", version="3", user="u",
                                          auth_key="authpass123", priv_key="privpass123"))
s.close()
print("pysnmp" in sys.modules)
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]
