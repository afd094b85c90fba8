"""Terminal injection: a syslog sender's ESC, OSC and C1 bytes stored exactly, but printed by mepctl's human
output as visible escapes (`mepctl logs`, `--follow`, `incidents`, `incident`), never raw to the terminal."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable

from tests.helpers import ROOT, Mepd, free_port, syslog_listen, wait_for

MakeMepd = Callable[..., Mepd]
# Set the window title (OSC 0 ... BEL), clear the screen (CSI 2J), and a C1 CSI (U+009B) that turns text red.
HOSTILE = "pwned \x1b]0;owned\x07 \x1b[2J \u009b31m red\x7f \x01"
RAW = ("\x1b", "\x07", "\u009b", "\x7f", "\x01")
SHOWN = r"pwned \x1b]0;owned\x07 \x1b[2J \u009b31m red\x7f \x01"

RULE = """
[alert]
group_wait = "0s"
evaluation_interval = "100ms"
[[alert.rule]]
name = "hostile"
pattern = "pwned"
count = 1
window = "1h"
summary = "{message}"
"""


def send_udp(port: int, datagram: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(datagram, ("127.0.0.1", port))


def assert_escaped(text: str) -> None:
    assert not [c for c in RAW if c in text], repr(text)
    assert SHOWN in text, text


def test_control_characters_from_a_sender_are_escaped_in_human_output(mepd_factory: MakeMepd) -> None:
    port = free_port()
    d = mepd_factory(syslog_listen(port, "udp") + RULE).start()
    with subprocess.Popen([sys.executable, "-m", "mepd.cli.mepctl", "--socket", d.socket, "logs", "--follow"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT) as follow:
        try:
            send_udp(port, b"<13>Oct 11 22:14:15 web1 evil: " + HOSTILE.encode())
            (record,) = d.wait_logs(1)
            assert record["message"] == HOSTILE  # stored exactly; --json prints it exactly (JSON escapes)

            assert follow.stdout is not None
            line = follow.stdout.readline()  # in the first batch (the latest records) or as it is stored
            assert_escaped(line)
            assert line.count("\n") == 1

            assert_escaped(d.mepctl("logs").stdout)
            wait_for(lambda: d.mepctl_json("incidents"), what="an incident from the hostile line")
            assert_escaped(d.mepctl("incidents").stdout)
            iid = d.mepctl_json("incidents")[0]["id"]
            assert_escaped(d.mepctl("incident", str(iid)).stdout)
        finally:
            follow.terminate()
    assert d.stop() == 0
