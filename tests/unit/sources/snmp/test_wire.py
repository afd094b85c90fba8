"""mepd's SNMPv2c codec against pysnmp's own encoder, and on garbage."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api, rfc1902, rfc1905

from mepd.sources.snmp import wire

oids = st.tuples(st.integers(0, 2), st.integers(0, 39)).flatmap(
    lambda head: st.lists(st.integers(0, 2**32 - 1), max_size=20).map(lambda tail: head + tuple(tail)))


@given(oids)
def test_oid_round_trip(oid: tuple[int, ...]) -> None:
    assert wire.decode_oid(wire.oid_bytes(oid)) == oid


@given(oids, oids)
def test_oid_prefix_is_byte_prefix(a: tuple[int, ...], b: tuple[int, ...]) -> None:
    """What the walk relies on to tell a column's rows without decoding whole OIDs."""
    assert (b[: len(a)] == a) == wire.oid_bytes(b).startswith(wire.oid_bytes(a))


def pysnmp_response(request_id: int, varbinds: list[tuple[str, object]], status: int = 0) -> bytes:
    p = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    pdu = p.ResponsePDU()
    p.apiPDU.set_defaults(pdu)
    p.apiPDU.set_request_id(pdu, request_id)
    p.apiPDU.set_error_status(pdu, status)
    p.apiPDU.set_varbinds(pdu, varbinds)
    msg = p.Message()
    p.apiMessage.set_defaults(msg)
    p.apiMessage.set_community(msg, "public")
    p.apiMessage.set_pdu(msg, pdu)
    return bytes(encoder.encode(msg))


def test_decodes_every_value_type_pysnmp_encodes() -> None:
    data = pysnmp_response(123456, [
        ("1.3.6.1.2.1.1.3.0", rfc1902.TimeTicks(4294967295)),
        ("1.3.6.1.2.1.2.2.1.2.1", rfc1902.OctetString(b"eth0\xff")),
        ("1.3.6.1.2.1.2.2.1.8.1", rfc1902.Integer32(-5)),
        ("1.3.6.1.2.1.2.2.1.10.1", rfc1902.Counter32(4294967295)),
        ("1.3.6.1.2.1.31.1.1.1.6.1", rfc1902.Counter64(2**64 - 1)),
        ("1.3.6.1.2.1.2.2.1.5.1", rfc1902.Gauge32(10**9)),
        ("1.3.6.1.2.1.4.20.1.1.1", rfc1902.IpAddress("192.0.2.1")),
        ("1.3.6.1.2.1.1.2.0", rfc1902.ObjectIdentifier("1.3.6.1.4.1.8072.3.2.10")),
        ("1.3.6.1.2.1.1.9.0", rfc1905.NoSuchObject("")),
        ("1.3.6.1.2.1.1.9.1", rfc1905.NoSuchInstance("")),
        ("1.3.6.1.2.1.99", rfc1905.EndOfMibView("")),
    ])
    request_id, status, index, varbinds = wire.decode_response(data)
    assert (request_id, status, index) == (123456, 0, 0)
    values = [v for _, v in varbinds]
    assert values == [4294967295, b"eth0\xff", -5, 4294967295, 2**64 - 1, 10**9, bytes([192, 0, 2, 1]),
                      (1, 3, 6, 1, 4, 1, 8072, 3, 2, 10), wire.NO_SUCH_OBJECT, wire.NO_SUCH_INSTANCE,
                      wire.END_OF_MIB_VIEW]
    assert [type(v) for v in values[:6]] == [wire.TimeTicks, bytes, int, wire.Counter32, wire.Counter64, wire.Gauge32]
    assert wire.decode_oid(varbinds[4][0]) == (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 1)


def test_request_is_what_pysnmp_decodes() -> None:
    oids = [wire.oid_bytes(o) for o in ((1, 3, 6, 1, 2, 1, 2, 2, 1, 10), (1, 3, 6, 1, 2, 1, 300000))]
    data = wire.encode_request(b"s3cret", 77, oids, bulk=(0, 25))
    msg, rest = decoder.decode(data, asn1Spec=api.PROTOCOL_MODULES[api.SNMP_VERSION_2C].Message())
    assert rest == b""
    p = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    pdu = p.apiMessage.get_pdu(msg)
    assert str(p.apiMessage.get_community(msg)) == "s3cret"
    assert int(p.apiPDU.get_request_id(pdu)) == 77
    assert int(p.apiBulkPDU.get_max_repetitions(pdu)) == 25
    assert [str(o) for o, _ in p.apiPDU.get_varbinds(pdu)] == ["1.3.6.1.2.1.2.2.1.10", "1.3.6.1.2.1.300000"]


def test_error_status_is_returned() -> None:
    assert wire.decode_response(pysnmp_response(1, [("1.3.6.1", rfc1902.Integer32(0))], status=1))[1] == 1


@given(st.binary(max_size=300))
def test_garbage_is_a_decode_error_never_a_crash(data: bytes) -> None:
    with contextlib.suppress(wire.DecodeError):
        wire.decode_response(data)


def test_truncated_response() -> None:
    data = pysnmp_response(5, [("1.3.6.1.2.1.1.3.0", rfc1902.TimeTicks(5))])
    with pytest.raises(wire.DecodeError):
        wire.decode_response(data[:-3])


class _DropFirst(asyncio.DatagramProtocol):
    """An agent that loses the first copy of each request: the fault a retry is for (a lost datagram
    cannot be had from a real agent on loopback)."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        msg, _ = decoder.decode(data, asn1Spec=api.PROTOCOL_MODULES[api.SNMP_VERSION_2C].Message())
        request_id = int(api.PROTOCOL_MODULES[api.SNMP_VERSION_2C].apiPDU.get_request_id(
            api.PROTOCOL_MODULES[api.SNMP_VERSION_2C].apiMessage.get_pdu(msg)))
        self.seen.append(request_id)
        if self.seen.count(request_id) > 1:
            assert self.transport is not None
            self.transport.sendto(pysnmp_response(request_id, [("1.3.6.1.2.1.1.3.0", rfc1902.TimeTicks(42))]), addr)


async def test_a_lost_request_is_sent_again_with_the_same_id() -> None:
    loop = asyncio.get_running_loop()
    transport, agent = await loop.create_datagram_endpoint(_DropFirst, local_addr=("127.0.0.1", 0))
    client = wire.V2cClient("127.0.0.1", transport.get_extra_info("sockname")[1], "public", 0.2, 2)
    try:
        status, _, varbinds = await client.request([wire.oid_bytes((1, 3, 6, 1, 2, 1, 1, 3, 0))])
        assert (status, varbinds[0][1], client.resent) == (0, 42, 1)
        assert len(agent.seen) == 2
        assert agent.seen[0] == agent.seen[1]
    finally:
        client.close()
        transport.close()


async def test_an_agent_that_never_answers_times_out_after_every_retry() -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    client = wire.V2cClient("127.0.0.1", transport.get_extra_info("sockname")[1], "public", 0.05, 2)
    try:
        with pytest.raises(wire.SnmpError):
            await client.request([wire.oid_bytes((1, 3, 6, 1, 2, 1, 1, 3, 0))])
        assert client.resent == 2
        assert not client._protocol or not client._protocol.pending  # nothing left waiting
    finally:
        client.close()
        transport.close()
