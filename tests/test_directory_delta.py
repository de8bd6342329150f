"""Directory deltas end to end (issue 20, docs/format.md §4.A.2): the authority writes the
change since a version, a workstation holding that version imports it and ends with
exactly the authority's directory; a delta for another version, an altered one, an
expired one or one replayed after a newer import installs nothing."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sandi.directory import v2
from sandi.directory.delta import DeltaNotApplicable, apply_delta
from sandi.directory.local import installed_snapshot
from sandi.errors import VerificationError
from sandi.home import Home
from tests.test_workstations_flow import LETTER, Province, Site, build_province


@pytest.fixture
def province(tmp_path: Path) -> Province:
    return build_province(tmp_path)


def _version(site_home: Path) -> int:
    return installed_snapshot(Home(site_home)).version


def _delta(p: Province, base: int, name: str) -> Path:
    out = p.authority.outbox(name)
    p.authority.ok("directory", "delta", "--from", str(base), "-o", out)
    return out


def _installed_files(home: Path) -> dict[str, bytes]:
    return {n: (home / n).read_bytes() for n in ("directory.json", "directory.anchor.json")}


def test_a_workstation_applies_the_authoritys_delta(province: Province) -> None:
    p = province
    base = _version(p.bappeda.home)
    p.authority.ok("agency", "add", "DINAS-BARU", "--name", "Dinas Baru")
    p.authority.ok("keys", "issue", "DINAS-BARU")
    p.authority.ok("agency", "suspend", "SETDA", "--reason", "reorganisasi", "--yes")
    newest = _version(p.authority.home)
    delta = _delta(p, base, "delta.json")
    assert delta.stat().st_size < 20 * 1024  # three agencies' entries, the CRL, the header
    obj = json.loads(delta.read_bytes())
    assert [a["code"] for a in obj["agencies"]["upsert"]] == ["DINAS-BARU", "SETDA"]
    assert obj["base"]["version"] == base

    p.bappeda.ok("directory", "import", p.bappeda.receive(delta))
    assert _version(p.bappeda.home) == newest
    # Byte for byte the authority's own directory: the full file is always rebuildable.
    assert (p.bappeda.home / "directory.json").read_bytes() == (p.authority.home / "directory.json").read_bytes()
    # And the index built from the delta serves document commands.
    doc = p.bappeda.folder / "nota.txt"
    doc.write_bytes(LETTER)
    p.bappeda.ok("encrypt", "-r", "DISKOMINFO", "--class", "R", "-o", p.bappeda.folder / "nota.age", doc)
    shown = json.loads(p.bappeda.ok("--json", "directory", "show").stdout)
    assert shown["version"] == newest and shown["agency_count"] == len(
        json.loads((p.authority.home / "directory.json").read_bytes())["agencies"])


def test_a_delta_from_another_version_is_refused_and_nothing_changes(province: Province) -> None:
    p = province
    base = _version(p.bappeda.home)
    p.authority.ok("agency", "add", "DINAS-BARU", "--name", "Dinas Baru")
    first = _delta(p, base, "delta-1.json")
    p.authority.ok("agency", "add", "DINAS-LAIN", "--name", "Dinas Lain")
    second = _delta(p, base + 1, "delta-2.json")  # from the version BAPPEDA does not hold
    before = _installed_files(p.bappeda.home)
    r = p.bappeda.sandi("directory", "import", p.bappeda.receive(second))
    assert r.code == 4, r
    assert "full directory" in r.stderr
    assert _installed_files(p.bappeda.home) == before
    # The right one applies; replaying it afterwards is refused (its base is no longer the newest).
    p.bappeda.ok("directory", "import", p.bappeda.receive(first))
    assert _version(p.bappeda.home) == base + 1
    r = p.bappeda.sandi("directory", "import", p.bappeda.receive(first))
    assert r.code == 4, r
    p.bappeda.ok("directory", "import", p.bappeda.receive(second))
    assert _version(p.bappeda.home) == base + 2


def test_an_altered_delta_installs_nothing(province: Province) -> None:
    p = province
    base = _version(p.bappeda.home)
    p.authority.ok("agency", "add", "DINAS-BARU", "--name", "Dinas Baru")
    obj = json.loads(_delta(p, base, "delta.json").read_bytes())
    obj["agencies"]["upsert"][0]["name"] = "Dinas Baru (palsu)"
    forged = p.bappeda.folder / "forged.json"
    forged.write_bytes(v2.canonical(obj))
    before = _installed_files(p.bappeda.home)
    with pytest.raises(DeltaNotApplicable, match="agencies"):
        apply_delta(Home(p.bappeda.home), forged.read_bytes())
    assert _installed_files(p.bappeda.home) == before
    # A header the root did not sign is a verification error before anything else.
    header = json.loads(base64.b64decode(obj["header"]))
    header["version"] += 100
    obj["header"] = base64.b64encode(v2.canonical(header)).decode("ascii")
    with pytest.raises(VerificationError):
        apply_delta(Home(p.bappeda.home), v2.canonical(obj))
    assert _installed_files(p.bappeda.home) == before


def test_an_expired_delta_is_refused(province: Province) -> None:
    p = province
    base = _version(p.bappeda.home)
    p.authority.ok("agency", "add", "DINAS-BARU", "--name", "Dinas Baru")
    data = _delta(p, base, "delta.json").read_bytes()
    later = datetime.now(UTC) + timedelta(days=400)
    with pytest.raises(VerificationError, match="expired"):
        apply_delta(Home(p.bappeda.home), data, now=later)
    assert _version(p.bappeda.home) == base


def test_no_delta_from_an_unknown_version(province: Province) -> None:
    r = province.authority.sandi("directory", "delta", "--from", "999", "-o",
                                 province.authority.outbox("d.json"))
    assert r.code != 0
    assert "full directory" in r.stderr


def test_a_relative_home_path_applies_too(province: Province, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--home ./bappeda`` gives a relative path; the index is still found."""
    p = province
    base = _version(p.bappeda.home)
    p.authority.ok("agency", "add", "DINAS-BARU", "--name", "Dinas Baru")
    data = _delta(p, base, "delta.json").read_bytes()
    monkeypatch.chdir(p.bappeda.home.parent)
    apply_delta(Home(Path(p.bappeda.home.name)), data)
    assert _version(p.bappeda.home) == base + 1


