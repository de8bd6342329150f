"""Key types and key stores: opacity, no overwrite, binding, passphrases, file modes."""

from __future__ import annotations

import copy
import os
import pickle
import stat
from pathlib import Path
from typing import Any

import pytest

from sandi.errors import AlreadyExistsError, ConfigError, CredentialError, NotFoundError, UsageError
from sandi.formats.age import X25519Identity
from sandi.keystore import FixedPassphrase, MemoryKeyStore, SigningKey, fingerprint, key_ref
from sandi.keystore.base import KeyStore
from sandi.keystore.filestore import FileKeyStore, forget_unlocked, scrypt_work_factor
from sandi.keystore.keyringstore import KeyringKeyStore
from sandi.keystore.passphrase import CachedPassphrase, EnvPassphrase, FilePassphrase, NoPassphrase


class CountingPassphrase:
    def __init__(self, value: str) -> None:
        self.value = value.encode()
        self.calls = 0

    def get(self, purpose: str, *, confirm: bool = False) -> bytes:
        self.calls += 1
        return self.value


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDI_SCRYPT_WORK_FACTOR", "10")
    forget_unlocked()


def file_store(tmp_path: Path, passphrase: str = "pw") -> FileKeyStore:
    return FileKeyStore.create(tmp_path / "keys", FixedPassphrase(passphrase), work_factor=10)


class FakeKeyring:
    """A stand-in OS keyring (the test machine has none)."""

    priority = 5

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, user: str) -> str | None:
        return self.data.get((service, user))

    def set_password(self, service: str, user: str, value: str) -> None:
        self.data[(service, user)] = value

    def delete_password(self, service: str, user: str) -> None:
        del self.data[(service, user)]


def make_store(kind: str, tmp_path: Path) -> KeyStore:
    if kind == "memory":
        return MemoryKeyStore()
    if kind == "file":
        return file_store(tmp_path)
    return KeyringKeyStore.create(tmp_path / "keys", backend=FakeKeyring())


# -- SigningKey -----------------------------------------------------------------------------


def test_signing_key_is_opaque() -> None:
    key = SigningKey.generate()
    secret = key.private_bytes_unsafe()
    assert secret.hex() not in repr(key) and secret.hex() not in str(key)
    assert key.fingerprint[:16] in repr(key)
    for attempt in (lambda: pickle.dumps(key), lambda: copy.copy(key), lambda: copy.deepcopy(key)):
        with pytest.raises(TypeError):
            attempt()


def test_signing_key_fingerprint_and_minisign_id() -> None:
    from sandi.formats.minisign import derive_key_id

    key = SigningKey.generate()
    pub = key.public_key_bytes()
    assert len(pub) == 32
    assert key.fingerprint == fingerprint(pub)
    assert key.minisign_key_id == derive_key_id(pub)
    again = SigningKey.from_private_bytes_unsafe(key.private_bytes_unsafe())
    assert again == key
    from sandi.keystore.keys import verify_ed25519

    verify_ed25519(pub, key.sign(b"data"), b"data")


# -- every store behaves alike ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "file", "keyring"])
def test_store_round_trip_and_no_overwrite(kind: str, tmp_path: Path) -> None:
    store = make_store(kind, tmp_path)
    sk = SigningKey.generate()
    ident = X25519Identity.generate()
    sref = key_ref("BAPPEDA", "signing", sk.fingerprint)
    eref = key_ref("BAPPEDA", "encryption", fingerprint(ident.recipient.public_bytes))
    store.put_signing_key(sref, sk)
    store.put_encryption_key(eref, ident)
    assert store.get_signing_key(sref) == sk
    assert store.get_encryption_key(eref).recipient == ident.recipient
    assert store.refs() == sorted([sref, eref])
    with pytest.raises(AlreadyExistsError):
        store.put_signing_key(sref, SigningKey.generate())
    with pytest.raises(CredentialError, match="is a signing key"):
        store.get_encryption_key(sref)
    with pytest.raises(NotFoundError):
        store.get_signing_key("BAPPEDA.signing.0000000000000000")
    store.delete(sref)
    assert not store.contains(sref)


@pytest.mark.parametrize("ref", ["", "../x", "a/b", ".hidden", "x" * 300, "a..b"])
def test_bad_references_are_refused(ref: str) -> None:
    with pytest.raises(UsageError):
        MemoryKeyStore().put_signing_key(ref, SigningKey.generate())


# -- the file store ---------------------------------------------------------------------------


def test_file_store_modes_and_no_plaintext(tmp_path: Path) -> None:
    store = file_store(tmp_path)
    sk = SigningKey.generate()
    ident = X25519Identity.generate()
    store.put_signing_key("A.signing.1", sk)
    store.put_encryption_key("A.encryption.1", ident)
    keys = tmp_path / "keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    for p in keys.iterdir():
        if p.name != "store.pub":
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
        data = p.read_bytes()
        for secret in (sk.private_bytes_unsafe(), ident.private_bytes_unsafe()):
            assert secret not in data
        assert b"AGE-SECRET-KEY" not in data.upper() and b"PRIVATE KEY" not in data


