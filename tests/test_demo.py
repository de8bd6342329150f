"""The README's first command runs `sandi demo`: it must do every step, in a fresh home."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import RunSandi

STEPS = [
    "Create the authority",
    "Register every entity",
    "Apply the communication-pattern policy",
    "Issue signing",
    "Seal a Rahasia letter from DISKOMINFO to BAPPEDA and SETDA",
    "Open it as BAPPEDA",
    "A relation the policy refuses",
    "Check the sealed letter with the standard tools",
    "Revoke DISKOMINFO's keys",
    "Verify the audit log",
    "Draw the communication pattern",
    "Where everything is",
]


def test_demo_runs_every_step(run_sandi: RunSandi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDI_SCRYPT_WORK_FACTOR", "10")
    target = tmp_path / "demo"
    r = run_sandi("demo", "--dir", target)
    assert r.code == 0, r.stdout[-3000:] + r.stderr
    for step in STEPS:
        assert step in r.stdout, step
    # the commands a person would type are shown
    assert "$ sandi seal " in r.stdout
    assert "error: denied by policy banten-phks" in r.stdout
    assert "error: the signing key was revoked for key compromise" in r.stdout
    opened = target / "surat" / "masuk-bappeda" / "surat-koordinasi.txt"
    assert opened.read_text(encoding="utf-8").startswith("PEMERINTAH PROVINSI BANTEN")
    # the refused letter and the revoked open wrote nothing
    assert not (target / "surat" / "nota-dinsos.txt.sandi").exists()
    assert list((target / "surat" / "masuk-setda").iterdir()) == []
    if shutil.which("age") and shutil.which("minisign"):
        assert "Signature and comment signature verified" in r.stdout
        assert not (target / "surat" / "periksa" / "bappeda.identity.txt").exists()
    assert "journal: ok" in r.stdout and "registry: ok" in r.stdout


def test_demo_refuses_a_non_empty_folder(run_sandi: RunSandi, tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    r = run_sandi("demo", "--dir", tmp_path)
    assert r.code == 2
    assert "not empty" in r.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


STEPS_ID = [
    "Buat otoritas",
    "Segel surat Rahasia dari DISKOMINFO kepada BAPPEDA dan SETDA",
    "Verifikasi log audit",
]


def test_demo_narrates_in_indonesian(run_sandi: RunSandi, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDI_SCRYPT_WORK_FACTOR", "10")
    r = run_sandi("--lang", "id", "demo", "--dir", tmp_path / "demo")
    assert r.code == 0, r.stdout[-3000:] + r.stderr
    for step in STEPS_ID:
        assert step in r.stdout, step
    for english in STEPS:
        assert english not in r.stdout, english
    assert "galat: ditolak oleh kebijakan banten-phks" in r.stdout
    # the sealed letter reads as a letter heading, in WIB
    assert re.search(r"Klasifikasi: +Rahasia \(R\)", r.stdout)
    assert re.search(r"Disegel pada: +\d{1,2} [A-Z][a-z]+ \d{4} \d\d:\d\d:\d\d WIB", r.stdout)
    assert re.search(r"Kepada Yth\.: +Kepala BAPPEDA Provinsi Banten", r.stdout)
    assert "NIP 19750312 200212 1 003" in r.stdout and "1. Gubernur Banten" in r.stdout
