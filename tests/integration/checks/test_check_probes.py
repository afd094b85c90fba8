"""Each kind of check against a real peer: HTTPS with a certificate of known expiry, TCP ports, a file
system, test child processes, and D-Bus (none; a real dbus-daemon with systemd's API).  Against systemd itself,
as PID 1 of a booted Debian: tests/system/test_systemd_check.py."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from mepd.sources.host.checks import Check, probe_for
from tests.helpers import until
from tests.integration.checks.conftest import (
    CERT_DAYS,
    SLEEPER,
    DbusDaemon,
    WebServer,
    check_config,
    harness,
)
from tests.integration.checks.fake_systemd import FakeSystemd


async def run(text: str, base: Path) -> Check:
    """One run of a check configured by `text`; the Check holds its state and values."""
    check, samples, _ = harness(check_config(text, base))
    probe = probe_for(check.cfg)
    try:
        await check.run_once(probe)
    finally:
        await probe.close()
    batch = await samples.get_batch(100, 0)
    assert {s.key for s in batch} == set(check.keys.values())  # every metric, every run (unknown as None)
    return check


# -- HTTP ----------------------------------------------------------------------------------------------------


async def test_https_against_its_own_ca_reports_the_certificate_days_left(
        https_server: WebServer, self_signed: Path, tmp_path: Path) -> None:
    check = await run(f'name = "www"\nhttp = "{https_server.url}/health"\ncontains = "ok"\n'
                      f'ca_file = "{self_signed / "cert.pem"}"', tmp_path)
    st = check.status
    assert st.state == "ok", st.message
    assert st.values["up"] == 1.0
    assert st.values["status_code"] == 200.0
    days = st.values["cert_days_left"]
    assert days is not None
    assert CERT_DAYS - 1 < days <= CERT_DAYS
    latency = st.values["latency_seconds"]
    assert latency is not None
    assert latency > 0
    assert https_server.hits == 1


async def test_https_verifies_certificates_by_default(https_server: WebServer, tmp_path: Path) -> None:
    check = await run(f'name = "www"\nhttp = "{https_server.url}/health"', tmp_path)
    assert check.status.state == "failed"
    assert "certificate verify failed" in check.status.message
    assert check.status.values["up"] == 0.0
    assert https_server.hits == 0


async def test_https_without_verification_still_reports_the_days_left(https_server: WebServer,
                                                                      tmp_path: Path) -> None:
    check = await run(f'name = "www"\nhttp = "{https_server.url}/health"\ntls_verify = false', tmp_path)
    assert check.status.state == "ok", check.status.message
    days = check.status.values["cert_days_left"]
    assert days is not None
    assert CERT_DAYS - 1 < days <= CERT_DAYS


@pytest.mark.parametrize(("keys", "state", "message"), [
    ('path = "/teapot"', "failed", "HTTP 418 I'm a Teapot, expected below 400"),
    ('path = "/teapot"\nexpect_status = 418', "ok", "HTTP 418"),
    ('path = "/health"\nexpect_status = 204', "failed", "HTTP 200 OK, expected 204"),
    ('path = "/health"\ncontains = "status: ok"', "ok", "HTTP 200 OK in"),
    ('path = "/health"\ncontains = "all good"', "failed", 'HTTP 200 OK without "all good" in the first 11 bytes'),
])
async def test_http_status_and_body(https_server: WebServer, tmp_path: Path, keys: str, state: str,
                                    message: str) -> None:
    path = keys.splitlines()[0].split('"')[1]
    rest = "\n".join(keys.splitlines()[1:])
    check = await run(f'name = "www"\nhttp = "{https_server.url}{path}"\ntls_verify = false\n{rest}', tmp_path)
    assert check.status.state == state
    assert check.status.message.startswith(message)


async def test_a_check_that_does_not_answer_in_time_fails(https_server: WebServer, tmp_path: Path) -> None:
    check = await run(f'name = "www"\nhttp = "{https_server.url}/hang"\ntls_verify = false\n'
                      'interval = "1s"\ntimeout = "1s"', tmp_path)
    assert check.status.state == "failed"
    assert check.status.message == "no result within the 1s timeout"
    assert check.status.values == {"up": 0.0, "latency_seconds": None, "status_code": None, "cert_days_left": None}


# -- TCP -----------------------------------------------------------------------------------------------------


async def test_tcp_listening_port(listening: int, tmp_path: Path) -> None:
    check = await run(f'name = "db"\ntcp = "127.0.0.1:{listening}"', tmp_path)
    assert check.status.state == "ok"
    latency = check.status.values["latency_seconds"]
    assert latency is not None
    assert latency > 0


async def test_tcp_closed_port_is_refused(closed_port: int, tmp_path: Path) -> None:
    check = await run(f'name = "db"\ntcp = "127.0.0.1:{closed_port}"', tmp_path)
    assert check.status.state == "failed"
    assert check.status.message == "connection refused"
    assert check.status.values == {"up": 0.0, "latency_seconds": None}


# -- file system ---------------------------------------------------------------------------------------------


async def test_filesystem_usage_as_df_counts_it(tmp_path: Path) -> None:
    check = await run(f'name = "tmp"\nfilesystem = "{tmp_path}"', tmp_path)
    st = os.statvfs(tmp_path)
    used, avail = st.f_blocks - st.f_bfree, st.f_bavail
    values = check.status.values
    assert check.status.state == "ok"
    assert values["used_pct"] == pytest.approx(100 * used / (used + avail), abs=1.0)
    assert values["free_bytes"] == pytest.approx(avail * st.f_frsize, rel=0.05)
    inodes = values["inodes_used_pct"]
    assert inodes is None or 0 <= inodes <= 100


async def test_filesystem_that_is_not_there_fails(tmp_path: Path) -> None:
    check = await run(f'name = "gone"\nfilesystem = "{tmp_path / "gone"}"', tmp_path)
    assert check.status.state == "failed"
    assert check.status.message.endswith("No such file or directory")


# -- process -------------------------------------------------------------------------------------------------


async def test_process_by_name_counts_its_processes(start_sleeper: object, tmp_path: Path) -> None:
    assert callable(start_sleeper)
    cfg = check_config(f'name = "sleeper"\nprocess = "{SLEEPER}"', tmp_path)
    check, _, logs = harness(cfg)
    probe = probe_for(cfg)
    first = start_sleeper()
    await check.run_once(probe)
    assert check.status.state == "ok"
    assert check.status.values["count"] == 1.0
    assert check.status.message == f"1 running (pid {first.pid})"
    assert check.status.values["cpu_pct"] is None  # nothing to compare with yet
    rss = check.status.values["rss_bytes"]
    assert rss is not None
    assert rss > 0

    second = start_sleeper()
    await check.run_once(probe)
    assert check.status.values["count"] == 2.0
    assert check.status.values["cpu_pct"] is not None

    for proc in (first, second):
        proc.kill()
        proc.wait()
    await check.run_once(probe)
    assert check.status.state == "failed"
    assert check.status.message == f"{SLEEPER} is not running"
    assert check.status.values["up"] == 0.0
    assert check.status.values["count"] == 0.0
    event = (await logs.get_batch(10, 0))[-1]  # the change of state is a log record too
    assert event.source == "check:sleeper"
    assert event.severity == 3
    assert event.message.endswith(f"failed: {SLEEPER} is not running")


async def test_process_by_pidfile(start_sleeper: object, tmp_path: Path) -> None:
    assert callable(start_sleeper)
    pidfile = tmp_path / "sleeper.pid"
    proc = start_sleeper()
    pidfile.write_text(f"{proc.pid}\n")
    check = await run(f'name = "s"\npidfile = "{pidfile}"', tmp_path)
    assert check.status.state == "ok"
    assert check.status.message == f"1 running (pid {proc.pid})"
    # With a name too, the pidfile's process must run that program: a pid reused by another is not it.
    check = await run(f'name = "s"\npidfile = "{pidfile}"\nprocess = "nginx"', tmp_path)
    assert check.status.state == "failed"
    assert check.status.message == f"nginx pidfile {pidfile} is not running"
    pidfile.unlink()
    check = await run(f'name = "s"\npidfile = "{pidfile}"', tmp_path)
    assert check.status.state == "failed"
    assert check.status.message == f"pidfile {pidfile}: No such file or directory"


# -- systemd over D-Bus --------------------------------------------------------------------------------------


async def test_systemd_unit_without_a_bus_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "no-bus"
    check = await run(f'name = "apache"\nsystemd_unit = "apache2.service"\nbus = "unix:path={missing}"', tmp_path)
    assert check.status.state == "unknown"
    assert check.status.message == f"no bus unix:path={missing}: No such file or directory"
    assert check.status.values == {"up": None, "restarts": None}


SYSTEM_BUS_SOCKET = Path("/run/dbus/system_bus_socket")


@pytest.mark.skipif(SYSTEM_BUS_SOCKET.exists(), reason="this machine has a system bus")
async def test_systemd_unit_without_a_system_bus_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own system bus, as a container without D-Bus has none."""
    monkeypatch.delenv("DBUS_SYSTEM_BUS_ADDRESS", raising=False)
    check = await run('name = "apache"\nsystemd_unit = "apache2.service"', tmp_path)
    assert check.status.state == "unknown"
    assert check.status.message == ("no system bus unix:path=/run/dbus/system_bus_socket: "
                                    "No such file or directory")


