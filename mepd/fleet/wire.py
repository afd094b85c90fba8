"""The messages on the fleet's streams: newline-delimited JSON, one record per line.

A message on `mepd.logs.<node>` holds the records with local ids `first`..`last`
of that node (at most `batch_size` of them, and within the server's max_payload),
in id order, each line DESIGN's record JSON (`LogRecord.to_json`) plus `node`,
`id` (its id in the node's store) and `raw` (the original text of a line that
could not be parsed).  Headers: `Nats-Msg-Id` = `<node>:<epoch>:<first>-<last>`
(the epoch changes when the node's store starts again from id 1), used by the
stream's duplicate window and by centrals to store a message once.  Vector's
or Telegraf's NATS sources read it with newline-delimited framing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from mepd.model import FACILITIES, SEVERITIES, LogRecord

MSG_ID = "Nats-Msg-Id"


def message_id(node: str, epoch: str, first: int, last: int) -> str:
    return f"{node}:{epoch}:{first}-{last}"


_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # json.dumps makes one a call


def _line(node: str, rid: int, r: LogRecord) -> bytes:
    return (_ENCODER.encode({**r.to_json(), "node": node, "id": rid, "raw": r.raw}) + "\n").encode()


def encode(node: str, records: Sequence[tuple[int, LogRecord]]) -> bytes:
    return b"".join(_line(node, rid, r) for rid, r in records)


@dataclass(frozen=True, slots=True)
class Message:
    """The records with local ids `first`..`last` (`count` of them: ids may skip) as one message's payload."""

    first: int
    last: int
    count: int
    payload: bytes


def split(node: str, records: Sequence[tuple[int, LogRecord]], max_records: int, max_bytes: int) -> list[Message]:
    """`records` (in id order) as messages of at most `max_records` records and `max_bytes` bytes; a record
    larger than `max_bytes` goes alone."""
    out: list[Message] = []
    lines: list[bytes] = []
    first = last = size = 0
    for rid, r in records:
        line = _line(node, rid, r)
        if lines and (len(lines) >= max_records or size + len(line) > max_bytes):
            out.append(Message(first, last, len(lines), b"".join(lines)))
            lines, size = [], 0
        if not lines:
            first = rid
        lines.append(line)
        size += len(line)
        last = rid
    if lines:
        out.append(Message(first, last, len(lines), b"".join(lines)))
    return out


def _time(value: object) -> float:
    return datetime.fromisoformat(str(value)).timestamp()


def _code(names: tuple[str, ...], value: object) -> int | None:
    return names.index(value) if isinstance(value, str) and value in names else None


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _record(data: dict[str, Any], node: str) -> LogRecord:
    sd = data.get("sd") or {}
    return LogRecord(
        ts=_time(data["ts"]), received=_time(data.get("received") or data["ts"]), message=str(data["message"]),
        source=str(data.get("source") or "fleet"), host=_text(data.get("host")), app=_text(data.get("app")),
        pid=_text(data.get("pid")), facility=_code(FACILITIES, data.get("facility")),
        severity=_code(SEVERITIES, data.get("severity")), msgid=_text(data.get("msgid")),
        sd={str(k): {str(n): str(v) for n, v in params.items()} for k, params in sd.items()},
        peer=_text(data.get("peer")), parse_error=_text(data.get("parse_error")), raw=_text(data.get("raw")),
        node=str(data.get("node") or node),
    )


def decode(payload: bytes, node: str, received: float) -> list[LogRecord]:
    """The records of one message; a line that is not a record is kept raw, flagged, never dropped."""
    out: list[LogRecord] = []
    for line in payload.decode(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            out.append(_record(data, node))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            out.append(LogRecord(ts=received, received=received, message=line, source="fleet", node=node,
                                 parse_error=f"not a fleet record: {e}", raw=line))
    return out
