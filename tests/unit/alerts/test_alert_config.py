"""`[alert]` config: the issue's example loads as written; each mistake is an error with its key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from mepd import config
from mepd.errors import ConfigErrors

EXAMPLE = '''
[alert]
group_wait = "30s"
repeat_interval = "4h"

[[alert.rule]]
name = "uplink-saturated"
metric = "snmp.core-sw1.*.in_bps"
above = 900e6
clear_below = 800e6
for = "10m"
severity = "warning"

[[alert.rule]]
name = "apache-segfault"
pattern = "exit signal Segmentation fault"
app = "apache2"
count = 3
window = "5m"
severity = "critical"

[[alert.rule.action]]
argv = ["/usr/bin/systemctl", "restart", "apache2"]
timeout = "30s"
cooldown = "10m"

[alert.notify.mqtt]
host = "127.0.0.1"
port = 1883

[alert.notify.webhook]
url = "http://127.0.0.1:9093/hook"
'''


def load(tmp_path: Path, text: str) -> config.Config:
    path = tmp_path / "m.toml"
    path.write_text(text)
    return config.load(path)


def errors_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        load(tmp_path, text)
    return [f"{e.path}: {e.message}" for e in info.value.errors]


def test_issue_example_loads(tmp_path: Path) -> None:
    alert = load(tmp_path, EXAMPLE).alert
    assert (alert.group_wait, alert.repeat_interval) == (30.0, 4 * 3600.0)
    uplink, apache = alert.rule
    assert (uplink.kind, uplink.above, uplink.clear_below, uplink.for_) == ("metric", 900e6, 800e6, 600.0)
    assert (apache.kind, apache.count, apache.window, apache.severity) == ("log", 3, 300.0, "critical")
    assert uplink.action == ()
    [action] = apache.action
    assert (action.argv, action.timeout, action.cooldown) == (("/usr/bin/systemctl", "restart", "apache2"), 30.0, 600.0)
    assert alert.notify.mqtt is not None
    assert (alert.notify.mqtt.host, alert.notify.mqtt.port, alert.notify.mqtt.topic) == (
        "127.0.0.1", 1883, "mep/{host}/incidents/{rule}")
    assert alert.notify.webhook is not None
    assert alert.notify.webhook.url == "http://127.0.0.1:9093/hook"
    hash(alert)  # configs stay hashable for reload diffs


def test_no_alert_section_means_no_rules_and_no_channels(tmp_path: Path) -> None:
    alert = load(tmp_path, "").alert
    assert (alert.rule, alert.notify.mqtt, alert.notify.webhook) == ((), None, None)


@pytest.mark.parametrize(("rule", "expected"), [
    ('pattern = "exit (signal"', "alert.rule[0].pattern: invalid regular expression (RE2 syntax): missing ): exit"),
    ('metric = "snmp.{a,b}.in"\nabove = 1', 'alert.rule[0].metric: unsupported character(s) "{}"'),
    ('metric = "snmp.[ab.in"\nabove = 1', 'alert.rule[0].metric: unclosed "["'),
    ('metric = "k"', "alert.rule[0].above: a metric rule needs exactly one of `above` and `below`"),
    ('metric = "k"\nabove = 1\nbelow = 0', "alert.rule[0].above: a metric rule needs exactly one"),
    ('metric = "k"\nbelow = 1\nclear_below = 0', "alert.rule[0].clear_below: needs `above`"),
    ('metric = "k"\nabove = 10\nclear_below = 20', "alert.rule[0].clear_below: needs `above`, and must not be more"),
    ('metric = "k"\nbelow = 10\nclear_above = 5', "alert.rule[0].clear_above: needs `below`, and must not be less"),
    ('severity = "warning"', "alert.rule[0].metric: a rule needs `metric` with `above` or `below`"),
    ('pattern = "x"\nfor = "5m"', "alert.rule[0].for: only for metric threshold rules, not log rules"),
    ('pattern = "x"\nmetric = "k"', "alert.rule[0].metric: a log pattern rule cannot also watch a metric"),
    ('pattern = "x"\ncount = 0', "alert.rule[0].count: must be at least 1, got 0"),
    ('pattern = "x"\nlog_severity = "loud"', 'alert.rule[0].log_severity: unknown severity "loud"'),
    ('pattern = "x"\nper = ["key"]', "alert.rule[0].per[0]: log rules on logs split by host or app or source"),
    ('metric = "k"\nabove = 1\nper = ["host"]', "alert.rule[0].per[0]: metric rules on metrics split by nothing"),
    ('absent = "5m"\nmetric = "k"\napp = "cron"', "alert.rule[0].absent: watch either a metric glob or log filters"),
    ('metric = "k"\nabove = 1\nsummary = "{key} {nope}"', "alert.rule[0].summary: unknown field {nope}"),
    ('pattern = "x"\nsummary = "{host} {nope}"', "alert.rule[0].summary: unknown field {nope}"),
    ('metric = "k"\nabove = 1\nsummary = "{message}"', "alert.rule[0].summary: unknown field {message}"),
    ('metric = "k"\nabove = 1\nsummary = "{value:d}"', "alert.rule[0].summary: invalid template: ValueError"),
    ('metric = "k"\nabove = 1\nsummary = "{0}"', "alert.rule[0].summary: positional fields"),
    ('metric = "k"\nabove = 1\nlabels = { "bad-name" = "x" }', "alert.rule[0].labels.bad-name: label names are"),
    ('metric = "k"\nabove = 1\nseverity = "huge"', 'alert.rule[0].severity: expected "critical" or "warning"'),
    ('pattern = "x"\ndistinct = "hostname"', 'alert.rule[0].distinct: unknown record field "hostname"; known: host,'),
    ('pattern = "x"\ndistinct = "severity"', 'alert.rule[0].distinct: unknown record field "severity"'),
    ('metric = "k"\nabove = 1\ndistinct = "host"', "alert.rule[0].distinct: only for log pattern rules, not metric"),
    ('absent = "5m"\napp = "cron"\ndistinct = "host"', "alert.rule[0].distinct: only for log pattern rules, not abs"),
    ('pattern = "x"\ndistinct = "host"\nper = ["host"]', "alert.rule[0].distinct: `per` already splits by host"),
    ('pattern = "x"\ndistinct = "host"\ncount = 4097', "alert.rule[0].count: a distinct rule tracks at most 4096"),
    ('pattern = "x"\nsummary = "{distinct} hosts"', "alert.rule[0].summary: unknown field {distinct}"),
    ('pattern = "x"\n[[alert.rule.action]]\nargv = ["systemctl", "restart", "x"]',
     "alert.rule[0].action[0].argv: the program must be an absolute path"),
    ('pattern = "x"\n[[alert.rule.action]]\nargv = "/bin/true"', "alert.rule[0].action[0].argv: expected an array"),
    ('pattern = "x"\n[[alert.rule.action]]\nargv = []', "alert.rule[0].action[0].argv: must name a program"),
    ('pattern = "x"\n[[alert.rule.action]]\nargv = ["/bin/true"]\nattempts = 2',
     "alert.rule[0].action[0].attempts: only for verified steps"),
    ('pattern = "x"\n[[alert.rule.action]]\nargv = ["/bin/true"]\nverify = "1m"\nattempts = 0',
     "alert.rule[0].action[0].attempts: expected 1-100, got 0"),
    ('pattern = "x"\n[[alert.rule.action]]\nargv = ["/bin/true"]\nverify = "1m"\non_resolved = true',
     "alert.rule[0].action[0].on_resolved: a verified step runs on firing"),
    ('pattern = "x"\n[[alert.rule.action]]\nargv = ["/bin/true"]\nverify = "1m"\n[[alert.rule.action]]\n'
     'argv = ["/bin/true"]', "alert.rule[0].action[1].verify: either every action of a rule is a verified step"),
    ('pattern = "x"\nescalate_severity = "critical"', "alert.rule[0].escalate_severity: only for rules whose"),
    ('pattern = "x"\nflap_threshold = -1', "alert.rule[0].flap_threshold: must be 0 (no flap damping) or more"),
    ('pattern = "x"\nflap_window = "8d"', "alert.rule[0].flap_window: expected more than 0s and at most 7d"),
    ('pattern = "x"\nparent = "a b"', 'alert.rule[0].parent: expected a metric key, got "a b"'),
])
def test_rule_errors_name_their_key_path(tmp_path: Path, rule: str, expected: str) -> None:
    errors = errors_of(tmp_path, f'[[alert.rule]]\nname = "r"\n{rule}\n')
    assert any(e.startswith(expected) for e in errors), errors


def test_summary_may_use_rule_and_series_labels(tmp_path: Path) -> None:
    text = ('[[alert.rule]]\nname = "r"\npattern = "x"\nper = ["host"]\nlabels = { team = "ops" }\n'
            'summary = "{count} on {host} for {team} ({labels[team]})"\n')
    assert load(tmp_path, text).alert.rule[0].summary.startswith("{count}")


def test_log_rule_summary_may_use_the_lines_fields(tmp_path: Path) -> None:
    text = ('[[alert.rule]]\nname = "r"\npattern = "x"\n'
            'summary = "{host} {app}[{pid}] {facility}.{line_severity} {msgid} {source} {peer}: {message:.80}"\n')
    assert load(tmp_path, text).alert.rule[0].summary.startswith("{host}")


def test_distinct_rule_loads_with_per_and_its_summary_fields(tmp_path: Path) -> None:
    text = ('[[alert.rule]]\nname = "r"\npattern = "Failed password"\ndistinct = "host"\nper = ["app"]\n'
            'count = 5\nwindow = "5m"\nsummary = "{app}: {distinct:d} hosts ({distinct_values:.60}), last {host}"\n')
    [rule] = load(tmp_path, text).alert.rule
    assert (rule.kind, rule.distinct, rule.per, rule.count) == ("log", "host", ("app",), 5)


def test_commented_rule_examples_in_the_default_config_load(tmp_path: Path) -> None:
    """conf/mepd.toml documents rules in comments: each `#[[alert.rule]]` block, uncommented, is a valid rule."""
    text = (Path(__file__).parents[3] / "conf" / "mepd.toml").read_text()
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for ln in text.splitlines():
        if ln == "#[[alert.rule]]":
            current = []
            blocks.append(current)
        elif current is not None and ln.startswith("#[[alert.rule.action]]"):
            current.append("[[alert.rule.action]]")
        elif current is not None and ln.startswith("#") and not ln.startswith("#["):
            if not ln.startswith("# "):  # "#key = value" is a commented setting, "# text" a comment
                current.append(ln[1:])
        else:
            current = None
    rules = ["[[alert.rule]]\n" + "\n".join(b) for b in blocks]
    loaded = load(tmp_path, "\n".join(rules)).alert.rule
    assert [r.name for r in loaded] == ["uplink-saturated", "ssh-spray", "disk-filling", "uplink-odd", "web-down"]
    assert [(a.verify, a.attempts) for a in loaded[4].action] == [(120.0, 2), (300.0, 1)]


def test_metric_rule_summary_may_name_its_metric(tmp_path: Path) -> None:
    """{metric} is what the rule's pattern of keys is (snmp.*.*.in_bps): filled in, so it must be accepted."""
    text = ('[[alert.rule]]\nname = "r"\nmetric = "snmp.*.*.in_bps"\nabove = 1\n'
            'summary = "{metric}: {key} at {value:g}"\n')
    assert load(tmp_path, text).alert.rule[0].summary.startswith("{metric}")


