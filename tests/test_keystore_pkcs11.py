"""The PKCS#11 key store on a real SoftHSM2 token: keys made on the token and never
out of it, signing through the token (raw, X.509, minisign), the fallback store for
what the token does not hold, and clear errors for a wrong PIN, a missing module, a
missing token and a tampered index."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.x509.oid import NameOID

from sandi.errors import ConfigError, CredentialError, FormatError, NotFoundError
from sandi.formats.age import X25519Identity
from sandi.keystore import FixedPassphrase, key_ref
from sandi.keystore.filestore import FileKeyStore, forget_unlocked
from sandi.keystore.pkcs11 import (
    Pkcs11KeyStore,
    Pkcs11Uri,
    TokenConfig,
    TokenSession,
    ec_point_bytes,
    find_slot,
    load_module,
)
from tests.softhsm import Token, init_token, softhsm, token  # noqa: F401


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDI_SCRYPT_WORK_FACTOR", "10")
    monkeypatch.delenv("SANDI_PKCS11_PIN", raising=False)
    monkeypatch.delenv("SANDI_PKCS11_MODULE", raising=False)
    forget_unlocked()


def make_store(tmp_path: Path, token: Token, pin: str | None = None) -> Pkcs11KeyStore:
    keys = tmp_path / "keys"
    fallback = FileKeyStore.create(keys, FixedPassphrase("pw"), work_factor=10)
    config = TokenConfig(token.module, Pkcs11Uri.parse(token.uri))
    return Pkcs11KeyStore.create(keys, fallback, config, FixedPassphrase(pin or token.pin))


def token_objects(token: Token, label: str) -> dict[str, Any]:
    """What another PKCS#11 client sees of a key: its private object's attributes."""
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    slot = find_slot(load_module(token.module), Pkcs11Uri.parse(token.uri))
    try:
        session = slot.get_token().open(user_pin=token.pin)
    except pkcs11.exceptions.UserAlreadyLoggedIn:  # login is per process: a store did it already
        session = slot.get_token().open()
    with session:
        (private,) = session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: label})
        out: dict[str, Any] = {
            name: private[getattr(Attribute, name)]
            for name in ("EXTRACTABLE", "SENSITIVE", "NEVER_EXTRACTABLE", "ALWAYS_SENSITIVE", "LOCAL",
                         "TOKEN", "PRIVATE")
        }
        try:
            out["VALUE"] = private[Attribute.VALUE]
        except pkcs11.PKCS11Error as exc:
            out["VALUE"] = type(exc).__name__
        return out


# -- URIs ----------------------------------------------------------------------------------------


def test_uri_round_trip_and_refusals() -> None:
    uri = Pkcs11Uri.parse("pkcs11:token=Sandi%20Root;serial=abc;object=root.signing.00;id=%01%ff;type=private"
                          "?module-path=/usr/lib/softhsm/libsofthsm2.so")
    assert uri.get("token") == "Sandi Root" and uri.object_id == b"\x01\xff"
    assert uri.module_path == "/usr/lib/softhsm/libsofthsm2.so"
    assert Pkcs11Uri.parse(str(uri)) == uri
    for bad in ("token=x", "pkcs11:token=x;token=y", "pkcs11:colour=red", "pkcs11:token=x?pin-value=1234",
                "pkcs11:token=x?pin-source=/tmp/pin", "pkcs11:slot-id=abc"):
        with pytest.raises(ConfigError):
            Pkcs11Uri.parse(bad)


# -- keys on the token ---------------------------------------------------------------------------


