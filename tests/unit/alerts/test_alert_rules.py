"""Rule evaluation with explicit timestamps: for-duration, N samples, hysteresis, sliding window, absence."""

from __future__ import annotations

from typing import Any

from mepd.alerts import rules
from mepd.alerts.rules import Change, Rule
from mepd.config import AlertRuleConfig
from mepd.model import LogRecord, Sample


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
