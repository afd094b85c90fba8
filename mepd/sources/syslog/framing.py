"""RFC 6587 framing of syslog over a byte stream (TCP, TLS).

The splitter is fed whatever the socket returned and hands back every complete
frame in it at once: a 64 KiB read holds hundreds of messages, and splitting
them in one synchronous pass costs a fraction of awaiting each frame.
"""

from __future__ import annotations

import re
from typing import Final

from mepd.sources.syslog import native

_SKIP: Final = frozenset(b"\n\r\0 ")
_DIGITS: Final = range(48, 58)
_LENGTH_MAX: Final = 12  # "LEN SP" must show within this many bytes to count as octet counting
# A count is followed by the message's PRI: "123456789 started" is a line, not 123 MB to swallow.
_LENGTH: Final = re.compile(rb"(\d{1,%d}) (?=<)" % (_LENGTH_MAX - 1))
_BARE_LENGTH: Final = re.compile(rb"\d{1,%d} \Z" % (_LENGTH_MAX - 1))


class FrameSplitter:
    """RFC 6587 framing, detected per frame from its first byte.

    A frame starting with `LEN SP <` is octet-counted (a syslog message starts
    with its PRI); anything else, such as a message without PRI that starts
    with a number, runs to the next LF or NUL (non-transparent framing).  A frame longer than
    the limit is cut there and the rest of it skipped, so one huge line does not
    cost the connection its other messages; such a frame comes out with its full
    length beside it (0 for every other frame).

    The usual frames are split by the C speedups when they are built (`native`);
    `pure` keeps to this Python code, which handles every frame the C code leaves.
    """

    def __init__(self, limit: int, *, pure: bool = False) -> None:
        self.limit = limit
        self._fast = None if pure else native.frames
        self.buf = b""
        self._cut: bytes | None = None  # the kept head of an oversized frame whose end is not read yet
        self._cut_size = 0
        self._cut_rest = -1  # bytes of it still to skip; -1: skip to the next delimiter

    def feed(self, data: bytes) -> list[tuple[bytes, int]]:
        """Add received bytes; returns the frames they complete, with their oversized length."""
        self.buf = buf = self.buf + data if self.buf else data
        out: list[tuple[bytes, int]] = []
        n = len(buf)
        pos = 0
        nul = buf.find(b"\0")  # searched once per feed, not once per frame: most streams have none
        length_prefix = _LENGTH.match
        limit = self.limit
        fast = self._fast
        while pos < n:
            if fast is not None and self._cut is None and (pos := fast(buf, pos, limit, out)) == n:
                break  # the C code took every frame; else it stopped at one for the code below
            if self._cut is not None:
                after = self._skip_cut(pos, nul, out)
                if after is None:
                    pos = n
                    break
                pos = after
                continue
            c = buf[pos]
            if c in _SKIP:
                pos += 1
                continue
            if 0 <= nul < pos:
                nul = buf.find(b"\0", pos)
            if c in _DIGITS:
                m = length_prefix(buf, pos)
                if m is not None:  # the usual octet-counted frame, whole in the buffer, inline
                    start = m.end()
                    end = start + int(m.group(1))
                    if end <= n and end - start <= limit:
                        out.append((buf[start:end], 0))
                        pos = end
                        continue
                after = self._counted(pos, nul, out)
            else:
                after = -1
            if after == -1:
                after = self._delimited(pos, nul, out)
            if after is None:
                break
            pos = after
        self.buf = buf[pos:]
        return out

    def _counted(self, pos: int, nul: int, out: list[tuple[bytes, int]]) -> int | None:
        """An octet-counted frame at `pos`: the index after it, None to wait for more, -1 if it is a line."""
        buf = self.buf
        n = len(buf)
        m = _LENGTH.match(buf, pos)
        if m is None:
            if n - pos <= _LENGTH_MAX and buf.find(b"\n", pos) < 0 and nul < pos and (
                    buf[pos:].isdigit() or _BARE_LENGTH.match(buf, pos)):
                return None  # too few bytes yet to tell a length prefix from a line starting with digits
            return -1
        length = int(m.group(1))
        start = m.end()
        if n - start < min(length, self.limit):
            return None
        if length <= self.limit:
            out.append((buf[start : start + length], 0))
            return start + length
        self._cut, self._cut_size = buf[start : start + self.limit], length
        self._cut_rest = length - self.limit
        return start + self.limit

    def _delimited(self, pos: int, nul: int, out: list[tuple[bytes, int]]) -> int | None:
        """A frame running to the next LF or NUL: the index after it, or None to wait for more."""
        buf = self.buf
        n = len(buf)
        end = buf.find(b"\n", pos, nul if nul >= 0 else n)
        if end < 0:
            end = nul
        if end >= 0 and end - pos <= self.limit:
            out.append((buf[pos:end].rstrip(b"\r"), 0))
            return end + 1
        if end >= 0 or n - pos > self.limit:
            self._cut, self._cut_size, self._cut_rest = buf[pos : pos + self.limit], self.limit, -1
            return pos + self.limit
        return None

    def _skip_cut(self, pos: int, nul: int, out: list[tuple[bytes, int]]) -> int | None:
        """Skip the rest of an oversized frame: the index after it, or None if it goes on past the buffer."""
        buf = self.buf
        n = len(buf)
        if self._cut_rest >= 0:
            k = min(self._cut_rest, n - pos)
            self._cut_rest -= k
            pos += k
            if self._cut_rest:
                return None
        else:
            if 0 <= nul < pos:
                nul = buf.find(b"\0", pos)
            end = buf.find(b"\n", pos, nul if nul >= 0 else n)
            if end < 0:
                end = nul
            if end < 0:
                self._cut_size += n - pos
                return None
            self._cut_size += end - pos
            pos = end + 1
        assert self._cut is not None
        out.append((self._cut, self._cut_size))
        self._cut = None
        return pos

    def finish(self) -> list[tuple[bytes, int]]:
        """At the end of the stream: what is left, a frame cut short by the sender included."""
        out = self.feed(b"")
        if self._cut is not None:
            out.append((self._cut, self._cut_size))
            self._cut = None
        rest = self.buf.lstrip(b"\n\r\0 ")
        self.buf = b""
        if rest:
            head, space, body = rest.partition(b" ")
            if space and head.isdigit() and len(head) < _LENGTH_MAX and body.startswith(b"<"):
                rest = body[: self.limit]
            out.append((rest.rstrip(b"\r"), 0))
        return out
