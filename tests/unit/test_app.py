"""The daemon's wiring that needs no running daemon: which RRD layout each kind of key gets."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mepd import config
from mepd.app import App, rrd_layouts
from mepd.model import LogRecord, Sample
from mepd.store.rrd.store import RrdStore, key_path
from tests.helpers import rrdtool_info

T0 = 1_800_000_000


async def test_web_source_rrds_step_at_the_sources_step(tmp_path: Path) -> None:
    """An hourly web source with 5-minute RRDs would store unknown between its samples (heartbeat 10m)."""
    cfg = config.parse({
        "storage": {"rrd": {"step": "5m"}},
        "tail": [{"name": "web", "path": "/a.log", "format": "combined", "step": "1h"}],
    }, str(tmp_path / "mepd.toml"))
    store = RrdStore(str(tmp_path / "rrd"), layouts=rrd_layouts(cfg))
    try:
        result = await store.write([Sample("weblog.web.requests", T0, 3.0), Sample("other.key", T0, 1.0)])
        assert (result.created, result.errors) == (2, [])
        web = await rrdtool_info(key_path(store.root, "weblog.web.requests"))
        other = await rrdtool_info(key_path(store.root, "other.key"))
    finally:
        await store.close()
    assert "step = 3600\n" in web
    assert "ds[value].minimal_heartbeat = 7200\n" in web
    assert "step = 300\n" in other
    assert "ds[value].minimal_heartbeat = 600\n" in other


def web_tails(tmp_path: Path, *names: str) -> str:
    return f'[daemon]\nstate_dir = "{tmp_path}"\n' + "".join(
        f'[[tail]]\nname = "{n}"\npath = "{tmp_path / n}.log"\nformat = "combined"\n' for n in names)


async def test_the_weblog_analyser_receives_only_its_web_sources_records_also_after_a_reload(tmp_path: Path) -> None:
    """Not every syslog and journal record, to discard: 200k syslog records a second would fill its queue."""
    conf = tmp_path / "mepd.toml"
    conf.write_text(web_tails(tmp_path, "web"))
    app = App(config.load(str(conf)))
    app._build_sinks()
    assert app.weblog is not None
    conf.write_text(web_tails(tmp_path, "web", "shop"))
    try:
        assert (await app.reload())[0] == []
        app.pipeline.logs.offer_many([LogRecord(ts=0.0, received=0.0, message=source, source=source)
                                      for source in ("syslog/udp", "journal", "tail:web", "tail:shop")])
    finally:
        await asyncio.gather(*(sup.stop() for _, sup in app.components.values()))
    assert [r.message for r in await app.weblog.logs.get_batch(10, 0)] == ["tail:web", "tail:shop"]
