"""The operator's NATS trust: decentralized JWT auth (docs/decisions/0010).

One NATS operator key signs two accounts: EMA, where every service and unit connects as a
user of its own, and SYS, the server's system account, through which account updates
(revocations) are pushed to every server of a cluster without a restart. A user's NKey is the
Ed25519 key it signs messages with, so the unit directory binds both.

Everything lives in one folder (mode 0700, files 0600), by default `data/nats/trust/`:
`<name>.nk` NKey seeds, `state.json` (revocations, last account JWT time). Only operator
tooling reads it; services get their user JWT written beside their key.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.kit import nkeys
from services.kit.private import private_dir, write_private
from services.kit.sealing import X25519, SealingKey

ACCOUNT_NAME = "EMA"
SYSTEM_NAME = "SYS"
OPERATOR_USER = "operator"  # the people who run emaflyt (CLI): full rights in EMA
SYSTEM_USER = "sys"  # pushes account updates; nothing else
API_ISSUER = "api-issuer"  # signs the bearer tokens of the services' HTTP APIs
_UNLIMITED = {
    "subs": -1,
    "data": -1,
    "payload": -1,
    "imports": -1,
    "exports": -1,
    "wildcards": True,
    "conn": -1,
    "leaf": -1,
}
_JETSTREAM = {"mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}


def creds_file(jwt: str, key: Ed25519PrivateKey) -> str:
    """The standard NATS .creds format (nats CLI, nats-py's user_credentials=)."""
    return (
        "-----BEGIN NATS USER JWT-----\n" + jwt + "\n------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n"
        "NKEYs are sensitive and should be treated as secrets.\n\n"
        "-----BEGIN USER NKEY SEED-----\n"
        + nkeys.seed(nkeys.USER, key)
        + "\n------END USER NKEY SEED------\n"
    )


def connect_options(jwt: str, key: Ed25519PrivateKey, inbox: str | None = None) -> dict[str, Any]:
    """nats-py connect() arguments that log in as a JWT user signing with `key`."""
    options: dict[str, Any] = {
        "user_jwt_cb": lambda: jwt.encode(),
        "signature_cb": lambda nonce: nkeys.sign_nonce(key, nonce),
    }
    if inbox:
        options["inbox_prefix"] = inbox
    return options


@dataclass
class Trust:
    folder: Path
    keys: dict[str, Ed25519PrivateKey] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load_or_create(cls, folder: Path) -> Trust:
        private_dir(folder)
        os.chmod(folder, 0o700)
        trust = cls(folder)
        for name, role in (
            ("nats-operator", nkeys.OPERATOR),
            ("account", nkeys.ACCOUNT),
            ("system-account", nkeys.ACCOUNT),
            (OPERATOR_USER, nkeys.USER),
            (SYSTEM_USER, nkeys.USER),
            (API_ISSUER, nkeys.USER),
        ):
            path = folder / f"{name}.nk"
            if path.exists():
                trust.keys[name] = nkeys.from_seed(path.read_text())[1]
            else:
                trust.keys[name] = Ed25519PrivateKey.generate()
                write_private(path, nkeys.seed(role, trust.keys[name]))
        state = folder / "state.json"
        trust.state = json.loads(state.read_text()) if state.exists() else {}
        if not trust.state:
            now = int(time.time())
            trust.state = {"created": now, "account_iat": now, "revocations": {}}
            trust._save()
        return trust

    @classmethod
    def exists(cls, folder: Path) -> bool:
        return (folder / "account.nk").exists()

    def _save(self) -> None:
        write_private(self.folder / "state.json", json.dumps(self.state, indent=1))

    # -- keys and JWTs ------------------------------------------------------------------

    @property
    def operator_key(self) -> str:
        return nkeys.public_nkey(nkeys.OPERATOR, self.keys["nats-operator"])

    @property
    def account(self) -> str:
        return nkeys.public_nkey(nkeys.ACCOUNT, self.keys["account"])

    @property
    def system_account(self) -> str:
        return nkeys.public_nkey(nkeys.ACCOUNT, self.keys["system-account"])

    def operator_jwt(self) -> str:
        return nkeys.encode_jwt(
            self.keys["nats-operator"],
            nkeys.OPERATOR,
            self.operator_key,
            "emaflyt",
            {"type": "operator", "system_account": self.system_account},
            issued_at=self.state["created"],
        )

    def account_jwt(self) -> str:
        """The EMA account: JetStream on, no limits, the revoked user keys."""
        claims: dict[str, Any] = {
            "type": "account",
            "limits": {**_UNLIMITED, **_JETSTREAM},
            "default_permissions": {"pub": {}, "sub": {}},
        }
        if self.state["revocations"]:
            claims["revocations"] = dict(self.state["revocations"])
        return nkeys.encode_jwt(
            self.keys["nats-operator"],
            nkeys.OPERATOR,
            self.account,
            ACCOUNT_NAME,
            claims,
            issued_at=self.state["account_iat"],
        )

    def system_jwt(self) -> str:
        return nkeys.encode_jwt(
            self.keys["nats-operator"],
            nkeys.OPERATOR,
            self.system_account,
            SYSTEM_NAME,
            {"type": "account", "limits": _UNLIMITED},
            issued_at=self.state["created"],
        )

    def user_jwt(
        self, name: str, user_nkey: str, permissions: dict[str, Any], system: bool = False
    ) -> str:
        """A user of the EMA account (or of SYS) with exactly these permissions; with
        `allow_responses`, it may answer each request it receives once, within 2 minutes."""
        claims: dict[str, Any] = {
            "type": "user",
            "subs": -1,
            "data": -1,
            "payload": -1,
            "pub": {"allow": permissions["publish"]},
            "sub": {"allow": permissions["subscribe"]},
        }
        if permissions.get("allow_responses"):
            claims["resp"] = {"max": 1, "ttl": 120 * 10**9}
        issuer = self.keys["system-account" if system else "account"]
        return nkeys.encode_jwt(issuer, nkeys.ACCOUNT, user_nkey, name, claims)

    def own_user(self, name: str) -> tuple[str, Ed25519PrivateKey]:
        """The JWT and key of the operator's own users: `operator` (all of EMA) or `sys`."""
        key = self.keys[name]
        everything = {"publish": [">"], "subscribe": [">"]}
        jwt = self.user_jwt(
            name, nkeys.public_nkey(nkeys.USER, key), everything, system=name == SYSTEM_USER
        )
        return jwt, key

    def connect_options(self, name: str = OPERATOR_USER) -> dict[str, Any]:
        jwt, key = self.own_user(name)
        return connect_options(jwt, key)

    def api_token(
        self, subject: str, role: str, unit: str | None = None, hours: float = 8.0
    ) -> str:
        """A bearer token for the services' HTTP APIs (services.kit.api_auth)."""
        from services.kit import api_auth

        return api_auth.issue(self.keys[API_ISSUER], subject, role, unit, hours)

    def dead_letter_key(self) -> SealingKey:
        """The operator's X25519 key that dead letters are sealed to (made on first use)."""
        return SealingKey.load_or_create(self.folder / "dead-letter.json", X25519)

    def open_dead_letter(self, body: bytes, headers: dict[str, str]) -> bytes:
        """A dead letter's body as it came, opened when it was sealed to the operator."""
        from contracts.messages import SealedPayload
        from services.kit.bus import (
            HEADER_DLQ_CONSUMER,
            HEADER_DLQ_KID,
            HEADER_DLQ_SEALED,
            dead_letter_context,
        )

        if not headers.get(HEADER_DLQ_SEALED):
            return body
        payload = SealedPayload(
            suite=headers[HEADER_DLQ_SEALED],  # type: ignore[arg-type]
            recipient_kid=headers.get(HEADER_DLQ_KID, ""),
            sealed=base64.b64encode(body).decode(),
        )
        context = dead_letter_context(
            headers.get(HEADER_DLQ_CONSUMER, ""), headers.get("Ema-Dlq-Stream-Seq", "")
        )
        return self.dead_letter_key().open(payload, context)

    @property
    def api_issuer_public(self) -> str:
        return base64.b64encode(nkeys.raw_public(self.keys[API_ISSUER])).decode()

    # -- revocation ---------------------------------------------------------------------

    def revoke(self, user_nkeys: list[str], at: int | None = None) -> bool:
        """Revoke user keys (every JWT of theirs issued until now). True if anything changed."""
        at = at if at is not None else int(time.time())
        changed = False
        for user in user_nkeys:
            if user not in self.state["revocations"]:
                self.state["revocations"][user] = at
                changed = True
        if changed:
            # A newer account JWT (by its issue time) replaces the one the servers hold.
            self.state["account_iat"] = max(int(time.time()), self.state["account_iat"] + 1)
            self._save()
        return changed

    def is_revoked(self, user_nkey: str) -> bool:
        return user_nkey in self.state["revocations"]

    # -- the server's configuration -------------------------------------------------------

    def server_config(self, resolver_dir: Path) -> str:
        """The part of nats-server's configuration that makes it trust this operator."""
        return "\n".join(
            [
                "# Generated by deploy/trust.py: decentralized JWT auth (docs/decisions/0010).",
                f"operator: {self.operator_jwt()}",
                f"system_account: {self.system_account}",
                "resolver: {",
                "  type: full",
                f'  dir: "{resolver_dir}"',
                "  allow_delete: false",
                '  interval: "2m"',
                '  timeout: "1.9s"',
                "}",
                "resolver_preload: {",
                f"  {self.account}: {self.account_jwt()}",
                f"  {self.system_account}: {self.system_jwt()}",
                "}",
                "",
            ]
        )

    async def push_account(self, servers: list[str], wait: float = 1.0) -> int:
        """Send the current account JWT to every server of the cluster (through SYS); returns
        how many servers acknowledged it. Revoked users are disconnected at once."""
        import nats

        nc = await nats.connect(
            servers=servers,
            connect_timeout=3,
            max_reconnect_attempts=2,
            **self.connect_options(SYSTEM_USER),
        )
        replies: list[dict[str, Any]] = []
        done = asyncio.Event()

        async def on_reply(msg: Any) -> None:
            replies.append(json.loads(msg.data))
            done.set()

        try:
            inbox = nc.new_inbox()
            sub = await nc.subscribe(inbox, cb=on_reply)
            await nc.publish("$SYS.REQ.CLAIMS.UPDATE", self.account_jwt().encode(), reply=inbox)
            await nc.flush()
            try:
                await asyncio.wait_for(done.wait(), timeout=5)
            except TimeoutError:
                raise RuntimeError("no NATS server answered the account update") from None
            await asyncio.sleep(wait)  # the other servers of a cluster answer too
            await sub.unsubscribe()
        finally:
            await nc.close()
        errors = [r["error"] for r in replies if r.get("error")]
        if errors:
            raise RuntimeError(f"account update refused: {errors[0]}")
        return len(replies)


def user_public_key(public_b64: str) -> str:
    """The NATS user NKey of a unit key registered as base64 raw Ed25519."""
    return nkeys.public_nkey(nkeys.USER, base64.b64decode(public_b64))
