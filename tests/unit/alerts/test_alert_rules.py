"""Rule evaluation with explicit timestamps: for-duration, N samples, hysteresis, sliding window, distinct values,
absence."""

from __future__ import annotations

from typing import Any

import pytest

from mepd.alerts import rules
from mepd.alerts.rules import Change, Rule
from mepd.config import AlertRuleConfig
from mepd.config.syntax import RECORD_FIELDS
from mepd.model import LogRecord, Sample
from mepd.pipeline import Counters


def rule(now: float = 0.0, **kw: Any) -> Rule:
    return rules.build(AlertRuleConfig(name=kw.pop("name", "r"), **kw), now)


def feed(r: Rule, key: str, points: list[tuple[float, float | None]]) -> list[tuple[float, str]]:
    """(ts, kind) of every change, each sample observed at its own timestamp."""
    out = []
    for ts, value in points:
        out += [(c.ts, c.kind) for c in r.observe_sample(Sample(key, ts, value), ts)]
    return out


def kinds(changes: list[tuple[float, str]]) -> list[str]:
    return [k for _, k in changes if k != "update"]


def line(received: float, message: str, host: str = "web1", app: str = "sshd", severity: int = 6) -> LogRecord:
    return LogRecord(ts=received, received=received, message=message, source="syslog/udp", host=host, app=app,
                     severity=severity)


def test_for_duration_needs_the_whole_duration_of_breaching_samples() -> None:
    r = rule(metric="snmp.sw1.*.in_bps", above=900.0, for_=120.0)
    changes = feed(r, "snmp.sw1.eth0.in_bps", [(0, 950), (60, 950), (119, 999), (120, 950)])
    assert [c for c in changes if c[1] == "fire"] == [(120, "fire")]


def test_for_duration_restarts_after_a_sample_below() -> None:
    r = rule(metric="k", above=900.0, for_=120.0)
    changes = feed(r, "k", [(0, 950), (60, 950), (90, 100), (120, 950), (200, 950), (240, 950)])
    assert [c for c in changes if c[1] == "fire"] == [(240, "fire")]


def test_n_samples_like_monit_cycles() -> None:
    r = rule(metric="k", above=1.0, samples=3)
    assert kinds(feed(r, "k", [(1, 5), (2, 5), (3, 0), (4, 5), (5, 5)])) == []
    assert kinds(feed(r, "k", [(6, 5)])) == ["fire"]


def test_hysteresis_keeps_one_incident_while_hovering_at_the_threshold() -> None:
    hovering = [(t, v) for t, v in enumerate([950, 880, 910, 850, 905, 899, 901, 810], start=1)]
    with_hysteresis = rule(metric="k", above=900.0, clear_below=800.0)
    assert kinds(feed(with_hysteresis, "k", hovering)) == ["fire"]
    assert kinds(feed(with_hysteresis, "k", [(20, 799)])) == ["resolve"]

    without = rule(metric="k", above=900.0)
    assert kinds(feed(without, "k", hovering)) == ["fire", "resolve", "fire", "resolve", "fire", "resolve",
                                                    "fire", "resolve"]


def test_below_with_clear_above() -> None:
    r = rule(metric="ups.battery", below=20.0, clear_above=30.0)
    assert kinds(feed(r, "ups.battery", [(1, 50), (2, 19), (3, 25), (4, 15), (5, 31)])) == ["fire", "resolve"]


def test_glob_selects_keys_and_each_key_is_its_own_series() -> None:
    r = rule(metric="snmp.sw1.*.in_bps", above=10.0)
    fired = []
    for key in ("snmp.sw1.eth0.in_bps", "snmp.sw1.Gi0/1.100.in_bps", "snmp.sw1.eth0.out_bps", "snmp.sw2.eth0.in_bps"):
        fired += [(c.labels["key"], c.kind) for c in r.observe_sample(Sample(key, 1, 11), 1)]
    assert fired == [("snmp.sw1.eth0.in_bps", "fire"), ("snmp.sw1.Gi0/1.100.in_bps", "fire")]


def test_unknown_values_and_old_samples_are_ignored() -> None:
    r = rule(metric="k", above=1.0, samples=2)
    assert kinds(feed(r, "k", [(10, 5), (10, 5), (5, 5), (11, None)])) == []
    assert kinds(feed(r, "k", [(12, 5)])) == ["fire"]


