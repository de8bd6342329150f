"""``sandi seal``, ``open``, ``inspect``, ``sign``, ``verify``: the agency's daily work.

These commands read only the home's signed directory and key store (never the
registry), so they start fast and work on a workstation, offline.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from sandi.errors import UsageError
from sandi.i18n import _, ngettext, translated

from .classes import CLASS_HELP, CLASSIFICATION, class_label, resolve_class
from .context import CliContext, pass_cli
from .passphrase import passphrase_file_option

if TYPE_CHECKING:
    from sandi.audit.events import JSONValue, Outcome
    from sandi.documents import DirectoryPolicy, Workspace
    from sandi.documents.pdf import StampPlacement
    from sandi.policy.model import Level


def is_dash(path: Path | None) -> bool:
    """``-`` names standard input or output, as in age and every Unix tool; never a file."""
    return path is not None and str(path) == "-"


def refuse_binary_to_terminal(armor: bool) -> None:
    if not armor and sys.stdout.isatty():
        raise UsageError(_("refusing to write binary output to the terminal"),
                         hint=_("redirect standard output, add --armor, or use -o FILE"))


@contextlib.contextmanager
def stdin_spooled(active: bool) -> Iterator[BinaryIO | None]:
    """Standard input copied to an anonymous temporary file, so its size is known before
    sealing (the tar header carries it); removed when the block ends."""
    if not active:
        yield None
        return
    with tempfile.TemporaryFile() as spool:
        shutil.copyfileobj(sys.stdin.buffer, spool, 1024 * 1024)
        spool.seek(0)
        yield spool


def progress_bar(obj: CliContext, label: str) -> Callable[[int, int], None] | None:
    """A progress callback (done, total) drawing on standard error when it is a terminal;
    None otherwise (pipes and logs get nothing)."""
    if obj.json_output or not sys.stderr.isatty():
        return None
    state: dict[str, int] = {"shown": -1}

    def update(done: int, total: int) -> None:
        if total <= 0:
            return
        percent = min(100, done * 100 // total)
        if percent == state["shown"]:
            return
        state["shown"] = percent
        width = 30
        filled = width * percent // 100
        end = "\n" if percent >= 100 else ""
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {percent:3d}%{end}")
        sys.stderr.flush()

    return update


def open_workspace(obj: CliContext, passphrase_file: Path | None) -> Workspace:
    from sandi.documents import Workspace

    ws = Workspace.open(obj.home, obj.store_passphrase(passphrase_file), pin=obj.token_pin())
    obj.opened(ws.keystore)
    obj.directory_read(ws.warnings)
    return ws


def acting_agency(obj: CliContext, given: str | None, option: str = "--as") -> str:
    if given:
        return given.upper()
    cfg = obj.config()
    if cfg.agency:
        return cfg.agency
    raise UsageError(_("say which agency you act as with {option} CODE").format(option=option),
                     hint=_("an authority home holds keys of many agencies"))


_LETTER_PARAMS = ("nomor", "sifat", "lampiran", "hal", "tanggal", "kepada", "tembusan",
                  "penandatangan", "jabatan", "nip")


timestamp_option = click.option(
    "--timestamp/--no-timestamp", "timestamp", default=None,
    help=_("Ask the authority's server for an RFC 3161 time-stamp and carry it in the signature; "
           "with --timestamp a failure is an error [default: the home's 'timestamps' setting, else "
           "whenever the directory publishes a time-stamp authority and the home has a server]."))


def _note_warnings(obj: CliContext, warnings: tuple[str, ...]) -> None:
    for warning in warnings:
        obj.note(_("warning: {warning}").format(warning=translated(warning)))


def letter_options(f: Any) -> Any:
    """The letter fields (naskah dinas) as options; the command gets them as ``letter``."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name) for name in _LETTER_PARAMS}
        letter: dict[str, object] = {k: given[k] for k in _LETTER_PARAMS[:6] if given[k]}
        if given["tembusan"]:
            letter["tembusan"] = list(given["tembusan"])
        if given["penandatangan"] or given["jabatan"] or given["nip"]:
            letter["penandatangan"] = {"nama": given["penandatangan"], "jabatan": given["jabatan"],
                                       "nip": given["nip"]}
        return f(*args, letter=letter, **kwargs)

    options = [
        click.option("--nomor", help=_("Letter number (nomor surat), e.g. 005/123/DISKOMINFO/2026.")),
        click.option("--sifat", help=_("Urgency (sifat), one of this home's urgencies "
                                       "[default: Sangat Segera, Segera, Biasa]; not the classification.")),
        click.option("--lampiran", help=_("Attachments (lampiran), e.g. '1 (satu) berkas'.")),
        click.option("--hal", help=_("Subject (hal / perihal).")),
        click.option("--tanggal", help=_("Letter date (tanggal), e.g. 2026-12-02 or '2 Desember 2026' "
                                         "[default: today, in the home's zone].")),
        click.option("--kepada", help=_("Addressee (Kepada Yth.), e.g. 'Kepala BAPPEDA Provinsi Banten'.")),
        click.option("--tembusan", multiple=True,
                     help=_("A copy to (tembusan), e.g. 'Gubernur Banten' (repeatable, in order).")),
        click.option("--penandatangan", metavar="NAMA", help=_("Name of the signing official.")),
        click.option("--jabatan", help=_("Position of the signing official, e.g. 'Kepala Dinas'.")),
        click.option("--nip", help=_("NIP of the signing official (18 digits; spaces allowed).")),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def _urgencies(obj: CliContext, gate: DirectoryPolicy, at: datetime) -> tuple[str, ...] | None:
    """The urgencies a letter may have: the home's (sandi.toml), else the policy's, else
    the defaults (None)."""
    return obj.config().urgencies or gate.urgencies(at)


def _letter_lines(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The letter heading as an Indonesian letter states it: Nomor, Sifat, Lampiran, Hal,
    the date, Kepada Yth., the signing official, Tembusan."""
    rows: list[tuple[str, str]] = []
    for key, label in (("nomor", _("Number")), ("sifat", _("Urgency")), ("lampiran", _("Attachments")),
                       ("hal", _("Subject"))):
        if summary.get(key):
            rows.append((label, summary[key]))
    if summary.get("tanggal"):
        from sandi.documents.letter import letter_date
        from sandi.timefmt import show_date

        day = letter_date(summary)
        rows.append((_("Date"), show_date(day) if day is not None else summary["tanggal"]))
    if summary.get("kepada"):
        rows.append((_("To (Yth.)"), summary["kepada"]))
    official = summary.get("penandatangan")
    if official:
        rows.append((_("Signed by"), official["jabatan"]))
        rows.append(("", official["nama"]))
        if official.get("nip"):
            nip = official["nip"]  # printed as letters print it: birth date, appointment, gender, serial
            rows.append(("", f"NIP {nip[:8]} {nip[8:14]} {nip[14]} {nip[15:]}"))
    for number, copy in enumerate(summary.get("tembusan") or [], start=1):
        rows.append((_("Copies") if number == 1 else "", f"{number}. {copy}"))
    return rows


#: a circular's recipients are summed up after this many codes (--json lists them all)
_SHOWN_RECIPIENTS = 10


def _listed(codes: list[str]) -> str:
    if len(codes) <= _SHOWN_RECIPIENTS:
        return ", ".join(codes)
    return _("{codes}, ... ({count} agencies)").format(
        codes=", ".join(codes[:_SHOWN_RECIPIENTS]), count=len(codes))


def _human(summary: dict[str, Any], title: str, levels: tuple[Level, ...] | None = None) -> list[str]:
    from sandi.timefmt import show_time

    rows: list[tuple[str, str]] = []
    for key, label in (("sender", _("From")), ("signer", _("Signer")), ("recipients", _("Recipients"))):
        value = summary.get(key)
        if value:
            rows.append((label, _listed(value) if isinstance(value, list) else str(value)))
    person = summary.get("official")
    if isinstance(person, dict):
        rows.append((_("Official"), _("{name}, {title} (NIP {nip})").format(
            name=person["name"], title=person["title"], nip=person["nip"])))
    if summary.get("classification"):
        rows.append((_("Classification"), class_label(summary["classification"], levels)))
    rows += _letter_lines(summary)
    for key, label in (("sealed_at", _("Sealed at")), ("signed_at", _("Signed at"))):
        if summary.get(key):
            rows.append((label, show_time(datetime.fromisoformat(summary[key]))))
    stamp = summary.get("timestamp")
    if stamp:
        rows.append((_("Time-stamped"), _("{time} (verified, time-stamp authority {tsa})").format(
            time=show_time(datetime.fromisoformat(stamp["time"])), tsa=stamp["tsa"][:16])))
    for key, label in (("document", _("Document")), ("size", _("Size")), ("policy", _("Policy")),
                       ("output", _("Written to"))):
        if summary.get(key) is not None:
            rows.append((label, str(summary[key])))
    width = max((len(label) for label, _value in rows), default=0) + 1
    lines = [title]
    for label, value in rows:
        lines.append(f"  {(label + ':') if label else '':<{width}} {value}")
    return lines


@click.command("seal", help=_(
    "Sign and encrypt FILE for one or more agencies.\n"
    "\n"
    "The policy in force (PHKS) must allow the sender to send this classification\n"
    "to every recipient; otherwise nothing is written and the exit code is 3.\n"
    "\n"
    "A circular (surat edaran) goes to every agency with --to-all, or to the codes\n"
    "of a list file with --to-file; up to 2,000 recipients.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi seal surat.pdf --as DISKOMINFO --to BAPPEDA --to SETDA --class R \\\n"
    "      --nomor 005/17/DISKOMINFO/2026 --sifat segera --hal \"Rapat koordinasi\"\n"
    "  sandi seal edaran.pdf --to-all --class B --hal \"Libur nasional\""
))
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--as", "sender", help=_("The sending agency (default: this workstation's agency)."))
@click.option("--to", "recipients", multiple=True, help=_("A recipient agency (repeatable)."))
@click.option("--to-file", "recipient_file", type=click.Path(dir_okay=False, path_type=Path),
              help=_("A file of recipient agency codes, one per line ('#' starts a comment)."))
@click.option("--to-all", is_flag=True,
              help=_("Every active agency in the directory that has an encryption key, except the "
                     "sender: a circular."))
@click.option("--class", "classification", required=True, type=CLASSIFICATION, help=CLASS_HELP)
@letter_options
@click.option("--armor", is_flag=True, help=_("ASCII-armored output (PEM-like text)."))
@click.option("--copy-to-self", is_flag=True, help=_("Also encrypt to the sender, so it can reopen the "
                                                     "file."))
@click.option("--name", "doc_name", metavar="NAME",
              help=_("The document's name inside the seal, which recipients open it under "
                     "[default: FILE's name]."))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help=_("Output file [default: FILE.sandi]."))
@click.option("--force", is_flag=True, help=_("Overwrite an existing output file."))
@timestamp_option
@passphrase_file_option
@pass_cli
def seal_cmd(obj: CliContext, file: Path, sender: str | None, recipients: tuple[str, ...],
             recipient_file: Path | None, to_all: bool, classification: str, letter: dict[str, object],
             armor: bool, copy_to_self: bool, doc_name: str | None, output: Path | None, force: bool,
             timestamp: bool | None, passphrase_file: Path | None) -> None:
    from sandi.documents import DirectoryPolicy, circular_recipients, read_recipient_list, seal

    if not recipients and recipient_file is None and not to_all:
        raise UsageError(_("name the recipients with --to, --to-file or --to-all"))
    from_stdin = is_dash(file)
    if from_stdin and not doc_name:
        raise UsageError(_("sealing standard input needs --name NAME"),
                         hint=_("the name recipients open the document under, e.g. --name surat.pdf"))
    to_stdout = is_dash(output) or (output is None and from_stdin)
    if to_stdout:
        refuse_binary_to_terminal(armor)
    ws = open_workspace(obj, passphrase_file)
    code = acting_agency(obj, sender)
    target: Path | BinaryIO = (sys.stdout.buffer if to_stdout else
                               output or file.with_name(file.name + (".sandi.asc" if armor else ".sandi")))
    addressees = [r.upper() for r in recipients]
    if recipient_file is not None:
        addressees += read_recipient_list(recipient_file)
    if to_all:
        addressees += circular_recipients(ws, code)
    gate = DirectoryPolicy(ws.snapshot)
    levels = gate.levels(ws.now())
    with stdin_spooled(from_stdin) as spooled:
        result = seal(
            spooled if spooled is not None else file, target, workspace=ws, sender=code,
            recipients=addressees,
            classification=resolve_class(classification, levels), policy=gate,
            letter=letter, urgencies=_urgencies(obj, gate, ws.now()), armor=armor,
            copy_to_sender=copy_to_self, name=doc_name, overwrite=force,
            progress=progress_bar(obj, _("sealing")), timestamp=timestamp,
        )
    _note_warnings(obj, result.warnings)
    shown = _("standard output") if to_stdout else str(target)
    summary = result.summary()
    if to_stdout:
        obj.note("\n".join(_human(summary, _("sealed {file} -> {target}").format(
            file=doc_name or file.name, target=shown), levels)))
        return
    obj.emit(summary, _human(summary, _("sealed {file} -> {target}").format(
        file=file.name,
        target=shown,
    ), levels))


@click.command("open", help=_(
    "Decrypt and verify a sealed document.\n"
    "\n"
    "The document is written only after the signature, the sender's certificate,\n"
    "the recipient list, the header binding and the policy all verified; any\n"
    "failure exits with code 4 (3 if the policy did not allow it) and writes nothing.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi open surat.pdf.sandi --as BAPPEDA --output-dir ./masuk"
))
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--as", "opener", help=_("The receiving agency (default: this workstation's agency)."))
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help=_("Write the document to this file ('-': standard output, only after every check "
                     "passed)."))
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help=_("Write the document, under its signed name, into this folder [default: here]."))
@click.option("--force", is_flag=True, help=_("Overwrite an existing output file."))
@passphrase_file_option
@pass_cli
def open_cmd(obj: CliContext, file: Path, opener: str | None, output: Path | None,
             output_dir: Path | None, force: bool, passphrase_file: Path | None) -> None:
    from sandi.documents import DirectoryPolicy, open_sealed

    if output is not None and output_dir is not None:
        raise UsageError(_("give -o or --output-dir, not both"))
    to_stdout = is_dash(output)
    if to_stdout and sys.stdout.isatty():
        raise UsageError(_("refusing to write the document to the terminal"),
                         hint=_("redirect standard output to a file or a program, or use -o FILE"))
    ws = open_workspace(obj, passphrase_file)
    code = acting_agency(obj, opener)
    source: Path | BinaryIO = sys.stdin.buffer if is_dash(file) else file
    result = open_sealed(source, workspace=ws, opener=code, policy=DirectoryPolicy(ws.snapshot),
                         output=sys.stdout.buffer if to_stdout else output, output_dir=output_dir,
                         overwrite=force, progress=progress_bar(obj, _("opening")))
    for warning in result.warnings:
        obj.note(_("warning: {warning}").format(warning=translated(warning)))
    levels = DirectoryPolicy(ws.snapshot).levels(result.metadata.sealed_at)
    lines = _human(result.summary(), _("opened {file}: verified").format(
        file=_("standard input") if is_dash(file) else file.name,
    ), levels)
    if to_stdout:  # the document itself went to standard output
        obj.note("\n".join(lines))
        return
    obj.emit(result.summary(), lines)


_PROTECTION = {
    "post-quantum": _("post-quantum (hybrid ML-KEM-768 + X25519 recipients only)"),
    "classical": _("classical (X25519; not post-quantum)"),
    "passphrase": _("passphrase (scrypt)"),
    "mixed": _("MIXED post-quantum and classical recipients: only as strong as X25519"),
    "other": _("other recipient types"),
}


@click.command("inspect", help=_(
    "Show what a sealed (or any age) file says.\n"
    "\n"
    "Without --as: only what needs no key (armor, recipient stanzas, size). With\n"
    "--as CODE: the verified metadata, without writing the document.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi inspect surat.pdf.sandi\n"
    "  sandi inspect surat.pdf.sandi --as BAPPEDA"
))
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--as", "opener", help=_("Also decrypt and verify as this agency (writes nothing)."))
@passphrase_file_option
@pass_cli
def inspect_cmd(obj: CliContext, file: Path, opener: str | None, passphrase_file: Path | None) -> None:
    from sandi.documents import DirectoryPolicy, inspect, open_sealed

    info = inspect(file).summary()
    kinds = ", ".join(f"{n} {t}" for t, n in info["stanza_types"].items())
    lines = [(_("{name}: age v1 file (armored)") if info["armored"] else _("{name}: age v1 file")).format(
                 name=file.name),
             _("  recipient stanzas: {count} ({kinds})").format(count=info["recipient_stanzas"], kinds=kinds),
             _("  size: {size} bytes (header {header})").format(size=info["file_size"],
                                                               header=info["header_bytes"]),
             _("  protection: {kind}").format(kind=_PROTECTION.get(info["protection"], info["protection"]))]
    if opener:
        ws = open_workspace(obj, passphrase_file)
        result = open_sealed(file, workspace=ws, opener=opener.upper(), policy=DirectoryPolicy(ws.snapshot),
                             write_document=False)
        for warning in result.warnings:
            obj.note(_("warning: {warning}").format(warning=translated(warning)))
        info["verified"] = result.metadata.summary()
        if result.timestamp is not None:
            info["verified"]["timestamp"] = result.timestamp.summary()
        if result.warnings:
            info["warnings"] = list(result.warnings)
        levels = DirectoryPolicy(ws.snapshot).levels(result.metadata.sealed_at)
        lines += _human(info["verified"], _("  verified metadata:"), levels)[1:]
    else:
        obj.directory_not_needed()
    obj.emit(info, lines)


@click.command("sign", help=_(
    "Write a detached minisign signature FILE.minisig (checkable with `minisign -V`),\n"
    "or with --pdf a signed copy of a PDF (PAdES, shown by PDF viewers).\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi sign pengumuman.pdf --as DISKOMINFO --class B --nomor 045/88/2026\n"
    "  sandi sign surat.pdf --pdf --as DISKOMINFO    # writes surat.signed.pdf\n"
    "  minisign -V -p DISKOMINFO.minisign.pub -m pengumuman.pdf"
))
@click.argument("file", type=click.Path(dir_okay=False, exists=True, allow_dash=True, path_type=Path))
@click.option("--as", "signer", help=_("The signing agency (default: this workstation's agency)."))
@click.option("--class", "classification", type=CLASSIFICATION, help=CLASS_HELP)
@letter_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help=_("Signature file [default: FILE.minisig; '-': standard output]."))
@click.option("--name", "doc_name", metavar="NAME",
              help=_("The document name the signature states [default: FILE's name; needed for '-']."))
@click.option("--force", is_flag=True, help=_("Overwrite an existing signature file."))
@click.option("--stamp", is_flag=True,
              help=_("With --pdf: draw a visible stamp (agency, time, QR code) on the last page."))
@click.option("--stamp-page", type=click.IntRange(min=1), metavar="N",
              help=_("With --stamp: the page the stamp goes on, counted from 1 [default: the last page]."))
@click.option("--stamp-position", metavar="WHERE",
              help=_("With --stamp: bottom-right (default, the signature block), bottom-left, top-right, "
                     "top-left, or X,Y: the stamp's lower-left corner in points from the page's lower-left "
                     "corner (A4 is 595 x 842 points)."))
@click.option("--pdf", "pdf", is_flag=True,
              help=_("Sign inside the PDF (PAdES), writing FILE.signed.pdf (or -o) instead of a detached "
                     "FILE.minisig."))
@click.option("--as-official", "official", metavar="NIP",
              help=_("Sign as this named official of the agency, with their personal key (ADR 0017)."))
@timestamp_option
@passphrase_file_option
@pass_cli
def sign_cmd(obj: CliContext, file: Path, signer: str | None, classification: str | None,
             letter: dict[str, object], output: Path | None, doc_name: str | None, force: bool,
             stamp: bool, stamp_page: int | None, stamp_position: str | None, pdf: bool, official: str | None,
             timestamp: bool | None, passphrase_file: Path | None) -> None:
    from sandi.documents import DirectoryPolicy, sign
    from sandi.timefmt import iso_time

    from_stdin = is_dash(file)
    # Explicit: a PDF signed without --pdf keeps getting its detached .minisig, as before.
    if pdf:
        placement = None
        if stamp_page is not None or stamp_position is not None:
            if not stamp:
                raise UsageError(_("--stamp-page and --stamp-position place the stamp: add --stamp"))
            from sandi.documents.pdf import StampPlacement

            placement = StampPlacement(page=stamp_page,
                                       position=stamp_position or StampPlacement.position)
        _sign_pdf(obj, file, signer, output, force, passphrase_file, classification, letter, doc_name, stamp,
                  official, placement, timestamp)
        return
    if stamp or stamp_page is not None or stamp_position is not None:
        raise UsageError(_("--stamp draws on a PDF: add --pdf"))
    from sandi.authority.identifiers import validate_nip

    nip = None if official is None else validate_nip(official)
    ws = open_workspace(obj, passphrase_file)
    code = acting_agency(obj, signer)
    if from_stdin and output is None:
        raise UsageError(_("signing standard input needs -o FILE (or -o - for standard output)"))
    to_stdout = is_dash(output)
    target = None if to_stdout else (output or file.with_name(file.name + ".minisig"))
    levels = DirectoryPolicy(ws.snapshot).levels(ws.now())
    result = sign(sys.stdin.buffer if from_stdin else file, workspace=ws, signer_code=code,
                  classification=resolve_class(classification, levels) if classification else None,
                  letter=letter, urgencies=_urgencies(obj, DirectoryPolicy(ws.snapshot), ws.now()),
                  signature_path=target, overwrite=force,
                  name=doc_name or (None if from_stdin else file.name), timestamp=timestamp, official=nip)
    _note_warnings(obj, result.warnings)
    if to_stdout:
        sys.stdout.write(result.signature_text)
        sys.stdout.flush()
        return
    data: dict[str, Any] = {"signer": code, "document": result.metadata.document_name,
                            "signature": str(target), "signed_at": iso_time(result.metadata.signed_at)}
    if nip is not None:
        data["official"] = nip
        lines = [_("signed {file} as official {nip} of {code} -> {target}").format(
            file=result.metadata.document_name, nip=nip, code=code, target=target)]
    else:
        lines = [_("signed {file} as {code} -> {target}").format(
            file=result.metadata.document_name,
            code=code,
            target=target,
        )]
    if result.timestamp is not None:
        data["timestamp"] = result.timestamp.summary()
        lines.append("  " + result.timestamp.line())
    obj.emit(data, lines)


def _sign_pdf(obj: CliContext, file: Path, signer: str | None, output: Path | None, force: bool,
              passphrase_file: Path | None, classification: str | None, letter: dict[str, object],
              doc_name: str | None, stamp: bool, official: str | None,
              placement: StampPlacement | None = None, timestamp: bool | None = None) -> None:
    from sandi.authority.identifiers import validate_nip
    from sandi.documents.pdf import require_pyhanko, sign_pdf

    if is_dash(file) or is_dash(output):
        raise UsageError(_("a signed PDF is read from and written to files, not standard input or output"))
    if classification or doc_name or any(v for v in letter.values()):
        raise UsageError(_("--class, --name and the letter options apply to detached signatures, not to "
                           "signatures inside a PDF"))
    nip = None if official is None else validate_nip(official)
    require_pyhanko()
    ws = open_workspace(obj, passphrase_file)
    code = acting_agency(obj, signer)
    target = output or file.with_name(file.stem + ".signed.pdf")
    result = sign_pdf(file, target, workspace=ws, signer_code=code, overwrite=force, stamp=stamp,
                      official=nip, placement=placement, timestamp=timestamp)
    for warning in result.warnings:
        obj.note(_("warning: {warning}").format(warning=translated(warning)))
    if result.official is not None:
        line = _("signed {file} as {name}, {title} ({code}) -> {target}").format(
            file=file.name, name=result.official.name, title=result.official.title, code=code, target=target)
    else:
        line = _("signed {file} as {code} -> {target}").format(file=file.name, code=code, target=target)
    lines = [line]
    if result.timestamp is not None:
        lines.append("  " + result.timestamp.line())
    obj.emit(dict(result.summary(), document=file.name), lines)


def _verify_pdf(obj: CliContext, file: Path) -> None:
    from sandi.documents import Workspace
    from sandi.documents.pdf import check_pdf, judge_pdf
    from sandi.errors import VerificationError
    from sandi.keystore import NoPassphrase
    from sandi.timefmt import show_time

    ws = Workspace.open(obj.home, NoPassphrase())
    obj.directory_read(ws.warnings)
    result = check_pdf(file, workspace=ws)
    try:
        judge_pdf(result, workspace=ws)
    except VerificationError:
        if obj.json_output:
            # the report says which signature failed and why; the exit code is still 4
            obj.emit(result.summary(), [])
        raise
    count = len(result.signatures)
    lines = [ngettext("{file}: {count} signature verified", "{file}: {count} signatures verified",
                      count).format(file=file.name, count=count)]
    for s in result.signatures:
        what = _("whole document") if s.coverage == "document" else _("revision {n}").format(n=s.revision)
        lines.append(_("  {field}: {code} ({name}), signed {time}, covers the {what}").format(
            field=s.field, code=s.signer, name=s.signer_name,
            time=show_time(s.signed_at) if s.signed_at else "-", what=what))
        if s.official is not None:
            lines.append(_("    signed by the official {name}, {title} (NIP {nip})").format(
                name=s.official.name, title=s.official.title, nip=s.official.nip))
        if s.timestamp is not None:
            lines.append("    " + s.timestamp.line())
    obj.emit(result.summary(), lines)


def _verify_with_key(
    obj: CliContext, file: Path, signature: Path | None, key_file: Path | None, key: str | None
) -> None:
    """``minisign -V``: the signature against a given key, nothing else. The home's journal
    records the outcome when there is a home."""
    from sandi.errors import VerificationError
    from sandi.formats.minisign import MinisignPublicKey, MinisignSignature, verify_stream

    if key_file is not None and key is not None:
        raise UsageError(_("give the public key once: -p FILE or -P KEY"))
    public = (MinisignPublicKey.from_text(key_file.read_bytes()) if key_file is not None
              else MinisignPublicKey.from_base64(str(key)))
    sig_path = signature or Path(str(file) + ".minisig")
    try:
        sig = MinisignSignature.from_text(sig_path.read_bytes())
    except FileNotFoundError:
        raise UsageError(_("no signature file {path}").format(path=sig_path),
                         hint=_("give it with --sig")) from None
    try:
        if str(file) == "-":
            comment = verify_stream(public, sig, sys.stdin.buffer)
        else:
            with open(file, "rb") as f:
                comment = verify_stream(public, sig, f)
    except VerificationError:
        _journal(obj, "verify.fail", file.name, "failed", {"key_id": public.key_id_hex, "op": "verify-key"})
        raise
    _journal(obj, "document.verify", file.name, "ok", {"key_id": public.key_id_hex, "op": "verify-key"})
    obj.emit(
        {"document": file.name, "key_id": public.key_id_hex, "trusted_comment": comment,
         "checked": "signature only"},
        [_("{name}: signature verified with key {key_id}").format(name=file.name, key_id=public.key_id_hex),
         _("trusted comment: {comment}").format(comment=comment),
         _("only the signature was checked: no certificate, validity or revocation (use 'sandi verify' "
           "without -p for those)")],
    )


def _journal(
    obj: CliContext, action: str, subject: str, outcome: Outcome, details: dict[str, JSONValue]
) -> None:
    if not obj.home.exists():
        return  # like minisign: no home, no journal to write
    from sandi.audit.events import current_operator
    from sandi.audit.journal import record_by_operator

    actor = obj.config().agency or current_operator()
    record_by_operator(obj.home.journal_path, actor, action, subject, outcome, details)


@click.command("verify", help=_(
    "Verify a detached signature: the signature, the signer's certificate chain,\n"
    "its validity at the signing time and its revocation status. A PDF without a\n"
    "FILE.minisig beside it is checked for signatures inside it (every one must pass).\n"
    "\n"
    "Exit code 4 if anything does not verify.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi verify pengumuman.pdf\n"
    "  sandi --json verify pengumuman.pdf --sig pengumuman.pdf.minisig"
))
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--sig", "signature", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help=_("Signature file [default: FILE.minisig]."))
@click.option("-p", "--public-key-file", "public_key_file",
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help=_("Check a plain minisign signature against this public key file, as 'minisign -V -p' "
                     "does (no directory, no certificate checks)."))
@click.option("-P", "--public-key", "public_key", metavar="KEY",
              help=_("Like -p, with the base64 public key itself (as 'minisign -V -P')."))
@pass_cli
def verify_cmd(obj: CliContext, file: Path, signature: Path | None, public_key_file: Path | None,
               public_key: str | None) -> None:
    from sandi.documents import Workspace, verify
    from sandi.keystore import NoPassphrase

    if public_key_file is not None or public_key is not None:
        _verify_with_key(obj, file, signature, public_key_file, public_key)
        return
    if signature is None and not is_dash(file) and not Path(str(file) + ".minisig").exists():
        from sandi.documents.pdf import is_pdf

        if is_pdf(file):
            _verify_pdf(obj, file)
            return
    # Verifying needs no private key: the key store stays locked.
    ws = Workspace.open(obj.home, NoPassphrase())
    obj.directory_read(ws.warnings)
    sig_path = signature or Path(str(file) + ".minisig")
    try:
        sig_text = sig_path.read_bytes()
    except FileNotFoundError:
        raise UsageError(_("no signature file {sig_path}").format(
            sig_path=sig_path,
        ), hint=_("give it with --sig")) from None
    src: Path | BinaryIO = sys.stdin.buffer if str(file) == "-" else file
    result = verify(src, sig_text, workspace=ws)
    summary = result.summary()
    obj.emit(summary, _human(summary, _("{file}: signature verified").format(file=file.name)))
