"""The HyperLogLog distinct counter: error within its bound, merge, blob round trip."""

from __future__ import annotations

from mepd.analysis.weblog.hll import HyperLogLog


def test_hyperloglog_error_and_merge() -> None:
    a, b = HyperLogLog(), HyperLogLog()
    a.add_many(f"10.0.{i // 256}.{i % 256}" for i in range(60_000))
    b.add_many(f"10.0.{i // 256}.{i % 256}" for i in range(30_000, 100_000))
    assert abs(a.estimate() - 60_000) <= 0.05 * 60_000
    a.merge(b)
    assert abs(a.estimate() - 100_000) <= 0.05 * 100_000
    assert HyperLogLog.from_blob(a.to_blob()).registers == a.registers
    small = HyperLogLog()
    small.add_many(str(i) for i in range(100))
    assert abs(small.estimate() - 100) <= 2
