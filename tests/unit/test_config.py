"""Config errors: each kind names the file and the key path; all are reported at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mepd import config
from mepd.errors import ConfigErrors
from tests.helpers import ROOT


def errors_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "m.toml"
    path.write_text(text)
    with pytest.raises(ConfigErrors) as info:
        config.load(path)
    return [str(e) for e in info.value.errors]


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text('[daemon]\nstate_dir = "state"\n[storage.logs]\nretention = "7d"\nmax_size = "100MiB"\n')
    cfg = config.load(path)
    assert cfg.daemon.state_dir == str(tmp_path / "state")
    assert cfg.daemon.control_socket == "/run/mepd/mepd.sock"
    assert cfg.storage.logs.retention == 7 * 86400
    assert cfg.storage.logs.max_size == 100 * 2**20
    assert cfg.file == str(path)


@pytest.mark.parametrize(("text", "expected"), [
    ("[daemon]\nbogus = 1\n", "daemon.bogus: unknown key"),
    ("[daemon]\nqueue_size = \"many\"\n", 'daemon.queue_size: expected an integer, got "many"'),
    ("[daemon]\nlog_level = \"loud\"\n", 'daemon.log_level: expected "debug" or "info"'),
    ("[storage.logs]\nretention = \"30 days\"\n", 'storage.logs.retention: expected a duration like "5m"'),
    ("[storage.logs]\nmax_size = \"2 GB please\"\n", 'storage.logs.max_size: expected a size like "2GiB"'),
    ("[storage.logs]\nretention = 30\n", "storage.logs.retention: expected a duration"),
    ('[[syslog.listen]]\nproto = "udp"\naddress = "127.0.0.1"\n',
     "syslog.listen[0].address: expected host:port"),
    ('[[syslog.listen]]\nproto = "udp"\naddress = "127.0.0.1:70000"\n', "syslog.listen[0].address: invalid port"),
    ('[[syslog.listen]]\nproto = "udp"\naddress = "::1:514"\n',
     "syslog.listen[0].address: an IPv6 host goes in brackets"),
    ('[[syslog.listen]]\nproto = "smtp"\naddress = "127.0.0.1:514"\n', 'syslog.listen[0].proto: expected "udp"'),
    ('[[syslog.listen]]\nproto = "udp"\n', "syslog.listen[0].address: missing required key"),
    ('[[syslog.listen]]\nproto = "udp"\naddress = "0.0.0.0:514"\ntimezone = "Mars/Olympus"\n',
     "syslog.listen[0].timezone: unknown time zone"),
    ('[[syslog.listen]]\nproto = "udp"\naddress = "0.0.0.0:514"\n[[syslog.listen]]\nproto = "udp"\n'
     'address = "0.0.0.0:514"\n', "syslog.listen[1].address: duplicate of syslog.listen[0]"),
    ("syslog = 3\n", "syslog: expected a table, got 3"),
    ("[daemon\n", "invalid TOML"),
])
def test_error_names_file_and_key_path(tmp_path: Path, text: str, expected: str) -> None:
    errors = errors_of(tmp_path, text)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{tmp_path / 'm.toml'}: ")
    assert expected in errors[0]


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, '[daemon]\nfoo = 1\nqueue_size = 0\n[storage.logs]\nretention = "x"\n')
    assert [e.split(": ")[1] for e in errors] == ["daemon.foo", "daemon.queue_size", "storage.logs.retention"]


def test_missing_file(tmp_path: Path) -> None:
    assert errors_of_missing(tmp_path / "nope.toml") == [f"{tmp_path / 'nope.toml'}: no such file"]


def errors_of_missing(path: Path) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        config.load(path)
    return [str(e) for e in info.value.errors]


def run_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mepd.cli.mepd", "--check-config", str(path)],
                          capture_output=True, text=True, check=False, cwd=ROOT)


@pytest.mark.parametrize("name", ["mepd.toml", "dev.toml"])
def test_shipped_configs_are_valid(name: str) -> None:
    result = run_check(ROOT / "conf" / name)
    assert (result.returncode, result.stdout) == (0, "ok\n"), result.stderr


def test_check_config_prints_one_line_per_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[daemon]\nfoo = 1\n[storage.logs]\nmax_size = "lots"\n')
    result = run_check(path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines == [
        f"mepd: {path}: daemon.foo: unknown key; known keys here: control_socket, drain_timeout, log_level,"
        " queue_size, state_dir",
        f'mepd: {path}: storage.logs.max_size: expected a size like "2GiB", got "lots"',
    ]


QUOTING = """
[daemon]
queue_size = "many"
log_level = "loud"
[storage.logs]
retention = "30 days"
[storage.rrd]
rrdcached = "tcp:x"
[[syslog.listen]]
proto = "udp"
address = "0.0.0.0:70000"
timezone = "Mars/Olympus"
[[syslog.listen]]
proto = "unix"
address = "rel.sock"
socket_mode = "rw"
[journal]
priority = "loud"
units = ["a b"]
fields = ["message"]
[[snmp.target]]
name = "a b"
host = "h"
rra = ["5m"]
[[tail]]
name = "we b"
path = "/a"
[[alert.rule]]
name = "r r"
metric = "snmp.{a}"
above = 1
labels = { "bad-name" = "x" }
[alert.notify.webhook]
url = "ftp://x"
"""


def test_errors_quote_values_as_toml_does(tmp_path: Path) -> None:
    """One quoting in every message, DESIGN's: double quotes, as the value is written in the file."""
    errors = errors_of(tmp_path, QUOTING)
    assert len(errors) == 18, errors
    assert [e for e in errors if "'" in e] == []
    port = 'syslog.listen[0].address: invalid port "70000" in "0.0.0.0:70000"; expected 1-65535'
    assert f"{tmp_path / 'm.toml'}: {port}" in errors


