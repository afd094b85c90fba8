"""`[host]`: off without the section, its checks, and an SNMP target may not take the host's name."""

from __future__ import annotations

import socket
from pathlib import Path

from mepd import config
from mepd.config import HostConfig
from tests.unit.test_config import errors_of


def test_off_unless_asked_and_named_after_the_machine(tmp_path: Path) -> None:
    path = tmp_path / "mepd.toml"
    path.write_text("")
    assert config.load(path).host == HostConfig()
    assert not HostConfig().enabled
    short = socket.gethostname().split(".")[0]
    assert HostConfig().host_name.replace("_", "") == "".join(c for c in short if c.isalnum() or c == "-")
    assert HostConfig(name="web1").host_name == "web1"


def test_checks(tmp_path: Path) -> None:
    text = ('[host]\nenabled = true\nname = "a.b"\ninterval = "0s"\nexclude = ["{x"]\nmounts_exclude = ["tmp"]\n'
            'rra = ["1d"]\n')
    errors = errors_of(tmp_path, text)
    assert [e.split(": ")[1] for e in errors] == [
        "host.name", "host.interval", "host.exclude[0]", "host.mounts_exclude[0]", "host.rra[0]"]


def test_an_snmp_target_named_like_the_host_is_refused(tmp_path: Path) -> None:
    target = '[[snmp.target]]\nname = "web1"\nhost = "127.0.0.1"\n'
    errors = errors_of(tmp_path, '[host]\nenabled = true\nname = "web1"\n' + target)
    assert len(errors) == 1
    assert "snmp.target[0].name" in errors[0]
    assert "this host's name" in errors[0]
    path = tmp_path / "off.toml"
    path.write_text('[host]\nenabled = false\nname = "web1"\n' + target)
    assert config.load(path).snmp.target[0].name == "web1"
