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
