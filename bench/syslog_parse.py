"""Microseconds per message for parse_message on typical lines (not a test: figures vary by machine).

CPU time of this process (so other load on the machine matters less), best of
5 runs of 100,000 parses; `record only` is the cost of building the LogRecord
alone, the floor under every line.

    .venv/bin/python -m bench.syslog_parse
"""

from __future__ import annotations

import time
import timeit
from zoneinfo import ZoneInfo

from mepd.model import LogRecord
from mepd.sources.syslog.parse import parse_message

LINES = {
    "bsd": b"<38>Mar  5 11:58:01 bastion sshd[2211]: Accepted publickey for deploy from 198.51.100.20 port 51514 ssh2",
    "rfc5424": b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" '
               b'eventSource="Application" eventID="1011"] \xef\xbb\xbfAn application event log entry...',
    "rfc5424-nosd": b"<14>1 2024-03-05T12:00:00.123456+01:00 web01 nginx 4321 - - GET /index.html 200",
    "cisco": b"<189>123: *Mar  1 18:48:50.483 UTC: %SYS-5-CONFIG_I: Configured from console by vty0 (10.0.0.1)",
    "fortigate": b'<189>date=2024-03-05 time=11:30:09 devname="FGT60E" logid="0000000013" type="traffic"',
}


def main() -> None:
    tz = ZoneInfo("Europe/Paris")
    received = time.time()
    n = 100_000

    def record() -> None:
        LogRecord(ts=received, received=received, message="m", source="syslog/udp", host="h", app="a", peer="p")

    best = min(timeit.repeat(record, number=n, repeat=5, timer=time.process_time))
    print(f"{'record only':14s} {best / n * 1e6:6.2f} µs")
    for name, line in LINES.items():
        def run(line: bytes = line) -> None:
            parse_message(line, received=received, source="syslog/udp", peer="192.0.2.1:514", tz=tz)

        best = min(timeit.repeat(run, number=n, repeat=5, timer=time.process_time))
        print(f"{name:14s} {best / n * 1e6:6.2f} µs/message")


if __name__ == "__main__":
    main()
