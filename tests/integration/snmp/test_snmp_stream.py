"""Rows a walk has completed go on the pipeline while it goes on, with the samples the whole walk would give."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from mepd.pipeline import Pipeline
from mepd.sources.snmp import target as snmp
from mepd.sources.snmp.target import SnmpTarget
from tests.integration.snmp.conftest import Iface, Poller, Sim, snmprec
from tests.integration.snmp.test_snmp_agents import target, values

StartSim = Callable[[Mapping[str, str]], Sim]
N = 20


def ifaces(octets: int, renamed_down: int | None = None) -> list[Iface]:
    """N interfaces; `renamed_down` is the index of one that went down and was renamed wan0."""
    return [Iface(n, "wan0" if n == renamed_down else f"eth{n}", in_octets=octets * n,
                  oper=2 if n == renamed_down else 1) for n in range(1, N + 1)]


def queued_at_each_request(t: SnmpTarget, pipeline: Pipeline) -> list[int]:
    """How many samples wait on the pipeline as each request of `t` is sent."""
    seen: list[int] = []
    assert t._session is not None
    client: Any = t._session.client
    request = client.request

    async def watched(*args: Any, **kw: Any) -> Any:
        seen.append(len(pipeline.samples.subscribers[0]))
        return await request(*args, **kw)

    client.request = watched
    return seen


async def test_steady_poll_puts_rows_before_the_walk_ends(start_sim: StartSim, poller: Poller, pipeline: Pipeline,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snmp, "STREAM_CHUNK", 9)  # an interface's samples: put as soon as a row is complete
    sim = start_sim({"st": snmprec(1000, ifaces(0))})
    t = await poller(target("st", sim.port, max_repetitions=2))
    await t.poll_once()
    before = len(pipeline.samples.subscribers[0])
    sim.set("st", snmprec(2000, ifaces(10_000)))
    seen = queued_at_each_request(t, pipeline)
    got = values(await t.poll_once())
    assert seen[-1] > before  # samples of the first rows were queued before the last GETBULK
    assert len(got) == 9 * N
    assert all(got[f"snmp.st.eth{n}.in_bps"] == pytest.approx(10_000 * n * 8 / 10) for n in range(1, N + 1))
    assert t.counters.get("samples") == len(pipeline.samples.subscribers[0]) == 2 * 9 * N


@pytest.mark.parametrize("chunk", [9, snmp.STREAM_CHUNK])  # rows put as they come, or all still waiting
async def test_a_changed_row_stops_the_stream_and_the_rest_waits_for_the_descriptive_walk(
        start_sim: StartSim, poller: Poller, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(snmp, "STREAM_CHUNK", chunk)
    sim = start_sim({"ch": snmprec(1000, ifaces(0))})
    t = await poller(target("ch", sim.port, max_repetitions=2))
    await t.poll_once()
    sim.set("ch", snmprec(2000, ifaces(10_000, renamed_down=N - 2)))
    samples = await t.poll_once()
    got = values(samples)
    assert len(samples) == len(got) == 9 * N  # no interface twice, none under its old name
    assert t.counters.get("describe_walks") == 2
    assert (got["snmp.ch.wan0.oper_up"], got[f"snmp.ch.eth{N - 3}.oper_up"]) == (0.0, 1.0)
    rest = [n for n in range(1, N + 1) if n != N - 2]
    assert all(got[f"snmp.ch.eth{n}.in_bps"] == pytest.approx(10_000 * n * 8 / 10) for n in rest)
    assert got["snmp.ch.wan0.in_bps"] is None  # a new name has no previous reading
    assert t.counters.get("samples") == len(pipeline.samples.subscribers[0]) == 2 * 9 * N