def test_updates_while_firing_carry_value_and_summary() -> None:
    r = rule(metric="k", above=1.0, summary="{key} at {value:.1f} over {threshold:g} ({site})",
             labels={"site": "par"})
    r.observe_sample(Sample("k", 1, 2.0), 1)
    [update] = r.observe_sample(Sample("k", 2, 3.25), 2)
    assert (update.kind, update.value, update.count, update.summary) == ("update", 3.25, 1, "k at 3.2 over 1 (par)")


def test_log_pattern_count_within_sliding_window() -> None:
    r = rule(pattern=r"Failed password for \w+", app="sshd", count=3, window=60.0, attach=2)
    out: list[Change] = []
    for t in (0, 10, 70, 72):  # 0 and 10 have left the window by 72: only 70 and 72 are in [12, 72]
        out += r.observe_log(line(t, f"Failed password for root ({t})"), t)
    assert out == []
    out = r.observe_log(line(75, "Failed password for bob"), 75)
    assert [c.kind for c in out] == ["fire"]
    assert out[0].count == 3
    assert out[0].lines == (
        "1970-01-01T00:01:10.000000Z web1 sshd: Failed password for root (70)",
        "1970-01-01T00:01:12.000000Z web1 sshd: Failed password for root (72)",
    )
    assert r.observe_log(line(76, "Failed password for alice", app="cron"), 76) == []
    assert r.tick(130) == []
    assert [c.kind for c in r.tick(131)] == ["resolve"]


def test_log_window_runs_on_arrival_time_not_on_when_the_line_is_read() -> None:
    r = rule(pattern="x", count=2, window=10.0)
    assert r.observe_log(line(1, "x"), 100) == []  # read 99 s late (the engine was behind): still counts
    assert [c.kind for c in r.observe_log(line(5, "x"), 100)] == ["fire"]


def test_log_window_resolves_when_fewer_than_count_remain() -> None:
    r = rule(pattern="segfault", count=2, window=60.0)
    assert r.observe_log(line(0, "segfault at 0"), 0) == []
    assert [c.kind for c in r.observe_log(line(30, "segfault again"), 30)] == ["fire"]
    assert [c.kind for c in r.observe_log(line(50, "segfault 3"), 50)] == ["update"]
    assert r.tick(90) == []
    assert [c.kind for c in r.tick(91)] == ["resolve"]
    assert r.tick(200) == []


def test_log_summary_shows_the_host_of_the_line_without_per_host() -> None:
    r = rule(pattern="segfault", summary="segfault on {host}")
    [fire] = r.observe_log(line(1, "segfault at 0", host="web7"), 1)
    assert fire.summary == "segfault on web7"


def test_log_summary_shows_the_matching_lines_fields() -> None:
    r = rule(pattern="Failed password", count=2, window=60.0,
             summary="{count} on {host} ({app}[{pid}], {line_severity}/{facility}, {source}): {message} [{severity}]")
    assert r.observe_log(line(1, "Failed password for root"), 1) == []
    [fire] = r.observe_log(LogRecord(ts=2, received=2, message="Failed password for bob", source="syslog/udp",
                                     host="web2", app="sshd", pid="811", facility=4, severity=5), 2)
    assert fire.summary == "2 on web2 (sshd[811], notice/auth, syslog/udp): Failed password for bob [warning]"
    [update] = r.observe_log(LogRecord(ts=3, received=3, message="Failed password for eve", source="tail:auth"), 3)
    assert update.summary == "3 on - (-[-], -/-, tail:auth): Failed password for eve [warning]"  # lacking: -
    [resolve] = r.tick(63)
    assert resolve.summary == "0 on - (-[-], -/-, tail:auth): Failed password for eve [warning]"  # the last line's


def test_log_summary_value_is_the_count_in_updates_too() -> None:
    """{value:.3g} passes the config check; an update used to render the raw template (its value was None)."""
    r = rule(pattern="x", count=2, window=60.0, summary="{value:.3g} lines, last from {host}")
    assert r.observe_log(line(1, "x", host="a"), 1) == []
    [fire] = r.observe_log(line(2, "x", host="b"), 2)
    [update] = r.observe_log(line(3, "x", host="c"), 3)
    assert (fire.summary, update.summary) == ("2 lines, last from b", "3 lines, last from c")


