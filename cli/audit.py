"""``sandi audit``: read, verify, checkpoint and export the audit log."""

from __future__ import annotations

import fnmatch
import json
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sandi.errors import ConfigError, UsageError
from sandi.i18n import _, translated
from sandi.timefmt import show_time

from .context import CliContext, pass_cli
from .passphrase import passphrase_file_option

if TYPE_CHECKING:
    from sandi.audit.entry import AuditEntry
    from sandi.audit.verify import VerifyReport


def _json_flag(f: Any) -> Any:
    return click.option("--json", "json_local", is_flag=True, help=_("Machine-readable JSON output."))(f)


def _use_json(obj: CliContext, json_local: bool) -> None:
    if json_local:
        obj.json_output = True


def _is_authority(obj: CliContext) -> bool:
    return obj.config().role == "authority"


def _root_cert_pem(obj: CliContext) -> str | None:
    """The root certificate from the registry's authority row (authority homes)."""
    from sandi.registry.models import AuthorityRow

    with obj.registry().reading() as session:
        row = session.get(AuthorityRow, 1)
        return None if row is None else row.root_cert_pem


def _root_fingerprint(obj: CliContext) -> str | None:
    from sandi.registry.models import AuthorityRow

    if not _is_authority(obj):
        return obj.config().root_fingerprint
    with obj.registry().reading() as session:
        row = session.get(AuthorityRow, 1)
        return None if row is None else row.root_fingerprint


@click.group("audit", help=_(
    "Read, verify, checkpoint and export the audit log.\n"
    "\n"
    "An authority home records into its registry (and a journal file for document\n"
    "operations); a workstation records into its journal file. Entries are\n"
    "hash-chained; checkpoints sign the chain head with the root key.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi --home ./authority audit log --action 'key.*' --since 2026-01-01\n"
    "  sandi --home ./authority audit verify"
))
def audit() -> None:
    pass

# -- log ----------------------------------------------------------------------------------


def _parse_since(text: str | None) -> datetime | None:
    if text is None:
        return None
    from sandi.timefmt import parse_time

    # A date or time without an offset means the home's zone (2026-01-31: its midnight there).
    try:
        return parse_time(text).astimezone(UTC)
    except UsageError as exc:
        raise UsageError(_("--since {text!r} is not a date or time").format(text=text),
                         hint=exc.hint) from None


def _mentions(entry: AuditEntry, code: str) -> bool:
    if code in (entry.actor, entry.subject):
        return True
    return any(value == code or (isinstance(value, list) and code in value)
               for value in entry.details.values())


def _sources(obj: CliContext) -> list[tuple[str, Iterator[AuditEntry]]]:
    from sandi.audit.journal import Journal

    sources: list[tuple[str, Iterator[AuditEntry]]] = []
    if _is_authority(obj):
        from sandi.audit.registry_sink import iter_entries

        def registry_entries() -> Iterator[AuditEntry]:
            with obj.registry().reading() as session:
                yield from iter_entries(session)

        sources.append(("registry", registry_entries()))
    journal = Journal(obj.home.journal_path)
    if journal.exists():
        sources.append(("journal", journal.entries()))
    return sources


@audit.command("log", help=_(
    "Show audit entries, oldest first, with the sink each comes from.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi --home ./authority audit log --agency DISKOMINFO --limit 20\n"
    "  sandi --home ./ws audit log --action 'document.*' --json"
))
@click.option("--since", help=_("Only entries at or after this date/time (ISO 8601; no offset means "
                                 "the home's zone)."))
@click.option("--action", help=_("Only this action; a pattern with * works (e.g. 'key.*')."))
@click.option("--agency", help=_("Only entries by or about this agency code (actor, subject or details)."))
@click.option("--limit", type=click.IntRange(min=0), default=100, show_default=True,
              help=_("Show the last N matching entries of each sink (0: all)."))
