"""/v1/logs on a real control socket and log store, read with mepctl's client: what a query may cost."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mepd.api.client import Client
from mepd.api.protocol import MAX_GREP, DaemonStatus
from mepd.api.server import ApiServer
from mepd.config import LogStorageConfig
from mepd.errors import ApiError
from mepd.model import LogRecord
from mepd.pipeline import Pipeline
from mepd.store.logs import store as store_module
from mepd.store.logs.store import LogStore
from tests.helpers import DEADLINE, until

BIG = "".join(chr(97 + (i * 7919) % 26) for i in range(65536))  # 64 KiB with no long repeat


class StoreDaemon:
    """What the API needs of the daemon: its log store, and a status that reads the store as App's does."""

    def __init__(self, logstore: LogStore) -> None:
        self.logstore = logstore

    async def status(self) -> DaemonStatus:
        return DaemonStatus("test", 1, 0.0, 1.0, "mepd.toml", [], Pipeline().status(),
                            await self.logstore.stats(), {"ok": 0, "failed": 0}, None)

    async def reload(self) -> tuple[list[str], list[str]]:
        return [], []


async def refusals(client: Client, params: dict[str, str]) -> list[ApiError]:
    """How /v1/logs refuses `params`, as a query and as the start of a follow."""
    errors: list[ApiError] = []
    for follow in (False, True):
        try:
            if follow:
                await anext(client.stream("/v1/logs", params | {"follow": "1"}))
            else:
                await client.request("GET", "/v1/logs", params)
        except ApiError as e:
            errors.append(e)
    return errors


@pytest.fixture
async def api(short_tmp: Path) -> AsyncIterator[tuple[ApiServer, LogStore]]:
    store = LogStore(str(short_tmp / "logs.db"), LogStorageConfig())
    await store.open()
    now = time.time()
    await store.write([LogRecord(ts=now, received=now, message=BIG, source="test") for _ in range(40)])
    await store.write([LogRecord(ts=now, received=now, message=f"line {i}", source="test") for i in range(5000)])
    server = ApiServer(StoreDaemon(store), str(short_tmp / "api.sock"))
    await server.start()
    yield server, store
    await server.stop()
    await store.close()


@pytest.mark.parametrize(("params", "message"), [
    ({"limit": "18446744073709551616"}, "limit: at most 9223372036854775807, got 18446744073709551616"),
    ({"limit": "9" * 5000}, "limit: at most 9223372036854775807, got 9999"),
    ({"limit": "²"}, "limit: expected a whole number, got '²'"),
    ({"limit": "-1"}, "limit: expected a whole number, got '-1'"),
    ({"grep": "x" * (MAX_GREP + 1)}, f"grep: at most {MAX_GREP} characters, got {MAX_GREP + 1}"),
])
async def test_bad_filters_are_refused_with_a_sentence(api: tuple[ApiServer, LogStore], params: dict[str, str],
                                                       message: str) -> None:
    server, _ = api
    async with Client(server.path) as client:
        errors = await refusals(client, params)
        assert [e.status for e in errors] == [400, 400]
        assert all(str(e).startswith(message) for e in errors), errors
        assert len((await client.request("GET", "/v1/logs", {"limit": "9223372036854775807"}))["records"]) == 5040
        assert len((await client.request("GET", "/v1/logs", {"grep": BIG[:MAX_GREP]}))["records"]) == 40


async def test_a_query_past_its_time_is_a_503_with_a_sentence(api: tuple[ApiServer, LogStore]) -> None:
    server, store = api
    store.query_timeout = 0.0
    async with Client(server.path) as client:
        errors = await refusals(client, {"grep": "no such line"})
        assert [(e.status, str(e)) for e in errors] == [
            (503, "the query took longer than 0 s; narrow it with --since, --host or --app")] * 2
        store.query_timeout = 60.0
        assert (await client.request("GET", "/v1/logs", {"grep": "line 4999"}))["records"][0]["message"] == "line 4999"


async def test_status_answers_while_two_worst_case_searches_run(api: tuple[ApiServer, LogStore],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    server, store = api
    release = threading.Event()
    inside: set[str] = set()

    def held(_deadline: float) -> bool:
        """SQLite's progress handler, on a reader thread in the middle of a search: stays until released."""
        inside.add(threading.current_thread().name)
        release.wait(DEADLINE)
        return False

    monkeypatch.setattr(store, "_deadline_passed", held)
    monkeypatch.setattr(store_module, "_PROGRESS_STEPS", 100)
    worst = {"grep": BIG[1000:1000 + MAX_GREP - 1] + "x", "limit": "0"}  # the longest grep, over 64 KiB lines
    async with Client(server.path) as client:
        searches = [asyncio.create_task(client.request("GET", "/v1/logs", worst)) for _ in range(2)]
        try:
            await until(lambda: len(inside) == 2, "both searches inside SQLite")
            status = await asyncio.wait_for(client.request("GET", "/v1/status"), DEADLINE)
            assert status["store"]["logs"]["records"] == 5040
            assert not any(s.done() for s in searches), "the searches were still running"
        finally:
            release.set()
        assert [(await s)["records"] for s in searches] == [[], []]


async def test_logs_and_follow_filter_by_the_senders_address(api: tuple[ApiServer, LogStore]) -> None:
    server, store = api
    now = time.time()
    await store.write([LogRecord(ts=now, received=now, message=f"from {peer}", source="syslog/udp", peer=peer)
                       for peer in ("192.0.2.1:514", "192.0.2.10:514", "[2001:db8::1]:514")])
    async with Client(server.path) as client:
        for address, expected in (("192.0.2.1", "from 192.0.2.1:514"), ("2001:db8::1", "from [2001:db8::1]:514")):
            found = await client.request("GET", "/v1/logs", {"peer": address, "limit": "0"})
            assert [r["message"] for r in found["records"]] == [expected]
            first = await anext(client.stream("/v1/logs", {"peer": address, "follow": "1"}))
            assert first["message"] == expected
