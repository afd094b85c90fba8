"""Real journal files, written by systemd-journal-remote from export-format input; a crashable daemon."""

from __future__ import annotations

import asyncio
import re
import struct
import subprocess
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import pytest

from mepd.config import JournalConfig, LogStorageConfig
from mepd.model import LogQuery
from mepd.pipeline import Counters, Pipeline
from mepd.sources.journal import CURSOR_KEY, create
from mepd.store.logs.store import LogSink, LogStore

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
BOOT_ID = "6a0f1c3e2b7d4e58a9c0b1d2e3f40516"
T0 = 1_700_000_000_000_000  # microseconds; entry i is written at T0 + i ms

Entry = Mapping[str, str | bytes]


def export(entries: list[Entry]) -> bytes:
    """Journal export format: KEY=VALUE lines, binary values length-prefixed, a blank line per entry."""
    out = bytearray()
    for entry in entries:
        for key, value in entry.items():
            if isinstance(value, bytes) or "\n" in value:
                data = value if isinstance(value, bytes) else value.encode()
                out += key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
            else:
                out += f"{key}={value}\n".encode()
        out += b"\n"
    return bytes(out)


def entry(i: int, **fields: str | bytes) -> dict[str, str | bytes]:
    """Numbered entry i: "msg i", with the fields journald gives a service, overridable."""
    base: dict[str, str | bytes] = {
        "__REALTIME_TIMESTAMP": str(T0 + i * 1000),
        "__MONOTONIC_TIMESTAMP": str(5_000_000 + i * 1000),
        "_BOOT_ID": BOOT_ID,
        "_HOSTNAME": "web1",
        "_PID": str(1000 + i),
        "_COMM": "worker",
        "SYSLOG_IDENTIFIER": "app",
        "_SYSTEMD_UNIT": "app.service",
        "PRIORITY": "6",
        "SYSLOG_FACILITY": "3",
        "MESSAGE": f"msg {i}",
    }
    base.update(fields)
    return base


class JournalDir:
    """A directory of journal files; `write` appends entries to one file (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, entries: list[Entry], file: str = "remote.journal") -> None:
        proc = subprocess.run(
            [JOURNAL_REMOTE, f"--output={self.path / file}", "-"],
            input=export(entries), capture_output=True, timeout=60, check=False,
        )
        written = re.search(rb"Finishing after writing (\d+) entries", proc.stderr)
        assert proc.returncode == 0, proc.stderr
        assert written is not None, proc.stderr
        assert int(written.group(1)) == len(entries), proc.stderr

    def replace(self) -> None:
        """Remove every journal file, as a vacuum or a lost volume would."""
        for f in self.path.glob("*.journal"):
            f.unlink()




class Daemon:
    """A journal source feeding the real log store as the daemon wires them; `crash` loses what is queued."""

    def __init__(self, db: Path, cfg: JournalConfig, queue: int = 100) -> None:
        self.db = db
        self.cfg = cfg
        self.queue = queue
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.pipeline = Pipeline()
        self.store = LogStore(str(self.db), LogStorageConfig(batch_size=100, flush_interval=0.02))
        await self.store.open()
        sub = self.pipeline.logs.subscribe("store/logs", self.queue)
        self.sink = LogSink(self.store, sub, Counters(), self.pipeline.log_counters)
        self.source = create(self.cfg, self.pipeline.logs, lambda: self.store.cursor(CURSOR_KEY))
        started = asyncio.Event()
        self.tasks = [
            asyncio.create_task(self.sink.run(lambda: None)),
            asyncio.create_task(self.source.run(started.set)),
        ]
        await self.until(started.is_set)

    async def crash(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.store.close()

    async def messages(self) -> list[str]:
        return [str(r["message"]) for r in await self.store.query(LogQuery(limit=0))]

    async def wait_stored(self, last: int) -> list[str]:
        """Until "msg <last>" is stored; returns every stored message.

        The source reads in journal order and the store keeps it, so once the last entry is in,
        anything read twice before it is in too.
        """
        want = f"msg {last}"
        got: list[str] = []

        async def arrived() -> bool:
            nonlocal got
            got = await self.messages()
            return want in got

        await self.until(arrived)
        return got

    async def until(self, cond: Callable[[], bool | Awaitable[bool]], limit: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + limit
        while True:
            for t in self.tasks:
                if t.done():
                    t.result()
                    pytest.fail(f"{t.get_name()} stopped")
            ok = cond()
            if not isinstance(ok, bool):
                ok = await ok
            if ok:
                return
            if asyncio.get_running_loop().time() > deadline:
                pytest.fail("condition not met before the deadline")
            await asyncio.sleep(0.02)
