"""A bounded queue on disk (SQLite) for what must outlive a restart on its way out: remote write's samples,
the fleet's metrics.  Blocking: one thread calls it (`mepd.workers.Thread`).

Ids are consecutive and only the oldest are ever deleted, so the length is max(id) - min(id) + 1, read from
the primary key's index, not counted.  Beyond `limit` the oldest are dropped, and the caller counts them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any


class DiskQueue:
    """Rows of `columns`: SQL column definitions after the id (one named `ts` where `oldest` is used)."""

    def __init__(self, path: str, limit: int, columns: str) -> None:
        self.path = path
        self.limit = limit
        self._columns = columns
        self._names = ", ".join(c.split()[0] for c in columns.split(","))
        self._db: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self.path, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            with db:
                db.execute(f"CREATE TABLE IF NOT EXISTS queue (id INTEGER PRIMARY KEY AUTOINCREMENT, {self._columns})")
                self.created(db)
            self._db = db
        return self._db

    def created(self, db: sqlite3.Connection) -> None:
        """What a kind of queue keeps beside its rows, made in the transaction that makes the table."""

    def __len__(self) -> int:
        low, high = self.db.execute("SELECT min(id), max(id) FROM queue").fetchone()
        return 0 if low is None else int(high) - int(low) + 1

    def append(self, rows: Sequence[Sequence[Any]]) -> int:
        """Queue the rows; returns how many of the oldest were dropped to stay within `limit`."""
        with self.db:
            marks = ", ".join("?" * len(rows[0])) if rows else ""
            self.db.executemany(f"INSERT INTO queue ({self._names}) VALUES ({marks})", rows)  # noqa: S608 - our names
            over = len(self) - self.limit
            if over > 0:
                self.db.execute("DELETE FROM queue WHERE id < (SELECT min(id) FROM queue) + ?", (over,))
        return max(0, over)

    def head(self, n: int, through: int = 2**63 - 1) -> list[tuple[Any, ...]]:
        """The oldest `n` rows (id first), of those with ids up to `through`."""
        return self.db.execute(f"SELECT id, {self._names} FROM queue WHERE id <= ? ORDER BY id LIMIT ?",  # noqa: S608
                               (through, n)).fetchall()

    def oldest(self) -> float | None:
        """The `ts` of the oldest row."""
        row = self.db.execute("SELECT ts FROM queue ORDER BY id LIMIT 1").fetchone()
        return None if row is None else float(row[0])

    def delete_through(self, last_id: int) -> None:
        with self.db:
            self.db.execute("DELETE FROM queue WHERE id <= ?", (last_id,))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