async def test_systemd_unit_on_a_bus_without_systemd(dbus_daemon: DbusDaemon, tmp_path: Path) -> None:
    check = await run(f'name = "apache"\nsystemd_unit = "apache2.service"\nbus = "{dbus_daemon.address}"', tmp_path)
    assert check.status.state == "unknown"
    assert "systemd does not answer" in check.status.message
    assert check.status.message.endswith("(org.freedesktop.DBus.Error.NameHasNoOwner)")  # never bus-activated


async def test_systemd_unit_failure_is_seen_at_once(dbus_daemon: DbusDaemon, tmp_path: Path) -> None:
    """With an interval of an hour, only systemd's PropertiesChanged signal can make the check run again."""
    systemd = await FakeSystemd(dbus_daemon.address, "web.service").start()
    cfg = check_config(f'name = "web"\nsystemd_unit = "web.service"\nbus = "{dbus_daemon.address}"\n'
                       'interval = "1h"', tmp_path)
    check, _, logs = harness(cfg)
    task = asyncio.create_task(check.run(lambda: None))
    try:
        await until(lambda: check.status.state == "ok", "the unit seen active")
        assert check.status.message == "web.service active (running)"
        assert check.status.values == {"up": 1.0, "restarts": 0.0}
        assert systemd.manager.subscribed == 1

        systemd.set_state("failed", "failed")
        await until(lambda: check.status.state == "failed", "the failure seen from the signal")
        assert check.status.message == "web.service failed (failed)"
        assert check.status.values["up"] == 0.0

        systemd.set_state("active", "running", restarts=1)
        await until(lambda: check.status.state == "ok", "the restart seen from the signal")
        assert check.status.values == {"up": 1.0, "restarts": 1.0}
        assert check.status.message == "web.service active (running), restarted 1 times"
        events = [r.message for r in await logs.get_batch(10, 0)]
        assert events == [
            "check web (systemd_unit web.service): failed: web.service failed (failed)",
            "check web (systemd_unit web.service): ok: web.service active (running), restarted 1 times",
        ]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await systemd.stop()


async def test_systemd_unit_that_does_not_exist(dbus_daemon: DbusDaemon, tmp_path: Path) -> None:
    systemd = await FakeSystemd(dbus_daemon.address, "web.service").start()
    systemd.unit.load = "not-found"
    try:
        check = await run(f'name = "web"\nsystemd_unit = "web.service"\nbus = "{dbus_daemon.address}"', tmp_path)
    finally:
        await systemd.stop()
    assert check.status.state == "failed"
    assert check.status.message == "no unit web.service"

