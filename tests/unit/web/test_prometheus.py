"""`GET /metrics`'s text, read back by prometheus_client's own parser: families, labels, escaping,
what is left out (unknown, stale, targets in an unknown state), and the daemon's status as counters."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from mepd import __version__
from mepd.analysis.weblog import live as weblog_live
from mepd.api.protocol import DaemonStatus
from mepd.model import Incident, Sample, rfc3339
from mepd.pipeline import Counters, Pipeline
from mepd.sources.snmp.interfaces import METRICS
from mepd.sources.snmp.target import TargetStatus
from mepd.store.rrd.store import Layouts, layout
from mepd.supervisor import ComponentStatus, State, Supervised
from mepd.web import prometheus
from mepd.web.prometheus import Snapshot, render
from tests.helpers import prometheus_samples

NOW = 1_800_000_000.0
STARTED = NOW - 3600
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LAYOUTS = Layouts(layout(300), {"snmp.sw1.": layout(10, group=METRICS)})  # sw1 polled every 10 s
IF_LABELS = {"target": "sw1", "interface": "ge-0-0-1"}


@dataclass
class Polled:
    index: int = 1
    descr: str = "GigabitEthernet0/0/1"
    alias: str = "uplink"
    speed_bps: float = 1e9
    admin: int = 1
    oper: int = 1


@dataclass
class Component:
    name: str
    counters: Counters = field(default_factory=Counters)
    detail: dict[str, object] | None = None

    async def run(self, started: Callable[[], None]) -> None:
        raise NotImplementedError

    def details(self) -> dict[str, object]:
        return self.detail or {}


def component_status(name: str, state: State = State.RUNNING, details: dict[str, object] | None = None,
                     **counts: int) -> ComponentStatus:
    """A component's status as Supervised gives it to `mepctl status`."""
    comp = Component(name, detail=details)
    for counter, n in counts.items():
        comp.counters.inc(counter.replace("__", "."), n)
    sup = Supervised(comp)
    sup.state = state
    return dataclasses.replace(sup.status(), details=details)


def target_details(state: str, last_poll: float | None = None) -> dict[str, object]:
    return TargetStatus(state, "No SNMP response" if state == "unreachable" else None, last_poll, 0.25).to_json()


def daemon_status(components: list[ComponentStatus] | None = None, pipeline: Pipeline | None = None,
                  reload_error: str | None = None) -> DaemonStatus:
    """What App.status() answers, with real pipeline counters."""
    return DaemonStatus(__version__, 1, STARTED, 3600.0, "mepd.toml", components or [],
                        (pipeline or Pipeline()).status(),
                        {"records": 97, "oldest": rfc3339(STARTED + 1), "size_bytes": 8192, "path": "logs.db",
                         "index_backlog": 4000, "index_age": 2.5, "writer_busy": 0.75},
                        {"ok": 2}, reload_error)


def snapshot(samples: Sequence[Sample] = (), status: DaemonStatus | None = None,
             interfaces: Mapping[str, Mapping[str, Any]] | None = None,
             incidents: list[Incident] | None = None) -> Snapshot:
    latest = {s.key: s for s in samples}
    return Snapshot(NOW, status or daemon_status(), list(latest), latest, LAYOUTS, interfaces or {}, incidents)


def families(text: str) -> dict[str, Metric]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(text: str, sample: str, /, **labels: str) -> float | None:
    return prometheus_samples(text).get((sample, frozenset(labels.items())))


def interface_samples(ts: float = NOW - 5, **values: float | None) -> list[Sample]:
    return [Sample(f"snmp.sw1.ge-0-0-1.{name}", ts, v) for name, v in values.items()]


