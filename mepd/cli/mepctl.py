"""`mepctl`: query and control a running mepd over its control socket.

Exit codes: 0 success, 1 the request failed, 2 usage error, 3 the daemon is
unreachable.  Every query command takes --json (one JSON document on stdout).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, get_args, get_type_hints

import aiohttp

from mepd import __version__, config
from mepd.api import render
from mepd.api.client import Client, DaemonUnreachableError
from mepd.api.protocol import log_params
from mepd.cli import report, weblog
from mepd.config import SnmpTargetConfig
from mepd.errors import ApiError, ConfigErrors
from mepd.terminal import printable
from mepd.units import parse_duration

EXIT_OK, EXIT_REQUEST, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
STREAM_ENDED = "mepctl: the daemon closed the connection (stopped or restarting?)"
DEFAULT_CONFIG = "/etc/mepd/mepd.toml"
EXPORT_TIMEOUT = 600.0

Command = Callable[[Client, argparse.Namespace], Awaitable[int]]


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _answer(args: argparse.Namespace, data: Any, text: Callable[[Any], str]) -> int:
    """An answer as JSON with --json, else as `text` renders it."""
    if args.json:
        _print_json(data)
    else:
        print(text(data))
    return EXIT_OK


def _period(args: argparse.Namespace, **params: str) -> dict[str, str]:
    """The query's parameters with --since, and --until when given."""
    return {"since": args.since, **params, **({"until": args.until} if args.until else {})}


async def cmd_status(client: Client, args: argparse.Namespace) -> int:
    data = await client.request("GET", "/v1/status")
    return _answer(args, data, render.status)


async def cmd_fleet_status(client: Client, args: argparse.Namespace) -> int:
    data = await client.request("GET", "/v1/status")
    found = {c["name"]: c["details"] for c in data.get("components", [])
             if c["name"] in ("fleet/central", "fleet/leases")}
    central, polling = found.get("fleet/central"), found.get("fleet/leases")
    if central is None and polling is None:
        print("mepctl: this mepd is neither a fleet central ([fleet.central] enabled = true) nor a shared poller"
              " ([fleet] share_polling = true)", file=sys.stderr)
        return EXIT_REQUEST
    if args.json:
        _print_json({**(central or {}), **({"polling": polling} if polling is not None else {})})
    else:
        print("\n".join([*([render.fleet_status(central)] if central is not None else []),
                         *([render.fleet_polling(polling)] if polling is not None else [])]))
    return EXIT_OK


async def cmd_logs(client: Client, args: argparse.Namespace) -> int:
    params = log_params(vars(args))
    if args.follow:
        params["follow"] = "1"
        params.setdefault("limit", "10")
        async for record in client.stream("/v1/logs", params):
            print(json.dumps(record, ensure_ascii=False) if args.json else render.log_line(record), flush=True)
        print(STREAM_ENDED, file=sys.stderr)  # only a stopping daemon ends a follow
        return EXIT_UNREACHABLE
    data = await client.request("GET", "/v1/logs", params)
    if args.json:
        _print_json(data["records"])
    else:
        for record in data["records"]:
            print(render.log_line(record))
    if data.get("truncated"):
        print(f"mepctl: showing the newest {len(data['records'])} records; use --limit N (0 for all) "
              "or narrow --since", file=sys.stderr)
    return EXIT_OK


async def cmd_reload(client: Client, args: argparse.Namespace) -> int:
    data = await client.request("POST", "/v1/reload")
    if args.json:
        _print_json(data)
    else:
        print("reloaded")
        for warning in data.get("warnings", []):
            print(f"mepctl: warning: {warning}", file=sys.stderr)
    return EXIT_OK


async def cmd_metrics_list(client: Client, args: argparse.Namespace) -> int:
    params = {"prefix": args.prefix} if args.prefix else {}
    return _answer(args, (await client.request("GET", "/v1/metrics", params))["metrics"], render.metrics)


async def cmd_metrics_show(client: Client, args: argparse.Namespace) -> int:
    data = await client.request("GET", f"/v1/metrics/{args.key}", _period(args, cf=args.cf))
    return _answer(args, data, render.points)


