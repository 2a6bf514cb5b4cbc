"""Pure parts of the audit: password hashes, opaque paging cursors, candidate policies."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.consent.audit.accounts import check_password, hash_password
from services.consent.audit.i18n import TEXT, basis_plain
from services.consent.audit.queries import candidate_directory, decode_cursor, encode_cursor
from services.consent.engine import POLICY_DIR, RegopyEngine, legal_data
from services.consent.store import DecisionRecord


def test_passwords_are_salted_scrypt_and_checked() -> None:
    one, two = hash_password("et langt passord"), hash_password("et langt passord")
    assert one != two and one.startswith("scrypt$")
    assert check_password("et langt passord", one)
    assert not check_password("et langt passord!", one)
    assert not check_password("x", None) and not check_password("x", "md5$abc")


def test_the_cursor_names_only_the_last_shown_row() -> None:
    at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    row = DecisionRecord(id="d-1", decided_at=at)
    assert decode_cursor(encode_cursor(row)) == (at, "d-1")


def test_a_pasted_module_replaces_its_namesake_in_a_copy_of_the_policy() -> None:
    stricter = (
        (POLICY_DIR / "share.rego")
        .read_text()
        .replace("default allow := false", "default allow := false\n# x")
    )
    path = candidate_directory("share.rego", stricter, None)
    try:
        assert (path / "share.rego").read_text() == stricter
        assert not list(path.glob("*_test.rego")) and (path / "data.json").exists()
        assert RegopyEngine(path).error is None
    finally:
        shutil.rmtree(path)
    with pytest.raises(ValueError, match="paste a Rego module"):
        candidate_directory("share.rego", " ", None)
    with pytest.raises(ValueError, match="not a test"):
        candidate_directory("share_test.rego", "package x", None)
    with pytest.raises(ValueError, match="no .rego files"):
        candidate_directory(None, None, Path("/nonexistent"))


def test_every_text_has_both_languages_and_bases_read_as_sentences() -> None:
    assert all(len(pair) == 2 and all(pair) for pair in TEXT.values())
    legal = legal_data()
    assert "barnevernloven" in basis_plain("statute:bvl-13-2", legal, "nb")
    assert basis_plain(None, legal, "nb").startswith("Ikke noe rettsgrunnlag")
    assert basis_plain("consent:k1", legal, "en").startswith("Consent given")


def test_id_tokens_are_checked_for_signature_issuer_audience_expiry_and_nonce() -> None:
    import base64
    import json
    import time

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    from services.consent.audit.oidc import OidcError, verify_id_token

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    n = key.public_key().public_numbers()
    jwks = {
        "keys": [
            {
                "kty": "RSA",
                "kid": "k",
                "n": b64(n.n.to_bytes(256, "big")),
                "e": b64(n.e.to_bytes(3, "big")),
            }
        ]
    }
    now = time.time()
    good = {
        "iss": "https://idp",
        "aud": "app",
        "exp": now + 60,
        "iat": now,
        "nonce": "n1",
        "sub": "u",
    }

    def token(claims: dict, alg: str = "RS256") -> str:
        signing = (
            b64(json.dumps({"alg": alg, "kid": "k"}).encode())
            + "."
            + b64(json.dumps(claims).encode())
        )
        sig = key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing}.{b64(sig)}"

    check = {"issuer": "https://idp", "client_id": "app", "nonce": "n1"}
    assert verify_id_token(token(good), jwks, **check)["sub"] == "u"
    for claims, why in (
        ({**good, "iss": "https://evil"}, "another issuer"),
        ({**good, "aud": "other"}, "another client"),
        ({**good, "exp": now - 3600}, "expired"),
        ({**good, "nonce": "n2"}, "nonce"),
    ):
        with pytest.raises(OidcError, match=why):
            verify_id_token(token(claims), jwks, **check)
    with pytest.raises(OidcError, match="no usable key"):
        verify_id_token(token(good, alg="none"), jwks, **check)
    forged = token(good)[:-4] + "AAAA"
    with pytest.raises(OidcError, match="does not verify"):
        verify_id_token(forged, jwks, **check)


def test_sign_in_leads_only_to_audit_pages_on_the_allow_list() -> None:
    from services.consent.audit.signin import safe_next

    assert safe_next("/audit/decisions/0f9e3a52-3d8e-4a41-9a32-4a5c3f2a7b10") == (
        "/audit/decisions/0f9e3a52-3d8e-4a41-9a32-4a5c3f2a7b10"
    )
    assert safe_next("/audit/decisions?case_id=abc&outcome=allow") == (
        "/audit/decisions?case_id=abc&outcome=allow"
    )
    for bad in (
        "//evil.example/audit",
        "https://evil.example/audit",
        "javascript:alert(1)",
        '/audit/decisions"><script>x</script>',
        "/audit/../etc/passwd",
        "/other",
        "/audit/static/x.css",
        None,
        "",
    ):
        assert safe_next(bad) == "/audit", bad
    # A query with markup keeps the page, drops the query.
    assert safe_next('/audit/decisions?case_id="><script>') == "/audit/decisions"
