"""Signing in to the audit pages over HTTP, against the real consent service: `next` only from
the allow-list and through the page renderer (no reflected markup, the CSP on every page),
throttling with backoff per account and per address, every failed attempt recorded and shown,
and OpenID Connect accounts bound to issuer and subject."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from deploy.launcher import System
from tests.e2e.test_audit import audit_cli, base
from tests.e2e.test_audit_oidc import CLIENT_ID, CLIENT_SECRET, Provider
from tests.support import query

PASSWORD = "correct horse battery staple"
XSS = '/audit/decisions"><script>alert(document.cookie)</script>'


class SubjectProvider(Provider):
    """The test provider, with a subject that can differ from the username claim."""

    def __init__(self) -> None:
        super().__init__()
        self.subject = "sub-1"

    def id_token(self, nonce: str) -> str:
        head, body, _ = super().id_token(nonce).split(".")
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        claims["sub"] = self.subject
        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        sig = self.key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{head}.{body}.{base64.urlsafe_b64encode(sig).decode().rstrip('=')}"


@pytest.fixture
async def provider() -> AsyncIterator[SubjectProvider]:
    p = SubjectProvider()
    runner = web.AppRunner(p.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", p.port).start()
    yield p
    await runner.cleanup()


@pytest.fixture
def system(tmp_path: Path, provider: SubjectProvider) -> Iterator[System]:
    sys_ = System(
        tmp_path,
        nats_port=0,
        monitor_port=0,
        http_ports={"consent": 0},
        services=("consent",),
        env={
            "EMA_OIDC_ISSUER": provider.issuer,
            "EMA_OIDC_CLIENT_ID": CLIENT_ID,
            "EMA_OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "EMA_AUDIT_THROTTLE_BASE": "0.5",
            "EMA_AUDIT_THROTTLE_AFTER_ADDRESS": "8",
        },
    )
    try:
        sys_.up()
        yield sys_
    finally:
        sys_.down()


def http() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def oidc_sign_in(
    session: aiohttp.ClientSession, system: System, next_: str
) -> tuple[int, str, dict[str, str]]:
    """Through the provider and back (aiohttp follows the redirects): the page the callback
    answers with."""
    url = f"{base(system)}/audit/oidc/login?next={urllib.parse.quote(next_, safe='')}"
    async with session.get(url) as resp:
        return resp.status, await resp.text(), dict(resp.headers)


async def password_sign_in(
    session: aiohttp.ClientSession, system: System, username: str, password: str
) -> tuple[int, str, dict[str, str]]:
    async with session.get(f"{base(system)}/audit/login") as resp:
        token = re.search(r'name="csrf" value="([^"]+)"', await resp.text()).group(1)
    form = {"csrf": token, "username": username, "password": password, "next": XSS}
    async with session.post(
        f"{base(system)}/audit/login", data=form, allow_redirects=False
    ) as resp:
        return resp.status, await resp.text(), dict(resp.headers)


async def test_next_is_an_audit_path_from_the_allow_list_rendered_with_the_csp(
    system: System, provider: SubjectProvider
) -> None:
    out = audit_cli(
        system, "user", "add", "--username", "ombud-oidc", "--role", "privacy_officer", "--oidc"
    )
    assert out.returncode == 0, out.stderr
    for given, lands in (
        (XSS, "/audit"),
        ("javascript:alert(1)", "/audit"),
        ("//evil.example/audit/decisions", "/audit"),
        ("https://evil.example/audit", "/audit"),
        (
            "/audit/decisions?outcome=withhold&case_id=abc",
            "/audit/decisions?outcome=withhold&amp;case_id=abc",
        ),
    ):
        async with http() as session:
            status, page, headers = await oidc_sign_in(session, system, given)
        assert status == 200, page
        assert "<script" not in page and "evil.example" not in page and "javascript:" not in page
        assert f'content="0;url={lands}"' in page and f'href="{lands}"' in page
        assert "default-src 'none'" in headers["Content-Security-Policy"]
    # The password form's hidden `next` goes through the same allow-list.
    out = audit_cli(
        system,
        "user",
        "add",
        "--username",
        "ombud",
        "--role",
        "privacy_officer",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert out.returncode == 0
    async with http() as session:
        status, _, headers = await password_sign_in(session, system, "ombud", PASSWORD)
    assert status == 303 and headers["Location"] == "/audit"


async def test_oidc_accounts_are_bound_to_issuer_and_subject(
    system: System, provider: SubjectProvider
) -> None:
    out = audit_cli(
        system, "user", "add", "--username", "ombud-oidc", "--role", "privacy_officer", "--oidc"
    )
    assert out.returncode == 0, out.stderr
    provider.user, provider.subject = "ombud-oidc", "sub-ombud"
    async with http() as session:
        status, page, _ = await oidc_sign_in(session, system, "/audit/decisions")
    assert status == 200 and "0;url=/audit/decisions" in page
    bound = query(
        system.data_dir / "consent.db",
        "select oidc_issuer, oidc_subject from audit_user where username = 'ombud-oidc'",
    )
    assert bound == [(provider.issuer, "sub-ombud")]
    # Someone else whom the provider now also calls "ombud-oidc" is not let in.
    provider.subject = "sub-impostor"
    async with http() as session:
        status, page, _ = await oidc_sign_in(session, system, "/audit/decisions")
    assert status == 401 and "Feil brukernavn" in page
    # The bound person, renamed at the provider, still is.
    provider.user, provider.subject = "renamed", "sub-ombud"
    async with http() as session:
        status, page, _ = await oidc_sign_in(session, system, "/audit")
    assert status == 200 and "0;url=/audit" in page
    refused = query(
        system.data_dir / "consent.db",
        "select username, reason from audit_sign_in where ok = 0 and method = 'oidc'",
    )
    assert ("ombud-oidc", "the account is bound to another issuer and subject") in refused


async def test_failed_sign_ins_are_throttled_per_account_and_address_and_shown(
    system: System,
) -> None:
    out = audit_cli(
        system,
        "user",
        "add",
        "--username",
        "ombud",
        "--role",
        "privacy_officer",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert out.returncode == 0
    statuses = []
    started = time.monotonic()
    async with http() as session:
        for i in range(30):
            status, _, _ = await password_sign_in(session, system, "ombud", f"wrong {i:02d}!")
            statuses.append(status)
        assert time.monotonic() - started < 30
        # The right password right after is refused too: the account waits.
        status, page, headers = await password_sign_in(session, system, "ombud", PASSWORD)
    assert statuses[:5] == [401] * 5 and statuses.count(429) >= 20, statuses
    assert status == 429 and 'data-testid="throttled"' in page
    await asyncio.sleep(float(headers["Retry-After"]) + 0.2)
    async with http() as session:
        status, _, _ = await password_sign_in(session, system, "ombud", PASSWORD)
        assert status == 303
        # Per address: eight wrong guesses at eight names; the ninth name waits at once.
        for i in range(8):
            status, _, _ = await password_sign_in(session, system, f"guess{i}", "wrong!")
            assert status == 401
        status, _, _ = await password_sign_in(session, system, "guess-new", "wrong!")
        assert status == 429
    rows = query(
        system.data_dir / "consent.db",
        "select username, ok, reason from audit_sign_in where method = 'password' order by id",
    )
    assert len(rows) == 30 + 1 + 1 + 8 + 1  # every attempt
    assert {r for _, ok, r in rows if not ok} == {"throttled", "wrong username or password"}
    assert not any("wrong 0" in str(r) for r in rows)  # passwords are never recorded
    # Shown to the privacy officer, refused ones with the reason.
    async with http() as session:
        await asyncio.sleep(0.1)
        await wait_until_allowed(session, system)
        async with session.get(f"{base(system)}/audit/sign-ins") as resp:
            text = await resp.text()
    assert resp.status == 200 and text.count('data-ok="no"') >= 40
    assert "throttled" in text and "wrong username or password" in text


async def wait_until_allowed(session: aiohttp.ClientSession, system: System) -> Any:
    for _ in range(60):
        status, _, headers = await password_sign_in(session, system, "ombud", PASSWORD)
        if status == 303:
            return
        await asyncio.sleep(float(headers.get("Retry-After", "1")))
    raise AssertionError("never allowed to sign in again")
