"""The signed directory: signature, trust anchor, rollback and freeze protection."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from sandi.directory.local import import_snapshot, installed_snapshot
from sandi.directory.snapshot import (
    AgencyEntry,
    DirectorySnapshot,
    cert_fingerprint,
    check_fresh,
    parse_envelope,
    sign_snapshot,
    sign_snapshot_v1,
)
from sandi.errors import ConfigError, FormatError, NotFoundError, VerificationError
from sandi.home import Home, HomeConfig

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


class _Signer:
    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self._pem = self._make_root_pem()

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data)

    def public_key_bytes(self) -> bytes:
        return self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def root_pem(self) -> str:
        return self._pem

    def _make_root_pem(self) -> str:
        name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "ID"),
                          x509.NameAttribute(NameOID.COMMON_NAME, "Test Root")])
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.key, None)
        )
        return cert.public_bytes(Encoding.PEM).decode()


def _snapshot(signer: _Signer, version: int, *, issued: datetime = NOW,
              days: int = 7) -> DirectorySnapshot:
    return DirectorySnapshot(
        version=version, issued_at=issued, expires_at=issued + timedelta(days=days),
        province="Provinsi Banten", root_cert_pem=signer.root_pem(),
        agencies=(AgencyEntry(code="BAPPEDA", name="Badan Perencanaan", kind="agency", status="active"),),
    )


@pytest.fixture
def root() -> _Signer:
    return _Signer()


def test_round_trip(root: _Signer) -> None:
    snap = _snapshot(root, 3)
    parsed = parse_envelope(sign_snapshot(snap, root), snap.root_fingerprint)
    assert parsed.version == 3
    assert parsed.agency("BAPPEDA").name == "Badan Perencanaan"
    assert parsed.body_sha256
    with pytest.raises(NotFoundError):
        parsed.agency("NOPE")


def _tamper_body(envelope: bytes) -> bytes:
    obj = json.loads(envelope)
    body = json.loads(base64.b64decode(obj["body"]))
    body["agencies"][0]["status"] = "suspended"
    obj["body"] = base64.b64encode(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).decode()
    return json.dumps(obj).encode()


def _flip_signature(envelope: bytes) -> bytes:
    obj = json.loads(envelope)
    sig = bytearray(base64.b64decode(obj["signature"]))
    sig[5] ^= 1
    obj["signature"] = base64.b64encode(bytes(sig)).decode()
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (_tamper_body, VerificationError),
        (_flip_signature, VerificationError),
        (lambda e: e[:-40], FormatError),
        (lambda e: b"[]", FormatError),
        (lambda e: e.replace(b"sandi-directory/v1", b"sandi-directory/v2", 1), FormatError),
    ],
)
def test_tampered_envelope_is_refused(root: _Signer, mutate: object, error: type[Exception]) -> None:
    """Version 1 (still read; v2 tampering is tests/test_directory_v2.py)."""
    snap = _snapshot(root, 1)
    envelope = sign_snapshot_v1(snap, root)
    with pytest.raises(error):
        parse_envelope(mutate(envelope), snap.root_fingerprint)  # type: ignore[operator]


def test_other_authority_is_refused(root: _Signer) -> None:
    other = _Signer()
    snap = _snapshot(other, 1)
    with pytest.raises(VerificationError, match="root fingerprint"):
        parse_envelope(sign_snapshot(snap, other), cert_fingerprint(root.root_pem()))


def test_signed_by_wrong_key_with_right_root_is_refused(root: _Signer) -> None:
    snap = _snapshot(root, 1)
    with pytest.raises(VerificationError, match="signature"):
        parse_envelope(sign_snapshot(snap, _Signer()), snap.root_fingerprint)


@pytest.mark.parametrize(
    ("version", "issued", "installed", "ok"),
    [
        (5, NOW, 4, True),
        (5, NOW, 5, True),
        (5, NOW, 6, False),  # rollback
        (5, NOW - timedelta(days=8), None, False),  # expired: freeze
        (5, NOW + timedelta(days=1), None, False),  # from the future
    ],
)
def test_freshness(root: _Signer, version: int, issued: datetime, installed: int | None, ok: bool) -> None:
    snap = _snapshot(root, version, issued=issued)
    if ok:
        check_fresh(snap, NOW, installed)
    else:
        with pytest.raises(VerificationError):
            check_fresh(snap, NOW, installed)


def test_expiry_warning(root: _Signer) -> None:
    snap = _snapshot(root, 1, days=7)
    assert snap.expiry_warning(NOW) is None
    assert "expires in" in (snap.expiry_warning(NOW + timedelta(days=6)) or "")


def test_import_into_workstation_home(root: _Signer, tmp_path: Path) -> None:
    home = Home(tmp_path / "ws")
    home.create(HomeConfig(role="workstation", province="Provinsi Banten", agency="BAPPEDA",
                           root_fingerprint=cert_fingerprint(root.root_pem()).upper()))
    v2 = tmp_path / "v2.json"
    v2.write_bytes(sign_snapshot(_snapshot(root, 2), root))
    v1 = tmp_path / "v1.json"
    v1.write_bytes(sign_snapshot(_snapshot(root, 1), root))
    with pytest.raises(NotFoundError):
        installed_snapshot(home, now=NOW)
    assert import_snapshot(home, v2, now=NOW).version == 2
    before = home.directory_path.read_bytes()
    with pytest.raises(VerificationError, match="rollback"):
        import_snapshot(home, v1, now=NOW)
    assert home.directory_path.read_bytes() == before
    assert installed_snapshot(home, now=NOW).version == 2
    with pytest.raises(VerificationError, match="expired"):
        installed_snapshot(home, now=NOW + timedelta(days=30))


def test_home_without_fingerprint_is_a_config_error(root: _Signer, tmp_path: Path) -> None:
    home = Home(tmp_path / "ws")
    home.create(HomeConfig(role="workstation", province="P", agency="X"))
    src = tmp_path / "d.json"
    src.write_bytes(sign_snapshot(_snapshot(root, 1), root))
    with pytest.raises(ConfigError):
        import_snapshot(home, src, now=NOW)


# -- rollback by copying a file (issue 13, item 7) ------------------------------------------


def _workstation(root: _Signer, tmp_path: Path) -> tuple[Home, dict[int, Path]]:
    """A workstation home with v2 installed, and the genuine files v1..v3 at hand."""
    home = Home(tmp_path / "ws")
    home.create(HomeConfig(role="workstation", province="Provinsi Banten", agency="BAPPEDA",
                           root_fingerprint=cert_fingerprint(root.root_pem())))
    files = {}
    for version in (1, 2, 3):
        files[version] = tmp_path / f"v{version}.json"
        files[version].write_bytes(sign_snapshot(_snapshot(root, version), root))
    import_snapshot(home, files[2], now=NOW)
    return home, files


def test_an_older_file_copied_over_the_directory_is_refused_on_every_read(
    root: _Signer, tmp_path: Path
) -> None:
    home, files = _workstation(root, tmp_path)
    home.directory_path.write_bytes(files[1].read_bytes())  # `cp old.json directory.json`
    with pytest.raises(VerificationError, match=r"version 1\) is older than version 2.*rolled back"):
        installed_snapshot(home, now=NOW)
    log = home.journal_path.read_text()
    assert '"directory.rollback"' in log and '"highest_seen":2' in log
    # the anchor is not lowered by the attempt; a genuine import puts things right
    assert import_snapshot(home, files[3], now=NOW).version == 3
    assert installed_snapshot(home, now=NOW).version == 3


@pytest.mark.parametrize("damage", ["corrupt", "missing", "forged", "empty"])
def test_import_refuses_a_lower_version_even_without_a_valid_installed_file(
    root: _Signer, tmp_path: Path, damage: str
) -> None:
    home, files = _workstation(root, tmp_path)
    if damage == "missing":
        home.directory_path.unlink()
    elif damage == "empty":
        home.directory_path.write_bytes(b"")
    elif damage == "corrupt":
        home.directory_path.write_bytes(b'{"format": "sandi-directory/v1", "bo')
    else:  # a version-0 body under the genuine signature: not the root's
        env = json.loads(home.directory_path.read_bytes())
        env["body"] = base64.b64encode(b'{"format":"sandi-directory/v1","version":99}').decode()
        home.directory_path.write_text(json.dumps(env))
    with pytest.raises(VerificationError, match="rollback refused"):
        import_snapshot(home, files[1], now=NOW)
    assert import_snapshot(home, files[2], now=NOW).version == 2  # the same version: harmless
    assert installed_snapshot(home, now=NOW).version == 2


def test_a_damaged_anchor_is_refused_not_replaced(root: _Signer, tmp_path: Path) -> None:
    home, files = _workstation(root, tmp_path)
    home.directory_path.write_bytes(files[1].read_bytes())
    home.directory_anchor_path.write_text("{}")  # the attacker lowers the record too: it no longer verifies
    for attempt in (lambda: installed_snapshot(home, now=NOW),
                    lambda: import_snapshot(home, files[1], now=NOW)):
        with pytest.raises(VerificationError, match=r"highest directory installed .* is damaged") as info:
            attempt()
        assert "remove it" in info.value.hint
    assert home.directory_anchor_path.read_text() == "{}"


def test_a_home_without_an_anchor_gets_one_on_first_read(root: _Signer, tmp_path: Path) -> None:
    home, files = _workstation(root, tmp_path)
    home.directory_anchor_path.unlink()  # a home from before the anchor
    assert installed_snapshot(home, now=NOW).version == 2
    assert home.directory_anchor_path.read_bytes() == files[2].read_bytes()
    home.directory_path.write_bytes(files[3].read_bytes())  # a newer one put in place by hand
    assert installed_snapshot(home, now=NOW).version == 3
    assert home.directory_anchor_path.read_bytes() == files[3].read_bytes()