# -- applied in place (ADR 0019): the index is changed row by row in one transaction ---------

_INDEX_TABLES = ("header", "agencies", "agency_positions", "keys", "nodes", "policies", "members")


def _index_content(home: Path) -> dict[str, list[tuple[object, ...]]]:
    import sqlite3

    db = sqlite3.connect(home / "directory.index")
    try:
        return {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall()) for t in _INDEX_TABLES}
    finally:
        db.close()


def test_the_index_a_delta_changes_in_place_equals_a_fresh_full_import(province: Province) -> None:
    p = province
    base = _version(p.bappeda.home)
    p.authority.ok("agency", "add", "AAA-PERTAMA", "--name", "Sorts first: every position shifts")
    p.authority.ok("keys", "issue", "AAA-PERTAMA")
    p.authority.ok("agency", "suspend", "SETDA", "--reason", "reorganisasi", "--yes")
    p.authority.ok("keys", "rotate", "AAA-PERTAMA", "--yes")
    delta = _delta(p, base, "delta.json")
    p.bappeda.ok("directory", "import", p.bappeda.receive(delta))
    # Another workstation imports the authority's full directory of the same version.
    fresh = Site("fresh", p.bappeda.folder.parent / "fresh")
    fresh.folder.mkdir()
    fresh.ok("init", "--agency", "BAPPEDA", "--root-fingerprint", p.root_fingerprint)
    fresh.ok("directory", "import", fresh.receive(p.authority.home / "directory.json"))
    assert _index_content(p.bappeda.home) == _index_content(fresh.home)
    assert (p.bappeda.home / "directory.json").read_bytes() == (fresh.home / "directory.json").read_bytes()
    assert installed_snapshot(Home(p.bappeda.home)).notices == []


def test_a_tampered_delta_leaves_the_index_untouched(province: Province) -> None:
    p = province
    base = _version(p.bappeda.home)
    p.authority.ok("agency", "add", "DINAS-BARU", "--name", "Dinas Baru")
    p.authority.ok("keys", "issue", "DINAS-BARU")
    obj = json.loads(_delta(p, base, "delta.json").read_bytes())
    obj["agencies"]["upsert"][0]["certificates"][0]["key_fingerprint"] = "ab" * 32
    forged = p.bappeda.folder / "forged.json"
    forged.write_bytes(v2.canonical(obj))
    index = p.bappeda.home / "directory.index"
    before = index.read_bytes(), _installed_files(p.bappeda.home)
    r = p.bappeda.sandi("directory", "import", forged)
    assert r.code == 4, r
    assert (index.read_bytes(), _installed_files(p.bappeda.home)) == before
    assert not (p.bappeda.home / "directory.index.new").exists()
    assert _version(p.bappeda.home) == base


