"""The Windows branches of sandi.portable, run on Linux with the POSIX-only features gone.

No Windows machine is available, so each test here runs sandi in a subprocess in which
``import fcntl`` fails and ``os.O_NOFOLLOW``, ``os.O_TMPFILE``, ``os.O_CLOEXEC``,
``os.link`` and ``os.getuid`` do not exist — what Windows lacks. sandi detects features
rather than asking ``os.name``, so these are the branches Windows takes: named part
files with a placeholder (no links), no mode-bit checks (a passphrase file must lie in
the user's profile folder instead), file locks from the ``filelock`` package.
What this cannot show: Windows' own locking (LockFileEx), its ACLs, its console
prompts and drive letters (docs/operations.md, "Platforms", says so).
Before sandi.portable, ``seal`` here ended in ``internal error: ModuleNotFoundError``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sandi.fsutil import STALE_PART
from tests import authority_fixtures as fx
from tests.authority_fixtures import AuthorityHome

authority_template = fx.authority_template
authority = fx.authority

WITHOUT_POSIX = textwrap.dedent("""
    import os, sys
    sys.modules["fcntl"] = None  # 'import fcntl' raises ImportError, as on Windows
    for name in ("O_NOFOLLOW", "O_TMPFILE", "O_CLOEXEC", "link", "getuid"):
        if hasattr(os, name):
            delattr(os, name)
""")

PROBE = WITHOUT_POSIX + textwrap.dedent("""
    import json, tempfile
    from pathlib import Path
    from sandi import portable
    folder = Path(tempfile.mkdtemp())
    print(json.dumps({
        "fcntl": portable._fcntl is not None,
        "nofollow": portable.NOFOLLOW,
        "anonymous": portable.open_anonymous(folder, 0o600) is not None,
        "posix_owners": portable.has_posix_owners(),
    }))
""")

CLI = WITHOUT_POSIX + "from sandi_cli.main import main\nmain(sys.argv[1:])\n"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDI_")}
    env.update({k: v for k, v in fx.ENV.items() if v is not None})
    env.update({"HOME": str(tmp_path), "USER": "operator", "LANG": "C"})
    env.update(extra)
    return env


def windows_like(tmp_path: Path, *args: str | Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CLI, *map(str, args)], capture_output=True, text=True,
                          env=_env(tmp_path, **extra), timeout=120)


def test_the_simulation_removes_what_windows_lacks(tmp_path: Path) -> None:
    shown = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                           env=_env(tmp_path))
    assert json.loads(shown.stdout) == {"fcntl": False, "nofollow": 0, "anonymous": False,
                                        "posix_owners": False}


def test_seal_and_open_without_posix_features(authority: AuthorityHome, tmp_path: Path) -> None:
    letter = tmp_path / "surat.txt"
    letter.write_bytes(b"Dengan hormat,\r\nrapat besok.\n" * 1000)  # CR/LF survive: binary mode
    sealed = tmp_path / "surat.txt.sandi"
    home = str(authority.path)
    r = windows_like(tmp_path, "--home", home, "seal", letter, "--as", "DISKOMINFO", "--to", "BAPPEDA",
                     "--class", "R", "-o", sealed)
    assert r.returncode == 0, r.stderr
    r = windows_like(tmp_path, "--home", home, "seal", letter, "--as", "DISKOMINFO", "--to", "BAPPEDA",
                     "--class", "R", "-o", sealed)
    assert r.returncode == 1 and "exists already" in r.stderr, r.stderr

    out = tmp_path / "masuk"
    r = windows_like(tmp_path, "--home", home, "open", sealed, "--as", "BAPPEDA", "--output-dir", out)
    assert r.returncode == 0, r.stderr
    assert (out / "surat.txt").read_bytes() == letter.read_bytes()
    r = windows_like(tmp_path, "--home", home, "open", sealed, "--as", "BAPPEDA", "--output-dir", out)
    assert r.returncode == 1 and "exists already" in r.stderr, r.stderr
    r = windows_like(tmp_path, "--home", home, "open", sealed, "--as", "BAPPEDA", "--output-dir", out, "--force")
    assert r.returncode == 0, r.stderr

    # The audit journal took the lock-file path and still chains.
    r = windows_like(tmp_path, "--home", home, "audit", "verify")
    assert r.returncode == 0, r.stderr
    leftovers = [p for p in tmp_path.rglob("*") if STALE_PART.match(p.name)]
    assert leftovers == []


def test_passphrase_file_rules_follow_the_platform(authority: AuthorityHome, tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    profile.mkdir()
    inside = profile / "pw.txt"
    inside.write_text("rahasia sekali untuk berkas\n")
    inside.chmod(0o644)  # mode bits mean nothing on Windows
    plain = tmp_path / "x.txt"
    plain.write_bytes(b"x")
    r = windows_like(profile, "encrypt", "-p", "--passphrase-file", inside, "-o", tmp_path / "x.age", plain)
    assert r.returncode == 0, r.stderr

    elsewhere = tmp_path / "shared" / "pw.txt"  # outside the profile folder (HOME)
    elsewhere.parent.mkdir()
    elsewhere.write_text("rahasia sekali untuk berkas\n")
    r = windows_like(profile, "encrypt", "-p", "--passphrase-file", elsewhere, "-o", tmp_path / "y.age", plain)
    assert r.returncode != 0 and "outside your profile folder" in r.stderr, r.stderr

    # With POSIX owners the mode is what counts, wherever the file lies.
    from sandi.errors import SandiError
    from sandi.fsutil import check_private_file

    with pytest.raises(SandiError, match="readable by others"):
        check_private_file(inside)
