"""`[logs]` and `[[logs.metric]]`: defaults, and errors naming the key path."""

from __future__ import annotations

import pytest

from mepd.config import parse
from mepd.errors import ConfigErrors


def test_logs_defaults_are_off() -> None:
    logs = parse({}, "/c.toml").logs
    assert (logs.intake, logs.step, logs.top_apps, logs.metric) == (False, 60.0, 10, ())


def test_logs_metric_keys() -> None:
    logs = parse({"logs": {"intake": True, "step": "5m", "metric": [
        {"name": "fw", "pattern": "len=(?P<n>[0-9]+) src=(?P<src>\\S+)", "value": "n", "by": "src",
         "app": "kernel", "severity": "warning"}]}}, "/c.toml").logs
    (m,) = logs.metric
    assert (logs.step, m.value, m.by, m.max_series) == (300.0, "n", "src", 100)


@pytest.mark.parametrize(("metric", "message"), [
    ({"name": "a b", "pattern": "x"}, "logs.metric[0].name: use only letters"),
    ({"name": "a", "pattern": "(x"}, "logs.metric[0].pattern: invalid regular expression"),
    ({"name": "a", "pattern": "(?=x)"}, "logs.metric[0].pattern: invalid regular expression"),  # not RE2
    ({"name": "a", "pattern": "x", "value": "n"}, 'logs.metric[0].value: no named group "n"'),
    ({"name": "a", "pattern": "x", "by": "user"}, "logs.metric[0].by: expected host, app, source"),
    ({"name": "a", "pattern": "x", "severity": "loud"}, "logs.metric[0].severity: unknown severity"),
    ({"name": "a", "pattern": "x", "host": "web{1}"}, "logs.metric[0].host: unsupported character"),
    ({"name": "a", "pattern": "x", "max_series": 0}, "logs.metric[0].max_series: expected 1-10000"),
])
def test_logs_metric_errors_name_the_key(metric: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigErrors) as exc:
        parse({"logs": {"metric": [metric]}}, "/c.toml")
    assert message in str(exc.value)


def test_logs_errors() -> None:
    with pytest.raises(ConfigErrors) as exc:
        parse({"logs": {"step": "0s", "top_apps": 0, "metric": [{"name": "a", "pattern": "x"},
                                                                 {"name": "a", "pattern": "y"}]}}, "/c.toml")
    text = str(exc.value)
    assert "logs.step: must be at least 1s" in text
    assert "logs.top_apps: expected 1-1000" in text
    assert "logs.metric[1].name: duplicate of metric[0]" in text
