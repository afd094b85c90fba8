"""`mepctl status`'s headline: what never reached the store, apart from what one consumer's queue missed.

The status is the real one: a daemon built from a config (not started), with a real UDP listener's counters
and real pipeline queues, turned into JSON as the API answers it; a change of its shape breaks this test."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from mepd import config
from mepd.api import render
from mepd.app import App
from mepd.model import LogRecord
from mepd.store.logs import native
from mepd.supervisor import Supervised


async def real_status(tmp_path: Path) -> dict[str, Any]:
    """100 records offered to a 97-record store queue and a 60-record alerts queue; 7 lost in the kernel."""
    cfg = config.parse({
        "daemon": {"state_dir": str(tmp_path), "control_socket": str(tmp_path / "s")},
        "syslog": {"listen": [{"proto": "udp", "address": "127.0.0.1:514"}]},
        "journal": {"enabled": False},
        "http": {"listen": ""},
    }, str(tmp_path / "m.toml"))
    app = App(cfg)
    await app.logstore.open()
    try:
        (spec,) = app.specs(cfg)
        udp = Supervised(spec.build())
        app.components[spec.key] = (spec.config, udp)
        counters = udp.component.counters
        assert {"received", "dropped.kernel"} <= set(counters.snapshot()), "the names render.status reads"
        counters.inc("received", 100)
        counters.set("dropped.kernel", 7)
        app.pipeline.logs.subscribe("store/logs", 97)
        app.pipeline.logs.subscribe("alerts", 60)
        app.pipeline.logs.offer_many([LogRecord(ts=1.0, received=1.0, message="m", source="syslog/udp")] * 100)
        app.pipeline.log_counters.inc("stored", 97)
        status = (await app.status()).to_json()
    finally:
        await app.logstore.close()
    return dict(json.loads(json.dumps(status)))


async def test_dropped_counts_what_was_not_stored_and_lists_each_queue(tmp_path: Path) -> None:
    lines = render.status(await real_status(tmp_path)).splitlines()
    assert "dropped 10 " in lines[1], "3 not stored + 7 lost in the kernel; the alerts' 40 were stored"
    assert "  by the kernel (UDP receive buffer full): 7" in lines
    assert "  queue full, not seen by store/logs: 3" in lines
    assert "  queue full, not seen by alerts: 40" in lines
    assert "syslog/udp 127.0.0.1:514" in lines[-1]


async def test_records_not_yet_in_the_search_index_are_shown_with_the_oldest_ones_wait(tmp_path: Path) -> None:
    cfg = config.parse({"daemon": {"state_dir": str(tmp_path), "control_socket": str(tmp_path / "s")},
                        "journal": {"enabled": False}, "http": {"listen": ""}}, str(tmp_path / "m.toml"))
    app = App(cfg)
    await app.logstore.open()
    try:
        await app.logstore.write([LogRecord(ts=1.0, received=time.time() - 125, message="m", source="test")] * 3)
        status = dict(json.loads(json.dumps((await app.status()).to_json())))
    finally:
        await app.logstore.close()
    lines = render.status(status).splitlines()
    line = next(x for x in lines if "search index" in x)
    assert line.startswith("  not yet in the search index: 3 records, the oldest waiting 2m")  # 125 s and the test's
    assert line.endswith("s (--grep scans them)")
    assert not any("log writer spends" in x for x in lines), "one small write keeps no writer busy"
    assert status["store"]["logs"]["packed_rows"] is (native.pack is not None)
    status["store"]["logs"]["packed_rows"] = False  # the extension not built, or not loadable by the writer
    assert any(x.startswith("  rows go to the log writer as tuples") for x in render.status(status).splitlines())
    status["store"]["logs"]["packed_rows"] = True
    status["store"]["logs"]["writer_busy"] = 0.78  # why the index waits: a burst is stored first
    assert "  the log writer spends 78% of its time storing" in render.status(status).splitlines()
