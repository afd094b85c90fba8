"""Fixtures for the booted-Debian tests: the built packages and a machine with mepd installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.deploy.tools import build_deb
from tests.system.machine import Machine, debian_root, package_depends

# The version the upgrade tests install over the checkout's.
NEXT_VERSION = "99.0.0"


@pytest.fixture(scope="session")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package `make deb` builds from this checkout."""
    return build_deb(tmp_path_factory)


@pytest.fixture(scope="session")
def next_deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same sources built as the next release (version NEXT_VERSION)."""
    return build_deb(tmp_path_factory, NEXT_VERSION)


@pytest.fixture(scope="session")
def debian(deb: Path) -> Path:
    """The cached Debian 12 root file system, with the package's dependencies from Debian."""
    return debian_root(package_depends(deb))


def install(machine: Machine, deb: Path) -> str:
    """`apt-get install ./mepd_*.deb` inside, as an admin would; returns apt's output."""
    (machine.root / "root" / deb.name).write_bytes(deb.read_bytes())
    return machine.sh(f"cd /root; apt-get install -y --no-install-recommends ./{deb.name}; rm {deb.name}").stdout


def start(machine: Machine) -> None:
    """What the package leaves to the admin: start the sockets and the service."""
    machine.sh("systemctl start mepd.socket mepd-tcp.socket mepd.service")
