"""Who reaches a running mepd's dashboard: another local user (`nobody`, for real, through setpriv) gets
nothing without the token; a DNS-rebinding page (a Host that is not ours) gets nothing even with it; the
token file mepd makes is 0640 in its own group; `mepctl dashboard url` prints a login URL that works."""

from __future__ import annotations

import http.cookiejar
import os
import stat
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from mepd.web.server import LOGIN_FILE
from tests.helpers import Mepd, free_port

MakeMepd = Callable[..., Mepd]
NOBODY = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--")


def as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NOBODY, *argv], capture_output=True, text=True, timeout=60, check=False)


def curl_status(*args: str) -> str:
    """The HTTP status `nobody` gets."""
    result = as_nobody("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def fetch(url: str, headers: dict[str, str] | None = None,
          opener: urllib.request.OpenerDirector | None = None) -> tuple[int, str, str]:
    """(status, final URL, body), redirects followed."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=30) as resp:
            return resp.status, resp.url, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, url, e.read().decode()


def test_dashboard_needs_the_token_and_its_own_host_name(mepd_factory: MakeMepd, short_tmp: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("run as root: the test acts as the user nobody through setpriv")
    port = free_port()
    d = mepd_factory(f'[http]\nlisten = "127.0.0.1:{port}"\nmetrics_auth = false\n').start()
    base = f"http://127.0.0.1:{port}"
    token_file = d.root / "state" / LOGIN_FILE
    st = token_file.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, os.getuid(), os.getgid())
    token = token_file.read_text().strip()
    assert token not in d.stderr()  # the journal is not a terminal: only the file's path is logged
    assert str(token_file) in d.stderr()

    for folder in (short_tmp, d.root, d.root / "state", d.root / "run"):
        folder.chmod(0o711)  # nobody may walk to the files; only their own modes stop it
    assert as_nobody("cat", str(token_file)).returncode != 0
    refused = as_nobody("curl", "-s", "--unix-socket", d.socket, "http://mepd/v1/dashboard/url")
    assert (refused.returncode, refused.stdout) == (7, ""), refused  # the control socket is 0660: no connection
    for path in ("/", "/logs.html", "/logs/stream", "/incidents.html"):
        assert curl_status(base + path) == "401", path
    assert curl_status("-X", "POST", "-d", "comment=x", base + "/incident/1/resolve") == "401"
    assert curl_status(f"{base}/?token=not-{token}") == "401"
    assert curl_status(base + "/metrics") == "200"  # metrics_auth = false: metrics, not logs

    bearer = {"Authorization": f"Bearer {token}"}
    assert fetch(base + "/", bearer)[0] == 200
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1.evil.example:{port}"):
        status, _, body = fetch(base + "/logs.html", {**bearer, "Host": host})
        assert status == 403, host
        assert "allowed_hosts" in body
    assert curl_status("-H", "Host: evil.example", base + "/metrics") == "403"

    url = d.mepctl("dashboard", "url").stdout.strip()
    assert url == f"{base}/?token={token}"
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    status, landed, page = fetch(url, opener=browser)
    assert (status, landed) == (200, f"{base}/")  # the token is out of the address bar
    assert "<h1>Overview</h1>" in page
    assert fetch(base + "/logs.html", opener=browser)[0] == 200  # the session cookie
    web = next(c for c in d.mepctl_json("status")["components"] if c["name"] == "http")
    assert {k: web["counters"][k] for k in ("refused.auth", "refused.host", "logins")} == {
        "refused.auth": 6, "refused.host": 4, "logins": 1}
    assert d.stop() == 0
