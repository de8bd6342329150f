"""Export: one chain's entries and checkpoints in one file, verifiable elsewhere.

File format ``sandi-audit-export/v1`` (docs/audit.md): UTF-8 JSON lines, each canonical
JSON and ``\\n`` terminated.

* line 1, the header: ``{"type":"header","format":"sandi-audit-export/v1","chain":
  "registry"|"journal","root_fingerprint":<sha256 hex of the root certificate DER, or
  null>,"signer":<key fingerprint expected on the checkpoints, or null>,"exported_at":
  <RFC 3339>}``;
* then every checkpoint line (``"type":"checkpoint"``), then every entry line
  (``"type":"entry"``) in seq order; both exactly as in the journal.

Checkpoints come first so a verifier can stream the entries in one pass. Nothing in
the file is trusted by itself: the verifier takes the root certificate from its own
copy, checks it matches the header, and checks every link and signature.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandi.audit.checkpoint import Checkpoint
from sandi.audit.entry import AuditEntry, canonical_json, format_time, utcnow
from sandi.audit.journal import MAX_LINE, checkpoint_line, entry_line, parse_line
from sandi.errors import AuditError, FormatError, VerificationError
from sandi.formats.bounded import load_json
from sandi.i18n import Message, _

EXPORT_FORMAT = "sandi-audit-export/v1"
CHAINS = ("registry", "journal")


@dataclass(frozen=True)
class ExportHeader:
    chain: str
    root_fingerprint: str | None
    signer: str | None
    exported_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "header",
            "format": EXPORT_FORMAT,
            "chain": self.chain,
            "root_fingerprint": self.root_fingerprint,
            "signer": self.signer,
            "exported_at": self.exported_at,
        }


def write_export(
    path: Path,
    *,
    chain: str,
    entries: Iterable[AuditEntry],
    checkpoints: Iterable[Checkpoint],
    root_fingerprint: str | None,
    signer: str | None,
) -> int:
    """Write the export file atomically (never overwriting); returns the entry count."""
    from sandi.fsutil import AtomicOutput

    if chain not in CHAINS:
        raise AuditError(_("unknown audit chain {chain!r}").format(chain=chain))
    header = ExportHeader(chain, root_fingerprint, signer, format_time(utcnow()))
    count = 0
    with AtomicOutput(path, mode=0o600, overwrite=False) as out:
        try:
            out.file.write(canonical_json(header.to_dict()) + b"\n")
            for cp in checkpoints:
                out.file.write(checkpoint_line(cp))
            for entry in entries:
                out.file.write(entry_line(entry))
                count += 1
            out.commit()
        except OSError as exc:
            raise AuditError(_("cannot write {path}: {reason}").format(
                path=path,
                reason=exc.strerror or exc,
            )) from None
    return count


class ExportFile:
    """An export file to read: header, checkpoints, then streamed entries."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.header = self._read_header()

    def _lines(self) -> Iterator[tuple[int, bytes]]:
        try:
            with open(self.path, "rb") as f:
                lineno = 0
                while True:
                    line = f.readline(MAX_LINE + 1)
                    if not line:
                        return
                    lineno += 1
                    if not line.endswith(b"\n"):
                        if len(line) > MAX_LINE:
                            raise FormatError(_("{path}: line {lineno} is too long").format(
                                path=self.path,
                                lineno=lineno,
                            ))
                        raise FormatError(_("{path}: line {lineno} is incomplete (file cut short?)").format(
                            path=self.path,
                            lineno=lineno,
                        ))
                    yield lineno, line
        except OSError as exc:
            raise AuditError(_("cannot read {path}: {reason}").format(
                path=self.path,
                reason=exc.strerror or exc,
            )) from None

    def _read_header(self) -> ExportHeader:
        for _lineno, line in self._lines():
            data = load_json(line, max_bytes=MAX_LINE, error=lambda reason: FormatError(Message(
                "{path}: not a sandi audit export (line 1: {reason})", path=str(self.path), reason=reason)))
            if not isinstance(data, dict) or data.get("type") != "header":
                break
            if data.get("format") != EXPORT_FORMAT:
                raise FormatError(_("{path}: unsupported audit export format {get!r}").format(
                    path=self.path,
                    get=data.get('format'),
                ))
            chain = data.get("chain")
            fp, signer, at = data.get("root_fingerprint"), data.get("signer"), data.get("exported_at")
            if chain not in CHAINS or not isinstance(at, str):
                raise FormatError(_("{path}: malformed audit export header").format(path=self.path))
            if not (fp is None or isinstance(fp, str)) or not (signer is None or isinstance(signer, str)):
                raise FormatError(_("{path}: malformed audit export header").format(path=self.path))
            return ExportHeader(chain, fp, signer, at)
        raise FormatError(_("{path}: not a sandi audit export (no header line)").format(path=self.path))

    def _records(self) -> Iterator[AuditEntry | Checkpoint]:
        for lineno, line in self._lines():
            if lineno == 1:
                continue
            try:
                record = parse_line(line, f"{self.path}: line {lineno}")
            except AuditError as exc:
                raise FormatError(exc.message) from None
            if isinstance(record, dict):
                raise FormatError(_("{path}: line {lineno}: unexpected {get!r} line").format(
                    path=self.path,
                    lineno=lineno,
                    get=record.get('type'),
                ))
            yield record

    def checkpoints(self) -> list[Checkpoint]:
        return [r for r in self._records() if isinstance(r, Checkpoint)]

    def entries(self) -> Iterator[AuditEntry]:
        for record in self._records():
            if isinstance(record, AuditEntry):
                yield record


def root_public_key(cert_pem: bytes | str) -> tuple[bytes, str]:
    """The raw Ed25519 public key and the fingerprint (sha256 of DER) of a root certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    data = cert_pem.encode("ascii") if isinstance(cert_pem, str) else cert_pem
    from cryptography.exceptions import UnsupportedAlgorithm

    try:
        cert = x509.load_pem_x509_certificate(data)
        key = cert.public_key()
    except (ValueError, x509.InvalidVersion, UnsupportedAlgorithm):
        raise FormatError(_("the root certificate is not a PEM X.509 certificate")) from None
    if not isinstance(key, Ed25519PublicKey):
        raise VerificationError(_("the root certificate does not hold an Ed25519 key"))
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return raw, hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def read_root_cert(path: Path) -> tuple[bytes, str]:
    try:
        data = Path(os.fspath(path)).read_bytes()
    except OSError as exc:
        raise AuditError(_("cannot read {path}: {reason}").format(
            path=path,
            reason=exc.strerror or exc,
        )) from None
    return root_public_key(data)
