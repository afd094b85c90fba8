"""`mepctl snmp discover`: walk an agent and describe it as `[[snmp.target]]` TOML, like MRTG's cfgmaker."""

from __future__ import annotations

from typing import Final

from mepd.config import SnmpTargetConfig
from mepd.sources.snmp.interfaces import COLUMNS, UP, as_text, interfaces_from, metric_name
from mepd.sources.snmp.session import open_session

SYS_DESCR: Final = (1, 3, 6, 1, 2, 1, 1, 1, 0)
SYS_NAME: Final = (1, 3, 6, 1, 2, 1, 1, 5, 0)
_STATUS: Final = {1: "up", 2: "down", 3: "testing", 5: "dormant", 6: "notPresent", 7: "lowerLayerDown"}


def _speed(bps: float) -> str:
    for unit, size in (("Gb/s", 1e9), ("Mb/s", 1e6), ("kb/s", 1e3)):
        if bps >= size:
            return f"{bps / size:g} {unit}"
    return f"{bps:g} b/s"


def _toml(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def discover(cfg: SnmpTargetConfig) -> str:
    """Walk an agent and describe it as `[[snmp.target]]` TOML with one comment line per interface (cfgmaker)."""
    session = open_session(cfg)
    try:
        system = await session.get([SYS_NAME, SYS_DESCR])
        table = await session.walk(COLUMNS.values())
    finally:
        session.close()
    interfaces = interfaces_from({name: table[oid] for name, oid in COLUMNS.items()})
    sys_name = as_text(system.get(SYS_NAME))
    name = cfg.name if cfg.name != "discover" else metric_name(sys_name or cfg.host)
    lines = [
        f"# {cfg.host}:{cfg.port}  sysName: {sys_name or '-'}",
        f"# sysDescr: {' '.join(as_text(system.get(SYS_DESCR)).split()) or '-'}",
        "[[snmp.target]]",
        f"name = {_toml(name)}",
        f"host = {_toml(cfg.host)}",
        f"port = {cfg.port}",
        f"version = {_toml(cfg.version)}",
    ]
    secrets = cfg.secrets()
    if cfg.version == "3":
        lines += [f"user = {_toml(cfg.user)}", f"auth_protocol = {_toml(cfg.auth_protocol)}",
                  f"auth_key = {_toml(secrets['auth_key'])}", f"priv_protocol = {_toml(cfg.priv_protocol)}",
                  f"priv_key = {_toml(secrets['priv_key'])}"]
        if cfg.context:
            lines.append(f"context = {_toml(cfg.context)}")
    else:
        lines.append(f"community = {_toml(secrets['community'])}")
    lines += ['interval = "5m"', "# interfaces (ifIndex  key name  ifAlias  speed  oper/admin):"]
    for i in interfaces:
        state = f"{_STATUS.get(i.oper, str(i.oper))}/{_STATUS.get(i.admin, str(i.admin))}"
        has64 = "" if "hc_in_octets" in i.counters else "  (32-bit counters)"
        lines.append(f"#   {i.index:>5}  {i.name}  {_toml(i.alias)}  {_speed(i.speed_bps)}  {state}{has64}")
    down = [i.name for i in interfaces if i.admin != UP]
    if down:
        lines.append(f"# administratively down: {', '.join(down)}; add skip_admin_down = true to leave them out")
    return "\n".join(lines) + "\n"
