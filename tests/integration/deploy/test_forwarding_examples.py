"""conf/examples/rsyslog-forward.conf, used by a real rsyslogd that forwards to a real mepd.

Only the target, the port and the spool folder are replaced (the snippet says
to set them); everything else is the file as shipped.  The syslog-ng snippet is
not run: syslog-ng and rsyslog cannot be installed together on Debian.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT, Mepd, free_port, stop_process, syslog_listen, wait_for
from tests.integration.deploy.tools import run, tool

MakeMepd = Callable[..., Mepd]
SNIPPET = ROOT / "conf" / "examples" / "rsyslog-forward.conf"


def rsyslog_config(workdir: Path, port: int, input_socket: Path) -> str:
    snippet = SNIPPET.read_text()
    for shipped, local in (("mepd.example.net", "127.0.0.1"), ('port="514"', f'port="{port}"'),
                           ("/var/spool/rsyslog", str(workdir))):
        assert shipped in snippet
        snippet = snippet.replace(shipped, local)
    return (
        'module(load="imuxsock" SysSock.Use="off")\n'
        f'input(type="imuxsock" Socket="{input_socket}" CreatePath="on")\n'
        + snippet
    )


def test_rsyslog_accepts_the_snippet(short_tmp: Path) -> None:
    conf = short_tmp / "rsyslog.conf"
    conf.write_text(rsyslog_config(short_tmp, 5514, short_tmp / "in.sock"))
    result = run(tool("rsyslogd"), "-N1", "-f", str(conf))
    assert result.returncode == 0, result.stderr


@pytest.fixture
def rsyslogd(short_tmp: Path) -> Iterator[Callable[[int], Path]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(port: int) -> Path:
        d = short_tmp / "rsyslog"
        d.mkdir()
        sock = d / "in.sock"
        conf = d / "rsyslog.conf"
        conf.write_text(rsyslog_config(d, port, sock))
        with (d / "stderr").open("wb") as err:
            procs.append(subprocess.Popen([tool("rsyslogd"), "-n", "-f", str(conf), "-i", str(d / "pid")],
                                          stdout=subprocess.DEVNULL, stderr=err))
        wait_for(sock.exists, what="rsyslogd's input socket")
        return sock

    yield start
    for proc in procs:
        stop_process(proc)


def test_rsyslog_forwards_with_the_snippet(mepd_factory: MakeMepd, rsyslogd: Callable[[int], Path]) -> None:
    port = free_port()
    d = mepd_factory(syslog_listen(port, "tcp")).start()
    sock = rsyslogd(port)
    lines = ["first line", "second line with \"quotes\" and [brackets]"]
    for line in lines:
        subprocess.run(["logger", "-u", str(sock), "-t", "fwdex", "-p", "local3.err", line], check=True, timeout=30)
    records = d.wait_logs(len(lines), "--app", "fwdex")
    assert sorted(r["message"].lstrip(" ") for r in records) == sorted(lines)
    assert {(r["facility"], r["severity"], r["source"], r["host"]) for r in records} == {
        ("local3", "err", "syslog/tcp", socket.gethostname())}
    assert all(r["parse_error"] is None for r in records)


RELP_SNIPPET = ROOT / "conf" / "examples" / "rsyslog-relp.conf"


def test_rsyslog_forwards_over_relp_with_its_snippet(mepd_factory: MakeMepd, short_tmp: Path) -> None:
    """The RELP snippet as shipped (target, port and spool folder replaced) is accepted by rsyslogd -N1 and
    delivers to mepd's relp listener, the uuid taken out of the structured data."""
    port = free_port()
    d = mepd_factory(f'[[syslog.listen]]\nproto = "relp"\naddress = "127.0.0.1:{port}"\n').start()
    snippet = RELP_SNIPPET.read_text()
    for shipped, local in (("mepd.example.net", "127.0.0.1"), ('port="2514"', f'port="{port}"'),
                           ("/var/spool/rsyslog", str(short_tmp))):
        assert shipped in snippet
        snippet = snippet.replace(shipped, local)
    sock = short_tmp / "in.sock"
    conf = short_tmp / "rsyslog.conf"
    conf.write_text('module(load="imuxsock" SysSock.Use="off")\n'
                    f'input(type="imuxsock" Socket="{sock}" CreatePath="on")\n' + snippet)
    result = run(tool("rsyslogd"), "-N1", "-f", str(conf))
    assert result.returncode == 0, result.stderr
    with (short_tmp / "stderr").open("wb") as err:
        proc = subprocess.Popen([tool("rsyslogd"), "-n", "-f", str(conf), "-i", str(short_tmp / "pid")],
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_for(sock.exists, what="rsyslogd's input socket")
        subprocess.run(["logger", "-u", str(sock), "-t", "relpex", "-p", "local3.err", "over relp"], check=True,
                       timeout=30)
        record = d.wait_logs(1, "--app", "relpex")[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert (record["message"].lstrip(" "), record["source"], record["facility"]) == ("over relp", "syslog/relp",
                                                                                     "local3")
    assert record["sd"] == {}
