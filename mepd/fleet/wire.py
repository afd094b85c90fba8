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
import json.scanner
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

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


_FACILITY: Final = {name: code for code, name in enumerate(FACILITIES)}
_SEVERITY: Final = {name: code for code, name in enumerate(SEVERITIES)}


def _time(value: object) -> float:
    return datetime.fromisoformat(value if type(value) is str else str(value)).timestamp()


def _text(value: object) -> str | None:
    return value if value is None or type(value) is str else str(value)


def _record(data: dict[str, Any], node: str) -> LogRecord:
    """Every field checked as before, at 4 µs a record: the central reads every record through here."""
    get = data.get
    sd = get("sd")
    ts = data["ts"]
    message = data["message"]
    facility, severity = get("facility"), get("severity")
    return LogRecord(
        _time(ts), _time(get("received") or ts), message if type(message) is str else str(message),
        str(get("source") or "fleet"), _text(get("host")), _text(get("app")), _text(get("pid")),
        _FACILITY.get(facility) if type(facility) is str else None,
        _SEVERITY.get(severity) if type(severity) is str else None,
        _text(get("msgid")), {str(k): {str(n): str(v) for n, v in params.items()} for k, params in sd.items()}
        if sd else {}, _text(get("peer")), _text(get("parse_error")), _text(get("raw")),
        node=str(get("node") or node),
    )


# json.loads's scanner without its per-call checks: 2 µs a line less.  (typeshed wants a make_scanner as its
# context; the decoder is what json itself gives it.)
_SCAN: Final = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def decode(payload: bytes, node: str, received: float) -> tuple[list[LogRecord], int]:
    """The records of one message, and how many of them are lines that were not records: kept raw, flagged,
    never dropped.

    Lines end at "\\n" only: str.splitlines would also cut at U+2028, U+0085 and others, which JSON leaves
    unescaped in a message.  A line that is one JSON value from its first character to its "\\n" is read in
    place; any other goes through `_line` (json.loads and its checks)."""
    text = payload.decode(errors="replace")
    out: list[LogRecord] = []
    bad = 0
    pos, size = 0, len(text)
    while pos < size:
        try:
            data, end = _SCAN(text, pos)
        except (StopIteration, ValueError, RecursionError):
            end = -1
        if end == size or (end >= 0 and text[end] == "\n"):
            try:
                out.append(_record(data, node))
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                out.append(_not_a_record(text[pos:end], node, received, e))
                bad += 1
        else:
            end = text.find("\n", pos)
            end = size if end < 0 else end
            bad += _line(text[pos:end], node, received, out)
        pos = end + 1
    return out, bad


def _line(line: str, node: str, received: float, out: list[LogRecord]) -> int:
    """Append the line's record, or the line kept raw; returns 1 for the latter."""
    if not line.strip():
        return 0
    try:
        out.append(_record(json.loads(line), node))
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:  # nesting too deep: RecursionError
        out.append(_not_a_record(line, node, received, e))
        return 1
    return 0


def _not_a_record(line: str, node: str, received: float, error: Exception) -> LogRecord:
    return LogRecord(ts=received, received=received, message=line, source="fleet", node=node,
                     parse_error=f"not a fleet record: {error}", raw=line)
