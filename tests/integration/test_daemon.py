"""The real daemon end to end: syslog in with `logger` and raw datagrams, records out through mepctl."""

from __future__ import annotations

import glob
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mepd.model import rfc3339
from tests.helpers import Mepd, free_port, syslog_listen, wait_for

MakeMepd = Callable[..., Mepd]


def logger(port: int, *args: str) -> None:
    subprocess.run(["logger", "-n", "127.0.0.1", "-P", str(port), *args], check=True, timeout=30)


def send_udp(port: int, *datagrams: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for d in datagrams:
            s.sendto(d, ("127.0.0.1", port))


@pytest.fixture
def daemon(mepd_factory: MakeMepd) -> Mepd:
    port = free_port()
    d = mepd_factory(syslog_listen(port, "udp", "tcp"))
    d.port = port  # type: ignore[attr-defined]
    return d.start()


def test_logger_rfc5424_and_rfc3164_over_udp_and_tcp(daemon: Mepd) -> None:
    port = daemon.port  # type: ignore[attr-defined]
    logger(port, "-d", "--rfc5424", "-t", "myapp", "-p", "local3.warning", "--msgid", "ID47",
           "--sd-id", "origin@32473", "--sd-param", 'ip="192.0.2.1"', "hello from logger 5424")
    logger(port, "-d", "--rfc3164", "-t", "bsdapp", "-p", "auth.err", "hello from logger 3164")
    logger(port, "-T", "--rfc5424", "-t", "tcpapp", "hello over tcp")
    records = daemon.wait_logs(3)
    by_app = {r["app"]: r for r in records}
    r = by_app["myapp"]
    assert (r["message"], r["facility"], r["severity"], r["msgid"], r["source"]) == (
        "hello from logger 5424", "local3", "warning", "ID47", "syslog/udp")
    assert r["sd"]["origin@32473"] == {"ip": "192.0.2.1"}
    assert r["host"] == socket.gethostname()
    assert r["ts"].endswith("Z")
    assert (by_app["bsdapp"]["severity"], by_app["bsdapp"]["facility"]) == ("err", "auth")
    assert by_app["bsdapp"]["message"] == "hello from logger 3164"
    assert by_app["tcpapp"]["source"] == "syslog/tcp"
    assert daemon.logs("--app", "myapp") == [r]
    assert [x["app"] for x in daemon.logs("--severity", "err")] == ["bsdapp"]
    assert [x["app"] for x in daemon.logs("--grep", "OVER TCP")] == ["tcpapp"]

    human = daemon.mepctl("logs", "--since", "5m").stdout
    assert "myapp" in human
    assert "<warning>: hello from logger 5424" in human

    status = daemon.mepctl_json("status")
    assert status["pipeline"]["logs"]["received"] == 3
    assert status["pipeline"]["logs"]["stored"] == 3
    names = {c["name"]: c for c in status["components"]}
    assert names[f"syslog/udp 127.0.0.1:{port}"]["state"] == "running"
    assert names[f"syslog/udp 127.0.0.1:{port}"]["counters"]["received"] == 2
    assert "up" in daemon.mepctl("status").stdout


def test_records_come_oldest_first_and_time_filters_use_event_time(daemon: Mepd) -> None:
    port = daemon.port  # type: ignore[attr-defined]
    send_udp(port,
             b"<14>1 2026-01-02T03:04:05.5+01:00 h1 old - - - older",
             b"<14>1 2025-12-31T23:00:00Z h1 old - - - oldest",
             b"<14>1 2026-06-01T00:00:00Z h1 old - - - newest")
    records = daemon.wait_logs(3, "--host", "h1")
    assert [r["message"] for r in records] == ["oldest", "older", "newest"]
    assert records[1]["ts"] == "2026-01-02T02:04:05.500000Z"
    window = daemon.logs("--host", "h1", "--since", "2026-01-01T00:00:00Z", "--until", "2026-05-01T00:00:00Z")
    assert [r["message"] for r in window] == ["older"]
    limited = daemon.logs("--host", "h1", "--limit", "2")
    assert [r["message"] for r in limited] == ["older", "newest"]


def test_malformed_input_is_stored_raw_and_counted(daemon: Mepd) -> None:
    port = daemon.port  # type: ignore[attr-defined]
    garbage = bytes(range(256))
    long_line = b"<13>Nov 28 10:00:00 host app: " + b"x" * 70000
    send_udp(port, garbage, b"<1", b"no pri at all", long_line[:65000])
    records = daemon.wait_logs(4, "--source", "syslog/udp")
    assert sum(1 for r in records if r["parse_error"]) >= 3
    assert any(r["message"] == "no pri at all" for r in records)
    assert any(len(r["message"]) > 60000 for r in records)
    status = daemon.mepctl_json("status")
    udp = next(c for c in status["components"] if c["name"].startswith("syslog/udp"))
    assert udp["counters"]["parse_errors"] >= 3
    assert udp["state"] == "running"
    send_udp(port, b"<14>1 - h2 after - - - still alive")
    assert daemon.wait_logs(1, "--host", "h2")[0]["message"] == "still alive"


def test_oversized_tcp_frame_is_truncated_and_flagged(mepd_factory: MakeMepd) -> None:
    port = free_port()
    d = mepd_factory(syslog_listen(port, "tcp") + 'max_message_size = "1KiB"\n').start()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"<14>1 - big app - - - " + b"y" * 5000 + b"\n<14>1 - big app - - - next\n")
    records = d.wait_logs(2, "--host", "big")
    assert len(records[0]["message"]) < 1024
    assert records[0]["sd"]["mepd"]["truncated_from"] == str(len(b"<14>1 - big app - - - ") + 5000)
    assert records[1]["message"] == "next"