async def cmd_timeline(client: Client, args: argparse.Namespace) -> int:
    return _answer(args, await client.request("GET", f"/v1/timeline/{args.subject}", _period(args)), render.timeline)


async def cmd_graph(client: Client, args: argparse.Namespace) -> int:
    ext = os.path.splitext(args.out)[1].lower().lstrip(".")
    if ext not in ("png", "svg") or (args.format and args.format != ext):
        print(f"mepctl: --out {args.out}: name it FILE.png or FILE.svg (the format the file will hold)",
              file=sys.stderr)
        return EXIT_USAGE
    fmt = ext
    params = [("key", key) for key in args.key] + [("period", args.period), ("format", fmt)]
    image = await client.get_bytes("/v1/graph", params)
    await asyncio.to_thread(Path(args.out).write_bytes, image)
    if args.json:
        _print_json({"out": args.out, "format": fmt, "bytes": len(image)})
    return EXIT_OK


async def cmd_snmp_discover(args: argparse.Namespace) -> int:
    """Runs here, not in the daemon: like cfgmaker, it talks to the agent directly."""
    from mepd.sources.snmp import discover, wire  # noqa: PLC0415 - pysnmp takes a while to import; only this command needs it

    cfg = SnmpTargetConfig(
        name=args.name, host=args.host, port=args.port, version=args.version, community=args.community,
        user=args.user, auth_protocol=args.auth_protocol, auth_key=args.auth_key, priv_protocol=args.priv_protocol,
        priv_key=args.priv_key, context=args.context, timeout=args.timeout, retries=args.retries,
    )
    problems = [f"{key}: {message}" for key, message in cfg.check() if key not in ("name", "interval")]
    if problems:
        for problem in problems:
            print(f"mepctl: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        described = await discover.discover(cfg)  # sysName, sysDescr and ifAlias are the agent's text
        print("\n".join(printable(line) for line in described.split("\n")), end="")
    except wire.SnmpError as e:
        print(f"mepctl: {args.host}:{args.port}: {e}", file=sys.stderr)
        return EXIT_REQUEST
    return EXIT_OK


async def cmd_checks(client: Client, args: argparse.Namespace) -> int:
    data = await client.request("GET", "/v1/checks")
    return _answer(args, data["checks"], render.checks)


async def cmd_incidents(client: Client, args: argparse.Namespace) -> int:
    query = {"all": "1"} if args.all else {}
    if args.node:
        data = await client.request("GET", "/v1/fleet/incidents", {**query, "node": args.node})
    else:
        data = await client.request("GET", "/v1/incidents", query)
    return _answer(args, data["incidents"], render.incidents)


async def cmd_incident(client: Client, args: argparse.Namespace) -> int:
    data = await client.request("GET", f"/v1/incidents/{args.id}")
    if args.json:
        _print_json(data)
    else:
        print(render.incident(data["incident"], data["history"]))
    return EXIT_OK


async def cmd_actions(client: Client, args: argparse.Namespace) -> int:
    data = await client.request("GET", "/v1/actions")
    return _answer(args, data["actions"], render.actions)


async def _incident_verb(client: Client, args: argparse.Namespace, verb: str, done: str) -> int:
    data = await client.request("POST", f"/v1/incidents/{args.id}/{verb}", body={"comment": args.comment or ""})
    if args.json:
        _print_json(data["incident"])
    else:
        print(f"incident {args.id} {done}")
    return EXIT_OK


async def cmd_ack(client: Client, args: argparse.Namespace) -> int:
    return await _incident_verb(client, args, "ack", "acknowledged")


async def cmd_resolve(client: Client, args: argparse.Namespace) -> int:
    return await _incident_verb(client, args, "resolve", "resolved")


async def cmd_silence(client: Client, args: argparse.Namespace) -> int:
    body = {"matchers": args.matchers, "for": args.duration, "comment": args.comment or ""}
    data = await client.request("POST", "/v1/silences", body=body)
    silence = data["silence"]
    if args.json:
        _print_json(silence)
    else:
        print(f"silence {silence['id']}: {printable(silence['matchers'])}"
              f" until {render.local_time(silence['ends'])}")
    return EXIT_OK


async def cmd_silences(client: Client, args: argparse.Namespace) -> int:
    data = await client.request("GET", "/v1/silences", {"all": "1"} if args.all else {})
    return _answer(args, data["silences"], render.silences)


async def cmd_unsilence(client: Client, args: argparse.Namespace) -> int:
    data = await client.request("DELETE", f"/v1/silences/{args.id}")
    if args.json:
        _print_json(data["silence"])
    else:
        print(f"silence {args.id} expired")
    return EXIT_OK


def _default_socket(config_path: str) -> str:
    """daemon.control_socket of the config file, read alone: the other sections are the daemon's to check
    (a keys_file only mepd may read is no reason to look elsewhere).  No file at the default path means the
    packaged default; a file that cannot be used exits with why, as argparse does for usage errors."""
    if config_path == DEFAULT_CONFIG and not os.path.exists(config_path):
        return config.DaemonConfig().control_socket
    try:
        return config.control_socket(config_path)
    except ConfigErrors as e:
        if os.path.exists(config_path) and not os.access(config_path, os.R_OK):
            # The packaged config is 0640 root:mepd: the user's fix is the group, not --socket.
            print(f"mepctl: permission denied on {config_path}: run as root or as a member of the mepd group"
                  " (or name the socket with --socket PATH)", file=sys.stderr)
            raise SystemExit(EXIT_USAGE) from None
        why = "; ".join(str(error) for error in e.errors)
        print(f"mepctl: {why}; cannot find the control socket: name it with --socket PATH or $MEPD_SOCKET",
              file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


async def cmd_dashboard_export(client: Client, args: argparse.Namespace) -> int:
    """The daemon writes the files (it has the data): DIR must be writable by it."""
    data = await client.request("POST", "/v1/dashboard/export", body={"dir": args.dir}, time_limit=EXPORT_TIMEOUT)
    if args.json:
        _print_json(data)
    else:
        print(f"exported {data['files']} files ({data['bytes']:,} bytes) to {data['dir']} in {data['seconds']:.1f}s")
    return EXIT_OK


async def cmd_dashboard_url(client: Client, args: argparse.Namespace) -> int:
    """The login URL, token included: the control socket admits only root and group mepd, as the token file."""
    data = await client.request("GET", "/v1/dashboard/url")
    if args.json:
        _print_json(data)
    else:
        print(data["url"])
    return EXIT_OK


def _add_dashboard_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("dashboard", help="the web dashboard")
    dsub = p.add_subparsers(dest="dashboard_command", required=True, metavar="url|export")
    q = dsub.add_parser("url", parents=[common], help="the dashboard's login URL (it carries the token: keep it)")
    q.set_defaults(func=cmd_dashboard_url)
    q = dsub.add_parser("export", parents=[common], help="write the dashboard as static HTML and PNG files")
    q.add_argument("dir", metavar="DIR", type=os.path.abspath,
                   help="folder to write (created if needed; written by the daemon)")
    q.set_defaults(func=cmd_dashboard_export)


def _add_metric_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    report.add_commands(sub)  # `report` and `forecast`: figures of the stored metrics
    p = sub.add_parser("metrics", parents=[common], help="metric keys and their latest values, or one metric's points")
    p.set_defaults(func=cmd_metrics_list, prefix=None)
    msub = p.add_subparsers(dest="metrics_command", metavar="list|show")
    q = msub.add_parser("list", parents=[common], help="every metric key with its latest value")
    q.add_argument("--prefix", metavar="P", help="only keys starting with P, e.g. snmp.core-sw1.")
    q.set_defaults(func=cmd_metrics_list)
    q = msub.add_parser("show", parents=[common], help="a metric's points from its RRD")
    q.add_argument("key", metavar="KEY", help="e.g. snmp.core-sw1.eth0.in_bps")
    q.add_argument("--since", metavar="T", default="1h", help='from T (default "1h" ago)')
    q.add_argument("--until", metavar="T", help="up to T (default now)")
    q.add_argument("--cf", choices=("AVERAGE", "MAX"), default="AVERAGE", help="consolidation (default AVERAGE)")
    q.set_defaults(func=cmd_metrics_show)

    p = sub.add_parser("timeline", parents=[common],
                       help="an SNMP target's or interface's device log lines and incidents, in time order")
    p.add_argument("subject", metavar="SUBJECT", help="snmp.TARGET or snmp.TARGET.IFACE")
    p.add_argument("--since", metavar="T", default="1d", help='from T (default "1d" ago)')
    p.add_argument("--until", metavar="T", help="up to T (default now)")
    p.set_defaults(func=cmd_timeline)

    p = sub.add_parser("graph", parents=[common], help="draw an MRTG-style graph of metrics into a PNG or SVG file")
    p.add_argument("key", metavar="KEY", nargs="+", help="metric keys, or an interface (snmp.TARGET.IFACE): in and out")
    p.add_argument("--period", choices=("day", "week", "month", "year"), default="day")
    p.add_argument("--out", "-o", metavar="FILE", required=True, help="FILE.png or FILE.svg")
    p.add_argument("--format", choices=("png", "svg"), help="must match the --out extension, which sets it")
    p.set_defaults(func=cmd_graph)


def _add_fleet_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("fleet", help="the fleet as a central sees it")
    fsub = p.add_subparsers(dest="fleet_command", required=True, metavar="status")
    q = fsub.add_parser("status", parents=[common], help="each node (last heard, records, its backlog), the stream")
    q.set_defaults(func=cmd_fleet_status)


def _add_snmp_commands(sub: Any) -> None:
    hints = get_type_hints(SnmpTargetConfig)
    p = sub.add_parser("snmp", help="SNMP tools that talk to agents directly")
    ssub = p.add_subparsers(dest="snmp_command", required=True, metavar="discover")
    q = ssub.add_parser("discover", help="walk an agent and print [[snmp.target]] TOML, like cfgmaker")
    q.add_argument("host", metavar="HOST")
    q.add_argument("--port", type=int, default=161)
    q.add_argument("--name", default="discover", help="target name (default: the agent's sysName)")
    q.add_argument("--version", choices=("2c", "3"), default="2c")
    q.add_argument("--community", default="public")
    q.add_argument("--user", default="", help="SNMPv3 user")
    q.add_argument("--auth-protocol", choices=get_args(hints["auth_protocol"]), default="SHA")
    q.add_argument("--auth-key", default="")
    q.add_argument("--priv-protocol", choices=get_args(hints["priv_protocol"]), default="AES")
    q.add_argument("--priv-key", default="")
    q.add_argument("--context", default="")
    q.add_argument("--timeout", type=float, default=2.0, help="seconds per request (default 2)")
    q.add_argument("--retries", type=int, default=1)
    q.set_defaults(local=cmd_snmp_discover)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    parser = argparse.ArgumentParser(prog="mepctl", description="Query and control a running mepd.")
    parser.add_argument("--socket", "-s", metavar="PATH",
                        help="control socket (default: $MEPD_SOCKET, else daemon.control_socket of --config)")
    parser.add_argument("--config", "-c", metavar="FILE", default=os.environ.get("MEPD_CONFIG", DEFAULT_CONFIG),
                        help=f"config file to find the socket in (default: $MEPD_CONFIG or {DEFAULT_CONFIG})")
    parser.add_argument("--version", action="version", version=f"mepctl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("status", parents=[common], help="uptime, components, records received/stored/dropped")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("logs", parents=[common], help="query stored log records, oldest first")
    p.add_argument("--since", metavar="T", help='from T: "10m" (ago), "2026-11-28T10:00:00Z", "today"')
    p.add_argument("--until", metavar="T", help="up to T (same forms as --since)")
    p.add_argument("--host", metavar="H", help="the host name the record carries")
    p.add_argument("--peer", metavar="IP", help="the address it was received from (any port)")
    p.add_argument("--app", metavar="A")
    p.add_argument("--severity", metavar="LEVEL", help="LEVEL or more severe: emerg ... debug, or 0-7")
    p.add_argument("--grep", metavar="TEXT", help="message contains TEXT (ASCII letters case-insensitive; exact)")
    p.add_argument("--source", metavar="S", help="e.g. syslog/udp, journal, tail:web")
    p.add_argument("--node", metavar="N", help='fleet node, a glob: "web*" (on a central)')
    p.add_argument("--limit", metavar="N", type=_non_negative, help="newest N records (default 1000; 0 = all)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new records as they are stored")
    p.set_defaults(func=cmd_logs)

    _add_metric_commands(sub, common)
    _add_snmp_commands(sub)
    _add_fleet_commands(sub, common)
    weblog.add_commands(sub)

    _add_dashboard_commands(sub, common)

    p = sub.add_parser("reload", parents=[common], help="re-read the config file (like SIGHUP)")
    p.set_defaults(func=cmd_reload)

    p = sub.add_parser("checks", parents=[common], help="each [[check]]: its state, since when, its last result")
    p.set_defaults(func=cmd_checks)

    _add_incident_commands(sub, common)
    return parser


def _add_incident_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("incidents", parents=[common], help="open incidents, newest first (--all: resolved too)")
    p.add_argument("--all", action="store_true", help="include resolved incidents")
    p.add_argument("--node", metavar="N", help='the fleet nodes\' incidents, a glob: "web*" (on a central)')
    p.set_defaults(func=cmd_incidents)

    p = sub.add_parser("incident", parents=[common], help="one incident: lines, notifications, actions run")
    p.add_argument("id", type=_non_negative, metavar="ID")
    p.set_defaults(func=cmd_incident)

    p = sub.add_parser("actions", parents=[common],
                       help="verified corrective steps per rule: runs, verified, failed, median time to clear")
    p.set_defaults(func=cmd_actions)

    for name, func, text in (("ack", cmd_ack, "acknowledge an incident: no more repeat notifications"),
                             ("resolve", cmd_resolve, "resolve an incident by hand")):
        p = sub.add_parser(name, parents=[common], help=text)
        p.add_argument("id", type=_non_negative, metavar="ID")
        p.add_argument("--comment", "-m", metavar="TEXT")
        p.set_defaults(func=func)

    p = sub.add_parser("silence", parents=[common], help="mute notifications for matching labels")
    p.add_argument("matchers", metavar="MATCHER",
                   help='labels to match, e.g. "rule=uplink,host=~web[0-9]+" (=, !=, =~, !~)')
    p.add_argument("--for", dest="duration", type=_duration, default="2h", metavar="DURATION",
                   help='how long, e.g. "30m", "2h" (default 2h)')
    p.add_argument("--comment", "-m", metavar="TEXT")
    p.set_defaults(func=cmd_silence)

    p = sub.add_parser("silences", parents=[common], help="active silences (--all: expired too)")
    p.add_argument("--all", action="store_true", help="include expired silences")
    p.set_defaults(func=cmd_silences)

    p = sub.add_parser("unsilence", parents=[common], help="end a silence now")
    p.add_argument("id", type=_non_negative, metavar="ID")
    p.set_defaults(func=cmd_unsilence)


def _duration(text: str) -> str:
    try:
        parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _non_negative(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
    return int(text)


async def _run(socket_path: str, func: Command, args: argparse.Namespace) -> int:
    async with Client(socket_path) as client:
        return await func(client, args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "local", None) is not None:
        return int(asyncio.run(args.local(args)))
    socket_path = args.socket or os.environ.get("MEPD_SOCKET") or _default_socket(args.config)
    try:
        return asyncio.run(_run(socket_path, args.func, args))
    except (DaemonUnreachableError, ApiError, aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as e:
        return _failed(e)
    except KeyboardInterrupt:
        return EXIT_OK
    except BrokenPipeError:
        sys.stderr.close()
        return EXIT_OK



def _failed(e: Exception) -> int:
    """One sentence on stderr and the exit code README promises."""
    if isinstance(e, ApiError):
        print(f"mepctl: {e}", file=sys.stderr)
        return EXIT_REQUEST
    if isinstance(e, DaemonUnreachableError):
        print(f"mepctl: {e}", file=sys.stderr)
    else:  # a stream (logs --follow) cut by the daemon stopping
        print(STREAM_ENDED, file=sys.stderr)
    return EXIT_UNREACHABLE



if __name__ == "__main__":
    sys.exit(main())
