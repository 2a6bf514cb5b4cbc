"""OpenID Connect sign-in for the audit pages: the authorization-code flow with PKCE, provider
discovery, and ID-token verification (signature from the provider's JWKS, issuer, audience,
expiry, nonce). The account and its role still come from `audit_user` (origin "oidc")."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

LEEWAY = 60  # seconds of clock skew allowed on exp/iat
PENDING_SECONDS = 600


class OidcError(Exception):
    """Sign-in refused; the message says why (logged, never shown with token contents)."""


def _b64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _int(data: str) -> int:
    return int.from_bytes(_b64(data), "big")


def public_key(jwk: dict[str, Any]) -> Any:
    if jwk.get("kty") == "RSA":
        return rsa.RSAPublicNumbers(_int(jwk["e"]), _int(jwk["n"])).public_key()
    if jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
        return ec.EllipticCurvePublicNumbers(
            _int(jwk["x"]), _int(jwk["y"]), ec.SECP256R1()
        ).public_key()
    raise OidcError(f"unsupported key type {jwk.get('kty')}/{jwk.get('crv')}")


def verify_id_token(
    token: str,
    jwks: dict[str, Any],
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    now: float | None = None,
) -> dict[str, Any]:
    """The ID token's claims if its signature and claims hold (OIDC Core 3.1.3.7)."""
    try:
        head_b64, body_b64, sig_b64 = token.split(".")
        header, claims = json.loads(_b64(head_b64)), json.loads(_b64(body_b64))
        signature = _b64(sig_b64)
    except (ValueError, json.JSONDecodeError) as exc:
        raise OidcError("the ID token is not a signed JWT") from exc
    alg = header.get("alg")
    keys = [k for k in jwks.get("keys", []) if header.get("kid") in (None, k.get("kid"))]
    if alg not in ("RS256", "ES256") or not keys:
        raise OidcError(f"no usable key for alg {alg!r} kid {header.get('kid')!r}")
    signed = f"{head_b64}.{body_b64}".encode()
    for jwk in keys:
        key = public_key(jwk)
        try:
            if alg == "RS256" and isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
                break
            if (
                alg == "ES256"
                and isinstance(key, ec.EllipticCurvePublicKey)
                and len(signature) == 64
            ):
                der = encode_dss_signature(
                    int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
                )
                key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
                break
        except InvalidSignature:
            continue
    else:
        raise OidcError("the ID token's signature does not verify")
    now = time.time() if now is None else now
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if claims.get("iss") != issuer:
        raise OidcError("the ID token is from another issuer")
    if client_id not in audiences or (len(audiences) > 1 and claims.get("azp") != client_id):
        raise OidcError("the ID token is for another client")
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] < now - LEEWAY:
        raise OidcError("the ID token has expired")
    if isinstance(claims.get("iat"), int | float) and claims["iat"] > now + LEEWAY:
        raise OidcError("the ID token is issued in the future")
    if not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
        raise OidcError("the ID token's nonce does not match this sign-in")
    return claims


@dataclass
class Pending:
    nonce: str
    verifier: str
    next: str
    expires: float


@dataclass
class Client:
    """One relying party: discovery cached, sign-ins in flight kept in memory by state."""

    issuer: str
    client_id: str
    client_secret: str
    username_claim: str = "preferred_username"
    scopes: str = "openid profile"
    pending: dict[str, Pending] = field(default_factory=dict)
    _config: dict[str, Any] | None = None

    async def _get(self, url: str) -> dict[str, Any]:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as resp:
            if resp.status != 200:
                raise OidcError(f"{url} answered {resp.status}")
            return await resp.json(content_type=None)

    async def config(self) -> dict[str, Any]:
        if self._config is None:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            config = await self._get(url)
            if config.get("issuer") != self.issuer:
                raise OidcError("discovery names another issuer than EMA_OIDC_ISSUER")
            self._config = config
        return self._config

    async def authorize_url(self, redirect_uri: str, next_path: str) -> tuple[str, str]:
        """Where to send the browser, and the state to bind to it in a cookie."""
        config = await self.config()
        now = time.time()
        self.pending = {s: p for s, p in self.pending.items() if p.expires > now}
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        self.pending[state] = Pending(nonce, verifier, next_path, now + PENDING_SECONDS)
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge.decode().rstrip("="),
            "code_challenge_method": "S256",
        }
        return f"{config['authorization_endpoint']}?{urllib.parse.urlencode(query)}", state

    async def finish(self, code: str, state: str, redirect_uri: str) -> tuple[dict[str, Any], str]:
        """Exchange the code and verify the ID token: (its claims, next path). The account is
        the token's issuer and subject (`sub`); the username claim only names it."""
        pending = self.pending.pop(state, None)
        if pending is None or pending.expires < time.time():
            raise OidcError("unknown or expired sign-in state")
        config = await self.config()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "code_verifier": pending.verifier,
        }
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.post(config["token_endpoint"], data=form) as resp,
        ):
            if resp.status != 200:
                raise OidcError(f"the token endpoint answered {resp.status}")
            tokens = await resp.json(content_type=None)
        jwks = await self._get(config["jwks_uri"])
        claims = verify_id_token(
            tokens.get("id_token", ""),
            jwks,
            issuer=self.issuer,
            client_id=self.client_id,
            nonce=pending.nonce,
        )
        if not claims.get("sub"):
            raise OidcError("the ID token has no sub")
        return claims, pending.next