def test_log_summary_after_a_restart_has_no_line_to_show() -> None:
    r = rule(pattern="x", count=1, window=60.0, summary="{rule} on {host}: {message}")
    r.restore({}, 100.0)
    [resolve] = r.tick(161)
    assert resolve.summary == "r on -: -"


def test_log_filters_and_per_host_series() -> None:
    r = rule(pattern="error", host="web*", log_severity="err", per=("host",))
    assert r.observe_log(line(1, "error", host="db1", severity=3), 1) == []
    assert r.observe_log(line(1, "error", host="web1", severity=6), 1) == []
    assert r.observe_log(line(1, "all fine", host="web1", severity=3), 1) == []
    fired = r.observe_log(line(1, "disk error", host="web1", severity=3), 1)
    fired += r.observe_log(line(2, "disk error", host="web2", severity=2), 2)
    assert [(c.kind, dict(c.labels)) for c in fired] == [("fire", {"host": "web1"}), ("fire", {"host": "web2"})]


def test_a_backtracking_pattern_against_a_long_line_returns() -> None:
    """`^(a|a)+$` takes Python's re 2**n steps on n characters (this would not return); RE2 is linear."""
    r = rule(pattern="^(a|a)+$", count=1)
    assert r.observe_log(line(1, "a" * 64 + "b"), 1) == []
    assert [c.kind for c in r.observe_log(line(2, "a" * 64), 2)] == ["fire"]


def test_attached_lines_stop_at_attach_while_firing() -> None:
    r = rule(pattern="x", count=1, window=60.0, attach=2)
    first = r.observe_log(line(1, "x1"), 1)
    more = [c for t in (2, 3, 4) for c in r.observe_log(line(t, f"x{t}"), t)]
    assert len(first[0].lines) == 1
    assert [len(c.lines) for c in more] == [1, 0, 0]


def test_absence_without_per_fires_when_nothing_ever_came() -> None:
    r = rule(now=1000.0, metric="snmp.core-sw1.*", absent=300.0)
    assert r.tick(1299) == []
    [fire] = r.tick(1300)
    assert (fire.kind, fire.value, fire.summary) == ("fire", 300.0, "r: nothing received for 5m")
    assert r.tick(1400) == []
    [resolve] = r.observe_sample(Sample("snmp.core-sw1.eth0.in_bps", 1401, 5.0), 1401)
    assert resolve.kind == "resolve"
    assert r.tick(1500) == []
    assert [c.kind for c in r.tick(1701)] == ["fire"]


def test_absence_per_host_only_for_hosts_that_used_to_send() -> None:
    r = rule(now=0.0, absent=60.0, source="syslog/*", per=("host",))
    r.observe_log(line(10, "hello", host="a"), 10)
    r.observe_log(line(50, "hello", host="b"), 50)
    assert [dict(c.labels) for c in r.tick(70)] == [{"host": "a"}]
    assert [dict(c.labels) for c in r.tick(110)] == [{"host": "b"}]
    assert [(c.kind, dict(c.labels)) for c in r.observe_log(line(111, "back", host="a"), 111)] == [
        ("resolve", {"host": "a"})]


def test_absence_ignores_data_that_does_not_match() -> None:
    r = rule(now=0.0, absent=60.0, app="cron")
    r.observe_log(line(30, "hi", app="sshd"), 30)
    assert [c.kind for c in r.tick(60)] == ["fire"]


def test_reload_keeps_a_firing_series_even_when_the_threshold_changes() -> None:
    old = rule(metric="k", above=10.0)
    feed(old, "k", [(1, 20)])
    new = rule(metric="k", above=15.0, clear_below=5.0)
    new.adopt(old)
    assert new.firing({"key": "k"})
    assert kinds(feed(new, "k", [(2, 8)])) == []
    assert kinds(feed(new, "k", [(3, 4)])) == ["resolve"]


def test_restored_log_incident_resolves_a_window_after_its_last_line() -> None:
    r = rule(pattern="x", count=5, window=60.0)
    r.restore({}, 100.0)
    assert r.firing({})
    assert r.tick(160) == []
    assert [c.kind for c in r.tick(161)] == ["resolve"]