def test_every_family_has_help_type_a_valid_name_and_its_samples_together() -> None:
    pipeline = Pipeline()
    pipeline.log_counters.inc("received", 10)
    status = daemon_status([component_status("syslog/udp 127.0.0.1:514", received=10, dropped__kernel=3),
                            component_status("snmp/sw1", details=target_details("ok", NOW - 5), cycles=4)],
                           pipeline)
    samples = [*interface_samples(in_bps=8e6, out_bps=1e6, oper_up=1.0), Sample("snmp.sw1.cpu", NOW - 5, 7.0),
               Sample("weblog.web.requests", NOW - 100, 42.0), Sample("weblog.web.status_5xx", NOW - 100, 2.0)]
    text = render(snapshot(samples, status, {"sw1": {"ge-0-0-1": Polled()}}, [])).decode()

    assert text.endswith("\n")
    declared: list[str] = []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            declared.append(line.split()[2])
            assert line.split()[3] in ("gauge", "counter"), line
        elif not line.startswith("#"):
            name = re.split(r"[{ ]", line, maxsplit=1)[0]
            assert name == declared[-1], f"{line!r} is not with its family {declared[-1]}"
    assert len(declared) == len(set(declared)), "a family declared twice"
    for name in declared:
        assert NAME.fullmatch(name), name
        assert name.startswith("mepd_"), name
    parsed = families(text)
    for fam in parsed.values():
        assert fam.documentation, fam.name
        assert fam.samples, fam.name
        if fam.type == "counter":
            assert all(s.name == fam.name + "_total" for s in fam.samples), fam.name
    assert {"mepd_snmp_in_bytes_per_second", "mepd_snmp_oper_up", "mepd_snmp_oid", "mepd_weblog_requests",
            "mepd_weblog_responses", "mepd_snmp_target_up", "mepd_snmp_interface_info", "mepd_build_info",
            "mepd_component_state", "mepd_component_received", "mepd_component_dropped_kernel",
            "mepd_pipeline_received", "mepd_incidents_open"} <= set(parsed)
    assert parsed["mepd_component_received"].type == "counter"
    assert parsed["mepd_snmp_in_bytes_per_second"].type == "gauge"


def test_every_interface_and_web_metric_has_its_family() -> None:
    assert set(prometheus.SNMP) == set(METRICS)
    assert {n for n in weblog_live.METRICS if not n.startswith("status_")} == set(prometheus.WEBLOG)


def test_latest_values_by_key_shape() -> None:
    samples = [*interface_samples(in_bps=8e6, out_pps=1234.5, oper_up=0.0),
               Sample("snmp.sw1.cpu", NOW - 5, 7.0),
               Sample("weblog.www.example.org.bytes", NOW - 100, 1e6),
               Sample("weblog.www.example.org.status_4xx", NOW - 100, 3.0),
               Sample("weblog.www.example.org.5xx_ratio", NOW - 100, 0.25),
               Sample("custom.thing", NOW - 100, 1.5)]
    text = render(snapshot(samples)).decode()
    assert value(text, "mepd_snmp_in_bytes_per_second", **IF_LABELS) == 1e6  # bytes, as in_bps / 8
    assert value(text, "mepd_snmp_out_packets_per_second", **IF_LABELS) == 1234.5
    assert value(text, "mepd_snmp_oper_up", **IF_LABELS) == 0.0  # known down: a 0, unlike unknown
    assert value(text, "mepd_snmp_oid", target="sw1", name="cpu") == 7.0
    web = {"source": "www.example.org"}  # a tail name may have dots
    assert value(text, "mepd_weblog_sent_bytes", **web) == 1e6
    assert value(text, "mepd_weblog_responses", **web, **{"class": "4xx"}) == 3.0
    assert value(text, "mepd_weblog_server_error_ratio", **web) == 0.25
    assert value(text, "mepd_metric", key="custom.thing") == 1.5


