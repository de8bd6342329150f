"""A ready authority home for document tests (no tests of its own).

Building an authority (root key, agencies, keys, directory) costs a few seconds, so it
happens once per test session and worker (``pytest -n``): the template is built
through the real command line, in-process, with a cheap scrypt work factor, and every
test gets its own copy (``shutil.copytree``), free to change it.

Use it from any test module::

    from tests.authority_fixtures import AuthorityHome, authority, authority_template  # noqa: F401

    def test_x(authority: AuthorityHome) -> None:
        r = authority.run("seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R")

The template holds these agencies, each with a signing and an encryption key from
the default profile; the exports (plain age identities, public files, minisign secret
keys) are written once beside the template and shared read-only by every copy (the
copies hold the very same keys).

``policy_authority`` is the same with ``policies/banten.toml`` applied (so
DISKOMINFO -> BAPPEDA and SETDA at R is allowed, DISKOMINFO -> BAPPEDA at SR denied);
``phks_authority`` adds DINSOS and DISPAR (DINSOS -> DISPAR allowed at T, denied at R).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from sandi.documents import Workspace
from sandi.home import Home
from sandi.keystore import FixedPassphrase
from tests.conftest import CliResult, invoke

REPO = Path(__file__).resolve().parent.parent
BANTEN_POLICY = REPO / "policies" / "banten.toml"

PASSPHRASE = "kata sandi uji coba"
EXPORT_PASSPHRASE = "ekspor-kunci-uji-coba"
ENV: dict[str, str | None] = {
    "SANDI_PASSPHRASE": PASSPHRASE,
    "SANDI_EXPORT_PASSPHRASE": EXPORT_PASSPHRASE,
    "SANDI_SCRYPT_WORK_FACTOR": "10",
    "SANDI_OPERATOR": "operator-test",
}

# Codes of the Banten policy, so the same template serves the policy tests.
AGENCIES = {
    "DISKOMINFO": "Dinas Komunikasi, Informatika, Statistik dan Persandian",
    "BAPPEDA": "Badan Perencanaan Pembangunan Daerah",
    "SETDA": "Sekretariat Daerah",
    "KESBANGPOL": "Badan Kesatuan Bangsa dan Politik",
    "SETDPRD": "Sekretariat DPRD",
}

# A profile whose certificates live one day: for expiry scenarios (issue with --profile short).
SHORT_PROFILE = """\
format = 1
name = "short"
description = "certificates valid one day (tests)"

[signing]
algorithm = "ed25519"
validity_days = 1

[encryption]
algorithm = "x25519"
validity_days = 1

[rotation]
overlap_days = 0

[naming]
common_name = "{code} {purpose}"
organizational_unit = "{name}"
"""


@dataclass(frozen=True)
class AuthorityHome:
    """An authority home (``path``) and the shared exports of its agencies' keys."""

    path: Path
    exports: Path

    def run(self, *args: str | Path, input: bytes | str | None = None,
            env: dict[str, str | None] | None = None) -> CliResult:
        """``sandi --home PATH ARGS`` in-process, with the test passphrases."""
        return invoke("--home", self.path, *args, input=input, env={**ENV, **(env or {})})

    def ok(self, *args: str | Path, **kw: Any) -> CliResult:
        r = self.run(*args, **kw)
        assert r.code == 0, r
        return r

    def workspace(self, clock: Callable[[], datetime] | None = None) -> Workspace:
        """The library's view of this home (key store unlocked with the test passphrase)."""
        kwargs: dict[str, Any] = {} if clock is None else {"clock": clock}
        return Workspace.open(Home(self.path), FixedPassphrase(PASSPHRASE), **kwargs)

    def identity_file(self, code: str) -> Path:
        """The agency's encryption key as a plain age identity file (``age -d -i``)."""
        return self.exports / f"{code}.identity.txt"

    def minisign_public_key(self, code: str) -> Path:
        return self.exports / "public" / code / f"{code}.minisign.pub"

    def minisign_secret_key(self, code: str) -> Path:
        """minisign secret key protected by :data:`EXPORT_PASSPHRASE` (DISKOMINFO only)."""
        return self.exports / f"{code}.minisign.key"

    def identity(self, code: str) -> Any:
        """The agency's X25519Identity, parsed from its exported identity file."""
        from sandi.formats.age import parse_identities

        (identity,) = parse_identities(self.identity_file(code).read_text())
        return identity

    def recipient(self, code: str) -> Any:
        from sandi.formats.age import X25519Recipient

        text = (self.exports / "public" / code / f"{code}.age.txt").read_text().split()[-1]
        return X25519Recipient.from_bech32(text)

    def copy_to(self, dest: Path) -> AuthorityHome:
        shutil.copytree(self.path, dest, symlinks=True)
        return replace(self, path=dest)


