"""packaging/docker/Dockerfile built with Debian's podman and run as the README shows: read-only, state on a volume.

No registry can be reached, so the image's base (the Dockerfile's PYTHON_IMAGE
build-arg) is a Debian 12 root file system from mmdebstrap, imported with
`podman import`; the build itself reaches Debian's archive and PyPI as on any
machine.  What this host needs, kept in PODMAN below:

- `--runtime runc`: crun refuses a host with cgroup v1 and a v2 hierarchy that
  has a controller ("cgroups in hybrid mode not supported"); runc runs there.
- lowered `--ulimit`s: podman asks for nofile 1048576, above the hard limits of
  a host whose root lacks CAP_SYS_RESOURCE.
- no systemd as PID 1: podman cannot set up the HEALTHCHECK's periodic timer
  (it logs so); `podman healthcheck run` runs the check on demand.
"""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import ROOT, wait_for
from tests.system.machine import debian_root

pytestmark = pytest.mark.slow

PODMAN = ["--runtime", "runc", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]
# What python:3.11-slim-bookworm gives the Dockerfile: `python`, venv, headers.
BASE_PACKAGES = ("python3", "python3-venv", "python3-dev", "python-is-python3")
UID = 10514  # the image's USER
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
HOST_CERTS = "/run/host-certs"


def podman(*argv: str, timeout: float = 120, check: bool = True,
           stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["podman", *argv], capture_output=True, timeout=timeout, check=False, input=stdin)
    out = subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(errors="replace"),
                                      result.stderr.decode(errors="replace"))
    if check and out.returncode != 0:
        pytest.fail(f"podman {' '.join(argv)} exited {out.returncode}:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}")
    return out


def base_image() -> str:
    """The cached root file system as a local image, imported again when the root was rebuilt."""
    root = debian_root(BASE_PACKAGES, base=())
    tag = f"localhost/mepd-test-base:{root.name}-{int((root / '.mepd-built').stat().st_mtime)}"
    if podman("image", "exists", tag, check=False).returncode != 0:
        tar = subprocess.run(["tar", "-C", str(root), "--exclude=./.mepd-built", "-c", "."],
                             capture_output=True, check=True).stdout
        podman("import", "-", tag, stdin=tar, timeout=600)
    return tag


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Dockerfile built from this checkout (layers cached by podman between runs); removed at the end.

    pip in the build trusts the host's CAs (mounted for the build only, not
    in the image), as pip on the host does: a TLS-inspecting proxy between
    this machine and PyPI has a CA of its own.
    """
    try:
        podman("info", timeout=60)
    except FileNotFoundError:
        pytest.fail("podman is needed for this test; install it (apt: podman runc)")
    pip_conf = tmp_path_factory.mktemp("build") / "pip.conf"
    pip_conf.write_text(f"[global]\ncert = {HOST_CERTS}/{CA_BUNDLE.name}\n")
    tag = f"localhost/mepd-test:{uuid.uuid4().hex[:10]}"
    # --format docker: an OCI image has no HEALTHCHECK (podman drops it, with a warning).
    podman("build", *PODMAN, "--format", "docker", "--network", "host", "--build-arg", f"PYTHON_IMAGE={base_image()}",
           "-v", f"{CA_BUNDLE.parent}:{HOST_CERTS}:ro", "-v", f"{pip_conf}:/etc/pip.conf:ro",
           "-f", "packaging/docker/Dockerfile", "--ignorefile", "packaging/docker/Dockerfile.dockerignore",
           "-t", tag, str(ROOT), timeout=1200)
    try:
        yield tag
    finally:
        podman("rmi", "--force", tag, check=False)


@dataclass(slots=True)
class Container:
    name: str
    udp: int
    tcp: int

    def mepctl(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return podman("exec", self.name, "mepctl", *argv, check=False)

    def stored(self, text: str) -> list[str]:
        result = self.mepctl("logs", "--json", "--grep", text, "--limit", "0")
        return [r["message"] for r in json.loads(result.stdout)] if result.returncode == 0 else []


@pytest.fixture
def volume() -> Iterator[str]:
    name = f"mepd-test-{uuid.uuid4().hex[:10]}"
    podman("volume", "create", name)
    try:
        yield name
    finally:
        podman("volume", "rm", "--force", name, check=False)


@pytest.fixture
def containers(image: str) -> Iterator[list[str]]:
    """Names of the containers a test started: each is removed (killed if still running) at the end."""
    names: list[str] = []
    try:
        yield names
    finally:
        for name in names:
            podman("rm", "--force", "--time", "5", name, check=False)


def start(image: str, volume: str, containers: list[str]) -> Container:
    """`docker run` as the README shows, read-only, syslog published on free ports of the host's 127.0.0.1."""
    name = f"mepd-test-{uuid.uuid4().hex[:10]}"
    containers.append(name)
    podman("run", "-d", *PODMAN, "--name", name, "--read-only",
           # podman's spelling of docker's --tmpfs /run/mepd:uid=10514,gid=10514,mode=0750 (U: owned by the user).
           "--tmpfs", "/run/mepd:mode=0750,U", "-v", f"{volume}:/var/lib/mepd",
           "-p", "127.0.0.1::5514/udp", "-p", "127.0.0.1::5514/tcp", image)

    def port(proto: str) -> int:
        return int(podman("port", name, f"5514/{proto}").stdout.strip().rsplit(":", 1)[1])

    container = Container(name, port("udp"), port("tcp"))
    wait_for(lambda: podman("healthcheck", "run", name, check=False).returncode == 0, 60,
             f"the HEALTHCHECK of {name} to pass")
    # The control socket (the HEALTHCHECK) can answer before the syslog listeners are up.
    wait_for(lambda: listening(container.tcp), 60, f"the syslog TCP listener of {name}")
    return container


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return False
    return True


