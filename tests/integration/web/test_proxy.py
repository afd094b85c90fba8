"""conf/examples/nginx-mepd.conf, as shipped but for ports and file paths, in front of the dashboard:
a real nginx terminating TLS (a certificate made by openssl) with basic auth, mepd's login URL sets its
session cookie through it, forms posted through it pass the CSRF check, and the live tail streams through it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import socket
import ssl
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from mepd.web.server import SESSION
from tests.helpers import ROOT, free_port, wait_for
from tests.integration.web.conftest import TOKEN, Served, State, raise_incident

Serve = Callable[..., Awaitable[Served]]
NGINX = "/usr/sbin/nginx"


def site_config(backend: int, port: int, tmp: Path) -> str:
    text = (ROOT / "conf" / "examples" / "nginx-mepd.conf").read_text()
    text = text.replace("listen [::]:443 ssl;\n", "").replace("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
    text = text.replace("/etc/ssl/certs/monitor.example.org.pem", str(tmp / "cert.pem"))
    text = text.replace("/etc/ssl/private/monitor.example.org.key", str(tmp / "key.pem"))
    text = text.replace("/etc/nginx/mepd.htpasswd", str(tmp / "htpasswd"))
    assert "127.0.0.1:8080" in text
    return text.replace("127.0.0.1:8080", f"127.0.0.1:{backend}")


@contextlib.contextmanager
def nginx(backend: int, tmp: Path) -> Iterator[int]:
    if not os.path.exists(NGINX):
        pytest.fail("nginx is not installed (apt-get install nginx-light)")
    port = free_port()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp / "key.pem"),
                    "-out", str(tmp / "cert.pem"), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    hashed = subprocess.run(["openssl", "passwd", "-apr1", "s3cret"], check=True, capture_output=True, text=True,
                            timeout=30).stdout.strip()
    (tmp / "htpasswd").write_text(f"admin:{hashed}\n")
    (tmp / "site.conf").write_text(site_config(backend, port, tmp))
    temp = "".join(f"{kind}_temp_path {tmp / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    user = "user root;\n" if os.geteuid() == 0 else ""
    (tmp / "nginx.conf").write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {tmp / 'nginx.pid'};\nerror_log {tmp / 'error.log'};\n"
        f"events {{}}\nhttp {{\naccess_log off;\n{temp}include {tmp / 'site.conf'};\n}}\n")
    subprocess.run([NGINX, "-t", "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "error.log")],
                   check=True, capture_output=True, timeout=30)
    proc = subprocess.Popen([NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def listening() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"nginx exited: {(tmp / 'error.log').read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
        return False

    try:
        wait_for(listening, what="nginx to listen")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_behind_the_nginx_example(state: State, serve: Serve, tmp_path: Path) -> None:
    iid = await raise_incident(state)
    served = await serve()
    backend = int(served.url.rsplit(":", 1)[1])
    with contextlib.ExitStack() as stack:
        port = await asyncio.to_thread(stack.enter_context, nginx(backend, tmp_path))
        base = f"https://127.0.0.1:{port}"
        tls = await asyncio.to_thread(ssl.create_default_context, cafile=str(tmp_path / "cert.pem"))
        auth = {"Authorization": "Basic " + base64.b64encode(b"admin:s3cret").decode()}
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            async with s.get(base + "/", ssl=tls) as resp:
                assert resp.status == 401  # nginx asks first
            async with s.get(f"{base}/incident/{iid}.html", ssl=tls, headers=auth) as resp:
                assert resp.status == 401  # then mepd: nginx's users are not its own
            async with s.get(f"{base}/incident/{iid}.html?token={TOKEN}", ssl=tls, headers=auth,
                             allow_redirects=False) as resp:
                assert (resp.status, resp.headers["Location"]) == (303, f"{iid}.html")  # relative: any path prefix
                assert resp.cookies[SESSION]["httponly"]
            async with s.get(f"{base}/incident/{iid}.html", ssl=tls, headers=auth) as resp:
                assert resp.status == 200
                page = await resp.text()
            m = re.search(r'name=csrf value="([0-9a-f]+)"', page)
            assert m
            async with s.post(f"{base}/incident/{iid}/ack", ssl=tls, data={"csrf": m.group(1)},
                              headers={**auth, "Origin": base}, allow_redirects=False) as resp:
                assert resp.status == 303, await resp.text()
            assert (await state.alerts.show(iid))[0].state == "acknowledged"

            async with s.get(f"{base}/logs/stream?app=kernel", ssl=tls, headers=auth) as resp:
                assert resp.content_type == "text/event-stream"
                assert (await resp.content.readline()).startswith(b"retry:")
                await state.log("through the proxy", app="kernel")
                async with asyncio.timeout(20):
                    while not (line := await resp.content.readline()).startswith(b"data: "):
                        pass
                assert json.loads(line[6:])["message"] == "through the proxy"
