"""The journal source against real journal files written by systemd-journal-remote."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

import pytest

from mepd.config import JournalConfig
from mepd.model import LogRecord
from mepd.pipeline import Pipeline
from mepd.sources.journal import JournalSource, create
from tests.integration.journal.journal_files import T0, Daemon, JournalDir, entry


def head(journal_dir: JournalDir, **kw: object) -> JournalConfig:
    return JournalConfig(enabled=True, path=str(journal_dir.path), start="head", **kw)  # type: ignore[arg-type]


def numbers(messages: list[str]) -> list[int]:
    return sorted(int(m.split()[1]) for m in messages)


def assert_exactly_once(messages: list[str], expected: Iterable[int]) -> None:
    dupes = [m for m, n in Counter(messages).items() if n > 1]
    assert dupes == []
    assert numbers(messages) == list(expected)


async def collect(
    source: JournalSource, pipeline: Pipeline, n: int
) -> tuple[list[LogRecord], asyncio.Task[None]]:
    """Run the source until n records came through a subscription taken before it starts."""
    sub = pipeline.logs.subscribe("test", 10_000)
    task = asyncio.create_task(source.run(lambda: None))
    got: list[LogRecord] = []
    async with asyncio.timeout(30):
        while len(got) < n:
            got += await sub.get_batch(n - len(got), 0)
    return got, task


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_fields_are_mapped(journal_dir: JournalDir) -> None:
    journal_dir.write([
        entry(0, INVOCATION_ID="abc", CODE_FILE="main.c"),
        entry(1, MESSAGE=b"bin\xff\x00ary", PRIORITY="3", SYSLOG_FACILITY="10"),
        {"__REALTIME_TIMESTAMP": str(T0 + 2000), "_COMM": "kworker", "MESSAGE": "msg 2", "PRIORITY": "x"},
        entry(3, MESSAGE="line one\nline two"),
    ])
    pipeline = Pipeline()
    source = create(head(journal_dir, fields=("INVOCATION_ID", "CODE_FILE")), pipeline.logs, _none)
    got, task = await collect(source, pipeline, 4)
    await stop(task)

    first, binary, bare, multiline = got
    assert first.ts == T0 / 1e6
    assert (first.host, first.app, first.pid, first.severity, first.facility) == ("web1", "app", "1000", 6, 3)
    assert first.message == "msg 0"
    assert first.source == "journal"
    assert first.sd == {"journal": {"unit": "app.service", "INVOCATION_ID": "abc", "CODE_FILE": "main.c"}}
    assert first.cursor is not None
    assert first.cursor[0] == "journal"
    assert first.cursor[1].startswith("s=")
    assert first.parse_error is None

    assert binary.message == "bin\ufffd\x00ary"
    assert binary.raw == "bin\\xff\x00ary"
    assert binary.parse_error is not None
    assert (binary.severity, binary.facility) == (3, 10)

    assert (bare.app, bare.host, bare.pid) == ("kworker", None, None)
    assert (bare.severity, bare.facility) == (None, None)
    assert bare.sd == {}
    assert multiline.message == "line one\nline two"
    assert source.counters.get("read") == 4
    assert source.counters.get("binary_messages") == 1


async def _none() -> str | None:
    return None


async def test_follows_appends_and_new_files(journal_dir: JournalDir, daemons: Callable[..., Daemon]) -> None:
    journal_dir.write([entry(i) for i in range(10)])
    d = daemons(head(journal_dir))
    await d.start()
    await d.wait_stored(9)
    journal_dir.write([entry(i) for i in range(10, 20)])
    await d.wait_stored(19)
    journal_dir.write([entry(i) for i in range(20, 30)], file="second.journal")
    assert_exactly_once(await d.wait_stored(29), range(30))


async def test_resume_after_crash_reads_each_entry_once(
    journal_dir: JournalDir, daemons: Callable[..., Daemon]
) -> None:
    """Crash while records are queued between source and store, twice; append while stopped."""
    journal_dir.write([entry(i) for i in range(3000)])
    cfg = head(journal_dir)
    first = daemons(cfg, queue=50)
    await first.start()
    await first.until(lambda: first.sink.counters.get("stored") >= 500)
    await first.crash()
    assert first.sink.counters.get("stored") < 3000  # the crash did cut the stream

    journal_dir.write([entry(i) for i in range(3000, 4000)])
    second = daemons(cfg, queue=50)
    await second.start()
    await second.until(lambda: second.sink.counters.get("stored") >= 500)
    await second.crash()

    journal_dir.write([entry(i) for i in range(4000, 5000)], file="later.journal")
    third = daemons(cfg, queue=50)
    await third.start()
    assert_exactly_once(await third.wait_stored(4999), range(5000))


async def test_in_process_restart_repeats_nothing_still_queued(journal_dir: JournalDir) -> None:
    """A supervisor restart (same instance) or a reload (new instance, same pipeline) resumes
    where reading got to, not at the store's older cursor."""
    journal_dir.write([entry(i) for i in range(300)])
    pipeline = Pipeline()
    sub = pipeline.logs.subscribe("slow-store", 100)
    source = create(head(journal_dir), pipeline.logs, _none)
    task = asyncio.create_task(source.run(lambda: None))
    got: list[LogRecord] = []
    got += await sub.get_batch(40, 0)
    await stop(task)
    task = asyncio.create_task(source.run(lambda: None))
    got += await sub.get_batch(60, 0)
    await stop(task)
    rebuilt = create(head(journal_dir), pipeline.logs, _none)
    task = asyncio.create_task(rebuilt.run(lambda: None))
    async with asyncio.timeout(30):
        while len(got) < 300:
            got += await sub.get_batch(300, 0)
    await stop(task)
    assert_exactly_once([r.message for r in got], range(300))


