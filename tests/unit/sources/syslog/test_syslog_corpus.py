"""Every line of tests/data/syslog/corpus.jsonl parses to exactly its expected fields.

Fields an entry does not list are expected empty (None, or {} for sd), so a
parser that starts inventing values fails here too.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mepd.model import FACILITIES, SEVERITIES
from mepd.sources.syslog.parse import parse_message

CORPUS = Path(__file__).parents[4] / "tests" / "data" / "syslog" / "corpus.jsonl"
ENTRIES = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
DEFAULT_RECEIVED = "2024-03-05T12:00:00Z"
DEFAULT_PEER = "192.0.2.1:514"


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_corpus_is_large_and_documented() -> None:
    assert len(ENTRIES) >= 60
    assert all(e["from"] for e in ENTRIES)


@pytest.mark.parametrize("entry", ENTRIES, ids=[f"{i}:{e['from'][:50]}" for i, e in enumerate(ENTRIES)])
def test_corpus_line(entry: dict[str, Any]) -> None:
    received = _epoch(entry.get("received", DEFAULT_RECEIVED))
    tz = ZoneInfo(entry.get("tz", "UTC"))
    rec = parse_message(
        entry["input"].encode("utf-8"), received=received, source="syslog/udp",
        peer=entry.get("peer", DEFAULT_PEER), tz=tz, peer_as_host=entry.get("peer_as_host", True),
    )
    exp = entry["expect"]
    got = {
        "host": rec.host, "app": rec.app, "pid": rec.pid, "msgid": rec.msgid, "message": rec.message,
        "facility": FACILITIES[rec.facility] if rec.facility is not None else None,
        "severity": SEVERITIES[rec.severity] if rec.severity is not None else None,
        "sd": {k: dict(v) for k, v in rec.sd.items()},
        "parse_error": rec.parse_error is not None,
    }
    want = {
        key: exp.get(key, {} if key == "sd" else False if key == "parse_error" else None) for key in got
    }
    assert got == want
    assert rec.ts == pytest.approx(_epoch(exp["ts"]), abs=1e-6)
    assert rec.received == received
    if rec.parse_error is not None:
        assert rec.raw == entry["input"].rstrip("\r\n\0")
