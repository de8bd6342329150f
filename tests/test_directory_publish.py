"""Publishing from the registry: versions grow, the snapshot verifies, checkpoints come periodically."""

from __future__ import annotations

from pathlib import Path

from sandi.audit.events import AuditEvent
from sandi.audit.journal import Journal
from sandi.audit.registry_sink import append_in_session, read_checkpoints
from sandi.authority.issuance import load_issuer
from sandi.directory.local import installed_snapshot
from sandi.directory.publish import republish
from sandi.home import Home
from sandi.keystore import FixedPassphrase, open_keystore
from sandi.registry import Registry
from tests.authority_fixtures import PASSPHRASE, AuthorityHome, authority, authority_template  # noqa: F401


def _open(home_path: Path) -> tuple[Home, Registry, object]:
    home = Home(home_path)
    registry = Registry(home.database_url())
    issuer = load_issuer(home, open_keystore(home, FixedPassphrase(PASSPHRASE)))
    return home, registry, issuer


def test_versions_grow_and_the_home_installs_each(authority: AuthorityHome) -> None:
    home, registry, issuer = _open(authority.path)
    first = installed_snapshot(home).version
    a = republish(home, registry, issuer)  # type: ignore[arg-type]
    b = republish(home, registry, issuer)  # type: ignore[arg-type]
    assert first < a.version < b.version
    assert installed_snapshot(home).version == b.version
    assert (home.path / "crl.pem").read_text().startswith("-----BEGIN X509 CRL-----")


def test_publishing_checkpoints_both_audit_sinks_every_hundred_entries(authority: AuthorityHome) -> None:
    home, registry, issuer = _open(authority.path)
    with registry.transaction() as session:
        before = len(read_checkpoints(session))
        for i in range(100):
            append_in_session(session, AuditEvent(actor="t", action="test.fill", subject=str(i)))
    journal = Journal(home.journal_path)
    for i in range(100):
        journal.append(AuditEvent(actor="t", action="test.fill", subject=str(i)))
    journal_before = len(list(journal.checkpoints()))
    republish(home, registry, issuer)  # type: ignore[arg-type]
    with registry.transaction() as session:
        assert len(read_checkpoints(session)) == before + 1
    assert len(list(journal.checkpoints())) == journal_before + 1
    # not due again right away
    republish(home, registry, issuer)  # type: ignore[arg-type]
    with registry.transaction() as session:
        assert len(read_checkpoints(session)) == before + 1