def test_unknown_and_stale_values_are_left_out_not_zero() -> None:
    step = 10  # sw1's RRD step: rrdtool's heartbeat, after which it stores unknown, is 20 s
    samples = [*interface_samples(in_bps=None, out_bps=5e5),
               *interface_samples(NOW - 2 * step - 1, in_pps=100.0),
               *interface_samples(NOW - 2 * step + 1, out_pps=200.0),
               # default step 300 s; a web source's sample is emitted a grace period after the next step
               Sample("weblog.web.requests", NOW - weblog_live.max_age(300) + 1, 5.0),
               Sample("weblog.web.bytes", NOW - weblog_live.max_age(300) - 1, 5.0)]
    text = render(snapshot(samples)).decode()
    assert value(text, "mepd_snmp_out_bytes_per_second", **IF_LABELS) == 5e5 / 8
    assert value(text, "mepd_snmp_out_packets_per_second", **IF_LABELS) == 200.0
    assert value(text, "mepd_weblog_requests", source="web") == 5.0
    assert "mepd_snmp_in_bytes_per_second" not in text, "an unknown rate is not a 0"
    assert "mepd_snmp_in_packets_per_second" not in text, "older than the heartbeat: rrdtool stores unknown"
    assert "mepd_weblog_sent_bytes" not in text


def test_web_sources_with_dotted_names_each_have_their_own_step() -> None:
    """"www" (10 s) and "www.example" (1 h) share their first two key parts, not their step."""
    layouts = Layouts(layout(300), {"weblog.www.": layout(10), "weblog.www.example.": layout(3600)})
    samples = [Sample("weblog.www.example.requests", NOW - 1800, 7.0), Sample("weblog.www.requests", NOW - 1800, 3.0)]
    for ordered in (samples, samples[::-1]):
        latest = {x.key: x for x in ordered}
        text = render(Snapshot(NOW, daemon_status(), list(latest), latest, layouts, {}, None)).decode()
        assert value(text, "mepd_weblog_requests", source="www.example") == 7.0
        assert value(text, "mepd_weblog_requests", source="www") is None  # 30 minutes old at a 10 s step


def test_label_values_are_escaped() -> None:
    alias = 'to "core" \\ rack 3\nsecond line'
    status = daemon_status([component_status('tail:we"b\\', lines=3),
                            component_status("snmp/sw1", details=target_details("ok", NOW - 5))])
    text = render(snapshot(status=status, interfaces={"sw1": {"ge-0-0-1": Polled(alias=alias)}})).decode()
    assert 'alias="to \\"core\\" \\\\ rack 3\\nsecond line"' in text
    (info,) = families(text)["mepd_snmp_interface_info"].samples
    assert info.labels == {**IF_LABELS, "descr": "GigabitEthernet0/0/1", "alias": alias}
    assert value(text, "mepd_component_lines_total", component='tail:we"b\\') == 3


def test_target_up_and_interface_details_follow_the_target_state() -> None:
    status = daemon_status([
        component_status("snmp/sw1", details=target_details("ok", NOW - 5)),
        component_status("snmp/dead", details=target_details("unreachable")),
        component_status("snmp/broken", State.BACKOFF, details=target_details("starting")),
        component_status("snmp/new", details=target_details("starting")),
    ])
    interfaces = {"sw1": {"ge-0-0-1": Polled(speed_bps=1e9, admin=1)},
                  "dead": {"eth0": Polled(descr="eth0", admin=2)}}
    text = render(snapshot(status=status, interfaces=interfaces)).decode()
    assert value(text, "mepd_snmp_target_up", target="sw1") == 1
    assert value(text, "mepd_snmp_target_up", target="dead") == 0
    assert value(text, "mepd_snmp_target_up", target="broken") == 0  # the poller itself fails
    assert value(text, "mepd_snmp_target_up", target="new") is None  # not polled yet: unknown
    assert value(text, "mepd_snmp_last_poll_timestamp_seconds", target="sw1") == NOW - 5
    assert value(text, "mepd_snmp_last_poll_timestamp_seconds", target="dead") is None  # never answered
    assert value(text, "mepd_snmp_last_poll_duration_seconds", target="dead") == 0.25
    assert value(text, "mepd_snmp_speed_bytes_per_second", **IF_LABELS) == 1e9 / 8
    assert value(text, "mepd_snmp_admin_up", **IF_LABELS) == 1
    assert 'target="dead",interface=' not in text, "what an unreachable target said last is not current"


