"""Forecasts in the real daemon, from an SNMP agent (snmpsim) and real RRDs.

A forecast rule: a gauge the agent serves rises, one value a poll, well below the
rule's `above` but fast enough to reach it within the rule's horizon: the incident
opens; the gauge falls to zero and stays there, the trend turns down, and the
incident resolves.  The interface page: an interface whose RRD holds a rising
trend shows its crossing date and the trend graph drawn to it.
"""

from __future__ import annotations

import asyncio
import re
import struct
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mepd.model import Sample
from mepd.sources.snmp.interfaces import METRICS
from mepd.store.rrd.store import Layouts, RrdStore, layout
from tests.helpers import Mepd, free_port, snmp_target, wait_for
from tests.integration.snmp.conftest import Iface, Sim, snmprec

StartSim = Callable[[Mapping[str, str]], Sim]
MakeMepd = Callable[..., Mepd]
GAUGE = "1.3.6.1.4.1.99.1.0"
KEY = "snmp.q.queue"
DEADLINE = 120.0  # the trend turns after as many polls at zero as it rose for; a loaded machine polls late
DAY = 86400


def agent(queue: int) -> str:
    return snmprec(1000, [], extra={GAUGE: f"66|{queue}"})


def rule_config(port: int) -> str:
    return snmp_target("q", port, community="q", interval="1s", timeout="2s", retries=1,
                       oid=[{"name": "queue", "oid": GAUGE}]) + '''
[report]
forecast_window = "1h"
[alert]
group_wait = "0s"
evaluation_interval = "100ms"
forecast_interval = "1s"
[[alert.rule]]
name = "queue-filling"
forecast = "1d"
metric = "snmp.q.queue"
above = 10000
'''


def latest(d: Mepd) -> float | None:
    rows = d.mepctl_json("metrics", "list", "--prefix", KEY)
    return next((r["value"] for r in rows if r["key"] == KEY), None)


def incidents(d: Mepd, *args: str) -> list[dict[str, Any]]:
    return [i for i in d.mepctl_json("incidents", *args) if i["rule"] == "queue-filling"]


def test_a_forecast_rule_fires_while_the_trend_crosses_within_its_horizon(start_sim: StartSim,
                                                                          mepd_factory: MakeMepd) -> None:
    sim = start_sim({"q": agent(100)})
    d = mepd_factory(rule_config(sim.port)).start()
    assert incidents(d) == []
    # One value a poll, 100 more each: 10,000 is some 100 polls (seconds) away, far under a day.
    queue = 100
    while not incidents(d):
        wait_for(lambda: latest(d) == queue, timeout=DEADLINE,  # noqa: B023 - waited for in this iteration
                 what=f"the daemon to poll {queue}")
        assert queue < 5000, "no incident while the queue rose from 100 to 5000"
        queue += 100
        sim.set("q", agent(queue))
    [inc] = incidents(d)
    assert inc["state"] == "firing"
    assert inc["labels"]["key"] == KEY
    assert inc["summary"].startswith(f"{KEY} reaches 10000 in ")
    assert 0 < inc["value"] < 1  # the days left, under the rule's horizon
    assert queue < 10000  # fired on the trend, the value far from `above`

    sim.set("q", agent(0))
    wait_for(lambda: not incidents(d), timeout=DEADLINE, what="the incident to resolve as the trend turns down")
    [resolved] = incidents(d, "--all")
    assert (resolved["id"], resolved["state"]) == (inc["id"], "resolved")
    assert latest(d) == 0


async def rising_traffic(root: str, end: int, step: int) -> None:
    """Two days of eth0's inbound traffic rising 10 Mb/s a day from 100 Mb/s, as the daemon's RRD sink
    writes an interface (one file, every metric of the interface in it)."""
    store = RrdStore(root, layouts=Layouts(layout(step), {"snmp.sw.": layout(step, group=METRICS)}))
    start = end - 2 * DAY
    result = await store.write([Sample(f"snmp.sw.eth0.{m}", ts, v) for ts in range(start, end + 1, step)
                                for m, v in (("in_bps", 100e6 + 10e6 * (ts - start) / DAY), ("out_bps", 5e6),
                                             ("oper_up", 1.0))])
    assert not result.errors, result.errors
    await store.close()


def test_the_interface_page_draws_the_trend_to_its_crossing(start_sim: StartSim, mepd_factory: MakeMepd,
                                                            tmp_path: Path) -> None:
    sim = start_sim({"sw": snmprec(1000, [Iface(1, "eth0", speed=1_000_000_000)])})
    http = free_port()
    d = mepd_factory(snmp_target("sw", sim.port, community="sw", interval="300s", interfaces=["eth0"])
                     + f'[report]\nforecast_window = "1d"\n[http]\nlisten = "127.0.0.1:{http}"\n')
    step = 300
    end = int(time.time()) // step * step - step  # before the daemon's first poll
    asyncio.run(rising_traffic(str(d.root / "state" / "rrd"), end, step))
    d.start()
    base = f"http://127.0.0.1:{http}"
    # 120 Mb/s at the window's start, 130 at its end: 800 Mb/s (80 % of the speed) 67 days later.
    expected = datetime.fromtimestamp(end + 67 * DAY, UTC)

    def forecast_told() -> list[str] | None:
        page = d.dashboard_get(f"{base}/if/sw/eth0.html").decode()
        return re.findall(r"in reaches 800\.0 Mb/s on (\d{4}-\d\d-\d\d)", page) or None

    [date] = wait_for(forecast_told, what="the interface page to tell the inbound forecast (the speed polled)")
    assert abs((datetime.fromisoformat(date).replace(tzinfo=UTC) - expected).days) <= 1
    page = d.dashboard_get(f"{base}/if/sw/eth0.html").decode()
    assert 'src="../../graph/snmp.sw.eth0/trend.png"' in page
    png = d.dashboard_get(f"{base}/graph/snmp.sw.eth0/trend.png")
    assert png.startswith(b"\x89PNG")
    assert struct.unpack(">II", png[16:24]) == (700, 270)  # the size the page's <img> says
    assert d.dashboard_get(f"{base}/graph/snmp.sw.eth0/trend.svg").lstrip().startswith(b"<?xml")
    d.mepctl("dashboard", "export", str(tmp_path / "site"))  # the static page's graph is written with it
    assert 'src="../../graph/snmp.sw.eth0/trend.png"' in (tmp_path / "site/if/sw/eth0.html").read_text()
    assert (tmp_path / "site/graph/snmp.sw.eth0/trend.png").read_bytes().startswith(b"\x89PNG")
