"""An edge mepd and a central mepd through a real nats-server: every record once, with its fields and `node`."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.api import StreamConfig

from mepd.fleet.connection import MAX_PINGS, PING_INTERVAL
from tests.helpers import Mepd, free_port, syslog_listen, wait_for
from tests.integration.fleet.conftest import NatsServer
from tests.integration.journal.journal_files import JournalDir, entry

MakeMepd = Callable[..., Mepd]


def fleet(server: NatsServer, node: str, extra: str = "") -> str:
    return f'[fleet]\nservers = ["{server.url}"]\nnode = "{node}"\nbatch_size = 50\n{extra}'


def central_config(server: NatsServer, consumer: str = "c1") -> str:
    return fleet(server, "central", 'publish = []\n') + f'[fleet.central]\nenabled = true\nconsumer = "{consumer}"\n'


def component(daemon: Mepd, name: str) -> dict[str, Any]:
    status = daemon.mepctl_json("status")
    return next(c for c in status["components"] if c["name"] == name)


def one_refused(mepd_factory: MakeMepd, good: str, wrong: str, central: str) -> tuple[Mepd, str]:
    """Edge web1 (`good` [fleet]), web2 (`wrong`, which the server refuses) and a central (`central`): web1's
    10 records reach the central; web2, refused, and its refusal as its status shows it."""
    ports = free_port(), free_port()
    mepd_factory(syslog_listen(ports[0], "udp") + good).start()
    refused_edge = mepd_factory(syslog_listen(ports[1], "udp") + wrong).start()
    collector = mepd_factory(central + '[fleet.central]\nenabled = true\nconsumer = "c1"\n').start()
    for port in ports:
        send_udp(port, 0, 10)
    collector.wait_logs(10, "--node", "web1")
    assert numbered(collector, "--node", "web1") == list(range(10))

    def refused() -> str | None:
        d = component(refused_edge, "fleet/publish")["details"]
        return d["last_error"] if d["state"] != "connected" and d["last_error"] else None

    error = wait_for(refused, what="web2's refusal in status")
    assert component(refused_edge, "fleet/publish")["state"] == "running"
    refused_edge.wait_logs(10)  # still collecting
    assert collector.logs("--node", "web2") == []
    return refused_edge, error


def numbered(daemon: Mepd, *args: str) -> list[int]:
    return sorted(int(r["message"].rsplit(" ", 1)[1]) for r in daemon.logs("--grep", "seq ", *args))


def send_udp(port: int, first: int, last: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(first, last):
            s.sendto(f"<134>Jan  5 10:00:00 web1 app[7]: seq {i}".encode(), ("127.0.0.1", port))


def test_syslog_tail_and_journal_records_reach_the_central_once_with_node(
        nats_server: NatsServer, mepd_factory: MakeMepd, tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    journal.mkdir()
    JournalDir(journal).write([entry(i, MESSAGE=f"journal line {i}") for i in range(3)])
    tailed = tmp_path / "app.log"
    tailed.write_text("")
    port = free_port()
    edge = mepd_factory(
        syslog_listen(port, "udp")
        + f'[journal]\nenabled = true\npath = "{journal}"\nstart = "head"\n'
        + f'[[tail]]\nname = "app"\npath = "{tailed}"\nformat = "plain"\n'
        + fleet(nats_server, "web1")
    ).start()
    central = mepd_factory(central_config(nats_server)).start()
    subprocess.run(["logger", "-d", "-n", "127.0.0.1", "-P", str(port), "--rfc5424", "-t", "billing",
                    "--sd-id", "meta@32473", "--sd-param", 'order="42"', "paid by logger"], check=True)
    with tailed.open("a") as f:
        f.write("tailed line one\ntailed line two\n")
    records = central.wait_logs(6, "--node", "web1")
    wait_for(lambda: component(edge, "fleet/publish")["details"]["backlog"] == 0, what="edge backlog 0")
    records = central.logs("--node", "w*1")
    assert sorted(r["message"] for r in records) == sorted([
        "journal line 0", "journal line 1", "journal line 2", "paid by logger", "tailed line one",
        "tailed line two"])
    assert {r["node"] for r in records} == {"web1"}
    logged = next(r for r in records if r["message"] == "paid by logger")
    assert (logged["app"], logged["source"], logged["sd"]["meta@32473"]) == ("billing", "syslog/udp", {"order": "42"})

    def fields(r: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(sorted((k, str(v)) for k, v in r.items() if k not in ("id", "node")))

    assert sorted(map(fields, records)) == sorted(map(fields, edge.logs()))
    journaled = next(r for r in records if r["message"] == "journal line 0")
    assert (journaled["host"], journaled["source"], journaled["severity"]) == ("web1", "journal", "info")
    assert {r["source"] for r in records} == {"syslog/udp", "journal", "tail:app"}
    assert central.logs("--node", "db*") == []
    assert all(r["node"] is None for r in edge.logs())
    central_status = component(central, "fleet/central")
    assert central_status["state"] == "running"
    assert central_status["details"]["state"] == "connected"
    assert central_status["details"]["nodes"]["web1"]["records"] == 6


def test_cluster_down_while_the_edge_receives_backlog_then_caught_up(
        nats_server: NatsServer, mepd_factory: MakeMepd) -> None:
    port = free_port()
    edge = mepd_factory(syslog_listen(port, "udp") + fleet(nats_server, "web1")).start()
    central = mepd_factory(central_config(nats_server)).start()
    send_udp(port, 0, 300)
    wait_for(lambda: len(central.logs("--node", "web1")) == 300, what="first 300 at the central")
    nats_server.stop()
    send_udp(port, 300, 800)
    edge.wait_logs(800)

    def backlog() -> dict[str, Any] | None:
        d = component(edge, "fleet/publish")["details"]
        return d if d["backlog"] == 500 and d["state"] != "connected" else None

    shown = wait_for(backlog, what="backlog of 500 while nats-server is down")
    assert shown["backlog_oldest_age"] is not None
    assert "fleet/publish: disconnected" in edge.mepctl("status").stdout
    nats_server.start()
    wait_for(lambda: len(central.logs("--node", "web1")) >= 800, what="caught up at the central")
    wait_for(lambda: component(edge, "fleet/publish")["details"]["backlog"] == 0, what="edge backlog 0")
    assert numbered(central, "--node", "web1") == list(range(800))


@pytest.mark.slow
def test_a_hung_server_is_noticed_by_its_pings_and_the_edge_catches_up_when_it_wakes(
        nats_server: NatsServer, mepd_factory: MakeMepd) -> None:
    port = free_port()
    edge = mepd_factory(syslog_listen(port, "udp") + fleet(nats_server, "web1")).start()
    send_udp(port, 0, 10)
    wait_for(lambda: component(edge, "fleet/publish")["details"]["published_upto"] == 10, what="the first 10 sent")
    assert nats_server.proc is not None
    nats_server.proc.send_signal(signal.SIGSTOP)  # the process is there, its socket open, nothing answers
    try:
        send_udp(port, 10, 20)
        edge.wait_logs(20)
        # Seen by the client's pings (PING_INTERVAL x MAX_PINGS, 30 s), not after nats-py's 4 minutes.
        down = wait_for(lambda: (d := component(edge, "fleet/publish")["details"])["state"] != "connected" and d,
                        timeout=PING_INTERVAL * MAX_PINGS + 30, what="the hung server noticed")
        assert down["backlog"] == 10
    finally:
        nats_server.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: component(edge, "fleet/publish")["details"]["published_upto"] == 20, timeout=60,
             what="the 10 waiting records sent once the server answers again")


def test_edge_killed_mid_publish_and_central_killed_mid_consume_store_each_record_once(
        nats_server: NatsServer, mepd_factory: MakeMepd) -> None:
    port = free_port()
    edge = mepd_factory(syslog_listen(port, "udp") + fleet(nats_server, "web1")).start()
    central = mepd_factory(central_config(nats_server)).start()
    total = 0
    for _ in range(3):
        send_udp(port, total, total + 2000)
        total += 2000
        edge.wait_logs(total)
        wait_for(lambda: component(edge, "fleet/publish")["counters"].get("published", 0) > 0,
                 what="edge publishing")
        edge.stop(signal.SIGKILL)
        central.stop(signal.SIGKILL)
        edge.start()
        central.start()
    wait_for(lambda: len(central.logs("--node", "web1")) >= total, what=f"{total} at the central")
    wait_for(lambda: component(edge, "fleet/publish")["details"]["backlog"] == 0, what="edge backlog 0")
    wait_for(lambda: component(central, "fleet/central")["details"]["lag"] == 0, what="central lag 0")
    assert numbered(central, "--node", "web1") == list(range(total))


def test_wrong_credentials_are_a_status_line_and_the_node_keeps_collecting(
        nats_factory: Callable[..., NatsServer], mepd_factory: MakeMepd, tmp_path: Path) -> None:
    server = nats_factory('authorization { user: "mepd", password: "right" }\n')
    secret = tmp_path / "password"
    secret.write_text("wrong\n")
    secret.chmod(0o600)
    port = free_port()
    edge = mepd_factory(syslog_listen(port, "udp")
                        + fleet(server, "web1", f'user = "mepd"\npassword_file = "{secret}"\n')).start()
    send_udp(port, 0, 10)
    edge.wait_logs(10)

    def refused() -> str | None:
        d = component(edge, "fleet/publish")["details"]
        return d["last_error"] if d["state"] != "connected" and d["last_error"] else None

    error = wait_for(refused, what="the refusal in status")
    assert "authorization" in error.lower()
    assert "wrong" not in edge.stderr()
    assert f"fleet/publish: connecting: {error}" in edge.mepctl("status").stdout
    assert component(edge, "fleet/publish")["state"] == "running"
    wait_for(lambda: component(edge, "fleet/publish")["details"]["backlog"] == 10,
             what="the 10 records in the backlog (it is measured every few seconds)")


def test_token_file_against_a_server_with_a_token_and_a_wrong_one_is_a_status_line(
        nats_factory: Callable[..., NatsServer], mepd_factory: MakeMepd, tmp_path: Path) -> None:
    server = nats_factory('authorization { token: "s3cret-token" }\n')

    def token(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(text + "\n")
        path.chmod(0o600)
        return f'token_file = "{path}"\n'

    wrong, error = one_refused(mepd_factory, fleet(server, "web1", token("right", "s3cret-token")),
                               fleet(server, "web2", token("wrong", "not-it")),
                               fleet(server, "central", 'publish = []\n' + token("central", "s3cret-token")))
    assert "authorization" in error.lower()
    assert "not-it" not in wrong.stderr()


FLEET_RULES = '''
[alert]
group_wait = "0s"
evaluation_interval = "100ms"
[[alert.rule]]
name = "ssh-spray"
pattern = "Failed password"
app = "sshd"
distinct = "host"
count = 5
window = "1h"
summary = "failed logins on {distinct} hosts"
[[alert.rule]]
name = "marker"
pattern = "test marker"
app = "marker"
'''


def test_a_central_rule_counts_distinct_hosts_across_nodes_five_fire_four_do_not(
        nats_server: NatsServer, mepd_factory: MakeMepd) -> None:
    ports = {node: free_port() for node in ("web1", "web2")}
    for node, port in ports.items():
        mepd_factory(syslog_listen(port, "udp") + fleet(nats_server, node)).start()
    central = mepd_factory(central_config(nats_server) + FLEET_RULES).start()

    def send(node: str, host: str, app: str, message: str) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(f"<38>Oct 11 22:14:15 {host} {app}[811]: {message}".encode(), ("127.0.0.1", ports[node]))

    def incidents(rule: str) -> list[dict[str, Any]]:
        return [i for i in central.mepctl_json("incidents") if i["rule"] == rule]

    # Four hosts behind two nodes, some twice; then a marker from each node after its lines: a node's
    # records reach the central's rules in order, so the marker's count of 2 means all lines were seen.
    for node, host in (("web1", "h1"), ("web2", "h2"), ("web1", "h3"), ("web2", "h4"), ("web1", "h1"),
                       ("web2", "h2")):
        send(node, host, "sshd", f"Failed password for root from 192.0.2.7 port 22 ssh2 ({host})")
    for node in ports:
        central.wait_logs(3, "--node", node, "--grep", "Failed password")
        send(node, "tester", "marker", f"test marker from {node}")
    wait_for(lambda: [i for i in incidents("marker") if i["count"] == 2], what="both markers at the central's rules")
    assert incidents("ssh-spray") == []
    send("web2", "h5", "sshd", "Failed password for root from 192.0.2.7 port 22 ssh2 (h5)")
    [inc] = wait_for(lambda: incidents("ssh-spray"), what="an incident from five hosts on two nodes")
    assert (inc["summary"], inc["count"]) == ("failed logins on 5 hosts", 5)


def test_an_edges_incident_fired_acknowledged_resolved_reaches_the_central_with_its_node(
        nats_server: NatsServer, mepd_factory: MakeMepd) -> None:
    port = free_port()
    edge = mepd_factory(syslog_listen(port, "udp") + fleet(nats_server, "web1") + FLEET_RULES).start()
    central = mepd_factory(central_config(nats_server)).start()

    def at_central(state: str) -> dict[str, Any] | None:
        found = central.mepctl_json("incidents", "--node", "web*", "--all")
        return found[0] if len(found) == 1 and found[0]["state"] == state else None

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"<38>Oct 11 22:14:15 h1 marker[1]: test marker one", ("127.0.0.1", port))
    [fired] = wait_for(lambda: edge.mepctl_json("incidents"), what="the incident on the edge")
    seen = wait_for(lambda: at_central("firing"), what="the firing incident at the central")
    assert (seen["node"], seen["id"], seen["rule"], seen["summary"]) == ("web1", fired["id"], "marker",
                                                                          fired["summary"])
    edge.mepctl("ack", str(fired["id"]), "-m", "on it")
    assert wait_for(lambda: at_central("acknowledged"), what="acknowledged at the central")["comment"] == "on it"
    edge.mepctl("resolve", str(fired["id"]), "-m", "fixed")
    wait_for(lambda: at_central("resolved"), what="resolved at the central")
    assert central.mepctl_json("incidents", "--node", "web1") == []  # open ones only
    assert central.mepctl_json("incidents", "--node", "db*", "--all") == []
    assert central.mepctl_json("incidents") == []  # the central's own: none
    assert "web1" in central.mepctl("incidents", "--node", "*", "--all").stdout
    counters = component(central, "fleet/central-incidents")["counters"]
    assert counters["changes"] == 3


def test_fleet_status_and_the_dashboard_show_each_node_with_its_heartbeat_and_the_stream(
        nats_server: NatsServer, mepd_factory: MakeMepd) -> None:
    port, http = free_port(), free_port()
    edge = mepd_factory(syslog_listen(port, "udp") + fleet(nats_server, "web1")).start()
    central = mepd_factory(central_config(nats_server) + f'[http]\nlisten = "127.0.0.1:{http}"\n').start()
    send_udp(port, 0, 120)
    central.wait_logs(120, "--node", "web1")

    def settled() -> dict[str, Any] | None:
        status = central.mepctl_json("fleet", "status")
        beat = status["heartbeats"].get("web1", {})
        return status if beat.get("published") == 120 and status["lag"] == 0 and status["stream"] else None

    status = wait_for(settled, what="web1's heartbeat after publishing 120, lag 0")
    assert status["nodes"]["web1"]["records"] == 120
    assert status["heartbeats"]["web1"]["backlog"] == 0
    assert (status["stream"]["name"], status["stream"]["replicas"]) == ("MEPD_LOGS", 1)
    messages = status["stream"]["messages"]
    assert messages >= 3  # 120 records, at most 50 a message; more when they reached the store in several batches
    text = central.mepctl("fleet", "status").stdout
    assert text.splitlines()[1].split()[0] == "web1"
    assert f"stream MEPD_LOGS: {messages} messages" in text
    assert edge.mepctl("fleet", "status", check=False).returncode == 1
    # The dashboard: the overview lists the node, the logs page filters on it and shows each record's node.
    overview = central.dashboard_get(f"http://127.0.0.1:{http}/").decode()
    nodes = overview.partition("<section id=nodes>")[2].partition("</section>")[0]
    assert '<td>web1 <a href="logs.html?node=web1">logs</a></td>' in nodes
    assert "<td>120</td><td>0</td>" in nodes  # records, backlog
    page = central.dashboard_get(f"http://127.0.0.1:{http}/logs.html?node=web*&limit=0").decode()
    assert "Found 120 records" in page
    assert page.count("<td>web1</td><td>web1</td>") == 120  # node, host
    assert "Found 0 records" in central.dashboard_get(f"http://127.0.0.1:{http}/logs.html?node=db1").decode()


def make_ca(root: Path, name: str) -> tuple[Path, Path]:
    """A CA (made here with openssl) and its key."""
    ca, key = root / f"{name}-ca.pem", root / f"{name}-ca.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(ca),
                    "-days", "2", "-subj", f"/CN={name} test CA"], check=True, capture_output=True)
    return ca, key


def server_cert(root: Path, ca: Path, ca_key: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by `ca`."""
    cert, key, csr, ext = root / "server.pem", root / "server.key", root / "server.csr", root / "san.ext"
    ext.write_text("subjectAltName = IP:127.0.0.1\n")
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
                    "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
                    "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext)],
                   check=True, capture_output=True)
    return cert, key


