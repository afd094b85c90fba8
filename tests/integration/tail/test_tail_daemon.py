"""The real daemon following a file: kill -9 and rotation while it is down, counted through mepctl."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tests.helpers import Mepd, wait_for
from tests.integration.tail.tailkit import WRITER, logrotate, postrotate_hup

MakeMepd = Callable[..., Mepd]
TOTAL = 6000


def stored(db: Path) -> int:
    """Straight from the database: cheap enough to poll; the final check goes through mepctl."""
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return int(conn.execute("SELECT count(*) FROM logs WHERE source = 'tail:app'").fetchone()[0])
    finally:
        conn.close()


def test_kill_9_and_rotation_while_down_store_each_line_once(mepd_factory: MakeMepd, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    d = mepd_factory(f'[[tail]]\nname = "app"\npath = "{log}"\nstart = "beginning"\nrotate_wait = "300ms"\n')
    db = d.root / "state" / "logs.db"
    writer = subprocess.Popen([sys.executable, WRITER, str(log), "0", str(TOTAL), "0.0005"],
                              stdout=subprocess.DEVNULL)
    try:
        d.start()
        wait_for(lambda: stored(db) >= 1000, what="1000 lines stored")
        d.kill()
        logrotate(tmp_path, log, "create", *postrotate_hup(writer.pid))
        d.start()
        wait_for(lambda: stored(db) >= 3000, what="3000 lines stored")
        d.kill()
        at_kill = stored(db)
        d.start()
        assert writer.wait(timeout=60) == 0
        wait_for(lambda: stored(db) >= TOTAL, what=f"{TOTAL} lines stored")
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert at_kill < TOTAL  # the second kill landed while the writer was still writing
    records = d.logs("--source", "tail:app")
    seqs = Counter(int(str(r["message"]).split()[1]) for r in records)
    assert [n for n, c in seqs.items() if c > 1] == []
    assert sorted(seqs) == list(range(TOTAL))
    assert {(r["host"], r["app"]) for r in records} == {(os.uname().nodename, "app")}
    status = d.mepctl_json("status")
    tail = next(c for c in status["components"] if c["name"] == "tail:app")
    assert tail["state"] == "running"
    assert tail["details"]["errors"] == {}
    assert [f["path"] for f in tail["details"]["files"]] == [str(log)]


def test_unreadable_file_reported_in_status_then_read_when_readable(mepd_factory: MakeMepd) -> None:
    # Root reads every file, so the daemon runs as nobody here, as a packaged mepd would not be root.
    d = mepd_factory()
    d.write_config(f'[[tail]]\nname = "secret"\npath = "{d.root}/logs/secret.log"\nstart = "beginning"\n')
    secret = d.root / "logs" / "secret.log"
    secret.parent.mkdir()
    secret.write_text("written before it was readable\n")
    secret.chmod(0o600)
    d.root.parent.chmod(0o755)
    for path in (d.root, *d.root.rglob("*")):
        if path != secret:
            os.chown(path, 65534, 65534)
    d.notify.path.chmod(0o777)
    d.start(wrapper=("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"))

    def error_shown() -> dict[str, object] | None:
        status = d.mepctl_json("status")
        tail = next(c for c in status["components"] if c["name"] == "tail:secret")
        return tail if tail["details"]["errors"] else None

    tail = wait_for(error_shown, what="the permission error in mepctl status")
    assert tail["details"]["errors"] == {str(secret): "Permission denied"}
    assert tail["counters"]["open_errors"] == 1
    assert tail["state"] == "running"
    assert f"tail:secret: cannot read {secret}: Permission denied" in d.mepctl("status").stdout
    secret.chmod(0o644)
    (r,) = d.wait_logs(1, "--source", "tail:secret")
    assert r["message"] == "written before it was readable"
    tail = next(c for c in d.mepctl_json("status")["components"] if c["name"] == "tail:secret")
    assert tail["details"]["errors"] == {}
    assert d.stop() == 0


def test_a_pattern_that_matches_nothing_is_said_then_followed_when_a_file_appears(
        mepd_factory: Callable[..., Mepd], tmp_path: Path) -> None:
    """A typo or a missing folder must not look like a quiet log (Telegraf and Fluent Bit warn too)."""
    log = tmp_path / "later" / "app.log"
    d = mepd_factory(f'[[tail]]\nname = "later"\npath = "{log}"\nstart = "beginning"\n').start()
    wait_for(lambda: f"tail:later: no file matches {log}" in d.mepctl("status").stdout, what="the status line")
    assert d.stderr().count(f"no file matches {log}") == 1
    log.parent.mkdir()
    log.write_text("now it exists\n")
    assert d.wait_logs(1, "--source", "tail:later")[0]["message"] == "now it exists"
    wait_for(lambda: "no file matches" not in d.mepctl("status").stdout, what="the line gone")
