"""The library guide's examples run, in order, as one program (docs/library.md)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import invoke

ROOT = Path(__file__).parents[1]
GUIDE = ROOT / "docs" / "library.md"
PASS = "library-guide-passphrase"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture(scope="module")
def authority_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mp = pytest.MonkeyPatch()
    mp.setenv("SANDI_SCRYPT_WORK_FACTOR", "10")
    home = tmp_path_factory.mktemp("guide") / "authority"
    env = {"SANDI_PASSPHRASE": PASS}
    try:
        for args in (
            ["init"],
            ["agency", "add", "--from-policy", str(ROOT / "policies" / "banten.toml")],
            ["policy", "apply", str(ROOT / "policies" / "banten.toml")],
            *(["keys", "issue", code] for code in ("DISKOMINFO", "BAPPEDA", "SETDA", "DINSOS", "DISPAR")),
        ):
            r = invoke("--home", home, *args, env=env)
            assert r.code == 0, r
    finally:
        mp.undo()
    return home


def test_guide_has_examples() -> None:
    assert len(_blocks()) >= 7


def test_library_guide_examples_run(
    authority_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "authority"
    shutil.copytree(authority_template, home)
    work = tmp_path / "work"
    (work / "policies").mkdir(parents=True)
    shutil.copy(ROOT / "policies" / "banten.toml", work / "policies" / "banten.toml")
    (work / "surat.txt").write_text("Surat dinas: rapat koordinasi.\n", encoding="utf-8")
    monkeypatch.chdir(work)
    monkeypatch.setenv("SANDI_HOME", str(home))
    monkeypatch.setenv("SANDI_PASSPHRASE", PASS)
    namespace: dict[str, object] = {"__name__": "library_guide"}
    for number, block in enumerate(_blocks(), start=1):
        try:
            exec(compile(block, f"docs/library.md block {number}", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message names the block
            raise AssertionError(f"library guide block {number} failed: {exc!r}\n{block}") from exc
