"""The metric list's fallback to the files: each key's last stored value, one rrdtool info per file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mepd.api.metrics import info_float, stored_latest
from mepd.model import Sample
from mepd.store.rrd import RrdStore, build_layouts

T0 = 1_800_000_000
GROUP = ("in_bps", "out_bps", "oper_up")


async def test_stored_latest_reads_each_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layouts = build_layouts(10, [("snmp.sw.", 10, (), GROUP)])
    written = RrdStore(str(tmp_path / "rrd"), layouts=layouts)
    try:
        await written.write([Sample(f"snmp.sw.{i}.{n}", T0 + 10, None if n == "oper_up" else 5.5 + j)
                             for i in ("eth0", "eth1") for j, n in enumerate(GROUP)]
                            + [Sample("weblog.web.requests", T0 + 20, 12.0)])
    finally:
        written.close()
    restarted = RrdStore(written.root, layouts=layouts)  # nothing in `latest` yet
    calls: list[str] = []
    info = restarted.info

    async def counted(key: str) -> dict[str, Any]:
        calls.append(key)
        return await info(key)

    monkeypatch.setattr(restarted, "info", counted)
    try:
        found = await stored_latest(restarted, await restarted.list_keys())
        assert len(calls) == 3  # two interface files and one web-log file, for seven keys
        assert await stored_latest(restarted, ["snmp.sw.eth9.in_bps", "not a key"]) == {}  # no file: left out
    finally:
        restarted.close()
    assert found == {
        "snmp.sw.eth0.in_bps": Sample("snmp.sw.eth0.in_bps", T0 + 10, 5.5),
        "snmp.sw.eth0.out_bps": Sample("snmp.sw.eth0.out_bps", T0 + 10, 6.5),
        "snmp.sw.eth0.oper_up": Sample("snmp.sw.eth0.oper_up", T0 + 10, None),  # stored unknown stays unknown
        "snmp.sw.eth1.in_bps": Sample("snmp.sw.eth1.in_bps", T0 + 10, 5.5),
        "snmp.sw.eth1.out_bps": Sample("snmp.sw.eth1.out_bps", T0 + 10, 6.5),
        "snmp.sw.eth1.oper_up": Sample("snmp.sw.eth1.oper_up", T0 + 10, None),
        "weblog.web.requests": Sample("weblog.web.requests", T0 + 20, 12.0),
    }


def test_info_float_reads_numbers_and_unknown() -> None:
    assert [info_float(v) for v in ("5.5", "U", 1800000000, float("nan"), None, "-nan")] == [
        5.5, None, 1800000000.0, None, None, None]
