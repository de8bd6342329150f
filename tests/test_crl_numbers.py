"""CRL numbers strictly increase (RFC 5280, section 5.2.3), on both backends, even for
CRLs built within one second, and continue above the time-based numbers of before."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sandi.authority.crl import publish_crl
from sandi.authority.issuance import load_issuer
from sandi.home import Home
from sandi.keystore import FixedPassphrase, open_keystore
from sandi.registry import Registry
from tests import test_authority_support as support
from tests.conftest import invoke
from tests.test_authority_support import PASSPHRASE

fast_env = support.fast_env

NOW = datetime(2026, 3, 1, 8, 0, 0, 250_000, tzinfo=UTC)


def _openssl_crl_number(path: Path, root: Path) -> int:
    proc = subprocess.run(["openssl", "crl", "-in", str(path), "-CAfile", str(root), "-verify",
                           "-noout", "-text"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "verify OK" in proc.stderr + proc.stdout
    match = re.search(r"X509v3 CRL Number:\s*\n\s*([0-9]+)", proc.stdout)
    assert match is not None, proc.stdout
    return int(match.group(1))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_two_crls_in_one_second_get_increasing_numbers(
    registry_url: str, tmp_path: Path, fast_env: None
) -> None:
    path = tmp_path / "authority"
    r = invoke("--home", path, "--database-url", registry_url, "init", "--province", "Provinsi Banten")
    assert r.code == 0, r
    home = Home(path)
    registry = Registry(registry_url)
    try:
        issuer = load_issuer(home, open_keystore(home, FixedPassphrase(PASSPHRASE)))
        first = publish_crl(registry, issuer, home, output=tmp_path / "1.crl", now=NOW)
        second = publish_crl(registry, issuer, home, output=tmp_path / "2.crl", now=NOW)
        third = publish_crl(registry, issuer, home, output=tmp_path / "3.crl",
                            now=NOW.replace(microsecond=900_000))
    finally:
        registry.dispose()
    assert first.this_update == second.this_update == third.this_update  # one second
    # init published one CRL already (at the real time, later than NOW): still above it
    assert first.number < second.number < third.number
    root = path / "root.pem"
    numbers = [_openssl_crl_number(tmp_path / f"{i}.crl", root) for i in (1, 2, 3)]
    assert numbers == [first.number, second.number, third.number]
    # the time-based scale of before the counter stays the floor
    assert first.number >= int(NOW.replace(microsecond=0).timestamp()) * 1_000_000
