"""Log files followed like `tail -F`, exactly once across rotation and restarts.

A file is known by its (device, inode) and a fingerprint of its first bytes,
never by its name: names move under logrotate, inodes do not, and the
fingerprint tells a reused inode or a truncated-and-rewritten file from the one
we read.  Every record carries the position just after its line as its cursor
(key ``tail:<name>:<dev>:<inode>``), which the log store commits with the
record, so after a crash reading resumes exactly after the last stored line.

inotify (watchdog) only wakes the reader; what changed is found by looking:
glob the pattern, stat, compare inodes and sizes.  A rescan every second
covers what inotify cannot see (NFS, directories that do not exist yet, files
that were unlinked while open).  All file I/O runs in one worker thread per
source, so the event loop never waits on a disk.

Rotation handling:
- rename (logrotate's default): the old inode leaves the glob; it stays open
  and is read to its end first, then kept `rotate_wait` for writers that have
  not reopened yet, then its partial last line (if any) is flushed;
- copytruncate: the file shrinks or its first bytes change; the lines the copy
  holds past our position (written between our last read and the copy) are
  read from the copy, found next to the file by fingerprint, then the file is
  read again from 0;
- rotated while mepd was down: saved positions are looked up for the rotated
  siblings (``access.log.1``, ``access.log-20250101``) too, and their tails
  read before the new file; a sibling with no saved position that is newer
  than a file we knew, and no copy of one, was created and rotated away while
  we were stopped, and is read whole.
"""

from __future__ import annotations

import asyncio
import glob
import hashlib
import logging
import os
import socket
import stat
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from mepd.analysis.weblog.accesslog import parse_access_line
from mepd.config import TailConfig
from mepd.model import LogRecord
from mepd.pipeline import Channel, Counters
from mepd.workers import Thread

log = logging.getLogger(__name__)

FP_LEN: Final = 256
"""Bytes at the start of a file whose hash identifies its content."""
READ_CHUNK: Final = 256 * 1024
FILE_BUDGET: Final = 1024 * 1024
"""Bytes read from one file per cycle: records meet the pipeline's back-pressure in bounded batches."""
RESCAN_INTERVAL: Final = 1.0
MAX_JUDGED: Final = 4096
_COMPRESSED: Final = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".z", ".zip")
_WAKE_EVENTS: Final = (
    FileCreatedEvent, FileModifiedEvent, FileMovedEvent, FileDeletedEvent, FileClosedEvent,
    DirCreatedEvent, DirMovedEvent, DirDeletedEvent,
)

Resume = Callable[[str], Awaitable[str | None]]


def fingerprint(head: bytes) -> str:
    """`<length>-<hash>` of a file's first bytes; the length lets a longer head be checked later."""
    return f"{len(head)}-{hashlib.blake2b(head, digest_size=8).hexdigest()}"


def same_content(head: bytes, fp: str) -> bool:
    """Whether a file starting with `head` still starts with the bytes `fp` was taken of."""
    length, _, _ = fp.partition("-")
    n = int(length)
    return len(head) >= n and fingerprint(head[:n]) == fp


@dataclass(frozen=True, slots=True)
class Position:
    """Where reading stopped in a file: the offset after the last line stored, the file's fingerprint,
    and when (epoch milliseconds) that line was read, which dates the stop after a crash."""

    offset: int
    fp: str
    read_ms: int = 0

    def encode(self) -> str:
        return f"{self.offset}:{self.fp}:{self.read_ms}"

    @classmethod
    def decode(cls, text: str | None) -> Position | None:
        """None for a missing or malformed position: the file is then treated as never seen."""
        parts = text.split(":") if text else []
        if len(parts) != 3:
            return None
        offset, fp, read_ms = parts
        length, dash, digest = fp.partition("-")
        if not (offset.isdigit() and read_ms.isdigit() and length.isdigit() and dash and len(digest) == 16):
            return None
        return cls(int(offset), fp, int(read_ms))

    def resume_offset(self, head: bytes, size: int) -> int | None:
        """The offset to continue at, or None when the file is no longer the one saved.

        It is not when it got shorter than the offset (truncated) or its first
        bytes changed (truncated and rewritten, or a new file on a reused inode).
        """
        if size >= self.offset and same_content(head, self.fp):
            return self.offset
        return None