def test_records_survive_sigterm_and_kill_9(mepd_factory: MakeMepd) -> None:
    port = free_port()
    d = mepd_factory(syslog_listen(port, "udp")).start()
    send_udp(port, *(f"<14>1 - h app - - - before-term {i}".encode() for i in range(50)))
    d.wait_logs(50, "--grep", "before-term")
    workers = d.children()
    assert workers, "the log writer runs in a child process"
    for pid in workers:  # systemd signals the whole cgroup: the writer must outlast the daemon's drain
        os.kill(pid, signal.SIGTERM)
    assert d.stop() == 0
    assert "STOPPING=1" in d.notify.lines()
    d.start()
    send_udp(port, *(f"<14>1 - h app - - - before-kill {i}".encode() for i in range(50)))
    d.wait_logs(50, "--grep", "before-kill")
    workers = d.children()
    d.kill()
    wait_for(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in workers), what="the writer to die with mepd")
    d.start()
    assert len(d.logs("--grep", "before-term")) == 50
    assert len(d.logs("--grep", "before-kill")) == 50
    assert d.mepctl_json("status")["store"]["logs"]["records"] == 100


def test_a_second_daemon_on_the_same_state_dir_is_refused(mepd_factory: MakeMepd, tmp_path: Path) -> None:
    """Even with a control socket of its own: two daemons would tail the same files and store each line twice."""
    log = tmp_path / "app.log"
    log.write_text("")
    tail = f'[[tail]]\nname = "app"\npath = "{log}"\n'
    d = mepd_factory(tail).start()
    second = mepd_factory(tail)
    second.write_config(tail)
    second.config_path.write_text(second.config_path.read_text().replace(
        str(second.root / "state"), str(d.root / "state")))
    second.start(wait_ready=False)
    assert second.proc is not None
    assert second.proc.wait(timeout=30) == 1
    assert "uses state_dir" in second.stderr()
    assert "own daemon.state_dir" in second.stderr()
    with log.open("a") as f:
        f.write("one line\n")
    assert len(d.wait_logs(1, "--grep", "one line")) == 1
    assert d.stop() == 0
    second.start()  # the lock goes with the first daemon
    assert second.stop() == 0


