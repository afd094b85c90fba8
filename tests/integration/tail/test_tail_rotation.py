"""Real files, real logrotate: every numbered line stored exactly once through rotations and restarts."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from mepd.config import TailConfig
from tests.integration.tail.tailkit import Daemon, Writer, append_lines, logrotate, postrotate_hup

Factory = Callable[[TailConfig], Daemon]
Writers = Callable[..., Writer]


def tail_cfg(path: Path, **kw: object) -> TailConfig:
    return TailConfig(name="app", path=str(path), start="beginning", rotate_wait=2.0, **kw)  # type: ignore[arg-type]


async def test_rename_rotation_under_load(tmp_path: Path, daemon_factory: Factory, writers: Writers) -> None:
    log = tmp_path / "app.log"
    d = daemon_factory(tail_cfg(log))
    await d.start()
    w = writers(log, 0, 6000, 0.0005)
    await d.wait_seqs_at_least(500)
    logrotate(tmp_path, log, "create", *postrotate_hup(w.pid))
    await d.wait_seqs_at_least(2000)
    logrotate(tmp_path, log, "create", *postrotate_hup(w.pid))
    logrotate(tmp_path, log, "create", *postrotate_hup(w.pid))
    await w.finish()
    await d.assert_exactly(range(6000))
    assert (tmp_path / "app.log.3").exists()
    assert d.source is not None
    assert d.source.counters.get("files_opened") >= 4  # more when a listing raced a rename


async def test_copytruncate_under_load(tmp_path: Path, daemon_factory: Factory, writers: Writers) -> None:
    log = tmp_path / "app.log"
    d = daemon_factory(tail_cfg(log))
    await d.start()
    w = writers(log, 0, 6000, 0.0005)
    for target in (800, 2500, 4000):
        await d.wait_seqs_at_least(target)
        # copytruncate loses what is written between copy and truncate, for every reader: hold the writer.
        await w.pause()
        logrotate(tmp_path, log, "copytruncate")
        w.resume()
    await w.finish()
    await d.assert_exactly(range(6000))
    assert d.source is not None
    assert d.source.counters.get("truncations") == 3


async def test_crashes_and_rotations_while_stopped_under_load(
    tmp_path: Path, daemon_factory: Factory, writers: Writers
) -> None:
    log = tmp_path / "app.log"
    cfg = tail_cfg(log)
    d = daemon_factory(cfg)
    await d.start()
    w = writers(log, 0, 8000, 0.0005)
    await d.wait_seqs_at_least(1000)
    await d.crash()
    logrotate(tmp_path, log, "create", *postrotate_hup(w.pid))
    d = daemon_factory(cfg)
    await d.start()
    await d.wait_seqs_at_least(3000)
    await d.crash()
    await w.pause()
    logrotate(tmp_path, log, "copytruncate")
    w.resume()
    d = daemon_factory(cfg)
    await d.start()
    await d.wait_seqs_at_least(5000)
    await d.crash()
    d = daemon_factory(cfg)
    await d.start()
    await w.finish()
    await d.assert_exactly(range(8000))


async def test_copytruncate_while_stopped_reads_missed_lines_from_the_copy(
    tmp_path: Path, daemon_factory: Factory
) -> None:
    log = tmp_path / "app.log"
    cfg = tail_cfg(log)
    append_lines(log, 0, 100)
    d = daemon_factory(cfg)
    await d.start()
    await d.assert_exactly(range(100))
    await d.crash()
    append_lines(log, 100, 100)
    logrotate(tmp_path, log, "copytruncate")
    append_lines(log, 200, 100)
    d = daemon_factory(cfg)
    await d.start()
    await d.assert_exactly(range(300))
    assert d.source is not None
    assert d.source.counters.get("copy_recoveries") == 1


async def test_rotated_twice_while_stopped(tmp_path: Path, daemon_factory: Factory) -> None:
    log = tmp_path / "app.log"
    cfg = tail_cfg(log)
    append_lines(log, 0, 100)
    d = daemon_factory(cfg)
    await d.start()
    await d.assert_exactly(range(100))
    await d.crash()
    append_lines(log, 100, 50)
    logrotate(tmp_path, log, "create")
    append_lines(log, 150, 50)
    logrotate(tmp_path, log, "create")
    append_lines(log, 200, 50)
    d = daemon_factory(cfg)
    await d.start()
    await d.assert_exactly(range(250))


async def test_copytruncated_twice_while_stopped(tmp_path: Path, daemon_factory: Factory) -> None:
    log = tmp_path / "app.log"
    cfg = tail_cfg(log)
    append_lines(log, 0, 100)
    d = daemon_factory(cfg)
    await d.start()
    await d.assert_exactly(range(100))
    await d.crash()
    append_lines(log, 100, 50)
    logrotate(tmp_path, log, "copytruncate")
    append_lines(log, 150, 50)
    logrotate(tmp_path, log, "copytruncate")
    append_lines(log, 200, 50)
    d = daemon_factory(cfg)
    await d.start()
    await d.assert_exactly(range(250))


async def test_manual_rename_delete_and_recreate(tmp_path: Path, daemon_factory: Factory) -> None:
    log = tmp_path / "app.log"
    d = daemon_factory(tail_cfg(log))
    await d.start()
    append_lines(log, 0, 100)
    await d.assert_exactly(range(100))
    # A writer that keeps its descriptor across the rename: its late lines still count.
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        os.rename(log, tmp_path / "app.log.old")
        os.write(fd, b"line %08d late into the renamed file\n" % 100)
        append_lines(log, 101, 50)
    finally:
        os.close(fd)
    await d.assert_exactly(range(151))
    log.unlink()
    await d.assert_exactly(range(151))
    append_lines(log, 151, 50)
    await d.assert_exactly(range(201))


async def test_component_restart_with_records_in_flight(tmp_path: Path, daemon_factory: Factory) -> None:
    log = tmp_path / "app.log"
    d = daemon_factory(tail_cfg(log))
    await d.start()
    append_lines(log, 0, 20_000)
    await d.wait_seqs_at_least(1)
    await d.restart_source()
    append_lines(log, 20_000, 100)
    await d.assert_exactly(range(20_100))


async def test_start_end_skips_history_on_first_sight_only(tmp_path: Path, daemon_factory: Factory) -> None:
    log = tmp_path / "app.log"
    append_lines(log, 0, 10)
    cfg = TailConfig(name="app", path=str(log))
    d = daemon_factory(cfg)
    await d.start()
    append_lines(log, 10, 10)
    await d.assert_exactly(range(10, 20))
    await d.crash()
    append_lines(log, 20, 10)
    d = daemon_factory(cfg)
    await d.start()
    await d.assert_exactly(range(10, 30))


async def test_glob_picks_up_files_that_appear_later(tmp_path: Path, daemon_factory: Factory) -> None:
    folder = tmp_path / "later" / "logs"
    d = daemon_factory(TailConfig(name="web", path=str(folder / "*.access.log"), rotate_wait=0.3))
    await d.start()
    folder.mkdir(parents=True)
    append_lines(folder / "a.access.log", 0, 10)
    append_lines(folder / "b.access.log", 10, 10)
    append_lines(folder / "b.error.log", 1000, 10)
    await d.assert_exactly(range(20))
    append_lines(folder / "a.access.log", 20, 10)
    await d.assert_exactly(range(30))
    shutil.rmtree(folder)
    folder.mkdir()
    append_lines(folder / "c.access.log", 30, 10)
    await d.assert_exactly(range(40))
    assert d.source is not None
    assert d.source.counters.get("watch_errors") == 0
