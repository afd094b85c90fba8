"""The config of what goes out: the dashboard, the fleet (NATS JetStream), remote write."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final, Literal

from mepd.config.common import HOSTNAME, ca_file_errors, secret_file_errors, split_address, tls_file_errors
from mepd.config.convert import Duration, FilePath
from mepd.errors import quoted


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """`[http]`: the dashboard.  `listen = ""` turns the server off; `export_dir` alone still exports.

    Every request needs a credential: a user of `basic_auth_file` (lines of `user:password`), the token of
    `token_file`, or, with neither set, the token mepd keeps in state_dir (mepd.web.server).  `/metrics`
    needs one too unless `metrics_auth = false`.  The Host header must be an IP address, localhost, the
    listen host or one of `allowed_hosts` (DNS rebinding).
    """

    listen: str = "127.0.0.1:8080"
    basic_auth_file: FilePath = ""
    token_file: FilePath = ""
    allowed_hosts: tuple[str, ...] = ()
    metrics_auth: bool = True
    tls_cert: FilePath = ""
    tls_key: FilePath = ""
    title: str = "mepd"
    export_dir: FilePath = ""
    export_interval: Duration = 300.0

    def check(self) -> Iterator[tuple[str, str]]:
        if self.listen:
            try:
                split_address(self.listen)
            except ValueError as e:
                yield "listen", str(e)
        for key in ("basic_auth_file", "token_file"):
            path = getattr(self, key)
            yield from ((key, msg) for msg in (secret_file_errors(path) if path else ()))
        for i, name in enumerate(self.allowed_hosts):
            if not HOSTNAME.fullmatch(name):
                yield f"allowed_hosts[{i}]", f"expected a host name like monitor.example.org, got {quoted(name)}"
        if bool(self.tls_cert) != bool(self.tls_key):
            yield "tls_cert" if not self.tls_cert else "tls_key", "TLS needs both tls_cert and tls_key"
        yield from tls_file_errors(("tls_cert", self.tls_cert), ("tls_key", self.tls_key))
        if self.export_interval < 10:
            yield "export_interval", "must be at least 10s"


_NATS_URL: Final = re.compile(r"(nats|tls)://[^/\s]+")
_SUBJECT_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


def default_node() -> str:
    """The host name up to its first dot: a node is one token of a NATS subject (`mepd.logs.<node>`)."""
    name = socket.gethostname().split(".")[0]
    return re.sub(r"[^A-Za-z0-9_-]", "_", name) or "localhost"


@dataclass(frozen=True, slots=True)
class FleetCentralConfig:
    """`[fleet.central]`: this mepd also reads every node's records into its own stores."""

    enabled: bool = False
    consumer: str = "central"  # the durable consumer's name: each central has its own, and a full copy
    batch_size: int = 100  # messages per fetch

    def check(self) -> Iterator[tuple[str, str]]:
        if not _SUBJECT_TOKEN.fullmatch(self.consumer):
            yield "consumer", f"expected letters, digits, _ or - (at most 64), got {quoted(self.consumer)}"
        if self.batch_size < 1:
            yield "batch_size", f"must be at least 1, got {self.batch_size}"


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """`[fleet]`: publish what this node stores to NATS JetStream (mepd.fleet)."""

    servers: tuple[str, ...]
    node: str = ""  # "" = the host name (`default_node`)
    user: str = ""
    password_file: FilePath = ""
    token_file: FilePath = ""
    creds_file: FilePath = ""
    tls_ca: FilePath = ""
    tls_cert: FilePath = ""
    tls_key: FilePath = ""
    replicas: int = 1  # of the streams mepd creates: 3 on a three-server cluster
    publish: tuple[Literal["logs", "incidents", "metrics"], ...] = ("logs", "incidents")
    batch_size: int = 1000  # records per message (bench/fleet: 61,000 records/s through R1, 51,000 at 500)
    metrics_queue_max: int = 1_000_000  # samples waiting on disk to be published; beyond, the oldest are dropped
    duplicate_window: Duration = 120.0
    max_age: Duration = 7 * 86400.0  # of the streams mepd creates: how long a central may stay away
    timeout: Duration = 5.0  # for one publish acknowledgement or one API request
    share_polling: bool = False  # [[snmp.target]] polled by one live poller each, through leases (mepd.fleet.sharing)
    central: FleetCentralConfig = field(default_factory=FleetCentralConfig)

    @property
    def node_name(self) -> str:
        return self.node or default_node()

    def check(self) -> Iterator[tuple[str, str]]:  # noqa: PLR0912 - one branch per documented constraint
        if not self.servers:
            yield "servers", 'expected at least one server, like ["nats://10.0.0.5:4222"]'
        for i, url in enumerate(self.servers):
            if not _NATS_URL.fullmatch(url):
                yield f"servers[{i}]", f'expected "nats://host:port" or "tls://host:port", got {quoted(url)}'
        if self.node and not _SUBJECT_TOKEN.fullmatch(self.node):
            yield "node", f"expected letters, digits, _ or - (one NATS subject token), got {quoted(self.node)}"
        methods = [k for k in ("user", "token_file", "creds_file") if getattr(self, k)]
        if len(methods) > 1:
            yield methods[1], f"choose one way to authenticate, not {' and '.join(methods)}"
        if bool(self.user) != bool(self.password_file):
            yield "password_file" if self.user else "user", "user and password_file go together"
        for key in ("password_file", "token_file", "creds_file"):
            path = getattr(self, key)
            yield from ((key, msg) for msg in (secret_file_errors(path) if path else ()))
        if bool(self.tls_cert) != bool(self.tls_key):
            yield "tls_cert" if not self.tls_cert else "tls_key", "TLS needs both tls_cert and tls_key"
        yield from tls_file_errors(("tls_cert", self.tls_cert), ("tls_key", self.tls_key))
        if self.tls_ca:
            yield from ca_file_errors("tls_ca", self.tls_ca)
        if not 1 <= self.replicas <= 5:
            yield "replicas", f"expected 1 to 5 (JetStream's limit), got {self.replicas}"
        if len(set(self.publish)) != len(self.publish):
            yield "publish", "lists a kind twice"
        if self.batch_size < 1:
            yield "batch_size", f"must be at least 1, got {self.batch_size}"
        if self.metrics_queue_max < 1:
            yield "metrics_queue_max", f"must be at least 1, got {self.metrics_queue_max}"
        if self.duplicate_window < 1:
            yield "duplicate_window", "must be at least 1s"
        if self.max_age < self.duplicate_window:
            yield "max_age", "must be at least duplicate_window"
        if self.timeout <= 0:
            yield "timeout", "must be more than 0s"


