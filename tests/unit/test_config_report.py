"""`[report]` mail keys: each error names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mepd import config
from mepd.errors import ConfigErrors


def test_mail_defaults(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text('[report]\nmail_to = ["ops@example.org", "Noc <noc@example.org>"]\n')
    cfg = config.load(path).report
    assert cfg.mail_to == ("ops@example.org", "Noc <noc@example.org>")
    assert cfg.mail_command == ("/usr/sbin/sendmail", "-t", "-oi")
    assert cfg.mail_timeout == 60
    assert cfg.sender.startswith("mepd@")


@pytest.mark.parametrize(("text", "expected"), [
    ('mail_to = ["ops"]', 'report.mail_to[0]: expected a mail address like ops@example.org, got "ops"'),
    ('mail_to = ["a@example.org", "b@example.org, c@example.org"]', "report.mail_to[1]: expected one mail address"),
    ('mail_to = ["a@example.org\\nBcc: x@example.org"]', "report.mail_to[0]: expected one mail address"),
    ('mail_from = "mepd"', "report.mail_from: expected a mail address"),
    ('mail_command = ["sendmail", "-t"]', "report.mail_command: the program must be an absolute path"),
    ("mail_command = []", "report.mail_command: must name a program"),
    ('mail_timeout = "0s"', "report.mail_timeout: must be more than 0s"),
    ('mail_to = "ops@example.org"', "report.mail_to: expected"),
])
def test_mail_errors_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "m.toml"
    path.write_text(f"[report]\n{text}\n")
    with pytest.raises(ConfigErrors) as info:
        config.load(path)
    errors = [str(e) for e in info.value.errors]
    assert len(errors) == 1, errors
    assert expected in errors[0]
