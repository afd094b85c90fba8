"""The messages on the fleet's streams: newline-delimited JSON, one record per line.

A message on `mepd.logs.<node>` holds the records with local ids `first`..`last`
of that node (at most `batch_size` of them, and within the server's max_payload),
in id order, each line DESIGN's record JSON (`LogRecord.to_json`) plus `node`,
`id` (its id in the node's store) and `raw` (the original text of a line that
could not be parsed), as the store writes it (`LogStore.lines_after`).  Headers:
`Nats-Msg-Id` = `<node>:<epoch>:<first>-<last>` (the epoch changes when the
node's store starts again from id 1), used by the stream's duplicate window
and by centrals to store a message once.  Vector's or Telegraf's NATS sources read it with newline-delimited framing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mepd.model import FACILITIES, SEVERITIES, LogRecord
from mepd.store.logs.store import Line

MSG_ID = "Nats-Msg-Id"


def message_id(node: str, epoch: str, first: int, last: int) -> str:
    return f"{node}:{epoch}:{first}-{last}"


@dataclass(frozen=True, slots=True)
class Message:
    """The records with local ids `first`..`last` (`count` of them: ids may skip) as one message's payload."""

    first: int
    last: int
    count: int
    payload: bytes


def split(lines: Sequence[Line], max_records: int, max_bytes: int) -> list[Message]:
    """`lines` (in id order) as messages of at most `max_records` records and `max_bytes` bytes; a record
    larger than `max_bytes` goes alone."""
    out: list[Message] = []
    batch: list[bytes] = []
    first = last = size = 0
    for line in lines:
        if batch and (len(batch) >= max_records or size + len(line.text) > max_bytes):
            out.append(Message(first, last, len(batch), b"".join(batch)))
            batch, size = [], 0
        if not batch:
            first = line.id
        batch.append(line.text)
        size += len(line.text)
        last = line.id
    if batch:
        out.append(Message(first, last, len(batch), b"".join(batch)))
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
    """The records of one message; a line that is not a record is kept raw, flagged, never dropped.

    Lines end at "\\n" only: str.splitlines would also cut at U+2028, U+0085 and others, which JSON leaves
    unescaped in a message."""
    out: list[LogRecord] = []
    for line in payload.decode(errors="replace").split("\n"):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            out.append(_record(data, node))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            out.append(LogRecord(ts=received, received=received, message=line, source="fleet", node=node,
                                 parse_error=f"not a fleet record: {e}", raw=line))
    return out