@dataclass(frozen=True, slots=True)
class BasicAuthConfig:
    user: str
    password_file: FilePath

    def check(self) -> Iterator[tuple[str, str]]:
        yield from (("password_file", msg) for msg in secret_file_errors(self.password_file))


@dataclass(frozen=True, slots=True)
class RemoteWriteConfig:
    """`[[metrics.remote_write]]`: every stored sample also goes to a Prometheus remote write receiver (mepd.export)."""

    url: str
    basic_auth: BasicAuthConfig | None = None
    bearer_token_file: FilePath = ""
    ca_file: FilePath = ""
    cert: FilePath = ""
    key: FilePath = ""
    insecure_skip_verify: bool = False
    timeout: Duration = 30.0  # for one request
    batch: int = 2000  # samples per request at most
    queue_max: int = 1_000_000  # samples waiting on disk at most; beyond, the oldest are dropped

    def check(self) -> Iterator[tuple[str, str]]:
        if not re.fullmatch(r"https?://[^/\s]+(/\S*)?", self.url):
            yield "url", f"expected an http:// or https:// URL, got {quoted(self.url)}"
        if self.basic_auth is not None and self.bearer_token_file:
            yield "bearer_token_file", "choose basic_auth or bearer_token_file, not both"
        if self.bearer_token_file:
            yield from (("bearer_token_file", msg) for msg in secret_file_errors(self.bearer_token_file))
        if bool(self.cert) != bool(self.key):
            yield "key" if self.cert else "cert", "a client certificate needs both cert and key"
        yield from tls_file_errors(("cert", self.cert), ("key", self.key))
        if self.ca_file:
            yield from ca_file_errors("ca_file", self.ca_file)
        if self.timeout <= 0:
            yield "timeout", "must be positive"
        if self.batch < 1:
            yield "batch", f"must be at least 1, got {self.batch}"
        if self.queue_max < self.batch:
            yield "queue_max", f"must be at least batch ({self.batch}), got {self.queue_max}"


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """`[metrics]`: where stored samples go besides the RRD files."""

    remote_write: tuple[RemoteWriteConfig, ...] = ()

    def check(self) -> Iterator[tuple[str, str]]:
        urls: dict[str, int] = {}
        for i, rw in enumerate(self.remote_write):
            if rw.url in urls:
                yield f"remote_write[{i}].url", f"duplicate of remote_write[{urls[rw.url]}]"
            urls[rw.url] = i
