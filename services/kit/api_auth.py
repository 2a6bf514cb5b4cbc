"""Sign-in for the services' HTTP APIs: bearer tokens the operator issues (`emaflyt token
issue`), signed with the API issuer key whose public half the operator's tooling writes beside
each service's key. Every route names the roles that may call it; health and metrics are open,
the audit pages have their own sign-in."""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

log = logging.getLogger("kit.api")

OPERATOR, PRIVACY_OFFICER, ADMINISTRATOR, UNIT = (
    "operator",
    "privacy_officer",
    "administrator",
    "unit",
)
ROLES = (OPERATOR, PRIVACY_OFFICER, ADMINISTRATOR, UNIT)
OPEN = ("/healthz", "/readyz", "/livez", "/metrics")
PREFIX = "ema1"


class InvalidToken(ValueError):
    """The token is malformed, forged, expired or from an issuer this service does not know."""


@dataclass(frozen=True)
class Principal:
    subject: str
    role: str
    unit: str | None = None


# Who called: set on the request once its token is checked.
PRINCIPAL = web.RequestKey("principal", Principal)


@dataclass(frozen=True)
class Access:
    """Who may call a route: these roles, and a unit's own token where the route is about
    that unit (`unit_param` names the path parameter; `unit_of` maps it to a unit id)."""

    roles: frozenset[str]
    unit_param: str | None = None
    unit_of: Callable[[str], str] = field(default=lambda value: value)
    record: bool = False  # every call, allowed or refused, goes to the service's view log

    def allows(self, who: Principal, match_info: Any) -> bool:
        if who.role in self.roles:
            return True
        if who.role == UNIT and self.unit_param and who.unit:
            return self.unit_of(match_info.get(self.unit_param, "")) == who.unit
        return False


def allow(
    *roles: str,
    unit_param: str | None = None,
    unit_of: Callable[[str], str] | None = None,
    record: bool = False,
) -> Access:
    return Access(frozenset(roles), unit_param, unit_of or (lambda value: value), record)


OPERATORS = allow(OPERATOR, ADMINISTRATOR, PRIVACY_OFFICER)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(
    key: Ed25519PrivateKey, subject: str, role: str, unit: str | None = None, hours: float = 8.0
) -> str:
    if role not in ROLES:
        raise ValueError(f"role: one of {', '.join(ROLES)}")
    if role == UNIT and not unit:
        raise ValueError("a unit token names its unit")
    now = int(time.time())
    claims = {
        "sub": subject,
        "role": role,
        "iat": now,
        "exp": now + int(hours * 3600),
        "jti": uuid.uuid4().hex,
        **({"unit": unit} if unit else {}),
    }
    body = _b64(json.dumps(claims, sort_keys=True).encode())
    signature = key.sign(f"{PREFIX}.{body}".encode())
    return f"{PREFIX}.{body}.{_b64(signature)}"


def verify(token: str, issuers: list[Ed25519PublicKey], now: float | None = None) -> Principal:
    try:
        prefix, body, signature = token.strip().split(".")
        claims = json.loads(_unb64(body))
        raw_signature = _unb64(signature)
    except ValueError:
        raise InvalidToken("not an emaflyt API token") from None
    if prefix != PREFIX:
        raise InvalidToken("not an emaflyt API token")
    for issuer in issuers:
        try:
            issuer.verify(raw_signature, f"{prefix}.{body}".encode())
            break
        except InvalidSignature:
            continue
    else:
        raise InvalidToken("token not signed by this system's issuer")
    if not isinstance(claims, dict) or claims.get("role") not in ROLES:
        raise InvalidToken("token without a known role")
    if (now or time.time()) >= claims.get("exp", 0):
        raise InvalidToken("token expired: ask for a new one (emaflyt token issue)")
    return Principal(str(claims.get("sub", "")), claims["role"], claims.get("unit"))


def load_issuers(path: Path | None) -> list[Ed25519PublicKey]:
    """Base64 raw Ed25519 public keys, one a line (more than one while the key rotates)."""
    if path is None or not path.exists():
        return []
    return [
        Ed25519PublicKey.from_public_bytes(base64.b64decode(line.strip()))
        for line in path.read_text().splitlines()
        if line.strip()
    ]


ViewRecorder = Callable[[web.Request, Principal | None, bool], Awaitable[None]]


def _refuse(status: int, message: str) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="emaflyt"'} if status == 401 else None
    return web.json_response({"error": message}, status=status, headers=headers)


def middleware(
    access: dict[str, Access],
    issuers: Callable[[], list[Ed25519PublicKey]],
    recorder: Callable[[], ViewRecorder | None],
) -> Any:
    """Every route but health, metrics and the audit pages needs a valid token whose role
    the route allows; routes marked `record` log each call, refused ones too."""

    @web.middleware
    async def sign_in(request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        if path in OPEN or path == "/audit" or path.startswith("/audit/"):
            return await handler(request)
        resource = request.match_info.route.resource
        pattern = resource.canonical if resource is not None else path
        rule = access.get(f"{request.method} {pattern}") or access.get(pattern, allow(OPERATOR))
        record = recorder() if rule.record else None
        keys = issuers()
        if not keys:
            return _refuse(503, "API sign-in is not configured: no token issuer key")
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            if record:
                await record(request, None, False)
            return _refuse(
                401,
                "sign-in required: send Authorization: Bearer <token> "
                "(an operator issues one: emaflyt token issue)",
            )
        try:
            who = verify(header.removeprefix("Bearer "), keys)
        except InvalidToken as exc:
            if record:
                await record(request, None, False)
            return _refuse(401, str(exc))
        allowed = rule.allows(who, request.match_info)
        if record:
            await record(request, who, allowed)
        if not allowed:
            log.info(
                "api call refused",
                extra={"path": pattern, "role": who.role, "subject": who.subject},
            )
            return _refuse(403, f"a {who.role} token may not call {pattern}")
        request[PRINCIPAL] = who
        return await handler(request)

    return sign_in
