"""Publishing from the registry: versions grow, the snapshot verifies, every publication
checkpoints the registry's audit chain (carried in the snapshot), the journal periodically."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandi.audit.anchor import read_anchor
from sandi.audit.events import AuditEvent
from sandi.audit.journal import Journal
from sandi.audit.registry_sink import read_checkpoints, read_head
from sandi.authority.issuance import load_issuer
from sandi.directory.local import installed_snapshot
from sandi.directory.publish import republish
from sandi.home import Home
from sandi.keystore import FixedPassphrase, open_keystore
from sandi.registry import Registry
from tests.authority_fixtures import PASSPHRASE, AuthorityHome, authority, authority_template  # noqa: F401
from tests.conftest import RunSandi
from tests.test_age_cli import secret_file


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


def test_publishing_checkpoints_the_registry_every_time_and_the_journal_every_hundred_entries(
    authority: AuthorityHome,
) -> None:
    home, registry, issuer = _open(authority.path)
    journal = Journal(home.journal_path)
    for i in range(100):
        journal.append(AuditEvent(actor="t", action="test.fill", subject=str(i)))
    with registry.transaction() as session:
        before = len(read_checkpoints(session))
    journal_before = len(list(journal.checkpoints()))
    snapshot = republish(home, registry, issuer)  # type: ignore[arg-type]
    with registry.transaction() as session:
        checkpoints = read_checkpoints(session)
        head = read_head(session)
    assert len(checkpoints) == before + 1
    # the registry's checkpoint covers the publication's own entry and travels in the directory
    assert head is not None and checkpoints[-1].seq == head[0]
    assert snapshot.audit_checkpoint == checkpoints[-1]
    assert len(list(journal.checkpoints())) == journal_before + 1
    # both became the home's anchors
    assert read_anchor(home.registry_audit_anchor_path, "registry").checkpoint == checkpoints[-1]  # type: ignore[union-attr]
    assert read_anchor(home.journal_audit_anchor_path, "journal").checkpoint == journal.checkpoints()[-1]  # type: ignore[union-attr]
    # the journal is not due again right away; the registry is checkpointed every time
    republish(home, registry, issuer)  # type: ignore[arg-type]
    with registry.transaction() as session:
        assert len(read_checkpoints(session)) == before + 2
    assert len(list(journal.checkpoints())) == journal_before + 1


# Commands that change the registry, run as a script would: the key store passphrase
# only in --passphrase-file, nothing in the environment, no terminal.
CHANGES: list[tuple[str, list[str]]] = [
    ("agency-add", ["agency", "add", "DINSOS", "--name", "Dinas Sosial"]),
    ("agency-suspend", ["agency", "suspend", "--yes", "SETDA", "--reason", "reorganisation"]),
    ("keys-renew", ["keys", "renew", "BAPPEDA"]),
    ("keys-revoke", ["keys", "revoke", "--yes", "BAPPEDA", "--reason", "superseded"]),
    ("keys-rotate", ["keys", "rotate", "--yes", "DISKOMINFO"]),
]


@pytest.mark.parametrize("argv", [pytest.param(a, id=i) for i, a in CHANGES])
def test_a_passphrase_file_also_unlocks_the_republish(authority: AuthorityHome, tmp_path: Path,
                                                      argv: list[str]) -> None:
    pw = secret_file(tmp_path / "pw", PASSPHRASE)
    before = installed_snapshot(Home(authority.path)).version
    r = authority.run(*argv, "--passphrase-file", pw, env={"SANDI_PASSPHRASE": None})
    assert r.code == 0, r
    assert "not republished" not in r.stderr, r
    after = installed_snapshot(Home(authority.path)).version
    assert after > before and f"directory version {after} published" in r.stderr, r


def test_without_a_passphrase_the_change_is_kept_and_the_republish_is_owed(authority: AuthorityHome) -> None:
    home = Home(authority.path)
    before = installed_snapshot(home).version
    r = authority.run("agency", "add", "DINSOS", "--name", "Dinas Sosial", env={"SANDI_PASSPHRASE": None})
    assert r.code == 5, r  # saved, but a script must notice that the directory is behind
    assert "the change is saved, but the directory was not republished" in r.stderr, r
    assert "hint: run 'sandi directory publish'" in r.stderr, r
    assert installed_snapshot(home).version == before
    assert authority.run("agency", "show", "DINSOS").code == 0
    # the owed publication, once a passphrase is at hand, includes the change
    authority.ok("directory", "publish")
    snapshot = installed_snapshot(home)
    assert snapshot.version > before and "DINSOS" in {a.code for a in snapshot.agencies}


def test_init_with_a_passphrase_file_publishes_the_first_directory(run_sandi: RunSandi, tmp_path: Path) -> None:
    pw = secret_file(tmp_path / "pw", "kata sandi awal")
    home = tmp_path / "authority"
    r = run_sandi("--home", home, "init", "--province", "Provinsi Banten", "--passphrase-file", pw)
    assert r.code == 0, r
    assert "directory version 1 published" in r.stderr and "not republished" not in r.stderr, r
    assert installed_snapshot(Home(home)).version == 1


def test_the_authority_publishes_v2_and_v1_on_request(authority: AuthorityHome) -> None:
    """ADR 0015: v2 with its index by default; ``directory_format = 1`` for workstations
    that still run an older release (format.md §5), and then no index is kept."""
    from dataclasses import replace

    from sandi.errors import ConfigError

    home, registry, issuer = _open(authority.path)
    snapshot = republish(home, registry, issuer)  # type: ignore[arg-type]
    assert snapshot.format == "sandi-directory/v2" and home.directory_index_path.is_file()
    assert installed_snapshot(home).source is not None  # read through the index
    config = home.load_config()
    home.config_path.write_text(replace(config, extra={**config.extra, "directory_format": 1}).to_toml())
    old = republish(home, registry, issuer)  # type: ignore[arg-type]
    assert old.format == "sandi-directory/v1" and not home.directory_index_path.exists()
    assert installed_snapshot(home).version == old.version
    home.config_path.write_text(replace(config, extra={**config.extra, "directory_format": 3}).to_toml())
    with pytest.raises(ConfigError, match="directory_format"):
        republish(home, registry, issuer)  # type: ignore[arg-type]