def test_release_lets_a_series_fire_again() -> None:
    r = rule(metric="k", above=1.0)
    assert kinds(feed(r, "k", [(1, 5), (2, 5)])) == ["fire"]
    r.release({"key": "k"})
    assert kinds(feed(r, "k", [(3, 5)])) == ["fire"]


def test_fingerprint_depends_on_rule_and_series_only() -> None:
    assert rules.fingerprint("r", {"key": "a"}) == rules.fingerprint("r", {"key": "a"})
    assert len({rules.fingerprint("r", {"key": "a"}), rules.fingerprint("r", {"key": "b"}),
                rules.fingerprint("s", {"key": "a"})}) == 3


def failed(received: float, host: str, app: str = "sshd", **kw: Any) -> LogRecord:
    return LogRecord(ts=received, received=received, message=f"Failed password for root from {host}",
                     source="syslog/udp", host=host, app=app, **kw)


def observe(r: Rule, records: list[LogRecord]) -> list[Change]:
    return [c for rec in records for c in r.observe_log(rec, rec.received)]


def test_distinct_hosts_fire_at_count_and_a_repeated_host_counts_once() -> None:
    r = rule(pattern="Failed password", distinct="host", count=5, window=300.0,
             summary="{distinct} hosts ({distinct_values}), {count} values, last {host}")
    # Eight lines, four hosts: a line rule with count = 5 would have fired at the fifth line.
    hosts = ["web1", "web1", "web2", "web1", "web3", "web1", "web4", "web4"]
    assert observe(r, [failed(t, h) for t, h in enumerate(hosts)]) == []
    [fire] = observe(r, [failed(10, "web5")])
    assert (fire.kind, fire.value, fire.count) == ("fire", 5.0, 5)
    assert fire.summary == "5 hosts (web2, web3, web1, web4, web5), 5 values, last web5"  # least recently seen first
    assert [ln.rsplit(" ", 1)[1] for ln in fire.lines] == ["web2", "web3", "web1", "web4", "web5"]  # one per host
    [again] = observe(r, [failed(11, "web1")])
    [new] = observe(r, [failed(12, "web6")])
    assert [(c.kind, c.value, c.count) for c in (again, new)] == [("update", 5.0, 0), ("update", 6.0, 1)]
    assert new.summary == "6 hosts (web2, web3, web4, web5, web1, web6), 6 values, last web6"


def test_distinct_values_expire_with_the_window_on_their_newest_line() -> None:
    r = rule(pattern="Failed password", distinct="host", count=3, window=60.0, summary="{distinct}: {distinct_values}")
    assert observe(r, [failed(0, "a"), failed(30, "b"), failed(61, "c")]) == []  # a left the window at 60
    [fire] = observe(r, [failed(62, "a")])  # back: seen again within the window
    assert fire.summary == "3: b, c, a"
    [update] = observe(r, [failed(80, "b")])  # b's newest line is now at 80
    assert update.summary == "3: c, a, b"
    assert r.tick(121) == []  # the window is [61, 121]: c (61), a (62) and b (80) are all in it
    [resolve] = r.tick(122)
    assert (resolve.kind, resolve.value, resolve.summary) == ("resolve", 2.0, "2: a, b")
    assert r.tick(141) == []
    assert r.series == {}  # every value gone: the series is forgotten


def test_distinct_window_runs_on_arrival_time_and_a_late_line_counts_as_the_newest() -> None:
    r = rule(pattern="Failed password", distinct="host", count=2, window=10.0)
    assert r.observe_log(failed(1, "a"), 100) == []  # read 99 s late (the engine was behind): counts at 1
    assert [c.kind for c in r.observe_log(failed(5, "b"), 100)] == ["fire"]
    # a line received before the newest (a clock step) counts as received with it, so it expires last
    late = failed(3, "c")
    assert [c.kind for c in r.observe_log(late, 100)] == ["update"]
    assert r.tick(15) == []  # a (1) has left [5, 15]; b and c (counted at 5) remain
    assert [(c.kind, c.value) for c in r.tick(16)] == [("resolve", 0.0)]


