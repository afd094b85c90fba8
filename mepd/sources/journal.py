"""The systemd journal as a log source, read exactly once across restarts.

Each record carries its entry's journal cursor; the log store commits the last
one in the same transaction as the records, and on start the source seeks just
past it.  A saved cursor whose entry is gone (vacuumed, files replaced) is not
used to position the reader: sd-journal would place it by whichever cursor
field still compares, which can skip or repeat much.  The source resumes at the
first entry after the cursor's timestamp instead, and counts the event and,
when the journal's sequence numbers tell, how many entries were lost.

Every sd-journal call runs in one worker thread (the library is not thread-safe
and reading touches the disk); the event loop only watches the reader's inotify
descriptor, so an idle journal costs no CPU and reading never blocks the loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from systemd import journal

from mepd.config import JournalConfig
from mepd.model import LogRecord, severity_number
from mepd.pipeline import Channel, Counters
from mepd.workers import Thread

log = logging.getLogger(__name__)

SOURCE: Final = "journal"
CURSOR_KEY: Final = "journal"
BATCH: Final = 500
_COREDUMP_MESSAGE_ID: Final = "fc2e22bc6ee647b6b90729ab34a250b1"

Resume = Callable[[], Awaitable[str | None]]
Fields = Mapping[str, bytes | list[bytes]]

# Where each pipeline's journal reading got to in this process.  A source rebuilt by a reload
# resumes from here rather than from the store, whose cursor lags behind records still queued.
_reached: weakref.WeakKeyDictionary[Channel[LogRecord], str] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class Cursor:
    """The parts of a journal cursor string ("s=…;i=…;b=…;m=…;t=…;x=…") a resume needs."""

    seqnum_id: str
    seqnum: int
    realtime: int

    @classmethod
    def parse(cls, text: str) -> Cursor | None:
        parts = dict(p.split("=", 1) for p in text.split(";") if "=" in p)
        try:
            return cls(parts["s"], int(parts["i"], 16), int(parts["t"], 16))
        except (KeyError, ValueError):
            return None


def lost_between(saved: Cursor, first: Cursor | None) -> int | None:
    """Entries the journal wrote between two cursors, when they share a sequence (same seqnum id)."""
    if first is None or first.seqnum_id != saved.seqnum_id:
        return None
    return max(0, first.seqnum - saved.seqnum - 1)


def _first(value: bytes | list[bytes] | None) -> bytes | None:
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _text(value: bytes | list[bytes] | None) -> str | None:
    data = _first(value)
    return None if data is None else data.decode("utf-8", "replace")


def _number(value: bytes | list[bytes] | None, top: int) -> int | None:
    data = _first(value)
    if data is None or not data.strip().isdigit():
        return None
    n = int(data)
    return n if n <= top else None


def entry_to_record(
    fields: Fields, realtime_usec: int, cursor: str, received: float, extra: tuple[str, ...] = ()
) -> LogRecord:
    """One journal entry (field values as bytes, repeated fields as lists) as a LogRecord.

    A MESSAGE that is not UTF-8 is decoded with replacement characters and also kept, escaped
    with backslashes, in `raw` with a `parse_error`, so its bytes stay recoverable.  A field
    given several times keeps its first value, except MESSAGE whose values are joined by lines.
    """
    value = fields.get("MESSAGE", b"")
    data = b"\n".join(value) if isinstance(value, list) else value
    parse_error = raw = None
    try:
        message = data.decode("utf-8")
    except UnicodeDecodeError:
        message = data.decode("utf-8", "replace")
        raw = data.decode("utf-8", "backslashreplace")
        parse_error = "MESSAGE is not valid UTF-8"
    sd: dict[str, str] = {}
    unit = _text(fields.get("_SYSTEMD_UNIT"))
    if unit is not None:
        sd["unit"] = unit
    for name in extra:
        text = _text(fields.get(name))
        if text is not None:
            sd[name] = text
    return LogRecord(
        ts=realtime_usec / 1e6,
        received=received,
        message=message,
        source=SOURCE,
        host=_text(fields.get("_HOSTNAME")),
        app=_text(fields.get("SYSLOG_IDENTIFIER") or fields.get("_COMM")),
        pid=_text(fields.get("_PID") or fields.get("SYSLOG_PID")),
        facility=_number(fields.get("SYSLOG_FACILITY"), 23),
        severity=_number(fields.get("PRIORITY"), 7),
        sd={"journal": sd} if sd else {},
        parse_error=parse_error,
        raw=raw,
        cursor=(CURSOR_KEY, cursor),
    )


def unit_terms(unit: str) -> Iterator[tuple[str, ...]]:
    """The alternatives `journalctl -u` matches for one unit: each tuple is a conjunction."""
    name = unit if "." in unit else unit + ".service"
    yield (f"_SYSTEMD_UNIT={name}",)
    yield (f"MESSAGE_ID={_COREDUMP_MESSAGE_ID}", "_UID=0", f"COREDUMP_UNIT={name}")
    yield ("_PID=1", f"UNIT={name}")
    yield ("_UID=0", f"OBJECT_SYSTEMD_UNIT={name}")


@dataclass(frozen=True, slots=True)
class Resumed:
    """How the reader was positioned; `reached` is a position to remember though nothing was read."""

    how: Literal["cursor", "stale", "bad_cursor", "head", "tail"]
    lost: int | None = None
    reached: str | None = None


class JournalReader:
    """The sd-journal calls, made from one worker thread only."""

    def __init__(self, cfg: JournalConfig) -> None:
        self.cfg = cfg
        self._j: Any = None
        self._skip: str | None = None

    def open(self) -> int:
        j = journal.Reader(path=self.cfg.path) if self.cfg.path else journal.Reader()
        fd = j.fileno()  # sets up the inotify watches before the first read, so no append is missed
        self._j = j
        if not self.cfg.path and not (j.has_persistent_files() or j.has_runtime_files()):
            log.warning(
                "journal: no system journal file is readable; is journald running, and may this user"
                " read the journal (group systemd-journal or adm)?"
            )
        return int(fd)

    def close(self) -> None:
        if self._j is not None:
            self._j.close()
            self._j = None

    def _add_matches(self) -> None:
        j, cfg = self._j, self.cfg
        if cfg.units:
            terms = [t for unit in cfg.units for t in unit_terms(unit)]
            for i, term in enumerate(terms):
                if i:
                    j.add_disjunction()
                for match in term:
                    j.add_match(match)
            j.add_conjunction()
        if cfg.identifiers:
            for ident in cfg.identifiers:
                j.add_match(f"SYSLOG_IDENTIFIER={ident}")
            j.add_conjunction()
        if cfg.priority:
            for level in range(severity_number(cfg.priority) + 1):
                j.add_match(f"PRIORITY={level}")
            j.add_conjunction()

    def position(self, cursor: str | None) -> Resumed:
        """Seek just past `cursor`, or to the configured start when there is none.

        Existence is tested before the matches are added: with them, `test_cursor` is also false
        when the saved entry exists but no longer matches (the config changed), which is no gap.
        """
        j = self._j
        if cursor is None:
            return self._start()
        try:
            j.seek_cursor(cursor)
        except ValueError:
            return Resumed("bad_cursor", reached=self._start().reached)
        if j._next(1) and j.test_cursor(cursor):
            self._add_matches()
            j.seek_cursor(cursor)
            self._skip = cursor
            return Resumed("cursor")
        saved = Cursor.parse(cursor)
        if saved is None:
            return Resumed("bad_cursor", reached=self._start().reached)
        j.seek_realtime(saved.realtime + 1)
        first = Cursor.parse(j._get_cursor()) if j._next(1) else None
        self._add_matches()
        j.seek_realtime(saved.realtime + 1)
        return Resumed("stale", lost=lost_between(saved, first))

    def _start(self) -> Resumed:
        """First run: "tail" anchors on the last entry without matches, as `seek_tail` with matches
        skips the first entry to come (see notes/dependencies.md)."""
        j = self._j
        if self.cfg.start == "tail":
            j.seek_tail()
            if j._previous(1):
                anchor = str(j._get_cursor())
                self._add_matches()
                j.seek_cursor(anchor)
                self._skip = anchor
                return Resumed("tail", reached=anchor)
        self._add_matches()
        j.seek_head()
        return Resumed("head")

    def read(self, limit: int) -> list[LogRecord]:
        j = self._j
        out: list[LogRecord] = []
        received = time.time()
        while len(out) < limit and j._next(1):
            if self._skip is not None:
                skip, self._skip = self._skip, None
                if j.test_cursor(skip):
                    continue
            fields, realtime, cursor = j._get_all(), j._get_realtime(), j._get_cursor()
            out.append(entry_to_record(fields, realtime, cursor, received, self.cfg.fields))
        self._skip = None
        return out

    def process(self) -> float | None:
        """Take in the journal changes the descriptor signalled; returns how long the next wait may
        last (None: until the descriptor says so)."""
        self._j.process()
        return self.timeout()

    def timeout(self) -> float | None:
        ms = self._j.get_timeout_ms()
        return None if ms < 0 else ms / 1000


class JournalSource:
    """Follows the journal into the pipeline, awaiting `put` so a slow store slows the reading."""

    def __init__(self, cfg: JournalConfig, logs: Channel[LogRecord], resume: Resume) -> None:
        self.name = SOURCE
        self.counters = Counters()
        self.cfg = cfg
        self.logs = logs
        self._resume = resume

    async def run(self, started: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        thread = Thread("journal")
        call = thread.run
        reader = JournalReader(self.cfg)
        try:
            fd = await call(reader.open)
            cursor = _reached.get(self.logs)
            if cursor is None:
                cursor = await self._resume()
            self._account(await call(reader.position, cursor), cursor)
            started()
            timeout = await call(reader.timeout)
            while True:
                records = await call(reader.read, BATCH)
                if records:
                    await self._hand_over(records)
                    continue
                await _readable(loop, fd, timeout)
                timeout = await call(reader.process)
        finally:
            thread.stop(wait=False, last=reader.close)  # the loop does not wait for a read still running

    async def _hand_over(self, records: list[LogRecord]) -> None:
        for record in records:
            await self.logs.put(record)
            assert record.cursor is not None
            _reached[self.logs] = record.cursor[1]
            self.counters.inc("read")
            if record.parse_error is not None:
                self.counters.inc("binary_messages")

    def _account(self, resumed: Resumed, cursor: str | None) -> None:
        if resumed.reached is not None:
            _reached[self.logs] = resumed.reached
        if resumed.how == "stale":
            self.counters.inc("resume.stale_cursor")
            if resumed.lost is not None:
                self.counters.inc("resume.lost_entries", resumed.lost)
            log.warning(
                "journal: saved cursor %s is gone (vacuumed or rotated away); resuming after its time,"
                " %s entries lost", cursor, "unknown" if resumed.lost is None else resumed.lost,
            )
        elif resumed.how == "bad_cursor":
            self.counters.inc("resume.bad_cursor")
            log.warning("journal: saved cursor %r is not a cursor; starting at %s", cursor, self.cfg.start)
        else:
            log.info("journal: reading from %s", resumed.how)


async def _readable(loop: asyncio.AbstractEventLoop, fd: int, limit: float | None) -> None:
    """Until the journal descriptor is readable, or `limit` seconds for journals it cannot watch reliably."""
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await asyncio.wait_for(ready, limit)
    except TimeoutError:
        pass
    finally:
        loop.remove_reader(fd)


def create(cfg: JournalConfig, logs: Channel[LogRecord], resume: Resume) -> JournalSource:
    return JournalSource(cfg, logs, resume)
