"""Shared fixtures: short socket paths, real mepd processes (see tests/helpers.py), a test PKI."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.helpers import Mepd

# Tests assert results, never timings: Hypothesis's 200 ms deadline per example would turn a
# scheduling stall on a busy CI machine into a "Flaky" failure.
settings.register_profile("mepd", deadline=None)
settings.load_profile("mepd")


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temp dir with a short path: Unix socket paths are limited to ~107 bytes."""
    path = tempfile.mkdtemp(prefix="mepd-", dir="/tmp")
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def mepd_factory(short_tmp: Path) -> Iterator[Callable[..., Mepd]]:
    """Build (not start) a daemon: `mepd_factory(config_toml_after_daemon_section)`."""
    made: list[Mepd] = []

    def make(config_text: str = "", env: dict[str, str] | None = None) -> Mepd:
        root = short_tmp / f"d{len(made)}"
        root.mkdir()
        daemon = Mepd(root, config_text, env)
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()
        daemon.notify.close()


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1, and a client certificate, made by openssl."""
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"), "-days", "2",
            "-subj", "/CN=mepd test CA")
    exts = (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"), ("client", "extendedKeyUsage=clientAuth"))
    for name, ext in exts:
        openssl("req", *ec, "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"), "-subj", f"/CN={name}")
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
                "-CAcreateserial", "-out", str(d / f"{name}.pem"), "-days", "2", "-extfile", str(d / f"{name}.ext"))
    return d