@pytest.mark.parametrize(("kept_from", "first_read"), [(50, 100), (130, 130)])
async def test_stale_cursor_resumes_after_its_time(
    journal_dir: JournalDir, daemons: Callable[..., Daemon], kept_from: int, first_read: int
) -> None:
    """The files are replaced while mepd is down: entries already stored are not read again, entries
    after the saved cursor's time are, and the stale cursor is counted."""
    journal_dir.write([entry(i) for i in range(100)])
    cfg = head(journal_dir)
    first = daemons(cfg)
    await first.start()
    await first.wait_stored(99)
    await first.crash()

    journal_dir.replace()
    journal_dir.write([entry(i) for i in range(kept_from, 150)], file="new.journal")
    second = daemons(cfg)
    await second.start()
    messages = await second.wait_stored(149)
    assert_exactly_once(messages, [*range(100), *range(first_read, 150)])
    assert second.source.counters.get("resume.stale_cursor") == 1
    assert first.source.counters.get("resume.stale_cursor") == 0


async def test_matches(journal_dir: JournalDir) -> None:
    journal_dir.write([
        entry(0),                                                             # kept
        entry(1, PRIORITY="7"),                                               # too low
        entry(2, _SYSTEMD_UNIT="other.service"),                              # other unit
        entry(3, SYSLOG_IDENTIFIER="cron"),                                   # other identifier
        entry(4, _SYSTEMD_UNIT="db.service", PRIORITY="0"),                   # second unit
        entry(5, _SYSTEMD_UNIT="init.scope", _PID="1", UNIT="app.service"),   # systemd about app: kept
        entry(6, SYSLOG_IDENTIFIER="sshd", _SYSTEMD_UNIT="app.service"),      # second identifier
        entry(7, SYSLOG_IDENTIFIER="sshd", _SYSTEMD_UNIT="app.service", PRIORITY="5"),
    ])
    cfg = head(journal_dir, units=("app", "db.service"), identifiers=("app", "sshd"), priority="info")
    pipeline = Pipeline()
    source = create(cfg, pipeline.logs, _none)
    got, task = await collect(source, pipeline, 5)
    journal_dir.write([entry(8, PRIORITY="7"), entry(9)])
    async with asyncio.timeout(30):
        got += await pipeline.logs.subscribers[0].get_batch(10, 0)
    await stop(task)
    assert [r.message for r in got] == ["msg 0", "msg 4", "msg 5", "msg 6", "msg 7", "msg 9"]


@pytest.mark.parametrize("identifiers", [(), ("app",)])
async def test_first_run_at_tail_reads_only_new_entries(
    journal_dir: JournalDir, daemons: Callable[..., Daemon], identifiers: tuple[str, ...]
) -> None:
    """Including the very first new entry, which seek_tail with matches would skip."""
    journal_dir.write([entry(i) for i in range(20)])
    cfg = replace(head(journal_dir, identifiers=identifiers), start="tail")
    d = daemons(cfg)
    await d.start()
    journal_dir.write([entry(i) for i in range(20, 25)])
    assert_exactly_once(await d.wait_stored(24), range(20, 25))
    await d.crash()
    again = daemons(cfg)
    await again.start()
    journal_dir.write([entry(i) for i in range(25, 30)])
    assert_exactly_once(await again.wait_stored(29), range(20, 30))


async def test_missing_directory_fails_so_status_shows_it(tmp_path: Path) -> None:
    cfg = JournalConfig(enabled=True, path=str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError):
        await create(cfg, Pipeline().logs, _none).run(lambda: None)
