"""The daemon's wiring that needs no running daemon: which RRD layout each kind of key gets."""

from __future__ import annotations

from pathlib import Path

from mepd import config
from mepd.app import rrd_layouts
from mepd.model import Sample
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
