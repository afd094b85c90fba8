"""`[[check]]` sections: each kind, defaults, validation with key paths, and the shipped configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mepd.config import CheckConfig, load, parse
from mepd.errors import ConfigErrors

CONF = Path(__file__).parents[2] / "conf"


def checks(*entries: dict[str, object]) -> tuple[CheckConfig, ...]:
    return parse({"check": list(entries)}, "/etc/mepd/mepd.toml").checks


def errors(*entries: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigErrors) as exc:
        checks(*entries)
    return [str(e) for e in exc.value.args]


def test_the_issue_examples() -> None:
    found = checks(
        {"name": "apache", "systemd_unit": "apache2.service"},
        {"name": "www", "http": "https://127.0.0.1/health", "expect_status": 200, "contains": "ok"},
        {"name": "db-port", "tcp": "127.0.0.1:5432"},
        {"name": "root-fs", "filesystem": "/"},
        {"name": "sshd", "process": "sshd"},
        {"name": "myapp", "pidfile": "run/myapp.pid"},
    )
    assert [(c.kind, c.target) for c in found] == [
        ("systemd_unit", "apache2.service"), ("http", "https://127.0.0.1/health"), ("tcp", "127.0.0.1:5432"),
        ("filesystem", "/"), ("process", "sshd"), ("process", "pidfile /etc/mepd/run/myapp.pid"),
    ]
    assert (found[0].interval, found[0].timeout, found[0].bus) == (30.0, 10.0, "")
    assert (found[1].expect_status, found[1].contains, found[1].tls_verify) == (200, "ok", True)


@pytest.mark.parametrize(("entry", "message"), [
    ({"name": "x"}, "check[0]: a check needs what it watches: one of systemd_unit, http, tcp, filesystem, process"),
    ({"name": "x", "tcp": "127.0.0.1:1", "filesystem": "/"}, "check[0].filesystem: a check watches one thing: tcp"),
    ({"name": "x", "http": "ftp://h/"}, 'check[0].http: expected an http:// or https:// URL, got "ftp://h/"'),
    ({"name": "x", "tcp": "localhost"}, "check[0].tcp: expected host:port"),
    ({"name": "x", "systemd_unit": "apache2"}, 'check[0].systemd_unit: expected a unit name like "apache2.service"'),
    ({"name": "x", "systemd_unit": "a.service", "bus": "tcp:host=h"}, "check[0].bus: expected a D-Bus address"),
    ({"name": "x", "filesystem": "/", "bus": "unix:path=/b"}, "check[0].bus: only used with systemd_unit"),
    ({"name": "x", "tcp": "h:1", "contains": "ok"}, "check[0].contains: only used with http"),
    ({"name": "x", "tcp": "h:1", "tls_verify": False}, "check[0].tls_verify: only used with http"),
    ({"name": "x", "http": "http://h/", "expect_status": 700}, "check[0].expect_status: expected an HTTP status"),
    ({"name": "x", "http": "https://h/", "tls_verify": False, "ca_file": "/etc/hostname"},
     "check[0].ca_file: tls_verify = false accepts any certificate"),
    ({"name": "x", "process": "/usr/sbin/sshd"}, 'check[0].process: expected a program name like "sshd"'),
    ({"name": "x", "filesystem": "/", "interval": "500ms"}, "check[0].interval: must be at least 1s"),
    ({"name": "x", "filesystem": "/", "interval": "5s"}, "check[0].timeout: must be more than 0s and at most the"),
    ({"name": "a.b", "filesystem": "/"}, 'check[0].name: use only letters, digits, "_" and "-", got "a.b"'),
    ({"name": "x", "filesystem": "/", "retries": 1}, "check[0].retries: unknown key"),
])
def test_check_errors_name_the_key(entry: dict[str, object], message: str) -> None:
    found = errors(entry)
    assert any(message in e for e in found), found


def test_duplicate_check_names() -> None:
    assert errors({"name": "a", "filesystem": "/"}, {"name": "a", "tcp": "h:1"}) == [
        "/etc/mepd/mepd.toml: check[1].name: duplicate of check[0]"]


def test_shipped_configs_load() -> None:
    example = load(CONF / "examples" / "monit-restart.toml")
    [check] = example.checks
    assert (check.kind, check.pidfile, check.process, check.interval) == ("process", "/run/myapp.pid", "myapp", 30.0)
    down, still_down = example.alert.rule
    assert (down.metric, down.below, down.samples) == ("check.myapp.up", 1, 1)
    assert (down.action[0].cooldown, down.action[0].max_per_hour) == (60.0, 3)
    assert (still_down.metric, still_down.samples, still_down.severity) == ("check.myapp.up", 5, "critical")
    assert [c.name for c in load(CONF / "dev.toml").checks] == ["dashboard", "root-fs"]
    assert load(CONF / "mepd.toml").checks == ()
