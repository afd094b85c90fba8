"""`mepctl status`'s headline: what never reached the store, apart from what one consumer's queue missed."""

from __future__ import annotations

from mepd.api import render


def test_dropped_counts_what_was_not_stored_and_lists_each_queue() -> None:
    status = {
        "version": "0", "pid": 1, "uptime": 5, "config": "m.toml",
        "pipeline": {"logs": {"received": 100, "stored": 97,
                              "dropped": {"queue_full": {"store/logs": 3, "alerts": 40}}}},
        "store": {"logs": {"records": 97, "size_bytes": 4096, "oldest": None}},
        "components": [{"name": "syslog/udp 127.0.0.1:514", "state": "running", "since": "2026-11-29T08:00:00+00:00",
                        "restarts": 0, "counters": {"received": 100, "dropped.kernel": 7}}],
    }
    lines = render.status(status).splitlines()
    assert "dropped 10 " in lines[1], "3 not stored + 7 lost in the kernel; the alerts' 40 were stored"
    assert "  by the kernel (UDP receive buffer full): 7" in lines
    assert "  queue full, not seen by store/logs: 3" in lines
    assert "  queue full, not seen by alerts: 40" in lines
