"""RELP: mepd's relp listener against rsyslog's imrelp, both fed by the same rsyslog omrelp sender.

One rsyslogd reads numbered messages from a datagram socket (a full socket blocks the writer: none lost there)
and forwards them with omrelp (window 128, its default) to the receiver under test: mepd (`proto = "relp"`,
acknowledging once committed to SQLite) or a second rsyslogd (imrelp, writing a file; it acknowledges once
the message is in its main queue, in memory).  Messages/s is count / (last stored - first sent); loss and
duplicates are exact counts read back.  Not a test: the figures depend on the machine and its load.

    PYTHONPATH=. .venv/bin/python bench/syslog/relp.py [--count 100000]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ('template(name="relp5424" type="string" string="<%PRI%>1 %TIMESTAMP:::date-rfc3339% %HOSTNAME%'
            ' %APP-NAME% %PROCID% %MSGID% [mepd@32473 uuid=\\"%uuid%\\"] %msg%")\n')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(cond: Callable[[], object], timeout: float, what: str, every: float = 0.02) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(every)


@contextlib.contextmanager
def process(argv: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sender(d: Path, port: int) -> tuple[list[str], Path]:
    sock = d / "in.sock"
    (d / "work").mkdir()
    (d / "sender.conf").write_text(
        f'global(workDirectory="{d / "work"}")\nmodule(load="imuxsock" SysSock.Use="off")\nmodule(load="omrelp")\n'
        f'input(type="imuxsock" Socket="{sock}" CreatePath="on" RateLimit.Interval="0")\n' + TEMPLATE +
        f'action(type="omrelp" target="127.0.0.1" port="{port}" template="relp5424" queue.type="LinkedList"'
        ' queue.size="500000" action.resumeRetryCount="-1" action.resumeInterval="1")\n')
    return ["rsyslogd", "-n", "-f", str(d / "sender.conf"), "-i", str(d / "sender.pid")], sock


def feed(sock: Path, count: int) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(str(sock))
        for i in range(count):
            s.send(b"<13>relpbench: seq=%09d" % i)


def run(name: str, receiver: list[str], ready: Callable[[], bool], stored: Callable[[], list[str]], d: Path,
        port: int, count: int, env: dict[str, str] | None = None) -> dict[str, float]:
    with process(receiver, d / f"{name}.err", env):
        wait_until(ready, 60, f"{name} to listen")
        argv, sock = sender(d, port)
        with process(argv, d / "sender.err"):
            wait_until(sock.exists, 30, "the sender's socket")
            start = time.monotonic()
            feeder = threading.Thread(target=feed, args=(sock, count))
            feeder.start()
            # Polled every 0.5 s: reading it back costs CPU the receiver would otherwise have.
            wait_until(lambda: len(stored()) >= count, 600, f"{count} messages in {name}", every=0.5)
            elapsed = time.monotonic() - start
            feeder.join()
            seqs = stored()
    return {"rate": count / elapsed, "lost": count - len(set(seqs)), "duplicates": len(seqs) - len(set(seqs))}


def accepting(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def bench_mepd(count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="relpbench-") as tmp:
        d, port = Path(tmp), free_port()
        (d / "mepd.toml").write_text(
            f'[daemon]\nstate_dir = "{d / "state"}"\ncontrol_socket = "{d / "mepd.sock"}"\n[http]\nlisten = ""\n'
            f'[[syslog.listen]]\nproto = "relp"\naddress = "127.0.0.1:{port}"\n')
        db = d / "state" / "logs.db"

        def stored() -> list[str]:
            if not db.exists():
                return []
            with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as conn:
                return [r[0] for r in conn.execute("SELECT message FROM logs WHERE app = 'relpbench'")]

        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        return run("mepd", [sys.executable, "-m", "mepd.cli.mepd", "--config", str(d / "mepd.toml")],
                   lambda: accepting(port), stored, d, port, count, env)


def bench_rsyslog(count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="relpbench-") as tmp:
        d, port = Path(tmp), free_port()
        (d / "rwork").mkdir()
        out = d / "out.log"
        (d / "receiver.conf").write_text(
            f'global(workDirectory="{d / "rwork"}")\nmodule(load="imrelp")\n'
            f'input(type="imrelp" port="{port}" address="127.0.0.1")\n'
            f'action(type="omfile" file="{out}" template="RSYSLOG_FileFormat")\n')

        def stored() -> list[str]:
            if not out.exists():
                return []
            return [line for line in out.read_text(errors="replace").splitlines() if "relpbench" in line]

        return run("rsyslog", ["rsyslogd", "-n", "-f", str(d / "receiver.conf"), "-i", str(d / "receiver.pid")],
                   lambda: accepting(port), stored, d, port, count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    results = {"mepd relp": bench_mepd(args.count), "rsyslog imrelp": bench_rsyslog(args.count)}
    print(f"{args.count} messages, rsyslog omrelp sender, {os.cpu_count()} CPUs, load average {load:.1f} at start")
    for name, r in results.items():
        print(f"{name:16} {r['rate']:9.0f} msg/s  lost {r['lost']:.0f}  duplicates {r['duplicates']:.0f}")
    print(f"ratio mepd / rsyslog: {results['mepd relp']['rate'] / results['rsyslog imrelp']['rate']:.2f}")


if __name__ == "__main__":
    main()
