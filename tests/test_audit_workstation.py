"""A workstation's journal: checkpoints signed with the agency's own key, verified with
the keys the directory publishes for it; a rewrite after a checkpoint is caught."""

from __future__ import annotations

import json
import re

from tests.test_workstations_flow import Province, _seal_letter, province  # noqa: F401


def test_workstation_checkpoint_is_signed_by_its_agency(province: Province) -> None:
    site = province.diskominfo
    _seal_letter(province)
    r = site.ok("audit", "checkpoint")
    assert "signed by DISKOMINFO" in r.stdout
    r = site.ok("--json", "audit", "verify")
    report = json.loads(r.stdout)["journal"]
    assert report["signatures_checked"] is True
    assert report["ok"] is True


def test_rewriting_a_checkpointed_workstation_journal_is_caught(province: Province) -> None:
    site = province.diskominfo
    _seal_letter(province)
    site.ok("audit", "checkpoint")
    journal = site.home / "audit.journal"
    lines = journal.read_text().splitlines()
    first = json.loads(lines[0])
    first["subject"] = "something-else"
    lines[0] = json.dumps(first, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    journal.write_text("\n".join(lines) + "\n")
    r = site.sandi("audit", "verify")
    assert r.code == 4, r
    assert "entry 1" in r.stdout + r.stderr


def test_a_checkpoint_signed_by_another_agency_is_caught(province: Province) -> None:
    # BAPPEDA's journal carried into DISKOMINFO's home: its checkpoint names BAPPEDA's key.
    bappeda = province.bappeda
    sealed = _seal_letter(province)  # handed over into BAPPEDA's inbox
    bappeda.ok("open", sealed, "--output-dir", bappeda.folder / "in")
    bappeda.ok("audit", "checkpoint")
    target = province.diskominfo.home / "audit.journal"
    target.write_bytes((bappeda.home / "audit.journal").read_bytes())
    r = province.diskominfo.sandi("audit", "verify")
    assert r.code == 4, r
    assert "signed by another key" in r.stdout + r.stderr


def test_near_expiry_warns_on_every_workstation_command_once(province: Province) -> None:
    province.hand_directory(province.publish("directory-short.json", "--days", "1"),
                            province.diskominfo, province.bappeda)
    r = province.bappeda.sandi("agency", "list")  # authority-only: refused, nothing created
    assert r.code == 2 and "workstation" in r.stderr, r
    assert not (province.bappeda.home / "registry.db").exists()
    for args in (["audit", "log"], ["policy", "show"], ["agency", "--help"]):
        r = province.bappeda.sandi(*args)
        if args[-1] == "--help":
            assert "warning" not in r.stderr  # help runs no command
            continue
        assert r.stderr.count("warning: the directory (version ") == 1, (args, r)
        assert re.search(r"\) expires in \d+ h \(.*\); import a newer one from the authority", r.stderr), r
    # document commands read the verified directory; same words, still once
    memo = province.bappeda.home.parent / "memo.txt"
    memo.write_bytes(b"memo")
    for args in (["directory", "show"], ["sign", memo, "--as", "BAPPEDA"]):
        r = province.bappeda.sandi(*args)
        assert r.code == 0, (args, r)
        assert r.stderr.count("warning:") == 1 and "warning: the directory (version " in r.stderr, (args, r)
