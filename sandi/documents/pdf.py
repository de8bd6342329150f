"""Signatures inside a PDF (PAdES), made and checked with pyHanko.

Invariants:

* the private key never leaves sandi's key store: pyHanko signs through
  :class:`StoreSigner`, a pyHanko ``Signer`` whose raw signature comes from
  :meth:`sandi.keystore.KeyStore.signer` (file, keyring and PKCS#11 keys alike);
* a signature is added as an incremental update, so earlier signatures stay valid;
* the output is written atomically and only after the audit entry was recorded;
* an agency with a ``pdf-signing`` certificate signs with its ECDSA P-256 key under
  the PDF root (ADR 0014: what Acrobat and poppler validate); one without signs with its
  Ed25519 key and is told that viewers will not validate it; one whose ``pdf-signing``
  certificate is revoked or expired is refused (never a silent fallback);
* a PDF verifies only if *every* signature does: the cryptographic signature,
  the chain to the province's root from the installed directory — the PDF root the
  directory names for a P-256 signature — (pyHanko's validator, offline, with that
  root's CRL from the directory), the signer's certificate in the directory with the
  purpose of its key (not revoked at the signing time, sandi's own rule for every
  signature), and no later revision changing more than signature fields (pyHanko's
  difference analysis);
* a signature time-stamp (PAdES B-T, asked of the authority's server as seal and sign
  do, :mod:`sandi.documents.timestamps`) is checked by pyHanko and by sandi's own rule
  (a TSA certificate the directory publishes, chaining to the root, valid and unrevoked
  at genTime, the claimed signing time within the tolerance); its genTime, not the
  claimed time, is then the time at which the signer's certificate must have been valid
  and unrevoked. A token that fails is refused, never ignored.

pyHanko is an optional dependency (``sandi[pdf]``): :func:`require_pyhanko` turns
its absence into a clear :class:`ConfigError`.
"""

from __future__ import annotations

import io
import logging
import math
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandi.documents.signers import verify_official_certificate, verify_signing_certificate
from sandi.documents.workspace import Workspace
from sandi.errors import ConfigError, FormatError, SandiError, ServerError, UsageError, VerificationError
from sandi.fsutil import AtomicOutput
from sandi.i18n import _, ngettext
from sandi.timefmt import iso_time

if TYPE_CHECKING:
    from sandi.directory.snapshot import CertEntry, OfficialEntry
    from sandi.documents.timestamps import Stamper, VerifiedTimestamp
    from sandi.keystore import P256Signer, Signer

PDF_MAGIC = b"%PDF-"
#: A letter is small; a bigger file is refused before it is parsed.
MAX_PDF_BYTES = 64 * 1024 * 1024
#: Room reserved in the file for the CMS signature (chain and CRL included).
SIGNATURE_SIZE = 32 * 1024
#: The visible stamp: a box at the signature block (bottom right of the last page, in
#: points on A4), moved up by one stamp height for each earlier signature.
STAMP_BOX = (300, 60, 565, 140)
#: What the QR code carries, a line a phone shows and 'sandi verify' recomputes:
#: the signer, the certificate serial and the key fingerprint of the signature.
QR_FORMAT = "sandi-pdf/v1 signer={code} serial={serial} key={key}"
#: where ``--stamp-position`` may put the stamp by name: the corners of the page, the
#: stamp's edge 30 points from the side and 60 from the top or bottom (the first is the
#: default, the usual place of the signature block of a naskah dinas)
STAMP_POSITIONS = ("bottom-right", "bottom-left", "top-right", "top-left")
_STAMP_SIDE_MARGIN = 30
_STAMP_END_MARGIN = 60


