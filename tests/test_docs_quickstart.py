"""The quickstart, tried as a new user would: its shell steps run in order in bash."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
QUICKSTART = ROOT / "docs" / "quickstart.md"


def _steps() -> str:
    blocks = re.findall(r"```sh\n(.*?)```", QUICKSTART.read_text(encoding="utf-8"), flags=re.S)
    # The first block installs sandi; the test runs the installed one from this environment.
    return "\n".join(blocks[1:])


@pytest.mark.slow
def test_quickstart_runs_step_by_step(tmp_path: Path) -> None:
    sandi = shutil.which("sandi", path=str(Path(sys.executable).parent))
    assert sandi is not None, "the sandi console script is installed next to this python"
    work = tmp_path / "sandi"
    work.mkdir()
    shutil.copytree(ROOT / "policies", work / "policies")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "SANDI_SCRYPT_WORK_FACTOR": "10",
        "HOME": str(tmp_path),
    }
    env.pop("SANDI_HOME", None)
    env.pop("SANDI_PASSPHRASE", None)
    have_tools = all(shutil.which(t) for t in ("age", "minisign", "tar"))
    script = _steps()
    if not have_tools:  # pragma: no cover - CI installs them
        script = re.sub(r"(?ms)^sandi keys export BAPPEDA.*?^cd \.\. && rm bappeda\.id\n", "", script)
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert "root fingerprint:" in out
    assert "Rapat koordinasi pengamanan informasi" in (work / "masuk" / "surat.txt").read_text()
    assert "refused, exit code 3" in out
    assert "refused, exit code 4" in out
    assert not (work / "nota.txt.sandi").exists()
    if have_tools:
        assert "Signature and comment signature verified" in out
    assert "registry: ok" in out
