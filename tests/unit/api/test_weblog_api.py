"""Web-log routes on a real control socket, read with mepctl's client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mepd.analysis.weblog.accesslog import parse_access_line
from mepd.analysis.weblog.aggregate import Aggregate
from mepd.analysis.weblog.render import render
from mepd.api.client import Client
from mepd.api.server import ApiServer
from mepd.api.weblog import WebLogApi
from mepd.errors import ApiError
from mepd.store.weblog import WebLogStore

LINES = [
    '10.0.0.1 - - [01/Mar/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 100 "-" "curl/8.0"',
    '10.0.0.2 - - [01/Mar/2024:10:20:00 +0000] "GET /a.png HTTP/1.1" 200 50 "https://ext.example/" "curl/8.0"',
    '10.0.0.1 - - [01/Mar/2024:12:00:00 +0000] "GET /nope HTTP/1.1" 404 10 "-" "Wget/1.21"',
]


class NoLogs:
    async def wake_followers(self) -> None:
        pass


class NoDaemon:
    logstore: Any = NoLogs()

    async def status(self) -> dict[str, object]:
        return {}

    async def reload(self) -> tuple[list[str], list[str]]:
        return [], []


@pytest.fixture
async def socket_path(short_tmp: Path) -> AsyncIterator[str]:
    store = WebLogStore(str(short_tmp / "weblog.db"))
    await store.open()
    hours: dict[int, Aggregate] = {}
    for line in LINES:
        ts, fields = parse_access_line(line, "combined")
        hours.setdefault(int(ts) // 3600 * 3600, Aggregate()).add_fields(ts, fields)
    for agg in hours.values():
        agg.settle()
    await store.add("web", sorted(hours.items()))
    server = ApiServer(NoDaemon(), str(short_tmp / "api.sock"))
    server.add_routes(WebLogApi(store).routes())
    await server.start()
    yield server.path
    await server.stop()
    await store.close()


async def test_report_and_sources(socket_path: str) -> None:
    async with Client(socket_path) as client:
        sources = await client.request("GET", "/v1/weblog")
        assert sources["sources"][0]["name"] == "web"
        assert sources["sources"][0]["requests"] == 3
        report = await client.request("GET", "/v1/weblog/web", {"top": "1"})
        assert report["summary"]["requests"] == 3
        assert report["summary"]["bytes"] == 160
        assert report["top"]["path"]["rows"] == [{"key": "/", "requests": 1, "bytes": 100}]
        assert report["top"]["referer_site"]["rows"][0]["key"] == "ext.example"
        ranged = await client.request("GET", "/v1/weblog/web",
                                      {"since": "2024-03-01T11:00:00Z", "until": "2024-03-01T13:00:00Z"})
        assert ranged["summary"]["requests"] == 1
        assert ranged["status"]["codes"] == [{"key": "404", "requests": 1, "bytes": 10}]
        assert "<svg" in render(report, as_html=True)
        assert "requests        3" in render(report)


async def test_errors(socket_path: str) -> None:
    async with Client(socket_path) as client:
        with pytest.raises(ApiError) as e:
            await client.request("GET", "/v1/weblog/nope")
        assert e.value.status == 404
        assert "nope" in str(e.value)
        with pytest.raises(ApiError) as e:
            await client.request("GET", "/v1/weblog/web", {"top": "x"})
        assert e.value.status == 400
        with pytest.raises(ApiError) as e:
            await client.request("GET", "/v1/weblog/web", {"since": "yesterday-ish"})
        assert e.value.status == 400
