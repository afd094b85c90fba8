"""RELP with a real rsyslogd (omrelp from Debian's rsyslog-relp): nothing lost and nothing stored twice across
kill -9 of mepd, in clear and over TLS; malformed frames against a live daemon."""

from __future__ import annotations

import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import Mepd, free_port, start_rsyslogd, stop_process, wait_for

MakeMepd = Callable[..., Mepd]

pytestmark = pytest.mark.skipif(
    shutil.which("rsyslogd") is None or not list(Path("/usr/lib").glob("*/rsyslog/omrelp.so")),
    reason="needs rsyslog and rsyslog-relp")

# RFC 5424 with the message's uuid in structured data: what conf/examples/rsyslog-relp.conf sends.
TEMPLATE = ('template(name="relp5424" type="string" string="<%PRI%>1 %TIMESTAMP:::date-rfc3339% %HOSTNAME%'
            ' %APP-NAME% %PROCID% %MSGID% [mepd@32473 uuid=\\"%uuid%\\"] %msg%")\n')
COUNT = 100_000


def relp_listen(port: int, pki: Path | None = None) -> str:
    text = f'[[syslog.listen]]\nproto = "relp"\naddress = "127.0.0.1:{port}"\n'
    if pki is not None:
        text += f'tls_cert = "{pki / "server.pem"}"\ntls_key = "{pki / "server.key"}"\n'
    return text


@pytest.fixture
def rsyslog_relp(short_tmp: Path) -> Iterator[Callable[[int, str], Path]]:
    """A real rsyslogd reading a private datagram socket and forwarding it all with omrelp to 127.0.0.1:port."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(port: int, extra: str = "") -> Path:
        return start_rsyslogd(short_tmp / "rsyslog", 'module(load="omrelp")\n' + TEMPLATE +
                              f'action(type="omrelp" target="127.0.0.1" port="{port}" template="relp5424" {extra}'
                              ' queue.type="LinkedList" queue.size="200000" action.resumeRetryCount="-1"'
                              ' action.resumeInterval="1")\n', procs)

    yield start
    for proc in procs:
        stop_process(proc)


def send_numbered(sock: Path, count: int) -> threading.Thread:
    """Numbered messages into rsyslog's socket, from a thread (a full socket blocks the sender: none lost)."""
    def run() -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(str(sock))
            for i in range(count):
                s.send(b"<13>relptest: n %06d" % i)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def stored(d: Mepd) -> list[str]:
    """The messages in the store, read from its file (mepd may be down)."""
    db = d.root / "state" / "logs.db"
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return [row[0] for row in conn.execute("SELECT message FROM logs WHERE app = 'relptest'")]


def kill_twice_and_check(d: Mepd, sock: Path) -> None:
    sender = send_numbered(sock, COUNT)
    for part in (3, 3 * 2):
        wait_for(lambda part=part: len(stored(d)) >= COUNT * part // 9, timeout=120, what="records stored")
        d.stop(signal.SIGKILL)
        d.start()
    sender.join(timeout=120)
    wait_for(lambda: len(stored(d)) >= COUNT, timeout=120, what=f"{COUNT} records")
    messages = stored(d)  # the last sent are in: what rsyslog resent after the last kill came before them
    assert len(messages) == COUNT, f"{len(messages) - COUNT} stored twice"
    assert sorted(m.strip() for m in messages) == [f"n {i:06d}" for i in range(COUNT)]
    relp = next(c for c in d.mepctl_json("status")["components"] if c["name"].startswith("syslog/relp"))
    assert relp["counters"]["malformed_frames"] == 0


def test_rsyslog_omrelp_every_message_once_across_two_kill_9(
        mepd_factory: MakeMepd, rsyslog_relp: Callable[[int, str], Path]) -> None:
    port = free_port()
    d = mepd_factory(relp_listen(port)).start()
    kill_twice_and_check(d, rsyslog_relp(port, ""))


def test_rsyslog_omrelp_over_tls_every_message_once_across_two_kill_9(
        mepd_factory: MakeMepd, rsyslog_relp: Callable[[int, str], Path], pki: Path) -> None:
    port = free_port()
    d = mepd_factory(relp_listen(port, pki)).start()
    tls = (f'tls="on" tls.caCert="{pki / "ca.pem"}" tls.myCert="{pki / "client.pem"}"'
           f' tls.myPrivKey="{pki / "client.key"}" tls.authMode="certvalid"')
    kill_twice_and_check(d, rsyslog_relp(port, tls))


OFFERS = b"relp_version=0\nrelp_software=test\ncommands=syslog"
OPEN = b"1 open %d %s\n" % (len(OFFERS), OFFERS)


def exchange(port: int, payload: bytes) -> bytes:
    """Send, then read until mepd closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(payload)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        return data


@pytest.mark.parametrize(("payload", "reason"), [
    (OPEN + b"x syslog 5 hello\n", "bad TXNR"),
    (OPEN + b"2 syslog 3 hello\n", "no LF after the 3 bytes of DATALEN"),
    (b"1 syslog 5 hello\n", "'syslog' before open"),
    (OPEN + b"2 syslog 2147483648 ", "bad DATALEN"),
    (OPEN + b"2 syslog 999999999 ", "DATALEN 999999999 is over"),
    (OPEN + b"2 syslog 5 hello3 syslog 5 hello\n", "no LF after the 5 bytes"),
    (OPEN + b"5 syslog 5 hello\n", "TXNR 5 where 2 was expected"),
])
def test_malformed_frames_close_only_their_session(mepd_factory: MakeMepd, payload: bytes, reason: str) -> None:
    port = free_port()
    d = mepd_factory(relp_listen(port)).start()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as good:
        good.sendall(OPEN)
        assert good.recv(4096).startswith(b"1 rsp ")
        exchange(port, payload)  # returns: mepd closed that session
        msg = b"<14>1 - goodhost app - - - still here"
        good.sendall(b"2 syslog %d %s\n" % (len(msg), msg))
        assert good.recv(4096) == b"2 rsp 6 200 OK\n"
    assert d.wait_logs(1, "--host", "goodhost")[0]["message"] == "still here"
    relp = next(c for c in d.mepctl_json("status")["components"] if c["name"].startswith("syslog/relp"))
    assert relp["counters"]["malformed_frames"] == 1
    assert reason in d.stderr()


def test_acknowledged_only_once_stored_and_duplicates_counted(mepd_factory: MakeMepd) -> None:
    port = free_port()
    d = mepd_factory(relp_listen(port)).start()
    msg = b'<14>1 - duphost app - - [mepd@32473 uuid="u1"] once'
    frame = b"%%d syslog %d %s\n" % (len(msg), msg)
    answer = exchange(port, OPEN + frame % 2 + frame % 3 + b"4 close 0\n")
    assert answer.endswith(b"2 rsp 6 200 OK\n3 rsp 6 200 OK\n4 rsp 0\n0 serverclose 0\n")
    assert [r["message"] for r in d.logs("--host", "duphost")] == ["once"]
    relp = next(c for c in d.mepctl_json("status")["components"] if c["name"].startswith("syslog/relp"))
    assert relp["counters"]["duplicates_dropped"] == 1
    assert relp["counters"]["acknowledged"] == 2
