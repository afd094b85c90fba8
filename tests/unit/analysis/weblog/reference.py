"""An independent count of an access log, for the web-log tests to check the analyser against.

The reference count tokenises each line with the csv module (space-separated,
double-quoted, backslash-escaped), parses times with strptime and tallies
with collections.Counter: nothing is shared with the analyser but the file.
"""

from __future__ import annotations

import csv
import posixpath
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.weblog.genlog import lines
from mepd.analysis.weblog.aggregate import Table

SITE = ("www.example.com",)


@dataclass
class Reference:
    requests: int = 0
    nbytes: int = 0
    unparsed: int = 0
    status: Counter[str] = field(default_factory=Counter)
    methods: Counter[str] = field(default_factory=Counter)
    protocols: Counter[str] = field(default_factory=Counter)
    paths: Counter[str] = field(default_factory=Counter)
    path_bytes: Counter[str] = field(default_factory=Counter)
    notfound: Counter[str] = field(default_factory=Counter)
    clients: Counter[str] = field(default_factory=Counter)
    agents: Counter[str] = field(default_factory=Counter)
    referers: Counter[str] = field(default_factory=Counter)
    sites: Counter[str] = field(default_factory=Counter)
    filetypes: Counter[str] = field(default_factory=Counter)
    hourly: Counter[int] = field(default_factory=Counter)
    daily: Counter[str] = field(default_factory=Counter)
    weekday: Counter[int] = field(default_factory=Counter)
    first: float = float("inf")
    last: float = float("-inf")


def reference_count(path: Path) -> Reference:
    ref = Reference()
    with path.open(encoding="utf-8") as f:
        for row in csv.reader(f, delimiter=" ", quotechar='"', escapechar="\\", doublequote=False):
            if not row:
                continue
            if len(row) != 10 or not row[3].startswith("[") or not row[6].isdigit():
                ref.unparsed += 1
                continue
            client, _, _, day, zone, request, status, size, referer, agent = row
            when = datetime.strptime(day[1:] + " " + zone[:-1], "%d/%b/%Y:%H:%M:%S %z")
            ts = when.timestamp()
            nbytes = 0 if size == "-" else int(size)
            ref.requests += 1
            ref.nbytes += nbytes
            ref.first, ref.last = min(ref.first, ts), max(ref.last, ts)
            ref.hourly[int(ts) // 3600 * 3600] += 1
            ref.daily[when.date().isoformat()] += 1
            ref.weekday[when.weekday()] += 1
            ref.status[status] += 1
            words = request.split(" ")
            if len(words) == 3 and words[0].isalpha() and words[0].isupper():
                method, target, proto = words
                url_path = target.split("?")[0]
            else:
                method, proto, url_path = "(invalid)", "(none)", request
            ref.methods[method] += 1
            ref.protocols[proto] += 1
            ref.paths[url_path] += 1
            ref.path_bytes[url_path] += nbytes
            ext = posixpath.splitext(posixpath.basename(url_path))[1][1:].lower()
            ref.filetypes["(directory)" if url_path.endswith("/") else ext if ext.isalnum() else "(none)"] += 1
            if status == "404":
                ref.notfound[url_path] += 1
            ref.clients[client] += 1
            ref.agents[agent] += 1
            if referer != "-" and not referer.startswith("https://www.example.com/"):
                ref.referers[referer] += 1
                ref.sites[referer.split("/")[2] if "://" in referer else "(not a URL)"] += 1
    return ref


def counts(table: Table) -> Counter[str]:
    """Requests per key, backslashes dropped: the csv reader unescapes what the analyser keeps as logged."""
    return Counter({k.replace("\\", ""): v[0] for k, v in table.rows.items()})


def write_access_log(path: Path) -> Path:
    """The bench's generated log, with oddities, and a trailing blank line (not an unparsed line)."""
    with path.open("w", encoding="utf-8") as f:
        for line in lines(30_000, seed=7, days=3.0, oddities=True):
            f.write(line + "\n")
        f.write("\n")
    return path