def test_signing_key_is_made_on_the_token_and_never_leaves(tmp_path: Path, token: Token) -> None:
    store = make_store(tmp_path, token)
    assert store.token.capabilities().signs_ed25519
    ref, signer = store.new_signing_key("root", on_token=True)
    assert ref == key_ref("root", "signing", signer.fingerprint)
    assert store.location(ref) == "token" and store.contains(ref)
    # Raw Ed25519, verified by an independent implementation.
    signature = signer.sign(b"sandi")
    Ed25519PublicKey.from_public_bytes(signer.public_key_bytes()).verify(signature, b"sandi")
    # The token object: sensitive, never extractable, generated there; its value unreadable.
    attrs = token_objects(token, ref)
    assert attrs["EXTRACTABLE"] is False and attrs["NEVER_EXTRACTABLE"] is True
    assert attrs["SENSITIVE"] is True and attrs["ALWAYS_SENSITIVE"] is True
    assert attrs["LOCAL"] is True and attrs["TOKEN"] is True
    assert attrs["VALUE"] == "AttributeSensitive"
    # The store refuses to hand it out, and nothing about it is on disk but public data.
    with pytest.raises(CredentialError, match="never leaves"):
        store.get_signing_key(ref)
    assert not list((tmp_path / "keys").glob("root.*"))
    index = json.loads((tmp_path / "keys" / "pkcs11.json").read_text())
    assert index["keys"][ref]["fingerprint"] == signer.fingerprint
    # A new store object (a new process) finds it by reference and signs the same.
    again = Pkcs11KeyStore(tmp_path / "keys", store.fallback, store.config, FixedPassphrase(token.pin))
    Ed25519PublicKey.from_public_bytes(signer.public_key_bytes()).verify(
        again.signer(ref).sign(b"again"), b"again")
    uri = Pkcs11Uri.parse(again.key_uri(ref))
    assert uri.get("object") == ref and uri.object_id == bytes.fromhex(signer.fingerprint[:16])


def test_what_the_token_does_not_hold_goes_to_the_fallback(tmp_path: Path, token: Token) -> None:
    store = make_store(tmp_path, token)
    identity = X25519Identity.generate()
    enc_ref = key_ref("BAPPEDA", "encryption", "ab" * 32)
    store.put_encryption_key(enc_ref, identity)
    soft_ref, soft = store.new_signing_key("BAPPEDA")  # not on_token: a software key
    assert store.location(enc_ref) == "file" and store.location(soft_ref) == "file"
    assert (tmp_path / "keys" / f"{enc_ref}.key.age").exists()
    assert store.get_encryption_key(enc_ref).recipient.to_bech32() == identity.recipient.to_bech32()
    assert store.signer(soft_ref).public_key_bytes() == soft.public_key_bytes()
    tok_ref, _signer = store.new_signing_key("DISKOMINFO", on_token=True)
    assert store.refs() == sorted([enc_ref, soft_ref, tok_ref])
    store.delete(tok_ref)
    assert not store.contains(tok_ref)
    with pytest.raises(ValueError):
        token_objects(token, tok_ref)  # gone from the token too


def test_x509_certificates_and_crls_sign_on_the_token(tmp_path: Path, token: Token) -> None:
    store = make_store(tmp_path, token)
    _ref, signer = store.new_signing_key("root", on_token=True)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token root")])
    now = datetime.now(UTC)
    cert = signer.sign_x509(
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(signer.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + timedelta(days=1)))
    cert.verify_directly_issued_by(cert)
    crl = signer.sign_x509(x509.CertificateRevocationListBuilder().issuer_name(name).last_update(now)
                           .next_update(now + timedelta(days=1)))
    assert crl.is_signature_valid(signer.public_key())


def test_a_store_without_a_token_refuses_on_token_keys(tmp_path: Path) -> None:
    store = FileKeyStore.create(tmp_path / "keys", FixedPassphrase("pw"), work_factor=10)
    with pytest.raises(ConfigError, match="no PKCS#11 token"):
        store.new_signing_key("root", on_token=True)
    assert store.refs() == []


# -- failures ------------------------------------------------------------------------------------


def test_wrong_pin_missing_module_and_missing_token(tmp_path: Path, token: Token) -> None:
    store = make_store(tmp_path, token)
    ref, _signer = store.new_signing_key("root", on_token=True)
    store.token.close()  # the last session closed logs the process out (PKCS#11 login is per process)
    wrong = Pkcs11KeyStore(tmp_path / "keys", store.fallback, store.config, FixedPassphrase("000000"))
    with pytest.raises(CredentialError, match="wrong PIN"):
        wrong.signer(ref)
    with pytest.raises(ConfigError, match="does not exist"):
        TokenSession(TokenConfig("/nonexistent/libsofthsm2.so", store.config.token),
                     FixedPassphrase(token.pin)).session()
    with pytest.raises(NotFoundError, match="is not present"):
        TokenSession(TokenConfig(token.module, Pkcs11Uri.parse("pkcs11:token=no-such-token")),
                     FixedPassphrase(token.pin)).session()
    # Right token label, another token (serial): refused as absent.
    other = Pkcs11Uri({"token": token.label, "serial": "0000000000000000"})
    with pytest.raises(NotFoundError):
        TokenSession(TokenConfig(token.module, other), FixedPassphrase(token.pin)).session()