def test_distinct_with_per_counts_within_each_series() -> None:
    r = rule(pattern="Failed password", distinct="host", per=("app",), count=3, window=60.0)
    # three hosts in all, but two for sshd and one for dovecot: neither series has three
    assert observe(r, [failed(1, "a"), failed(2, "b"), failed(3, "c", app="dovecot")]) == []
    fired = observe(r, [failed(4, "a", app="dovecot"), failed(5, "b", app="dovecot"), failed(6, "c")])
    assert [(c.kind, dict(c.labels), c.value) for c in fired] == [
        ("fire", {"app": "dovecot"}, 3.0), ("fire", {"app": "sshd"}, 3.0)]


def test_distinct_ignores_lines_without_the_field() -> None:
    r = rule(pattern="x", distinct="msgid", count=2, summary="{distinct_values}")
    records = [LogRecord(ts=t, received=t, message="x", source="journal") for t in (1, 2, 3)]
    assert observe(r, records) == []
    [fire] = observe(r, [LogRecord(ts=t, received=t, message="x", source="journal", msgid=f"ID{t}") for t in (4, 5)])
    assert fire.summary == "ID4, ID5"


def test_distinct_on_the_lines_severity_and_long_values() -> None:
    r = rule(pattern="x", distinct="line_severity", count=2, summary="{distinct_values}")
    assert observe(r, [line(1, "x", severity=3), line(2, "x", severity=3)]) == []
    assert [c.summary for c in observe(r, [line(3, "x", severity=4)])] == ["err, warning"]
    long = rule(pattern="x", distinct="message", count=2)
    same_start = [line(t, "x" * rules.DISTINCT_VALUE_MAX + str(t)) for t in (1, 2)]
    assert observe(long, same_start) == []  # compared on their first DISTINCT_VALUE_MAX characters


def test_distinct_values_shown_stop_at_ten() -> None:
    r = rule(pattern="Failed", distinct="host", count=12, summary="{distinct_values}")
    [fire] = observe(r, [failed(t, f"h{t}") for t in range(12)])
    assert fire.summary == "h0, h1, h2, h3, h4, h5, h6, h7, h8, h9 and 2 more"


def test_distinct_values_past_the_cap_forget_the_least_recently_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules, "DISTINCT_MAX", 3)
    counters = Counters()
    r = rules.build(AlertRuleConfig(name="r", pattern="Failed", distinct="host", count=3, window=60.0,
                                    summary="{distinct}: {distinct_values}"), 0.0, counters)
    [fire] = observe(r, [failed(1, "a"), failed(2, "b"), failed(3, "c")])
    [update] = observe(r, [failed(4, "d")])
    assert (fire.summary, update.summary, update.count) == ("3: a, b, c", "3: b, c, d", 1)
    assert counters.get("distinct.forgotten") == 1
    assert r.tick(62) == []
    assert [c.kind for c in r.tick(63)] == ["resolve"]  # b (2) has left [3, 63]: only c and d remain


def test_restored_distinct_incident_resolves_a_window_after_its_last_line() -> None:
    r = rule(pattern="Failed", distinct="host", count=5, window=60.0)
    r.restore({}, 100.0)
    assert r.firing({})
    assert [c.kind for c in observe(r, [failed(120, "a")])] == ["update"]
    assert r.tick(160) == []  # held until the incident's last line (100) leaves the window, and a is still in it
    [resolve] = r.tick(161)
    assert (resolve.kind, resolve.value) == ("resolve", 1.0)


def test_reload_between_a_line_count_and_a_distinct_rule_keeps_the_firing_series() -> None:
    old = rule(pattern="Failed", count=1, window=60.0)
    assert [c.kind for c in observe(old, [failed(10, "a")])] == ["fire"]
    new = rule(pattern="Failed", distinct="host", count=3, window=60.0)
    new.adopt(old)
    assert new.firing({})
    assert [c.kind for c in new.tick(71)] == ["resolve"]
    assert [c.kind for c in observe(new, [failed(80, h) for h in "abc"])] == ["fire"]
    back = rule(pattern="Failed", count=1, window=60.0)
    back.adopt(new)
    assert back.firing({})
    assert back.tick(140) == []
    assert [c.kind for c in back.tick(141)] == ["resolve"]


def test_record_values_cover_the_fields_templates_know() -> None:
    assert list(rules.RECORD_VALUES) == list(RECORD_FIELDS)
