"""The lines the store makes for the fleet, messages cut by records and bytes; the publisher's cursor."""

from __future__ import annotations

import json
import random
from pathlib import Path

from mepd.fleet import wire
from mepd.fleet.publisher import Position
from mepd.model import LogRecord
from mepd.store.logs.store import Line
from tests.unit.store.logs.test_log_store import open_store


def line(rid: int, text: str) -> Line:
    return Line(rid, 1.7e9, (json.dumps({"message": text, "ts": "2023-11-14T22:13:20Z"}) + "\n").encode())


def test_split_cuts_at_max_records_and_max_bytes_and_a_large_record_goes_alone() -> None:
    lines = [line(i, "x" * (5000 if i == 5 else 10)) for i in (1, 2, 3, 5, 6, 7)]  # id 4 is not ours
    messages = wire.split(lines, 2, 1000)
    assert [(m.first, m.last, m.count) for m in messages] == [(1, 2, 2), (3, 3, 1), (5, 5, 1), (6, 7, 2)]
    assert all(len(m.payload) <= 1000 for m in messages if m.count > 1)
    back = [r.message for m in messages for r in wire.decode(m.payload, "web1", 0.0)[0]]
    assert back == [json.loads(x.text)["message"] for x in lines]
    assert messages[1].payload == lines[2].text


EDGE_CASES = [
    LogRecord(ts=1.7e9, received=1.7e9 + 1, message="m", source="syslog/udp", host="h", app="a", facility=4,
              severity=3, sd={"x@1": {"k": "v", "q": 'a "b" \\ ]'}}, parse_error="bad", raw="<x> m"),
    LogRecord(ts=1.7e9 + 0.9999996, received=1.7e9 + 0.0000005,
              message='tab\there "quoted" \\ \x00\x1f\x7f é ✓ 𝄞 \u2028 \x85', source="journal",
              pid="42", msgid="ID47", peer="192.0.2.1:514", facility=23, severity=7),
    LogRecord(ts=0.0, received=1.7e9, message="", source="tail/x", facility=99, severity=-1),
]


async def test_the_stores_lines_are_each_records_json_with_node_id_and_raw(tmp_path: Path) -> None:
    """SQLite's json_object makes the lines: they must say what `to_json` says, exactly, times to the µs."""
    store = await open_store(tmp_path)
    try:
        await store.write([*EDGE_CASES, LogRecord(ts=5.0, received=5.0, message="not ours", source="fleet",
                                                  node="web9")])
        lines = await store.lines_after(0, 10, "web1")
    finally:
        await store.close()
    assert [x.id for x in lines] == [1, 2, 3]  # a record another node sent is not sent on
    assert [x.received for x in lines] == [r.received for r in EDGE_CASES]
    for rid, (x, r) in enumerate(zip(lines, EDGE_CASES, strict=True), 1):
        assert x.text.endswith(b"\n")
        assert x.text.count(b"\n") == 1
        assert json.loads(x.text) == {**r.to_json(), "node": "web1", "id": rid, "raw": r.raw}
        (back,), _ = wire.decode(x.text, "ignored", 0.0)
        assert back.to_json() == {**r.to_json(), "node": "web1"}
        assert back.raw == r.raw


def random_text(rng: random.Random, size: int) -> str:
    """Any characters but surrogates (which no store keeps), control characters and quotes often."""
    alphabet = '\x00\x01\n\t\x1f\x7f"\\/<>&\u2028é✓𝄞 ab'
    return "".join(rng.choice(alphabet) if rng.random() < 0.5 else chr(rng.choice(
        [rng.randrange(0x20, 0xD800), rng.randrange(0xE000, 0x110000)])) for _ in range(size))


async def test_random_records_lines_say_what_to_json_says(tmp_path: Path) -> None:
    rng = random.Random(26)
    times = [rng.uniform(0, 4e9) for _ in range(300)]
    records = [  # dated before they arrive: a time far ahead would be stored as its arrival (store.py)
        LogRecord(ts=ts, received=ts + rng.uniform(0, 1e6), message=random_text(rng, rng.randrange(30)),
                  source=random_text(rng, 5), host=rng.choice([None, random_text(rng, 8)]),
                  app=rng.choice([None, random_text(rng, 8)]), facility=rng.choice([None, *range(-1, 25)]),
                  severity=rng.choice([None, *range(-1, 9)]), raw=rng.choice([None, random_text(rng, 10)]),
                  sd={random_text(rng, 3): {random_text(rng, 3): random_text(rng, 6)} for _ in range(rng.randrange(3))})
        for ts in times
    ]
    store = await open_store(tmp_path)
    try:
        await store.write(records)
        lines = await store.lines_after(0, 1000, "n")
    finally:
        await store.close()
    assert [json.loads(x.text) for x in lines] == [{**r.to_json(), "node": "n", "id": i, "raw": r.raw}
                                                   for i, r in enumerate(records, 1)]


def test_position_keeps_each_pending_message_and_reads_the_one_range_form() -> None:
    pos = Position("e1", 10, ((11, 20), (21, 35)))
    assert pos.text() == "e1:10:11-20,21-35"
    assert Position.parse(pos.text()) == pos
    assert pos.upto == 35
    assert Position.parse("e1:0:1-50") == Position("e1", 0, ((1, 50),))
    assert Position.parse("e1:7") == Position("e1", 7)
    assert Position("e1", 7).upto == 7
