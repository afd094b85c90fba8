"""The control API's client, used by mepctl: turns transport failures into sentences."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aiohttp

from mepd.api.protocol import API_HEADER, API_VERSION
from mepd.errors import ApiError, MepdError


class DaemonUnreachableError(MepdError):
    """No daemon answers on the socket: mepctl's exit code 3."""


class Client:
    def __init__(self, socket_path: str, timeout: float | None = 30.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _check_socket(self) -> None:
        """os.path.exists would say False for a socket in a directory we may not enter (/run/mepd is 0750)."""
        try:
            os.stat(self.socket_path)
        except PermissionError as e:
            raise self._unreachable(e) from None
        except (FileNotFoundError, NotADirectoryError):
            raise DaemonUnreachableError(f"mepd is not running (no socket at {self.socket_path})") from None
        except OSError as e:
            raise self._unreachable(e) from None

    async def __aenter__(self) -> Client:
        self._check_socket()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=self.socket_path),
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    def _unreachable(self, e: Exception) -> DaemonUnreachableError:
        cause = e.__cause__ or e
        if isinstance(cause, PermissionError):
            return DaemonUnreachableError(
                f"permission denied on {self.socket_path}: run as root or as a member of the mepd group"
            )
        if isinstance(cause, ConnectionRefusedError):
            return DaemonUnreachableError(f"mepd is not running (socket {self.socket_path} refuses connections)")
        return DaemonUnreachableError(f"cannot reach mepd at {self.socket_path}: {cause}")

    async def request(self, method: str, path: str, params: Mapping[str, str] | None = None,
                      body: object = None, time_limit: float | None = None) -> Any:
        """`time_limit` (seconds) overrides the client's for a long request (a dashboard export)."""
        assert self._session is not None
        limit = aiohttp.ClientTimeout(total=time_limit) if time_limit is not None else self._session.timeout
        try:
            async with self._session.request(method, f"http://mepd{path}", params=params, json=body,
                                             timeout=limit) as resp:
                self._check_version(resp)
                data = await resp.json(content_type=None)
                if resp.status >= 400:
                    raise ApiError(resp.status, _error_text(data, resp.status))
                return data
        except aiohttp.ClientConnectionError as e:
            raise self._unreachable(e) from None

    async def get_bytes(self, path: str, params: Mapping[str, str] | Sequence[tuple[str, str]],
                        time_limit: float | None = None) -> bytes:
        """A binary answer (a graph, a report page); errors still come as JSON."""
        assert self._session is not None
        limit = aiohttp.ClientTimeout(total=time_limit) if time_limit is not None else self._session.timeout
        try:
            async with self._session.get(f"http://mepd{path}", params=params, timeout=limit) as resp:
                self._check_version(resp)
                if resp.status >= 400:
                    raise ApiError(resp.status, _error_text(await resp.json(content_type=None), resp.status))
                return await resp.read()
        except aiohttp.ClientConnectionError as e:
            raise self._unreachable(e) from None

    async def stream(self, path: str, params: Mapping[str, str]) -> AsyncIterator[dict[str, Any]]:
        """Yield NDJSON objects until the daemon closes the stream."""
        assert self._session is not None
        try:
            async with self._session.get(f"http://mepd{path}", params=params,
                                         timeout=aiohttp.ClientTimeout(total=None)) as resp:
                self._check_version(resp)
                if resp.status >= 400:
                    raise ApiError(resp.status, _error_text(await resp.json(content_type=None), resp.status))
                async for line in resp.content:
                    if line.strip():
                        yield json.loads(line)
        except aiohttp.ClientConnectionError as e:
            raise self._unreachable(e) from None

    @staticmethod
    def _check_version(resp: aiohttp.ClientResponse) -> None:
        got = resp.headers.get(API_HEADER)
        if got != str(API_VERSION):
            raise ApiError(resp.status, f"the daemon speaks API version {got or 'unknown'}, this mepctl speaks "
                                        f"{API_VERSION}: use the mepctl installed with the running mepd")


def _error_text(data: Any, status: int) -> str:
    if isinstance(data, dict) and "error" in data:
        text = str(data["error"])
        if data.get("errors"):
            text += "\n" + "\n".join(str(e) for e in data["errors"])
        return text
    return f"request failed with HTTP {status}"
