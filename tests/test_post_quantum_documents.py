"""Hybrid post-quantum keys for agencies and the policy's post_quantum rule, end to end.

The ``pq`` key profile gives an agency a hybrid ML-KEM-768 + X25519 key beside its
X25519 one, certified by the root (ADR 0011); sealing uses the hybrid keys when the
policy requires them for the classification (and refuses when a recipient has none)
or when every party has one; opening refuses a document the policy wanted sealed
post-quantum and that is not. Renewal, rotation, revocation and key backups carry
the hybrid key like the others.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pytest

from sandi.documents import DirectoryPolicy, open_sealed, seal
from sandi.documents.metadata import SealMetadata
from sandi.errors import PolicyDenied
from sandi.formats.age import MLKEM768X25519_TYPE, Stanza, parse_header
from sandi.formats.age import mixes_classical as _mixes
from sandi.home import Home
from sandi.keystore import FixedPassphrase, open_keystore
from tests import authority_fixtures as fx
from tests.authority_fixtures import BANTEN_POLICY, AuthorityHome

authority_template = fx.authority_template


def _pq_policy(tmp_path: Path) -> Path:
    """The Banten policy with its R and SR levels sealed post-quantum only."""
    text = BANTEN_POLICY.read_text()
    for code in ('"R"', '"SR"'):
        text = text.replace(f"code = {code}\n", f"code = {code}\npost_quantum = true\n", 1)
    assert text.count("\npost_quantum = true\n") == 2
    path = tmp_path / "banten-pq.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def pq_template(tmp_path_factory: pytest.TempPathFactory, authority_template: AuthorityHome) -> AuthorityHome:
    """DISKOMINFO, BAPPEDA and KESBANGPOL rotated to the pq profile; SETDA classical."""
    home = authority_template.copy_to(tmp_path_factory.mktemp("pq-template") / "authority")
    for code in ("DISKOMINFO", "BAPPEDA", "KESBANGPOL"):
        home.ok("keys", "rotate", "--yes", code, "--profile", "pq")
    return home


@pytest.fixture
def pq_home(pq_template: AuthorityHome, tmp_path_factory: pytest.TempPathFactory) -> AuthorityHome:
    return pq_template.copy_to(tmp_path_factory.mktemp("pq") / "authority")


@pytest.fixture
def pq_policy_home(pq_home: AuthorityHome, tmp_path: Path) -> AuthorityHome:
    pq_home.ok("policy", "apply", _pq_policy(tmp_path))
    return pq_home


def _doc(tmp_path: Path) -> Path:
    path = tmp_path / "surat.txt"
    path.write_bytes(b"Yth. Kepala Badan, ... (rahasia)")
    return path


def _stanza_types(path: Path) -> list[str]:
    with open(path, "rb") as f:
        return [s.type for s in parse_header(f).stanzas]


def test_pq_profile_issues_a_certified_hybrid_key(pq_home: AuthorityHome) -> None:
    certs = json.loads(pq_home.ok("keys", "list", "BAPPEDA", "--json").stdout)
    current = {c["purpose"] for c in certs if c["state"] == "current"}
    assert current == {"signing", "encryption", "encryption-pq"}
    ws = pq_home.workspace()
    entry = ws.snapshot.agency("BAPPEDA").current("encryption-pq")[0]
    assert len(entry.public_key_bytes()) == 1216
    from sandi.directory.trust import chains_to_root

    assert chains_to_root(entry, ws.snapshot)
    # The certificate's own key is the X25519 half; the critical extension holds the rest.
    from sandi.keystore.keys import HYBRID_KEY_OID

    ext = [e for e in entry.certificate.extensions if e.oid.dotted_string == HYBRID_KEY_OID]
    assert len(ext) == 1 and ext[0].critical
    refs = [r for r in ws.keystore.refs() if r.startswith("BAPPEDA.encryption-pq.")]
    assert len(refs) == 1
    assert ws.keystore.get_hybrid_key(refs[0]).recipient.public_bytes == entry.public_key_bytes()


def test_parties_with_hybrid_keys_get_post_quantum_files(pq_home: AuthorityHome, tmp_path: Path) -> None:
    out = tmp_path / "pq.sandi"
    pq_home.ok("seal", _doc(tmp_path), "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "T", "-o", out)
    assert _stanza_types(out) == [MLKEM768X25519_TYPE]
    shown = pq_home.ok("--json", "inspect", out)
    assert json.loads(shown.stdout)["protection"] == "post-quantum"
    opened = tmp_path / "opened"
    pq_home.ok("open", out, "--as", "BAPPEDA", "--output-dir", opened)
    assert (opened / "surat.txt").read_bytes() == _doc(tmp_path).read_bytes()
    # With a classical-only party, the whole file is classical: never both kinds.
    mixed_parties = tmp_path / "classic.sandi"
    pq_home.ok("seal", _doc(tmp_path), "--as", "DISKOMINFO", "--to", "BAPPEDA", "--to", "SETDA",
               "--class", "T", "-o", mixed_parties)
    assert _stanza_types(mixed_parties) == ["X25519", "X25519"]


def test_policy_requires_post_quantum_at_r(pq_policy_home: AuthorityHome, tmp_path: Path) -> None:
    out = tmp_path / "r.sandi"
    # SETDA has no hybrid key: at R the policy refuses, nothing is written, it is audited.
    r = pq_policy_home.run("seal", _doc(tmp_path), "--as", "DISKOMINFO", "--to", "BAPPEDA", "--to", "SETDA",
                           "--class", "R", "-o", out)
    assert r.code == 3, r
    assert "post-quantum" in r.stderr and "SETDA" in r.stderr
    assert not out.exists()
    log = pq_policy_home.ok("audit", "log", "--json").stdout
    assert "policy.deny" in log
    # To hybrid-keyed agencies only, it seals post-quantum and opens.
    pq_policy_home.ok("seal", _doc(tmp_path), "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R", "-o", out)
    assert _stanza_types(out) == [MLKEM768X25519_TYPE]
    pq_policy_home.ok("open", out, "--as", "BAPPEDA", "--output-dir", tmp_path / "o")
    # At T the rule does not apply: a classical party is fine.
    pq_policy_home.ok("seal", _doc(tmp_path), "--as", "DISKOMINFO", "--to", "SETDA", "--class", "T",
                      "-o", tmp_path / "t.sandi")


def test_policy_explain_says_post_quantum(pq_home: AuthorityHome, tmp_path: Path) -> None:
    policy = _pq_policy(tmp_path)
    r = pq_home.run("policy", "explain", "--from", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R",
                    "--policy", policy, "--at", "2026-06-01T09:00:00+07:00")
    assert "post-quantum" in r.stdout
    r = pq_home.run("policy", "explain", "--from", "DISKOMINFO", "--to", "BAPPEDA", "--class", "T",
                    "--policy", policy, "--at", "2026-06-01T09:00:00+07:00", "--json")
    assert json.loads(r.stdout)["post_quantum"] is False


class _SkipsPostQuantum:
    """A modified sender: claims the policy version, ignores its post_quantum rule."""

    def __init__(self, honest: DirectoryPolicy) -> None:
        self.honest = honest

    def before_seal(self, sender: str, recipients: Sequence[str], classification: str,
                    at: datetime) -> tuple[str, int] | None:
        return self.honest.before_seal(sender, recipients, classification, at)

    def after_open(self, metadata: SealMetadata, opener: str) -> None:
        return None

    def requires_post_quantum(self, classification: str, at: datetime) -> bool:
        return False

    def check_post_quantum(self, metadata: SealMetadata, stanzas: Sequence[Stanza]) -> None:
        return None


def test_open_refuses_a_classical_seal_the_policy_forbade(pq_policy_home: AuthorityHome, tmp_path: Path) -> None:
    ws = pq_policy_home.workspace()
    out = io.BytesIO()
    # SETDA lacks a hybrid key, so this sender's software falls back to X25519 for all.
    seal(_doc(tmp_path), out, workspace=ws, sender="DISKOMINFO", recipients=["BAPPEDA", "SETDA"],
         classification="R", policy=_SkipsPostQuantum(DirectoryPolicy(ws.snapshot)))
    assert [s.type for s in parse_header(io.BytesIO(out.getvalue())).stanzas] == ["X25519", "X25519"]
    with pytest.raises(PolicyDenied, match="post-quantum"):
        open_sealed(io.BytesIO(out.getvalue()), workspace=ws, opener="BAPPEDA",
                    policy=DirectoryPolicy(ws.snapshot), write_document=False)
    assert not _mixes(parse_header(io.BytesIO(out.getvalue())).stanzas)


def test_hybrid_key_renews_rotates_revokes_and_backs_up(pq_home: AuthorityHome, tmp_path: Path) -> None:
    def current(purpose: str) -> list[dict[str, str]]:
        certs = json.loads(pq_home.ok("keys", "list", "BAPPEDA", "--json").stdout)
        return [c for c in certs if c["purpose"] == purpose and c["state"] == "current"]

    before = current("encryption-pq")[0]
    pq_home.ok("keys", "renew", "BAPPEDA", "--profile", "pq")
    renewed = current("encryption-pq")[0]
    assert renewed["serial"] != before["serial"]
    assert renewed["key_fingerprint"] == before["key_fingerprint"]  # same key, new certificate
    pq_home.ok("keys", "rotate", "--yes", "BAPPEDA", "--profile", "pq")
    rotated = current("encryption-pq")[0]
    assert rotated["key_fingerprint"] != before["key_fingerprint"]
    # Backup: the private bundle carries every hybrid key; it restores into a fresh store.
    bundle = tmp_path / "bappeda.keys.age"
    pq_home.ok("keys", "export", "BAPPEDA", "--include-private-keys", "-o", bundle)
    pq_refs = sorted(r for r in pq_home.workspace().keystore.refs() if r.startswith("BAPPEDA.encryption-pq."))
    assert len(pq_refs) == 2
    station = AuthorityHome(tmp_path / "ws", pq_home.exports)
    fingerprint = Home(pq_home.path).load_config().root_fingerprint
    assert fingerprint
    station.ok("init", "--agency", "BAPPEDA", "--root-fingerprint", fingerprint)
    added = json.loads(station.ok("--json", "keys", "import", bundle).stdout)["added"]
    assert sorted(r for r in added if ".encryption-pq." in r) == pq_refs
    restored = open_keystore(Home(station.path), FixedPassphrase(fx.PASSPHRASE))
    for ref in pq_refs:
        assert restored.get_hybrid_key(ref).recipient == pq_home.workspace().keystore.get_hybrid_key(ref).recipient
    # Revocation: a revoked hybrid certificate is no longer encrypted to.
    pq_home.ok("keys", "revoke", "--yes", rotated["serial"], "--reason", "keyCompromise")
    r = pq_home.run("seal", _doc(tmp_path), "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "T",
                    "-o", tmp_path / "after-revoke.sandi")
    assert r.code == 0, r
    assert _stanza_types(tmp_path / "after-revoke.sandi") == ["X25519"]


def test_encrypt_to_agencies_follows_the_rule(pq_policy_home: AuthorityHome, tmp_path: Path) -> None:
    doc = _doc(tmp_path)
    out = tmp_path / "r.age"
    pq_policy_home.ok("encrypt", "-r", "BAPPEDA", "--as", "DISKOMINFO", "--class", "R", "-o", out, doc)
    assert _stanza_types(out) == [MLKEM768X25519_TYPE]
    r = pq_policy_home.run("encrypt", "-r", "SETDA", "--as", "DISKOMINFO", "--class", "R",
                           "-o", tmp_path / "no.age", doc)
    assert r.code == 3 and "post-quantum" in r.stderr
    assert not (tmp_path / "no.age").exists()
    pq_policy_home.ok("encrypt", "-r", "SETDA", "--as", "DISKOMINFO", "--class", "T", "-o", tmp_path / "t.age", doc)
    assert _stanza_types(tmp_path / "t.age") == ["X25519"]


def test_an_agency_named_by_its_raw_x25519_key_gets_its_hybrid_key(pq_policy_home: AuthorityHome,
                                                                  tmp_path: Path) -> None:
    ws = pq_policy_home.workspace()
    x25519 = ws.snapshot.agency("BAPPEDA").current("encryption")[0].public_key_bytes()
    from sandi.formats.age import X25519Recipient

    raw = X25519Recipient.from_public_bytes(x25519).to_bech32()
    out = tmp_path / "raw.age"
    pq_policy_home.ok("encrypt", "-r", raw, "--as", "DISKOMINFO", "--class", "R", "-o", out, _doc(tmp_path))
    assert _stanza_types(out) == [MLKEM768X25519_TYPE]


def test_public_export_has_the_age1pq1_recipient(pq_home: AuthorityHome, tmp_path: Path) -> None:
    from sandi.formats.age import MLKEM768X25519Recipient

    out = tmp_path / "pub"
    pq_home.ok("keys", "export", "BAPPEDA", "--public", "-o", out)
    text = (out / "BAPPEDA.age-pq.txt").read_text().strip()
    entry = pq_home.workspace().snapshot.agency("BAPPEDA").current("encryption-pq")[0]
    assert MLKEM768X25519Recipient.from_bech32(text).public_bytes == entry.public_key_bytes()
    assert (out / "BAPPEDA.encryption-pq.pem").read_text() == entry.pem
    # An agency without a hybrid key exports what it always did.
    classic = tmp_path / "setda"
    pq_home.ok("keys", "export", "SETDA", "--public", "-o", classic)
    assert not (classic / "SETDA.age-pq.txt").exists()
