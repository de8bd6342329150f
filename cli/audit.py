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

from .context import CliContext, pass_cli
from .passphrase import passphrase_file_option

if TYPE_CHECKING:
    from sandi.audit.entry import AuditEntry
    from sandi.audit.verify import VerifyReport


def _json_flag(f: Any) -> Any:
    return click.option("--json", "json_local", is_flag=True, help="Machine-readable JSON output.")(f)


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


@click.group("audit")
def audit() -> None:
    """Read, verify, checkpoint and export the audit log.

    An authority home records into its registry (and a journal file for document
    operations); a workstation records into its journal file. Entries are
    hash-chained; checkpoints sign the chain head with the root key.

    \b
    Example:
      sandi --home ./authority audit log --action 'key.*' --since 2026-01-01
      sandi --home ./authority audit verify
    """


# -- log ----------------------------------------------------------------------------------


def _parse_since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {text!r} is not a date or time",
                         hint="use ISO 8601, e.g. 2026-01-31 or 2026-01-31T08:00:00+07:00") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


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


@audit.command("log")
@click.option("--since", help="Only entries at or after this date/time (ISO 8601; UTC if no zone).")
@click.option("--action", help="Only this action; a pattern with * works (e.g. 'key.*').")
@click.option("--agency", help="Only entries by or about this agency code (actor, subject or details).")
@click.option("--limit", type=click.IntRange(min=0), default=100, show_default=True,
              help="Show the last N matching entries of each sink (0: all).")
@_json_flag
@pass_cli
def log_cmd(obj: CliContext, since: str | None, action: str | None, agency: str | None, limit: int,
            json_local: bool) -> None:
    """Show audit entries, oldest first, with the sink each comes from.

    \b
    Example:
      sandi --home ./authority audit log --agency DISKOMINFO --limit 20
      sandi --home ./ws audit log --action 'document.*' --json
    """
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
            lines.append(f"{sink:8} {entry.seq:>7}  {entry.time}  {entry.outcome:6}  {entry.action:18} "
                         f"{entry.subject}  by {entry.actor}  {details}")
    obj.emit(rows, lines or ["no matching audit entries"])


# -- verify -------------------------------------------------------------------------------


def _report_lines(name: str, report: VerifyReport) -> list[str]:
    if report.problem is not None:
        p = report.problem
        return [f"{name}: BROKEN at entry {p.seq} ({p.kind}): {p.message}"]
    sig = "signatures checked" if report.signatures_checked else "signatures NOT checked (no key)"
    return [f"{name}: ok, {report.entries} entries, {report.checkpoints} checkpoints ({sig}), "
            f"head {report.last_seq} {report.head_hash[:16]}..., "
            f"{report.unsigned_tail} entries after the last checkpoint"]


