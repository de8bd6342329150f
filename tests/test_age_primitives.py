"""Wycheproof checks of the primitives the age codec relies on, as the codec uses them.

X25519: the codec maps an all-zero shared secret (low-order share) to a header failure
by relying on pyca raising ValueError; every other case must give the expected secret.
ChaCha20-Poly1305 and HKDF-SHA-256: known answers, and every invalid case refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sandi.formats.age import AgeError, X25519Identity
from sandi.formats.age.b64 import encode as b64encode
from sandi.formats.age.header import Stanza

WYCHEPROOF = Path(__file__).parent / "vectors" / "wycheproof"


def _cases(name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    data = json.loads((WYCHEPROOF / name).read_text())
    return [(g, t) for g in data["testGroups"] for t in g["tests"]]


X25519 = _cases("x25519_test.json")
CHACHA = _cases("chacha20_poly1305_test.json")
HKDF_CASES = _cases("hkdf_sha256_test.json")


def test_x25519_wycheproof() -> None:
    zero = 0
    for _, t in X25519:
        priv = X25519PrivateKey.from_private_bytes(bytes.fromhex(t["private"]))
        pub = X25519PublicKey.from_public_bytes(bytes.fromhex(t["public"]))
        if t["shared"] == "00" * 32:
            zero += 1
            with pytest.raises(ValueError):
                priv.exchange(pub)
        else:
            assert priv.exchange(pub).hex() == t["shared"], t["tcId"]
    assert zero >= 31


def test_x25519_identity_maps_zero_shared_secret_to_header_failure() -> None:
    low_order = [t for _, t in X25519 if t["shared"] == "00" * 32]
    for t in low_order[:8]:
        ident = X25519Identity.from_private_bytes(bytes.fromhex(t["private"]))
        stanza = Stanza("X25519", (b64encode(bytes.fromhex(t["public"])).decode(),), bytes(32))
        with pytest.raises(AgeError) as info:
            ident.unwrap([stanza])
        assert info.value.kind == "header"


def test_chacha20_poly1305_wycheproof() -> None:
    checked = 0
    for g, t in CHACHA:
        if g["ivSize"] != 96:
            continue  # age only uses 12-byte nonces
        aead = ChaCha20Poly1305(bytes.fromhex(t["key"]))
        iv, aad = bytes.fromhex(t["iv"]), bytes.fromhex(t["aad"])
        ct = bytes.fromhex(t["ct"]) + bytes.fromhex(t["tag"])
        if t["result"] == "valid":
            assert aead.encrypt(iv, bytes.fromhex(t["msg"]), aad) == ct
            assert aead.decrypt(iv, ct, aad).hex() == t["msg"]
        else:
            with pytest.raises(InvalidTag):
                aead.decrypt(iv, ct, aad)
        checked += 1
    assert checked > 300


def test_hkdf_sha256_wycheproof() -> None:
    for _, t in HKDF_CASES:
        salt = bytes.fromhex(t["salt"]) or None
        info = bytes.fromhex(t["info"])
        if t["result"] != "valid":  # output longer than 255 * 32 bytes
            with pytest.raises(ValueError):
                HKDF(hashes.SHA256(), t["size"], salt=salt, info=info)
            continue
        kdf = HKDF(hashes.SHA256(), t["size"], salt=salt, info=info)
        assert kdf.derive(bytes.fromhex(t["ikm"])).hex() == t["okm"], t["tcId"]


def test_hkdf_empty_salt_equals_none() -> None:
    # age's header MAC key uses an empty salt; pyca's None and b"" must agree.
    a = HKDF(hashes.SHA256(), 32, salt=None, info=b"header").derive(b"k" * 16)
    b = HKDF(hashes.SHA256(), 32, salt=b"", info=b"header").derive(b"k" * 16)
    assert a == b
