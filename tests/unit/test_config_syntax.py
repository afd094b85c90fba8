"""Label matchers (Alertmanager's four operators), globs and summary templates."""

from __future__ import annotations

import re

import pytest

from mepd.config.syntax import compile_glob, glob_error, parse_matchers, render, template_error


def test_matchers_all_operators() -> None:
    ms = parse_matchers('rule=uplink, host=~"web[0-9]+", severity!=info, app!~cron|anacron')
    labels = {"rule": "uplink", "host": "web12", "severity": "warning", "app": "sshd"}
    assert all(m.matches(labels) for m in ms)
    assert [str(m) for m in ms] == ["rule=uplink", "host=~web[0-9]+", "severity!=info", "app!~cron|anacron"]
    assert not ms[1].matches({"host": "xweb1"})  # anchored, as in Alertmanager
    assert not ms[3].matches({"app": "cron"})
    assert ms[2].matches({})  # a missing label is ""


def test_quoted_regex_may_hold_commas() -> None:
    [m] = parse_matchers('key=~"a{1,2}"')
    assert m.matches({"key": "aa"})


@pytest.mark.parametrize(("text", "message"), [
    ("", "expected at least one matcher"),
    ("rule", "bad matcher 'rule'"),
    ("host=~(", "bad regular expression in matcher 'host=~('"),
    ("9x=1", "bad matcher '9x=1'"),
    ("host=~(a)\\1", "bad regular expression in matcher 'host=~(a)\\\\1': invalid escape sequence"),
])
def test_bad_matchers(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        parse_matchers(text)


def test_a_backtracking_matcher_against_a_long_value_returns() -> None:
    """`(a|a)+` takes Python's re 2**n steps on n characters (this would not return); RE2 is linear."""
    [m] = parse_matchers("host=~(a|a)+")
    assert not m.matches({"host": "a" * 64 + "b"})
    assert m.matches({"host": "a" * 64})


def test_globs() -> None:
    assert compile_glob("snmp.*.in_bps").match("snmp.sw1.Gi0/1.100.in_bps")
    assert not compile_glob("snmp.*.in_bps").match("snmp.sw1.in_bps.x")
    assert compile_glob("web[12]").match("web2")
    assert glob_error("web[12]") is None
    assert glob_error("a b") is not None


def test_render_falls_back_instead_of_failing() -> None:
    assert render("{key} at {value:.1f}", {"key": "k", "value": 2.25}) == "k at 2.2"
    assert render("{value:.1f}", {"rule": "r", "value": None}) == "r: {value:.1f} (value None)"
    assert template_error("{value:.1f} {host}", ()) is None
