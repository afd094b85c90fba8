"""`GET /v1/checks`' rows, read from the daemon's status: a check's details, or why there are none."""

from __future__ import annotations

import time

from mepd.api.checks import check_states
from mepd.api.protocol import DaemonStatus
from mepd.pipeline import PipelineStatus
from mepd.supervisor import ComponentStatus, State


def status(*components: ComponentStatus) -> DaemonStatus:
    return DaemonStatus("0", 1, 0.0, 1.0, "/c.toml", components, PipelineStatus({}, {}, {}), {}, {}, None)


def test_checks_come_from_their_components_by_name() -> None:
    now = time.time()
    ok = {"name": "www", "kind": "http", "state": "ok", "message": "HTTP 200 OK in 3 ms", "values": {"up": 1.0}}
    rows = check_states(status(
        ComponentStatus("check/www", State.RUNNING, now, 0, None, {}, ok),
        ComponentStatus("snmp/sw1", State.RUNNING, now, 0, None, {}, {"state": "ok"}),
        ComponentStatus("check/db", State.FATAL, now, 5, "RuntimeError: bug", {}, {"name": "db", "state": "ok"}),
        ComponentStatus("check/new", State.STARTING, now, 0, None, {}, None),
    ))
    assert rows == [
        {"name": "db", "state": "error", "message": "the check itself failed: RuntimeError: bug"},
        {"name": "new", "state": "starting", "message": "", "values": {}},
        ok,
    ]
