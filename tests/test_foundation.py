"""The foundation: version, help, init, the error funnel, home resolution."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import click
import pytest
from sandi_cli import main as cli_main

from sandi.errors import (
    EXIT_DENIED,
    EXIT_ERROR,
    EXIT_USAGE,
    EXIT_VERIFICATION,
    ConfigError,
    NotFoundError,
    PolicyDenied,
    SandiError,
    UsageError,
    VerificationError,
)
from sandi.home import Home, HomeConfig, resolve_home
from tests.conftest import RunSandi


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_version(run_sandi: RunSandi) -> None:
    r = run_sandi("--version")
    assert r.code == 0
    assert "sandi, version" in r.stdout


def test_help_lists_commands(run_sandi: RunSandi) -> None:
    r = run_sandi("--help")
    assert r.code == 0
    assert "init" in r.stdout
    assert "Shell completion" in r.stdout


def test_python_dash_m_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "sandi", "--version"], capture_output=True,
                         text=True, check=True)
    assert "sandi, version" in out.stdout


PASS = {"SANDI_PASSPHRASE": "foundation-test-passphrase"}


def test_init_creates_home_with_private_modes(run_sandi: RunSandi, home_dir: Path) -> None:
    r = run_sandi("--home", home_dir, "init", "--province", "Provinsi Banten", env=PASS)
    assert r.code == 0, r
    assert (home_dir / "sandi.toml").is_file()
    assert (home_dir / "registry.db").is_file()
    assert stat.S_IMODE((home_dir / "keys").stat().st_mode) == 0o700
    assert stat.S_IMODE(home_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((home_dir / "registry.db").stat().st_mode) == 0o600
    cfg = Home(home_dir).load_config()
    assert cfg.role == "authority"
    assert cfg.province == "Provinsi Banten"


def test_second_init_refuses_and_changes_nothing(run_sandi: RunSandi, home_dir: Path) -> None:
    assert run_sandi("--home", home_dir, "init", env=PASS).code == 0
    before = _tree_digest(home_dir)
    r = run_sandi("--home", home_dir, "init", "--province", "Lain", env=PASS)
    assert r.code == EXIT_ERROR
    assert r.stderr.startswith("error: a sandi home exists already")
    assert "hint:" in r.stderr
    assert _tree_digest(home_dir) == before


def test_init_into_non_empty_folder_needs_force(run_sandi: RunSandi, tmp_path: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    r = run_sandi("--home", target, "init", env=PASS)
    assert r.code == EXIT_ERROR
    assert "not empty" in r.stderr
    assert not (target / "sandi.toml").exists()
    assert run_sandi("--home", target, "init", "--force", env=PASS).code == 0
    assert (target / "notes.txt").read_text() == "keep me"


def test_sandi_home_env_is_used(run_sandi: RunSandi, home_dir: Path) -> None:
    r = run_sandi("init", env={"SANDI_HOME": str(home_dir), **PASS})
    assert r.code == 0, r
    assert (home_dir / "sandi.toml").exists()


@pytest.mark.parametrize(
    ("explicit", "env", "expected"),
    [
        ("/x/explicit", "/y/env", "/x/explicit"),
        (None, "/y/env", "/y/env"),
        (None, None, "DEFAULT"),
    ],
)
def test_home_resolution_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, explicit: str | None, env: str | None,
    expected: str,
) -> None:
    if env is None:
        monkeypatch.delenv("SANDI_HOME", raising=False)
    else:
        monkeypatch.setenv("SANDI_HOME", env)
    got = resolve_home(explicit)
    if expected == "DEFAULT":
        assert got == tmp_path / "xdg-data" / "sandi"
    else:
        assert got == Path(expected)


def test_missing_home_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Home(tmp_path / "nowhere").load_config()
    assert "sandi init" in info.value.hint


@pytest.mark.parametrize(
    "text",
    ["format = 2\nrole='authority'\nprovince='x'\n", "format = 1\nrole='boss'\nprovince='x'\n",
     "format = 1\nrole='authority'\n", "not toml ===", "format=1\nrole='authority'\nprovince='x'\ndirectory_validity_days=0\n"],
)
def test_bad_config_is_rejected(text: str) -> None:
    with pytest.raises(ConfigError):
        HomeConfig.from_toml(text, source="t.toml")


def test_config_keeps_other_settings() -> None:
    text = 'format = 1\nrole = "authority"\nprovince = "P"\nscrypt_work_factor = 12\nnote = "x"\n'
    cfg = HomeConfig.from_toml(text, source="t")
    again = HomeConfig.from_toml(cfg.to_toml(), source="t")
    assert again.extra == {"scrypt_work_factor": 12, "note": "x"}


def test_config_round_trips_with_quotes() -> None:
    cfg = HomeConfig(role="workstation", province='Provinsi "B" \\ Banten', agency="BAPPEDA")
    assert HomeConfig.from_toml(cfg.to_toml(), source="t") == cfg


# -- the error funnel -----------------------------------------------------------------


@click.command("boom")
@click.argument("kind")
def _boom(kind: str) -> None:
    errors: dict[str, Exception] = {
        "plain": SandiError("it broke", hint="fix it"),
        "usage": UsageError("bad option --x", hint="see --help"),
        "notfound": NotFoundError("agency XYZ is not registered"),
        "denied": PolicyDenied("DINSOS may not send R to KESBANGPOL", hint="rule r-12"),
        "verify": VerificationError("signature verification failed"),
        "bug": RuntimeError("secret-ish internal detail"),
    }
    raise errors[kind]


@pytest.fixture
def boom_command(monkeypatch: pytest.MonkeyPatch) -> None:
    cli_main.cli.add_command(_boom)
    monkeypatch.setitem(cli_main.COMMANDS, "boom", ("tests.test_foundation", "_boom", "test"))
    yield
    cli_main.cli.commands.pop("boom", None)


@pytest.mark.parametrize(
    ("kind", "code", "message", "hint"),
    [
        ("plain", EXIT_ERROR, "error: it broke", "hint: fix it"),
        ("usage", EXIT_USAGE, "error: bad option --x", "hint: see --help"),
        ("notfound", EXIT_ERROR, "error: agency XYZ is not registered", None),
        ("denied", EXIT_DENIED, "error: DINSOS may not send R", "hint: rule r-12"),
        ("verify", EXIT_VERIFICATION, "error: signature verification failed", None),
        ("bug", EXIT_ERROR, "error: internal error: RuntimeError", "hint: this is a bug"),
    ],
)
def test_error_funnel(
    run_sandi: RunSandi, boom_command: None, kind: str, code: int, message: str, hint: str | None
) -> None:
    r = run_sandi("boom", kind)
    assert r.code == code
    assert r.stderr.startswith(message)
    if hint is None:
        assert "hint:" not in r.stderr
    else:
        assert hint in r.stderr
    assert "Traceback" not in r.stderr
    assert "secret-ish" not in r.stderr


def test_init_without_passphrase_and_terminal_fails_cleanly(run_sandi: RunSandi, home_dir: Path) -> None:
    r = run_sandi("--home", home_dir, "init")
    assert r.code == EXIT_ERROR
    assert "no terminal" in r.stderr and "SANDI_PASSPHRASE" in r.stderr
    assert not home_dir.exists() or not any(home_dir.iterdir())


@click.command("quit3")
@click.pass_context
def _quit3(ctx: click.Context) -> None:
    ctx.exit(3)


def test_ctx_exit_code_is_not_lost(run_sandi: RunSandi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli_main.COMMANDS, "quit3", ("tests.test_foundation", "_quit3", "test"))
    assert run_sandi("quit3").code == 3


def test_debug_shows_traceback(run_sandi: RunSandi, boom_command: None) -> None:
    r = run_sandi("--debug", "boom", "plain")
    assert r.code == EXIT_ERROR
    assert "Traceback" in r.stderr


def test_click_usage_error_exits_2(run_sandi: RunSandi) -> None:
    r = run_sandi("init", "--no-such-option")
    assert r.code == EXIT_USAGE
    assert "error: No such option" in r.stderr
    r = run_sandi("no-such-command")
    assert r.code == EXIT_USAGE


def test_import_sandi_does_not_import_click() -> None:
    code = "import sys, sandi, sandi.errors, sandi.home; print('click' in sys.modules, 'sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert out.stdout.strip() == "False False"


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys\n"
        "from sandi_cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('sqlalchemy', 'keyring', 'alembic', 'cryptography.x509') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stderr


def test_init_remembers_the_database_url_without_password(run_sandi: RunSandi, tmp_path: Path) -> None:
    from sandi_cli.init import _url_to_remember

    db = tmp_path / "elsewhere.db"
    home = tmp_path / "home"
    r = run_sandi("--home", home, "--database-url", f"sqlite:///{db}", "init", env=PASS)
    assert r.code == 0, r
    assert Home(home).load_config().database_url == f"sqlite:///{db}"
    assert not (home / "registry.db").exists()
    r = run_sandi("--home", home, "--json", "db", "status")
    assert r.code == 0, r
    assert '"current"' in r.stdout
    assert _url_to_remember("postgresql+psycopg://op:s3cret@db.example/sandi") == (
        "postgresql+psycopg://op@db.example/sandi"
    )