def send_tcp(port: int, lines: list[str]) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall("".join(f"<14>{line}\n" for line in lines).encode())


def test_read_only_container_passes_its_healthcheck_and_stores_syslog(
        image: str, volume: str, containers: list[str]) -> None:
    container = start(image, volume, containers)
    inspect = json.loads(podman("inspect", container.name).stdout)[0]
    assert inspect["HostConfig"]["ReadonlyRootfs"] is True
    assert inspect["Config"]["User"] == f"{UID}:{UID}"
    token = uuid.uuid4().hex
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(f"<14>app1: udp-{token}".encode(), ("127.0.0.1", container.udp))
    send_tcp(container.tcp, [f"app1: tcp-{token}"])
    found = wait_for(lambda: len(container.stored(token)) == 2 and container.stored(token), what="both messages")
    assert sorted(found) == [f"tcp-{token}", f"udp-{token}"]
    write = podman("exec", container.name, "touch", "/etc/mepd/x", check=False)
    assert write.returncode != 0
    assert "Read-only file system" in write.stderr


def test_sigterm_drains_exits_0_and_the_volume_keeps_the_records(
        image: str, volume: str, containers: list[str]) -> None:
    first = start(image, volume, containers)
    token = uuid.uuid4().hex
    send_tcp(first.tcp, [f"app1: drain-{token}-{i}" for i in range(500)])
    # mepd closes the connection once it has read it to the end: the 500 lines are then its, not the kernel's.
    pid = podman("inspect", "--format", "{{.State.Pid}}", first.name).stdout.strip()
    wait_for(lambda: subprocess.run(["nsenter", "-t", pid, "-n", "ss", "-Htn", "( sport = :5514 )"],
                                    capture_output=True, text=True, check=True).stdout.strip() == "",
             what="mepd to read the connection to its end")
    podman("kill", "--signal", "TERM", first.name)
    assert podman("wait", first.name, timeout=60).stdout.strip() == "0"
    logs = podman("logs", first.name)
    assert "stopping: draining queues" in logs.stdout + logs.stderr
    second = start(image, volume, containers)
    assert len(second.stored(f"drain-{token}")) == 500
