"""Messages cut by records and bytes; the publisher's cursor with several pending messages."""

from __future__ import annotations

from mepd.fleet import wire
from mepd.fleet.publisher import Position
from mepd.model import LogRecord


def record(text: str) -> LogRecord:
    return LogRecord(ts=1.7e9, received=1.7e9, message=text, source="syslog/udp")


def test_split_cuts_at_max_records_and_max_bytes_and_a_large_record_goes_alone() -> None:
    records = [(i, record("x" * (5000 if i == 5 else 10))) for i in (1, 2, 3, 5, 6, 7)]  # id 4 is not ours
    messages = wire.split("web1", records, 2, 1000)
    assert [(m.first, m.last, m.count) for m in messages] == [(1, 2, 2), (3, 3, 1), (5, 5, 1), (6, 7, 2)]
    assert all(len(m.payload) <= 1000 for m in messages if m.count > 1)
    back = [r.message for m in messages for r in wire.decode(m.payload, "web1", 0.0)]
    assert back == [r.message for _, r in records]
    assert messages[1].payload == wire.encode("web1", records[2:3])  # sent again from the store: the same bytes


def test_position_keeps_each_pending_message_and_reads_the_one_range_form() -> None:
    pos = Position("e1", 10, ((11, 20), (21, 35)))
    assert pos.text() == "e1:10:11-20,21-35"
    assert Position.parse(pos.text()) == pos
    assert pos.upto == 35
    assert Position.parse("e1:0:1-50") == Position("e1", 0, ((1, 50),))
    assert Position.parse("e1:7") == Position("e1", 7)
    assert Position("e1", 7).upto == 7
