"""Several mepd pollers sharing the same targets through JetStream leases (`[fleet] share_polling`).

Starts a nats-server on a free port of 127.0.0.1 (its own store directory; stopped by
its PID at the end) and `--pollers` processes of `mepd_cycle.py --share`, each with its
own RRD directory, as separate machines would have.  Waits until the leases have
settled (every target held by exactly one poller, the same assignment twice in a row),
then runs `--cycles` cycles: every poller polls what it holds at the same moment.  A
cycle's wall time is from the first poller's start to the last poller's end
(CLOCK_MONOTONIC is one clock for all processes).

Then `--alone` rounds in which each poller polls what it holds alone, one poller after
the other (the others idle but for their lease rounds): what each would take on a
machine of its own.  Each round starts with one mepd polling every target alone
(`mepd_cycle.py --driven`, its RRDs created before the pollers start), so the fleet's
cycle on separate machines, the slowest poller alone, is compared with one mepd's cycle
measured the same way in the same rounds.  The agents are still this machine's,
answering one poller at a time.  Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"nats-server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            time.sleep(0.05)  # polling a condition (the port answers), with a deadline
        else:
            return
    raise SystemExit("nats-server does not answer")


class Poller:
    def __init__(self, node: str, args: argparse.Namespace, url: str | None, work: Path) -> None:
        """A poller sharing the targets through the nats-server at `url`; None: one mepd polling them all."""
        self.node = node
        role = ["--share", url, "--node", node] if url else ["--driven"]
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "mepd_cycle.py"), "--rrd", str(work / f"rrd-{node}"), "--hosts", *args.hosts,
             *role, "--interval", str(args.interval),
             *(["--profile", str(Path(args.profile) / f"{node}.prof")] if args.profile else [])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def send(self, command: str) -> None:
        stdin: IO[str] | None = self.proc.stdin
        assert stdin is not None
        stdin.write(command + "\n")
        stdin.flush()

    def answer(self) -> Any:
        stdout: IO[str] | None = self.proc.stdout
        assert stdout is not None
        line = stdout.readline()
        if not line:
            raise SystemExit(f"poller {self.node} exited with {self.proc.wait()}")
        return json.loads(line)


def assignment(pollers: list[Poller]) -> dict[str, list[str]]:
    for p in pollers:
        p.send("held")
    return {p.node: p.answer()["held"] for p in pollers}


def settled(held: dict[str, list[str]], targets: int) -> bool:
    names = [t for ts in held.values() for t in ts]
    counts = [len(ts) for ts in held.values()]
    return len(names) == len(set(names)) == targets and max(counts) - min(counts) <= 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, help="a directory for the RRDs and nats-server's store")
    ap.add_argument("--hosts", nargs="+", required=True)
    ap.add_argument("--pollers", type=int, default=3)
    ap.add_argument("--cycles", type=int, default=4, help="cycle 1 creates the RRDs; the others are steady state")
    ap.add_argument("--interval", type=float, default=8.0,
                    help="the targets' interval: leases are renewed every quarter of it (short, so they settle fast)")
    ap.add_argument("--settle", type=float, default=180.0, help="seconds the leases may take to settle")
    ap.add_argument("--alone", type=int, default=3, help="rounds of each poller polling its share alone, in turn")
    ap.add_argument("--profile", metavar="DIR", help="each poller's cProfile after cycle 1 to DIR/<node>.prof")
    args = ap.parse_args()
    work = Path(args.work)
    port = free_port()
    nats = subprocess.Popen(["nats-server", "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(work / "js")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pollers: list[Poller] = []
    one = Poller("one", args, None, work)
    try:
        one.send("go")  # creates its RRDs, before the pollers start
        one.answer()
        wait_for_port(port, nats, time.monotonic() + 30)
        pollers = [Poller(f"p{i}", args, f"nats://127.0.0.1:{port}", work) for i in range(args.pollers)]
        began = time.monotonic()
        deadline, last = began + args.settle, None
        while True:
            held = assignment(pollers)
            if settled(held, len(args.hosts)) and held == last:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the leases did not settle in {args.settle:.0f}s: {held}")
            last = held if settled(held, len(args.hosts)) else None
            time.sleep(args.interval / 4)  # one lease round; the condition is checked again with a deadline
        settle_s = time.monotonic() - began
        cycles = []
        for n in range(1, args.cycles + 1):
            if n > 1:
                time.sleep(2)  # a later poll, as the next cycle would be (RRDs take one update a second); not timed
            held = assignment(pollers)
            for p in pollers:
                p.send("go")
            parts = [p.answer() for p in pollers]
            wall = max(p["end"] for p in parts) - min(p["start"] for p in parts)
            complete = settled(held, len(args.hosts))
            cycles.append({"cycle": n, "wall_s": round(wall, 3), "complete": complete, "pollers": parts})
        alone = []
        for n in range(1, args.alone + 1):
            held = assignment(pollers)
            parts = []
            for p in [one, *pollers]:
                time.sleep(2)  # the others idle; a later poll than this poller's last (RRDs: one update a second)
                p.send("go")
                parts.append(p.answer())
            alone.append({"round": n, "complete": settled(held, len(args.hosts)), "pollers": parts})
        for p in [one, *pollers]:
            p.send("end")
        totals = [p.answer() for p in pollers]
        one.answer()
        print(json.dumps({"pollers": args.pollers, "settle_s": round(settle_s, 1), "cycles": cycles, "alone": alone,
                          "totals": totals}))
    finally:
        for p in [one, *pollers]:
            if p.proc.poll() is None:
                p.proc.terminate()
            p.proc.wait()
        nats.terminate()
        nats.wait()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(HERE.parents[1]))
    main()
