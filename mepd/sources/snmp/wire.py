"""SNMPv2c GET/GETBULK on the wire: a small BER codec and an asyncio UDP client (a `session.Client`).

Why not pysnmp for v2c: pysnmp decodes through pyasn1, which costs about
350 microseconds of CPU per varbind here, so a 10,000-interface poll (170,000
varbinds) would take a minute of CPU, more than MRTG.  The v2c messages the
poller needs are a handful of fixed shapes, and this decodes them at a few
microseconds per varbind.  SNMPv3 (USM authentication and privacy) stays with
pysnmp (`v3`), whose answers are converted to the same plain values.

Values come back as plain Python: int for INTEGER, the int subclasses below for
the SMI application types, bytes for strings, tuples for OIDs, and the three
exception sentinels.  `SnmpError` is here, below both clients, so that `v3` and
`session` share it without importing each other.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Iterator, Sequence
from typing import Any, Final, cast

from mepd.errors import MepdError

Oid = tuple[int, ...]
RawVarBind = tuple[bytes, object]


class SnmpError(MepdError):
    """The agent did not answer, or answered with an error: the target is unreachable this cycle."""


class Counter32(int):
    __slots__ = ()


class Counter64(int):
    __slots__ = ()


class Gauge32(int):
    __slots__ = ()


class TimeTicks(int):
    __slots__ = ()


class Exception_(str):  # noqa: N801 - SNMP calls these "exceptions" (RFC 3416); they are values, not errors
    """noSuchObject, noSuchInstance, endOfMibView: a value that says there is no value."""

    __slots__ = ()


NO_SUCH_OBJECT: Final = Exception_("noSuchObject")
NO_SUCH_INSTANCE: Final = Exception_("noSuchInstance")
END_OF_MIB_VIEW: Final = Exception_("endOfMibView")

_GET, _RESPONSE, _GETBULK = 0xA0, 0xA2, 0xA5
_APP_INTS: Final[dict[int, type[int]]] = {0x41: Counter32, 0x42: Gauge32, 0x43: TimeTicks, 0x46: Counter64,
                                          0x47: Gauge32}
_EXCEPTIONS: Final = {0x80: NO_SUCH_OBJECT, 0x81: NO_SUCH_INSTANCE, 0x82: END_OF_MIB_VIEW}
ERROR_NAMES: Final = ("noError", "tooBig", "noSuchName", "badValue", "readOnly", "genErr", "noAccess",
                      "wrongType", "wrongLength", "wrongEncoding", "wrongValue", "noCreation",
                      "inconsistentValue", "resourceUnavailable", "commitFailed", "undoFailed",
                      "authorizationError", "notWritable", "inconsistentName")


class VarBinds:
    """The varbinds of a response as two lists, OIDs (BER content) and values: no tuple per varbind,
    which in a 100,000-value poll is 100,000 objects less for the garbage collector to track."""

    __slots__ = ("oids", "values")

    def __init__(self, oids: list[bytes] | None = None, values: list[object] | None = None) -> None:
        self.oids: list[bytes] = oids if oids is not None else []
        self.values: list[object] = values if values is not None else []

    def __len__(self) -> int:
        return len(self.oids)

    def __iter__(self) -> Iterator[RawVarBind]:
        return zip(self.oids, self.values, strict=True)

    def __getitem__(self, i: int) -> RawVarBind:
        return self.oids[i], self.values[i]


class DecodeError(ValueError):
    """A datagram that is not a well-formed SNMP response."""


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + _length(len(body)) + body


def _integer(n: int) -> bytes:
    return _tlv(0x02, n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big", signed=True))


def oid_bytes(oid: Oid) -> bytes:
    """The BER content of an OID; one OID is under another exactly when its bytes start with the other's."""
    if len(oid) < 2:
        raise ValueError(f"an OID has at least two arcs, got {oid}")
    out = bytearray((oid[0] * 40 + oid[1],))
    for arc in oid[2:]:
        if arc < 0x80:
            out.append(arc)
            continue
        chunk, rest = [], arc
        while rest:
            chunk.append(rest & 0x7F)
            rest >>= 7
        out += bytes(b | 0x80 for b in reversed(chunk[1:])) + bytes((chunk[0],))
    return bytes(out)


