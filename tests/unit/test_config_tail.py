"""`[[tail]]` sections: defaults, validation, and errors naming the key path."""

from __future__ import annotations

import pytest

from mepd.config import TailConfig, parse
from mepd.errors import ConfigErrors


def test_tail_defaults_and_relative_path() -> None:
    entry = {"name": "web", "path": "logs/access.log", "format": "combined"}
    (t,) = parse({"tail": [entry]}, "/etc/mepd/mepd.toml").tail
    assert t == TailConfig(name="web", path="/etc/mepd/logs/access.log", format="combined")
    optional = (t.start, t.rotate_wait, t.max_line_size, t.site_hosts, t.top, t.step)
    assert optional == ("end", 5.0, 65536, (), 10, 300.0)


def test_tail_optional_keys() -> None:
    cfg = parse({"tail": [{"name": "web", "path": "/l/*.log", "start": "beginning", "rotate_wait": "2s",
                           "max_line_size": "1KiB", "site_hosts": ["example.org", "www.example.org"],
                           "top": 20, "step": "1h"}]}, "/c.toml")
    (t,) = cfg.tail
    assert (t.start, t.rotate_wait, t.max_line_size, t.site_hosts, t.top, t.step) == (
        "beginning", 2.0, 1024, ("example.org", "www.example.org"), 20, 3600.0)


@pytest.mark.parametrize(("entry", "message"), [
    ({"name": "web", "path": "/a", "format": "json"},
     'tail[0].format: expected "combined" or "common" or "plain"'),
    ({"name": "web", "path": "/a", "start": "middle"}, 'tail[0].start: expected "end" or "beginning"'),
    ({"name": "we b", "path": "/a"}, "tail[0].name: expected 1-64 letters"),
    ({"path": "/a"}, "tail[0].name: missing required key"),
    ({"name": "web", "path": "/a", "top": 0}, "tail[0].top: must be at least 1"),
    ({"name": "web", "path": "/a", "step": "0s"}, "tail[0].step: must be positive"),
    ({"name": "web", "path": "/a", "max_line_size": 10}, "tail[0].max_line_size: must be at least 256 bytes"),
    ({"name": "web", "path": "/a", "follow": True}, "tail[0].follow: unknown key"),
])
def test_tail_errors_name_the_key(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigErrors) as exc:
        parse({"tail": [entry]}, "/c.toml")
    assert any(message in str(e) for e in exc.value.args), [str(e) for e in exc.value.args]


def test_duplicate_tail_names() -> None:
    with pytest.raises(ConfigErrors) as exc:
        parse({"tail": [{"name": "web", "path": "/a"}, {"name": "web", "path": "/b"}]}, "/c.toml")
    assert [str(e) for e in exc.value.args] == ["/c.toml: tail[1].name: duplicate of tail[0]"]
