"""A real SoftHSM2 token for the PKCS#11 tests (Debian's ``softhsm2``), never a mock.

One token folder per test run and xdist worker, through ``SOFTHSM2_CONF`` (set for
the whole session, before the module is first loaded); each test that asks for
``token`` gets a freshly initialised token with its own label and PIN in it
(``softhsm2-util --init-token``). Without SoftHSM2 the tests are skipped with the
reason, unless ``CI`` or ``SANDI_REQUIRE_SOFTHSM=1`` is set, which makes it a failure
(scripts/install-tools.sh installs it).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)


def softhsm_module() -> str | None:
    return next((m for m in MODULE_CANDIDATES if os.path.isfile(m)), None)


@dataclass(frozen=True)
class Token:
    label: str
    pin: str
    so_pin: str
    module: str
    folder: Path
    pin_file: Path

    @property
    def uri(self) -> str:
        return f"pkcs11:token={self.label}"

    def token_dirs(self) -> list[Path]:
        """The SoftHSM2 folder(s) of this token (one per token, named by a UUID)."""
        out = []
        for child in self.folder.iterdir():
            info = child / "token.object"
            if info.is_file() and self.label.encode() in info.read_bytes():
                out.append(child)
        return out


def _require() -> str:
    module = softhsm_module()
    if module is None or shutil.which("softhsm2-util") is None:
        if os.environ.get("CI") or os.environ.get("SANDI_REQUIRE_SOFTHSM") == "1":
            pytest.fail("SoftHSM2 is not installed (run scripts/install-tools.sh)")
        pytest.skip("SoftHSM2 is not installed (scripts/install-tools.sh installs it)")
    try:
        import pkcs11  # noqa: F401
    except ImportError:
        pytest.fail("python-pkcs11 is missing: pip install -e '.[test]'")
    return module


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The token folder of this test run; ``SOFTHSM2_CONF`` points at it."""
    _require()
    root = tmp_path_factory.mktemp("softhsm")
    tokens = root / "tokens"
    tokens.mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    old = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    try:
        yield tokens
    finally:
        if old is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = old


def init_token(folder: Path, pin_dir: Path, label: str | None = None) -> Token:
    module = _require()
    label = label or f"sandi-{secrets.token_hex(4)}"
    pin = f"{secrets.randbelow(10**6):06d}"
    so_pin = secrets.token_hex(6)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", so_pin],
        check=True, capture_output=True,
    )
    pin_file = pin_dir / f"{label}.pin"
    fd = os.open(pin_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(pin + "\n")
    return Token(label, pin, so_pin, module, folder, pin_file)


@pytest.fixture
def token(softhsm: Path, tmp_path: Path) -> Token:
    """A freshly initialised SoftHSM2 token with its own label and PIN."""
    return init_token(softhsm, tmp_path)
