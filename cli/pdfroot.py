"""``sandi pdf-root``: the province's PDF root (ECDSA P-256, ADR 0014): create it, show it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import click

from sandi.errors import UsageError
from sandi.i18n import _
from sandi.timefmt import show_day

from .context import CliContext, pass_cli
from .passphrase import passphrase_file_option


@click.group("pdf-root", help=_(
    "The PDF root: the province's ECDSA P-256 CA for signatures inside PDFs.\n"
    "\n"
    "PDF viewers (Adobe Acrobat, poppler) do not validate Ed25519, so PDF signatures use\n"
    "P-256 keys certified by this second root. The directory, signed by the root,\n"
    "publishes its certificate; install that certificate in the viewers as a trusted root.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi pdf-root init                          # authority, once\n"
    "  sandi keys issue SETDA --purpose pdf-signing\n"
    "  sandi pdf-root show -o banten-pdf-root.pem   # to install in Acrobat / NSS"
))
def pdf_root() -> None:
    pass


@pdf_root.command("init", help=_(
    "Create the PDF root: a P-256 key in the key store and its self-signed certificate\n"
    "(valid 20 years). Once per authority; the directory is republished with it."
))
@passphrase_file_option
@pass_cli
def init_cmd(obj: CliContext, passphrase_file: Path | None) -> None:
    from sandi.authority.pdfroot import create_pdf_root

    info = create_pdf_root(obj.home, obj.registry(), obj.keystore(passphrase_file))
    obj.emit(
        {"province": info.province, "fingerprint": info.fingerprint, "key_ref": info.key_ref,
         "key_location": info.key_location, "certificate": info.cert_pem},
        [_("created the PDF root of {province} (ECDSA P-256)").format(province=info.province),
         _("  fingerprint {fingerprint}").format(fingerprint=info.fingerprint),
         _("  key {ref} ({location})").format(ref=info.key_ref, location=info.key_location),
         _("next: 'sandi keys issue CODE --purpose pdf-signing' for each agency that signs PDFs")],
    )


@pdf_root.command("show", help=_(
    "Print the PDF root certificate the installed directory names (PEM), or write it to a file\n"
    "to install in Adobe Acrobat or an NSS database."
))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help=_("Write the certificate (PEM) to this file."))
@click.option("--force", is_flag=True, help=_("Replace the -o file if it exists."))
@pass_cli
def show_cmd(obj: CliContext, output: Path | None, force: bool) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    from sandi.directory.local import installed_snapshot
    from sandi.errors import NotFoundError
    from sandi.fsutil import atomic_write
    from sandi.keystore.keys import certificate_public_key_bytes, fingerprint

    snapshot = installed_snapshot(obj.home)
    cert = snapshot.pdf_root_certificate
    if cert is None or snapshot.pdf_root_cert_pem is None:
        raise NotFoundError(
            _("the directory (version {version}) names no PDF root").format(version=snapshot.version),
            hint=_("the authority creates it with 'sandi pdf-root init'; then import the new directory"),
        )
    if output is not None and output.exists() and not force:
        raise UsageError(_("{path} exists already (add --force to replace it)").format(path=output))
    key_fp = fingerprint(certificate_public_key_bytes(cert))
    sha256 = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()
    if output is not None:
        atomic_write(output, snapshot.pdf_root_cert_pem.encode("ascii"), mode=0o644, overwrite=force)
    data = {"subject": cert.subject.rfc4514_string(), "key_fingerprint": key_fp,
            "certificate_sha256": sha256, "not_after": cert.not_valid_after_utc.isoformat(),
            "directory_version": snapshot.version, "pem": snapshot.pdf_root_cert_pem,
            "output": None if output is None else str(output)}
    if output is None and not obj.json_output:
        click.echo(snapshot.pdf_root_cert_pem, nl=False)
        return
    obj.emit(data, [
        _("PDF root: {subject}, valid until {until}").format(
            subject=cert.subject.rfc4514_string(), until=show_day(cert.not_valid_after_utc)),
        # what a viewer shows when the certificate is installed: compare it by telephone
        _("  SHA-256 certificate fingerprint {sha256}").format(sha256=sha256),
        _("wrote {file}").format(file=output),
    ])