def test_control_socket_mode_stale_and_live(mepd_factory: MakeMepd) -> None:
    d = mepd_factory(syslog_listen(free_port(), "udp")).start()
    assert stat.S_IMODE(os.stat(d.socket).st_mode) == 0o660
    (d.root / "second").mkdir()
    second = Mepd(d.root / "second", "")
    second.config_path = d.config_path
    second.start(wait_ready=False)
    assert second.proc is not None
    assert second.proc.wait(timeout=30) == 1
    assert f"another mepd (pid {d.proc.pid if d.proc else '?'}) uses state_dir" in second.stderr()
    second.notify.close()
    d.kill()
    assert os.path.exists(d.socket)
    d.start()
    assert d.mepctl_json("status")["pid"] == d.proc.pid  # type: ignore[union-attr]


def test_mepctl_when_daemon_is_not_running(mepd_factory: MakeMepd) -> None:
    d = mepd_factory("")
    result = d.mepctl("status", check=False)
    assert result.returncode == 3
    assert result.stderr.strip() == f"mepctl: mepd is not running (no socket at {d.socket})"
    assert "Traceback" not in result.stderr
    assert d.mepctl("bogus", check=False).returncode == 2


def test_bad_query_is_a_request_error(daemon: Mepd) -> None:
    result = daemon.mepctl("logs", "--since", "last tuesday", check=False)
    assert result.returncode == 1
    assert "expected a time like" in result.stderr


def test_reload_changes_listener_and_refuses_invalid_config(mepd_factory: MakeMepd) -> None:
    old_port, new_port, kept_port = free_port(), free_port(), free_port()
    d = mepd_factory(syslog_listen(old_port, "udp") + syslog_listen(kept_port, "tcp")).start()
    kept_before = next(c for c in d.mepctl_json("status")["components"] if c["name"].startswith("syslog/tcp"))

    d.write_config(syslog_listen(new_port, "udp") + syslog_listen(kept_port, "tcp"))
    mark = len(d.notify.lines())
    d.send(signal.SIGHUP)
    d.notify.wait_line(lambda ln: ln == "RELOADING=1", "RELOADING=1", after=mark)
    d.wait_ready(after=mark)
    send_udp(new_port, b"<14>1 - h app - - - on the new port")
    assert d.wait_logs(1, "--grep", "new port")[0]["message"] == "on the new port"
    components = {c["name"]: c for c in d.mepctl_json("status")["components"]}
    assert f"syslog/udp 127.0.0.1:{old_port}" not in components
    assert components[f"syslog/tcp 127.0.0.1:{kept_port}"]["since"] == kept_before["since"]

    listeners = syslog_listen(new_port, "udp") + syslog_listen(kept_port, "tcp")
    d.write_config(listeners + '[storage.logs]\nretention = "7d"\n')
    reload = d.mepctl("reload")
    assert reload.stderr.strip() == "mepctl: warning: changes to [storage] take effect at the next restart"

    d.write_config(syslog_listen(new_port, "udp") + "[daemon.extra]\n")
    d.send(signal.SIGHUP)
    wait_for(lambda: d.mepctl_json("status")["reloads"].get("failed") == 1, what="refused reload")
    result = d.mepctl("reload", check=False)
    assert result.returncode == 1
    assert "daemon.extra: unknown key" in result.stderr
    send_udp(new_port, b"<14>1 - h app - - - still serving")
    assert d.wait_logs(1, "--grep", "still serving")


def test_reload_starts_again_a_listener_that_gave_up(mepd_factory: MakeMepd) -> None:
    """A port taken at start makes the listener FATAL; once it is free, a reload (unchanged config) brings it back."""
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    d = mepd_factory(syslog_listen(port, "tcp")).start()
    name = f"syslog/tcp 127.0.0.1:{port}"

    def state() -> str:
        return str(next(c for c in d.mepctl_json("status")["components"] if c["name"] == name)["state"])

    wait_for(lambda: state() == "fatal", what="the listener to give up")
    assert "Traceback" not in d.stderr(), "a port in use is one line, not a traceback"
    busy.close()
    reload = d.mepctl("reload")
    assert (reload.returncode, reload.stderr) == (0, "")
    wait_for(lambda: state() == "running", what="the listener to run again")
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"<14>1 - h app - - - back on its port\n")
    assert d.wait_logs(1, "--grep", "back on its port")


