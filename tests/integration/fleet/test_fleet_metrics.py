"""An edge polling a real snmpd publishes its samples; a central's RRDs hold the same rows, across kill -9 of either."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.helpers import Mepd, free_port, rrdtool_cli, snmp_target, wait_for
from tests.integration.fleet.conftest import NatsServer
from tests.integration.snmp.conftest import COMMUNITY, Snmpd, snmpd, world_readable_tmp  # noqa: F401 - fixtures

MakeMepd = Callable[..., Mepd]
RRD = Path("state/rrd/snmp/box/lo.rrd")


def edge_config(server: NatsServer, agent: Snmpd) -> str:
    return (snmp_target("box", agent.port, community=COMMUNITY, interval="1s", interfaces=["lo"])
            + f'[fleet]\nservers = ["{server.url}"]\nnode = "poller1"\npublish = ["metrics"]\n')


def central_config(server: NatsServer, http: int) -> str:
    return (f'[http]\nlisten = "127.0.0.1:{http}"\n'
            f'[fleet]\nservers = ["{server.url}"]\nnode = "central"\npublish = []\n'
            '[fleet.central]\nenabled = true\nconsumer = "c1"\n')


def component(daemon: Mepd, name: str) -> dict[str, Any]:
    return next(c for c in daemon.mepctl_json("status")["components"] if c["name"] == name)


def last_update(path: Path) -> int:
    if not path.exists():
        return 0
    return int(rrdtool_cli("last", str(path)))


def rows(path: Path, start: int, end: int) -> list[str]:
    """The file's finest AVERAGE rows in (start, end], as rrdtool prints them."""
    out = rrdtool_cli("fetch", str(path), "AVERAGE", "-r", "1", "-s", str(start), "-e", str(end))
    return [line for line in out.splitlines()[2:] if line.strip()]


def caught_up(edge: Mepd, central: Mepd, after: int) -> int | None:
    """The edge's last update once it is past `after` and the central's file has reached it too."""
    last = last_update(edge.root / RRD)
    return last if last > after and last_update(central.root / RRD) >= last else None


def assert_same_rows(edge: Mepd, central: Mepd, start: int, end: int) -> list[str]:
    mine, theirs = rows(edge.root / RRD, start, end), rows(central.root / RRD, start, end)
    assert theirs == mine
    return mine


def test_the_centrals_rrd_holds_the_edges_rows_across_kill_9_of_central_and_edge(
        nats_server: NatsServer, mepd_factory: MakeMepd, snmpd: Snmpd) -> None:  # noqa: F811 - fixture
    edge = mepd_factory(edge_config(nats_server, snmpd)).start()
    http = free_port()
    central = mepd_factory(central_config(nats_server, http)).start()
    first = wait_for(lambda: last_update(edge.root / RRD), what="the edge's first row")
    end = wait_for(lambda: caught_up(edge, central, first + 4), what="the central's file caught up")
    known = assert_same_rows(edge, central, first, end)
    assert any("nan" not in line.split(":", 1)[1] for line in known), known  # rates, not only unknowns

    # The central killed while the edge polls on: what it missed comes after its restart, in order.
    central.stop(signal.SIGKILL)
    down = last_update(edge.root / RRD)
    wait_for(lambda: last_update(edge.root / RRD) >= down + 3, what="the edge polling on without the central")
    central.start()
    end = wait_for(lambda: caught_up(edge, central, down + 3), what="the central caught up after its kill -9")

    # The edge killed mid-flow and started again: its queue on disk is sent on, nothing twice.
    edge.stop(signal.SIGKILL)
    edge.start()
    end = wait_for(lambda: caught_up(edge, central, end + 3), what="the central caught up after the edge's kill -9")
    assert_same_rows(edge, central, first, end)

    published = component(edge, "fleet/metrics")
    assert published["state"] == "running"
    wait_for(lambda: component(edge, "fleet/metrics")["details"]["backlog"] == 0, what="the edge's backlog 0")
    stored = component(central, "fleet/central-metrics")
    assert stored["counters"]["stored"] > 0
    assert stored["details"]["nodes"]["poller1"]["targets"] == ["box"]
    listed = {m["key"] for m in central.mepctl_json("metrics", "list")}
    assert {"snmp.box.lo.in_bps", "snmp.box.lo.out_bps", "snmp.box.lo.oper_up"} <= listed
    info = rrdtool_cli("info", str(central.root / RRD))
    assert "step = 1\n" in info  # the edge's layout (its 1s interval), not the central's default 5m
    overview = central.dashboard_get(f"http://127.0.0.1:{http}/").decode()
    assert "if/box/lo.html" in overview  # the edge's target among the central's interfaces
    assert b"lo" in central.dashboard_get(f"http://127.0.0.1:{http}/if/box/lo.html")
