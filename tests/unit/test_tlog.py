"""C2SP signed notes, checkpoints and cosignatures (services/kit/tlog.py)."""

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.kit import tlog

# The example key and note of golang.org/x/mod/sumdb/note's documentation.
SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
SIGNED = (
    TEXT + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2p"
    "ZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_notes_match_the_go_note_package() -> None:
    signer = tlog.Signer("PeterNeumann", Ed25519PrivateKey.from_private_bytes(SEED))
    assert signer.verifier.vkey == VKEY
    assert signer.sign_note(TEXT) == SIGNED
    text, good = tlog.verify_note(SIGNED, [tlog.Verifier.from_vkey(VKEY)])
    assert text == TEXT and good[0].key_id == "PeterNeumann+c74f20a3"


def test_a_known_key_with_a_bad_signature_or_no_known_key_is_refused() -> None:
    verifier = tlog.Verifier.from_vkey(VKEY)
    with pytest.raises(tlog.NoteError, match="does not verify"):
        tlog.verify_note(SIGNED.replace("problem,", "problem;"), [verifier])
    other = tlog.Signer("PeterNeumann", Ed25519PrivateKey.generate())  # same name, new key
    with pytest.raises(tlog.NoteError, match="signed by no known key"):
        tlog.verify_note(other.sign_note(TEXT), [verifier])
    with pytest.raises(tlog.NoteError, match="key id does not match"):
        tlog.Verifier.from_vkey(VKEY.replace("c74f20a3", "c74f20a4"))


def test_checkpoints_and_cosignatures_round_trip() -> None:
    log = tlog.Signer("example.com/log", Ed25519PrivateKey.generate())
    witness = tlog.Signer("example.com/w1", Ed25519PrivateKey.generate(), tlog.COSIGNATURE_V1)
    checkpoint = tlog.Checkpoint("example.com/log", 20852163, bytes(range(32)))
    note = log.sign_note(checkpoint.text)
    opened, key = tlog.open_checkpoint(note, [log.verifier])
    assert opened == checkpoint and key == log.verifier
    cosigned = note + witness.cosign(checkpoint.text, 1679315147)
    assert tlog.verify_cosignatures(cosigned, [witness.verifier]) == {"example.com/w1": 1679315147}
    # The log's key does not count as a cosigner, nor a cosignature of another checkpoint.
    assert tlog.verify_cosignatures(cosigned, [log.verifier]) == {}
    other = tlog.Checkpoint("example.com/log", 20852164, bytes(32))
    forged = log.sign_note(other.text) + witness.cosign(checkpoint.text, 1679315147)
    assert tlog.verify_cosignatures(forged, [witness.verifier]) == {}
    # The cosigned note still opens with the log's key alone.
    assert tlog.open_checkpoint(cosigned, [log.verifier])[0] == checkpoint


def test_verifier_keys_round_trip_whatever_their_base64_holds() -> None:
    for _ in range(64):  # base64 of a key often holds '+' and '/'
        signer = tlog.Signer("example.com/log", Ed25519PrivateKey.generate())
        assert tlog.Verifier.from_vkey(signer.verifier.vkey) == signer.verifier
