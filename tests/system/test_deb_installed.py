"""The .deb installed in a booted Debian 12 and used as an admin does: systemctl, logger, mepctl, journalctl.

One machine for the module: install, start, then each test leaves mepd running.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import ROOT, wait_for
from tests.system.conftest import install, start
from tests.system.machine import Machine, booted

pytestmark = pytest.mark.slow

UNITS = ("mepd.socket", "mepd-tcp.socket", "mepd.service")


@dataclass(slots=True, frozen=True)
class Installed:
    machine: Machine
    enabled: str     # `systemctl is-enabled` of UNITS right after apt-get install
    active: str      # `systemctl is-active` of UNITS right after apt-get install
    user: str        # `id mepd`


@pytest.fixture(scope="module")
def installed(debian: Path, deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    with booted(debian, tmp_path_factory.mktemp("machine")) as machine:
        install(machine, deb)
        enabled = machine.run("systemctl", "is-enabled", *UNITS).stdout
        active = machine.run("systemctl", "is-active", *UNITS).stdout
        user = machine.run("id", "mepd").stdout
        machine.sh("useradd -m -G mepd alice; useradd -m bob")
        start(machine)
        yield Installed(machine, enabled, active, user)


def main_pid(machine: Machine) -> int:
    return int(machine.run("systemctl", "show", "-P", "MainPID", "mepd.service").stdout)


def stored(machine: Machine, text: str) -> list[str]:
    """Messages containing `text`, as alice (group mepd) reads them with mepctl."""
    result = machine.run("mepctl", "logs", "--json", "--grep", text, "--limit", "0", user="alice")
    if result.returncode != 0:
        return []
    return [r["message"] for r in json.loads(result.stdout)]


def test_postinst_creates_the_user_and_enables_without_starting(installed: Installed) -> None:
    assert installed.enabled.split() == ["enabled"] * 3
    assert installed.active.split() == ["inactive"] * 3
    assert re.match(r"uid=\d+\(mepd\) gid=\d+\(mepd\)", installed.user)


def test_started_units_are_active(installed: Installed) -> None:
    result = installed.machine.run("systemctl", "is-active", *UNITS)
    assert result.stdout.split() == ["active"] * 3, result.stdout


def test_logger_over_udp_and_tcp_is_read_back_by_a_member_of_group_mepd(installed: Installed) -> None:
    token = uuid.uuid4().hex
    machine = installed.machine
    machine.sh(f"logger -n 127.0.0.1 -P 514 -d -t app1 udp-{token}; logger -n 127.0.0.1 -P 514 -T -t app1 tcp-{token}")
    found = wait_for(lambda: len(stored(machine, token)) == 2 and stored(machine, token), what="both messages")
    assert sorted(found) == [f"tcp-{token}", f"udp-{token}"]


def test_mepctl_outside_group_mepd_is_refused_with_permission_denied(installed: Installed) -> None:
    result = installed.machine.run("mepctl", "status", user="bob")
    assert result.returncode != 0
    assert "permission denied" in result.stderr
    assert "mepd group" in result.stderr
    assert "not running" not in result.stderr


def test_reload_applies_a_changed_config_without_restarting(installed: Installed, tmp_path: Path) -> None:
    machine = installed.machine
    pid = main_pid(machine)
    token = uuid.uuid4().hex
    machine.sh(f"echo 'first-{token}' > /var/log/reload-test.log; chmod 644 /var/log/reload-test.log;"
               " printf '\\n[[tail]]\\nname = \"reloadtest\"\\npath = \"/var/log/reload-test.log\"\\n"
               "format = \"plain\"\\nstart = \"beginning\"\\n' >> /etc/mepd/mepd.toml;"
               " mepd --check-config /etc/mepd/mepd.toml; systemctl reload mepd")
    assert wait_for(lambda: stored(machine, f"first-{token}"), what="the new [[tail]]'s line")
    assert main_pid(machine) == pid


def test_invalid_config_on_reload_is_refused_and_logged_as_a_warning(installed: Installed) -> None:
    """journalctl -u mepd -p warning shows mepd's own lines, with their priorities; the old config runs on."""
    machine = installed.machine
    pid = main_pid(machine)
    machine.sh("cp /etc/mepd/mepd.toml /root/good.toml; echo 'no_such_key = 1' >> /etc/mepd/mepd.toml;"
               " systemctl reload mepd")

    def refusal() -> list[dict[str, str]]:
        out = machine.run("journalctl", "-u", "mepd", "-p", "warning", "-o", "json", "--no-pager").stdout
        entries = [json.loads(line) for line in out.splitlines()]
        return [e for e in entries if e.get("_PID") == str(pid) and "no_such_key" in e.get("MESSAGE", "")]

    entries = wait_for(refusal, what="mepd's own warning in the journal")
    assert all(int(e["PRIORITY"]) <= 4 for e in entries)
    machine.sh("cp /root/good.toml /etc/mepd/mepd.toml; systemctl reload mepd")
    assert main_pid(machine) == pid
    assert machine.run("systemctl", "is-active", "mepd").stdout.strip() == "active"


