"""Log-derived metrics through the real daemon: records sent over UDP (raw datagrams and `logger`), counted in
the RRDs as an independent count of what was sent says, read back with `mepctl metrics show`."""

from __future__ import annotations

import json
import socket
import subprocess
from collections import Counter
from collections.abc import Callable
from typing import Any

from tests.helpers import Mepd, free_port, prometheus_samples, syslog_listen, wait_for

HOSTS = ("web1", "db.example", "fw")
APPS = ("sshd", "cron", "nginx")
SEVS = (3, 4, 6)  # err, warning, info


def stored_sum(d: Mepd, key: str) -> float | None:
    """The sum of a key's stored points over the last 10 minutes; None while it has no file."""
    result = d.mepctl("metrics", "show", key, "--since", "10m", "--json", check=False)
    if result.returncode != 0:
        return None
    data: dict[str, Any] = json.loads(result.stdout)
    return float(sum(p["value"] for p in data["points"] if p["value"] is not None))


def test_log_intake_and_user_metrics_equal_the_sent_counts(mepd_factory: Callable[..., Mepd]) -> None:
    port, http = free_port(), free_port()
    config = (syslog_listen(port, "udp") + f'[http]\nlisten = "127.0.0.1:{http}"\n[logs]\nintake = true\nstep = "2s"\n'
              '[[logs.metric]]\nname = "failed_password"\npattern = "Failed password for (?P<user>\\\\S+)"\n'
              'by = "host"\n'
              '[[logs.metric]]\nname = "fw_bytes"\npattern = "len=(?P<len>[0-9]+)"\nvalue = "len"\napp = "kernel"\n')
    d = mepd_factory(config).start()
    wait_for(lambda: stored_sum(d, "logs.all.records") is not None, what="the first (empty) intake step stored")
    sent: list[tuple[str, str, int, str]] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(120):
            host, app, sev = HOSTS[i % 3], APPS[i % 7 % 3], SEVS[i % 5 % 3]
            msg = f"Failed password for user{i % 4} from 192.0.2.{i % 9}" if i % 4 == 0 else f"event {i}"
            sent.append((host, app, sev, msg))
            sock.sendto(f"<{8 * 4 + sev}>Nov 28 10:00:{i % 60:02d} {host} {app}[{i}]: {msg}".encode(),
                        ("127.0.0.1", port))
        for n in (100, 250):
            msg = f"IN=eth0 OUT= len={n} DROP"
            sent.append(("fw", "kernel", 4, msg))
            sock.sendto(f"<4>Nov 28 10:01:00 fw kernel: {msg}".encode(), ("127.0.0.1", port))
    subprocess.run(["logger", "-d", "-n", "127.0.0.1", "-P", str(port), "--rfc3164", "-t", "cron", "-p", "user.err",
                    "from logger"], check=True, timeout=30)
    total = len(sent) + 1
    d.wait_logs(total)

    wait_for(lambda: stored_sum(d, "logs.all.records") == total, timeout=60, what=f"{total} records in logs.all")
    hosts = Counter(h for h, _, _, _ in sent)
    for host, n in hosts.items():
        assert stored_sum(d, f"logs.host.{host}.records") == n
    assert stored_sum(d, "logs.host.fw.errors") == sum(1 for h, _, s, _ in sent if h == "fw" and s <= 3)
    severities = Counter(s for _, _, s, _ in sent)
    assert stored_sum(d, "logs.severity.err.records") == severities[3] + 1  # and logger's
    assert stored_sum(d, "logs.severity.warning.records") == severities[4]
    assert stored_sum(d, "logs.severity.info.records") == severities[6]
    apps = Counter(a for _, a, _, _ in sent) + Counter(["cron"])
    assert sum(stored_sum(d, f"logs.app.{a}.records") or 0.0 for a in apps) == total  # 4 apps, all in the top 10
    failed = Counter(h for h, _, _, m in sent if m.startswith("Failed password"))
    assert stored_sum(d, "logs.metric.failed_password.total") == sum(failed.values())
    for host, n in failed.items():
        assert stored_sum(d, f"logs.metric.failed_password.by.{host}") == n
    assert stored_sum(d, "logs.metric.fw_bytes.total") == 350
    status = d.mepctl_json("status")
    assert "analysis/logs" in {c["name"] for c in status["components"]}

    # The Log intake page draws them; /metrics exports the last step's counts.
    page = d.dashboard_get(f"http://127.0.0.1:{http}/intake.html").decode()
    for key in ("logs.all.records", "logs.severity.err.records", "logs.host.db.example.records",
                "logs.metric.failed_password.total"):
        assert f"graph/{key}/" in page
        assert d.dashboard_get(f"http://127.0.0.1:{http}/graph/{key}/mini.png").startswith(b"\x89PNG")
    scraped = prometheus_samples(d.dashboard_get(f"http://127.0.0.1:{http}/metrics").decode())
    assert ("mepd_metric", frozenset({("key", "logs.all.records")})) in scraped