def test_daemon_status_as_counters_and_states() -> None:
    pipeline = Pipeline()
    pipeline.logs.subscribe("store/logs", 10)
    pipeline.logs.subscribe("alerts", 10)
    pipeline.samples.subscribe("alerts", 100)  # the alert engine has a queue on each channel
    pipeline.samples.subscribe("store/rrd", 100)
    pipeline.logs.offer_many(list(range(15)))  # type: ignore[arg-type]  # 10 queued in each, 5 dropped from each
    pipeline.log_counters.inc("stored", 9)
    fatal = dataclasses.replace(component_status("http/export", State.FATAL), restarts=5)
    status = daemon_status([component_status("syslog/udp 127.0.0.1:514", received=15, dropped__kernel=3,
                                             parse_errors=1), fatal], pipeline, reload_error="bad key")
    text = render(snapshot(status=status)).decode()
    udp = {"component": "syslog/udp 127.0.0.1:514"}
    assert value(text, "mepd_component_received_total", **udp) == 15
    assert value(text, "mepd_component_dropped_kernel_total", **udp) == 3
    assert value(text, "mepd_component_parse_errors_total", **udp) == 1
    assert value(text, "mepd_component_state", **udp, state="running") == 1
    assert value(text, "mepd_component_state", **udp, state="fatal") == 0
    assert value(text, "mepd_component_state", component="http/export", state="fatal") == 1
    assert value(text, "mepd_component_restarts_total", component="http/export") == 5
    assert value(text, "mepd_pipeline_received_total", channel="logs") == 15
    assert value(text, "mepd_pipeline_stored_total", channel="logs") == 9
    assert value(text, "mepd_pipeline_received_total", channel="samples") == 0  # nothing yet is a true 0
    assert value(text, "mepd_pipeline_dropped_total", channel="logs", consumer="alerts") == 5
    assert value(text, "mepd_pipeline_dropped_total", channel="logs", consumer="store/logs") == 5
    assert value(text, "mepd_pipeline_queued", channel="logs", consumer="store/logs") == 10
    assert value(text, "mepd_pipeline_queued", channel="logs", consumer="alerts") == 10
    assert value(text, "mepd_pipeline_queued", channel="samples", consumer="alerts") == 0
    assert value(text, "mepd_pipeline_dropped_total", channel="samples", consumer="store/rrd") == 0  # from the start
    assert value(text, "mepd_logstore_records") == 97
    assert value(text, "mepd_logstore_oldest_timestamp_seconds") == STARTED + 1
    assert value(text, "mepd_logstore_index_backlog_records") == 4000
    assert value(text, "mepd_logstore_index_age_seconds") == 2.5
    assert value(text, "mepd_logstore_writer_busy_ratio") == 0.75
    assert value(text, "mepd_build_info", version=__version__) == 1
    assert value(text, "mepd_start_time_seconds") == STARTED
    assert value(text, "mepd_reloads_total", result="ok") == 2
    assert value(text, "mepd_reloads_total", result="failed") == 0
    assert value(text, "mepd_config_last_reload_successful") == 0


def incident(iid: int, severity: str, state: str = "firing") -> Incident:
    return Incident(iid, f"f{iid}", "r", "metric", state, severity, {}, "", NOW, NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize(("incidents", "expected"), [
    ([], {("critical", "firing"): 0, ("warning", "acknowledged"): 0}),
    ([incident(1, "critical"), incident(2, "critical"), incident(3, "warning", "acknowledged")],
     {("critical", "firing"): 2, ("warning", "acknowledged"): 1, ("info", "firing"): 0}),
])
def test_open_incidents_by_severity_and_state(incidents: list[Incident],
                                              expected: dict[tuple[str, str], int]) -> None:
    text = render(snapshot(incidents=incidents)).decode()
    for (severity, state), n in expected.items():
        assert value(text, "mepd_incidents_open", severity=severity, state=state) == n


def test_no_incident_counts_while_the_alert_engine_is_not_running() -> None:
    assert "mepd_incidents_open" not in render(snapshot(incidents=None)).decode()