def test_sd_notify_ready_status_and_watchdog(mepd_factory: MakeMepd) -> None:
    d = mepd_factory(syslog_listen(free_port(), "udp"), env={"WATCHDOG_USEC": "400000"}).start()
    lines = d.notify.lines()
    assert "READY=1" in lines
    assert any(ln.startswith("STATUS=records received") for ln in lines)
    d.notify.wait_line(lambda ln: ln == "WATCHDOG=1", "WATCHDOG=1")
    count = d.notify.lines().count("WATCHDOG=1")
    d.notify.wait_line(lambda _ln: d.notify.lines().count("WATCHDOG=1") > count, "a second WATCHDOG=1")
    assert d.stop() == 0
    assert "STOPPING=1" in d.notify.lines()


def test_follow_ends_with_one_sentence_when_the_daemon_stops(mepd_factory: MakeMepd) -> None:
    port = free_port()
    d = mepd_factory(syslog_listen(port, "udp")).start()
    send_udp(port, b"<14>1 - h app - - - shown first")
    d.wait_logs(1, "--grep", "shown first")
    follow = subprocess.Popen(
        [sys.executable, "-m", "mepd.cli.mepctl", "--socket", d.socket, "logs", "--follow"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert follow.stdout is not None
    assert "shown first" in follow.stdout.readline(), "following: the stream is open"
    assert d.stop() == 0
    _, err = follow.communicate(timeout=60)
    assert follow.returncode == 3
    assert err.strip() == "mepctl: the daemon closed the connection (stopped or restarting?)"


def test_follow_streams_new_records(daemon: Mepd) -> None:
    port = daemon.port  # type: ignore[attr-defined]
    send_udp(port, b"<14>1 - fh app - - - already there")
    daemon.wait_logs(1, "--host", "fh")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mepd.cli.mepctl", "--socket", daemon.socket, "logs", "--follow", "--json",
         "--host", "fh"], stdout=subprocess.PIPE, text=True)
    lines: list[dict[str, object]] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_for(lambda: len(lines) >= 1, what="the existing record")
        send_udp(port, b"<14>1 - other app - - - filtered out", b"<14>1 - fh app - - - live one")
        wait_for(lambda: len(lines) >= 2, what="the live record")
        assert [r["message"] for r in lines] == ["already there", "live one"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        reader.join(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()


def test_reloads_that_change_a_udp_listener_lose_nothing_and_keep_its_counters(mepd_factory: MakeMepd) -> None:
    """Issue 17 item 12: each reload swapped the socket, losing what arrived meanwhile, and the counters restarted."""
    port = free_port()
    name = f"syslog/udp 127.0.0.1:{port}"
    d = mepd_factory(syslog_listen(port, "udp")).start()
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for reload in range(10):
            size = "32KiB" if reload % 2 == 0 else "64KiB"  # a setting that restarts the listener
            d.write_config(syslog_listen(port, "udp") + f'max_message_size = "{size}"\n')
            mark = len(d.notify.lines())
            d.send(signal.SIGHUP)
            while not any(ln.startswith("STATUS=records") for ln in d.notify.lines()[mark:]):  # READY=1 and STATUS
                for _ in range(100):
                    s.sendto(f"<14>1 - storm app - - - datagram {sent}".encode(), ("127.0.0.1", port))
                    sent += 1
            d.wait_ready(after=mark)

    def udp() -> dict[str, int]:
        return dict(next(c for c in d.mepctl_json("status")["components"] if c["name"] == name)["counters"])

    def all_accounted() -> bool:
        c = udp()
        return c["received"] + c["dropped.kernel"] == sent

    wait_for(all_accounted, what=f"all {sent} datagrams received or counted by the kernel")
    counters = udp()
    stored = counters["received"] - counters.get("dropped.queue_full", 0)
    wait_for(lambda: d.mepctl_json("status")["store"]["logs"]["records"] == stored, what=f"{stored} records stored")
    assert "reload done: 1 components started, 1 stopped" in d.stderr()


@pytest.mark.skipif(os.geteuid() != 0, reason="becoming another user needs root")
def test_mepctl_as_a_stranger_says_permission_denied(mepd_factory: MakeMepd) -> None:
    d = mepd_factory(syslog_listen(free_port(), "udp")).start()
    run_dir = Path(d.socket).parent
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o750  # as /run/mepd: only root and group mepd get in
    for parent in (d.root, d.root.parent):  # the temp dirs above it let anyone through, as /run does
        parent.chmod(0o755)

    def as_nobody() -> tuple[int, str]:
        result = subprocess.run(
            ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
             sys.executable, "-m", "mepd.cli.mepctl", "--socket", d.socket, "status"],
            capture_output=True, text=True, timeout=60, check=False, cwd=Path(__file__).parent.parent.parent,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        return result.returncode, result.stderr.strip()

    denied = (3, f"mepctl: permission denied on {d.socket}: run as root or as a member of the mepd group")
    assert as_nobody() == denied
    run_dir.chmod(0o755)  # the directory open, the socket itself (0660) still refuses
    assert as_nobody() == denied


def overwrite_pages(db: Path, first: int, count: int = 20, page_size: int = 16384) -> None:
    """Real corruption: `count` pages of the file, from page number `first` (1 is the header), made random bytes."""
    with db.open("r+b") as f:
        for page in range(first, first + count):
            f.seek((page - 1) * page_size)
            f.write(os.urandom(page_size))


def test_a_corrupt_log_database_is_set_aside_and_intake_goes_on(mepd_factory: MakeMepd) -> None:
    """Issue 17 item 6: 20 overwritten pages made status answer 500, and after a restart mepd exited."""
    port = free_port()
    d = mepd_factory(syslog_listen(port, "udp")).start()
    send_udp(port, *(f"<14>1 - h app - - - before {i} {'x' * 500}".encode() for i in range(2000)))
    d.wait_logs(2000, "--grep", "before")
    assert d.stop() == 0  # its last close moves the records from the -wal into the file
    d.start()
    db = d.root / "state" / "logs.db"
    overwrite_pages(db, first=2)  # the header stays: "database disk image is malformed"
    assert d.mepctl("status").returncode == 0
    send_udp(port, b"<14>1 - h app - - - after the damage")
    assert [r["message"] for r in d.wait_logs(1, "--grep", "after the damage")] == ["after the damage"]
    status = d.mepctl_json("status")
    store = next(c for c in status["components"] if c["name"] == "store/logs")
    assert store["counters"]["corrupt_files_set_aside"] == 1
    (aside,) = status["store"]["logs"]["set_aside"]
    assert os.path.basename(aside).startswith("logs.db.corrupt-")
    assert os.path.exists(aside)
    assert f"set aside as {aside}" in d.stderr()
    assert f"corrupt, set aside as {aside}" in d.mepctl("status").stdout

    assert d.stop() == 0
    overwrite_pages(db, first=1)  # the header too: "file is not a database"
    d.start()
    send_udp(port, b"<14>1 - h app - - - after the restart")
    assert [r["message"] for r in d.wait_logs(1, "--grep", "after the restart")] == ["after the restart"]
    set_aside = [f for f in glob.glob(f"{db}.corrupt-*") if not f.endswith(("-wal", "-shm"))]
    assert len(set_aside) == 2, "one per damaged file (its -wal and -shm go with it)"
    assert d.mepctl_json("status")["store"]["logs"]["records"] == 1


def test_a_deleted_log_database_is_noticed_and_a_new_one_started(mepd_factory: MakeMepd) -> None:
    """Issue 17 item 11: after `rm logs.db*`, records went on being "stored" into the unlinked file."""
    port = free_port()
    d = mepd_factory(syslog_listen(port, "udp")).start()
    send_udp(port, *(f"<14>1 - h app - - - before {i}".encode() for i in range(100)))
    d.wait_logs(100, "--grep", "before")
    subprocess.run(["rm", *glob.glob(f"{d.root / 'state' / 'logs.db'}*")], check=True)  # rm logs.db*
    send_udp(port, *(f"<14>1 - h app - - - after {i}".encode() for i in range(50)))
    d.wait_logs(50, "--grep", "after")
    assert os.path.exists(d.root / "state" / "logs.db")
    store = next(c for c in d.mepctl_json("status")["components"] if c["name"] == "store/logs")
    assert store["counters"]["missing_files_reopened"] == 1
    assert "was deleted or replaced while open: the 100 records it held are lost" in d.stderr()
    assert d.stop() == 0
    d.start()
    assert len(d.logs("--grep", "after")) == 50, "stored in the file at the path, not the unlinked one"


def test_future_dated_records_do_not_hide_current_ones(mepd_factory: MakeMepd) -> None:
    """Issue 17 item 8: 1,000 lines dated 2099 hid 5 current ones from --since 10m, --follow and the logs page."""
    port, http = free_port(), free_port()
    d = mepd_factory(syslog_listen(port, "udp") + f'[http]\nlisten = "127.0.0.1:{http}"\n').start()

    def stored(n: int) -> None:
        wait_for(lambda: d.mepctl_json("status")["store"]["logs"]["records"] == n, what=f"{n} records stored")

    for chunk in range(10):  # in steps the daemon takes in, not to test the kernel's buffer
        send_udp(port, *(f"<14>1 2099-01-01T00:00:00Z liar app - - - from the future {chunk * 100 + i}".encode()
                         for i in range(100)))
        stored((chunk + 1) * 100)
    now = rfc3339(time.time())  # stamped as rsyslog does, to the microsecond: after the flood arrived
    current = [f"Failed password for root from 192.0.2.7 port {22000 + i} ssh2" for i in range(5)]
    send_udp(port, *(f"<38>1 {now} bastion sshd 811 - - {m}".encode() for m in current))
    stored(1005)

    since = d.mepctl_json("logs", "--since", "10m")
    assert [r["message"] for r in since if r["app"] == "sshd"] == current
    liar = next(r for r in since if r["app"] == "app")
    assert liar["sd"] == {"mepd": {"ts_claimed": "2099-01-01T00:00:00.000000Z"}}
    assert liar["ts"] == liar["received"]
    assert d.mepctl_json("status")["store"]["logs"]["future_dated"] == 1000
    assert "dated ahead of their arrival, stored at it (sd.mepd.ts_claimed): 1000" in d.mepctl("status").stdout

    follow = subprocess.Popen(
        [sys.executable, "-m", "mepd.cli.mepctl", "--socket", d.socket, "logs", "--follow", "--json"],
        stdout=subprocess.PIPE, text=True)
    first: list[str] = []

    def read() -> None:
        assert follow.stdout is not None
        for line in follow.stdout:
            first.append(json.loads(line)["message"])

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_for(lambda: len(first) >= 10, what="the 10 records --follow shows first")
        assert [m for m in first[:10] if m in current] == current
    finally:
        follow.terminate()
        follow.wait(timeout=30)
        reader.join(timeout=30)
        assert follow.stdout is not None
        follow.stdout.close()

    found = d.dashboard_get(f"http://127.0.0.1:{http}/logs.html").decode().split("<h2>Found", 1)[1]
    assert [m for m in current if m in found] == current


def test_log_filters_too_big_are_request_errors(daemon: Mepd) -> None:
    """Issue 17 items 9 and 13: a --limit past 64 bits answered 500, a grep of any length ran for seconds."""
    for args, message in (
        (("--limit", "99999999999999999999"), "limit: at most 9223372036854775807, got 99999999999999999999"),
        (("--grep", "x" * 257), "grep: at most 256 characters, got 257"),
    ):
        for follow in ((), ("--follow",)):
            result = daemon.mepctl("logs", *args, *follow, check=False)
            assert (result.returncode, result.stderr) == (1, f"mepctl: {message}\n")
    assert daemon.mepctl("status").returncode == 0
