"""`GET /metrics` scraped as Prometheus does (bearer token or basic auth, gzip), read back with
prometheus_client's parser: a real mepd polling a real snmpd, and the dashboard's Site over real
stores with a running alert engine."""

from __future__ import annotations

import base64
import gzip
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mepd import __version__
from mepd.model import Sample
from mepd.web.prometheus import CONTENT_TYPE
from mepd.web.server import Access
from tests.helpers import Mepd, dead_snmp_target, free_port, prometheus_samples, snmp_target, syslog_listen, wait_for
from tests.integration.snmp.conftest import free_udp_port
from tests.integration.web.conftest import COMMUNITY, TARGET, UP_IF, Served, State, raise_incident

MakeMepd = Callable[..., Mepd]
Serve = Callable[..., Awaitable[Served]]
TOKEN = "a-scrape-token-of-32-characters!"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def config(http_port: int, token_file: Path, syslog_port: int, snmpd_port: int, dead_port: int) -> str:
    return syslog_listen(syslog_port, "udp") + f"""
[http]
listen = "127.0.0.1:{http_port}"
token_file = "{token_file}"

""" + snmp_target("box", snmpd_port, community=COMMUNITY, interval="5s", interfaces=["lo"],
                  oid=[{"name": "ifnumber", "oid": "1.3.6.1.2.1.2.1.0"},
                       {"name": "nothere", "oid": "1.3.6.1.4.1.99999.1.0"}]) + dead_snmp_target(dead_port)


