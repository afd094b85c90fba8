"""`mepd`: run the daemon, or check a config file."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from mepd import __version__, config
from mepd.errors import ConfigErrors, MepdError

DEFAULT_CONFIG = "/etc/mepd/mepd.toml"

_PRIORITIES = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class _JournalFormatter(logging.Formatter):
    """Under systemd, stderr goes to the journal: a `<N>` prefix sets each line's priority there."""

    def format(self, record: logging.LogRecord) -> str:
        return f"<{_PRIORITIES.get(record.levelno, 6)}>{super().format(record)}"


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mepd", description="Log-and-metrics collection daemon.")
    parser.add_argument("--config", "-c", metavar="FILE", default=os.environ.get("MEPD_CONFIG", DEFAULT_CONFIG),
                        help=f"config file (default: $MEPD_CONFIG or {DEFAULT_CONFIG})")
    parser.add_argument("--check-config", nargs="?", const="", metavar="FILE",
                        help="validate FILE (or --config's) and exit: 'ok' and 0, or one line per error and 1")
    parser.add_argument("--version", action="version", version=f"mepd {__version__}")
    args = parser.parse_args(argv)
    path = args.check_config or args.config
    try:
        cfg = config.load(path)
    except ConfigErrors as e:
        for err in e.errors:
            print(f"mepd: {err}", file=sys.stderr)
        return 1
    if args.check_config is not None:
        print("ok")
        return 0
    setup_logging(cfg.daemon.log_level)
    from mepd import app  # noqa: PLC0415 - --check-config should not pay for importing the daemon

    try:
        return app.run(cfg)
    except MepdError as e:
        print(f"mepd: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"mepd: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
