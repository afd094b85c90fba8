"""Parents: when a parent target or metric counts as down, up, or not known yet."""

from __future__ import annotations

from mepd.alerts.parents import Topology
from mepd.config import AlertRuleConfig, SnmpTargetConfig
from mepd.model import Incident, Sample

TARGETS = (SnmpTargetConfig(name="core", host="h", interval=10.0, timeout=2.0, retries=1),
           SnmpTargetConfig(name="sw", host="g", depends_on=("core",)),
           SnmpTargetConfig(name="ap", host="a", parent="snmp.sw.ge0.oper_up"))
RULES = (AlertRuleConfig(name="web", metric="probe.web.up", below=1, parent="snmp.core.ge1.oper_up"),)


def incident(key: str, rule: str = "down") -> Incident:
    return Incident(id=1, fingerprint="f", rule=rule, kind="metric", state="firing", severity="warning",
                    labels={"rule": rule, "key": key}, summary="", started=0.0, last_seen=0.0)


def topology(start: float = 0.0) -> Topology:
    t = Topology()
    t.configure(TARGETS, RULES)
    t.start(start)
    return t


def test_a_target_parent_is_down_after_two_intervals_and_its_retries_of_silence() -> None:
    t = topology()
    child = incident("snmp.sw.ge0.oper_up")
    assert t.down_parent(child, 10.0) is None  # not known yet: suppresses nothing, releases nothing
    assert not t.all_up(child, 10.0)
    t.observe(Sample("snmp.core.ge0.in_bps", 0.0, 1.0), 20.0)
    assert t.down_parent(child, 44.0) is None  # 2 x 10s + 2s x 2 tries = 24s
    assert t.down_parent(child, 44.5) == "core"
    assert not t.all_up(child, 44.5)
    t.observe(Sample("snmp.core.ge0.in_bps", 0.0, 1.0), 50.0)  # back: released only after the same silence,
    assert t.down_parent(child, 50.0) is None  # so the children behind it are heard from first
    assert not t.all_up(child, 73.0)
    t.observe(Sample("snmp.core.ge0.in_bps", 0.0, 1.0), 70.0)
    assert t.all_up(child, 74.0)


def test_a_parent_target_never_heard_from_is_down_after_its_silence_from_the_start() -> None:
    t = topology(start=100.0)
    assert t.down_parent(incident("snmp.sw.ge0.in_bps"), 124.5) == "core"


def test_metric_parents_of_targets_and_rules_are_down_at_zero() -> None:
    t = topology()
    ap, web = incident("snmp.ap.wlan0.oper_up"), incident("probe.web.up", rule="web")
    t.observe(Sample("snmp.sw.ge0.oper_up", 1.0, 0.0), 1.0)
    t.observe(Sample("snmp.core.ge1.oper_up", 1.0, 1.0), 1.0)
    assert (t.down_parent(ap, 2.0), t.down_parent(web, 2.0)) == ("snmp.sw.ge0.oper_up", None)
    assert t.all_up(web, 2.0)
    assert t.owner(incident("snmp.sw.ge0.oper_up")) == "snmp.sw.ge0.oper_up"
    assert t.owner(incident("snmp.core.ge5.in_bps")) == "core"
    assert t.owner(incident("snmp.ap.wlan0.oper_up")) is None
    assert Topology.child_name(ap) == "ap"
