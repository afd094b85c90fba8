"""What a followed file's bytes become: partial lines, long lines, bad bytes, access-log fields."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from mepd.analysis.weblog.accesslog import access_time
from mepd.config import TailConfig
from tests.integration.tail.tailkit import Daemon, wait_until

Factory = Callable[[TailConfig], Daemon]


def append(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


async def wait_messages(d: Daemon, n: int) -> list[dict[str, object]]:
    async def enough() -> bool:
        return await d.count() >= n
    await wait_until(f"{n} records", enough)
    return await d.records()


async def test_partial_line_waits_for_its_newline(tmp_path: Path, daemon_factory: Factory) -> None:
    log = tmp_path / "app.log"
    d = daemon_factory(TailConfig(name="app", path=str(log), start="beginning", rotate_wait=0.2))
    await d.start()
    append(log, b"first\npart")  # one write: the partial line is read together with "first"
    await wait_messages(d, 1)
    assert await d.messages() == ["first"]
    append(log, b"ial\n")
    await wait_messages(d, 2)
    assert await d.messages() == ["first", "partial"]


async def test_partial_last_line_flushed_once_the_file_is_rotated_away(
    tmp_path: Path, daemon_factory: Factory
) -> None:
    log = tmp_path / "app.log"
    d = daemon_factory(TailConfig(name="app", path=str(log), start="beginning", rotate_wait=0.2))
    await d.start()
    append(log, b"complete\nno newline at the end")
    await wait_messages(d, 1)
    os.rename(log, tmp_path / "app.log.1")
    await wait_messages(d, 2)
    assert await d.messages() == ["complete", "no newline at the end"]
    assert d.source is not None
    assert d.source.counters.get("partial_lines") == 1


async def test_long_lines_truncated_and_flagged_bad_bytes_replaced(tmp_path: Path, daemon_factory: Factory) -> None:
    log = tmp_path / "app.log"
    d = daemon_factory(TailConfig(name="app", path=str(log), start="beginning", max_line_size=1024))
    await d.start()
    append(log, b"x" * 300_000)
    append(log, b"y" * 1000 + b"\n")
    append(log, b"caf\xe9 \xff\xfe ok\r\n" + b"after\n")
    records = await wait_messages(d, 3)
    long, bad, after = records
    assert long["message"] == "x" * 1024
    assert long["parse_error"] == f"line truncated: {300_000 + 1000 - 1024} bytes dropped"
    assert bad["message"] == "caf\ufffd \ufffd\ufffd ok"
    assert bad["parse_error"] is None
    assert after["message"] == "after"
    assert d.source is not None
    assert d.source.counters.get("truncated_lines") == 1


async def test_plain_record_fields(tmp_path: Path, daemon_factory: Factory) -> None:
    log = tmp_path / "app.log"
    d = daemon_factory(TailConfig(name="app", path=str(log), start="beginning"))
    await d.start()
    append(log, b"hello world\n")
    (r,) = await wait_messages(d, 1)
    assert (r["message"], r["host"], r["app"], r["source"], r["sd"], r["parse_error"]) == (
        "hello world", "testhost", "app", "tail:app", {}, None)


async def test_combined_lines_parsed_into_http_fields(tmp_path: Path, daemon_factory: Factory) -> None:
    log = tmp_path / "access.log"
    d = daemon_factory(TailConfig(name="web", path=str(log), format="combined", start="beginning"))
    await d.start()
    good = ('203.0.113.7 - alice [10/Oct/2025:13:55:36 -0700] "GET /index.html?q=1 HTTP/1.1" 200 2326 '
            '"https://example.org/" "Mozilla/5.0 (X11; Linux x86_64)"')
    append(log, (good + "\nthis is not an access log line\n").encode())
    parsed, unparsed = await wait_messages(d, 2)
    assert parsed["message"] == good
    assert parsed["ts"] == "2025-10-10T20:55:36.000000Z"
    assert access_time("10/Oct/2025:13:55:36 -0700") == 1760129736.0
    http = parsed["sd"]["http"]  # type: ignore[index]
    assert {k: http[k] for k in ("client", "user", "method", "path", "query", "protocol", "status", "bytes",
                                 "referer", "agent")} == {
        "client": "203.0.113.7", "user": "alice", "method": "GET", "path": "/index.html", "query": "q=1",
        "protocol": "HTTP/1.1", "status": "200", "bytes": "2326", "referer": "https://example.org/",
        "agent": "Mozilla/5.0 (X11; Linux x86_64)",
    }
    assert (parsed["host"], parsed["app"], parsed["source"], parsed["parse_error"]) == (
        "testhost", "web", "tail:web", None)
    assert unparsed["message"] == "this is not an access log line"
    assert unparsed["parse_error"] == "not a combined access log line"
    assert unparsed["sd"] == {}
    assert d.source is not None
    assert d.source.counters.get("parse_errors") == 1
