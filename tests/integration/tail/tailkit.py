"""Helpers for the tail tests: a tail source wired to a real log store, a log writer, logrotate."""

from __future__ import annotations

import asyncio
import collections
import os
import re
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from mepd.config import LogStorageConfig, TailConfig
from mepd.model import LogQuery
from mepd.pipeline import Counters, Pipeline
from mepd.sources.tail import TailSource
from mepd.store.logs.store import LogSink, LogStore

WRITER = str(Path(__file__).with_name("writer.py"))
DEADLINE = 30.0
_SEQ = re.compile(r"^line (\d{8}) ")


async def wait_until(
    what: str | Callable[[], str], check: Callable[[], Awaitable[bool]], deadline: float = DEADLINE
) -> None:
    """Poll `check` until true; at the deadline fail naming `what` (a callable runs after the last check)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not await check():
        if loop.time() > end:
            pytest.fail(f"timed out waiting for {what if isinstance(what, str) else what()}")
        await asyncio.sleep(0.02)


def _ranges(values: list[int]) -> str:
    out: list[str] = []
    for v in values:
        if out and out[-1].endswith(f"-{v - 1}"):
            out[-1] = out[-1].rsplit("-", 1)[0] + f"-{v}"
        elif out and out[-1] == str(v - 1):
            out[-1] = f"{v - 1}-{v}"
        else:
            out.append(str(v))
    return ", ".join(out[:20])


class Daemon:
    """Store + sink + one tail source, as the daemon runs them; `crash` drops what is not committed."""

    def __init__(self, db: str, cfg: TailConfig) -> None:
        self.db = db
        self.cfg = cfg
        self.store: LogStore | None = None
        self.source: TailSource | None = None
        self.pipeline = Pipeline()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.pipeline = Pipeline()
        self.store = LogStore(self.db, LogStorageConfig(flush_interval=0.02))
        await self.store.open()
        sub = self.pipeline.logs.subscribe("logstore", 100_000)
        sink = LogSink(self.store, sub, Counters(), self.pipeline.log_counters)
        self.source = TailSource(self.cfg, self.pipeline.logs, self.store.cursor, hostname="testhost")
        ready = asyncio.Event()
        self._tasks = [
            asyncio.create_task(sink.run(lambda: None)),
            asyncio.create_task(self.source.run(ready.set)),
        ]
        waiter = asyncio.create_task(ready.wait())
        done, _ = await asyncio.wait(
            [waiter, self._tasks[1]], timeout=DEADLINE, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter not in done:
            waiter.cancel()
            pytest.fail(f"tail source did not start: {self._tasks[1]}")

    async def restart_source(self) -> None:
        """The supervisor's restart: same source object, store and pipeline, records still queued."""
        assert self.source is not None
        task = self._tasks[1]
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        ready = asyncio.Event()
        self._tasks[1] = asyncio.create_task(self.source.run(ready.set))
        await asyncio.wait_for(ready.wait(), DEADLINE)

    async def crash(self) -> None:
        """Like kill -9: stop everything at once; queued records are lost, committed ones stay."""
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self.store is not None:
            await self.store.close()
            self.store = None

    async def records(self) -> list[dict[str, object]]:
        assert self.store is not None
        return await self.store.query(LogQuery(limit=0))

    async def messages(self) -> list[str]:
        return [str(r["message"]) for r in await self.records()]

    async def seqs(self) -> collections.Counter[int]:
        return collections.Counter(int(m.group(1)) for s in await self.messages() if (m := _SEQ.match(s)))

    async def count(self) -> int:
        assert self.store is not None
        stats = await self.store.stats()
        return int(str(stats["records"]))

    async def wait_seqs_at_least(self, n: int) -> None:
        async def enough() -> bool:
            return await self.count() >= n
        await wait_until(f"{n} lines stored", enough)

    async def assert_exactly(self, expected: range) -> None:
        """Wait until every numbered line is stored, then check none is missing or doubled."""
        missing: list[int] = []

        stored = [0]

        async def complete() -> bool:
            stored[0] = await self.count()
            if stored[0] < len(expected):
                return False
            missing[:] = sorted(set(expected) - set(await self.seqs()))
            return not missing
        last = expected.stop - 1

        def describe() -> str:
            assert self.source is not None
            counters = self.source.counters.snapshot()
            return f"lines {expected.start}..{last}: {stored[0]} in, missing {_ranges(missing)}, {counters}"
        await wait_until(describe, complete)
        assert self.store is not None
        # Let anything in flight land before counting duplicates.
        try:
            async with asyncio.timeout(DEADLINE):
                await self.pipeline.join()
        except TimeoutError:
            assert self.source is not None
            pytest.fail(f"pipeline never drained: {self.pipeline.status()} {self.source.counters.snapshot()}")
        seqs = await self.seqs()
        doubled = {k: v for k, v in seqs.items() if v > 1}
        assert not doubled, f"lines stored more than once: {sorted(doubled)[:20]}"
        assert set(seqs) == set(expected), f"unexpected lines: {sorted(set(seqs) - set(expected))[:20]}"


class Writer:
    """A writer subprocess; stopped by PID at teardown."""

    def __init__(self, path: Path, first: int, count: int, pace: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, WRITER, str(path), str(first), str(count), str(pace)],
            stdout=subprocess.PIPE, text=True,
        )
        self.pid = self.proc.pid

    async def finish(self) -> None:
        loop = asyncio.get_running_loop()
        out, _ = await loop.run_in_executor(None, lambda: self.proc.communicate(timeout=DEADLINE))
        assert self.proc.returncode == 0, out

    async def pause(self) -> None:
        """SIGSTOP, then wait until the kernel reports it stopped: no write is in progress after this."""
        os.kill(self.pid, signal.SIGSTOP)

        stat = Path(f"/proc/{self.pid}/stat")

        def state() -> str:
            return stat.read_text().rsplit(")", 1)[1].split()[0]

        async def stopped() -> bool:
            return await asyncio.to_thread(state) in ("T", "t", "Z")  # Z: it had already finished
        await wait_until("writer stopped", stopped)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def append_lines(path: Path, first: int, count: int) -> None:
    with open(path, "ab") as fh:
        fh.write(b"".join(b"line %08d appended\n" % i for i in range(first, first + count)))


def logrotate(tmp_path: Path, log: Path, *directives: str) -> None:
    """Run the real logrotate with its own state file, forcing a rotation of `log`."""
    conf = tmp_path / "logrotate.conf"
    body = "\n".join(f"    {d}" for d in directives)
    conf.write_text(f"{log} {{\n    rotate 5\n    nocompress\n    missingok\n{body}\n}}\n")
    conf.chmod(0o644)
    subprocess.run(
        ["logrotate", "-f", "-s", str(tmp_path / "logrotate.state"), str(conf)],
        check=True, capture_output=True, text=True,
    )


def postrotate_hup(pid: int) -> tuple[str, ...]:
    return ("postrotate", f"    kill -HUP {pid}", "endscript")
