"""mepd's one-shot web-log analyser vs GoAccess and Analog on the same generated combined log.

    python bench/weblog/bench.py [--lines 1000000] [--seed 1] [--out FILE]

Prints, per tool: wall seconds, lines/s, the largest process's max RSS (from
wait4) and the peak RSS summed over the process tree (sampled every 20 ms:
mepd counts in parallel worker processes), then the ratios.  Run it on a quiet
machine: the figures are wall-clock.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from genlog import lines as gen_lines  # this script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    tool: str
    seconds: float
    max_rss_kib: int
    tree_rss_kib: int


def _tree_rss_kib(root: int) -> int:
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        rss[int(entry)] = int(fields[21]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    total = 0
    for pid, kib in rss.items():
        p = pid
        while p > 1:
            if p == root:
                total += kib
                break
            p = parents.get(p, 0)
    return total


def run(tool: str, argv: list[str]) -> Result:
    peak = 0
    done = threading.Event()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kib(proc.pid))
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{tool} failed with exit code {proc.returncode}: {' '.join(argv)}")
    return Result(tool, seconds, usage.ru_maxrss, max(peak, usage.ru_maxrss))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--cache", default=str(ROOT / "var" / "bench" / "weblog"))
    p.add_argument("--repeat", type=int, default=1, help="runs per tool, round-robin; the fastest counts")
    p.add_argument("--out", help="also append the results to this file")
    args = p.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    log = cache / f"access-{args.lines}-{args.seed}.log"
    if not log.exists():
        print(f"generating {log} ...", flush=True)
        tmp = log.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for line in gen_lines(args.lines, seed=args.seed):
                f.write(line + "\n")
        tmp.rename(log)
    size = log.stat().st_size
    python = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
    cpus = len(os.sched_getaffinity(0))
    runs = [
        (f"mepd ({cpus} workers)", [python, "-m", "mepd.cli.weblog", str(log), "--json"]),
        ("mepd (1 worker)", [python, "-m", "mepd.cli.weblog", str(log), "--json", "--workers", "1"]),
        ("goaccess", [shutil.which("goaccess") or "goaccess", str(log), "--log-format=COMBINED",
                      "--no-global-config", "-o", str(cache / "goaccess.json")]),
        ("analog", [shutil.which("analog") or "analog", "-G", "+C", "LOGFORMAT COMBINED", "+C", "ALL ON",
                    "+C", f"OUTFILE {cache / 'analog.html'}", str(log)]),
    ]
    os.chdir(ROOT)
    best: dict[str, Result] = {}
    for _ in range(args.repeat):  # round-robin, so a burst of load elsewhere hits every tool alike
        for tool, argv in runs:
            r = run(tool, argv)
            if tool not in best or r.seconds < best[tool].seconds:
                best[tool] = r
    results = list(best.values())
    goaccess = next(r for r in results if r.tool == "goaccess")
    analog = next(r for r in results if r.tool == "analog")
    lines = [
        f"bench/weblog: {args.lines:,} combined lines, {size / 1e6:.0f} MB, {cpus} CPUs, "
        f"best of {args.repeat}, load average now {os.getloadavg()[0]:.1f}",
        f"{'tool':<20} {'seconds':>8} {'lines/s':>11} {'max RSS':>9} {'tree RSS':>9} {'vs goaccess':>12} "
        f"{'vs analog':>10}",
    ]
    for r in results:
        lines.append(
            f"{r.tool:<20} {r.seconds:8.2f} {args.lines / r.seconds:11,.0f} {r.max_rss_kib / 1024:7.0f}MB "
            f"{r.tree_rss_kib / 1024:7.0f}MB {goaccess.seconds / r.seconds:11.2f}x {analog.seconds / r.seconds:9.2f}x"
        )
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