def test_duplicate_rule_names(tmp_path: Path) -> None:
    text = '[[alert.rule]]\nname = "a"\npattern = "x"\n[[alert.rule]]\nname = "a"\npattern = "y"\n'
    assert errors_of(tmp_path, text) == ['alert.rule[1].name: duplicate of rule[0] ("a")']


def test_channel_errors(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, '''
[alert.notify.mqtt]
host = "127.0.0.1"
topic = "mep/#"
state_topic = "mep/{nope}"
[alert.notify.webhook]
url = "ftp://example.org"
''')
    assert "alert.notify.mqtt.topic: a topic to publish to cannot hold the wildcards + or #" in errors
    assert any(e.startswith("alert.notify.mqtt.state_topic: bad topic pattern (KeyError") for e in errors)
    assert 'alert.notify.webhook.url: expected an http:// or https:// URL, got "ftp://example.org"' in errors


def test_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text('[[alert.rule]]\nname = "r"\npattern = "("\n')
    with pytest.raises(ConfigErrors) as info:
        config.load(path)
    assert str(info.value).startswith(f"{path}: alert.rule[0].pattern: invalid regular expression")


def test_shipped_example_and_default_config_load() -> None:
    root = Path(__file__).parents[3] / "conf"
    example = config.load(root / "examples" / "alerts-apache-restart.toml").alert
    assert [r.name for r in example.rule] == ["web-5xx-burst", "apache-segfault", "apache-silent"]
    assert [r.kind for r in example.rule] == ["metric", "log", "absence"]
    assert example.rule[0].action[0].max_per_hour == 3
    assert example.notify.webhook is not None
    assert example.notify.webhook.format == "alertmanager"
    assert config.load(root / "mepd.toml").alert.group_wait == 30.0
