"""Prometheus remote write 1.0's WriteRequest, encoded by hand.

Only four messages of prometheus/prompb are written (types.proto, remote.proto):
WriteRequest{repeated TimeSeries timeseries = 1}, TimeSeries{repeated Label labels = 1;
repeated Sample samples = 2}, Label{string name = 1; string value = 2} and
Sample{double value = 1; int64 timestamp = 2}.  A series' labels are encoded once, when
its sample is queued, and kept as bytes: a request is then those bytes and the samples
joined.  The tests check the encoding against a real Prometheus receiver.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

_DOUBLE = struct.Struct("<d")


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # int64 is sent as its two's complement
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def labels(pairs: Iterable[tuple[str, str]]) -> bytes:
    """A TimeSeries' label fields; the receiver wants them sorted by name."""
    return b"".join(_field(1, _field(1, name.encode()) + _field(2, value.encode())) for name, value in sorted(pairs))


def sample(value: float, timestamp_ms: int) -> bytes:
    """A TimeSeries' sample field."""
    return _field(2, b"\x09" + _DOUBLE.pack(value) + b"\x10" + varint(timestamp_ms))


def write_request(series: Iterable[tuple[bytes, Sequence[tuple[float, int]]]]) -> bytes:
    """A WriteRequest of (encoded labels, [(value, timestamp in ms)]) series."""
    return b"".join(_field(1, lab + b"".join(sample(v, ts) for v, ts in samples)) for lab, samples in series)
