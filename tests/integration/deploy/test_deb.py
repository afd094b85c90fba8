"""The Debian package: built by packaging/deb/build.sh, checked by lintian, unpacked and run from its tree."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import mepd
from tests.helpers import ROOT
from tests.integration.deploy.tools import in_mount_namespace, run, tool


def test_file_name_has_version_and_architecture(deb: Path) -> None:
    arch = run("dpkg", "--print-architecture").stdout.strip()
    assert deb.name == f"mepd_{mepd.__version__}_{arch}.deb"


def test_lintian_reports_no_error_or_warning(deb: Path) -> None:
    """Only tags overridden in the package (each with its reason) may remain, and those are not printed."""
    result = run(tool("lintian"), "--fail-on", "error,warning", str(deb), timeout=600)
    tags = [ln for ln in result.stdout.splitlines() if re.match(r"[EW]: ", ln)]
    assert tags == []
    assert result.returncode == 0, result.stdout + result.stderr


def test_lintian_overrides_each_have_a_reason(deb_tree: Path) -> None:
    lines = (deb_tree / "usr/share/lintian/overrides/mepd").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("mepd:"):
            assert i > 0, line
            assert lines[i - 1].startswith("# "), line


def test_tree_has_the_venv_links_units_and_conffile(deb_tree: Path) -> None:
    assert os.readlink(deb_tree / "usr/bin/mepd") == "/opt/mepd/bin/mepd"
    assert os.readlink(deb_tree / "usr/bin/mepctl") == "/opt/mepd/bin/mepctl"
    assert os.readlink(deb_tree / "opt/mepd/bin/python3.11") == "/usr/bin/python3.11"
    for script in ("mepd", "mepctl"):
        assert (deb_tree / "opt/mepd/bin" / script).read_text().startswith("#!/opt/mepd/bin/python3.11\n")
    site = deb_tree / "opt/mepd/lib/python3.11/site-packages"
    for package in ("mepd", "aiohttp", "aiomqtt", "pysnmp", "cryptography", "systemd", "watchdog"):
        assert (site / package).is_dir(), package
    assert list(site.glob("rrdtool*.so"))
    assert list(site.glob("mepd/sources/syslog/_speedups*.so"))  # mepd's own C extensions
    assert list(site.glob("mepd/store/logs/_rows*.so"))
    assert (site / "mepd" / "__init__.py").read_text() == (ROOT / "mepd" / "__init__.py").read_text()
    for unit in ("mepd.service", "mepd.socket", "mepd-tcp.socket", "mepd-rrdcached.service"):
        assert (deb_tree / "lib/systemd/system" / unit).read_bytes() == (ROOT / "units" / unit).read_bytes()
    assert (deb_tree / "usr/lib/sysusers.d/mepd.conf").read_bytes() == (ROOT / "units/mepd.sysusers").read_bytes()
    assert (deb_tree / "usr/lib/tmpfiles.d/mepd.conf").read_bytes() == (ROOT / "units/mepd.tmpfiles").read_bytes()
    assert (deb_tree / "etc/mepd/mepd.toml").read_bytes() == (ROOT / "conf/mepd.toml").read_bytes()
    assert (deb_tree / "DEBIAN/conffiles").read_text().split() == ["/etc/mepd/mepd.toml"]
    for doc in ("copyright", "changelog.gz", "README.md.gz", "examples/rsyslog-forward.conf"):
        assert (deb_tree / "usr/share/doc/mepd" / doc).is_file(), doc


def test_tree_is_relocated_and_has_no_byte_code(deb_tree: Path) -> None:
    """Nothing names the build's staging folder; .pyc files are made by postinst (Debian's Python policy)."""
    venv = deb_tree / "opt/mepd"
    assert not list(venv.rglob("__pycache__"))
    staging = re.compile(rb"/tmp/mepd-deb\.")
    leftovers = [p for p in venv.rglob("*") if p.is_file() and not p.is_symlink() and staging.search(p.read_bytes())]
    assert leftovers == []
    assert "command = /usr/bin/python3.11 -m venv /opt/mepd" in (venv / "pyvenv.cfg").read_text()


def test_control_fields_and_dependencies(deb_tree: Path) -> None:
    control = dict(re.findall(r"^(\S+): (.*)$", (deb_tree / "DEBIAN/control").read_text(), re.MULTILINE))
    assert control["Package"] == "mepd"
    assert control["Version"] == mepd.__version__
    depends = {d.split()[0] for d in control["Depends"].split(", ")}
    assert {"python3.11", "systemd", "librrd8", "libsystemd0"} <= depends


def test_maintainer_scripts_create_the_user_and_enable_without_starting(deb_tree: Path) -> None:
    scripts = {name: (deb_tree / "DEBIAN" / name) for name in ("postinst", "prerm", "postrm")}
    for path in scripts.values():
        assert path.stat().st_mode & stat.S_IXUSR
        assert run("sh", "-n", str(path)).returncode == 0, path
    postinst = scripts["postinst"].read_text()
    assert "systemd-sysusers mepd.conf" in postinst
    assert 'deb-systemd-helper enable "$unit"' in postinst
    assert "mepd.socket mepd-tcp.socket mepd.service" in postinst
    # Enabled, never started: only an upgrade restarts what was already running.
    starts = [ln.strip() for ln in postinst.splitlines() if re.search(r"\b(start|restart)\b", ln) and
              not ln.strip().startswith("#")]
    assert starts == ["deb-systemd-invoke try-restart mepd-rrdcached.service mepd.service >/dev/null || true"]


def test_extracted_mepd_checks_the_packaged_config(deb_tree: Path, tmp_path: Path) -> None:
    """/usr/bin/mepd of the package, resolved as if installed, validates /etc/mepd/mepd.toml of the package."""
    result = in_mount_namespace(deb_tree, f"/usr/bin/mepd --check-config {deb_tree}/etc/mepd/mepd.toml")
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok\n", "")
    bad = tmp_path / "bad.toml"
    bad.write_text('[daemon]\nlog_level = "loud"\n')
    result = in_mount_namespace(deb_tree, f"/usr/bin/mepd --check-config {bad}")
    assert result.returncode == 1
    assert "daemon.log_level" in result.stderr


def test_extracted_mepctl_runs(deb_tree: Path) -> None:
    imports = "import rrdtool, systemd.journal, pysnmp.hlapi.v3arch.asyncio, aiomqtt, cryptography"
    result = in_mount_namespace(deb_tree, f"/usr/bin/mepctl --version && /opt/mepd/bin/python3 -c '{imports}'")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"mepctl {mepd.__version__}"


def test_systemd_analyze_verify_passes_on_the_packaged_units(deb_tree: Path) -> None:
    """With the package's /usr/bin/mepd and man pages in place, systemd finds nothing to report."""
    units = " ".join(str(p) for p in sorted((deb_tree / "lib/systemd/system").iterdir()))
    result = in_mount_namespace(deb_tree, f"{tool('systemd-analyze')} verify {units}")
    assert (result.returncode, result.stderr) == (0, "")


def test_man_pages_render_without_warnings(deb_tree: Path) -> None:
    for page in ("usr/share/man/man8/mepd.8.gz", "usr/share/man/man1/mepctl.1.gz"):
        result = run(tool("man"), "--warnings", "-l", "-Tutf8", str(deb_tree / page),
                     env={**os.environ, "MANWIDTH": "80"})
        assert result.returncode == 0
        assert result.stderr == "", page