def scrape(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


# Where a key's latest value is expected in the scrape: (sample name, labels, factor: bits to bytes).
LO = {"target": "box", "interface": "lo"}
EXPECTED = {
    "snmp.box.lo.in_bps": ("mepd_snmp_in_bytes_per_second", LO, 1 / 8),
    "snmp.box.lo.out_bps": ("mepd_snmp_out_bytes_per_second", LO, 1 / 8),
    "snmp.box.lo.in_pps": ("mepd_snmp_in_packets_per_second", LO, 1),
    "snmp.box.lo.oper_up": ("mepd_snmp_oper_up", LO, 1),
    "snmp.box.ifnumber": ("mepd_snmp_oid", {"target": "box", "name": "ifnumber"}, 1),
    "snmp.box.nothere": ("mepd_snmp_oid", {"target": "box", "name": "nothere"}, 1),
}


def test_prometheus_scrapes_a_running_mepd(mepd_factory: MakeMepd, snmpd_port: int, tmp_path: Path) -> None:
    http_port, syslog_port = free_port(), free_port()
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    d = mepd_factory(config(http_port, token, syslog_port, snmpd_port, free_udp_port())).start()
    url = f"http://127.0.0.1:{http_port}/metrics"
    auth = {"Authorization": f"Bearer {TOKEN}"}

    status, headers, _ = scrape(url, {})
    assert (status, headers["WWW-Authenticate"]) == (401, 'Bearer realm="mepd"')
    assert scrape(url, {"Authorization": "Bearer wrong-token-of-32-characters!!"})[0] == 401
    status, headers, body = scrape(url, {**auth, "Accept-Encoding": "gzip"})
    assert (status, headers["Content-Type"], headers["Content-Encoding"]) == (200, CONTENT_TYPE, "gzip")
    assert prometheus_samples(gzip.decompress(body).decode())[("mepd_build_info", frozenset({
        ("version", __version__)}))] == 1

    def metrics() -> dict[str, tuple[Any, Any]]:
        return {m["key"]: (m["ts"], m["value"]) for m in d.mepctl_json("metrics", "list")}

    def consistent() -> tuple[dict[str, tuple[Any, Any]], Samples] | None:
        """mepctl's latest values, with a scrape taken while none of them changed."""
        before = metrics()
        answer = scrape(url, auth)
        after = metrics()
        stable = all(k in before and before[k] == after.get(k) for k in EXPECTED)
        if not stable or before["snmp.box.lo.in_bps"][1] is None:  # the first poll's rates are unknown
            return None
        assert answer[0] == 200
        return before, prometheus_samples(answer[2].decode())

    latest, samples = wait_for(consistent, what="a poll with rates, scraped between two unchanged mepctl lists")
    assert latest["snmp.box.nothere"][1] is None, "an OID snmpd does not have: unknown every poll"
    for key, (name, labels, factor) in EXPECTED.items():
        known = latest[key][1]
        assert samples.get((name, frozenset(labels.items()))) == (None if known is None else known * factor), key
    assert latest["snmp.box.lo.oper_up"][1] == 1.0
    lo = set(LO.items())
    assert samples[("mepd_snmp_interface_info", frozenset({*lo, ("descr", "lo"), ("alias", "")}))] == 1
    assert samples[("mepd_snmp_admin_up", frozenset(lo))] == 1

    def dead_down() -> Samples | None:
        found = prometheus_samples(scrape(url, auth)[2].decode())
        return found if found.get(("mepd_snmp_target_up", frozenset({("target", "dead")}))) == 0 else None

    samples = wait_for(dead_down, what="the dead target scraped as down")
    assert samples[("mepd_snmp_target_up", frozenset({("target", "box")}))] == 1
    assert not any(("target", "dead") in labels and name.startswith("mepd_snmp_in") for name, labels in samples)
    running = frozenset({("component", "snmp/dead"), ("state", "running")})
    assert samples[("mepd_component_state", running)] == 1, "an unreachable agent is not a failed component"
    assert samples[("mepd_component_failed_cycles_total", frozenset({("component", "snmp/dead")}))] >= 1

    subprocess.run(["logger", "-n", "127.0.0.1", "-P", str(syslog_port), "-d", "-t", "prom", "scraped"],
                   check=True, timeout=30)
    d.wait_logs(1)
    status_json = d.mepctl_json("status")
    samples = prometheus_samples(scrape(url, auth)[2].decode())
    logs = frozenset({("channel", "logs")})
    assert samples[("mepd_pipeline_received_total", logs)] == status_json["pipeline"]["logs"]["received"] == 1
    assert samples[("mepd_pipeline_stored_total", logs)] == status_json["pipeline"]["logs"]["stored"] == 1
    udp = frozenset({("component", f"syslog/udp 127.0.0.1:{syslog_port}")})
    assert samples[("mepd_component_received_total", udp)] == 1
    assert samples[("mepd_logstore_records", frozenset())] == status_json["store"]["logs"]["records"] == 1
    assert d.stop() == 0


async def test_metrics_behind_basic_auth_with_incidents_and_stored_rates(state: State, serve: Serve) -> None:
    """The Site as the dashboard serves it: the same users as its pages, the alert engine's open incidents,
    and rates written through the RRD store (rrdtool updates) read back from its latest values."""
    await raise_incident(state)
    key = f"snmp.{TARGET}.{UP_IF}"
    now = time.time()
    await state.rrdstore.write([Sample(f"{key}.in_bps", now, 12.5e6), Sample(f"{key}.out_bps", now, None)])
    served = await serve(Access({"prometheus": "s3cret-pass"}, ()))

    async with served.session.get(served.url + "/metrics") as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Basic")
    basic = {"Authorization": f"Basic {base64.b64encode(b'prometheus:s3cret-pass').decode()}"}
    async with served.session.get(served.url + "/metrics", headers=basic) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == CONTENT_TYPE
        samples = prometheus_samples(await resp.text())
    assert samples[("mepd_incidents_open", frozenset({("severity", "critical"), ("state", "firing")}))] == 1
    assert samples[("mepd_incidents_open", frozenset({("severity", "warning"), ("state", "firing")}))] == 0
    iface = frozenset({("target", TARGET), ("interface", UP_IF)})
    assert samples[("mepd_snmp_in_bytes_per_second", iface)] == 12.5e6 / 8
    assert ("mepd_snmp_out_bytes_per_second", iface) not in samples, "unknown is left out"
    udp = frozenset({("component", "syslog/udp 127.0.0.1:5514")})
    assert samples[("mepd_component_dropped_queue_full_total", udp)] == state.dropped