def build_authority(root: Path) -> AuthorityHome:
    """Make an authority under ``root``: init, agencies, keys, exports."""
    home = AuthorityHome(root / "authority", root / "exports")
    home.exports.mkdir(parents=True)
    home.ok("init", "--province", "Provinsi Banten")
    for code, name in AGENCIES.items():
        home.ok("agency", "add", code, "--name", name)
        home.ok("keys", "issue", code)
    (home.path / "profiles").mkdir(exist_ok=True)
    (home.path / "profiles" / "short.toml").write_text(SHORT_PROFILE)
    for code in AGENCIES:
        home.ok("keys", "export", code, "--unencrypted-age-identity", home.identity_file(code))
        home.ok("keys", "export", code, "--public", "-o", home.exports / "public" / code)
    home.ok("keys", "export", "DISKOMINFO", "--minisign-secret-key", home.minisign_secret_key("DISKOMINFO"))
    return home


@pytest.fixture(scope="session")
def authority_template(tmp_path_factory: pytest.TempPathFactory) -> AuthorityHome:
    return build_authority(tmp_path_factory.mktemp("authority-template"))


@pytest.fixture(scope="session")
def policy_authority_template(
    tmp_path_factory: pytest.TempPathFactory, authority_template: AuthorityHome
) -> AuthorityHome:
    home = authority_template.copy_to(tmp_path_factory.mktemp("policy-template") / "authority")
    home.ok("policy", "apply", BANTEN_POLICY)
    return home


# The copies live outside the test's tmp_path, so a test may list its tmp_path freely.


@pytest.fixture
def authority(authority_template: AuthorityHome, tmp_path_factory: pytest.TempPathFactory) -> AuthorityHome:
    """A private copy of the authority template (no policy applied)."""
    return authority_template.copy_to(tmp_path_factory.mktemp("home") / "authority")


@pytest.fixture
def policy_authority(
    policy_authority_template: AuthorityHome, tmp_path_factory: pytest.TempPathFactory
) -> AuthorityHome:
    """A private copy of the authority with the Banten policy in force."""
    return policy_authority_template.copy_to(tmp_path_factory.mktemp("home") / "authority")


@pytest.fixture(scope="session")
def phks_authority_template(policy_authority_template: AuthorityHome,
                            tmp_path_factory: pytest.TempPathFactory) -> AuthorityHome:
    """The Banten policy in force, plus DINSOS and DISPAR with keys: DINSOS -> DISPAR is
    allowed up to T (r-agencies) and denied at R (DISPAR is not in the EMERGENCY group)."""
    home = policy_authority_template.copy_to(tmp_path_factory.mktemp("phks-template") / "authority")
    for code, name in (("DINSOS", "Dinas Sosial"), ("DISPAR", "Dinas Pariwisata")):
        home.ok("agency", "add", code, "--name", name)
    home.ok("keys", "issue", "DINSOS", "DISPAR")
    return home


@pytest.fixture
def phks_authority(phks_authority_template: AuthorityHome,
                   tmp_path_factory: pytest.TempPathFactory) -> AuthorityHome:
    """A private copy of :func:`phks_authority_template`."""
    return phks_authority_template.copy_to(tmp_path_factory.mktemp("home") / "authority")