def test_tls_with_the_right_ca_carries_records_and_a_wrong_ca_is_a_status_line(
        nats_factory: Callable[..., NatsServer], mepd_factory: MakeMepd, tmp_path: Path) -> None:
    ca, ca_key = make_ca(tmp_path, "right")
    other, _ = make_ca(tmp_path, "other")
    cert, key = server_cert(tmp_path, ca, ca_key)
    server = nats_factory(f'tls {{ cert_file: "{cert}", key_file: "{key}" }}\n')
    tls_url = server.url.replace("nats://", "tls://")

    def tls_fleet(node: str, ca_file: Path, extra: str = "") -> str:
        return fleet(server, node, f'tls_ca = "{ca_file}"\n{extra}').replace(server.url, tls_url)

    wrong, error = one_refused(mepd_factory, tls_fleet("web1", ca), tls_fleet("web2", other),
                               tls_fleet("central", ca, 'publish = []\n'))
    assert "certificate verify failed" in error
    assert f"fleet/publish: connecting: {error}" in wrong.mepctl("status").stdout


def test_an_existing_stream_with_other_settings_is_a_status_line_and_left_as_it_is(
        nats_server: NatsServer, mepd_factory: MakeMepd) -> None:
    async def make_stream() -> None:
        nc = await nats.connect(nats_server.url)
        await nc.jetstream().add_stream(StreamConfig(name="MEPD_LOGS", subjects=["mepd.logs.*"],
                                                     duplicate_window=30))
        await nc.close()

    asyncio.run(make_stream())
    port = free_port()
    edge = mepd_factory(syslog_listen(port, "udp") + fleet(nats_server, "web1")).start()
    send_udp(port, 0, 5)
    edge.wait_logs(5)

    def mismatch() -> dict[str, Any] | None:
        d = component(edge, "fleet/publish")["details"]
        return d if d["state"] == "stream mismatch" else None

    d = wait_for(mismatch, what="the mismatch in status")
    assert "MEPD_LOGS" in d["last_error"]
    assert "duplicate_window 30.0 (the config says 120.0)" in d["last_error"]
    assert "fleet/publish: stream mismatch: stream MEPD_LOGS exists with other settings" in edge.mepctl("status").stdout
    assert component(edge, "fleet/publish")["state"] == "running"


def test_a_line_that_is_no_record_is_stored_raw_and_counted_at_the_central(
        nats_server: NatsServer, mepd_factory: MakeMepd) -> None:
    """Another publisher on the stream (Vector, a script) sends a record and a line that is none."""
    central = mepd_factory(central_config(nats_server)).start()
    wait_for(lambda: component(central, "fleet/central")["details"]["stream"], what="the central reading its stream")
    good = '{"ts": "2026-12-06T10:00:00Z", "message": "a good seq 1", "host": "h9"}'

    async def publish() -> None:
        nc = await nats.connect(nats_server.url)
        await nc.jetstream().publish("mepd.logs.web9", f"{good}\nnot json at all\n".encode())
        await nc.close()

    asyncio.run(publish())
    central.wait_logs(2, "--node", "web9")
    raw = [r for r in central.logs("--node", "web9") if r["parse_error"] is not None]
    assert [r["message"] for r in raw] == ["not json at all"]
    central_status = component(central, "fleet/central")
    assert central_status["counters"]["parse_errors"] == 1
    assert central_status["counters"]["received"] == 2
    assert "parse_errors" in central.mepctl("status").stdout
