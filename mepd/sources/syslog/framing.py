"""RFC 6587 framing of syslog over a byte stream (TCP, TLS)."""

from __future__ import annotations

import asyncio

_CHUNK = 65536


class FrameReader:
    """RFC 6587 framing, detected per frame from its first byte.

    A frame starting with a digit and `LEN SP` is octet-counted; anything else
    runs to the next LF or NUL (non-transparent framing).  A frame longer than
    the limit is cut there and the rest of it skipped, so one huge line does not
    cost the connection its other messages; `oversized` then holds its length.
    """

    def __init__(self, reader: asyncio.StreamReader, limit: int) -> None:
        self.reader = reader
        self.limit = limit
        self.buf = bytearray()
        self.eof = False
        self.oversized = 0

    async def _fill(self) -> bool:
        if self.eof:
            return False
        chunk = await self.reader.read(_CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    async def next_frame(self) -> bytes | None:
        """The next frame's bytes, or None at the end of the stream."""
        self.oversized = 0
        while True:
            skip = 0
            while skip < len(self.buf) and self.buf[skip] in (10, 13, 0, 32):
                skip += 1
            del self.buf[:skip]
            if self.buf:
                break
            if not await self._fill():
                return None
        if 48 <= self.buf[0] <= 57:
            while (space := self.buf.find(b" ", 0, 12)) == -1 and len(self.buf) < 12 and await self._fill():
                pass
            if space > 0 and self.buf[:space].isdigit():
                length = int(self.buf[:space])
                del self.buf[: space + 1]
                return await self._counted(length)
        return await self._delimited()

    async def _counted(self, length: int) -> bytes:
        want = min(length, self.limit)
        while len(self.buf) < want and await self._fill():
            pass
        take = min(want, len(self.buf))
        data = bytes(self.buf[:take])
        del self.buf[:take]
        if length > self.limit:
            self.oversized = length
        rest = length - take
        while rest > 0 and (self.buf or await self._fill()):
            k = min(rest, len(self.buf))
            del self.buf[:k]
            rest -= k
        return data

    def _find_delimiter(self, start: int) -> int:
        ends = [i for i in (self.buf.find(b"\n", start), self.buf.find(b"\0", start)) if i >= 0]
        return min(ends) if ends else -1

    async def _delimited(self) -> bytes:
        start = 0
        while True:
            end = self._find_delimiter(start)
            if 0 <= end <= self.limit:
                data = bytes(self.buf[:end])
                del self.buf[: end + 1]
                return data.rstrip(b"\r")
            if end > self.limit or len(self.buf) > self.limit:
                return await self._cut()
            start = len(self.buf)
            if not await self._fill():
                data = bytes(self.buf)
                self.buf.clear()
                return data.rstrip(b"\r")

    async def _cut(self) -> bytes:
        data = bytes(self.buf[: self.limit])
        size = self.limit
        del self.buf[: self.limit]
        while True:
            end = self._find_delimiter(0)
            if end >= 0:
                size += end
                del self.buf[: end + 1]
                break
            size += len(self.buf)
            self.buf.clear()
            if not await self._fill():
                break
        self.oversized = size
        return data
