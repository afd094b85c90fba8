"""The systemd units of units/: systemd's own verifier and security review, and their contract with mepd."""

from __future__ import annotations

import configparser
import os
import re
import tomllib
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.integration.deploy.tools import VENV_BIN, in_mount_namespace, run, tool

UNITS = ROOT / "units"
UNIT_FILES = sorted([*UNITS.glob("*.service"), *UNITS.glob("*.socket")])
MAN = ROOT / "packaging" / "deb" / "man"


def unit(name: str) -> configparser.RawConfigParser:
    """A unit file as sections of keys; repeated keys (ListenStream=...) keep the last value."""
    parser = configparser.RawConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(re.sub(r"\\\n", " ", (UNITS / name).read_text()))
    return parser


@pytest.fixture
def dev_tree(tmp_path: Path) -> Path:
    """A tree shaped like the package's with /usr/bin/mepd pointing to this checkout's venv, and the man pages."""
    (tmp_path / "opt" / "mepd").mkdir(parents=True)
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    (tmp_path / "usr" / "bin" / "mepd").symlink_to(VENV_BIN / "mepd")
    for page, section in (("mepd.8", "man8"), ("mepctl.1", "man1")):
        (tmp_path / "usr" / "share" / "man" / section).mkdir(parents=True)
        (tmp_path / "usr" / "share" / "man" / section / page).write_bytes((MAN / page).read_bytes())
    return tmp_path


def test_systemd_analyze_verify_passes_on_every_unit(dev_tree: Path) -> None:
    """verify checks ExecStart= exists and man: links resolve, so both are provided as installed."""
    assert len(UNIT_FILES) == 4
    result = in_mount_namespace(dev_tree, f"{tool('systemd-analyze')} verify {' '.join(map(str, UNIT_FILES))}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""


@pytest.mark.skipif(os.path.exists("/usr/bin/mepd"), reason="mepd is installed on this host")
def test_verify_fails_without_the_executable() -> None:
    """The check above is real: on the bare host, the missing /usr/bin/mepd is an error."""
    result = run(tool("systemd-analyze"), "verify", "--man=no", str(UNITS / "mepd.service"))
    assert result.returncode != 0
    assert "/usr/bin/mepd is not executable" in result.stderr


@pytest.mark.parametrize("name", ["mepd.service", "mepd-rrdcached.service"])
def test_security_exposure_is_low(name: str) -> None:
    """systemd's offline review scores exposure 0-10; 2.0 or less is "OK"/"SAFE"."""
    result = run(tool("systemd-analyze"), "security", "--offline=true", "--threshold=20", str(UNITS / name))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    assert level is not None
    assert float(level.group(1)) <= 2.0


def test_service_is_the_notify_daemon_the_issue_describes() -> None:
    service = unit("mepd.service")["Service"]
    assert service["Type"] == "notify"
    assert service["WatchdogSec"]
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["Restart"] == "on-failure"
    assert (service["User"], service["Group"]) == ("mepd", "mepd")
    assert set(service["SupplementaryGroups"].split()) == {"systemd-journal", "adm"}
    assert service["CapabilityBoundingSet"] == ""
    assert service["ExecStart"].split()[:3] == ["/usr/bin/mepd", "--config", "/etc/mepd/mepd.toml"]
    requires = unit("mepd.service")["Unit"]["Requires"].split()
    assert sorted(requires) == ["mepd-tcp.socket", "mepd.socket"]


def test_directories_match_the_packaged_config() -> None:
    """StateDirectory/RuntimeDirectory are what conf/mepd.toml and the sysusers/tmpfiles snippets use."""
    cfg = tomllib.loads((ROOT / "conf" / "mepd.toml").read_text())
    service = unit("mepd.service")["Service"]
    assert cfg["daemon"]["state_dir"] == f"/var/lib/{service['StateDirectory']}"
    assert os.path.dirname(cfg["daemon"]["control_socket"]) == f"/run/{service['RuntimeDirectory']}"
    sysusers = [ln.split() for ln in (UNITS / "mepd.sysusers").read_text().splitlines() if ln and ln[0] != "#"]
    assert [(f[0], f[1], f[-1]) for f in sysusers] == [("u", "mepd", "/var/lib/mepd")]
    tmpfiles = [ln.split() for ln in (UNITS / "mepd.tmpfiles").read_text().splitlines() if ln and ln[0] != "#"]
    assert ["d", "/var/lib/mepd", "0750", "mepd", "mepd", "-"] in tmpfiles


def test_socket_names_and_ports_match_the_listen_entries() -> None:
    """mepd finds each inherited socket by its FileDescriptorName: the names must be the config's fd_name."""
    listens = tomllib.loads((ROOT / "conf" / "mepd.toml").read_text())["syslog"]["listen"]
    by_name = {entry["fd_name"]: entry for entry in listens if entry.get("fd_name")}
    sockets = {}
    for name in ("mepd.socket", "mepd-tcp.socket"):
        section = unit(name)["Socket"]
        assert section["Service"] == "mepd.service"
        kind, port = ("udp", section["ListenDatagram"]) if "ListenDatagram" in section else (
            "tcp", section["ListenStream"])
        sockets[section["FileDescriptorName"]] = (kind, port)
    assert sockets == {"syslog-udp": ("udp", "514"), "syslog-tcp": ("tcp", "514")}
    for fd_name, (kind, port) in sockets.items():
        assert by_name[fd_name]["proto"] == kind
        assert by_name[fd_name]["address"].rsplit(":", 1)[1] == port


HARDENING = re.compile(r"^(Protect|Private|Restrict|Capability|AmbientCap|NoNewPriv|SystemCall|Memory|Lock|"
                       r"RemoveIPC|Tasks|UMask|Supplementary)")


@pytest.mark.parametrize("name", ["mepd.service", "mepd-rrdcached.service"])
def test_every_hardening_directive_is_explained(name: str) -> None:
    """Each hardening line sits in a paragraph that opens with a comment saying why."""
    unexplained = []
    commented = False
    for line in (UNITS / name).read_text().splitlines():
        if not line.strip():
            commented = False
        elif line.startswith("#"):
            commented = True
        elif HARDENING.match(line) and not commented:
            unexplained.append(line)
    assert unexplained == []
