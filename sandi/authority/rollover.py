"""Moving an authority's root onto a PKCS#11 token (ADR 0012): a new root generated on
the token, cross-certified by the old one, with an announced trust-anchor change.

Invariants:

* the new root key is generated on the token and never exists anywhere else; the old
  root signs exactly one thing for it, the cross-certificate (``root-cross-<new fp16>.pem``:
  issuer the old root, subject the new root, CA, path length 0), which agencies check
  with the fingerprint they trust before they change their trust anchor;
* one registry transaction changes the authority row, re-issues every current,
  unrevoked certificate under the new root (same subject, key and end of validity; the
  old ones retired), re-signs every stored policy version (its source and its compiled
  form) whose old signature verifies, and records ``root.rollover``; the files
  (``root.pem``, ``roots/<old fp16>.pem``, the cross-certificate, ``keys/pkcs11.json``,
  ``sandi.toml``) are written inside it and undone, with the new token key, if anything
  fails;
* the previous roots stay trusted for what they signed before (audit checkpoints):
  ``previous_root_fingerprints`` in ``sandi.toml`` names them and ``roots/`` holds their
  certificates;
* only after the commit is the old root key deleted from the file store (the operator
  also destroys every backup of the old key folder, see docs/operations.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509

from sandi.authority.certs import (
    build_root_certificate,
    issue_certificate,
    load_pem,
    public_key_of,
    to_pem,
    whole_seconds,
)
from sandi.authority.root import (
    ROOT_OWNER,
    ROOT_PEM,
    ROOT_VALIDITY_DAYS,
    load_root_certificate,
    load_root_signer,
    root_key_ref,
)
from sandi.errors import ConfigError, CredentialError, NotFoundError, UsageError
from sandi.fsutil import atomic_write
from sandi.i18n import _
from sandi.keystore.keys import Signer, fingerprint

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from sandi.home import Home
    from sandi.keystore.base import KeyStore
    from sandi.keystore.passphrase import PassphraseSource
    from sandi.keystore.pkcs11 import TokenConfig
    from sandi.registry import Registry

ROOTS_DIR = "roots"
PREVIOUS_ROOTS = "previous_root_fingerprints"


@dataclass(frozen=True)
class RolloverResult:
    old_fingerprint: str
    new_fingerprint: str
    new_key_uri: str
    cross_certificate: Path
    reissued: list[str]  # serials of the new certificates
    resigned_policies: int


def previous_root_fingerprints(home: Home) -> list[str]:
    value = home.load_config().extra.get(PREVIOUS_ROOTS, "")
    return [v for v in str(value).split() if v]


def previous_root_public_keys(home: Home) -> list[bytes]:
    """The raw public keys of the roots this authority had before (for what they signed)."""
    keys = []
    for fp in previous_root_fingerprints(home):
        path = home.path / ROOTS_DIR / f"{fp[:16]}.pem"
        try:
            public = public_key_of(load_pem(path.read_bytes(), what=str(path)))
        except FileNotFoundError:
            raise NotFoundError(
                _("the certificate of the previous root {fp} is missing ({path})").format(
                    fp=fp[:16], path=path),
                hint=_("restore the home's roots/ folder from a backup"),
            ) from None
        if fingerprint(public) != fp:
            raise CredentialError(_("{path} is not the previous root {fp}").format(path=path, fp=fp[:16]))
        keys.append(public)
    return keys


def build_cross_certificate(
    old_key: Signer, old_cert: x509.Certificate, new_cert: x509.Certificate, *, now: datetime
) -> x509.Certificate:
    """The old root's certificate for the new root key (valid until the old root expires)."""
    old_ski = old_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    new_ski = new_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    usage = new_cert.extensions.get_extension_for_class(x509.KeyUsage).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(new_cert.subject)
        .issuer_name(old_cert.subject)
        .public_key(new_cert.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(whole_seconds(now))
        .not_valid_after(old_cert.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(new_ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(old_ski),
                       critical=False)
    )
    cert = old_key.sign_x509(builder)
    assert isinstance(cert, x509.Certificate)
    return cert


def move_root_to_token(
    home: Home,
    registry: Registry,
    keystore: KeyStore,
    token: TokenConfig,
    pin: PassphraseSource,
    *,
    now: datetime | None = None,
) -> RolloverResult:
    """Give the authority a new root on ``token``, cross-certified by the current one."""
    from sandi.keystore.pkcs11 import INDEX_NAME, Pkcs11KeyStore

    cfg = home.load_config()
    if cfg.role != "authority":
        raise ConfigError(_("only an authority home has a root to move"))
    if keystore.hardware:
        raise UsageError(_("the root key of this home is on a PKCS#11 token already"))
    now = whole_seconds(now or datetime.now(UTC))
    old_cert = load_root_certificate(home)
    old_signer = load_root_signer(home, keystore)  # the passphrase is checked before the token is touched
    old_fp = old_signer.fingerprint
    index_path = home.keys_dir / INDEX_NAME
    if index_path.exists():
        raise UsageError(
            _("{path} exists: a PKCS#11 key index is there already").format(path=index_path),
            hint=_("remove it if it is left from a failed attempt (it holds public data only)"),
        )
    store = Pkcs11KeyStore.create(home.keys_dir, keystore, token, pin)
    written: list[Path] = []
    pem_path = home.path / ROOT_PEM
    old_pem = pem_path.read_bytes()
    new_ref = ""
    try:
        new_ref, new_signer = store.new_signing_key(ROOT_OWNER, on_token=True)
        new_fp = new_signer.fingerprint
        new_cert = build_root_certificate(
            new_signer, cfg.province, not_before=now, not_after=now + timedelta(days=ROOT_VALIDITY_DAYS))
        cross = build_cross_certificate(old_signer, old_cert, new_cert, now=now)
        cross_path = home.path / f"root-cross-{new_fp[:16]}.pem"
        kept_path = home.path / ROOTS_DIR / f"{old_fp[:16]}.pem"
        with registry.transaction() as session:
            reissued = _reissue(session, new_signer, new_cert, cfg.province, now)
            resigned = _resign_policies(session, old_signer, new_signer)
            _update_authority(session, old_fp, new_fp, new_ref, to_pem(new_cert))
            from sandi.authority.events import record

            record(session, "root.rollover", cfg.province, {
                "old_root_fingerprint": old_fp,
                "new_root_fingerprint": new_fp,
                "new_root_serial": f"{new_cert.serial_number:x}",
                "cross_certificate_serial": f"{cross.serial_number:x}",
                "root_key_location": "token",
                "reissued": reissued,
                "policies_resigned": resigned,
            })
            kept_path.parent.mkdir(mode=0o755, exist_ok=True)
            for path, data in ((kept_path, old_pem), (cross_path, to_pem(cross).encode())):
                atomic_write(path, data, mode=0o644, overwrite=False)
                written.append(path)
            atomic_write(pem_path, to_pem(new_cert).encode(), mode=0o644, overwrite=True)
        extra = {**cfg.extra, **token.settings(),
                 PREVIOUS_ROOTS: " ".join([*previous_root_fingerprints(home), old_fp])}
        atomic_write(home.config_path, dataclasses.replace(
            cfg, keystore="pkcs11", root_fingerprint=new_fp, extra=extra).to_toml().encode(),
            mode=0o600, overwrite=True)
    except BaseException:
        with contextlib.suppress(Exception):
            if new_ref:
                store.delete(new_ref)
        with contextlib.suppress(OSError):
            index_path.unlink()
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        with contextlib.suppress(OSError):
            if pem_path.read_bytes() != old_pem:
                atomic_write(pem_path, old_pem, mode=0o644, overwrite=True)
        store.close()
        raise
    # Committed: the old root signs nothing any more, and its key goes.
    keystore.delete(root_key_ref(old_fp))
    uri = store.key_uri(new_ref)
    store.close()
    return RolloverResult(old_fp, new_fp, uri, cross_path, reissued, resigned)


def _update_authority(session: Session, old_fp: str, new_fp: str, new_ref: str, pem: str) -> None:
    from sandi.registry.models import AuthorityRow

    row = session.get(AuthorityRow, 1, with_for_update=True)
    if row is None or row.root_fingerprint != old_fp:
        raise CredentialError(
            _("the registry's root is not the root of this home"),
            hint=_("run this on the authority home that belongs to this registry"),
        )
    row.root_cert_pem = pem
    row.root_fingerprint = new_fp
    row.root_key_ref = new_ref


def _reissue(session: Session, signer: Signer, root_cert: x509.Certificate, province: str,
             now: datetime) -> list[str]:
    """Every current, unrevoked certificate of this root again under the new root; the old
    ones retired."""
    from sqlalchemy import select

    from sandi.authority.issuance import current_row, retire
    from sandi.authority.validity import PDF_PURPOSES
    from sandi.registry.models import CertificateRow

    # pdf-signing certificates are the PDF root's (ADR 0014): moving this root leaves them be
    rows = session.scalars(
        select(CertificateRow)
        .where(CertificateRow.state == "current", CertificateRow.purpose.not_in(PDF_PURPOSES))
        .order_by(CertificateRow.id)
    ).all()
    serials = []
    for row in rows:
        if row.revocation is not None or row.not_after <= now:
            continue
        old = load_pem(row.cert_pem.encode(), what=f"certificate {row.serial}")
        cn = old.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
        ou = old.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
        issued = issue_certificate(
            signer, root_cert, purpose=row.purpose, public_key=bytes(row.public_key),
            common_name=str(cn), organizational_unit=str(ou), province=province,
            not_before=now, not_after=row.not_after,
            # an official's personal certificate keeps its whole subject (nama, jabatan, NIP)
            subject=old.subject if row.official_id is not None else None,
        )
        retire([row], now)
        session.add(current_row(issued, agency_id=row.agency_id, profile=row.profile, issued_at=now,
                                official_id=row.official_id))
        serials.append(issued.serial)
    session.flush()
    return serials


def _resign_policies(session: Session, old: Signer, new: Signer) -> int:
    """The new root's signature on every stored policy version the old root signed: its
    source and, where it has one, its compiled form (workstations decide from the latter)."""
    from sqlalchemy import select

    from sandi.policy.signature import (
        sign_compiled,
        sign_policy,
        verify_compiled_signature,
        verify_policy_signature,
    )
    from sandi.registry.models import PolicyVersionRow

    count = 0
    for row in session.scalars(select(PolicyVersionRow).order_by(PolicyVersionRow.id)).all():
        verify_policy_signature(row.source, bytes(row.signature), old.public_key_bytes())
        row.signature = sign_policy(row.source, new)
        if row.compiled is not None and row.compiled_signature is not None:
            verify_compiled_signature(row.compiled, bytes(row.compiled_signature), old.public_key_bytes())
            row.compiled_signature = sign_compiled(row.compiled, new)
        count += 1
    return count
