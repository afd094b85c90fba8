"""Fixtures for the deployment checks: the built .deb and its extracted tree."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.deploy.tools import build_deb, run


@pytest.fixture(scope="session")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package, built by packaging/deb/build.sh as `make deb` does (needs PyPI or a pip cache)."""
    return build_deb(tmp_path_factory)


@pytest.fixture(scope="session")
def deb_tree(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The package's files, unpacked with `dpkg -x`; its control files in DEBIAN/."""
    tree = tmp_path_factory.mktemp("tree")
    for argv in (("dpkg-deb", "-x", str(deb), str(tree)), ("dpkg-deb", "-e", str(deb), str(tree / "DEBIAN"))):
        result = run(*argv)
        assert result.returncode == 0, result.stderr
    yield tree
    shutil.rmtree(tree, ignore_errors=True)