@dataclass(frozen=True)
class StampPlacement:
    """Where the visible stamp goes: ``page`` (1-based; None: the last page) and
    ``position``, one of :data:`STAMP_POSITIONS` or ``"X,Y"``, the stamp's lower-left
    corner in points from the page's lower-left corner. Named positions move each later
    signature's stamp by one stamp height (up from the bottom, down from the top) so
    stamps do not overlap; an explicit X,Y is used as given."""

    page: int | None = None
    position: str = STAMP_POSITIONS[0]

    def __post_init__(self) -> None:
        if self.page is not None and self.page < 1:
            raise UsageError(_("--stamp-page counts from 1"))
        if self.position not in STAMP_POSITIONS:
            self.point()  # an X,Y or a UsageError

    def point(self) -> tuple[float, float]:
        """The explicit X,Y of ``position`` (UsageError if it is neither a name nor X,Y)."""
        parts = self.position.split(",")
        try:
            if len(parts) != 2:
                raise ValueError
            x, y = float(parts[0]), float(parts[1])
            if not (math.isfinite(x) and math.isfinite(y)):
                raise ValueError
        except ValueError:
            raise UsageError(
                _("not a stamp position: {value!r}").format(value=self.position),
                hint=_("use {names}, or X,Y in points from the lower-left corner of the page "
                       "(e.g. 320,80)").format(names=", ".join(STAMP_POSITIONS)),
            ) from None
        return x, y