def test_tls_files_are_loaded_at_check_time(tmp_path: Path, pki: Path) -> None:
    """A missing CA, an empty PEM or a key of another certificate fails the check, naming the key, not the start."""
    (tmp_path / "empty.pem").write_text("")
    errors = errors_of(tmp_path, f'''
[[syslog.listen]]
proto = "tls"
address = "127.0.0.1:6514"
tls_cert = "{pki / "server.pem"}"
tls_key = "{pki / "client.key"}"
[http]
tls_cert = "empty.pem"
tls_key = "{pki / "server.key"}"
[alert.notify.mqtt]
host = "127.0.0.1"
tls = true
ca_file = "no-such-ca.pem"
''')
    prefix = f"{tmp_path / 'm.toml'}: "
    assert sorted(e.removeprefix(prefix).split(":")[0] for e in errors) == [
        "alert.notify.mqtt.ca_file", "http.tls_cert", "syslog.listen[0].tls_cert"]
    assert all("cannot load" in e or "cannot read" in e for e in errors), errors


def test_a_zero_log_retention_is_refused_not_taken_as_delete_everything(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, '[storage.logs]\nretention = "0s"\n')
    assert errors == [f"{tmp_path / 'm.toml'}: storage.logs.retention: must be at least 1m (max_size bounds the store"
                      " too), got 0s"]


def test_listener_limits_are_checked_with_their_key_path(tmp_path: Path) -> None:
    listen = '[[syslog.listen]]\nproto = "tcp"\naddress = "127.0.0.1:5514"\n'
    errors = errors_of(tmp_path, listen + 'max_connections = 0\nhandshake_timeout = "0s"\n')
    assert [e.split(": ")[1] for e in errors] == ["syslog.listen[0].max_connections",
                                                  "syslog.listen[0].handshake_timeout"]
    assert errors_of(tmp_path, listen + 'idle_timeout = "soon"\n')[0].split(": ")[1] == "syslog.listen[0].idle_timeout"


def test_relp_goes_over_tls_given_a_certificate_and_key(tmp_path: Path, pki: Path) -> None:
    """proto "relp" takes the `tls` keys (RELP over TLS); a client CA alone, or a key alone, is an error."""
    relp = '[[syslog.listen]]\nproto = "relp"\naddress = "127.0.0.1:2514"\n'
    (tmp_path / "ok.toml").write_text(relp + f'tls_cert = "{pki / "server.pem"}"\ntls_key = "{pki / "server.key"}"\n')
    assert config.load(tmp_path / "ok.toml").syslog.listen[0].tls
    prefix = f"{tmp_path / 'm.toml'}: syslog.listen[0]."
    assert errors_of(tmp_path, relp + f'tls_client_ca = "{pki / "ca.pem"}"\n') == [
        prefix + 'tls_client_ca: only used with proto = "tls", or "relp" with tls_cert and tls_key']
    assert errors_of(tmp_path, relp + f'tls_key = "{pki / "server.key"}"\n') == [
        prefix + 'tls_cert: required with proto = "relp" over TLS (a PEM file)']
