"""Exports of an agency's keys: public files, and private keys only when asked for explicitly.

Invariants:

* the public export is the current certificates (PEM), the age recipient
  (``age1...``), the minisign public key (key id derived from the public key) and
  the root certificate: nothing secret;
* a private key leaves the key store only encrypted under an export passphrase:
  the key bundle (age scrypt), the age identity file (age scrypt around the
  ``AGE-SECRET-KEY-1`` line, which ``age -d -i FILE`` opens after asking the
  passphrase), the minisign secret key (minisign's own ``Sc`` scrypt format). The
  one exception is :func:`export_age_identity` with ``passphrase=None``, which the
  command line offers only behind ``--unencrypted-age-identity`` with a warning;
* every export is audited (``key.export``, with what was exported, never the key)
  in the transaction that reads the registry; the files are written with O_EXCL
  (secrets: mode 0600) inside it, so a failed export writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sandi.authority.bundle import BundleCert, BundleKey, KeyBundle, iso_now, seal_bundle
from sandi.authority.events import record
from sandi.authority.lookup import find_agency
from sandi.authority.records import CertificateInfo, cert_info
from sandi.errors import AlreadyExistsError, NotFoundError
from sandi.fsutil import AtomicOutput, ensure_private_dir, write_new_secret
from sandi.i18n import _
from sandi.keystore.base import KeyStore, identity_public_bytes, key_ref, kind_of_purpose

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from sandi.registry import Registry


@dataclass(frozen=True)
class ExportResult:
    agency: str
    files: list[str]
    refs: list[str]


def _certs(session: Session, code: str) -> list[CertificateInfo]:
    from sqlalchemy import select

    from sandi.registry.models import CertificateRow

    agency = find_agency(session, code)
    rows = session.scalars(
        select(CertificateRow)
        .where(CertificateRow.agency_id == agency.id, CertificateRow.official_id.is_(None))
        .order_by(CertificateRow.issued_at)
    ).all()
    return [cert_info(r, code) for r in rows]


def _current(certs: list[CertificateInfo], code: str, purpose: str) -> CertificateInfo:
    usable = [c for c in certs if c.purpose == purpose and c.state == "current" and c.revocation is None]
    if not usable:
        raise NotFoundError(
            _("agency {code} has no current {purpose} certificate").format(code=code, purpose=purpose),
            hint=_("issue its keys first: 'sandi keys issue {code}'").format(code=code),
        )
    return usable[-1]


def _root_pem(session: Session) -> str:
    from sandi.registry.models import AuthorityRow

    authority = session.get(AuthorityRow, 1)
    if authority is None:
        raise NotFoundError(_("this registry has no authority yet"), hint=_("run 'sandi init'"))
    return authority.root_cert_pem


def public_files(
    code: str, *, signing_pem: str, signing_public: bytes, encryption_pem: str,
    encryption_public: bytes, root_pem: str,
) -> dict[str, str]:
    """The public files of an agency's current keys, by file name."""
    from sandi.formats.age import X25519Recipient
    from sandi.formats.minisign import MinisignPublicKey

    minisign_pub = MinisignPublicKey.from_raw(signing_public)
    return {
        f"{code}.signing.pem": signing_pem,
        f"{code}.encryption.pem": encryption_pem,
        f"{code}.age.txt": X25519Recipient.from_public_bytes(encryption_public).to_bech32() + "\n",
        f"{code}.minisign.pub": minisign_pub.to_text(
            f"minisign public key {minisign_pub.key_id_hex} of {code}"
        ),
        "root.pem": root_pem,
    }


def write_public_files(outdir: Path, files: dict[str, str]) -> list[str]:
    """Write ``files`` into ``outdir`` all or none: none of them may exist already."""
    outdir.mkdir(parents=True, exist_ok=True)
    for name in files:
        if (outdir / name).exists():
            raise AlreadyExistsError(
                _("{value} exists already").format(value=outdir / name), hint=_("export into an empty folder")
            )
    outs = [AtomicOutput(outdir / name, mode=0o644) for name in files]
    try:
        for out, text in zip(outs, files.values(), strict=True):
            out.file.write(text.encode())
        for out in outs:
            out.commit()
    finally:
        for out in outs:
            out.discard()
    return [str(outdir / n) for n in files]


def export_public(registry: Registry, code: str, outdir: Path) -> ExportResult:
    """Write CODE.signing.pem, CODE.encryption.pem, CODE.age.txt, CODE.minisign.pub, root.pem,
    and for an agency with a hybrid post-quantum key CODE.encryption-pq.pem and
    CODE.age-pq.txt (its ``age1pq1...`` recipient, for age >= 1.3)."""
    from sandi.formats.age import MLKEM768X25519Recipient

    with registry.transaction() as session:
        certs = _certs(session, code)
        signing = _current(certs, code, "signing")
        encryption = _current(certs, code, "encryption")
        files = public_files(
            code, signing_pem=signing.cert_pem, signing_public=signing.public_key,
            encryption_pem=encryption.cert_pem, encryption_public=encryption.public_key,
            root_pem=_root_pem(session),
        )
        serials = [signing.serial, encryption.serial]
        hybrid = [c for c in certs
                  if c.purpose == "encryption-pq" and c.state == "current" and c.revocation is None]
        if hybrid:
            files[f"{code}.encryption-pq.pem"] = hybrid[0].cert_pem
            files[f"{code}.age-pq.txt"] = MLKEM768X25519Recipient.from_public_bytes(
                hybrid[0].public_key).to_bech32() + "\n"
            serials.append(hybrid[0].serial)
        record(session, "key.export", code, {"what": "public", "serials": serials})
        written = write_public_files(outdir, files)
    return ExportResult(code, written, [])