@_json_flag
@pass_cli
def log_cmd(obj: CliContext, since: str | None, action: str | None, agency: str | None, limit: int,
            json_local: bool) -> None:
    _use_json(obj, json_local)
    since_dt = _parse_since(since)
    rows: list[dict[str, Any]] = []
    lines: list[str] = []
    for sink, entries in _sources(obj):
        kept: deque[AuditEntry] = deque(maxlen=limit or None)
        for entry in entries:
            if since_dt is not None and entry.datetime < since_dt:
                continue
            if action is not None and not fnmatch.fnmatchcase(entry.action, action):
                continue
            if agency is not None and not _mentions(entry, agency):
                continue
            kept.append(entry)
        for entry in kept:
            rows.append({"sink": sink, **entry.to_dict()})
            details = json.dumps(entry.details, ensure_ascii=False, sort_keys=True)
            lines.append(_("{sink:8} {seq:>7}  {time}  {outcome:6}  {action:18} {subject}  by "
                           "{actor}  {details}").format(
                sink=sink,
                seq=entry.seq,
                time=show_time(entry.datetime),
                outcome=entry.outcome,
                action=entry.action,
                subject=entry.subject,
                actor=entry.actor,
                details=details,
            ))
    obj.emit(rows, lines or [_("no matching audit entries")])


# -- verify -------------------------------------------------------------------------------


def _report_lines(name: str, report: VerifyReport) -> list[str]:
    if report.problem is not None:
        p = report.problem
        return [_("{name}: BROKEN at entry {seq} ({kind}): {message}").format(
            name=name, seq=p.seq, kind=p.kind, message=translated(p.message))]
    sig = _("signatures checked") if report.signatures_checked else _("signatures NOT checked (no key)")
    return [_("{name}: ok, {entries} entries, {checkpoints} checkpoints ({signatures}), head {seq} "
              "{hash}..., {unsigned} entries after the last checkpoint").format(
        name=name, entries=report.entries, checkpoints=report.checkpoints, signatures=sig,
        seq=report.last_seq, hash=report.head_hash[:16], unsigned=report.unsigned_tail)]


@audit.command("verify", help=_(
    "Check every link and every checkpoint signature; name the first bad entry.\n"
    "\n"
    "Exit status 0 if the log verifies, 4 if it does not (the message names the\n"
    "first bad entry and what is wrong: edited, deleted, reordered, inserted,\n"
    "truncated, or a bad checkpoint). The log must also still hold every checkpoint\n"
    "kept outside it: the home's anchor files and the checkpoint each directory\n"
    "carries (this home's and every --witness), so deleting, rewriting or cutting\n"
    "off signed history is caught even with every later hash recomputed.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi --home ./authority audit verify\n"
    "  sandi --home ./authority audit verify --witness /media/usb/bappeda-directory.json\n"
    "  sandi audit verify --file audit-2026.jsonl --root-cert root.pem"
))
@click.option("--file", "file_", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help=_("Verify an exported file instead of this home's log."))
@click.option("--root-cert", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help=_("The root certificate (PEM) whose key signed the checkpoints (needed with --file)."))
@click.option("--witness", "witness_files", multiple=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help=_("A directory file from another machine (a workstation's directory.json): the "
                     "registry log must still hold the audit checkpoint it carries. Repeatable."))