def require_pyhanko() -> None:
    """ConfigError (with the install hint) when pyHanko is not installed."""
    try:
        import pyhanko  # noqa: F401
        import pyhanko_certvalidator  # noqa: F401
    except ImportError:
        raise ConfigError(
            _("signing and verifying PDFs needs pyHanko, which is not installed"),
            hint=_("install it with: pip install 'sandi[pdf]'"),
        ) from None
    # The library never prints: without a handler, Python's last-resort handler would
    # write pyHanko's warnings to standard error. An application may still attach one.
    for name in ("pyhanko", "pyhanko_certvalidator"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(logging.NullHandler())


def is_pdf(path: str | os.PathLike[str]) -> bool:
    """True if the file starts with the PDF header ``%PDF-``."""
    try:
        with open(path, "rb") as f:
            return f.read(len(PDF_MAGIC)) == PDF_MAGIC
    except OSError:
        return False


def _read_pdf(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_PDF_BYTES:
            raise UsageError(_("{path} is larger than {limit} MiB").format(
                path=path, limit=MAX_PDF_BYTES // (1024 * 1024)))
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(_("no such file: {path}").format(path=path)) from None
    if not data.startswith(PDF_MAGIC):
        raise FormatError(_("{path} is not a PDF file").format(path=path))
    return data


#: room for a DER ECDSA P-256 signature (two 33-byte integers and their headers)
_ECDSA_P256_MAX_SIGNATURE = 72


def _make_store_signer(key: Signer | P256Signer, cert_pem: str, chain_pems: list[str]) -> Any:
    """A pyHanko ``Signer`` whose raw signatures come from sandi's ``key`` (Ed25519, or
    ECDSA P-256 with SHA-256 for a ``pdf-signing`` key)."""
    from sandi.keystore.keys import P256Signer

    ecdsa = isinstance(key, P256Signer)
    from asn1crypto import algos
    from asn1crypto import x509 as asn1_x509
    from pyhanko.sign.signers import Signer as HankoSigner
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    def load(pem: str) -> Any:
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)
        return asn1_x509.Certificate.load(der)

    class StoreSigner(HankoSigner):
        """pyHanko asks for a raw signature over the signed attributes; the key store
        makes it (pure Ed25519: the data itself, RFC 8419; ECDSA: SHA-256 of the data,
        the signature DER-encoded as CMS wants it)."""

        async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
            if dry_run:
                return bytes(_ECDSA_P256_MAX_SIGNATURE if ecdsa else 64)
            return key.sign(data)

    return StoreSigner(
        signing_cert=load(cert_pem),
        cert_registry=SimpleCertificateStore.from_certs([load(p) for p in chain_pems]),  # type: ignore[no-untyped-call]
        signature_mechanism=algos.SignedDigestAlgorithm(
            {"algorithm": "sha256_ecdsa" if ecdsa else "ed25519"}),
        embed_roots=True,
    )


def _validation_context(ws: Workspace, *, at: datetime | None = None, pdf_root: bool = False,
                        with_tsa: bool = False) -> Any:
    """Offline: the directory's root as the only trust anchor, its CRL as revocation data;
    with ``pdf_root``, the PDF root the directory names and its CRL. ``with_tsa`` (a
    signature time-stamp: pyHanko checks the TSA's chain, and collects it for the DSS)
    adds the root and its CRL, as the TSA certificate chains to the root, and the
    published TSA certificates."""
    from asn1crypto import crl as asn1_crl
    from asn1crypto import x509 as asn1_x509
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from pyhanko_certvalidator import ValidationContext

    anchor = ws.snapshot.pdf_root_certificate if pdf_root else ws.snapshot.root_certificate
    crl_pem = ws.snapshot.pdf_crl_pem if pdf_root else ws.snapshot.crl_pem
    if anchor is None:
        raise VerificationError(_("the directory names no PDF root"),
                                hint=_("import a newer directory from the authority"))
    root = asn1_x509.Certificate.load(anchor.public_bytes(Encoding.DER))
    crls = []
    if crl_pem:
        try:
            crls.append(asn1_crl.CertificateList.load(
                x509.load_pem_x509_crl(crl_pem.encode()).public_bytes(Encoding.DER)))
        except ValueError:
            raise FormatError(_("directory: a CRL is not valid PEM")) from None
    roots = [root]
    others = []
    if with_tsa:
        if pdf_root:
            roots.append(asn1_x509.Certificate.load(ws.snapshot.root_certificate.public_bytes(Encoding.DER)))
            if ws.snapshot.crl_pem:
                crls.append(asn1_crl.CertificateList.load(
                    x509.load_pem_x509_crl(ws.snapshot.crl_pem.encode()).public_bytes(Encoding.DER)))
        others = [asn1_x509.Certificate.load(t.certificate.public_bytes(Encoding.DER))
                  for t in ws.snapshot.timestamp_authorities]
    return ValidationContext(trust_roots=roots, crls=crls, other_certs=others, allow_fetching=False,
                             revocation_mode="soft-fail", moment=at)


class _TimestampUnavailable(Exception):
    """The time-stamp could not be had (carries the SandiError saying why)."""

    def __init__(self, error: SandiError) -> None:
        super().__init__(error.message)
        self.error = error


def _make_timestamper(stamper: Stamper) -> Any:
    """A pyHanko ``TimeStamper`` asking the authority's server through sandi's HTTP
    client (its timeout and response bound, as seal and sign)."""
    from asn1crypto import tsp
    from pyhanko.sign.timestamps import TimeStamper

    from sandi.documents.timestamps import QUERY_TYPE, REPLY_TYPE, REQUEST_TIMEOUT
    from sandi.formats.timestamp import MAX_TOKEN_BYTES
    from sandi.httpclient import http_request

    class ServerTimeStamper(TimeStamper):
        async def async_request_tsa_response(self, req: Any) -> Any:
            try:
                _status, body = http_request(
                    stamper.url, headers={"Content-Type": QUERY_TYPE, "Accept": REPLY_TYPE},
                    timeout=REQUEST_TIMEOUT, limit=MAX_TOKEN_BYTES + 1024, data=bytes(req.dump()))
                reply = tsp.TimeStampResp.load(body)
                reply.native  # noqa: B018 - parse it all now: a malformed reply fails here
            except SandiError as exc:
                raise _TimestampUnavailable(exc) from None
            except ValueError as exc:
                raise _TimestampUnavailable(FormatError(
                    _("malformed time-stamp reply ({reason})").format(reason=str(exc)))) from None
            return reply

    return ServerTimeStamper()  # type: ignore[no-untyped-call]


def signature_timestamp_token(sig: Any) -> bytes | None:
    """The signature time-stamp token (DER ContentInfo) of a pyHanko embedded signature,
    if it carries one; FormatError for more than one."""
    unsigned = sig.signer_info["unsigned_attrs"]
    tokens = [value for attr in (unsigned if unsigned.native is not None else [])
              if attr["type"].native == "signature_time_stamp_token" for value in attr["values"]]
    if len(tokens) > 1:
        raise FormatError(_("the signature carries more than one time-stamp"))
    return bytes(tokens[0].dump()) if tokens else None


def _check_signature_timestamp(ws: Workspace, sig: Any, token: bytes, claimed: datetime | None
                               ) -> VerifiedTimestamp:
    """sandi's rule for the token over the signature value (see the module's invariants);
    the imprint's digest is the signature's (SHA-256 for P-256, SHA-512 for Ed25519)."""
    import hashlib

    from sandi.documents.timestamps import verify_timestamp
    from sandi.formats.timestamp import parse_token

    parsed = parse_token(token)
    digest = hashlib.new(parsed.hash_algorithm, bytes(sig.signer_info["signature"].native)).digest()
    return verify_timestamp(ws.snapshot, token, digest=digest, algorithm=parsed.hash_algorithm,
                            claimed=claimed or parsed.gen_time, now=ws.now())


@dataclass(frozen=True)
class OfficialSigner:
    """The named official who signed (nama, jabatan, NIP), for reports."""

    nip: str
    name: str
    title: str

    def to_json(self) -> dict[str, str]:
        return {"nip": self.nip, "name": self.name, "title": self.title}


@dataclass(frozen=True)
class PdfSignResult:
    signer: str
    serial: str
    signed_at: datetime
    output: Path
    #: "ecdsa-p256" (a pdf-signing key: viewers validate it) or "ed25519"
    algorithm: str = "ed25519"
    warnings: tuple[str, ...] = ()
    official: OfficialSigner | None = None
    #: the signature time-stamp (PAdES B-T), when the server gave one
    timestamp: VerifiedTimestamp | None = None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"signer": self.signer, "certificate": self.serial,
                               "signed_at": iso_time(self.signed_at), "output": str(self.output),
                               "format": "pades", "algorithm": self.algorithm,
                               "warnings": list(self.warnings)}
        if self.official is not None:
            out["official"] = self.official.to_json()
        if self.timestamp is not None:
            out["timestamp"] = self.timestamp.summary()
        return out


def _pdf_key(ws: Workspace, code: str) -> tuple[Signer | P256Signer, CertEntry, tuple[str, ...]]:
    """The key and certificate a PDF signature of ``code`` is made with, and the warnings."""
    from sandi.directory.trust import current_pdf_signing_cert
    from sandi.errors import CredentialError
    from sandi.i18n import Message

    pdf_cert = current_pdf_signing_cert(ws.snapshot, code, ws.now())
    if pdf_cert is not None:
        return ws.pdf_signing_key(code, pdf_cert), pdf_cert, ()
    if ws.snapshot.agency(code).current("pdf-signing"):
        raise CredentialError(
            _("the PDF signing certificate of {code} is revoked or expired").format(code=code),
            hint=_("ask the authority for a new one ('sandi keys rotate {code} --purpose pdf-signing'), "
                   "then import the new directory and keys").format(code=code),
        )
    key, cert = ws.signing_key(code)
    return key, cert, (Message(
        "{code} has no PDF signing certificate: the PDF is signed with its Ed25519 key, which sandi "
        "verifies but PDF viewers (Acrobat, pdfsig) show as not validated; the authority issues one with "
        "'sandi keys issue {code} --purpose pdf-signing'", code=code),)


def _official_pdf_key(ws: Workspace, code: str, nip: str
                      ) -> tuple[Signer | P256Signer, CertEntry, OfficialEntry, tuple[str, ...]]:
    """The personal key and certificate a PDF signature of the official ``nip`` is made
    with (their P-256 PDF key when the PDF root certified one, else their Ed25519 signing
    key, ADR 0017), and the warnings."""
    from sandi.i18n import Message

    pdf = ws.official_pdf_key(code, nip)
    if pdf is not None:
        return pdf[0], pdf[1], pdf[2], ()
    key, cert, official = ws.official_signing_key(code, nip)
    return key, cert, official, (Message(
        "the PDF is signed with the official's Ed25519 key, which sandi verifies but PDF viewers "
        "(Acrobat, pdfsig) show as not validated"),)


def sign_pdf(
    src: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    workspace: Workspace,
    signer_code: str,
    overwrite: bool = False,
    stamp: bool = False,
    official: str | None = None,
    placement: StampPlacement | None = None,
    timestamp: bool | None = None,
) -> PdfSignResult:
    """Add a PAdES signature by ``signer_code`` to the PDF ``src``, written to ``output``.

    The signature is an incremental update (earlier signatures stay valid) and embeds
    the agency certificate, the root and the directory's CRL. ``stamp`` draws a visible
    stamp on the last page: the agency, the time (local zone, WIB by default) and a QR
    code with :data:`QR_FORMAT`. ``official``: the NIP of a named official of the agency
    who signs with their personal key and certificate (ADR 0017); the stamp then shows
    their nama and jabatan above the agency. ``placement``: where the stamp goes
    (default: the signature block, bottom right of the last page). ``timestamp``: as for
    :func:`sandi.documents.seal.seal` -- a signature time-stamp from the authority's
    server (PAdES B-T; B-LT with the TSA's certificate and the root's CRL in the DSS),
    checked as a verifier will check it; without one the signature is B-B (with a
    warning, or with ``timestamp=True`` an error and nothing written)."""
    require_pyhanko()
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.sign import fields, signers

    ws = workspace
    src, output = Path(src), Path(output)
    data = _read_pdf(src)
    person: OfficialSigner | None = None
    if official is None:
        key, cert, warnings = _pdf_key(ws, signer_code)
    else:
        key, cert, entry, warnings = _official_pdf_key(ws, signer_code, official)
        person = OfficialSigner(entry.nip, entry.name, entry.title)
    from sandi.documents.timestamps import stamper_for

    p256 = cert.purpose == "pdf-signing"
    signer = _make_store_signer(key, cert.pem, [])
    now = ws.now()
    existing = _signature_count(data)
    stamper = stamper_for(ws.home, ws.snapshot, timestamp, now)
    box = _stamp_box(data, placement or StampPlacement(), existing) if stamp else None

    def make(timestamper: Any) -> Any:
        meta = signers.PdfSignatureMetadata(
            field_name=f"sandi-{signer_code}-{existing + 1}" if person is None
            else f"sandi-{signer_code}-{person.nip}-{existing + 1}",
            md_algorithm="sha256" if p256 else None,
            subfilter=fields.SigSeedSubFilter.PADES,
            embed_validation_info=True,
            validation_context=_validation_context(ws, pdf_root=p256, with_tsa=timestamper is not None),
            name=signer_code if person is None else person.name,
        )
        pdf_signer = signers.PdfSigner(meta, signer=signer, timestamper=timestamper)
        text_params: dict[str, str] | None = None
        if stamp:
            pdf_signer, text_params = _stamped(meta, signer, ws, signer_code, cert.serial,
                                               cert.key_fingerprint, now, existing, person, box=box,
                                               timestamper=timestamper)
        try:
            writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
            return pdf_signer.sign_pdf(writer, bytes_reserved=SIGNATURE_SIZE,
                                       appearance_text_params=text_params).getvalue()
        except (SandiError, _TimestampUnavailable):
            raise
        except (PdfError, ValueError, KeyError, TypeError) as exc:
            raise FormatError(_("cannot sign {path}: {reason}").format(path=src, reason=str(exc))) from None

    stamped: VerifiedTimestamp | None = None
    if stamper is None:
        signed = make(None)
    else:
        try:
            signed = make(_make_timestamper(stamper))
            stamped = _own_timestamp(ws, signed, existing)
        except (_TimestampUnavailable, ServerError, FormatError, VerificationError) as exc:
            reason = exc.error.message if isinstance(exc, _TimestampUnavailable) else exc.message
            if stamper.required:
                raise ServerError(_("no time-stamp: {reason}").format(reason=reason),
                                  hint=_("nothing was written; try again later, or leave out --timestamp"),
                                  ) from None
            warnings = (*warnings, _("no time-stamp ({reason}); carrying on without one").format(
                reason=reason))
            signed = make(None)
    out = AtomicOutput(output, overwrite=overwrite)
    try:
        out.file.write(signed)
        ws.record(signer_code, "document.sign", src.name, "ok",
                  {"format": "pades", "size": len(data), "signatures_before": existing,
                   "algorithm": "ecdsa-p256" if p256 else "ed25519", "certificate": cert.serial,
                   **({"official": person.nip} if person else {}),
                   **({"timestamp": iso_time(stamped.gen_time)} if stamped is not None else {})})
        out.commit()
    finally:
        out.discard()
    return PdfSignResult(signer=signer_code, serial=cert.serial, signed_at=now, output=output,
                         algorithm="ecdsa-p256" if p256 else "ed25519", warnings=warnings, official=person,
                         timestamp=stamped)


def _own_timestamp(ws: Workspace, signed: bytes, existing: int) -> VerifiedTimestamp:
    """The time-stamp of the signature just made, checked as a verifier will check it."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    sig = PdfFileReader(io.BytesIO(signed), strict=False).embedded_signatures[existing]
    token = signature_timestamp_token(sig)
    if token is None:
        raise FormatError(_("the signature carries no time-stamp"))
    return _check_signature_timestamp(ws, sig, token, sig.self_reported_timestamp)


def _stamp_box(data: bytes, placement: StampPlacement, existing: int) -> tuple[int, tuple[float, ...]]:
    """(0-based page index, (x1, y1, x2, y2)) of the stamp; UsageError for a page the PDF
    does not have or a box that leaves the page."""
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        count = int(reader.root["/Pages"]["/Count"])
        index = count - 1 if placement.page is None else placement.page - 1
        if not 0 <= index < count:
            raise UsageError(ngettext("the PDF has {count} page, not page {page}",
                                      "the PDF has {count} pages, not page {page}", count).format(
                count=count, page=placement.page))
        page = reader.find_page_for_modification(index)[0].get_object()  # type: ignore[no-untyped-call]
        while "/MediaBox" not in page and "/Parent" in page:  # an inherited page attribute
            page = page["/Parent"].get_object()
        llx, lly, urx, ury = (float(v) for v in page["/MediaBox"])
    except (PdfError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise FormatError(_("not a readable PDF: {reason}").format(reason=str(exc))) from None
    width, height = STAMP_BOX[2] - STAMP_BOX[0], STAMP_BOX[3] - STAMP_BOX[1]
    shift = (height + 10) * existing
    position = placement.position
    if position in STAMP_POSITIONS:
        x = llx + _STAMP_SIDE_MARGIN if position.endswith("left") else urx - _STAMP_SIDE_MARGIN - width
        y = lly + _STAMP_END_MARGIN + shift if position.startswith("bottom") else \
            ury - _STAMP_END_MARGIN - height - shift
    else:
        px, py = placement.point()
        x, y = llx + px, lly + py
    if x < llx or y < lly or x + width > urx or y + height > ury:
        raise UsageError(
            _("the stamp ({width} x {height} points) does not fit on page {page} at {position}").format(
                width=width, height=height, page=index + 1, position=position),
            hint=_("choose another --stamp-position or --stamp-page"),
        )
    return index, (x, y, x + width, y + height)


def _stamped(meta: Any, signer: Any, ws: Workspace, code: str, serial: str, key_fingerprint: str,
             now: datetime, existing: int,
             person: OfficialSigner | None = None, *,
             box: tuple[int, tuple[float, ...]] | None = None,
             timestamper: Any = None) -> tuple[Any, dict[str, str]]:
    """A PdfSigner drawing the visible stamp, and the stamp's text parameters."""
    try:
        import qrcode  # noqa: F401 - pyHanko draws the QR code with it
    except ImportError:
        raise ConfigError(_("the signature stamp needs the qrcode package, which is not installed"),
                          hint=_("install it with: pip install 'sandi[pdf]'")) from None
    from pyhanko.sign import fields, signers
    from pyhanko.stamp import QRStampStyle

    from sandi.timefmt import show_time

    agency = ws.snapshot.agency_or_none(code)
    name = agency.name if agency is not None else code
    if box is None:
        x1, y1, x2, y2 = STAMP_BOX
        shift = (y2 - y1 + 10) * existing
        box = (-1, (x1, y1 + shift, x2, y2 + shift))
    style = QRStampStyle(
        stamp_text="%(signed_by)s\n%(agency)s\n%(when)s",
        border_width=1,
    )
    page_index, (bx1, by1, bx2, by2) = box
    spec = fields.SigFieldSpec(sig_field_name=meta.field_name, on_page=page_index,
                               box=(int(bx1), int(by1), int(bx2), int(by2)))
    signed_by = _("Signed electronically by {code}").format(code=code)
    if person is not None:
        # nama and jabatan (each at most 64 characters, the certificate's bounds), above the agency
        signed_by = _("Signed electronically by {name}, {title}").format(name=person.name, title=person.title)
    params = {
        "signed_by": signed_by,
        "agency": name[:60],
        "when": show_time(now),
        "url": QR_FORMAT.format(code=code, serial=serial, key=key_fingerprint),
    }
    return signers.PdfSigner(meta, signer=signer, stamp_style=style, new_field_spec=spec,
                             timestamper=timestamper), params


def _signature_count(data: bytes) -> int:
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        return len(PdfFileReader(io.BytesIO(data), strict=False).embedded_signatures)
    except (PdfError, ValueError, KeyError, TypeError) as exc:
        raise FormatError(_("not a readable PDF: {reason}").format(reason=str(exc))) from None


@dataclass(frozen=True)
class PdfSignatureReport:
    field: str
    signer: str | None
    signer_name: str | None
    subject: str
    signed_at: datetime | None
    #: "document": the signature covers the document as it is (later revisions, if
    #: any, only add validation data); "revision": a later revision added more
    #: (another signature)
    coverage: str
    revision: int
    valid: bool
    problem: str | None
    #: the signer's certificate serial and key fingerprint (what the stamp's QR code names)
    serial: str | None = None
    key_fingerprint: str | None = None
    #: the named official who signed with a personal certificate (None: the agency's key)
    official: OfficialSigner | None = None
    #: the verified signature time-stamp (PAdES B-T), if the signature carries one
    timestamp: VerifiedTimestamp | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "field": self.field, "signer": self.signer, "signer_name": self.signer_name,
            "subject": self.subject,
            "signed_at": None if self.signed_at is None else iso_time(self.signed_at),
            "coverage": self.coverage, "revision": self.revision,
            "status": "valid" if self.valid else "invalid", "problem": self.problem,
            "certificate": self.serial, "key": self.key_fingerprint,
            "official": None if self.official is None else self.official.to_json(),
            "timestamp": None if self.timestamp is None else self.timestamp.summary(),
        }


@dataclass(frozen=True)
class PdfVerifyResult:
    document: str
    signatures: tuple[PdfSignatureReport, ...]

    @property
    def valid(self) -> bool:
        return bool(self.signatures) and all(s.valid for s in self.signatures)

    def summary(self) -> dict[str, Any]:
        return {"verified": self.valid, "document": self.document, "format": "pades",
                "signatures": [s.to_json() for s in self.signatures]}


#: pyHanko's difference analysis: what a later revision may have done and still
#: leave an earlier signature standing (added signatures, validation data)
_ALLOWED_CHANGES = ("NONE", "LTA_UPDATES", "FORM_FILLING")


def check_pdf(src: str | os.PathLike[str], *, workspace: Workspace) -> PdfVerifyResult:
    """Every signature of the PDF, each judged (never raises for a bad signature)."""
    require_pyhanko()
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader

    ws = workspace
    path = Path(src)
    data = _read_pdf(path)
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        embedded = list(reader.embedded_signatures)
    except (PdfError, ValueError, KeyError, TypeError) as exc:
        raise FormatError(_("not a readable PDF: {reason}").format(reason=str(exc))) from None
    reports = [_check_one(ws, sig) for sig in embedded]
    return PdfVerifyResult(document=path.name, signatures=tuple(reports))


def _check_one(ws: Workspace, sig: Any) -> PdfSignatureReport:
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    from sandi.authority.certs import serial_hex
    from sandi.keystore.keys import certificate_public_key_bytes, fingerprint

    field = str(sig.field_name)
    revision = int(sig.signed_revision)
    coverage = "document" if sig.coverage == SignatureCoverageLevel.ENTIRE_FILE else "revision"
    subject = ""
    signer: tuple[str, str] | None = None
    signed_at: datetime | None = None
    serial: str | None = None
    key_fp: str | None = None
    person: OfficialSigner | None = None
    stamped: VerifiedTimestamp | None = None

    def report(valid: bool, problem: str | None) -> PdfSignatureReport:
        return PdfSignatureReport(field, signer[0] if signer else None, signer[1] if signer else None,
                                  subject, signed_at, coverage, revision, valid, problem, serial, key_fp,
                                  person, stamped)

    try:
        token = signature_timestamp_token(sig)
        signed_at = sig.self_reported_timestamp
    except Exception as exc:  # hostile input: invalid
        return report(False, _("the signature cannot be read ({reason})").format(reason=type(exc).__name__))
    if token is not None:
        try:
            stamped = _check_signature_timestamp(ws, sig, token, signed_at)
        except (VerificationError, FormatError) as exc:
            return report(False, exc.message)
    # the time-stamped time, when there is one, is when the certificate must have been good
    at = stamped.gen_time if stamped is not None else signed_at

    try:
        cert = sig.signer_cert
        subject = cert.subject.human_friendly
        signed_at = sig.self_reported_timestamp
        # a P-256 signer is judged under the PDF root the directory names, an Ed25519 one
        # under the root: a certificate never chains through the other hierarchy
        p256 = cert.public_key.algorithm == "ec"
        if p256 and ws.snapshot.pdf_root_certificate is None:
            return report(False, _("the directory names no PDF root"))
        status = validate_pdf_signature(
            sig, signer_validation_context=_validation_context(ws, at=at, pdf_root=p256),
            ts_validation_context=None if stamped is None else _validation_context(ws, at=at, with_tsa=True))
    except Exception as exc:  # pyHanko raises many types on hostile input: all mean "invalid"
        return report(False, _("the signature cannot be read ({reason})").format(reason=type(exc).__name__))
    if not status.intact or not status.valid:
        return report(False, _("the signature does not match the document"))
    if sig.coverage not in (SignatureCoverageLevel.ENTIRE_FILE, SignatureCoverageLevel.ENTIRE_REVISION):
        return report(False, _("the signature does not cover a whole revision"))
    level = getattr(status.modification_level, "name", "OTHER")
    if level in ("NONE", "LTA_UPDATES"):
        coverage = "document"  # later revisions, if any, only add validation data
    if level not in _ALLOWED_CHANGES or not status.docmdp_ok:
        return report(False, _("the document was changed after it was signed"))
    if not status.trusted:
        return report(False, _("the signer's certificate does not chain to the province's root"))
    if stamped is not None:
        ts_status = status.timestamp_validity
        if ts_status is None or not (ts_status.intact and ts_status.valid and ts_status.trusted):
            return report(False, _("the signature's time-stamp is not valid"))
    try:
        from cryptography import x509

        crypto_cert = x509.load_der_x509_certificate(cert.dump())
        key_fp = fingerprint(certificate_public_key_bytes(crypto_cert))
        agency = next((a for a, _c in ws.snapshot.key_owners(key_fp)), None)
        if agency is None and not ws.snapshot.find_official_key(key_fp):  # a retired key (ADR 0019)
            from sandi.directory.archive import archived_key_owners

            agency = next((a for a, _c in archived_key_owners(ws.snapshot, key_fp)), None)
        if agency is None:
            # A named official's personal key (ADR 0017): the same checks, against their
            # certificates in the directory.
            found = verify_official_certificate(ws.snapshot, key_fp, at or ws.now(),
                                                serial_hex(crypto_cert.serial_number), now=ws.now(),
                                                purpose="pdf-signing" if p256 else "signing")
            person = OfficialSigner(found.official.nip, found.official.name, found.official.title)
            signer = (found.agency.code, found.agency.name)
            serial = found.certificate.serial
            return report(True, None)
        identity = verify_signing_certificate(
            ws.snapshot, agency.code, key_fp, at or ws.now(),
            serial_hex(crypto_cert.serial_number), now=ws.now(),
            purpose="pdf-signing" if p256 else "signing")
    except (VerificationError, FormatError) as exc:
        return report(False, exc.message)
    signer = (identity.agency.code, identity.agency.name)
    serial = identity.certificate.serial
    return report(True, None)


def verify_pdf(src: str | os.PathLike[str], *, workspace: Workspace) -> PdfVerifyResult:
    """Verify every signature of a PDF; VerificationError (exit 4) unless all are valid."""
    result = check_pdf(src, workspace=workspace)
    judge_pdf(result, workspace=workspace)
    return result


def judge_pdf(result: PdfVerifyResult, *, workspace: Workspace) -> None:
    """Audit the outcome of :func:`check_pdf`; VerificationError unless every signature is valid."""
    ws = workspace
    name = result.document
    if not result.valid:
        ws.record("-", "verify.fail", name, "failed", {"op": "verify-pdf",
                  "signatures": len(result.signatures)})
        if not result.signatures:
            raise VerificationError(_("{name} carries no signature").format(name=name))
        bad = next(s for s in result.signatures if not s.valid)
        raise VerificationError(_("signature {field}: {problem}").format(
            field=bad.field, problem=bad.problem))
    for s in result.signatures:
        ws.record(s.signer or "-", "document.verify", name, "ok",
                  {"format": "pades", "field": s.field,
                   "signed_at": None if s.signed_at is None else iso_time(s.signed_at),
                   **({"official": s.official.nip} if s.official else {}),
                   **({"timestamp": iso_time(s.timestamp.gen_time)} if s.timestamp else {})})
