"""The real daemon polling a real snmpd: metrics, graphs and target status through mepctl."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.helpers import ROOT, Mepd, dead_snmp_target, rrdtool_cli, snmp_target, wait_for
from tests.integration.snmp.conftest import COMMUNITY, V3_AUTH, V3_PRIV, V3_USER, Blackhole, Snmpd

MakeMepd = Callable[..., Mepd]


def config(snmpd: Snmpd, dead_port: int) -> str:
    v3 = snmp_target("box3", snmpd.port, version="3", user=V3_USER, auth_protocol="SHA", auth_key=V3_AUTH,
                     priv_protocol="AES", priv_key=V3_PRIV, interval="2s", interfaces=["lo"])
    return box(snmpd, "1s") + v3 + dead_snmp_target(dead_port)


def box(snmpd: Snmpd, interval: str, oid: Sequence[Mapping[str, str]] = ()) -> str:
    return snmp_target("box", snmpd.port, community=COMMUNITY, interval=interval, interfaces=["lo"], oid=oid)


def components(d: Mepd) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in d.mepctl_json("status")["components"]}


def test_daemon_polls_stores_and_answers(mepd_factory: MakeMepd, snmpd: Snmpd, blackhole: Blackhole,
                                         tmp_path: Path) -> None:
    d = mepd_factory(config(snmpd, blackhole.port)).start()
    keys = {f"snmp.{t}.lo.{n}" for t in ("box", "box3") for n in ("in_bps", "out_bps", "oper_up")}

    def listed() -> bool:
        return keys <= {m["key"] for m in d.mepctl_json("metrics", "list")}

    wait_for(listed, what="metrics of both targets listed")

    def oper_up_points() -> list[Any]:
        show = d.mepctl_json("metrics", "show", "snmp.box.lo.oper_up", "--since", "2m")
        return [p for p in show["points"] if p["value"] == 1.0]

    wait_for(oper_up_points, what="oper_up = 1 stored in the RRD")

    def a_rate() -> bool:
        show = d.mepctl_json("metrics", "show", "snmp.box.lo.in_bps", "--since", "2m")
        return any(p["value"] is not None and p["value"] >= 0 for p in show["points"])

    wait_for(a_rate, what="an in_bps rate stored")
    human = d.mepctl("metrics", "show", "snmp.box.lo.oper_up", "--since", "1m").stdout
    assert "snmp.box.lo.oper_up  AVERAGE every 1.0s" in human

    rrd = Path(d.root / "state" / "rrd" / "snmp" / "box" / "lo.rrd")
    info = rrdtool_cli("info", str(rrd))
    assert "step = 1\n" in info
    assert info.count(".cf = ") == 8
    assert info.count(".type = \"GAUGE\"") == 9  # the interface's nine metrics, one data source each

    png, svg = tmp_path / "lo.png", tmp_path / "lo.svg"
    d.mepctl("graph", "snmp.box.lo", "--period", "day", "--out", str(png))
    d.mepctl("graph", "snmp.box.lo.in_bps", "--period", "week", "--out", str(svg))
    assert png.read_bytes().startswith(b"\x89PNG")
    assert b"<svg" in svg.read_bytes()[:500]
    missing = d.mepctl("graph", "snmp.nope.x.in_bps", "--out", str(png), check=False)
    assert (missing.returncode, "no metric" in missing.stderr) == (1, True)
    jpg = d.mepctl("graph", "snmp.box.lo", "--out", str(tmp_path / "lo.jpg"), check=False)
    assert (jpg.returncode, "FILE.png or FILE.svg" in jpg.stderr) == (2, True)
    assert not (tmp_path / "lo.jpg").exists()

    def dead_reported() -> dict[str, Any] | None:
        details = components(d)["snmp/dead"].get("details", {})
        return details if details.get("state") == "unreachable" else None

    details = wait_for(dead_reported, what="the dead target reported unreachable")
    assert "No SNMP response" in details["last_error"]
    assert components(d)["snmp/dead"]["state"] == "running"  # a state of the agent, not a crashed component
    assert "snmp/dead: unreachable: No SNMP response" in d.mepctl("status").stdout
    assert components(d)["snmp/box"]["details"]["state"] == "ok"
    assert d.stop() == 0


def test_mepctl_snmp_discover(snmpd: Snmpd) -> None:
    def discover(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mepd.cli.mepctl", "snmp", "discover", "127.0.0.1",
                               "--port", str(snmpd.port), *args], capture_output=True, text=True, timeout=60,
                              cwd=ROOT, check=False)

    v2 = discover("--community", COMMUNITY)
    assert v2.returncode == 0, v2.stderr
    (target,) = tomllib.loads(v2.stdout)["snmp"]["target"]
    assert target["port"] == snmpd.port
    assert "lo" in v2.stdout
    v3 = discover("--version", "3", "--user", V3_USER, "--auth-key", V3_AUTH, "--priv-key", V3_PRIV,
                  "--name", "srv")
    assert v3.returncode == 0, v3.stderr
    (target,) = tomllib.loads(v3.stdout)["snmp"]["target"]
    assert (target["name"], target["version"], target["user"]) == ("srv", "3", V3_USER)
    bad = discover("--version", "3", "--user", V3_USER, "--auth-key", "short")
    assert bad.returncode == 2
    assert "auth_key" in bad.stderr


def one_target(snmpd: Snmpd, interval: str) -> str:
    return box(snmpd, interval, [{"name": "lo_in", "oid": "1.3.6.1.2.1.2.2.1.10.1", "type": "counter"}])


def test_a_restart_keeps_the_counters_so_the_first_poll_has_rates(mepd_factory: MakeMepd, snmpd: Snmpd) -> None:
    """Without the last counters the first poll after a restart stores unknown: a gap in every graph."""
    d = mepd_factory(one_target(snmpd, "1s")).start()
    wait_for(lambda: components(d)["snmp/box"]["details"]["cycles"] >= 2, what="two polls")
    assert d.stop() == 0
    saved = json.loads((d.root / "state" / "snmp" / "box.json").read_text())
    assert saved["agent"] == f"127.0.0.1:{snmpd.port}"
    assert "lo" in saved["rows"]
    assert "oid.lo_in" in saved["oids"]

    # Polled again at once, then not for a minute: the first poll is the only one this test sees.
    d.write_config(one_target(snmpd, "1m"))
    d.start()
    wait_for(lambda: components(d)["snmp/box"]["details"]["cycles"] == 1, what="the first poll after the restart")
    started = components(d)["snmp/box"]["details"]["last_poll"]

    def first_poll_stored() -> dict[str, Any] | None:
        rows = {m["key"]: m for m in d.mepctl_json("metrics", "list", "--prefix", "snmp.box.lo.")}
        row = rows.get("snmp.box.lo.in_bps")
        return row if row and row["ts"] and datetime.fromisoformat(row["ts"]).timestamp() >= started - 1 else None

    row = wait_for(first_poll_stored, what="the first poll's in_bps stored")
    assert row["value"] is not None, "the first poll after the restart stored unknown"
    custom = {m["key"]: m for m in d.mepctl_json("metrics", "list", "--prefix", "snmp.box.lo_in")}["snmp.box.lo_in"]
    assert datetime.fromisoformat(custom["ts"]).timestamp() >= started - 1
    assert custom["value"] is not None, "the custom OID's first rate after the restart is unknown"
    assert components(d)["snmp/box"]["details"]["cycles"] == 1