@_json_flag
@pass_cli
def verify_cmd(obj: CliContext, file_: Path | None, root_cert: Path | None,
               witness_files: tuple[Path, ...], json_local: bool) -> None:
    from sandi.audit.anchor import raise_anchor, read_anchor
    from sandi.audit.checkpoint import Witness, key_fingerprint
    from sandi.audit.export import ExportFile, read_root_cert, root_public_key
    from sandi.audit.journal import Journal
    from sandi.audit.verify import verify_chain, verify_journal
    from sandi.directory.local import audit_witnesses, directory_witness

    _use_json(obj, json_local)
    results: list[tuple[str, VerifyReport]] = []
    public_key: bytes | None = None
    if file_ is not None:
        if root_cert is None:
            raise UsageError(_("--file needs --root-cert"), hint=_("give the root certificate (root.pem) you "
                                                                "trust, not one that came with the file"))
        from sandi.errors import VerificationError

        public_key, cert_fp = read_root_cert(root_cert)
        export = ExportFile(file_)
        expected = export.header.root_fingerprint
        if expected is not None and expected not in (cert_fp, key_fingerprint(public_key)):
            raise VerificationError(
                _("{file} was exported by another authority (root {expected}...)").format(
                    file=file_,
                    expected=expected[:16],
                ),
                hint=_("use the root certificate of the authority that exported it"),
            )
        if witness_files and export.header.chain != "registry":
            raise UsageError(_("--witness applies to the registry chain; {file} holds a journal")
                             .format(file=file_))
        file_witnesses = [directory_witness(w, key_fingerprint(public_key)) for w in witness_files]
        results.append((f"{file_.name} ({export.header.chain})",
                        verify_chain(export.entries(), export.checkpoints(), public_key,
                                     witnesses=file_witnesses)))
        _emit_reports(obj, results)
        return
    if root_cert is not None:
        public_key = read_root_cert(root_cert)[0]
    home = obj.home
    authority = _is_authority(obj)
    if witness_files and not authority:
        raise UsageError(_("--witness checks the registry's log: run it on the authority, "
                           "or with --file and an export of the registry"))
    anchored: list[tuple[str, Path, VerifyReport]] = []
    trusted: list[bytes] | None = None
    if authority:
        from sandi.audit.verify import verify_registry
        from sandi.directory.local import trusted_fingerprint

        if public_key is None:
            from sandi.authority.rollover import previous_root_public_keys

            pem = _root_cert_pem(obj)
            public_key = root_public_key(pem)[0] if pem else None
            # Checkpoints signed before a root rollover stay valid (ADR 0012).
            trusted = None if public_key is None else [public_key, *previous_root_public_keys(home)]
        witnesses: list[Witness] = [w for w in [read_anchor(home.registry_audit_anchor_path, "registry")]
                                    if w is not None]
        witnesses += audit_witnesses(home)
        witnesses += [directory_witness(w, trusted_fingerprint(home)) for w in witness_files]
        with obj.registry().reading() as session:
            report = verify_registry(session, trusted if trusted is not None else public_key,
                                     witnesses=witnesses)
        results.append(("registry", report))
        anchored.append(("registry", home.registry_audit_anchor_path, report))
    journal = Journal(home.journal_path)
    journal_anchor = read_anchor(home.journal_audit_anchor_path, "journal")
    if journal.exists() or journal_anchor is not None or not results:
        keys = (trusted if trusted is not None else public_key) if authority \
            else _workstation_checkpoint_keys(obj)
        report = verify_journal(journal, keys, witnesses=[journal_anchor] if journal_anchor else [])
        results.append(("journal", report))
        anchored.append(("journal", home.journal_audit_anchor_path, report))
    _emit_reports(obj, results)
    # Everything verified: remember the highest signed checkpoint seen (ADR 0010).
    for chain, path, report in anchored:
        if report.signatures_checked and report.last_checkpoint is not None:
            raise_anchor(path, "registry" if chain == "registry" else "journal", report.last_checkpoint)


def _emit_reports(obj: CliContext, results: list[tuple[str, VerifyReport]]) -> None:
    obj.emit({name: report.to_dict() for name, report in results},
             [line for name, report in results for line in _report_lines(name, report)])
    for _unused, report in results:
        report.raise_for_problem()


# -- checkpoint ---------------------------------------------------------------------------


@audit.command("checkpoint", help=_(
    "Sign the current head of the audit log: with the root key on the authority,\n"
    "with the agency's signing key on a workstation.\n"
    "\n"
    "Checkpoints the registry chain and, if it has entries, the home's journal.\n"
    "After a checkpoint, no entry up to it can be changed or removed without\n"
    "'audit verify' noticing, even by someone who can write the database.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi --home ./authority audit checkpoint --passphrase-file pass.txt"
))
@passphrase_file_option
@_json_flag
@pass_cli
def checkpoint_cmd(obj: CliContext, passphrase_file: Path | None, json_local: bool) -> None:
    from sandi.audit.anchor import raise_anchor
    from sandi.audit.journal import Journal
    from sandi.audit.registry_sink import checkpoint_in_session, read_head
    from sandi.authority.root import load_root_signer

    _use_json(obj, json_local)
    if not _is_authority(obj):
        _checkpoint_workstation(obj, passphrase_file)
        return
    home = obj.home
    registry = obj.registry()
    signer = load_root_signer(home, obj.keystore(passphrase_file))
    made: dict[str, Any] = {}
    with registry.transaction() as session:
        head = read_head(session)
        registry_cp = checkpoint_in_session(session, signer) if head is not None and head[0] > 0 else None
    if registry_cp is not None:  # committed: now it may anchor
        raise_anchor(home.registry_audit_anchor_path, "registry", registry_cp)
        made["registry"] = registry_cp.to_dict()
    journal = Journal(home.journal_path)
    if journal.exists() and journal.head()[0] > 0:
        cp = journal.checkpoint(signer)
        assert cp is not None
        raise_anchor(home.journal_audit_anchor_path, "journal", cp)
        made["journal"] = cp.to_dict()
    if not made:
        obj.emit(made, _("the audit log is empty: nothing to checkpoint"))
        return
    obj.emit(made, [_("{sink}: checkpoint at entry {seq} ({hash}...)").format(
        sink=sink, seq=cp["seq"], hash=cp["head_hash"][:16]) for sink, cp in made.items()])


