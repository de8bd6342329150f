"""The document commands never import SQLAlchemy (nor the registry) on a workstation.

Each command runs in a fresh interpreter through the real entry point; afterwards the
interpreter reports which modules it had loaded. A module imported lazily halfway
through the command counts too, which ``-X importtime`` of the start alone would miss;
one case also runs the installed ``sandi`` script under ``-X importtime``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.test_workstations_flow import ENV, LETTER, Province, build_province

# What an authority needs and a workstation's daily work must not load ...
FORBIDDEN = ("sqlalchemy", "alembic", "psycopg", "sandi.registry", "sandi.authority",
             "sandi.directory.publish")
# ... except the authority's pure rules (certificate validity, the syntax of codes and
# NIPs), which workstations share so that both sides decide alike (no registry behind them).
ALLOWED = frozenset({"sandi.authority", "sandi.authority.validity", "sandi.authority.identifiers"})

PROBE = """
import json, sys
report, argv = sys.argv[1], sys.argv[2:]
sys.argv = ["sandi", *argv]
from sandi_cli.main import main
try:
    main(argv)
    code = 0
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
with open(report, "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
"""


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> Province:
    p = build_province(tmp_path_factory.mktemp("startup"))
    doc = p.diskominfo.folder / "surat.pdf"
    doc.write_bytes(LETTER)
    p.diskominfo.ok("seal", doc, "--to", "BAPPEDA", "--class", "R")
    p.bappeda.receive(doc.with_name("surat.pdf.sandi"))
    notice = p.diskominfo.folder / "pengumuman.txt"
    notice.write_text("Pengumuman.\n")
    p.diskominfo.ok("sign", notice)
    p.bappeda.receive(notice)
    p.bappeda.receive(notice.with_name("pengumuman.txt.minisig"))
    p.diskominfo.ok("encrypt", "-r", "BAPPEDA", "--class", "R", "-o", p.diskominfo.folder / "data.age", doc)
    p.bappeda.receive(p.diskominfo.folder / "data.age")
    return p


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDI_")}
    env.update({k: v for k, v in ENV.items() if v is not None})
    return env


def _probe(tmp_path: Path, home: Path, *args: str | Path) -> tuple[int, list[str]]:
    report = tmp_path / "report.json"
    r = subprocess.run(
        [sys.executable, "-c", PROBE, str(report), "--home", str(home), *map(str, args)],
        env=_env(), cwd=tmp_path, check=False, capture_output=True, text=True, timeout=120,
    )
    assert report.exists(), r.stderr[-3000:]
    data = json.loads(report.read_text())
    assert data["code"] == 0, r.stderr[-3000:]
    return int(data["code"]), list(data["modules"])


def _leaks(modules: list[str]) -> list[str]:
    return [m for m in modules
            if m not in ALLOWED and any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]


Command = Callable[[Province, Path], tuple[Path, list[str | Path]]]

COMMANDS: list[tuple[str, Command]] = [
    ("seal", lambda p, out: (p.diskominfo.home, [
        "seal", p.diskominfo.folder / "surat.pdf", "--to", "BAPPEDA", "--class", "R", "-o", out / "s.sandi"])),
    ("open", lambda p, out: (p.bappeda.home, [
        "open", p.bappeda.folder / "inbox" / "surat.pdf.sandi", "-o", out / "surat.pdf"])),
    ("inspect", lambda p, out: (p.bappeda.home, ["inspect", p.bappeda.folder / "inbox" / "surat.pdf.sandi"])),
    ("inspect --as", lambda p, out: (p.bappeda.home, [
        "inspect", p.bappeda.folder / "inbox" / "surat.pdf.sandi", "--as", "BAPPEDA"])),
    ("sign", lambda p, out: (p.diskominfo.home, [
        "sign", p.diskominfo.folder / "pengumuman.txt", "-o", out / "p.minisig"])),
    ("verify", lambda p, out: (p.bappeda.home, [
        "verify", p.bappeda.folder / "inbox" / "pengumuman.txt",
        "--sig", p.bappeda.folder / "inbox" / "pengumuman.txt.minisig"])),
    ("verify on the authority", lambda p, out: (p.authority.home, [
        "verify", p.bappeda.folder / "inbox" / "pengumuman.txt",
        "--sig", p.bappeda.folder / "inbox" / "pengumuman.txt.minisig"])),
    ("encrypt -r CODE", lambda p, out: (p.bappeda.home, [
        "encrypt", "-r", "DISKOMINFO", "--class", "R", "-o", out / "x.age", p.diskominfo.folder / "surat.pdf"])),
    ("decrypt --as CODE", lambda p, out: (p.bappeda.home, [
        "decrypt", "--as", "BAPPEDA", "-o", out / "x", p.bappeda.folder / "inbox" / "data.age"])),
    ("directory show", lambda p, out: (p.bappeda.home, ["directory", "show"])),
    ("--help", lambda p, out: (p.bappeda.home, ["--help"])),
]


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_document_commands_do_not_import_sqlalchemy(
    province: Province, tmp_path: Path, name: str, command: Command
) -> None:
    home, args = command(province, tmp_path)
    code, modules = _probe(tmp_path, home, *args)
    assert code == 0, f"{name} failed in the probe (exit {code})"
    assert "sandi_cli.main" in modules  # the probe really ran sandi
    assert _leaks(modules) == [], f"{name} imported {_leaks(modules)}"


def test_the_probe_would_see_a_leak(province: Province, tmp_path: Path) -> None:
    """An authority command does load the registry: the check is not vacuous."""
    code, modules = _probe(tmp_path, province.authority.home, "agency", "list")
    assert code == 0
    assert "sqlalchemy" in _leaks(modules)


# An authority command opens the registry and checks its schema version: that check
# reads the revisions from the migration files' names, so alembic (and mako, which it
# pulls in) load only for 'sandi db upgrade' and 'sandi init'; a command that merely
# declares a policy option does not load the policy package.
AUTHORITY_FORBIDDEN = ("alembic", "mako", "sandi.policy", "sandi.documents", "pyhanko", "starlette")

AUTHORITY_COMMANDS: list[tuple[str, list[str]]] = [
    ("agency list", ["agency", "list"]),
    ("db status", ["db", "status"]),
    ("agency add", ["agency", "add", "STARTUP-PROBE", "--name", "Startup probe"]),
    ("keys issue", ["keys", "issue", "STARTUP-PROBE"]),
]


def test_authority_commands_do_not_load_the_migration_machinery(province: Province, tmp_path: Path) -> None:
    for name, args in AUTHORITY_COMMANDS:  # in order: the agency is added, then its keys issued
        _, modules = _probe(tmp_path, province.authority.home, *args)
        assert "sqlalchemy" in modules  # it really opened the registry
        loaded = [m for m in modules if any(m == f or m.startswith(f + ".") for f in AUTHORITY_FORBIDDEN)]
        assert loaded == [], f"{name} imported {loaded}"


def test_installed_script_under_importtime(province: Province, tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("sandi")
    if not script.exists():
        pytest.skip("the sandi console script is not installed beside this interpreter")
    r = subprocess.run(
        [sys.executable, "-X", "importtime", str(script), "--home", str(province.bappeda.home),
         "verify", province.bappeda.folder / "inbox" / "pengumuman.txt"],
        env=_env(), cwd=tmp_path, check=False, capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines()
                if line.startswith("import time:")]
    assert "sandi.documents" in imported
    assert _leaks(imported) == []