@audit.command("verify")
@click.option("--file", "file_", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Verify an exported file instead of this home's log.")
@click.option("--root-cert", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The root certificate (PEM) whose key signed the checkpoints (needed with --file).")
@_json_flag
@pass_cli
def verify_cmd(obj: CliContext, file_: Path | None, root_cert: Path | None, json_local: bool) -> None:
    """Check every link and every checkpoint signature; name the first bad entry.

    Exit status 0 if the log verifies, 4 if it does not (the message names the
    first bad entry and what is wrong: edited, deleted, reordered, inserted,
    truncated, or a bad checkpoint).

    \b
    Example:
      sandi --home ./authority audit verify
      sandi audit verify --file audit-2026.jsonl --root-cert root.pem
    """
    from sandi.audit.export import ExportFile, read_root_cert, root_public_key
    from sandi.audit.journal import Journal
    from sandi.audit.verify import verify_chain, verify_journal

    _use_json(obj, json_local)
    results: list[tuple[str, VerifyReport]] = []
    public_key: bytes | None = None
    if file_ is not None:
        if root_cert is None:
            raise UsageError("--file needs --root-cert", hint="give the root certificate (root.pem) "
                             "you trust, not one that came with the file")
        from sandi.audit.checkpoint import key_fingerprint
        from sandi.errors import VerificationError

        public_key, cert_fp = read_root_cert(root_cert)
        export = ExportFile(file_)
        expected = export.header.root_fingerprint
        if expected is not None and expected not in (cert_fp, key_fingerprint(public_key)):
            raise VerificationError(
                f"{file_} was exported by another authority (root {expected[:16]}...)",
                hint="use the root certificate of the authority that exported it",
            )
        results.append((f"{file_.name} ({export.header.chain})",
                        verify_chain(export.entries(), export.checkpoints(), public_key)))
    else:
        if root_cert is not None:
            public_key = read_root_cert(root_cert)[0]
        if _is_authority(obj):
            from sandi.audit.verify import verify_registry

            if public_key is None:
                pem = _root_cert_pem(obj)
                public_key = root_public_key(pem)[0] if pem else None
            with obj.registry().reading() as session:
                results.append(("registry", verify_registry(session, public_key)))
        journal = Journal(obj.home.journal_path)
        if journal.exists() or not results:
            keys = public_key if _is_authority(obj) else _workstation_checkpoint_keys(obj)
            results.append(("journal", verify_journal(journal, keys)))
    obj.emit({name: report.to_dict() for name, report in results},
             [line for name, report in results for line in _report_lines(name, report)])
    for _, report in results:
        report.raise_for_problem()


# -- checkpoint ---------------------------------------------------------------------------


@audit.command("checkpoint")
@passphrase_file_option
@_json_flag
@pass_cli
def checkpoint_cmd(obj: CliContext, passphrase_file: Path | None, json_local: bool) -> None:
    """Sign the current head of the audit log: with the root key on the authority,
    with the agency's signing key on a workstation.

    Checkpoints the registry chain and, if it has entries, the home's journal.
    After a checkpoint, no entry up to it can be changed or removed without
    'audit verify' noticing, even by someone who can write the database.

    \b
    Example:
      sandi --home ./authority audit checkpoint --passphrase-file pass.txt
    """
    from sandi.audit.journal import Journal
    from sandi.audit.registry_sink import checkpoint_in_session, read_head
    from sandi.authority.root import load_root_signer
    from sandi.keystore import open_keystore

    _use_json(obj, json_local)
    if not _is_authority(obj):
        _checkpoint_workstation(obj, passphrase_file)
        return
    home = obj.home
    registry = obj.registry()
    signer = load_root_signer(home, open_keystore(home, obj.store_passphrase(passphrase_file)))
    made: dict[str, Any] = {}
    with registry.transaction() as session:
        head = read_head(session)
        if head is not None and head[0] > 0:
            cp = checkpoint_in_session(session, signer)
            assert cp is not None
            made["registry"] = cp.to_dict()
    journal = Journal(home.journal_path)
    if journal.exists() and journal.head()[0] > 0:
        cp = journal.checkpoint(signer)
        assert cp is not None
        made["journal"] = cp.to_dict()
    if not made:
        obj.emit(made, "the audit log is empty: nothing to checkpoint")
        return
    obj.emit(made, [f"{sink}: checkpoint at entry {cp['seq']} ({cp['head_hash'][:16]}...)"
                    for sink, cp in made.items()])


def _checkpoint_workstation(obj: CliContext, passphrase_file: Path | None) -> None:
    """A workstation signs its journal's head with its agency's current signing key."""
    from sandi.audit.journal import Journal
    from sandi.documents import Workspace

    code = obj.config().agency
    if not code:
        raise ConfigError("this home names no agency", hint="create it with 'sandi init --agency CODE ...'")
    journal = Journal(obj.home.journal_path)
    if not journal.exists() or journal.head()[0] == 0:
        obj.emit({}, "the audit log is empty: nothing to checkpoint")
        return
    signer, _ = Workspace.open(obj.home, obj.store_passphrase(passphrase_file)).signing_key(code)
    cp = journal.checkpoint(signer)
    assert cp is not None
    made = {"journal": cp.to_dict()}
    obj.emit(made, f"journal: checkpoint at entry {cp.seq} ({cp.head_hash[:16]}...) signed by {code}")


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


@audit.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--sink", type=click.Choice(["registry", "journal"]),
              help="Which chain to export [default: registry on an authority, journal on a workstation].")
@_json_flag
@pass_cli
def export_cmd(obj: CliContext, file: Path, sink: str | None, json_local: bool) -> None:
    """Write the entries and checkpoints of one chain to FILE (never overwrites).

    The file verifies anywhere with the root certificate:
    'sandi audit verify --file FILE --root-cert root.pem'.

    \b
    Example:
      sandi --home ./authority audit export audit-2026.jsonl
      sandi audit verify --file audit-2026.jsonl --root-cert ./authority/root.pem
    """
    from sandi.audit.export import write_export
    from sandi.audit.journal import Journal

    _use_json(obj, json_local)
    authority = _is_authority(obj)
    chain = sink or ("registry" if authority else "journal")
    root_fp = _root_fingerprint(obj)
    if chain == "registry":
        if not authority:
            raise ConfigError("a workstation has no registry; export its journal (--sink journal)")
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
             f"exported {count} {chain} entries to {file}")