def cursor_key(name: str, dev: int, ino: int) -> str:
    return f"tail:{name}:{dev}:{ino}"


@dataclass(frozen=True, slots=True)
class Line:
    """One line without its newline; `end` is the file offset after it, `dropped` the bytes cut off."""

    text: bytes
    end: int
    dropped: int = 0


class LineSplitter:
    """Cuts a byte stream into lines, holding a partial last line until its newline arrives.

    A line longer than `max_line` keeps its first `max_line` bytes and counts
    the rest as dropped; it is still only returned at its newline, so its
    position stays at the start of the line until then.
    """

    __slots__ = ("_buf", "_dropped", "committed", "max_line")

    def __init__(self, start: int, max_line: int) -> None:
        self.committed = start
        self.max_line = max_line
        self._buf = bytearray()
        self._dropped = 0

    @property
    def read_pos(self) -> int:
        """The file offset of the next byte to read."""
        return self.committed + len(self._buf) + self._dropped

    @property
    def pending(self) -> int:
        """Bytes of a partial line held back."""
        return len(self._buf) + self._dropped

    def feed(self, data: bytes) -> list[Line]:
        out: list[Line] = []
        pos, n, cap = 0, len(data), self.max_line
        while pos < n:
            nl = data.find(b"\n", pos)
            if nl < 0:
                self._hold(data[pos:])
                break
            if self._buf or self._dropped:
                self._hold(data[pos:nl])
                text, dropped = bytes(self._buf), self._dropped
                self._buf.clear()
                self._dropped = 0
            else:
                text, dropped = data[pos:nl], 0
                if len(text) > cap:
                    text, dropped = text[:cap], len(text) - cap
            self.committed += len(text) + dropped + 1
            out.append(Line(text, self.committed, dropped))
            pos = nl + 1
        return out

    def flush(self) -> Line | None:
        """The held partial line as a line of its own: the file will get no more bytes."""
        if not self.pending:
            return None
        line = Line(bytes(self._buf), self.read_pos, self._dropped)
        self.committed = line.end
        self._buf.clear()
        self._dropped = 0
        return line

    def _hold(self, piece: bytes) -> None:
        room = self.max_line - len(self._buf)
        if len(piece) <= room:
            self._buf += piece
        else:
            self._buf += piece[:room]
            self._dropped += len(piece) - room


@dataclass(slots=True)
class _Opened:
    """A file just opened by a scan, before deciding where to read it from."""

    path: str
    fd: int
    dev: int
    ino: int
    size: int
    head: bytes
    mtime: int
    rotated: bool


@dataclass(slots=True)
class _File:
    """A file being followed; touched only by the source's worker thread."""

    path: str
    fd: int
    dev: int
    ino: int
    key: str
    splitter: LineSplitter
    head: bytes
    fp: str
    orphan_since: float | None = None
    """Monotonic time it left the glob (renamed or deleted) or last grew since; None while it matches."""
    drain_only: bool = False
    """A copytruncate copy: read to its end, flush, close; never written again."""


def _head(fd: int) -> bytes:
    return os.pread(fd, FP_LEN, 0)


def _line_start_before(fd: int, size: int, limit: int) -> int:
    """Offset where the last line of the file starts when it has no newline yet, else `size`."""
    lo = max(0, size - limit - 1)
    tail = os.pread(fd, size - lo, lo)
    if tail.endswith(b"\n"):
        return size
    nl = tail.rfind(b"\n")
    return lo + nl + 1 if nl >= 0 else lo


def _watch_root(pattern: str) -> tuple[str, bool]:
    """The deepest folder of a glob without wildcards, and whether files below it are matched recursively."""
    parts = pattern.split(os.sep)
    for i, part in enumerate(parts):
        if glob.has_magic(part):
            return os.sep.join(parts[:i]) or os.sep, i < len(parts) - 1
    return os.path.dirname(pattern) or os.sep, False


