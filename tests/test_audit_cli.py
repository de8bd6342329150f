"""``sandi audit``: log, verify (exit 4 naming the entry), checkpoint, export and verify elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from sandi.audit.events import AuditEvent
from sandi.audit.journal import Journal
from sandi.audit.registry_sink import append_in_session, iter_entries
from sandi.home import Home, HomeConfig
from sandi.registry import Registry
from tests.conftest import RunSandi

PASS = {"SANDI_PASSPHRASE": "correct horse battery staple"}


@pytest.fixture(scope="module")
def authority_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One init per module (scrypt is slow on purpose); each test copies the home.
    from tests.conftest import invoke

    home = tmp_path_factory.mktemp("tpl") / "authority"
    r = invoke("--home", home, "init", env=PASS)
    assert r.code == 0, r
    return home


def registry_count(home: Path) -> int:
    registry = Registry(f"sqlite:///{home / 'registry.db'}")
    with registry.transaction() as session:
        n = len(list(iter_entries(session)))
    registry.dispose()
    return n


@pytest.fixture
def authority(authority_template: Path, tmp_path: Path) -> Path:
    import shutil

    home = tmp_path / "authority"
    shutil.copytree(authority_template, home)
    registry = Registry(f"sqlite:///{home / 'registry.db'}")
    for action, subject, details in [
        ("agency.add", "DISKOMINFO", {"name": "Dinas Komunikasi dan Informatika"}),
        ("agency.add", "BAPPEDA", {}),
        ("key.issue", "0a1b2c", {"agency": "BAPPEDA", "purpose": "signing"}),
        ("policy.deny", "DISKOMINFO", {"to": ["BAPPEDA"], "rule": "R7"}),
    ]:
        with registry.transaction() as session:
            append_in_session(session, AuditEvent("operator", action, subject,
                                                  "denied" if action == "policy.deny" else "ok", details))
    registry.dispose()
    Journal(Home(home).journal_path).append(AuditEvent("operator", "document.seal", "surat.pdf"))
    return home


def test_log_shows_both_sinks_and_filters(run_sandi: RunSandi, authority: Path) -> None:
    r = run_sandi("--home", authority, "audit", "log", "--json")
    assert r.code == 0, r
    rows = json.loads(r.stdout)
    n = registry_count(authority)  # init records its own entries, then the fixture's 4
    assert [(row["sink"], row["seq"]) for row in rows] == [("registry", i) for i in range(1, n + 1)] + [
        ("journal", 1)]
    assert rows[0]["action"] == "init"

    def actions(*args: str) -> list[str]:
        out = run_sandi("--home", authority, "audit", "log", "--json", *args)
        assert out.code == 0, out
        return [row["action"] for row in json.loads(out.stdout)]

    assert actions("--action", "agency.*")[-2:] == ["agency.add", "agency.add"]
    assert actions("--action", "policy.deny") == ["policy.deny"]
    assert actions("--agency", "BAPPEDA")[-3:] == ["agency.add", "key.issue", "policy.deny"]
    assert actions("--since", "2999-01-01") == []
    assert actions("--limit", "1") == ["policy.deny", "document.seal"]
    human = run_sandi("--home", authority, "audit", "log", "--action", "policy.*")
    assert "registry" in human.stdout and "denied" in human.stdout and "R7" in human.stdout
    bad = run_sandi("--home", authority, "audit", "log", "--since", "yesterday")
    assert bad.code == 2 and "--since" in bad.stderr


def test_verify_ok_then_names_the_edited_entry(run_sandi: RunSandi, authority: Path) -> None:
    r = run_sandi("--home", authority, "audit", "verify")
    assert r.code == 0, r
    n = registry_count(authority)
    assert f"registry: ok, {n} entries" in r.stdout and "journal: ok, 1 entries" in r.stdout
    with Registry(f"sqlite:///{authority / 'registry.db'}").engine.begin() as conn:
        conn.execute(text("UPDATE audit_entries SET subject = 'X' WHERE seq = :s"), {"s": n - 2})
    r = run_sandi("--home", authority, "audit", "verify")
    assert r.code == 4, r
    assert f"entry {n - 2}" in r.stderr and "edited" in r.stderr
    assert f"registry: BROKEN at entry {n - 2} (edited)" in r.stdout


def test_verify_names_a_tampered_journal_entry(run_sandi: RunSandi, authority: Path) -> None:
    path = Home(authority).journal_path
    journal = Journal(path)
    journal.append(AuditEvent("operator", "document.open", "surat.pdf"))
    journal.append(AuditEvent("operator", "file.decrypt", "data.age"))
    lines = path.read_bytes().splitlines(keepends=True)
    del lines[1]  # entry 2
    path.write_bytes(b"".join(lines))
    r = run_sandi("--home", authority, "audit", "verify", "--json")
    assert r.code == 4, r
    report = json.loads(r.stdout)
    assert report["registry"]["ok"] is True
    assert report["journal"]["problem"] == {"seq": 2, "kind": "deleted",
                                            "message": "entry 1 is followed by entry 3: entry 2 missing"}


def test_checkpoint_export_and_verify_elsewhere(run_sandi: RunSandi, authority: Path, tmp_path: Path,
                                                authority_template: Path) -> None:
    r = run_sandi("--home", authority, "audit", "checkpoint", "--json", env=PASS)
    assert r.code == 0, r
    made = json.loads(r.stdout)
    n = registry_count(authority)
    assert made["registry"]["seq"] == n and made["journal"]["seq"] == 1
    r = run_sandi("--home", authority, "audit", "verify", "--json")
    assert json.loads(r.stdout)["registry"]["unsigned_tail"] == 0

    out = tmp_path / "audit.jsonl"
    r = run_sandi("--home", authority, "audit", "export", str(out))
    assert r.code == 0, r
    header = json.loads(out.read_bytes().splitlines()[0])
    assert header["format"] == "sandi-audit-export/v1" and header["chain"] == "registry"
    assert out.stat().st_mode & 0o777 == 0o600
    root = authority / "root.pem"
    r = run_sandi("audit", "verify", "--file", str(out), "--root-cert", str(root))
    assert r.code == 0, r
    # init's directory publication checkpointed the registry too (ADR 0010)
    assert f"{n} entries, 2 checkpoints (signatures checked)" in r.stdout
    again = run_sandi("--home", authority, "audit", "export", str(out))
    assert again.code == 1 and "exists" in again.stderr  # never overwrites

    # The export's tail cut off: the checkpoint still covers the last entry.
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(b"".join(out.read_bytes().splitlines(keepends=True)[:-2]))
    r = run_sandi("audit", "verify", "--file", str(cut), "--root-cert", str(root))
    assert r.code == 4 and f"entry {n - 1}" in r.stderr and "truncated" in r.stderr, r

    # A root certificate of another authority: the header says so.
    other = tmp_path / "other"
    assert run_sandi("--home", other, "init", env=PASS).code == 0
    r = run_sandi("audit", "verify", "--file", str(out), "--root-cert", str(other / "root.pem"))
    assert r.code == 4 and "another authority" in r.stderr, r

    # Journal export of the same home.
    jout = tmp_path / "journal.jsonl"
    assert run_sandi("--home", authority, "audit", "export", str(jout), "--sink", "journal").code == 0
    r = run_sandi("audit", "verify", "--file", str(jout), "--root-cert", str(root))
    assert r.code == 0 and "(journal): ok, 1 entries, 1 checkpoints" in r.stdout, r


def test_verify_file_needs_a_root_cert(run_sandi: RunSandi, tmp_path: Path) -> None:
    f = tmp_path / "x.jsonl"
    f.write_text("{}\n")
    r = run_sandi("audit", "verify", "--file", str(f))
    assert r.code == 2 and "--root-cert" in r.stderr


def test_workstation_has_only_the_journal(run_sandi: RunSandi, tmp_path: Path) -> None:
    home = Home(tmp_path / "ws")
    home.create(HomeConfig(role="workstation", province="Provinsi Banten", agency="BAPPEDA",
                           root_fingerprint="ab" * 32))
    journal = Journal(home.journal_path)
    for name in ("a.pdf", "b.pdf"):
        journal.append(AuditEvent("BAPPEDA", "document.seal", name, details={"to": ["DISKOMINFO"]}))
    r = run_sandi("--home", home.path, "audit", "log")
    assert r.code == 0 and r.stdout.count("journal") == 2, r
    assert run_sandi("--home", home.path, "audit", "verify").code == 0
    # a workstation signs with its agency's key, which needs its directory and keys
    r = run_sandi("--home", home.path, "audit", "checkpoint")
    assert r.code == 1 and "no directory" in r.stderr, r
    assert "checkpoint" not in home.journal_path.read_text()
    r = run_sandi("--home", home.path, "audit", "export", str(tmp_path / "r.jsonl"), "--sink", "registry")
    assert r.code == 2 and "no registry" in r.stderr
    lines = home.journal_path.read_bytes().splitlines(keepends=True)
    home.journal_path.write_bytes(lines[1] + lines[0])
    r = run_sandi("--home", home.path, "audit", "verify")
    assert r.code == 4 and "entry 1" in r.stderr and "reordered" in r.stderr, r


@pytest.mark.parametrize("sub", ["log", "verify", "checkpoint", "export"])
def test_every_subcommand_has_an_example(run_sandi: RunSandi, sub: str) -> None:
    r = run_sandi("audit", sub, "--help")
    assert r.code == 0 and "Example:" in r.stdout
