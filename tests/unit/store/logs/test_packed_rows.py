"""The packed rows (`_rows.c`) store exactly what the row tuples store: every column's value and SQLite type,
and the ids in the same order, on the whole syslog corpus and on hypothesis rows of every form.

Without the extension these tests skip, unless MEPD_REQUIRE_SPEEDUPS=1 (set by `make test`) says it must be
there.  The other store tests write through whichever path is in use; `MEPD_PURE=1` runs them on the tuples.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mepd.config import LogStorageConfig, SyslogListenConfig
from mepd.model import LogQuery, LogRecord
from mepd.pipeline import Channel, Counters
from mepd.sources.syslog.server import SyslogIntake
from mepd.store.logs import native, worker
from mepd.store.logs.store import LogStore, _rows
from tests.helpers import until
from tests.unit.sources.syslog.test_syslog_corpus import DEFAULT_PEER, ENTRIES

pytestmark = pytest.mark.skipif(
    native.pack is None and not os.environ.get("MEPD_REQUIRE_SPEEDUPS"),
    reason="the packed rows are not built (or MEPD_PURE is set)",
)

# Every column and its SQLite type, in id order: what a reader gets back.
READ_BACK = ("SELECT id, " + ", ".join(f"{name}, typeof({name})" for name in worker.COLUMNS)
             + " FROM logs ORDER BY id")


def pack(rows: list[tuple[Any, ...]]) -> bytes:
    assert native.pack is not None
    return native.pack(rows, worker.PACK_FORMS)


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[Path]:
    """The writer in this process (closed after), and where to put its databases."""
    yield tmp_path
    worker.close()


def stored(path: Path, rows: list[tuple[Any, ...]], packed: bool) -> list[tuple[Any, ...]]:
    """What a new database at `path` holds once the writer has written `rows`, as tuples or packed."""
    for suffix in ("", "-wal", "-shm"):  # a hypothesis example's database from the one before
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    worker.open(str(path))
    assert worker.state().value[2], "the writer did not load mepd_rows()"
    batch: list[tuple[Any, ...]] | bytes = pack(rows) if packed else rows
    worker.write("b", batch, {}, 0.0)
    worker.close()
    return read_back(path)


def read_back(path: Path) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(READ_BACK).fetchall()


def same(tmp: Path, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    want = stored(tmp / "tuples.db", rows, packed=False)
    assert stored(tmp / "packed.db", rows, packed=True) == want
    return want


def test_the_packed_rows_are_in_use(writer: Path) -> None:
    assert native.pack is not None
    assert native.columns == len(worker.COLUMNS)
    worker.open(str(writer / "logs.db"))
    assert worker.state().value[2]


def test_a_writer_that_cannot_load_the_extension_takes_tuples(writer: Path, monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    monkeypatch.setattr(native, "path", str(writer / "missing.so"))
    monkeypatch.setattr(worker, "_packed", None)  # decided again at this open
    worker.open(str(writer / "logs.db"))
    assert worker.state().value[2] is False
    assert worker.write("b", _rows(corpus_records()[:2]).rows, {}, 0.0).value == (2, True, [])


def corpus_records() -> list[LogRecord]:
    """The corpus parsed as received from a peer, then again from none (a local socket's)."""
    intake = SyslogIntake(SyslogListenConfig(proto="udp", address="127.0.0.1:1"), Channel("x", Counters()),
                          Counters())
    frames = [(e["input"].encode("utf-8"), 0) for e in ENTRIES]
    return intake.records(frames, DEFAULT_PEER) + intake.records(frames, None)


def test_the_whole_corpus(writer: Path) -> None:
    records = corpus_records()
    records[0].node = "edge1"  # the long form too: sd, parse errors and raw come from the corpus itself
    rows = _rows(records).rows
    assert {len(row) for row in rows} == {len(form) for form in worker.ROW_FORMS}
    got = same(writer, rows)
    assert [row[0] for row in got] == list(range(1, 2 * len(ENTRIES) + 1))


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)  # a lone surrogate is not UTF-8
VALUE = st.one_of(st.none(), TEXT, st.integers(-(2**63), 2**63 - 1), st.floats(), st.booleans(),
                  st.binary(max_size=20))


