"""mepctl starts light: it speaks the API through mepd.api.protocol, never loading the daemon's side of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DAEMON_SIDE = ("aiohttp.web", "sqlite3", "mepd.api.server", "mepd.store", "mepd.app", "mepd.web")


def test_mepctl_loads_neither_the_server_nor_the_stores() -> None:
    code = "import json, sys, mepd.cli.mepctl; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    loaded = json.loads(out.stdout)
    assert "mepd.api.protocol" in loaded
    unwanted = [m for m in loaded if any(m == d or m.startswith(d + ".") for d in DAEMON_SIDE)]
    assert unwanted == []
