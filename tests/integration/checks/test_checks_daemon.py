"""Checks in the real daemon: `mepctl checks [--json]`, the Checks page and its graphs, RRDs stepping at the
check's interval, state changes in the log store, the static export, and a reload that adds a check."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mepd.web.server import LOGIN_FILE
from tests.helpers import Mepd, free_port, rrdtool_cli, wait_for


def config(port: int, closed_port: int, root: Path, *, more: str = "") -> str:
    every = 'interval = "1s"\ntimeout = "1s"\n'
    return (f'[http]\nlisten = "127.0.0.1:{port}"\n'
            f'[[check]]\nname = "dashboard"\nhttp = "http://127.0.0.1:{port}/"\nexpect_status = 401\n'
            f'contains = "authentication required"\n{every}'
            f'[[check]]\nname = "db"\ntcp = "127.0.0.1:{closed_port}"\n{every}'
            f'[[check]]\nname = "tmp"\nfilesystem = "{root}"\n{every}'
            f'[[check]]\nname = "apache"\nsystemd_unit = "apache2.service"\nbus = "unix:path={root}/no-bus"\n{every}'
            + more)


def states(daemon: Mepd) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in daemon.mepctl_json("checks")}


def get(daemon: Mepd, url: str) -> tuple[int, str, bytes]:
    """The dashboard's answer to a GET with the daemon's login token."""
    token = (daemon.root / "state" / LOGIN_FILE).read_text().strip()
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), resp.read()


def test_checks_in_the_daemon(mepd_factory: Callable[..., Mepd], closed_port: int, tmp_path: Path) -> None:
    port = free_port()
    daemon = mepd_factory(config(port, closed_port, tmp_path)).start()
    found = wait_for(lambda: s if (s := states(daemon))["dashboard"]["state"] == "ok" else None,
                     what="the dashboard check to pass")
    assert list(found) == ["apache", "dashboard", "db", "tmp"]
    assert found["db"]["state"] == "failed"
    assert found["db"]["message"] == "connection refused"
    assert found["db"]["values"] == {"up": 0.0, "latency_seconds": None}
    assert found["tmp"]["state"] == "ok"
    assert found["apache"]["state"] == "unknown"
    assert found["apache"]["message"] == f"no bus unix:path={tmp_path}/no-bus: No such file or directory"
    assert found["dashboard"]["kind"] == "http"
    assert found["dashboard"]["values"]["status_code"] == 401.0  # it answers, and asks for a credential

    text = daemon.mepctl("checks").stdout.splitlines()
    assert text[0].split() == ["CHECK", "STATE", "FOR", "KIND", "TARGET", "MESSAGE"]
    assert text[3].split()[:2] == ["db", "failed"]
    assert text[3].endswith("connection refused")

    # Samples are stored as RRDs stepping at the check's interval, and listed with the other metrics.
    keys = wait_for(lambda: {m["key"] for m in daemon.mepctl_json("metrics", "list", "--prefix", "check.")}
                    >= {"check.tmp.used_pct", "check.dashboard.latency_seconds", "check.db.up"},
                    what="the checks' metrics stored")
    assert keys
    info = rrdtool_cli("info", str(daemon.root / "state" / "rrd" / "check" / "tmp" / "used_pct.rrd"))
    assert "step = 1\n" in info

    # Each change of state is a log record.
    records = daemon.wait_logs(1, "--source", "check:db")
    assert records[0]["message"] == f"check db (tcp 127.0.0.1:{closed_port}): failed: connection refused"
    assert records[0]["severity"] == "err"

    # The Checks page, with a graph of each check's main metric.
    status, content_type, body = get(daemon, f"http://127.0.0.1:{port}/checks.html")
    page = body.decode()
    assert status == 200
    assert content_type.startswith("text/html")
    assert 'href="checks.html">Checks</a>' in page
    assert '<tr id="check-db"><td>db</td><td><span class="badge bad">failed</span>' in page
    assert "connection refused" in page
    assert 'src="graph/check.tmp.used_pct/mini.png"' in page
    status, content_type, image = get(daemon, f"http://127.0.0.1:{port}/graph/check.tmp.used_pct/mini.png")
    assert (status, content_type, image[:4]) == (200, "image/png", b"\x89PNG")

    # The static export has the page and its graphs.
    out = daemon.root / "export"
    daemon.mepctl("dashboard", "export", str(out))
    assert '<tr id="check-apache">' in (out / "checks.html").read_text()
    assert (out / "graph" / "check.tmp.used_pct" / "mini.png").read_bytes()[:4] == b"\x89PNG"

    # A reload adds a check; the others keep running.
    daemon.write_config(config(port, closed_port, tmp_path,
                               more=f'[[check]]\nname = "tmp2"\nfilesystem = "{tmp_path}"\ninterval = "1s"\n'
                                    'timeout = "1s"\n'))
    daemon.mepctl("reload")
    wait_for(lambda: states(daemon).get("tmp2", {}).get("state") == "ok", what="the new check to pass")
    assert daemon.stop() == 0


def test_no_checks(mepd_factory: Callable[..., Mepd]) -> None:
    daemon = mepd_factory("").start()
    assert daemon.mepctl_json("checks") == []
    assert daemon.mepctl("checks").stdout == "no checks configured\n"


def test_a_check_of_the_daemons_own_dashboard_passes_its_first_run(mepd_factory: Callable[..., Mepd]) -> None:
    """Checks start once the dashboard listens: the packaged config's check of it must not fail at start."""
    port = free_port()
    toml = (f'[http]\nlisten = "127.0.0.1:{port}"\n'
            f'[[check]]\nname = "dashboard"\nhttp = "http://127.0.0.1:{port}/"\nexpect_status = 401\n'
            'interval = "1h"\n')
    daemon = mepd_factory(toml).start()
    first = wait_for(lambda: c if (c := states(daemon)["dashboard"])["state"] != "starting" else None,
                     what="the dashboard check's first run")
    assert first["state"] == "ok", first