def a_row(form: tuple[str, ...]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.tuples(*[VALUE for _ in form])


ROWS = st.lists(st.sampled_from(worker.ROW_FORMS).flatmap(a_row), max_size=30)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=ROWS)
def test_hypothesis_rows(writer: Path, rows: list[tuple[Any, ...]]) -> None:
    """Any value sqlite3 binds, in any column of any form (the table's NOT NULL aside: both refuse it)."""
    try:
        want = stored(writer / "tuples.db", rows, packed=False)
    except sqlite3.IntegrityError:  # a None where the table says NOT NULL: the packed rows must be refused too
        worker.close()
        with pytest.raises(sqlite3.IntegrityError):
            stored(writer / "packed.db", rows, packed=True)
        return
    assert stored(writer / "packed.db", rows, packed=True) == want


def test_values_sqlite3_refuses_are_refused_alike() -> None:
    form = worker.ROW_FORMS[2]
    with pytest.raises(OverflowError):
        pack([(2**63,) + (None,) * (len(form) - 1)])
    with pytest.raises(TypeError, match="object"):
        pack([(object(),) + (None,) * (len(form) - 1)])
    with pytest.raises(UnicodeEncodeError):
        pack([("\ud800",) + (None,) * (len(form) - 1)])
    with pytest.raises(ValueError, match="no row form has 3 values"):
        pack([(1.0, 2.0, "x")])


def test_malformed_packed_rows_store_nothing(writer: Path) -> None:
    rows = _rows(corpus_records()[:5]).rows
    good = pack(rows)
    worker.open(str(writer / "logs.db"))
    for bad in (good[:-1], good + b"\0", b"MEPX" + good[4:], good[:12]):
        with pytest.raises(sqlite3.OperationalError, match="malformed packed rows"):
            worker.write("b", bad, {}, 0.0)
    assert worker.state().value[0] == 0  # and the batch id did not commit: the good one is still new
    assert worker.write("b", good, {}, 0.0).value == (5, True, [])


async def test_the_daemon_sends_packed_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the LogStore and its writer process: the same records stored packed and as tuples read back
    the same; a batch with uids (RELP's) goes as tuples, which the writer checks them in."""
    assert native.pack is not None
    packs: list[int] = []
    real = native.pack
    monkeypatch.setattr(native, "pack", lambda rows, forms: packs.append(len(rows)) or real(rows, forms))
    records = corpus_records()
    relp = corpus_records()[:3]
    for i, record in enumerate(relp):
        record.uid = f"u{i}"
    read: list[list[tuple[Any, ...]]] = []
    for name, packed in (("packed.db", True), ("tuples.db", False)):
        store = LogStore(str(tmp_path / name), LogStorageConfig())
        await store.open()
        try:
            assert store.packed
            store.packed = packed
            await store.write(records)
            await store.write(relp)
        finally:
            await store.close()
        read.append(read_back(tmp_path / name))
    assert packs == [len(records)]
    assert read[0] == read[1]
    assert len(read[0]) == len(records) + len(relp)


async def test_a_writer_restarted_without_the_extension_gets_tuples(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer process dies; the one started after it cannot load mepd_rows() (here MEPD_PURE=1 in its
    environment: the module is not even imported there).  The batches that follow must reach it as tuples."""
    store = LogStore(str(tmp_path / "logs.db"), LogStorageConfig())
    await store.open()
    try:
        assert store.packed
        await store.write(corpus_records()[:3])
        pid = store.writer_pid
        assert pid is not None
        monkeypatch.setenv("MEPD_PURE", "1")
        os.kill(pid, signal.SIGKILL)
        await until(lambda: store.writer_pid is None, "the store to see its writer die")
        with pytest.raises(sqlite3.OperationalError):  # the batch in flight when it died: the sink retries it
            await store.write(corpus_records()[3:5])
        assert not store.packed
        assert store.writer_pid not in (None, pid)
        await store.write(corpus_records()[3:5])
        assert sorted(r["id"] for r in await store.query(LogQuery())) == [1, 2, 3, 4, 5]
    finally:
        await store.close()