def export_private_bundle(
    registry: Registry,
    keystore: KeyStore,
    code: str,
    out: Path,
    passphrase: bytes,
    *,
    work_factor: int,
    now: datetime | None = None,
) -> ExportResult:
    """Every key of the agency the store holds (current and retired), with the certificates
    (``pdf-signing`` ones with the PDF root that issued them, ADR 0014)."""
    from sandi.authority.pdfroot import pdf_root_pem
    from sandi.authority.validity import PDF_PURPOSES

    now = now or datetime.now(UTC)
    with registry.transaction() as session:
        certs = _certs(session, code)
        if not certs:
            raise NotFoundError(
                _("agency {code} has no keys").format(
                    code=code,
                ), hint=_("issue them first: 'sandi keys issue {code}'").format(
                    code=code,
                )
            )
        keys: dict[str, BundleKey] = {}
        for c in certs:
            kind = kind_of_purpose(c.purpose)
            ref = key_ref(code, kind, c.key_fingerprint)
            if ref in keys or not keystore.contains(ref):
                continue
            keys[ref] = BundleKey(c.purpose, ref, c.key_fingerprint, keystore.get_secret_unsafe(ref, kind))
        if not keys:
            raise NotFoundError(
                _("the key store holds no private key of {code}").format(code=code),
                hint=_("an enrolled agency's keys never leave it; only centrally issued keys can be "
                       "exported"),
            )
        bundle = KeyBundle(
            agency=code,
            created=iso_now(now),
            root_certificate=_root_pem(session),
            keys=list(keys.values()),
            certificates=[
                BundleCert(c.purpose, c.serial, c.cert_pem)
                for c in certs
                if c.revocation is None or c.revocation.reason != "keyCompromise"
            ],
            pdf_root_certificate=pdf_root_pem(session) if any(c.purpose in PDF_PURPOSES for c in certs)
            else None,
        )
        record(session, "key.export", code, {"what": "private-bundle", "refs": list(keys), "encrypted": True})
        _ensure_parent(out)
        write_new_secret(out, seal_bundle(bundle, passphrase, work_factor))
    return ExportResult(code, [str(out)], list(keys))


def export_age_identity(
    registry: Registry,
    keystore: KeyStore,
    code: str,
    out: Path,
    passphrase: bytes | None,
    *,
    work_factor: int,
) -> ExportResult:
    """The current encryption key as an age identity file (scrypt-protected unless ``passphrase`` is None)."""
    from sandi.keystore.filestore import scrypt_encrypt

    with registry.transaction() as session:
        cert = _current(_certs(session, code), code, "encryption")
        ref = key_ref(code, "encryption", cert.key_fingerprint)
        identity = keystore.get_encryption_key(ref)
        text = (
            f"# sandi age identity of {code} (certificate {cert.serial})\n"
            f"# public key: {identity.recipient.to_bech32()}\n"
            f"{identity.secret_bech32_unsafe()}\n"
        ).encode()
        record(
            session,
            "key.export",
            code,
            {"what": "age-identity", "ref": ref, "encrypted": passphrase is not None},
        )
        data = text if passphrase is None else scrypt_encrypt(text, passphrase, work_factor)
        _ensure_parent(out)
        write_new_secret(out, data)
    return ExportResult(code, [str(out)], [ref])


def export_minisign_secret_key(
    registry: Registry,
    keystore: KeyStore,
    code: str,
    out: Path,
    passphrase: bytes,
    *,
    opslimit: int | None = None,
    memlimit: int | None = None,
) -> ExportResult:
    """The current signing key as a passphrase-protected ``minisign.key`` (``Sc``)."""
    from sandi.formats import minisign

    with registry.transaction() as session:
        cert = _current(_certs(session, code), code, "signing")
        ref = key_ref(code, "signing", cert.key_fingerprint)
        key = keystore.get_signing_key(ref)
        secret = minisign.MinisignSecretKey(key.private_bytes_unsafe())
        text = minisign.encode_secret_key(
            secret,
            passphrase,
            opslimit=opslimit or minisign.DEFAULT_OPSLIMIT,
            memlimit=memlimit or minisign.DEFAULT_MEMLIMIT,
            untrusted_comment=f"minisign encrypted secret key of {code}",
        )
        record(session, "key.export", code, {"what": "minisign-secret-key", "ref": ref, "encrypted": True})
        _ensure_parent(out)
        write_new_secret(out, text.encode())
    return ExportResult(code, [str(out)], [ref])


def _ensure_parent(path: Path) -> None:
    if not path.parent.exists():
        ensure_private_dir(path.parent)


def public_age_recipient(identity_public: bytes) -> str:
    from sandi.formats.age import X25519Recipient

    return X25519Recipient.from_public_bytes(identity_public).to_bech32()


__all__ = [
    "ExportResult",
    "export_age_identity",
    "export_minisign_secret_key",
    "export_private_bundle",
    "export_public",
    "identity_public_bytes",
    "public_age_recipient",
]
