"""[http] config errors, who Access admits, intake rates, and what the pages escape."""

from __future__ import annotations

import base64
import io
import os
import stat
import sys
from pathlib import Path
from typing import cast

import pytest

from mepd import config
from mepd.config import HttpConfig
from mepd.errors import ConfigErrors
from mepd.model import Incident, rfc3339
from mepd.store.rrd.marks import KINDS
from mepd.web import pages
from mepd.web.dashboard import Dashboard
from mepd.web.data import NodeView, RateMeter, fleet_nodes, mark_kind
from mepd.web.server import LOGIN_FILE, Access, WebServer, login_url, session_of
from tests.unit.web.test_prometheus import NOW, component_status, daemon_status


def errors_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "m.toml"
    path.write_text(text)
    with pytest.raises(ConfigErrors) as info:
        config.load(path)
    return [str(e).split(": ", 1)[1] for e in info.value.errors]


def test_http_defaults_and_disabled(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text("")
    assert config.load(path).http.listen == "127.0.0.1:8080"
    path.write_text('[http]\nlisten = ""\nexport_dir = "www"\n')
    cfg = config.load(path).http
    assert (cfg.listen, cfg.export_dir) == ("", str(tmp_path / "www"))


@pytest.mark.parametrize(("text", "expected"), [
    ('[http]\nlisten = "8080"\n', "http.listen: expected host:port"),
    ('[http]\ntls_cert = "c.pem"\n', "http.tls_key: TLS needs both"),
    ('[http]\ntoken_file = "nope"\n', "http.token_file: cannot read"),
    ('[http]\nexport_interval = "1s"\n', "http.export_interval: must be at least 10s"),
])
def test_http_errors(tmp_path: Path, text: str, expected: str) -> None:
    errors = errors_of(tmp_path, text)
    assert len(errors) == 1, errors
    assert errors[0].startswith(expected), errors


def test_secret_files_must_be_private(tmp_path: Path) -> None:
    (tmp_path / "users").write_text("admin:pw\n")
    (tmp_path / "users").chmod(0o644)
    [error] = errors_of(tmp_path, '[http]\nbasic_auth_file = "users"\n')
    assert "readable by others" in error


def test_access_from_files(tmp_path: Path) -> None:
    users, token = tmp_path / "users", tmp_path / "token"
    users.write_text("# comment\n\nadmin:pa:ss\n")
    token.write_text("0123456789abcdef0123\n")
    access = Access.from_config(HttpConfig(basic_auth_file=str(users), token_file=str(token)), str(tmp_path))
    assert access.users == {"admin": "pa:ss"}
    assert access.allows("Basic " + base64.b64encode(b"admin:pa:ss").decode())
    assert access.allows("Bearer 0123456789abcdef0123")
    assert not access.allows(None)
    assert not access.allows("Basic " + base64.b64encode(b"admin:pa").decode())
    assert not access.allows("Basic " + base64.b64encode(b"nobody:").decode())
    assert not access.allows("Bearer 0123456789abcdef012")
    users.write_text("admin\n")
    with pytest.raises(ValueError, match="expected user:password"):
        Access.from_config(HttpConfig(basic_auth_file=str(users)), str(tmp_path))
    token.write_text("short")
    with pytest.raises(ValueError, match="at least 16"):
        Access.from_config(HttpConfig(token_file=str(token)), str(tmp_path))
    assert not (tmp_path / LOGIN_FILE).exists()  # a configured credential: no token of mepd's own
    assert not Access({}, ()).allows(None)


def test_without_a_credential_the_token_is_made_once_0640(tmp_path: Path) -> None:
    access = Access.from_config(HttpConfig(), str(tmp_path))
    path = tmp_path / LOGIN_FILE
    st = path.stat()
    (token,) = access.tokens
    assert (stat.S_IMODE(st.st_mode), st.st_gid, path.read_text()) == (0o640, os.getgid(), token + "\n")
    assert len(token) >= 32
    assert not access.open_metrics  # metrics_auth = true unless set
    assert not access.allows(None)
    assert access.allows(f"Bearer {token}")
    assert access.allows(None, session_of(token))
    assert session_of(token) != token
    assert not access.allows(None, session_of(token + "x"))
    assert Access.from_config(HttpConfig(), str(tmp_path)).tokens == (token,)  # kept across restarts
    path.chmod(0o644)  # others may have read it: a new one
    assert Access.from_config(HttpConfig(), str(tmp_path)).tokens != (token,)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_host_names_and_login_urls(tmp_path: Path) -> None:
    access = Access.from_config(HttpConfig(listen="box.lan:8080", allowed_hosts=("Monitor.example.org",)),
                                str(tmp_path))
    for host in ("127.0.0.1:8080", "[::1]:8080", "localhost:8080", "LOCALHOST.", "box.lan", "192.0.2.7",
                 "monitor.example.org:443"):
        assert access.names_this_server(host), host
    for host in ("evil.example:8080", "127.0.0.1.nip.io", "", "[bad"):
        assert not access.names_this_server(host), host
    assert login_url(HttpConfig(listen="0.0.0.0:80"), "a/b") == "http://127.0.0.1:80/?token=a%2Fb"
    assert login_url(HttpConfig(listen="[::]:8080"), None) == "http://[::1]:8080/"
    assert login_url(HttpConfig(listen="box.lan:8443", tls_cert="c", tls_key="k"), "t") == "https://box.lan:8443/?token=t"
    [error] = errors_of(tmp_path, '[http]\nallowed_hosts = ["monitor.example.org:443"]\n')
    assert "allowed_hosts[0]" in error


def test_rate_meter_over_its_window() -> None:
    meter = RateMeter(window=60)
    assert meter.rate("a") is None
    meter.observe(0, {"a": 0})
    meter.observe(30, {"a": 300})
    assert meter.rate("a") == 10
    for t in range(40, 200, 10):
        meter.observe(t, {"a": 300 + (t - 30) * 2})
    assert meter.rate("a") == pytest.approx(2)
    assert meter.samples[-1][0] - meter.samples[0][0] <= 70


def test_pages_escape_what_they_show() -> None:
    inc = Incident(id=3, fingerprint="f", rule="r", kind="log", state="firing", severity="warning",
                   labels={"rule": "r", "host": '<b>"x"</b>'}, summary="<script>alert(1)</script>",
                   started=0.0, last_seen=0.0, lines=("<img src=x onerror=alert(1)>",))
    html = pages.incident(pages.Ctx(csrf="t"), inc, [{"ts": None, "event": "<i>", "output": "<o>"}], 10.0)
    assert "<script>alert" not in html
    assert "&lt;script&gt;" in html
    assert "<img src=x" not in html
    assert "<i>" not in html
    assert "<o>" not in html
    rows = pages.log_rows([{"ts": None, "message": "</td><script>x</script>", "severity": '"><b'}])
    assert "<script>" not in rows
    assert 'class="sev-&quot;&gt;&lt;b"' in rows


def test_default_silence_matchers() -> None:
    inc = Incident(id=1, fingerprint="f", rule="up", kind="metric", state="firing", severity="critical",
                   labels={"rule": "up", "severity": "critical", "key": "snmp.sw1.eth0.in_bps", "bad": 'a"b'},
                   summary="", started=0.0, last_seen=0.0)
    assert pages.default_matchers(inc) == 'rule="up",key="snmp.sw1.eth0.in_bps"'


def test_si_units() -> None:
    assert pages.si(None, "b/s") == "-"
    assert pages.si(0, "b/s") == "0 b/s"
    assert pages.si(1.5e9, "b/s") == "1.5 Gb/s"
    assert pages.si(999, "b/s") == "999 b/s"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_login_url_is_logged_on_a_terminal_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (token,) = Access.from_config(HttpConfig(), str(tmp_path)).tokens
    server = WebServer(HttpConfig(), str(tmp_path), cast(Dashboard, None))
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # systemd's journal stream, a file
    line = server.announcement()
    assert token not in line
    assert str(tmp_path / LOGIN_FILE) in line
    monkeypatch.setattr(sys, "stderr", Terminal())  # make run
    assert server.announcement() == f"dashboard on http://127.0.0.1:8080/?token={token}"


@pytest.mark.parametrize(("event", "kind"), [
    ({"kind": "log", "event": "down"}, "log-down"), ({"kind": "log", "event": "restart"}, "log-restart"),
    ({"kind": "log", "event": None}, "log"), ({"kind": "incident", "event": "fired"}, "fired"),
    ({"kind": "incident", "event": "acknowledged"}, "acknowledged"),
    ({"kind": "incident", "event": "resolved"}, "resolved"), ({"kind": "incident", "event": "action"}, "action"),
    ({"kind": "incident", "event": "action_skipped"}, "action"), ({"kind": "incident", "event": "notified"}, None),
])
def test_timeline_events_map_to_graph_mark_kinds(event: dict[str, object], kind: str | None) -> None:
    assert mark_kind(event) == kind
    assert kind is None or kind in KINDS


def test_the_timeline_table_escapes_log_text() -> None:
    html = pages.timeline_section([{"ts": "2026-01-02T03:04:05+00:00", "kind": "log", "event": "down",
                                    "host": "sw<1>", "app": None, "message": "<script>x</script> Gi0/1 down"}])
    assert "<script>" not in html
    assert "&lt;script&gt;x&lt;/script&gt; Gi0/1 down" in html
    assert "sw&lt;1&gt; -" in html
    assert "No events." in pages.timeline_section([])


def test_a_centrals_logs_page_filters_and_shows_each_records_node() -> None:
    record = {"ts": "2024-05-01T10:00:00.000000Z", "host": "h1", "node": "web1", "message": "m", "severity": "info"}
    html = pages.logs(pages.Ctx(), {"node": "web*", "host": "h1"}, [record], None, False, fleet=True)
    assert '<input name=node value="web*"' in html
    assert "<th>node</th>" in html
    assert "<td>web1</td><td>h1</td>" in html
    assert 'data-stream="logs/stream?node=web%2A&amp;host=h1" data-node>' in html  # the live tail filters too
    plain = pages.logs(pages.Ctx(), {}, [record], None, False)
    assert "name=node" not in plain
    assert "<th>node</th>" not in plain
    assert "data-node" not in plain


def test_a_centrals_overview_lists_its_nodes_from_their_heartbeats() -> None:
    details: dict[str, object] = {
        "nodes": {"web1": {"records": 1200, "messages": 3, "last_heard": rfc3339(NOW - 5)}},
        "heartbeats": {"web1": {"node": "web1", "time": rfc3339(NOW - 8), "backlog": 0, "backlog_oldest_age": None},
                       "db1": {"node": "db1", "time": rfc3339(NOW - 30), "backlog": 250,
                               "backlog_oldest_age": 90.0}},
    }
    nodes = fleet_nodes(daemon_status([component_status("fleet/central", details=details)]))
    assert nodes == [NodeView("db1", None, 0, 250, 90.0, NOW - 30), NodeView("web1", NOW - 5, 1200, 0, None, NOW - 8)]
    html = pages.nodes_section(pages.Ctx(), nodes, NOW)
    assert '<td>db1 <a href="logs.html?node=db1">logs</a></td><td>-</td><td>0</td>' in html
    assert "<td>1m30s</td>" in html
    assert "<td>web1" in html
    assert fleet_nodes(daemon_status([component_status("fleet/publish")])) is None
    assert pages.nodes_section(pages.Ctx(), None, NOW) == ""
    assert "No node heard from yet" in pages.nodes_section(pages.Ctx(), [], NOW)
