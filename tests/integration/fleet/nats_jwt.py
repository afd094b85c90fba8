"""NATS decentralised auth made by hand: operator, account and user JWTs, and a user's .creds file.

nsc is not installed, so the chain `nsc` would make is built here with the `nkeys`
package, in the layout of github.com/nats-io/jwt v2: a header
`{"typ":"JWT","alg":"ed25519-nkey"}`, claims with `jti` (base32 of SHA-512/256 of
the claims before `nats`, as the Go library makes it; the server does not check
it), `iat`, `iss` (the signer's public key), `sub`, `name` and `nats` (`type`,
`version: 2`), each part base64url without padding, and the issuer's ed25519
signature over "header.payload".  An operator signs itself and its accounts, an
account its users; the server trusts the operator's JWT and is preloaded with the
accounts' (`resolver: MEMORY`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nkeys

NO_LIMIT = -1
# An account may use JetStream only if its limits give it storage: nsc's `--js-mem-storage -1 --js-disk-storage -1`.
JETSTREAM_UNLIMITED = {"mem_storage": NO_LIMIT, "disk_storage": NO_LIMIT, "streams": NO_LIMIT, "consumer": NO_LIMIT}
# The jwt library's defaults for a new account (NATS and account limits unlimited, JetStream off).
ACCOUNT_LIMITS = {"subs": NO_LIMIT, "data": NO_LIMIT, "payload": NO_LIMIT, "imports": NO_LIMIT,
                  "exports": NO_LIMIT, "wildcards": True, "conn": NO_LIMIT, "leaf": NO_LIMIT}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Key:
    """An nkey pair: `public` starts with O, A or U by its role, `seed` with SO, SA or SU."""

    seed: str
    public: str

    @classmethod
    def new(cls, prefix: int) -> Key:
        seed = nkeys.encode_seed(os.urandom(32), prefix)
        return cls(seed.decode(), nkeys.from_seed(bytearray(seed)).public_key.decode())

    def sign(self, data: bytes) -> bytes:
        signature: bytes = nkeys.from_seed(bytearray(self.seed.encode())).sign(data)
        return signature


def encode(issuer: Key, subject: str, name: str, nats: dict[str, Any]) -> str:
    """A JWT with these claims, signed by `issuer`."""
    claims: dict[str, Any] = {"iat": int(time.time()), "iss": issuer.public, "name": name, "sub": subject}
    claims["jti"] = base64.b32encode(hashlib.new("sha512_256", _json(claims)).digest()).rstrip(b"=").decode()
    claims["nats"] = {**nats, "version": 2}
    signed = f"{_b64(_json({'typ': 'JWT', 'alg': 'ed25519-nkey'}))}.{_b64(_json(claims))}"
    return f"{signed}.{_b64(issuer.sign(signed.encode()))}"


def operator_jwt(operator: Key, system_account: Key) -> str:
    return encode(operator, operator.public, "test-operator",
                  {"type": "operator", "system_account": system_account.public})


def account_jwt(operator: Key, account: Key, name: str, jetstream: bool) -> str:
    limits = ACCOUNT_LIMITS | (JETSTREAM_UNLIMITED if jetstream else {})
    return encode(operator, account.public, name, {"type": "account", "limits": limits})


def user_jwt(account: Key, user: Key, name: str) -> str:
    return encode(account, user.public, name, {"type": "user", "pub": {}, "sub": {}, "subs": NO_LIMIT,
                                                "data": NO_LIMIT, "payload": NO_LIMIT})


def write_creds(path: Path, jwt: str, seed: str) -> Path:
    """A .creds file as `nsc generate creds` writes it, readable by its owner only (mepd's check)."""
    path.write_text(f"-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n"
                    "************************* IMPORTANT *************************\n"
                    "NKEY Seed printed below can be used to sign and prove identity.\n"
                    "NKEYs are sensitive and should be treated as secrets.\n\n"
                    f"-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n"
                    "*************************************************************\n")
    path.chmod(0o600)
    return path


@dataclass(frozen=True, slots=True)
class Operator:
    """An operator with a system account and one JetStream account, `mepd`; `user_creds` makes its users."""

    key: Key
    system: Key
    account: Key

    @classmethod
    def new(cls) -> Operator:
        return cls(Key.new(nkeys.PREFIX_BYTE_OPERATOR), Key.new(nkeys.PREFIX_BYTE_ACCOUNT),
                   Key.new(nkeys.PREFIX_BYTE_ACCOUNT))

    def server_config(self, root: Path) -> str:
        """nats-server's operator mode: trust this operator, its two accounts preloaded."""
        jwt = root / "operator.jwt"
        jwt.write_text(operator_jwt(self.key, self.system) + "\n")
        return (f'operator: "{jwt}"\nsystem_account: {self.system.public}\nresolver: MEMORY\n'
                f'resolver_preload: {{\n'
                f'  {self.system.public}: "{account_jwt(self.key, self.system, "SYS", jetstream=False)}"\n'
                f'  {self.account.public}: "{account_jwt(self.key, self.account, "mepd", jetstream=True)}"\n}}\n')

    def user_creds(self, path: Path, name: str) -> Path:
        user = Key.new(nkeys.PREFIX_BYTE_USER)
        return write_creds(path, user_jwt(self.account, user, name), user.seed)
