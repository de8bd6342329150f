"""Release quality: what a wheel user has (shipped policies and profiles by name),
the package metadata, and PowerShell completion.

The wheel-only install, the build without warnings and ``twine check`` run in
``scripts/check-dist`` (part of ``scripts/test``), not here: they need a build.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sandi.authority.profiles import DEFAULT_PROFILE_TOML
from sandi.policy.shipped import shipped_policy_names, shipped_policy_path
from tests.conftest import RunSandi

ROOT = Path(__file__).parents[1]


def test_shipped_policies_are_found_by_name() -> None:
    assert {"banten", "banten-tests"} <= set(shipped_policy_names())
    banten = shipped_policy_path("banten")
    assert banten is not None and banten.read_bytes() == (ROOT / "policies" / "banten.toml").read_bytes()
    assert shipped_policy_path("jakarta") is None
    assert shipped_policy_path("../pyproject") is None


def test_policy_example_lists_prints_and_writes(run_sandi: RunSandi, tmp_path: Path) -> None:
    listed = run_sandi("policy", "example")
    assert listed.code == 0 and listed.stdout.split() == shipped_policy_names()
    printed = run_sandi("policy", "example", "banten")
    assert printed.code == 0
    assert printed.stdout == (ROOT / "policies" / "banten.toml").read_text(encoding="utf-8")
    out = tmp_path / "banten.toml"
    assert run_sandi("policy", "example", "banten", "-o", out).code == 0
    assert out.read_bytes() == (ROOT / "policies" / "banten.toml").read_bytes()


def test_policy_example_never_overwrites_without_force(run_sandi: RunSandi, tmp_path: Path) -> None:
    out = tmp_path / "mine.toml"
    out.write_text("# my own policy\n")
    refused = run_sandi("policy", "example", "banten", "-o", out)
    assert refused.code == 1 and "exists" in refused.stderr
    assert out.read_text() == "# my own policy\n"
    assert run_sandi("policy", "example", "banten", "-o", out, "--force").code == 0
    assert out.read_bytes() == (ROOT / "policies" / "banten.toml").read_bytes()


def test_unknown_shipped_policy_names_the_choices(run_sandi: RunSandi) -> None:
    missing = run_sandi("policy", "example", "jakarta")
    assert missing.code == 1
    assert "jakarta" in missing.stderr and "banten" in missing.stderr


def test_policy_commands_take_a_shipped_name_and_prefer_a_real_file(
    run_sandi: RunSandi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_name = run_sandi("policy", "validate", "banten")
    assert by_name.code == 0 and "banten-phks" in by_name.stdout
    # A local file called "banten" wins over the shipped policy of that name.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "banten").write_text("not = [valid\n")
    local = run_sandi("policy", "validate", "banten")
    assert local.code != 0
    nothing = run_sandi("policy", "validate", "no-such-policy")
    assert nothing.code == 2
    assert "neither a policy file nor a shipped policy" in nothing.stderr


def test_agency_add_from_a_shipped_policy(run_sandi: RunSandi, tmp_path: Path) -> None:
    home = tmp_path / "authority"
    env = {"SANDI_PASSPHRASE": "correct horse battery staple 2026", "SANDI_SCRYPT_WORK_FACTOR": "10"}
    created = run_sandi("--home", home, "init", "--province", "Provinsi Banten", env=env)
    assert created.code == 0, created
    added = run_sandi("--home", home, "--json", "agency", "add", "--from-policy", "banten", env=env)
    assert added.code == 0, added
    assert "DISKOMINFO" in added.stdout


def test_key_profiles_are_shown_by_name(run_sandi: RunSandi, tmp_path: Path) -> None:
    home = ["--home", str(tmp_path / "none")]
    assert run_sandi(*home, "keys", "profile", "list").stdout.split() == ["default", "pq"]
    shown = run_sandi(*home, "keys", "profile", "show", "default")
    assert shown.code == 0 and shown.stdout == DEFAULT_PROFILE_TOML
    missing = run_sandi(*home, "keys", "profile", "show", "short-lived")
    assert missing.code == 1
    # The hint names a command a wheel user can run, not a source-tree file.
    assert "sandi keys profile show default" in missing.stderr
    assert "keys/default.toml" not in missing.stderr


def test_a_home_profile_is_listed_and_shown(run_sandi: RunSandi, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "profiles").mkdir(parents=True)
    (home / "sandi.toml").write_text('format = 1\nrole = "authority"\nprovince = "Banten"\n')
    text = DEFAULT_PROFILE_TOML.replace('name = "default"', 'name = "short"')
    (home / "profiles" / "short.toml").write_text(text)
    assert run_sandi("--home", home, "keys", "profile", "list").stdout.split() == ["default", "pq", "short"]
    assert run_sandi("--home", home, "keys", "profile", "show", "short").stdout == text


def test_package_metadata() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"  # an SPDX expression, not the deprecated table
    assert project["license-files"] == ["LICENSE"]
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    assert project["requires-python"] == ">=3.11"
    assert project["authors"]
    assert any(c.startswith("Programming Language :: Python :: 3.11") for c in project["classifiers"])
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog and "Semantic Versioning" in changelog
    assert "## 5. Compatibility" in (ROOT / "docs" / "format.md").read_text()


def test_sdist_carries_what_its_tests_need() -> None:
    manifest = (ROOT / "MANIFEST.in").read_text()
    assert "graft tests" in manifest  # tests/vectors, tests/policy_corpus
    assert (ROOT / "tests" / "vectors").is_dir() and (ROOT / "tests" / "policy_corpus").is_dir()


def _complete(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("COMP_")}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-c", "from sandi_cli.main import main; main([])"],
        capture_output=True, text=True, env=full, timeout=60,
    )


def test_powershell_completion_script() -> None:
    script = _complete({"_SANDI_COMPLETE": "powershell_source"})
    assert script.returncode == 0, script.stderr
    assert "Register-ArgumentCompleter -Native -CommandName sandi" in script.stdout
    assert '"powershell_complete"' in script.stdout


def test_powershell_completes_commands_options_and_shipped_policies() -> None:
    commands = _complete({"_SANDI_COMPLETE": "powershell_complete", "COMP_WORDS": "sandi se",
                          "COMP_CWORD": "se"})
    values = [line.split("\t")[1] for line in commands.stdout.splitlines()]
    assert values == ["seal", "serve"]
    options = _complete({"_SANDI_COMPLETE": "powershell_complete", "COMP_WORDS": "sandi policy example --f",
                         "COMP_CWORD": "--f"})
    assert [line.split("\t")[1] for line in options.stdout.splitlines()] == ["--force"]
    policies = _complete({"_SANDI_COMPLETE": "powershell_complete",
                          "COMP_WORDS": "sandi policy validate ban", "COMP_CWORD": "ban"})
    lines = [line.split("\t") for line in policies.stdout.splitlines()]
    assert ["plain", "banten", ""] in lines
    assert any(kind == "file" for kind, *_ in lines)  # and the files on disk