def test_a_key_missing_from_the_token_or_a_tampered_index(tmp_path: Path, token: Token,
                                                          softhsm: Path) -> None:
    store = make_store(tmp_path, token)
    ref, _signer = store.new_signing_key("root", on_token=True)
    index_path = tmp_path / "keys" / "pkcs11.json"
    index = json.loads(index_path.read_text())
    # Another token with the same label and PIN: the key is not on it.
    index["keys"][ref]["fingerprint"] = "00" * 32
    index_path.write_text(json.dumps(index))
    fresh = Pkcs11KeyStore(tmp_path / "keys", store.fallback, store.config, FixedPassphrase(token.pin))
    with pytest.raises((NotFoundError, CredentialError)):
        fresh.signer(ref)
    index["keys"][ref]["fingerprint"] = _signer.fingerprint[:16] + "00" * 24
    index_path.write_text(json.dumps(index))
    fresh = Pkcs11KeyStore(tmp_path / "keys", store.fallback, store.config, FixedPassphrase(token.pin))
    with pytest.raises(CredentialError, match="not the key sandi made"):
        fresh.signer(ref)


def test_ec_point_forms() -> None:
    raw = bytes(range(32))
    assert ec_point_bytes(b"\x04\x20" + raw) == raw
    assert ec_point_bytes(raw) == raw
    with pytest.raises(Exception, match="form sandi does not know"):
        ec_point_bytes(b"\x04\x21" + raw + b"\x00")


def test_token_folder_deleted_is_a_clear_error(tmp_path: Path, softhsm: Path) -> None:
    gone = init_token(softhsm, tmp_path)
    store = make_store(tmp_path, gone)
    ref, _signer = store.new_signing_key("root", on_token=True)
    for folder in gone.token_dirs():
        shutil.rmtree(folder)
    fresh = Pkcs11KeyStore(tmp_path / "keys", store.fallback, store.config, FixedPassphrase(gone.pin))
    with pytest.raises(NotFoundError, match=r"removed|not present"):
        fresh.signer(ref).sign(b"x")


def test_a_p256_key_is_made_on_the_token_and_signs_there(tmp_path: Path, token: Token) -> None:
    """The PDF root and pdf-signing keys (ADR 0014): CKM_EC_KEY_PAIR_GEN on P-256, CKM_ECDSA
    over the SHA-256 digest, the raw r || s DER-encoded; checked by cryptography."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    store = make_store(tmp_path, token)
    ref, signer = store.new_p256_key("pdf-root", on_token=True)
    assert ref == key_ref("pdf-root", "ecdsa-p256", signer.fingerprint) and store.location(ref) == "token"
    signature = signer.sign(b"surat")
    signer.public_key().verify(signature, b"surat", ec.ECDSA(hashes.SHA256()))  # DER, SHA-256
    attrs = token_objects(token, ref)
    assert attrs["EXTRACTABLE"] is False and attrs["SENSITIVE"] is True and attrs["LOCAL"] is True
    with pytest.raises(CredentialError, match="never leaves"):
        store.get_p256_key(ref)
    with pytest.raises(CredentialError, match="not a signing key"):
        store.signer(ref)  # a P-256 key is never an Ed25519 signer
    ed_ref, _ed = store.new_signing_key("root", on_token=True)
    with pytest.raises(CredentialError, match="not a ecdsa-p256 key"):
        store.p256_signer(ed_ref)
    # a new store object (a new process) finds it, and certificates and CRLs sign on the token
    again = Pkcs11KeyStore(tmp_path / "keys", store.fallback, store.config, FixedPassphrase(token.pin))
    key = again.p256_signer(ref)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token PDF root")])
    now = datetime.now(UTC)
    cert = key.sign_x509(
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + timedelta(days=1)))
    cert.verify_directly_issued_by(cert)
    crl = key.sign_x509(x509.CertificateRevocationListBuilder().issuer_name(name).last_update(now)
                        .next_update(now + timedelta(days=1)))
    assert crl.is_signature_valid(key.public_key())
    soft_ref, _soft = again.new_p256_key("SETDA")  # not on_token: the fallback store
    assert again.location(soft_ref) == "file"
    again.delete(ref)
    assert not again.contains(ref)


def test_p256_point_forms() -> None:
    from sandi.keystore.pkcs11 import p256_point_bytes

    point = b"\x04" + bytes(range(64))
    assert p256_point_bytes(b"\x04\x41" + point) == point == p256_point_bytes(point)
    with pytest.raises(FormatError):
        p256_point_bytes(b"\x04\x20" + bytes(32))
