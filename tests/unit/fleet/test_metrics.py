"""The metrics wire shape, the layouts a message carries, where a message may end, and the edge's disk queue."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from mepd import config
from mepd.errors import ConfigErrors
from mepd.fleet import metrics
from mepd.store.rrd.files import HoltWinters, Layouts, layout


def test_samples_cross_the_wire_exactly_with_unknowns_and_bad_lines_counted() -> None:
    sent = [("snmp.sw1.eth0.in_bps", 1_700_000_000.123, 1234567.891), ("snmp.sw1.eth0.out_bps", 1_700_000_000.123,
                                                                        None), ("host.h.cpu.user", 1.5, 0.1 + 0.2)]
    payload = metrics.encode("web1", sent)
    assert payload.count(b"\n") == 3
    assert b'"node":"web1"' in payload
    samples, bad = metrics.decode(payload + b"not json\n{\"key\": \"k\"}\n\n")
    assert [(s.key, s.ts, s.value) for s in samples] == sent
    assert bad == 2


def test_layouts_round_trip_without_holt_winters_and_default_keys_are_their_own_prefix() -> None:
    snmp = layout(60, (), ("in_bps", "out_bps"))
    layouts = Layouts(layout(300), {"snmp.sw1.": snmp}, [(re.compile("snmp.*"), HoltWinters(86400))])
    assert metrics.layout_of(layouts, "snmp.sw1.eth0.in_bps") == ("snmp.sw1.", snmp)
    assert metrics.layout_of(layouts, "check.ping.up") == ("check.ping.up", layout(300))
    used = dict(metrics.layout_of(layouts, k) for k in ("snmp.sw1.eth0.in_bps", "check.ping.up"))
    assert metrics.decode_layouts(metrics.encode_layouts(used)) == used
    with pytest.raises(ValueError, match="not RRD layouts"):
        metrics.decode_layouts('{"x": {"step": 1}}')


def rows(*spec: tuple[str, float]) -> list[metrics.Row]:
    return [(i, key, ts, 1.0) for i, (key, ts) in enumerate(spec, 1)]


def test_a_message_does_not_end_inside_one_files_row() -> None:
    poll = rows(("snmp.a.eth0.in_bps", 10), ("snmp.a.eth0.out_bps", 10), ("snmp.a.eth1.in_bps", 10),
                ("snmp.a.eth1.out_bps", 10))
    assert metrics.whole_rows(poll) == 2  # eth1's row may have more names still to come
    assert metrics.whole_rows(poll[2:]) == 2  # a row alone is sent whole
    assert metrics.whole_rows(rows(("snmp.a.eth0.in_bps", 10), ("snmp.a.eth0.in_bps", 11))) == 1
    assert metrics.whole_rows([]) == 0


def test_the_queue_keeps_its_epoch_and_pending_range_and_drops_the_oldest_beyond_its_limit(tmp_path: Path) -> None:
    path = str(tmp_path / "q.db")
    q = metrics.SampleQueue(path, limit=5)
    assert q.append([(f"k.{i}", float(i), None if i == 2 else i / 3) for i in range(4)]) == 0
    epoch, pending = q.position()
    assert pending is None
    q.set_pending(1, 3)
    q.close()
    again = metrics.SampleQueue(path, limit=5)
    assert again.position() == (epoch, (1, 3))  # after a restart: the same message again, same id
    assert again.head(10, 3) == [(1, "k.0", 0.0, 0.0), (2, "k.1", 1.0, 1 / 3), (3, "k.2", 2.0, None)]
    again.published(3)
    assert again.position() == (epoch, None)
    assert len(again) == 1
    assert again.append([("k.x", 9.0, 1.0)] * 6) == 2
    assert [r[0] for r in again.head(10)] == [6, 7, 8, 9, 10]
    assert again.oldest() == 9.0
    again.close()
    assert metrics.SampleQueue(str(tmp_path / "other.db"), 5).position()[0] != epoch


def test_publish_takes_metrics_and_the_queue_size_is_checked() -> None:
    cfg = config.parse(tomllib.loads('[fleet]\nservers = ["nats://x:1"]\npublish = ["metrics"]\n'), "/m.toml")
    assert cfg.fleet is not None
    assert cfg.fleet.publish == ("metrics",)
    with pytest.raises(ConfigErrors, match=r"fleet\.metrics_queue_max"):
        config.parse(tomllib.loads('[fleet]\nservers = ["nats://x:1"]\nmetrics_queue_max = 0\n'), "/m.toml")