def _checkpoint_workstation(obj: CliContext, passphrase_file: Path | None) -> None:
    """A workstation signs its journal's head with its agency's current signing key."""
    from sandi.audit.anchor import raise_anchor
    from sandi.audit.journal import Journal
    from sandi.documents import Workspace

    code = obj.config().agency
    if not code:
        raise ConfigError(_("this home names no agency"), hint=_("create it with 'sandi init --agency CODE "
                                                              "...'"))
    journal = Journal(obj.home.journal_path)
    if not journal.exists() or journal.head()[0] == 0:
        obj.emit({}, _("the audit log is empty: nothing to checkpoint"))
        return
    ws = Workspace.open(obj.home, obj.store_passphrase(passphrase_file), pin=obj.token_pin())
    obj.opened(ws.keystore)
    obj.directory_read(ws.warnings)
    signer, _unused = ws.signing_key(code)
    cp = journal.checkpoint(signer)
    assert cp is not None
    raise_anchor(obj.home.journal_audit_anchor_path, "journal", cp)
    made = {"journal": cp.to_dict()}
    obj.emit(made, _("journal: checkpoint at entry {seq} ({head_hash}...) signed by {code}").format(
        seq=cp.seq,
        head_hash=cp.head_hash[:16],
        code=code,
    ))


def _workstation_checkpoint_keys(obj: CliContext) -> list[bytes] | None:
    """The keys that may sign a workstation's journal checkpoints: its agency's signing
    keys in the directory (over rotations), never one revoked for key compromise."""
    from sandi.authority.validity import VOIDS_ALL_SIGNATURES
    from sandi.directory.local import installed_snapshot
    from sandi.errors import NotFoundError

    code = obj.config().agency
    if code is None:
        return None
    try:
        certs = list(installed_snapshot(obj.home).certs_of(code, "signing"))
    except NotFoundError:
        return None
    return [
        c.public_key_bytes() for c in certs
        if c.revocation is None or c.revocation.reason not in VOIDS_ALL_SIGNATURES
    ]


# -- export -------------------------------------------------------------------------------


@audit.command("export", help=_(
    "Write the entries and checkpoints of one chain to FILE (never overwrites).\n"
    "\n"
    "The file verifies anywhere with the root certificate:\n"
    "'sandi audit verify --file FILE --root-cert root.pem'.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi --home ./authority audit export audit-2026.jsonl\n"
    "  sandi audit verify --file audit-2026.jsonl --root-cert ./authority/root.pem"
))
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--sink", type=click.Choice(["registry", "journal"]),
              help=_("Which chain to export [default: registry on an authority, journal on a workstation]."))
@_json_flag
@pass_cli
def export_cmd(obj: CliContext, file: Path, sink: str | None, json_local: bool) -> None:
    from sandi.audit.export import write_export
    from sandi.audit.journal import Journal

    _use_json(obj, json_local)
    authority = _is_authority(obj)
    chain = sink or ("registry" if authority else "journal")
    root_fp = _root_fingerprint(obj)
    if chain == "registry":
        if not authority:
            raise ConfigError(_("a workstation has no registry; export its journal (--sink journal)"))
        from sandi.audit.registry_sink import iter_entries, read_checkpoints

        with obj.registry().reading() as session:
            count = write_export(file, chain=chain, entries=iter_entries(session),
                                 checkpoints=read_checkpoints(session), root_fingerprint=root_fp,
                                 signer=root_fp)
    else:
        journal = Journal(obj.home.journal_path)
        count = write_export(file, chain=chain, entries=journal.entries(),
                             checkpoints=journal.checkpoints(), root_fingerprint=root_fp,
                             signer=root_fp if authority else None)
    obj.emit({"file": str(file), "chain": chain, "entries": count},
             _("exported {count} {chain} entries to {file}").format(count=count, chain=chain, file=file))
