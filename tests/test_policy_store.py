"""Policy versions in the registry: apply, keep, refuse older, sign and verify."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sandi.errors import PolicyError, VerificationError
from sandi.policy import verify_policy_signature
from sandi.policy.loader import PolicyFileError
from sandi.policy.store import (
    PolicyVersionConflict,
    active_policy,
    apply_policy,
    compile_record,
    get_version,
    list_versions,
    policy_in_force_at,
)
from sandi.policy.versions import check_in_force, compile_verified, select_active
from sandi.registry import Registry

BANTEN = (Path(__file__).resolve().parent.parent / "policies" / "banten.toml").read_text()


class TestSigner:
    __test__ = False

    def __init__(self) -> None:
        self._key = Ed25519PrivateKey.generate()

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def public_key_bytes(self) -> bytes:
        return self._key.public_key().public_bytes_raw()


def version(text: str, n: int, effective: str = "2026-01-01", expires: str | None = "2028-01-01") -> str:
    text = text.replace("version = 1", f"version = {n}", 1)
    text = text.replace("effective = 2026-01-01", f"effective = {effective}", 1)
    if expires is None:
        return text.replace("expires = 2028-01-01\n", "", 1)
    return text.replace("expires = 2028-01-01", f"expires = {expires}", 1)


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    reg = Registry(f"sqlite:///{tmp_path / 'registry.db'}")
    reg.upgrade()
    return reg


@pytest.fixture
def signer() -> TestSigner:
    return TestSigner()


def audit_actions(reg: Registry) -> list[tuple[str, str]]:
    from sandi.audit.registry_sink import iter_entries

    with reg.transaction() as s:
        return [(e.action, e.subject) for e in iter_entries(s)]


def test_apply_stores_signed_exact_source_and_audits(registry: Registry, signer: TestSigner) -> None:
    with registry.transaction() as s:
        rec = apply_policy(s, BANTEN, signer, "operator-1", source_name="banten.toml")
    assert (rec.policy_id, rec.version, rec.applied_by) == ("banten-phks", 1, "operator-1")
    with registry.transaction() as s:
        stored = get_version(s, "banten-phks", 1)
    assert stored.source == BANTEN  # byte for byte
    verify_policy_signature(stored.source, stored.signature, signer.public_key_bytes())
    assert stored.effective_from == datetime(2025, 12, 31, 17, 0, tzinfo=UTC)  # 2026-01-01 WIB
    assert ("policy.apply", "banten-phks v1") in audit_actions(registry)


def test_versions_are_kept_and_must_grow(registry: Registry, signer: TestSigner) -> None:
    with registry.transaction() as s:
        apply_policy(s, BANTEN, signer, "op")
    with registry.transaction() as s:
        apply_policy(s, version(BANTEN, 2, "2026-07-01"), signer, "op")
    for n in (1, 2):
        with pytest.raises(PolicyVersionConflict, match="not newer than the stored version 2"), \
                registry.transaction() as s:
            apply_policy(s, version(BANTEN, n, "2026-09-01"), signer, "op")
    with registry.transaction() as s:
        versions = list_versions(s)
    assert [r.version for r in versions] == [1, 2]
    assert versions[0].source == BANTEN
    # the refused applies left no audit entry either
    assert [a for a, _ in audit_actions(registry)].count("policy.apply") == 2


def test_invalid_policy_is_refused_and_nothing_stored(registry: Registry, signer: TestSigner) -> None:
    with pytest.raises(PolicyFileError, match="unknown entity 'BAPEDA'"), registry.transaction() as s:
        apply_policy(s, BANTEN.replace('to = "BSSN"', 'to = "BAPEDA"'), signer, "op", source_name="x.toml")
    with registry.transaction() as s:
        assert list_versions(s) == []


def test_active_and_in_force(registry: Registry, signer: TestSigner) -> None:
    with registry.transaction() as s:
        apply_policy(s, BANTEN, signer, "op")
        apply_policy(s, version(BANTEN, 2, "2026-07-01"), signer, "op")
    june = datetime(2026, 6, 1, tzinfo=UTC)
    august = datetime(2026, 8, 1, tzinfo=UTC)
    with registry.transaction() as s:
        assert active_policy(s, june).version == 1  # type: ignore[union-attr]
        assert active_policy(s, august).version == 2  # type: ignore[union-attr]
        assert active_policy(s, datetime(2025, 6, 1, tzinfo=UTC)) is None
        assert active_policy(s, datetime(2029, 1, 1, tzinfo=UTC)) is None
        assert policy_in_force_at(s, june, "banten-phks", 1).version == 1
        with pytest.raises(VerificationError, match="not the version in force"):
            policy_in_force_at(s, august, "banten-phks", 1)  # outdated
        with pytest.raises(VerificationError, match="not the version in force"):
            policy_in_force_at(s, june, "banten-phks", 2)  # not yet effective
        with pytest.raises(VerificationError, match="unknown"):
            policy_in_force_at(s, june, "banten-phks", 7)
        record = active_policy(s, june)
    assert record is not None
    assert compile_record(record).decide("DISKOMINFO", "BAPPEDA", "R", june).allowed


@pytest.mark.parametrize(("tamper", "ok"), [
    (lambda src, sig, key: (src, sig, key), True),
    (lambda src, sig, key: (src.replace('max = "T"', 'max = "SR"'), sig, key), False),
    (lambda src, sig, key: (src + "\n", sig, key), False),
    (lambda src, sig, key: (src, sig[:-1] + bytes([sig[-1] ^ 1]), key), False),
    (lambda src, sig, key: (src, sig[:10], key), False),
    (lambda src, sig, key: (src, sig, TestSigner().public_key_bytes()), False),
    (lambda src, sig, key: (src, sig, key[:31]), False),
    (lambda src, sig, key: (src.encode("utf-8"), sig, key), True),
])
def test_signature_verification(signer: TestSigner, tamper, ok) -> None:  # type: ignore[no-untyped-def]
    from sandi.policy.signature import sign_policy

    sig = sign_policy(BANTEN, signer)
    src, sig2, key = tamper(BANTEN, sig, signer.public_key_bytes())
    if ok:
        verify_policy_signature(src, sig2, key)
    else:
        with pytest.raises(VerificationError, match="does not verify"):
            verify_policy_signature(src, sig2, key)


def test_signature_is_domain_separated(signer: TestSigner) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from sandi.policy.signature import sign_policy

    sig = sign_policy(BANTEN, signer)
    with pytest.raises(InvalidSignature):  # not a bare signature over the file
        Ed25519PublicKey.from_public_bytes(signer.public_key_bytes()).verify(sig, BANTEN.encode())


def test_compile_verified_refuses_relabelled_records(registry: Registry, signer: TestSigner) -> None:
    with registry.transaction() as s:
        rec = apply_policy(s, BANTEN, signer, "op")
    key = signer.public_key_bytes()
    assert compile_verified(rec, key).version == 1
    with pytest.raises(VerificationError):
        compile_verified(replace(rec, version=5), key)  # a v1 signature passed off as v5
    with pytest.raises(VerificationError):
        compile_verified(replace(rec, expires_at=None), key)
    with pytest.raises(VerificationError):
        compile_verified(replace(rec, source=rec.source.replace("max = \"T\"", "max = \"R\"")), key)


def test_pure_selection_helpers() -> None:
    from sandi.policy.versions import PolicyVersionRecord

    def rec(pid: str, v: int, start: int, end: int | None) -> PolicyVersionRecord:
        return PolicyVersionRecord(pid, v, "", b"", "", datetime(start, 1, 1, tzinfo=UTC),
                                   datetime(end, 1, 1, tzinfo=UTC) if end else None)

    records = [rec("p", 1, 2024, None), rec("p", 2, 2026, 2027), rec("q", 1, 2025, None)]
    at = datetime(2026, 5, 1, tzinfo=UTC)
    assert select_active(records, at, "p").version == 2  # type: ignore[union-attr]
    assert select_active(records, datetime(2027, 5, 1, tzinfo=UTC), "p").version == 1  # type: ignore[union-attr]
    assert check_in_force(records, at, "q", 1).policy_id == "q"
    with pytest.raises(VerificationError):
        check_in_force(records, at, "p", 1)
    assert isinstance(PolicyVersionConflict("x"), PolicyError)
