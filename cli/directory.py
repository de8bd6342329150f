"""``sandi directory``: publish (authority), import and show (everyone)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from sandi.errors import EXIT_NOT_REPUBLISHED, AlreadyExistsError, NotFoundError, SandiError
from sandi.i18n import _
from sandi.timefmt import iso_time, show_time

from .context import CliContext, pass_cli, state_word
from .passphrase import passphrase_file_option


@click.group("directory", help=_(
    "The signed directory: root certificate, agency certificates, CRL, policies.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi directory publish -o directory.json         # authority\n"
    "  sandi directory import directory.json             # workstation\n"
    "  sandi directory show"
))
def directory() -> None:
    pass

def republish_home(obj: CliContext, passphrase_file: Path | None, *, output: Path | None = None,
                   overwrite: bool = False,
                   days: int | None = None, rebuild: bool = False) -> Any:
    """Sign and publish the next directory of an authority home (used after every change)."""
    from sandi.authority.issuance import load_issuer
    from sandi.authority.pdfroot import pdf_issuer_if_any
    from sandi.directory.publish import republish
    keystore = obj.keystore(passphrase_file)
    issuer = load_issuer(obj.home, keystore)
    registry = obj.registry()
    return republish(obj.home, registry, issuer, output=output, overwrite_output=overwrite,
                     pdf_issuer=pdf_issuer_if_any(obj.home, registry, keystore),
                     validity=None if days is None else timedelta(days=days), rebuild=rebuild)


class NotRepublished(SandiError):
    """A committed change whose directory republish failed (exit code 5)."""

    exit_code = EXIT_NOT_REPUBLISHED


def republish_or_warn(obj: CliContext) -> None:
    """Publish the next directory after a change. If that fails, the change itself is
    committed and audited and only the derived, signed directory is behind: the error
    says so, names the fix, and exits 5 (not 0: a script must notice, not 1: nothing
    was lost)."""
    try:
        snapshot = republish_home(obj, None)  # unlocks the store as the command did
    except SandiError as exc:
        # The change is committed: say so, and exit with a code of its own (5) so that a
        # script notices that the agencies will not see it until a directory is published.
        raise NotRepublished(
            _("the change is saved, but the directory was not republished: {exc}").format(exc=exc),
            hint=_("run 'sandi directory publish' (it needs the key store passphrase)"),
        ) from None
    obj.note(_("directory version {version} published").format(version=snapshot.version))


@directory.command("publish", help=_(
    "Sign and publish a new directory snapshot (authority).\n"
    "\n"
    "The home's own directory is updated too; every change the authority makes\n"
    "republishes it automatically, so this is mostly for writing a copy with -o.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi directory publish -o /media/usb/directory.json"
))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help=_("Also write the snapshot here (to hand to the agencies)."))
@click.option("--days", type=click.IntRange(1, 366), help=_("Validity in days [default: the home's, 7]."))
@click.option("--force", is_flag=True, help=_("Replace the -o file if it exists."))
@click.option("--rebuild", is_flag=True,
              help=_("Recompute every agency's published entry from the registry (after a restore, "
                     "or a change made to the database outside sandi)."))
@passphrase_file_option
@pass_cli
def publish_cmd(obj: CliContext, output: Path | None, days: int | None, force: bool, rebuild: bool,
                passphrase_file: Path | None) -> None:
    from sandi.directory.archive import FILE_NAME as ARCHIVE_NAME
    from sandi.directory.archive import replaceable_companion

    # The archive of retired certificates goes beside -o (ADR 0019); an earlier archive
    # there is replaced (publishing into the same outbox again), any other file is not.
    companion = None if output is None else output.with_name(ARCHIVE_NAME)
    refused = [] if output is None or not output.exists() else [output]
    if companion is not None and not replaceable_companion(companion):
        refused.append(companion)
    for path in refused:
        if not force:
            # Refused before anything is published: one rule for every file sandi writes.
            raise AlreadyExistsError(_("{path} exists already").format(path=path),
                                     hint=_("choose another name, or add --force to replace it"))
    snapshot = republish_home(obj, passphrase_file, output=output, days=days, overwrite=force,
                              rebuild=rebuild)
    written = [_("written to {output}").format(output=output)] if output else []
    if companion is not None and snapshot.archive_head is not None:
        written.append(_("written to {output}").format(output=companion))
    obj.emit(_describe(snapshot), _lines(snapshot) + written)


@directory.command("delta", help=_(
    "Write the newest directory as a delta from an earlier version (authority).\n"
    "\n"
    "A workstation holding version N imports the delta instead of the whole\n"
    "directory: only the agencies, policies and CRL that changed, with the new\n"
    "signed header. A workstation on another version needs the full directory.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi directory delta --from 41 -o /media/usb/directory-delta.json"
))
@click.option("--from", "base", type=click.IntRange(1), required=True,
              help=_("The version the workstations hold."))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help=_("Write the delta here."))
@click.option("--force", is_flag=True, help=_("Replace the -o file if it exists."))
@pass_cli
def delta_cmd(obj: CliContext, base: int, output: Path, force: bool) -> None:
    from sandi.directory.publish import delta_since
    from sandi.fsutil import atomic_write

    if output.exists() and not force:
        raise AlreadyExistsError(_("{path} exists already").format(path=output),
                                 hint=_("choose another name, or add --force to replace it"))
    with obj.registry().reading() as session:
        data = delta_since(session, base)
    if data is None:
        raise NotFoundError(
            _("no delta from version {base}: it is not an earlier published version 2 directory").format(
                base=base),
            hint=_("hand the workstations the full directory ('sandi directory publish -o FILE')"))
    atomic_write(output, data, mode=0o644, overwrite=force)
    obj.emit({"base": base, "bytes": len(data), "output": str(output)},
             _("delta from version {base} written to {output} ({size} bytes)").format(
                 base=base, output=output, size=len(data)))


@directory.command("import", help=_(
    "Install a directory snapshot the authority published, a delta from the\n"
    "installed one ('sandi directory delta'), or the archive of retired\n"
    "certificates (directory-archive.json) of the installed directory.\n"
    "\n"
    "Refused unless the authority's root key signed it, its version is not older\n"
    "than the installed one (no rollback) and it has not expired. A delta applies\n"
    "only to the version it starts from, and only if the result is what the\n"
    "authority signed; otherwise import the full directory.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi directory import /media/usb/directory.json"
))
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@pass_cli
def import_cmd(obj: CliContext, file: Path) -> None:
    from sandi.audit.events import AuditEvent
    from sandi.audit.journal import Journal
    from sandi.directory.archive import is_archive_bytes
    from sandi.directory.delta import apply_delta, is_delta
    from sandi.directory.local import import_archive, installed_snapshot
    from sandi.directory.snapshot import read_envelope_file

    home = obj.home
    actor = obj.config().agency or "authority"
    try:
        data = read_envelope_file(file)
        if is_archive_bytes(data):
            archive = import_archive(home, data)
            snapshot = installed_snapshot(home)
            Journal(home.journal_path).append(AuditEvent(
                actor=actor, action="directory.import_archive", subject=f"v{snapshot.version}",
                details={"version": snapshot.version, "certificates": archive.head.count}))
            obj.emit({"archive": {"version": snapshot.version, "certificates": archive.head.count}},
                     _("archive of retired certificates installed: {count} certificates (directory "
                       "version {version})").format(count=archive.head.count, version=snapshot.version))
            return
        if is_delta(data):
            apply_delta(home, data)
            snapshot = installed_snapshot(home)
        else:
            from sandi.directory.local import import_envelope

            snapshot = import_envelope(home, data)
    except Exception as exc:
        Journal(home.journal_path).append(AuditEvent(
            actor=actor, action="directory.import", subject=file.name, outcome="failed",
            details={"reason": type(exc).__name__}))
        raise
    Journal(home.journal_path).append(AuditEvent(
        actor=actor, action="directory.import", subject=f"v{snapshot.version}",
        details={"version": snapshot.version, "sha256": snapshot.body_sha256}))
    obj.directory_read(snapshot.notices)
    obj.emit(_describe(snapshot), [_("installed:"), *_lines(snapshot)])


@directory.command("fetch", help=_(
    "Fetch the newest directory from the authority's server and install it.\n"
    "\n"
    "Checked exactly as 'directory import' checks a file: the root's signature, the\n"
    "expiry, no rollback. An unchanged directory costs one short answer.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi directory fetch\n"
    "  sandi directory fetch --server https://pki.bantenprov.go.id/sandi"
))
@click.option("--server", "server", metavar="URL",
              help=_("The authority's base URL [default: the home's, from 'init --server']."))
@pass_cli
def fetch_cmd(obj: CliContext, server: str | None) -> None:
    from sandi.authority.certs import check_base_url
    from sandi.directory.online import fetch_directory, server_url
    from sandi.errors import UsageError

    home = obj.home
    base = check_base_url(server) if server else server_url(home)
    if base is None:
        raise UsageError(_("this home names no server"),
                         hint=_("give --server URL, or set server_url in sandi.toml"))
    fetched = fetch_directory(home, base)
    data = _describe(fetched.snapshot)
    data["changed"] = fetched.changed
    obj.directory_read(fetched.snapshot.notices)
    head = _("installed:") if fetched.changed else _("the installed directory is current:")
    obj.emit(data, [head, *_lines(fetched.snapshot)])


@directory.command("show", help=_(
    "Show the installed directory: version, expiry, agencies and their keys.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi directory show\n"
    "  sandi --json directory show"
))
@pass_cli
def show_cmd(obj: CliContext) -> None:
    from sandi.directory.local import installed_snapshot

    snapshot = installed_snapshot(obj.home)
    warning = snapshot.expiry_warning(datetime.now(UTC))
    if warning:
        snapshot.notices.append(warning)
    obj.directory_read(snapshot.notices)
    data = _describe(snapshot)
    data["agencies"] = [
        {"code": a.code, "name": a.name, "kind": a.kind, "status": a.status,
         "certificates": [{"serial": c.serial, "purpose": c.purpose, "state": c.state,
                           "not_after": iso_time(c.not_after),
                           "revoked": None if c.revocation is None else c.revocation.reason}
                          for c in a.certificates]}
        for a in snapshot.agencies
    ]
    data["timestamp_authorities"] = [
        {"serial": t.serial, "not_after": iso_time(t.not_after),
         "revoked": None if t.revocation is None else t.revocation.reason}
        for t in snapshot.timestamp_authorities
    ]
    lines = _lines(snapshot)
    for t in snapshot.timestamp_authorities:
        lines.append(_("  time-stamp authority {serial} until {until}{revoked}").format(
            serial=t.serial, until=show_time(t.not_after),
            revoked="" if t.revocation is None else _(", revoked ({reason})").format(
                reason=t.revocation.reason)))
    for a in snapshot.agencies:
        current = [c for c in a.certificates if c.state == "current" and c.revocation is None]
        revoked = [c for c in a.certificates if c.revocation is not None]
        keys = _("{count} current key(s)").format(count=len(current))
        if revoked:
            keys += _(", {count} revoked").format(count=len(revoked))
        lines.append(f"  {a.code:<14} {state_word(a.status):<9} {keys}  {a.name}")
    obj.emit(data, lines)


def _describe(snapshot: Any) -> dict[str, Any]:
    return {
        "version": snapshot.version,
        "province": snapshot.province,
        "issued_at": iso_time(snapshot.issued_at),
        "expires_at": iso_time(snapshot.expires_at),
        "root_fingerprint": snapshot.root_fingerprint,
        "agency_count": len(snapshot.agencies),
        "policies": [f"{p.policy_id} v{p.version}" for p in snapshot.policies],
    }


def _lines(snapshot: Any) -> list[str]:
    d = _describe(snapshot)
    return [
        _("directory version {version} of {province}").format(version=d["version"], province=d["province"]),
        _("  issued {issued}, expires {expires}").format(issued=show_time(snapshot.issued_at),
                                                         expires=show_time(snapshot.expires_at)),
        _("  root fingerprint {fingerprint}").format(fingerprint=d["root_fingerprint"]),
        _("  {count} agencies; policies: {policies}").format(
            count=d["agency_count"], policies=", ".join(d["policies"]) or _("none")),
    ]