@pytest.mark.parametrize("killed_at", ["AtomicOutput", "atomic_write"])
def test_an_apply_killed_before_its_commit_leaves_the_old_index(province: Province, killed_at: str) -> None:
    """A real SIGKILL once the index rows are changed (in the copy the update works on),
    when directory.json is about to be written (``AtomicOutput``) or after both files, when
    the header anchor is (``atomic_write``): the installed index is untouched either way. Killed before
    the files, the home still reads the old version through its index; killed after them,
    the old index is not used (its header is the old anchor's but directory.json changed),
    the new directory.json is verified in full once and the index rebuilt. A second import
    of the delta (first case) completes."""
    import os
    import subprocess
    import sys

    p = province
    base = _version(p.bappeda.home)
    p.authority.ok("agency", "add", "AAA-PERTAMA", "--name", "Dinas Pertama")
    p.authority.ok("keys", "issue", "AAA-PERTAMA")
    newest = _version(p.authority.home)
    delta = _delta(p, base, "delta.json")
    before = _index_content(p.bappeda.home)
    before_bytes = (p.bappeda.home / "directory.index").read_bytes()
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "import sandi.directory.delta as d\n"
        "from sandi.home import Home\n"
        "def killed(*a, **k):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        f"d.{killed_at} = killed\n"
        "d.apply_delta(Home(Path(sys.argv[1])), Path(sys.argv[2]).read_bytes())\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(p.bappeda.home), str(delta)],
                          env={**os.environ, "SANDI_LANG": "en"}, capture_output=True, check=False)
    assert proc.returncode == -9, proc
    assert (p.bappeda.home / "directory.index").read_bytes() == before_bytes  # the copy was changed
    assert _index_content(p.bappeda.home) == before
    snap = installed_snapshot(Home(p.bappeda.home))
    if killed_at == "AtomicOutput":
        assert snap.version == base and snap.notices == [] and snap.agency_or_none("AAA-PERTAMA") is None
        p.bappeda.ok("directory", "import", p.bappeda.receive(delta))
    else:
        assert snap.version == newest and len(snap.notices) == 1  # verified in full, said once
    again = installed_snapshot(Home(p.bappeda.home))
    assert again.version == newest and again.notices == [] and again.source is not None  # the index
    assert again.agency("AAA-PERTAMA").code == "AAA-PERTAMA"


def _synthetic(codes: list[str], tag: str = "") -> list[dict[str, object]]:
    import hashlib

    return [{"code": c, "name": f"Instansi {c}{tag}", "certificates": [
        {"key_fingerprint": hashlib.sha256(f"{c}/{j}{tag}".encode()).hexdigest()} for j in range(2)]}
        for c in codes]


def _synthetic_index(path: Path, agencies: list[dict[str, object]], version: int) -> bytes:
    from sandi.directory.index import write_index

    header = v2.header_bytes(version=version, issued_at=datetime(2026, 12, 1, tzinfo=UTC),
                             expires_at=datetime(2026, 12, 8, tzinfo=UTC), province="Banten",
                             root_certificate="root", agencies=agencies, policies=[],
                             members={"crl": "x"}, audit_checkpoint=None)
    envelope = v2.Envelope(header, b"s" * 64, agencies, [], {"crl": "x"})  # type: ignore[arg-type]
    write_index(path, envelope, v2.check_body(v2.parse_header(header), envelope), "0" * 64, "stamp")
    return header


@pytest.mark.parametrize(("before", "upsert", "remove"), [
    (["B", "D", "F"], ["A"], ["F"]),  # one sorts in first, the last leaves
    (["B", "D", "F", "H", "J"], [], ["B", "D", "F", "H"]),  # down to one leaf: the tree loses levels
    (["M"], ["A", "C", "Z"], []),  # from one leaf up
    ([f"K{i:03d}" for i in range(70)], ["K0345"], ["K000", "K050"]),  # a long shifted tail
    ([f"K{i:03d}" for i in range(9)], ["K004"], []),  # one leaf changed in place, nothing shifts
    ([f"K{i:03d}" for i in range(100)], ["K0905"], ["K010"]),  # a long shifted run, the tail unmoved
])
def test_in_place_removals_and_shifts_give_the_index_of_the_new_version(
        tmp_path: Path, before: list[str], upsert: list[str], remove: list[str]) -> None:
    """The in-place transaction on removals, insertions, one changed leaf and changes of
    tree height equals an index written whole for the new version (rows and nodes)."""
    import sqlite3

    from sandi.directory.delta import Delta, _apply_in_place

    old = _synthetic(before)
    changed = _synthetic(upsert, tag="'")
    new = sorted([a for a in old if a["code"] not in set(remove) | set(upsert)] + changed,
                 key=lambda a: str(a["code"]))
    (tmp_path / "applied").mkdir()
    (tmp_path / "whole").mkdir()
    base_header = _synthetic_index(tmp_path / "applied" / "directory.index", old, 1)
    new_header = _synthetic_index(tmp_path / "whole" / "directory.index", new, 2)
    delta = Delta(1, v2.sha256_hex(base_header), new_header, b"s" * 64, changed, remove, [], {})
    db = sqlite3.connect(tmp_path / "applied" / "directory.index", isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    applied = _apply_in_place(db, base_header, delta, v2.parse_header(new_header))
    db.execute("COMMIT")
    db.close()
    assert applied.leaves == [v2.canonical(a) for a in new]
    assert _index_content(tmp_path / "applied") == _index_content(tmp_path / "whole")
