"""Where mepd's time goes, from a py-spy raw (collapsed stacks) profile.

    .venv/bin/python bench/syslog/profile_summary.py PROFILE.txt [--top 25]

py-spy samples only threads that are running (not idle), once per thread, so
each thread's share is CPU time.  A sample is put in the bucket of the first
mepd frame from its leaf (stdlib calls such as `re` count for the mepd code
that made them), except json and sqlite, which are named on their own.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

LINE = re.compile(r"^(?P<stack>.*) (?P<n>\d+)$")
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# (path fragment, function or "", bucket): the first match from the leaf wins.
BUCKETS: list[tuple[str, str, str]] = [
    ("json/", "", "json encode/decode"),
    ("mepd/store/logs/worker.py", "index", "sqlite: word index fill (writer process)"),
    ("mepd/store/logs/worker.py", "write", "sqlite: insert batch (writer process)"),
    ("mepd/store/logs/worker.py", "", "writer process: other"),
    ("mepd/store/logs/store.py", "_rows", "store: records -> row tuples"),
    ("mepd/store/logs/store.py", "", "store: other (sink loop, queries)"),
    ("mepd/sources/syslog/_speedups", "", "parse and framing in C"),
    ("mepd/sources/syslog/rfc5424.py", "", "parse: RFC 5424"),
    ("mepd/sources/syslog/rfc3164.py", "", "parse: RFC 3164"),
    ("mepd/sources/syslog/common.py", "", "parse: timestamps, hosts"),
    ("mepd/sources/syslog/parse.py", "", "parse: dispatch"),
    ("mepd/model.py", "", "LogRecord construction"),
    ("mepd/sources/syslog/framing.py", "", "TCP framing (FrameReader)"),
    ("mepd/sources/syslog/server.py", "SyslogIntake.record", "intake: record() glue"),
    ("mepd/sources/syslog/server.py", "", "listener loop (_serve, datagram_received)"),
    ("mepd/pipeline.py", "", "pipeline: channel put/get_batch"),
    ("mepd/api/", "", "control API"),
    ("mepd/cli/", "", ""),  # the roots of every stack: what runs under them alone is the event loop's
    ("mepd/app.py", "run", ""),
    ("mepd/supervisor.py", "", ""),
    ("mepd/", "", "mepd: other"),
]


def frames(stack: str) -> tuple[str, list[tuple[str, str]]]:
    """(thread label, [(function, file)] root first)."""
    parts = stack.split(";")
    thread = parts[0]
    out = []
    for p in parts[1:]:
        m = FRAME.match(p)
        out.append((m.group("func"), m.group("file")) if m else (p, ""))
    return thread, out


def bucket(stack: list[tuple[str, str]], thread: str) -> str:
    for func, file in reversed(stack):
        for frag, fn, name in BUCKETS:
            if frag in file and (not fn or fn == func):
                if name:
                    return name
                break
    return "event loop / asyncio (no mepd frame)" if "MainThread" in thread else "other threads (no mepd frame)"


def summarise(path: Path, top: int) -> str:
    by_bucket: Counter[str] = Counter()
    by_thread: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for raw in path.read_text().splitlines():
        m = LINE.match(raw)
        if not m:
            continue
        n = int(m.group("n"))
        thread, stack = frames(m.group("stack"))
        total += n
        name = thread.split(": ", 1)[-1] if ": " in thread else thread
        by_thread[re.sub(r"_\d+$", "", name)] += n
        by_bucket[bucket(stack, thread)] += n
        if stack:
            func, file = stack[-1]
            self_time[f"{func} ({file})"] += n
        for key in {f"{func} ({file})" for func, file in stack}:
            inclusive[key] += n
    if not total:
        return f"{path}: no samples"

    def pct(n: int) -> str:
        return f"{100 * n / total:.1f}"

    out = [f"{path.name}: {total} samples (running threads only; % of all samples)", "",
           "| thread | % |", "| --- | ---: |"]
    out += [f"| {t} | {pct(n)} |" for t, n in by_thread.most_common()]
    out += ["", "| where (first mepd frame from the leaf) | % |", "| --- | ---: |"]
    out += [f"| {b} | {pct(n)} |" for b, n in by_bucket.most_common()]
    out += ["", f"| top {top} functions, self | % |", "| --- | ---: |"]
    out += [f"| `{f}` | {pct(n)} |" for f, n in self_time.most_common(top)]
    mepd_incl = [(f, n) for f, n in inclusive.most_common() if "mepd/" in f][:top]
    out += ["", f"| top {top} mepd functions, inclusive | % |", "| --- | ---: |"]
    out += [f"| `{f}` | {pct(n)} |" for f, n in mepd_incl]
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("profiles", type=Path, nargs="+")
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args()
    for path in args.profiles:
        print(summarise(path, args.top))
        print()


if __name__ == "__main__":
    main()
