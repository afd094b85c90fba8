"""`mepctl report` and `mepctl forecast`: the operations report and capacity forecasts, from the daemon
(it holds the RRDs, the logs and the incidents: `GET /v1/report`, `GET /v1/forecast`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from mepd.analysis.report_render import render_forecasts, render_text
from mepd.api.client import Client
from mepd.errors import ApiError

EXIT_USAGE = 2  # mepctl's exit status for a usage error

REPORT_TIMEOUT = 600.0  # seconds: a month of every interface's figures and graphs


def add_commands(sub: Any) -> None:
    p = sub.add_parser("report", help="the operations report of a month or period (interfaces, checks, incidents,"
                                      " logs, web)")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--month", metavar="YYYY-MM", help="a calendar month (default: the last whole month)")
    when.add_argument("--since", metavar="T", help='from T: "30d" (ago), an RFC 3339 time...')
    p.add_argument("--until", metavar="T", help="to T (with --since; default now)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON document")
    fmt.add_argument("--html", action="store_true", help="one self-contained HTML page (graphs embedded)")
    fmt.add_argument("--mail", action="store_true", help="a mail (text, and HTML with its graphs as inline parts)"
                                                         " for `| /usr/sbin/sendmail -t`")
    p.add_argument("--to", metavar="ADDR", action="append", default=[],
                   help="with --mail: a recipient (repeat for more; default [report] mail_to)")
    p.add_argument("--from", dest="sender", metavar="ADDR",
                   help="with --mail: the sender (default [report] mail_from, else mepd@HOSTNAME)")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("forecast", help="when each interface, file system and named metric crosses its threshold,"
                                        " soonest first")
    p.add_argument("--window", metavar="D", help='fit the trend over the last D ("30d"; default [report]'
                                                 " forecast_window)")
    p.add_argument("--json", action="store_true", help="one JSON document")
    p.set_defaults(func=cmd_forecast)


async def cmd_report(client: Client, args: argparse.Namespace) -> int:
    params = {k: v for k, v in (("month", args.month), ("since", args.since), ("until", args.until)) if v}
    if (args.to or args.sender) and not args.mail:
        print("mepctl: report: --to and --from are for --mail", file=sys.stderr)
        return EXIT_USAGE
    if args.mail:
        query = [*params.items(), ("format", "mail"), *(("to", a) for a in args.to),
                 *([("from", args.sender)] if args.sender else [])]
        try:
            message = await client.get_bytes("/v1/report", query, time_limit=REPORT_TIMEOUT)
        except ApiError as e:
            if e.status != 400:
                raise
            print(f"mepctl: report: {e}", file=sys.stderr)  # a bad address, period or no recipient
            return EXIT_USAGE
        sys.stdout.buffer.write(message)
        return 0
    if args.html:
        page = await client.get_bytes("/v1/report", {**params, "format": "html"}, time_limit=REPORT_TIMEOUT)
        sys.stdout.write(page.decode())
        return 0
    data = await client.request("GET", "/v1/report", params, time_limit=REPORT_TIMEOUT)
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(render_text(data))
    return 0


async def cmd_forecast(client: Client, args: argparse.Namespace) -> int:
    data = await client.request("GET", "/v1/forecast", {"window": args.window} if args.window else {},
                                time_limit=REPORT_TIMEOUT)
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(render_forecasts(data["forecasts"]))
    return 0
