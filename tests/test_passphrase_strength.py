"""New passphrases that protect private keys must be strong (sandi.keystore.strength).

Before: ``SANDI_EXPORT_PASSPHRASE=a sandi keys export X --include-private-keys``
succeeded, an export could reuse the key store passphrase, and ``init`` took any
non-empty key store passphrase.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sandi.keystore.strength import MIN_CHARACTERS, WeakPassphraseError, require_strong, weakness
from tests import authority_fixtures as fx
from tests.authority_fixtures import AuthorityHome
from tests.conftest import invoke

authority_template = fx.authority_template
authority = fx.authority


@pytest.mark.parametrize("weak", ["a", "password", "password1234", "qwertyuiopasdf", "sandi-sandi-sandi",
                                  "aaaaaaaaaaaaaaaaaaaaaaaa"])
def test_weak_passphrases_are_named_weak(weak: str) -> None:
    assert weakness(weak.encode(), known_words=["Provinsi Banten"]) is not None


@pytest.mark.parametrize("strong", ["kata sandi uji coba", "ekspor-kunci-uji-coba", "correct horse battery staple",
                                    "lampu Meja 7 hijau-laut"])
def test_strong_passphrases_pass(strong: str) -> None:
    assert weakness(strong.encode()) is None


def test_the_known_words_count_against_a_passphrase() -> None:
    assert weakness(b"bappedabappeda", known_words=["BAPPEDA"]) is not None


def test_the_length_floor_is_said() -> None:
    with pytest.raises(WeakPassphraseError) as info:
        require_strong(b"Zq8#k", what="the key bundle")
    assert str(MIN_CHARACTERS) in info.value.message and "key bundle" in info.value.message


@pytest.mark.parametrize("option", ["--include-private-keys", "--age-identity", "--minisign-secret-key"])
def test_a_weak_export_passphrase_is_refused_and_nothing_written(authority: AuthorityHome, tmp_path: Path,
                                                                 option: str) -> None:
    out = tmp_path / "bappeda.export"
    args = [option, out] if option != "--include-private-keys" else [option, "-o", out]
    r = authority.run("keys", "export", "BAPPEDA", *args, env={"SANDI_EXPORT_PASSPHRASE": "a"})
    assert r.code == 1 and "too weak" in r.stderr, r
    assert "internal error" not in r.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_the_key_store_passphrase_cannot_protect_an_export(authority: AuthorityHome, tmp_path: Path) -> None:
    out = tmp_path / "bappeda.keys.age"
    r = authority.run("keys", "export", "BAPPEDA", "--include-private-keys", "-o", out,
                      env={"SANDI_EXPORT_PASSPHRASE": fx.PASSPHRASE})
    assert r.code == 1 and "is the key store passphrase" in r.stderr, r
    assert not out.exists()


def test_the_override_warns_and_exports(authority: AuthorityHome, tmp_path: Path) -> None:
    out = tmp_path / "bappeda.keys.age"
    r = authority.run("keys", "export", "BAPPEDA", "--include-private-keys", "-o", out,
                      "--insecure-allow-weak-passphrase", env={"SANDI_EXPORT_PASSPHRASE": "a"})
    assert r.code == 0, r
    assert "WARNING" in r.stderr and "--insecure-allow-weak-passphrase" in r.stderr
    assert out.exists()


@pytest.mark.parametrize("args", [[], ["--agency", "BAPPEDA", "--root-fingerprint", "ab" * 32]],
                         ids=["authority", "workstation"])
def test_init_refuses_a_weak_key_store_passphrase(tmp_path: Path, args: list[str]) -> None:
    home = tmp_path / "home"
    env: dict[str, str | None] = {"SANDI_PASSPHRASE": "a", "SANDI_SCRYPT_WORK_FACTOR": "10"}
    r = invoke("--home", home, "init", *args, env=env)
    assert r.code == 1 and "too weak" in r.stderr, r
    assert not home.exists()  # refused before anything was created
    r = invoke("--home", home, "init", *args, env={**env, "SANDI_PASSPHRASE": "Provinsi Banten"})
    assert r.code == 1 and "too weak" in r.stderr, r  # the province is a known word
    r = invoke("--home", home, "init", *args, "--insecure-allow-weak-passphrase", env=env)
    assert r.code == 0 and "WARNING" in r.stderr, r