def subid_bytes(arcs: Oid) -> bytes:
    """The BER bytes of sub-identifiers (a table index): the inverse of `subids`."""
    return oid_bytes((0, 0, *arcs))[1:]


def encode_oid(oid: Oid) -> bytes:
    return _tlv(0x06, oid_bytes(oid))


def subids(raw: bytes) -> Oid:
    """Arcs of BER-encoded sub-identifiers (an OID's tail, such as a table index)."""
    if raw.isascii():  # every arc below 128: one byte each
        return tuple(raw)
    if len(raw) == 2:  # an ifIndex from 128 to 16383
        return (((raw[0] & 0x7F) << 7) | raw[1],)
    arcs = []
    value = 0
    for b in raw:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(value)
            value = 0
    return tuple(arcs)


def parse_oid(text: str) -> Oid:
    """An OID from its dotted text ("1.3.6.1.2.1.1.3.0", a leading dot allowed)."""
    return tuple(int(p) for p in text.strip(".").split("."))


def decode_oid(raw: bytes) -> Oid:
    """An OID from its BER content."""
    if not raw:
        raise DecodeError("empty OID")
    first = raw[0]
    head = (first // 40, first % 40) if first < 80 else (2, first - 80)
    return head + subids(raw[1:])


def encode_request(community: bytes, request_id: int, oids: Sequence[bytes], *,
                   bulk: tuple[int, int] | None = None) -> bytes:
    """A v2c GetRequest for OIDs given as `oid_bytes`, or a GetBulkRequest when `bulk` = (non-repeaters, max-reps)."""
    varbinds = _tlv(0x30, b"".join(_tlv(0x30, _tlv(0x06, o) + b"\x05\x00") for o in oids))
    first, second = bulk if bulk is not None else (0, 0)
    pdu = _tlv(_GETBULK if bulk is not None else _GET,
               _integer(request_id) + _integer(first) + _integer(second) + varbinds)
    return _tlv(0x30, _integer(1) + _tlv(0x04, community) + pdu)


def _header(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the TLV at `pos`."""
    try:
        tag = data[pos]
        length = data[pos + 1]
    except IndexError:
        raise DecodeError("truncated") from None
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    end = pos + length
    if end > len(data):
        raise DecodeError("truncated")
    return tag, pos, end


def _value(tag: int, data: bytes, start: int, end: int) -> object:
    kind = _APP_INTS.get(tag)
    if kind is not None:
        return kind(int.from_bytes(data[start:end], "big"))
    if tag == 0x02:
        return int.from_bytes(data[start:end], "big", signed=True)
    if tag in (0x04, 0x40, 0x44):
        return data[start:end]
    if tag == 0x06:
        return decode_oid(data[start:end])
    if tag == 0x05:
        return None
    if tag in _EXCEPTIONS:
        return _EXCEPTIONS[tag]
    raise DecodeError(f"unknown value type 0x{tag:02x}")


def decode_response(data: bytes) -> tuple[int, int, int, VarBinds]:
    """(request id, error status, error index, varbinds with OIDs as BER content) of a v2c Response."""
    tag, pos, _ = _header(data, 0)
    if tag != 0x30:
        raise DecodeError("not an SNMP message")
    _, _, pos = _header(data, pos)  # version
    _, _, pos = _header(data, pos)  # community
    tag, pos, _ = _header(data, pos)
    if tag != _RESPONSE:
        raise DecodeError(f"not a Response PDU (tag 0x{tag:02x})")
    ints = []
    for _ in range(3):
        tag, start, pos = _header(data, pos)
        ints.append(int.from_bytes(data[start:pos], "big", signed=True))
    tag, pos, vb_end = _header(data, pos)
    varbinds = VarBinds()
    add_oid, add_value = varbinds.oids.append, varbinds.values.append
    app_ints = _APP_INTS
    try:
        # The hot loop of a walk, with the TLV headers read inline (one call per varbind, not three).
        while pos < vb_end:
            length = data[pos + 1]
            pos += 2 if length < 0x80 else 2 + (length & 0x7F)
            length = data[pos + 1]
            if data[pos] != 0x06 or length >= 0x80:
                raise DecodeError("a varbind without an OID")
            start = pos + 2
            pos = start + length
            add_oid(data[start:pos])
            tag, length = data[pos], data[pos + 1]
            if length < 0x80:
                start = pos + 2
            else:
                n = length & 0x7F
                length = int.from_bytes(data[pos + 2:pos + 2 + n], "big")
                start = pos + 2 + n
            pos = start + length
            kind = app_ints.get(tag)
            add_value(kind(int.from_bytes(data[start:pos], "big")) if kind else _value(tag, data, start, pos))
    except IndexError:
        raise DecodeError("truncated") from None
    if pos != vb_end:
        raise DecodeError("truncated")
    return ints[0], ints[1], ints[2], varbinds


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.pending: dict[int, asyncio.Future[tuple[int, int, int, VarBinds] | None]] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.bad = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:  # noqa: ARG002 - a connected socket
        try:
            answer = decode_response(data)
        except DecodeError:
            self.bad += 1
            return
        future = self.pending.pop(answer[0], None)
        if future is not None and not future.done():
            future.set_result(answer)

    def error_received(self, exc: Exception) -> None:
        """ICMP port unreachable and the like: the request times out, as with any silent agent."""


def _expire(future: asyncio.Future[Any]) -> None:
    """An attempt's timeout: its future ends with None, and the request is sent again or given up."""
    if not future.done():
        future.set_result(None)


class V2cClient:
    """Requests to one agent over one connected UDP socket; retries resend the same request id."""

    def __init__(self, host: str, port: int, community: str, timeout: float, retries: int) -> None:
        self.address = (host, port)
        self.community = community.encode()
        self.timeout = timeout
        self.retries = retries
        self._ids = itertools.count(random.randrange(1, 2**30))  # noqa: S311 - request ids, not secrets
        self._protocol: _Protocol | None = None
        self.resent = 0

    async def _ensure(self) -> _Protocol:
        if self._protocol is None or self._protocol.transport is None or self._protocol.transport.is_closing():
            loop = asyncio.get_running_loop()
            _, self._protocol = await loop.create_datagram_endpoint(_Protocol, remote_addr=self.address)
        return self._protocol

    async def request(self, oids: Sequence[bytes], bulk: tuple[int, int] | None = None,
                      ) -> tuple[int, int, VarBinds]:
        """(error status, error index, varbinds) of one GET or GETBULK; SnmpError when there is no answer
        within timeout x (retries + 1) (what pysnmp calls RequestTimedOut) or the socket fails."""
        try:
            return await self._request(oids, bulk)
        except OSError as e:
            raise SnmpError(str(e)) from None

    async def _request(self, oids: Sequence[bytes], bulk: tuple[int, int] | None) -> tuple[int, int, VarBinds]:
        """`request`, whose socket errors are left to it.

        Each attempt waits on a future of its own with one timer, where `wait_for(shield(...))`
        made two futures, a task and two callbacks per request (a poll of 10,000 interfaces sends
        1,100 requests); an answer to an earlier attempt has the same request id and is as good."""
        protocol = await self._ensure()
        request_id = next(self._ids) & 0x7FFFFFFF
        message = encode_request(self.community, request_id, oids, bulk=bulk)
        loop = asyncio.get_running_loop()
        pending = protocol.pending
        try:
            for attempt in range(self.retries + 1):
                assert protocol.transport is not None
                future: asyncio.Future[tuple[int, int, int, VarBinds] | None] = loop.create_future()
                pending[request_id] = future
                timer = loop.call_later(self.timeout, _expire, future)
                protocol.transport.sendto(message)
                self.resent += attempt > 0
                try:
                    answer = await future
                finally:
                    timer.cancel()
                if answer is not None:
                    return answer[1], answer[2], answer[3]
        finally:
            pending.pop(request_id, None)
        raise SnmpError("No SNMP response received before timeout")

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None
