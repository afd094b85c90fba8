"""The remote write queue's bound and the samples' series, without a receiver (tests/integration/export has one)."""

from __future__ import annotations

from pathlib import Path

import cramjam

from mepd.config import RemoteWriteConfig
from mepd.export import prompb
from mepd.export.remote_write import DiskQueue, RemoteWrite, request_body
from mepd.model import Sample
from mepd.pipeline import Pipeline


def test_the_queue_keeps_the_newest_queue_max_samples_across_a_restart(tmp_path: Path) -> None:
    queue = DiskQueue(str(tmp_path / "q.db"), limit=5)
    assert queue.append([(b"a", float(i), i) for i in range(4)]) == 0
    assert queue.append([(b"a", float(i), i) for i in range(4, 8)]) == 3
    queue.close()

    reopened = DiskQueue(str(tmp_path / "q.db"), limit=5)
    assert len(reopened) == 5
    head = reopened.head(2)
    assert [(lab, value, ts) for _, lab, value, ts in head] == [(b"a", 3.0, 3), (b"a", 4.0, 4)]
    reopened.delete_through(head[-1][0])
    assert [ts for *_, ts in reopened.head(10)] == [5, 6, 7]
    assert len(reopened) == 3


def test_a_request_groups_samples_by_series_in_order() -> None:
    a, b = prompb.labels((("__name__", "x"), ("node", "n"))), prompb.labels((("__name__", "y"),))
    body = request_body([(1, a, 1.5, 1000), (2, b, 2.0, 1000), (3, a, -1.0, 2000)])
    # Hand-decoded WriteRequest: two TimeSeries, a's with both its samples.
    assert bytes(cramjam.snappy.decompress_raw(body)) == prompb.write_request(
        [(a, [(1.5, 1000), (-1.0, 2000)]), (b, [(2.0, 1000)])])
    assert prompb.labels((("z", "1"), ("a", "2"))) == b"\x0a\x06\x0a\x01a\x12\x012\x0a\x06\x0a\x01z\x12\x011"
    assert prompb.sample(1.0, 300) == b"\x12\x0c\x09" + b"\x00" * 6 + b"\xf0\x3f\x10\xac\x02"


def test_samples_get_the_names_and_labels_of_metrics_plus_node(tmp_path: Path) -> None:
    sub = Pipeline().samples.subscribe("export/remote_write0", 10)
    rw = RemoteWrite(RemoteWriteConfig("http://127.0.0.1:1/api/v1/write"), "export/remote_write0", str(tmp_path),
                     "n1", sub, dict)
    rows = rw._rows([Sample("snmp.r1.eth0.in_bps", 10.5, 800.0), Sample("host.h.fs.root.used_pct", 11.0, 50.0),
                     Sample("check.www.up", 12.0, None)], {"root": "/"})
    assert rows == [
        (prompb.labels((("__name__", "mepd_snmp_in_bytes_per_second"), ("target", "r1"), ("interface", "eth0"),
                        ("node", "n1"))), 100.0, 10500),
        (prompb.labels((("__name__", "mepd_host_filesystem_used_ratio"), ("host", "h"), ("mountpoint", "/"),
                        ("node", "n1"))), 0.5, 11000),
    ]
