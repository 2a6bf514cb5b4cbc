"""OpenID Connect sign-in to the audit pages, in headless Chromium, against a small provider
served by the test (discovery, authorize, token with PKCE, JWKS; RS256 ID tokens)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from deploy.launcher import System, free_port
from tests.e2e.test_audit import audit_cli, base, browser  # noqa: F401 (fixture)

CLIENT_ID, CLIENT_SECRET = "emaflyt-audit", "s3cret-for-tests"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Provider:
    """Signs in whoever `user` names; `forge` signs with a key that is not in the JWKS."""

    def __init__(self) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.user = "ombud-oidc"
        self.forge = False
        self.codes: dict[str, dict[str, str]] = {}

    def jwks(self) -> dict[str, Any]:
        n = self.key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "kid": "k1",
                    "alg": "RS256",
                    "use": "sig",
                    "n": b64(n.n.to_bytes(256, "big")),
                    "e": b64(n.e.to_bytes(3, "big")),
                }
            ]
        }

    def id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": "sub-" + self.user,
            "preferred_username": self.user,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
        }
        header = {"alg": "RS256", "kid": "k1"}
        signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        key = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if self.forge
            else self.key
        )
        sig = key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing}.{b64(sig)}"

    def app(self) -> web.Application:
        async def discovery(_: web.Request) -> web.Response:
            return web.json_response(
                {
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token",
                    "jwks_uri": f"{self.issuer}/jwks",
                }
            )

        async def authorize(request: web.Request) -> web.Response:
            q = request.query
            assert q["client_id"] == CLIENT_ID and q["code_challenge_method"] == "S256"
            code = secrets.token_urlsafe(12)
            self.codes[code] = {
                "nonce": q["nonce"],
                "challenge": q["code_challenge"],
                "redirect_uri": q["redirect_uri"],
            }
            raise web.HTTPFound(f"{q['redirect_uri']}?code={code}&state={q['state']}")

        async def token(request: web.Request) -> web.Response:
            form = await request.post()
            grant = self.codes.pop(str(form["code"]), None)
            verifier = str(form.get("code_verifier", ""))
            if (
                grant is None
                or form.get("client_secret") != CLIENT_SECRET
                or b64(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]
                or form.get("redirect_uri") != grant["redirect_uri"]
            ):
                return web.json_response({"error": "invalid_grant"}, status=400)
            return web.json_response(
                {
                    "access_token": "x",
                    "token_type": "Bearer",
                    "id_token": self.id_token(grant["nonce"]),
                }
            )

        async def jwks(_: web.Request) -> web.Response:
            return web.json_response(self.jwks())

        app = web.Application()
        app.add_routes(
            [
                web.get("/.well-known/openid-configuration", discovery),
                web.get("/authorize", authorize),
                web.post("/token", token),
                web.get("/jwks", jwks),
            ]
        )
        return app


@pytest.fixture
async def provider() -> AsyncIterator[Provider]:
    p = Provider()
    runner = web.AppRunner(p.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", p.port).start()
    yield p
    await runner.cleanup()


@pytest.fixture
def oidc_system(tmp_path: Path, provider: Provider) -> Iterator[System]:
    system = System(
        tmp_path,
        nats_port=0,
        monitor_port=0,
        http_ports={"consent": 0},
        services=("consent",),
        env={
            "EMA_OIDC_ISSUER": provider.issuer,
            "EMA_OIDC_CLIENT_ID": CLIENT_ID,
            "EMA_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        },
    )
    try:
        system.up()
        yield system
    finally:
        system.down()


async def test_oidc_sign_in_verifies_the_id_token_and_needs_an_account(
    oidc_system: System,
    provider: Provider,
    browser: Any,  # noqa: F811
) -> None:
    out = audit_cli(
        oidc_system,
        "user",
        "add",
        "--username",
        "ombud-oidc",
        "--role",
        "privacy_officer",
        "--oidc",
    )
    assert out.returncode == 0, out.stderr
    page = await browser.new_page()

    async def sign_in() -> str:
        await page.goto(base(oidc_system) + "/audit/login")
        await page.get_by_role("link", name="Logg inn med virksomhetens innlogging").click()
        await page.wait_for_load_state("networkidle")
        return page.url

    assert (await sign_in()).endswith("/audit/decisions")
    assert "ombud-oidc" in await page.locator("header").inner_text()
    # A token signed with another key is refused, as is a user without an account.
    await page.context.clear_cookies()
    provider.forge = True
    assert "/audit/login" in await sign_in() or "/audit/oidc/callback" in page.url
    assert "Feil brukernavn" in await page.locator("main").inner_text()
    provider.forge, provider.user = False, "stranger"
    await sign_in()
    assert "Feil brukernavn" in await page.locator("main").inner_text()
    response = await page.goto(base(oidc_system) + "/audit/decisions")
    assert "/audit/login" in page.url and response.status == 200
