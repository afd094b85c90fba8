"""TOML config file -> typed, frozen config objects: `load` a file, `parse` its TOML.

`convert` is the generic machinery (types, durations, sizes, paths, key paths,
every error collected); the sections of mepd are in `inputs`, `analysis`, `alerts`
and `outputs` by job, what they check alike in `common`, and `Config` in `schema`; `syntax` holds the small
languages of alert rules, which config validation and the alert engine share.
This package is below `mepd.alerts`: it never imports it.
"""

from __future__ import annotations

import os
from typing import Any

from mepd.config.alerts import (
    AlertActionConfig,
    AlertConfig,
    AlertNotifyConfig,
    AlertRuleConfig,
    MqttNotifyConfig,
    WebhookNotifyConfig,
)
from mepd.config.analysis import ReportConfig
from mepd.config.common import parse_rra, split_address
from mepd.config.convert import convert, convert_key, read
from mepd.config.inputs import (
    CheckConfig,
    HostConfig,
    JournalConfig,
    SnmpConfig,
    SnmpOidConfig,
    SnmpTargetConfig,
    SyslogConfig,
    SyslogListenConfig,
    TailConfig,
)
from mepd.config.outputs import (
    BasicAuthConfig,
    FleetCentralConfig,
    FleetConfig,
    HttpConfig,
    RemoteWriteConfig,
    default_node,
)
from mepd.config.schema import Config, DaemonConfig, LogStorageConfig, RrdStorageConfig, StorageConfig

__all__ = [
    "AlertActionConfig", "AlertConfig", "AlertNotifyConfig", "AlertRuleConfig", "BasicAuthConfig", "CheckConfig",
    "Config", "DaemonConfig", "FleetCentralConfig", "FleetConfig", "HostConfig", "HttpConfig", "JournalConfig",
    "LogStorageConfig", "MqttNotifyConfig", "RemoteWriteConfig", "ReportConfig", "RrdStorageConfig", "SnmpConfig",
    "SnmpOidConfig", "SnmpTargetConfig", "StorageConfig", "SyslogConfig", "SyslogListenConfig", "TailConfig",
    "WebhookNotifyConfig", "control_socket", "default_node", "load", "parse", "parse_rra", "split_address",
]


def load(path: str | os.PathLike[str]) -> Config:
    """Read and validate a config file; raise ConfigErrors listing every problem."""
    file, data = read(path)
    return parse(data, file)


def parse(data: dict[str, Any], file: str) -> Config:
    return convert(Config, data, file)


def control_socket(path: str | os.PathLike[str]) -> str:
    """`daemon.control_socket` of a config file, resolved as the daemon resolves it, read without
    validating the rest: mepctl must find the socket even when another section fails a check that
    only the daemon can pass (a keys_file only mepd may read).  ConfigErrors when the file or that key is bad."""
    file, data = read(path)
    return str(convert_key(Config, "daemon.control_socket", data, file))