def test_kill_9_is_restarted_by_systemd_and_loses_nothing(installed: Installed) -> None:
    """Stored records survive; datagrams sent while mepd is down wait in systemd's socket."""
    machine = installed.machine
    token = uuid.uuid4().hex
    machine.sh(f"for i in $(seq 100); do logger -n 127.0.0.1 -P 514 -T before-{token}-$i; done")
    wait_for(lambda: len(stored(machine, f"before-{token}")) == 100, what="100 records stored")
    pid = main_pid(machine)
    machine.sh("systemctl kill -s KILL mepd;"
               f" for i in $(seq 20); do logger -n 127.0.0.1 -P 514 -d down-{token}-$i; done")
    wait_for(lambda: main_pid(machine) not in (0, pid), 60, "systemd to restart mepd")
    wait_for(lambda: len(stored(machine, f"down-{token}")) == 20, what="the datagrams sent while mepd was down")
    assert len(stored(machine, f"before-{token}")) == 100
    assert int(machine.run("systemctl", "show", "-P", "NRestarts", "mepd").stdout) >= 1


def test_stopped_event_loop_is_killed_by_the_watchdog_and_restarted(installed: Installed) -> None:
    machine = installed.machine
    pid = main_pid(machine)
    watchdog = machine.run("systemctl", "show", "-P", "WatchdogUSec", "mepd").stdout.strip()
    assert watchdog == "30s"
    machine.sh(f"kill -STOP {pid}")
    wait_for(lambda: main_pid(machine) not in (0, pid), 30 + 30, "the watchdog to restart mepd")
    log = machine.run("journalctl", "-u", "mepd", "--no-pager").stdout
    assert "Watchdog timeout" in log
    wait_for(lambda: machine.run("systemctl", "is-active", "mepd").stdout.strip() == "active", what="mepd active")


def test_systemd_analyze_security_is_at_most_the_readme_figure(installed: Installed) -> None:
    readme = (ROOT / "packaging" / "README.md").read_text()
    figure = float(re.search(r"`systemd-analyze security mepd\.service`: (\d+\.\d)", readme)[1])  # type: ignore[index]
    out = installed.machine.run("systemd-analyze", "security", "--no-pager", "mepd.service").stdout
    exposure = float(re.search(r"Overall exposure level for mepd\.service: (\d+\.\d)", out)[1])  # type: ignore[index]
    assert exposure <= figure, out


def records(machine: Machine, text: str, source: str) -> list[dict[str, object]]:
    result = machine.run("mepctl", "logs", "--json", "--grep", text, "--source", source, "--limit", "0")
    return list(json.loads(result.stdout)) if result.returncode == 0 else []


def test_the_containers_rsyslog_forwards_with_the_packaged_example(installed: Installed) -> None:
    """The admin copies the example, names this host as the target, restarts rsyslog."""
    machine = installed.machine
    token = uuid.uuid4().hex
    machine.sh("sed 's/target=\"mepd.example.net\"/target=\"127.0.0.1\"/'"
               " /usr/share/doc/mepd/examples/rsyslog-forward.conf > /etc/rsyslog.d/mepd-forward.conf;"
               " rsyslogd -N1; systemctl restart rsyslog")
    try:
        machine.sh(f"logger -t fwdtest forwarded-{token}")
        found = wait_for(lambda: records(machine, token, "syslog/tcp"), what="the line rsyslog forwarded")
        # rsyslog keeps the space after the tag in %msg% (as tests/integration/deploy finds too).
        assert [(r["app"], str(r["message"]).lstrip(" ")) for r in found] == [("fwdtest", f"forwarded-{token}")]
    finally:
        machine.sh("rm /etc/rsyslog.d/mepd-forward.conf; systemctl restart rsyslog")


def test_the_packaged_journal_source_reads_the_containers_journal_with_units(installed: Installed) -> None:
    machine = installed.machine
    token = uuid.uuid4().hex
    unit = f"jtest-{token[:8]}.service"
    # The writer stays alive until its line is stored: journald names the unit from the sender's
    # cgroup when it reads the line, and finds none once a short-lived sender has exited
    # (CI saw an `echo` lose its _SYSTEMD_UNIT that way).
    machine.sh(f"systemd-run --quiet --unit={unit} systemd-cat -t jtest"
               f" sh -c 'echo journal-{token}; exec sleep infinity'")
    try:
        # systemd's own "Started jtest-....service - ... journal-<token>" line is in the journal too.
        found = wait_for(lambda: [r for r in records(machine, token, "journal") if r["app"] == "jtest"],
                         what="the systemd-cat line")
    finally:
        machine.sh(f"systemctl stop {unit}")
    assert [r["message"] for r in found] == [f"journal-{token}"]
    assert unit in json.dumps(found[0]), found[0]
