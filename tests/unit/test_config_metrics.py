"""`[[metrics.remote_write]]`'s checks."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mepd.config import parse
from mepd.errors import ConfigErrors


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        parse(tomllib.loads(text), "m.toml")
    return [str(e).removeprefix("m.toml: ") for e in info.value.errors]


def test_a_remote_write_parses(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    cfg = parse(tomllib.loads(f'[[metrics.remote_write]]\nurl = "http://127.0.0.1:9090/api/v1/write"\n'
                              f'basic_auth = {{ user = "u", password_file = "{secret}" }}\nbatch = 10\n'), "m.toml")
    (rw,) = cfg.metrics.remote_write
    assert (rw.basic_auth and rw.basic_auth.user, rw.batch, rw.queue_max, rw.timeout) == ("u", 10, 1_000_000, 30.0)


def test_remote_write_errors(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    token.chmod(0o600)
    assert errors(f'[[metrics.remote_write]]\nurl = "127.0.0.1:9090"\nbatch = 0\nqueue_max = 0\n'
                  f'[[metrics.remote_write]]\nurl = "http://a/w"\nbearer_token_file = "{token}"\n'
                  f'basic_auth = {{ user = "u", password_file = "{token}" }}\ncert = "{token}"\n') == [
        'metrics.remote_write[0].url: expected an http:// or https:// URL, got "127.0.0.1:9090"',
        "metrics.remote_write[0].batch: must be at least 1, got 0",
        "metrics.remote_write[1].bearer_token_file: choose basic_auth or bearer_token_file, not both",
        "metrics.remote_write[1].key: a client certificate needs both cert and key",
    ]
    assert errors('[[metrics.remote_write]]\nurl = "http://a/w"\n' * 2) == [
        "metrics.remote_write[1].url: duplicate of remote_write[0]"]
