"""SNMPv3 requests (USM authentication and privacy) through pysnmp: a `session.Client`.

A module of its own so that pysnmp (about 25 MB of imported code) is loaded
only when a target is v3: v2c goes through mepd's own codec (`wire`).
Answers are converted to wire's plain values, so the poller sees one shape.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any, Final

from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
    USM_AUTH_HMAC96_MD5,
    USM_AUTH_HMAC96_SHA,
    USM_AUTH_HMAC128_SHA224,
    USM_AUTH_HMAC192_SHA256,
    USM_AUTH_HMAC256_SHA384,
    USM_AUTH_HMAC384_SHA512,
    USM_AUTH_NONE,
    USM_PRIV_CBC56_DES,
    USM_PRIV_CBC168_3DES,
    USM_PRIV_CFB128_AES,
    USM_PRIV_CFB192_AES,
    USM_PRIV_CFB256_AES,
    USM_PRIV_NONE,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    Udp6TransportTarget,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
)
from pysnmp.proto import rfc1902, rfc1905

from mepd.config import SnmpTargetConfig
from mepd.sources.snmp import wire
from mepd.sources.snmp.wire import SnmpError

AUTH: Final = {
    "none": USM_AUTH_NONE, "MD5": USM_AUTH_HMAC96_MD5, "SHA": USM_AUTH_HMAC96_SHA,
    "SHA-224": USM_AUTH_HMAC128_SHA224, "SHA-256": USM_AUTH_HMAC192_SHA256,
    "SHA-384": USM_AUTH_HMAC256_SHA384, "SHA-512": USM_AUTH_HMAC384_SHA512,
}
PRIV: Final = {
    "none": USM_PRIV_NONE, "DES": USM_PRIV_CBC56_DES, "3DES": USM_PRIV_CBC168_3DES,
    "AES": USM_PRIV_CFB128_AES, "AES-192": USM_PRIV_CFB192_AES, "AES-256": USM_PRIV_CFB256_AES,
}

_PLAIN_INTS: Final = ((rfc1902.Counter64, wire.Counter64), (rfc1902.Counter32, wire.Counter32),
                      (rfc1902.TimeTicks, wire.TimeTicks), (rfc1902.Gauge32, wire.Gauge32))
_PLAIN_EXCEPTIONS: Final = (
    (rfc1905.EndOfMibView, wire.END_OF_MIB_VIEW),
    (rfc1905.NoSuchInstance, wire.NO_SUCH_INSTANCE),
    (rfc1905.NoSuchObject, wire.NO_SUCH_OBJECT),
)


def _plain(value: Any) -> object:
    """A pysnmp value as the plain values of `wire`, so both paths look the same to the poller."""
    plain: object = None
    if kind := next((p for k, p in _PLAIN_INTS if isinstance(value, k)), None):
        plain = kind(int(value))
    elif exc := next((e for k, e in _PLAIN_EXCEPTIONS if isinstance(value, k)), None):
        plain = exc
    elif isinstance(value, rfc1902.ObjectIdentifier):
        plain = tuple(value)
    elif isinstance(value, rfc1902.Integer32) or type(value).__name__ == "Integer":
        plain = int(value)
    elif isinstance(value, (rfc1902.OctetString, rfc1902.IpAddress)):
        plain = bytes(value)
    return plain


class V3Client:
    """SNMPv3 (USM authentication and privacy) through pysnmp, with its own engine."""

    resent = 0  # pysnmp resends on its own and does not say so

    def __init__(self, cfg: SnmpTargetConfig) -> None:
        secrets = cfg.secrets()
        self.engine = SnmpEngine()
        self.auth = UsmUserData(
            cfg.user,
            secrets["auth_key"] if cfg.auth_protocol != "none" else None,
            secrets["priv_key"] if cfg.priv_protocol != "none" else None,
            authProtocol=AUTH[cfg.auth_protocol], privProtocol=PRIV[cfg.priv_protocol],
        )
        self.context = ContextData(contextName=cfg.context)
        self.cfg = cfg
        self.transport: Any = None

    async def _transport(self) -> Any:
        if self.transport is None:
            try:
                is_v6 = ipaddress.ip_address(self.cfg.host).version == 6
            except ValueError:
                is_v6 = False
            kind = Udp6TransportTarget if is_v6 else UdpTransportTarget
            try:
                self.transport = await kind.create((self.cfg.host, self.cfg.port), timeout=self.cfg.timeout,
                                                   retries=self.cfg.retries)
            except PySnmpError as e:
                raise SnmpError(f"cannot resolve {self.cfg.host}: {e}") from None
        return self.transport

    async def request(self, oids: Sequence[bytes], bulk: tuple[int, int] | None = None,
                      ) -> tuple[int, int, wire.VarBinds]:
        transport = await self._transport()
        objects = [ObjectType(ObjectIdentity(wire.decode_oid(o))) for o in oids]
        if bulk is None:
            result = await get_cmd(self.engine, self.auth, transport, self.context, *objects, lookupMib=False)
        else:
            result = await bulk_cmd(self.engine, self.auth, transport, self.context, *bulk, *objects,
                                    lookupMib=False)
        error_indication, status, index, varbinds = result
        if error_indication:
            raise SnmpError(str(error_indication))
        return int(status or 0), int(index or 0), wire.VarBinds([wire.oid_bytes(tuple(oid)) for oid, _ in varbinds],
                                                                [_plain(value) for _, value in varbinds])

    def close(self) -> None:
        self.engine.close_dispatcher()