def test_writing_needs_no_passphrase_reading_asks_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sandi.keystore.filestore as filestore

    file_store(tmp_path, "s3cret")
    forget_unlocked()
    scrypt_runs: list[int] = []
    real_decrypt = filestore.scrypt_decrypt

    def counted(*args: Any, **kwargs: Any) -> bytes:
        scrypt_runs.append(1)
        return real_decrypt(*args, **kwargs)

    monkeypatch.setattr(filestore, "scrypt_decrypt", counted)
    counting = CountingPassphrase("s3cret")
    asked_once = CachedPassphrase(counting)  # what the CLI hands the store: one prompt
    store = FileKeyStore(tmp_path / "keys", asked_once)
    for i in range(3):
        store.put_signing_key(f"A.signing.{i}", SigningKey.generate())
    assert counting.calls == 0
    for i in range(3):
        store.get_signing_key(f"A.signing.{i}")
    assert counting.calls == 1
    assert len(scrypt_runs) == 1
    # another store object on the same folder in this process: still no new scrypt
    FileKeyStore(tmp_path / "keys", asked_once).get_signing_key("A.signing.0")
    assert counting.calls == 1
    assert len(scrypt_runs) == 1


def test_wrong_passphrase_is_a_credential_error(tmp_path: Path) -> None:
    store = file_store(tmp_path, "right")
    store.put_signing_key("A.signing.1", SigningKey.generate())
    forget_unlocked()
    wrong = FileKeyStore(tmp_path / "keys", FixedPassphrase("wrong"))
    with pytest.raises(CredentialError, match="wrong passphrase for the key store") as info:
        wrong.get_signing_key("A.signing.1")
    assert info.value.hint


def test_renamed_key_file_is_refused(tmp_path: Path) -> None:
    store = file_store(tmp_path)
    store.put_signing_key("A.signing.1", SigningKey.generate())
    keys = tmp_path / "keys"
    os.link(keys / "A.signing.1.key.age", keys / "B.signing.1.key.age")
    with pytest.raises(CredentialError, match=r"belongs to A\.signing\.1"):
        store.get_signing_key("B.signing.1")


def test_swapped_store_recipient_is_detected(tmp_path: Path) -> None:
    file_store(tmp_path)
    forget_unlocked()
    (tmp_path / "keys" / "store.pub").write_text(X25519Identity.generate().recipient.to_bech32() + "\n")
    store = FileKeyStore(tmp_path / "keys", FixedPassphrase("pw"))
    store.put_signing_key("A.signing.1", SigningKey.generate())  # encrypted to the wrong recipient
    with pytest.raises(CredentialError, match="does not belong to this key store"):
        store.get_signing_key("A.signing.1")


def test_second_store_in_same_folder_is_refused(tmp_path: Path) -> None:
    file_store(tmp_path)
    with pytest.raises(AlreadyExistsError):
        file_store(tmp_path)


@pytest.mark.parametrize(
    ("env", "config", "expected"),
    [(None, None, 18), ("10", None, 10), (None, 12, 12), ("9", 12, 9), ("23", None, "error"),
     ("0", None, "error"), ("x", None, "error"), (None, 30, "error")],
)
def test_work_factor(monkeypatch: pytest.MonkeyPatch, env: str | None, config: int | None, expected: Any) -> None:
    if env is None:
        monkeypatch.delenv("SANDI_SCRYPT_WORK_FACTOR", raising=False)
    else:
        monkeypatch.setenv("SANDI_SCRYPT_WORK_FACTOR", env)
    if expected == "error":
        with pytest.raises(UsageError):
            scrypt_work_factor(config)
    else:
        assert scrypt_work_factor(config) == expected


# -- keyring ------------------------------------------------------------------------------


def test_null_keyring_backends_are_refused(tmp_path: Path) -> None:
    import keyring
    from keyring.backends import fail, null

    before = keyring.get_keyring()
    try:
        for backend in (fail.Keyring(), null.Keyring()):
            keyring.set_keyring(backend)
            with pytest.raises(ConfigError, match="no usable OS keyring"):
                KeyringKeyStore.create(tmp_path / f"k-{type(backend).__module__}")
    finally:
        keyring.set_keyring(before)


# -- passphrase sources -------------------------------------------------------------------------


def test_passphrase_file_must_be_private_and_non_empty(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_text("line one\nignored\n")
    f.chmod(0o644)
    with pytest.raises(Exception, match="readable by others"):
        FilePassphrase(f).get("x")
    f.chmod(0o600)
    assert FilePassphrase(f).get("x") == b"line one"
    f.write_text("\n")
    with pytest.raises(CredentialError, match="empty"):
        FilePassphrase(f).get("x")


def test_env_and_missing_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDI_PASSPHRASE", "from-env")
    assert EnvPassphrase().get("x") == b"from-env"
    with pytest.raises(CredentialError, match="passphrase is needed"):
        NoPassphrase().get("the key store")
    counting = CountingPassphrase("p")
    cached = CachedPassphrase(counting)
    cached.get("a")
    cached.get("b")
    assert counting.calls == 1
    assert "from-env" not in repr(EnvPassphrase()) and "p" not in repr(FixedPassphrase("secretvalue"))[16:]


def test_wrong_passphrase_fails_even_after_a_correct_unlock_in_the_same_process(tmp_path: Path) -> None:
    from sandi.errors import CredentialError
    from sandi.keystore import FixedPassphrase, SigningKey
    from sandi.keystore.filestore import FileKeyStore, forget_unlocked

    keys = tmp_path / "keys"
    store = FileKeyStore.create(keys, FixedPassphrase("benar sekali"), work_factor=10)
    key = SigningKey.generate()
    store.put_signing_key("X.signing.0001", key)
    forget_unlocked()
    assert FileKeyStore(keys, FixedPassphrase("benar sekali")).get_signing_key("X.signing.0001") == key
    with pytest.raises(CredentialError):
        FileKeyStore(keys, FixedPassphrase("salah")).get_signing_key("X.signing.0001")
