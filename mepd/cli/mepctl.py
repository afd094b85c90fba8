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

from mepd import __version__, config
from mepd.api import render
from mepd.api.client import Client, DaemonUnreachableError
from mepd.errors import ApiError, ConfigErrors

EXIT_OK, EXIT_REQUEST, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
DEFAULT_CONFIG = "/etc/mepd/mepd.toml"

Command = Callable[[Client, argparse.Namespace], Awaitable[int]]


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


async def cmd_status(client: Client, args: argparse.Namespace) -> int:
    data = await client.request("GET", "/v1/status")
    if args.json:
        _print_json(data)
    else:
        print(render.status(data))
    return EXIT_OK


def _log_params(args: argparse.Namespace) -> dict[str, str]:
    names = ("since", "until", "host", "app", "severity", "grep", "source", "limit")
    return {name: str(getattr(args, name)) for name in names if getattr(args, name) is not None}


async def cmd_logs(client: Client, args: argparse.Namespace) -> int:
    params = _log_params(args)
    if args.follow:
        params["follow"] = "1"
        params.setdefault("limit", "10")
        async for record in client.stream("/v1/logs", params):
            print(json.dumps(record, ensure_ascii=False) if args.json else render.log_line(record), flush=True)
        return EXIT_OK
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
    return EXIT_OK


def _default_socket(config_path: str) -> str:
    """The configured control socket, when the config file is readable; else the packaged default."""
    try:
        return config.load(config_path).daemon.control_socket
    except ConfigErrors:
        return config.DaemonConfig().control_socket


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
    p.add_argument("--host", metavar="H")
    p.add_argument("--app", metavar="A")
    p.add_argument("--severity", metavar="LEVEL", help="LEVEL or more severe: emerg ... debug, or 0-7")
    p.add_argument("--grep", metavar="TEXT", help="message contains TEXT (case-insensitive)")
    p.add_argument("--source", metavar="S", help="e.g. syslog/udp, journal, tail:web")
    p.add_argument("--limit", metavar="N", type=_non_negative, help="newest N records (default 1000; 0 = all)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new records as they are stored")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("reload", parents=[common], help="re-read the config file (like SIGHUP)")
    p.set_defaults(func=cmd_reload)
    return parser


def _non_negative(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
    return int(text)


async def _run(socket_path: str, func: Command, args: argparse.Namespace) -> int:
    async with Client(socket_path) as client:
        return await func(client, args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    socket_path = args.socket or os.environ.get("MEPD_SOCKET") or _default_socket(args.config)
    try:
        return asyncio.run(_run(socket_path, args.func, args))
    except DaemonUnreachableError as e:
        print(f"mepctl: {e}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except ApiError as e:
        print(f"mepctl: {e}", file=sys.stderr)
        return EXIT_REQUEST
    except KeyboardInterrupt:
        return EXIT_OK
    except BrokenPipeError:
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
