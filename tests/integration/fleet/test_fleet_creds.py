"""`creds_file` against a nats-server in operator mode (JWT accounts), with a chain made by `nats_jwt`."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import nkeys

from tests.helpers import Mepd, free_port, syslog_listen, wait_for
from tests.integration.fleet.conftest import NatsServer
from tests.integration.fleet.nats_jwt import Key, Operator, account_jwt, user_jwt, write_creds
from tests.integration.fleet.test_fleet_daemon import MakeMepd, component, fleet, numbered, send_udp


def block(creds: Path, begin: str) -> str:
    """The line after `-----BEGIN <begin>-----` in a .creds file: the JWT or the seed."""
    lines = creds.read_text().splitlines()
    return lines[lines.index(f"-----BEGIN {begin}-----") + 1]


def tampered(creds: Path, out: Path) -> Path:
    """`creds` with its JWT's name changed after signing: the account's signature no longer matches."""
    header, payload, signature = block(creds, "NATS USER JWT").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["name"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return write_creds(out, f"{header}.{forged}.{signature}", block(creds, "USER NKEY SEED"))


def test_creds_file_carries_records_and_an_unknown_account_or_a_forged_jwt_is_a_status_line(
        nats_factory: Callable[..., NatsServer], mepd_factory: MakeMepd, tmp_path: Path) -> None:
    operator = Operator.new()
    server = nats_factory(operator.server_config(tmp_path) + "debug: true\n")  # the server logs why it refused

    def creds(path: Path) -> str:
        return f'creds_file = "{path}"\n'

    edge_creds = operator.user_creds(tmp_path / "web1.creds", "web1")
    stranger = Operator.new().user_creds(tmp_path / "stranger.creds", "web2")  # an account this server never saw
    forged = tampered(operator.user_creds(tmp_path / "web3-signed.creds", "web3"), tmp_path / "web3.creds")
    ports = {node: free_port() for node in ("web1", "web2", "web3")}
    mepd_factory(syslog_listen(ports["web1"], "udp") + fleet(server, "web1", creds(edge_creds))).start()
    wrong = {node: (mepd_factory(syslog_listen(ports[node], "udp") + fleet(server, node, creds(path))).start(), path)
             for node, path in (("web2", stranger), ("web3", forged))}
    central = mepd_factory(fleet(server, "central", 'publish = []\n'
                                 + creds(operator.user_creds(tmp_path / "central.creds", "central")))
                           + '[fleet.central]\nenabled = true\nconsumer = "c1"\n').start()
    for port in ports.values():
        send_udp(port, 0, 10)
    central.wait_logs(10, "--node", "web1")
    assert numbered(central, "--node", "web1") == list(range(10))
    assert component(central, "fleet/central")["details"]["state"] == "connected"

    for node, (daemon, path) in wrong.items():
        def refused() -> str | None:
            d = component(daemon, "fleet/publish")["details"]  # noqa: B023 - called within this iteration
            return d["last_error"] if d["state"] != "connected" and d["last_error"] else None

        error = wait_for(refused, what=f"{node}'s refusal in status")
        assert "authorization violation" in error.lower()
        assert f"fleet/publish: connecting: {error}" in daemon.mepctl("status").stdout
        assert component(daemon, "fleet/publish")["state"] == "running"
        assert block(path, "USER NKEY SEED") not in daemon.stderr()
        daemon.wait_logs(10)  # still collecting
        assert central.logs("--node", node) == []
    # Each was refused for the reason it was made with, not for a malformed file.
    refusals = server.log.read_text()
    assert "Account fetch failed: account missing" in refusals
    assert "User JWT not valid: claim failed V2 signature verification" in refusals


def test_an_account_without_jetstream_is_a_status_line_with_the_fix_not_a_crash(
        nats_factory: Callable[..., NatsServer], mepd_factory: MakeMepd, tmp_path: Path) -> None:
    operator = Operator.new()
    nojs = Key.new(nkeys.PREFIX_BYTE_ACCOUNT)
    config = operator.server_config(tmp_path)
    assert config.endswith("}\n")
    config = config[:-2] + f'  {nojs.public}: "{account_jwt(operator.key, nojs, "nojs", jetstream=False)}"\n}}\n'
    server = nats_factory(config)

    def creds(account: Key, name: str) -> str:
        user = Key.new(nkeys.PREFIX_BYTE_USER)
        return f'creds_file = "{write_creds(tmp_path / f"{name}.creds", user_jwt(account, user, name), user.seed)}"\n'

    # An account whose limits give no JetStream (the server answers 503), and the system account, which has no
    # JetStream API at all (its requests go unanswered).
    daemons = {}
    for node, account, says in (("web1", nojs, "JetStream not enabled for account"),
                                ("web2", operator.system, "does not answer JetStream requests")):
        port = free_port()
        daemon = mepd_factory(syslog_listen(port, "udp") + fleet(server, node, creds(account, node))).start()
        send_udp(port, 0, 10)
        daemons[node] = (daemon, says)
    for daemon, says in daemons.values():
        daemon.wait_logs(10)  # still collecting

        def refused(d: Mepd = daemon) -> dict[str, object] | None:
            details: dict[str, object] = component(d, "fleet/publish")["details"]
            return details if details["state"] == "stream refused" else None

        details = wait_for(refused, what="the refusal in status")
        assert says in str(details["last_error"])
        assert "nsc edit account --js-mem-storage -1" in str(details["last_error"])
        # Still refused, still running: it looks again every few seconds and never gives up (no FATAL, no
        # restart by the supervisor, no traceback).
        wait_for(lambda d=daemon: refused(d) and component(d, "fleet/publish")["state"] == "running",
                 what="still refused")
        assert component(daemon, "fleet/publish")["restarts"] == 0
        assert "Traceback" not in daemon.stderr()
