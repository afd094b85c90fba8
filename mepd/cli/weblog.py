"""`mepctl weblog ...`: the report from the daemon's hourly aggregates, and the one-shot file analyser.

`mepctl weblog analyze FILE` (also `python -m mepd.cli.weblog FILE`) runs
here, without the daemon: it reads the file itself, in parallel processes
(`mepd.analysis.weblog.scan`).  `mepctl weblog report NAME` asks the daemon.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC
from typing import Any

from mepd.analysis.weblog.aggregate import DEFAULT_KEEP
from mepd.analysis.weblog.render import render
from mepd.analysis.weblog.report import DEFAULT_TOP, report_from_aggregate
from mepd.analysis.weblog.scan import analyze_file
from mepd.api.client import Client


def add_commands(sub: Any) -> None:
    """`weblog report` and `weblog analyze` under mepctl's subcommands."""
    p = sub.add_parser("weblog", help="web access-log reports (Analog/GoAccess style)")
    wsub = p.add_subparsers(dest="weblog_command", required=True, metavar="report|analyze")
    q = wsub.add_parser("report", help="report on a [[tail]] web source from the daemon's hourly aggregates")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--since", metavar="T", help='from T: "24h" (ago), an RFC 3339 time...')
    q.add_argument("--until", metavar="T")
    q.add_argument("--top", type=int, metavar="N")
    fmt = q.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON document")
    fmt.add_argument("--html", action="store_true", help="one self-contained HTML page")
    q.set_defaults(func=cmd_report)
    q = wsub.add_parser("analyze", help="analyse an access-log file now, without the daemon")
    add_analyze_arguments(q)
    q.set_defaults(local=cmd_analyze)


async def cmd_report(client: Client, args: argparse.Namespace) -> int:
    params = {name: str(getattr(args, name)) for name in ("since", "until", "top") if getattr(args, name) is not None}
    data = await client.request("GET", f"/v1/weblog/{args.name}", params)
    print(render(data, as_json=args.json, as_html=args.html), end="")
    return 0


async def cmd_analyze(args: argparse.Namespace) -> int:
    return run_analyze(args)


def add_analyze_arguments(p: argparse.ArgumentParser) -> None:
    """The options of the one-shot analyser, for `mepctl weblog analyze` and `python -m mepd.cli.weblog`."""
    p.add_argument("file", help='access log; "-" reads stdin, *.gz is decompressed')
    p.add_argument("--format", choices=("combined", "common"), default="combined")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON document on stdout")
    out.add_argument("--html", action="store_true", help="one self-contained HTML page on stdout")
    p.add_argument("--top", type=int, default=DEFAULT_TOP, help="rows per top-N table (default %(default)s)")
    p.add_argument("--site-host", action="append", default=[], metavar="HOST",
                   help="own host name: its referrers are internal (repeatable)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: the CPUs available)")
    p.add_argument("--keep", type=int, default=DEFAULT_KEEP,
                   help="keys kept per table before folding the smallest (default %(default)s)")
    zones = p.add_mutually_exclusive_group()
    zones.add_argument("--utc", action="store_true", help="days and hours of day in UTC (default: the log's zone)")
    zones.add_argument("--local", action="store_true", help="days and hours of day in this machine's zone")


def run_analyze(args: argparse.Namespace, prog: str = "mepctl weblog analyze",
                out: Callable[[str], object] | None = None) -> int:
    """Run the analyser on parsed arguments; 0 on success, 1 when the file cannot be read, 2 on bad values."""
    write = out or sys.stdout.write
    if args.top < 1 or args.keep < 1 or (args.workers is not None and args.workers < 1):
        print(f"{prog}: --top, --keep and --workers must be at least 1", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        agg = analyze_file(args.file, args.format, args.site_host, args.keep, args.workers)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        print(f"{prog}: {args.file}: {e.strerror if isinstance(e, OSError) and e.strerror else e}",
              file=sys.stderr)
        return 1
    report = report_from_aggregate(
        agg, args.file, args.top, tz=UTC if args.utc else None if args.local else agg.log_tz(),
        extra={"analysis_seconds": round(time.monotonic() - started, 3)},
    )
    write(render(report, as_json=args.json, as_html=args.html))
    return 0


def analyze_main(argv: Sequence[str], prog: str = "mepctl weblog analyze",
                 out: Callable[[str], object] | None = None) -> int:
    """The one-shot analyser's whole command line (argparse exits 2 on usage errors, returned here)."""
    p = argparse.ArgumentParser(prog=prog, description="Analyse a web access log (Apache/nginx common or combined).")
    add_analyze_arguments(p)
    try:
        args = p.parse_args(list(argv))
    except SystemExit as e:
        return int(e.code or 0)
    return run_analyze(args, prog, out)


if __name__ == "__main__":
    sys.exit(analyze_main(sys.argv[1:], prog="python -m mepd.cli.weblog"))
