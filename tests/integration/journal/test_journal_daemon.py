"""The real daemon reading journal files: kill -9 and restart, twice, lose and repeat nothing."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tests.helpers import Mepd, wait_for
from tests.integration.journal.journal_files import JournalDir, entry

MakeMepd = Callable[..., Mepd]
TOTAL = 30_000


def stored_messages(db: Path) -> list[str]:
    """Read straight from the database: quicker than mepctl for 30,000 records, polled often."""
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return [m for (m,) in conn.execute("SELECT message FROM logs WHERE source = 'journal'")]
    finally:
        conn.close()


def test_kill_9_and_restart_store_each_entry_once(journal_dir: JournalDir, mepd_factory: MakeMepd) -> None:
    journal_dir.write([entry(i) for i in range(10_000)])
    d = mepd_factory(
        f'[journal]\nenabled = true\npath = "{journal_dir.path}"\nstart = "head"\n'
        '[storage.logs]\nbatch_size = 500\n'
    )
    db = d.root / "state" / "logs.db"
    at_kill = [0]
    for first, last in ((10_000, 20_000), (20_000, TOTAL)):
        d.start()
        before = at_kill[-1]
        wait_for(lambda: len(stored_messages(db)) > before, what="this run storing journal records")  # noqa: B023
        d.kill()
        at_kill.append(len(stored_messages(db)))
        journal_dir.write([entry(i) for i in range(first, last)], file=f"after-kill-{first}.journal")
    d.start()
    messages = wait_for(
        lambda: (m := stored_messages(db)) and f"msg {TOTAL - 1}" in m and m, what="the last entry stored"
    )
    assert [m for m, n in Counter(messages).items() if n > 1] == []
    assert sorted(int(m.split()[1]) for m in messages) == list(range(TOTAL))

    status = d.mepctl_json("status")
    journal = next(c for c in status["components"] if c["name"] == "journal")
    assert journal["state"] == "running"
    assert journal["counters"].get("resume.stale_cursor", 0) == 0
    records = d.logs("--app", "app", "--grep", f"msg {TOTAL - 1}")
    assert [(r["source"], r["host"], r["sd"]) for r in records] == [
        ("journal", "web1", {"journal": {"unit": "app.service"}})
    ]
    assert at_kill[1] < 10_000 or at_kill[2] < 20_000  # at least one kill landed mid-stream
