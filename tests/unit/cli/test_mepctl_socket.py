"""mepctl's socket lookup: daemon.control_socket of --config, read without validating the other sections."""

from __future__ import annotations

from pathlib import Path

import pytest

from mepd import config
from mepd.cli import mepctl
from mepd.errors import ConfigErrors

# A target whose keys_file fails the daemon's check (mepctl's user may not read it, or, as here, it is
# readable by others): the daemon's problem, not a reason for mepctl to look for another socket.
SNMP_WITH_BAD_KEYS = '[[snmp.target]]\nname = "sw1"\nhost = "127.0.0.1"\nkeys_file = "keys.toml"\n'


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEPD_SOCKET", raising=False)
    monkeypatch.delenv("MEPD_CONFIG", raising=False)


def status(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """`mepctl ARGS status`: its exit code (returned, or raised like argparse's usage errors) and stderr."""
    try:
        code = mepctl.main([*args, "status"])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    return code, capsys.readouterr().err.strip()


def test_configured_socket_despite_a_failing_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text('community = "s3cret"\n')
    keys.chmod(0o644)
    cfg = tmp_path / "mepd.toml"
    cfg.write_text(f'[daemon]\ncontrol_socket = "run/ctl.sock"\n{SNMP_WITH_BAD_KEYS}')
    with pytest.raises(ConfigErrors, match="keys_file"):
        config.load(cfg)  # the daemon would refuse this file
    code, err = status(capsys, "--config", str(cfg))
    assert (code, err) == (3, f"mepctl: mepd is not running (no socket at {tmp_path / 'run' / 'ctl.sock'})")


def test_socket_option_still_wins(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "mepd.toml"
    cfg.write_text("not toml")
    code, err = status(capsys, "--config", str(cfg), "--socket", str(tmp_path / "given.sock"))
    assert (code, err) == (3, f"mepctl: mepd is not running (no socket at {tmp_path / 'given.sock'})")


def test_no_daemon_section_is_the_packaged_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "mepd.toml"
    cfg.write_text(SNMP_WITH_BAD_KEYS)
    assert config.control_socket(cfg) == config.DaemonConfig().control_socket


def test_missing_default_config_is_the_packaged_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(mepctl, "DEFAULT_CONFIG", str(tmp_path / "absent.toml"))
    packaged = config.DaemonConfig().control_socket
    code, err = status(capsys)
    assert (code, err) == (3, f"mepctl: mepd is not running (no socket at {packaged})")


@pytest.mark.parametrize(("text", "why"), [
    (None, "no such file"),
    ("[daemon\n", "invalid TOML: "),
    ("[daemon]\ncontrol_socket = 5\n", "daemon.control_socket: expected a path string, got 5"),
    ('daemon = "x"\n', 'daemon: expected a table, got "x"'),
])
def test_unusable_config_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | None,
                                  why: str) -> None:
    cfg = tmp_path / "mepd.toml"
    if text is not None:
        cfg.write_text(text)
    code, err = status(capsys, "--config", str(cfg))
    assert code == 2
    assert err.startswith(f"mepctl: {cfg}: {why}")
    assert err.endswith("cannot find the control socket: name it with --socket PATH or $MEPD_SOCKET")
    assert "\n" not in err


def test_directory_as_config_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = status(capsys, "--config", str(tmp_path))
    assert code == 2
    assert err.startswith(f"mepctl: {tmp_path}: is a directory, expected a TOML file; ")
