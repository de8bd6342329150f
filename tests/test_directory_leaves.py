"""The directory's leaves kept in the registry (issue 20): every change through the real
command line marks its agency, a publication recomputes exactly the marked leaves, and
the stored leaves and tree heads are always what a full rebuild from the registry gives
(and what the published directory carries)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, text, update

from sandi.directory import v2
from sandi.directory.leaves import (
    agencies_head,
    canonical_json,
    keys_head,
    refresh_leaves,
    stale_leaves,
    stored_leaves,
)
from sandi.directory.local import installed_snapshot
from sandi.formats import merkle
from sandi.home import Home
from sandi.registry import Registry
from sandi.registry.models import AgencyRow, DirectoryLeafRow, DirectoryPendingRow
from tests.authority_fixtures import AuthorityHome, authority, authority_template  # noqa: F401


def _registry(home: AuthorityHome) -> Registry:
    return Registry(Home(home.path).database_url())


def _leaf_versions(registry: Registry) -> dict[str, int]:
    with registry.reading() as s:
        return {code: v for code, v in s.execute(select(DirectoryLeafRow.code, DirectoryLeafRow.version))}


def _pending_codes(registry: Registry) -> set[str]:
    with registry.reading() as s:
        return set(s.scalars(select(AgencyRow.code).join(
            DirectoryPendingRow, DirectoryPendingRow.agency_id == AgencyRow.id)))


def test_stored_leaves_are_the_published_directory(authority: AuthorityHome) -> None:
    registry = _registry(authority)
    snapshot = installed_snapshot(Home(authority.path))
    entries = sorted(snapshot.agencies, key=lambda a: a.code)
    with registry.reading() as s:
        assert stale_leaves(s) == []
        assert stored_leaves(s) == [canonical_json(a.to_json()) for a in entries]
        head = agencies_head(s)
        keys = keys_head(s)
    assert head.count == len(entries)
    assert head.root == merkle.root([merkle.leaf_hash(canonical_json(a.to_json())) for a in entries])
    pairs = v2.key_pairs([a.to_json() for a in entries])
    assert keys.count == len(pairs)
    assert keys.root == merkle.root([merkle.leaf_hash(v2.key_leaf(fp, code)) for fp, code in pairs])
    registry.dispose()


def test_a_change_recomputes_only_its_agencys_leaf(authority: AuthorityHome) -> None:
    registry = _registry(authority)
    before = _leaf_versions(registry)
    authority.ok("keys", "revoke", "BAPPEDA", "--reason", "superseded", "--yes")
    after = _leaf_versions(registry)
    changed = {code for code in after if after[code] != before[code]}
    assert changed == {"BAPPEDA"}
    assert after["BAPPEDA"] == installed_snapshot(Home(authority.path)).version
    with registry.reading() as s:
        assert stale_leaves(s) == []
    registry.dispose()


def test_every_kind_of_change_marks_its_agency_and_is_published(authority: AuthorityHome) -> None:
    registry = _registry(authority)
    steps: list[tuple[list[str], set[str]]] = [
        (["agency", "add", "BIRO-HUKUM", "--name", "Biro Hukum", "--parent", "SETDA"], {"BIRO-HUKUM"}),
        (["keys", "issue", "BIRO-HUKUM"], {"BIRO-HUKUM"}),
        (["agency", "suspend", "KESBANGPOL", "--reason", "reorganisation", "--yes"], {"KESBANGPOL"}),
        (["agency", "resume", "KESBANGPOL"], {"KESBANGPOL"}),
        (["keys", "renew", "DISKOMINFO"], {"DISKOMINFO"}),
        (["keys", "rotate", "SETDPRD", "--yes"], {"SETDPRD"}),
        (["official", "add", "SETDA", "--nip", "196801011990031001", "--nama", "Budi Santoso",
          "--jabatan", "Sekda"], {"SETDA"}),
    ]
    for argv, codes in steps:
        before = _leaf_versions(registry)
        authority.ok(*argv)
        after = _leaf_versions(registry)
        assert {c for c in after if after[c] != before.get(c)} == codes, argv
        assert _pending_codes(registry) == set(), argv
        with registry.reading() as s:
            assert stale_leaves(s) == [], argv
    registry.dispose()


def test_a_change_is_pending_until_published_and_the_check_sees_drift(authority: AuthorityHome,
                                                                       tmp_path: Path) -> None:
    registry = _registry(authority)
    # Without a passphrase the change is saved and the republish is owed (exit 5).
    r = authority.run("agency", "add", "DINKES", "--name", "Dinas Kesehatan", env={"SANDI_PASSPHRASE": None})
    assert r.code == 5, r
    assert _pending_codes(registry) == {"DINKES"}
    with registry.reading() as s:
        assert stale_leaves(s) == ["DINKES"]  # not yet a leaf
    authority.ok("directory", "publish")
    assert _pending_codes(registry) == set()
    with registry.reading() as s:
        assert stale_leaves(s) == []
    # A change behind the ORM's back (no mark) is found by the full check.
    with registry.transaction() as s:
        s.execute(update(AgencyRow).where(AgencyRow.code == "SETDA").values(name="Sekretariat Daerah (edit)"))
        s.execute(text("DELETE FROM directory_pending"))
    with registry.reading() as s:
        assert stale_leaves(s) == ["SETDA"]
    # The full rebuild recomputes every leaf and publishes the edit.
    authority.ok("directory", "publish", "--rebuild")
    with registry.reading() as s:
        assert stale_leaves(s) == []
    setda = installed_snapshot(Home(authority.path)).agency("SETDA")
    assert setda.name == "Sekretariat Daerah (edit)"
    registry.dispose()


def test_marking_everything_rebuilds_the_same_leaves(authority: AuthorityHome) -> None:
    """What migration 0008 does to an existing registry (every agency pending): the
    first refresh computes every leaf, and they are the ones kept incrementally."""
    registry = _registry(authority)
    with registry.reading() as s:
        heads = (agencies_head(s), keys_head(s))
        leaves = stored_leaves(s)
    with registry.transaction() as s:
        s.execute(text("DELETE FROM directory_key_leaves"))
        s.execute(text("DELETE FROM directory_leaves"))
        s.execute(text("INSERT INTO directory_pending (agency_id) SELECT id FROM agencies"))
        changes = refresh_leaves(s, 10_000)
        assert len(changes.upserted) == heads[0].count and changes.removed == ()
    with registry.reading() as s:
        assert (agencies_head(s), keys_head(s)) == heads
        assert stored_leaves(s) == leaves
    registry.dispose()
