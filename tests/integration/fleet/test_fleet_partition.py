"""A poller cut off from the NATS cluster stops polling its targets before the others take them (issue 24).

Three real nats-server processes in one JetStream cluster, three mepd pollers
sharing 30 snmpsim targets (the agents of `test_fleet_polling`).  The cut-off
poller knows only one server, which is killed -9: the others, on the two
other servers, keep the lease bucket (3 replicas, its leader elsewhere) and
take its targets.  Then the server comes back and the poller takes its share
back, and no more.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Mapping
from typing import Any

import nats
import pytest
from nats.js.api import KeyValueConfig

from mepd.fleet.sharing import BUCKET
from tests.helpers import Mepd, snmp_target, wait_for
from tests.integration.fleet.conftest import NatsServer, start_cluster
from tests.integration.fleet.test_fleet_polling import INTERVAL, TARGETS, agent, epoch, polls, spread, status
from tests.integration.snmp.conftest import Sim, start_sim, world_readable_tmp

__all__ = ["start_sim", "world_readable_tmp"]  # the SNMP tests' fixtures, used here too

MakeMepd = Callable[..., Mepd]


def config(servers: list[NatsServer], sim: Sim, node: str) -> str:
    urls = ", ".join(f'"{s.url}"' for s in servers)
    fleet = f'[fleet]\nservers = [{urls}]\nnode = "{node}"\npublish = []\nreplicas = 3\nshare_polling = true\n'
    return fleet + "".join(snmp_target(t, sim.port, community=t, interval=f"{INTERVAL:.0f}s", interfaces=["if1"])
                           for t in TARGETS)


async def _bucket_leader(urls: list[str]) -> str:
    """Make the lease bucket as the pollers would (3 replicas) and name the server leading it."""
    nc = await nats.connect(urls)
    try:
        js = nc.jetstream()
        await js.create_key_value(KeyValueConfig(bucket=BUCKET, history=1, replicas=3))
        info = await js.stream_info(f"KV_{BUCKET}")
    finally:
        await nc.close()
    assert info.cluster is not None
    assert info.cluster.leader is not None
    return info.cluster.leader


def leases(d: Mepd) -> dict[str, Any]:
    details: dict[str, Any] = status(d)["fleet/leases"]["details"]
    return details


def counter(d: Mepd, name: str) -> int:
    value: int = status(d)["fleet/leases"]["counters"].get(name, 0)
    return value


def only_owners_poll(daemons: Mapping[str, Mepd], owned: Mapping[str, set[str]], cycles: int) -> None:
    """Over `cycles` polls of every target by its owner, no other poller's count of it moves."""
    before = {n: polls(d) for n, d in daemons.items()}
    wait_for(lambda: all(polls(daemons[n])[t] >= before[n][t] + cycles for n in owned for t in owned[n]),
             what=f"{cycles} more polls of every target by its owner")
    after = {n: polls(d) for n, d in daemons.items()}
    for n in daemons:
        others = set(TARGETS) - owned.get(n, set())
        assert {t for t in others if after[n][t] != before[n][t]} == set(), f"{n} polled targets it does not hold"


@pytest.mark.slow  # some 75 s on a loaded 2-core machine
def test_a_poller_cut_off_from_the_cluster_stops_polling_before_its_targets_move_and_rejoins_calmly(
        nats_factory: Callable[..., NatsServer], start_sim: Callable[[Mapping[str, str]], Sim],
        mepd_factory: MakeMepd) -> None:
    # Servers that advertise no other server to clients: else the client would fail over to one it learnt.
    nats_cluster = start_cluster(nats_factory, "  no_advertise: true\n")
    sim = start_sim(dict.fromkeys(TARGETS, agent()))
    # The cut server is not the bucket's leader: the others' renewals go on (the leader's loss is
    # test_fleet_cluster's subject); only the cut-off poller loses the cluster.
    leader = asyncio.run(_bucket_leader(nats_cluster.urls))
    cut = next(s for s in nats_cluster.servers if s is not nats_cluster.server_named(leader))
    rest = [s for s in nats_cluster.servers if s is not cut]
    daemons = {"p0": mepd_factory(config(rest, sim, "p0")), "p1": mepd_factory(config(rest, sim, "p1")),
               "p2": mepd_factory(config([cut], sim, "p2"))}
    for d in daemons.values():
        d.start()
    owned = wait_for(lambda: spread(daemons), what="30 targets split 10/10/10")
    only_owners_poll(daemons, owned, 2)

    # p2's only server killed -9: the others take its targets; p2 has stopped polling them by then.
    survivors = {n: daemons[n] for n in ("p0", "p1")}
    orphans = owned["p2"]
    cut_at = time.time()
    cut.stop(signal.SIGKILL)
    frozen: dict[str, int] = {}

    def taken_over() -> dict[str, set[str]] | None:
        result = spread(survivors)
        if result is not None:
            frozen.update(polls(daemons["p2"]))  # p2's counts as the take-over is first seen
        return result

    owned = wait_for(taken_over, what="p2's targets taken over by p0 and p1")
    assert sorted(len(s) for s in owned.values()) == [15, 15]
    moved = {t: lease for d in survivors.values()
             for t, lease in d.mepctl_json("fleet", "status")["polling"]["targets"].items() if t in orphans}
    for t, lease in moved.items():
        since = epoch(lease["since"])
        assert since - cut_at <= 2 * INTERVAL, f"{t} taken over {since - cut_at:.1f}s after the cut"
    only_owners_poll(daemons, owned, 3)
    assert polls(daemons["p2"]) == frozen, "p2 went on polling after its targets were taken over"
    cut_off = leases(daemons["p2"])
    assert cut_off["state"] == "disconnected"
    assert cut_off["held"] == 0
    assert {t for t, lease in cut_off["targets"].items() if lease["poller"] == "p2"} == set()
    assert counter(daemons["p2"], "renew_failures") > 0

    # The server back: p2 reconnects and takes its share (10) back; no more moves than that.
    lost_before = sum(counter(d, "lost") for d in survivors.values())
    cut.start()
    nats_cluster.wait_ready()
    owned = wait_for(lambda: spread(daemons), what="p2 back with its share")
    assert sorted(len(s) for s in owned.values()) == [10, 10, 10]
    assert leases(daemons["p2"])["state"] == "connected"
    only_owners_poll(daemons, owned, 2)
    assert sum(counter(d, "lost") for d in survivors.values()) - lost_before == 10