class _Wake(FileSystemEventHandler):
    """Runs in watchdog's thread: only nudges the source's loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        self._loop = loop
        self._event = event

    def on_any_event(self, _event: FileSystemEvent) -> None:
        self._loop.call_soon_threadsafe(self._event.set)


class TailSource:
    """One `[[tail]]` entry: every file its glob matches, each from where it was left."""

    def __init__(
        self, cfg: TailConfig, logs: Channel[LogRecord], resume: Resume, *, hostname: str | None = None
    ) -> None:
        self.name = f"tail:{cfg.name}"
        self.cfg = cfg
        self.counters = Counters()
        self._logs = logs
        self._resume = resume
        self._host = hostname or socket.gethostname()
        self._files: dict[tuple[int, int], _File] = {}
        self._emitted: dict[str, str] = {}
        """Positions handed to the pipeline: fresher than the store's while records are queued."""
        self._ever_followed = False
        self._errors: dict[str, str] = {}
        self._watches: dict[str, Any] = {}
        self._judged: dict[tuple[int, int], None] = {}
        """Rotated siblings already read to their end or found to be old or copies: not opened again."""
        self._seen_fps: deque[str] = deque(maxlen=256)
        """Fingerprints of content followed, to tell a copy of it from a file never seen."""
        self._status: dict[str, object] = {"files": [], "errors": {}}
        """Rebuilt by the worker after each cycle and swapped in whole, so the loop reads it safely."""
        self._unmatched = False  # the pattern matched nothing at the last look: said once, shown in status

    # --- the loop side ---------------------------------------------------------------------------

    async def run(self, started: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        thread = Thread(self.name)
        observer = Observer()
        observer.start()
        handler = _Wake(loop, wake)

        in_thread = thread.run
        try:
            await in_thread(self._watch, observer, handler)
            await self._cycle(in_thread, initial=True)
            started()
            while True:
                try:
                    async with asyncio.timeout(self._next_wait()):
                        await wake.wait()
                except TimeoutError:
                    pass
                wake.clear()
                await in_thread(self._watch, observer, handler)
                if await self._cycle(in_thread, initial=False):
                    wake.set()
        finally:
            observer.unschedule_all()
            observer.stop()
            self._watches.clear()
            # Queued behind any read still running in the worker, so no fd is closed under it.
            await thread.run(self._close_all)
            thread.stop(wait=False)
            await loop.run_in_executor(None, observer.join)

    async def _cycle(self, in_thread: Callable[..., Awaitable[Any]], *, initial: bool) -> bool:
        """Look, read, hand over; True when files have more to read right away."""
        opened: list[_Opened] = await in_thread(self._discover)
        positions: dict[str, Position | None] = {}
        try:
            for o in opened:
                key = cursor_key(self.cfg.name, o.dev, o.ino)
                text = self._emitted.get(key)
                if text is None:
                    text = await self._resume(key)
                positions[key] = Position.decode(text)
        except BaseException:
            for o in opened:
                os.close(o.fd)
            raise
        records, more = await in_thread(self._adopt_and_read, opened, positions, initial)
        put = self._logs.put
        emitted = self._emitted
        for r in records:
            await put(r)
            assert r.cursor is not None
            emitted[r.cursor[0]] = r.cursor[1]
        return bool(more)

    def _next_wait(self) -> float:
        wait = RESCAN_INTERVAL
        now = time.monotonic()
        for f in self._files.values():
            if f.orphan_since is not None:
                wait = min(wait, max(0.0, f.orphan_since + self.cfg.rotate_wait - now) + 0.01)
        return wait

    def details(self) -> dict[str, object]:
        """For `mepctl status`: the files followed, from where, and those that cannot be opened."""
        return self._status

    # --- the worker thread -----------------------------------------------------------------------

    def _watch(self, observer: Any, handler: _Wake) -> None:
        """(Re)arm inotify on the pattern's folder: it may appear late or be replaced."""
        root, recursive = _watch_root(self.cfg.path)
        try:
            st = os.stat(root)
        except OSError:
            st = None
        ident = (st.st_dev, st.st_ino) if st is not None and stat.S_ISDIR(st.st_mode) else None
        current = self._watches.get(root)
        if current is not None and current[1] == ident:
            return
        if current is not None:
            if current[0] is not None:
                observer.unschedule(current[0])
            del self._watches[root]
        if ident is not None:
            try:
                watch = observer.schedule(handler, root, recursive=recursive, event_filter=list(_WAKE_EVENTS))
            except OSError as e:  # e.g. the inotify watch limit: the rescan still finds everything, later
                self.counters.inc("watch_errors")
                log.warning("%s: cannot watch %s, polling every %.0fs instead: %s", self.name, root,
                            RESCAN_INTERVAL, e)
                watch = None
            self._watches[root] = (watch, ident)

    def _discover(self) -> list[_Opened]:
        """Open files new to us; mark followed files that left the glob as rotated."""
        current: dict[tuple[int, int], str] = {}
        for path in sorted(glob.glob(self.cfg.path, recursive=True)):
            try:
                st = os.stat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                current.setdefault((st.st_dev, st.st_ino), path)
        unmatched = not current and not self._files
        if unmatched and not self._unmatched:  # a typo or a missing folder must not look like a quiet log
            log.warning("%s: no file matches %s; watching for one", self.name, self.cfg.path)
        self._unmatched = unmatched
        now = time.monotonic()
        for ident, f in self._files.items():
            if f.drain_only:
                continue
            if ident in current:
                f.path = current[ident]
                f.orphan_since = None
            elif f.orphan_since is None:
                f.orphan_since = now
        opened = [o for ident, path in current.items() if ident not in self._files
                  if (o := self._open(path, rotated=False)) is not None]
        opened[:0] = self._open_rotated(set(current))
        return opened

    def _open_rotated(self, matched: set[tuple[int, int]]) -> list[_Opened]:
        """Rotated siblings (`access.log.1`, `access.log-20250101`) not yet judged.

        At start they may hold unread tails; while running, one we never saw
        is a file created and rotated away between two looks (two quick
        rotations in a row).
        """
        opened: list[_Opened] = []
        seen: set[tuple[int, int]] = set()
        for path in sorted(glob.glob(self.cfg.path + "?*", recursive=True)):
            if path.lower().endswith(_COMPRESSED):
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue
            ident = (st.st_dev, st.st_ino)
            if not stat.S_ISREG(st.st_mode) or ident in matched or ident in seen:
                continue
            seen.add(ident)
            if ident not in self._files and ident not in self._judged:
                o = self._open(path, rotated=True)
                if o is not None:
                    opened.append(o)
        return opened

    def _open(self, path: str, *, rotated: bool) -> _Opened | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as e:
            if not rotated and self._errors.get(path) != e.strerror:
                self._errors[path] = e.strerror or str(e)
                self.counters.inc("open_errors")
                log.warning("%s: cannot open %s: %s", self.name, path, e.strerror)
            return None
        if self._errors.pop(path, None) is not None:
            log.info("%s: %s is readable again", self.name, path)
        st = os.fstat(fd)
        return _Opened(path, fd, st.st_dev, st.st_ino, st.st_size, _head(fd), st.st_mtime_ns, rotated)

    def _adopt_and_read(
        self, opened: list[_Opened], positions: dict[str, Position | None], initial: bool
    ) -> tuple[list[LogRecord], bool]:
        self._adopt(opened, positions, initial)
        records: list[LogRecord] = []
        more = False
        for f in [f for f in self._files.values() if f.orphan_since is not None]:
            more |= self._read_rotated(f, records)
        if not more:
            for f in [f for f in self._files.values() if f.orphan_since is None]:
                more |= self._read(f, records)
        self._status = {
            "files": [{"path": f.path, "offset": f.splitter.committed, "rotated": f.orphan_since is not None}
                      for f in self._files.values()],
            "errors": dict(self._errors),
            "unmatched": self.cfg.path if self._unmatched else None,
        }
        return records, more

    def _adopt(self, opened: list[_Opened], positions: dict[str, Position | None], initial: bool) -> None:
        """Decide where each newly opened file is read from."""
        known = [p for o in opened if (p := positions.get(cursor_key(self.cfg.name, o.dev, o.ino)))]
        has_state = self._ever_followed or bool(known)
        last_read_ms = max((p.read_ms for p in known), default=None)
        self._seen_fps.extend(p.fp for p in known)
        for o in opened:
            key = cursor_key(self.cfg.name, o.dev, o.ino)
            saved = positions.get(key)
            offset = saved.resume_offset(o.head, o.size) if saved is not None else None
            if o.rotated:
                if offset is None and saved is None and not self._is_copy(o.head) and (
                    not initial or (last_read_ms is not None and o.mtime // 1_000_000 > last_read_ms)
                ):
                    offset = 0  # written and rotated away since we last read: all of it is new
                if offset is None:
                    self._judge((o.dev, o.ino))
                    os.close(o.fd)
                    continue
                self._follow(o, key, offset, orphan=True)
            elif offset is not None:
                self._follow(o, key, offset)
            elif saved is not None:
                self.counters.inc("truncations")
                self._recover_from_copy(o.path, key, saved, (o.dev, o.ino))
                self._follow(o, key, 0)
            elif initial and not has_state and self.cfg.start == "end":
                self._follow(o, key, _line_start_before(o.fd, o.size, self.cfg.max_line_size))
            else:
                self._follow(o, key, 0)

    def _judge(self, ident: tuple[int, int]) -> None:
        """Remember a sibling as done.  Never forgotten because it went missing from one scan: a
        listing taken during a rotation can miss a name, and forgetting would re-read an old file."""
        self._judged[ident] = None
        if len(self._judged) > MAX_JUDGED:
            del self._judged[next(iter(self._judged))]

    def _is_copy(self, head: bytes) -> bool:
        """Whether a file starts like content we followed: a copytruncate copy, or a backup."""
        return any(same_content(head, fp) for fp in self._seen_fps if not fp.startswith("0-"))

    def _follow(
        self, o: _Opened, key: str, offset: int, *, orphan: bool = False, drain_only: bool = False
    ) -> None:
        f = _File(o.path, o.fd, o.dev, o.ino, key, LineSplitter(offset, self.cfg.max_line_size),
                  o.head, fingerprint(o.head), time.monotonic() if orphan or drain_only else None, drain_only)
        self._files[(o.dev, o.ino)] = f
        self._seen_fps.append(f.fp)
        self._ever_followed = True
        self.counters.inc("files_opened")
        log.debug("%s: following %s from offset %d", self.name, o.path, offset)

    def _read_rotated(self, f: _File, records: list[LogRecord]) -> bool:
        """Read a file that left the glob; close it once it is done for good."""
        grew = f.splitter.read_pos
        more = self._read(f, records)
        if more:
            return True
        assert f.orphan_since is not None
        now = time.monotonic()
        if f.splitter.read_pos != grew and not f.drain_only:
            f.orphan_since = now
        if f.drain_only or now - f.orphan_since >= self.cfg.rotate_wait:
            line = f.splitter.flush()
            if line is not None:
                self.counters.inc("partial_lines")
                records.extend(self._records(f, [line]))
            os.close(f.fd)
            del self._files[(f.dev, f.ino)]
            self._judge((f.dev, f.ino))
            self.counters.inc("files_closed")
            log.debug("%s: done with %s", self.name, f.path)
        return False

    def _read(self, f: _File, records: list[LogRecord]) -> bool:
        """Append the file's complete new lines to `records`; True when the budget ran out before its end."""
        size = os.fstat(f.fd).st_size
        sp = f.splitter
        if size == sp.read_pos:
            return False
        head = _head(f.fd)
        if size < sp.read_pos or not same_content(head, f.fp):
            if self._truncated(f, head, records):
                return True  # the copy goes first, next cycle: its positions come before the new content's
            sp = f.splitter
        elif len(head) > len(f.head):
            f.head, f.fp = head, fingerprint(head)
            self._seen_fps.append(f.fp)
        budget = FILE_BUDGET
        while budget > 0:
            data = os.pread(f.fd, min(READ_CHUNK, budget), sp.read_pos)
            if not data:
                return False
            budget -= len(data)
            self.counters.inc("bytes", len(data))
            records.extend(self._records(f, sp.feed(data)))
        return True

    def _truncated(self, f: _File, head: bytes, records: list[LogRecord]) -> bool:
        """Copytruncate: start over at 0, after the old content's tail from the copy if one is found."""
        self.counters.inc("truncations")
        log.info("%s: %s was truncated at offset %d", self.name, f.path, f.splitter.read_pos)
        saved = Position(f.splitter.committed, f.fp)
        copied = self._recover_from_copy(f.path, f.key, saved, (f.dev, f.ino))
        if not copied:
            line = f.splitter.flush()
            if line is not None:
                self.counters.inc("partial_lines")
                records.extend(self._records(f, [line]))
        f.splitter = LineSplitter(0, self.cfg.max_line_size)
        f.head, f.fp = head, fingerprint(head)
        self._seen_fps.append(f.fp)
        return copied

    def _recover_from_copy(self, path: str, key: str, saved: Position, own: tuple[int, int]) -> bool:
        """Find the copy logrotate made of `path` before truncating it; queue its unread tail under `key`."""
        best: _Opened | None = None
        for candidate in glob.glob(glob.escape(path) + "?*"):
            if candidate.lower().endswith(_COMPRESSED):
                continue
            o = self._open(candidate, rotated=True)
            if o is None:
                continue
            if (o.dev, o.ino) != own and (o.dev, o.ino) not in self._files and o.size > saved.offset \
                    and same_content(o.head, saved.fp) and (best is None or o.size > best.size):
                if best is not None:
                    os.close(best.fd)
                best = o
            else:
                os.close(o.fd)
        if best is None:
            return False
        log.info("%s: reading %d bytes %s missed from its copy %s", self.name, best.size - saved.offset, path,
                 best.path)
        self.counters.inc("copy_recoveries")
        self._follow(best, key, saved.offset, drain_only=True)
        return True

    def _records(self, f: _File, lines: list[Line]) -> list[LogRecord]:
        """Records for lines just read: one clock reading per read, the plain path kept lean."""
        if not lines:
            return []
        now = time.time()
        stamp = f"{f.fp}:{int(now * 1000)}"
        self.counters.inc("lines", len(lines))
        key, source, host, app = f.key, self.name, self._host, self.cfg.name
        plain = self.cfg.format == "plain"
        out: list[LogRecord] = []
        for line in lines:
            text = line.text.decode("utf-8", "replace")
            if text.endswith("\r"):
                text = text[:-1]
            cursor = (key, f"{line.end}:{stamp}")
            if plain and not line.dropped:
                out.append(LogRecord(ts=now, received=now, message=text, source=source, host=host, app=app,
                                     cursor=cursor))
            else:
                out.append(self._parsed(text, line.dropped, now, cursor))
        return out

    def _parsed(self, text: str, dropped: int, now: float, cursor: tuple[str, str]) -> LogRecord:
        errors: list[str] = []
        if dropped:
            self.counters.inc("truncated_lines")
            errors.append(f"line truncated: {dropped} bytes dropped")
        ts = now
        sd: dict[str, dict[str, str]] = {}
        fmt = self.cfg.format
        if fmt != "plain":
            try:
                parsed_ts, sd["http"] = parse_access_line(text, fmt)
            except ValueError as e:
                errors.append(str(e))
                self.counters.inc("parse_errors")
            else:
                ts = float(parsed_ts)
        return LogRecord(
            ts=ts, received=now, message=text, source=self.name, host=self._host, app=self.cfg.name, sd=sd,
            parse_error="; ".join(errors) or None, cursor=cursor,
        )

    def _close_all(self) -> None:
        for f in self._files.values():
            os.close(f.fd)
        self._files.clear()


def create(cfg: TailConfig, logs: Channel[LogRecord], resume: Resume) -> TailSource:
    return TailSource(cfg, logs, resume)
