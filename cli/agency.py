"""``sandi agency``: register and manage the agencies (authority homes)."""

from __future__ import annotations

from pathlib import Path

import click

from sandi.i18n import _, ngettext

from .confirm import confirm_change, yes_option
from .context import CliContext, pass_cli, purpose_width, state_word
from .passphrase import passphrase_file_option
from .policyfiles import POLICY_FILE


def _json_flag(obj: CliContext, json_output: bool) -> None:
    if json_output:
        obj.json_output = True


@click.group("agency", help=_(
    "Register and manage agencies (Perangkat Daerah).\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi agency add BAPPEDA --name \"Badan Perencanaan Pembangunan Daerah\"\n"
    "  sandi agency add --from-policy banten\n"
    "  sandi agency list"
))
def agency() -> None:
    pass

@agency.command("add", help=_(
    "Register an agency, or every entity of a policy file.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi agency add DISKOMINFO --name \"Dinas Komunikasi, Informatika, Statistik dan Persandian\"\n"
    "  sandi agency add BIRO-HUKUM --name \"Biro Hukum\" --parent SETDA\n"
    "  sandi agency add --from-policy banten"
))
@click.argument("code", required=False)
@click.option("--name", help=_("The agency's full name."))
@click.option(
    "--kind",
    type=click.Choice(["agency", "leader", "regency", "city", "central"]),
    default="agency",
    show_default=True,
    help=_("What kind of entity it is."),
)
@click.option("--parent", help=_("The code of the entity it belongs to (registered already)."))
@click.option(
    "--from-policy",
    "policy_file",
    type=POLICY_FILE,
    help=_("Register every entity this policy file names (known codes are skipped)."),
)
@click.option("--json", "json_output", is_flag=True, help=_("Machine-readable JSON output."))
@passphrase_file_option
@pass_cli
def add_cmd(
    obj: CliContext,
    code: str | None,
    name: str | None,
    kind: str,
    parent: str | None,
    policy_file: Path | None,
    json_output: bool,
    passphrase_file: Path | None,
) -> None:
    from sandi.authority.agencies import add_agency, add_from_policy

    _json_flag(obj, json_output)
    obj.store_passphrase(passphrase_file)  # for the directory republish afterwards
    registry = obj.registry()
    if policy_file is not None:
        if code or name or parent:
            raise click.UsageError(_("--from-policy takes no CODE, --name or --parent"))
        result = add_from_policy(registry, policy_file)
        for skipped in result.skipped:
            obj.note(_("note: {skipped} is registered already; skipped").format(skipped=skipped))
        obj.emit(
            {"added": result.added, "skipped": result.skipped},
            [
                ngettext("registered {count} agency from {file}", "registered {count} agencies from {file}",
                         len(result.added)).format(count=len(result.added), file=policy_file)
                + (_(" ({count} known already)").format(count=len(result.skipped)) if result.skipped else "")
            ],
        )
        return
    if not code or not name:
        raise click.UsageError(_("give CODE and --name (or --from-policy FILE)"))
    info = add_agency(registry, code, name, kind=kind, parent=parent)
    obj.emit(info.to_json(), _("registered {code} ({name})").format(code=info.code, name=info.name))


@agency.command("list", help=_(
    "List the registered agencies.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi agency list --json"
))
@click.option("--json", "json_output", is_flag=True, help=_("Machine-readable JSON output."))
@pass_cli
def list_cmd(obj: CliContext, json_output: bool) -> None:
    from sandi.authority.agencies import list_agencies

    _json_flag(obj, json_output)
    agencies = list_agencies(obj.registry())
    lines = [f"{a.code:<16} {state_word(a.status):<10} {a.kind:<8} {a.name}" for a in agencies] or [
        _("no agencies yet")]
    obj.emit([a.to_json() for a in agencies], lines)


@agency.command("show", help=_(
    "Show one agency and its certificates.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi agency show BAPPEDA"
))
@click.argument("code")
@click.option("--json", "json_output", is_flag=True, help=_("Machine-readable JSON output."))
@pass_cli
def show_cmd(obj: CliContext, code: str, json_output: bool) -> None:
    from datetime import UTC, datetime

    from sandi.authority.agencies import get_agency
    from sandi.authority.records import list_certificates

    _json_flag(obj, json_output)
    registry = obj.registry()
    info = get_agency(registry, code)
    certs = list_certificates(registry, code)
    now = datetime.now(UTC)
    data = info.to_json() | {"certificates": [c.to_json(now) for c in certs]}
    lines = [
        _("code:    {code}").format(code=info.code),
        _("name:    {name}").format(name=info.name),
        _("kind:    {kind}").format(kind=info.kind),
        _("parent:  {parent}").format(parent=info.parent or "-"),
        _("status:  {status}").format(status=state_word(info.status)),
        _("certificates: {count}").format(count=len(certs)),
    ]
    lines += [f"  {state_word(c.purpose):<{purpose_width()}} {c.serial}  {state_word(c.status(now).value)}"
              + ("" if c.official is None else "  " + _("official {nip}").format(nip=c.official))
              for c in certs]
    obj.emit(data, lines)


@agency.command("suspend", help=_(
    "Suspend an agency: no new certificates, and the directory marks it suspended.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi agency suspend DISPAR --reason \"merged into DISPORA\""
))
@click.argument("code")
@click.option("--reason", required=True, help=_("Why (recorded in the audit log)."))
@yes_option
@passphrase_file_option
@pass_cli
def suspend_cmd(
    obj: CliContext, code: str, reason: str, assume_yes: bool, passphrase_file: Path | None
) -> None:
    from sandi.authority.agencies import get_agency, suspend_agency

    obj.store_passphrase(passphrase_file)  # for the directory republish afterwards
    registry = obj.registry()
    known = get_agency(registry, code)  # an unknown code fails here, before the question
    confirm_change(
        [_("Suspend {code} ({name}): no new certificates; the directory marks it suspended, so "
           "no one seals to it or accepts its new signatures until 'sandi agency resume {code}'.").format(
            code=known.code, name=known.name)],
        _("Suspend the agency?"),
        assume_yes=assume_yes,
    )
    info = suspend_agency(registry, code, reason)
    obj.emit(info.to_json(), _("suspended {code}").format(code=info.code))


@agency.command("resume", help=_(
    "Resume a suspended agency.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi agency resume DISPAR"
))
@click.argument("code")
@passphrase_file_option
@pass_cli
def resume_cmd(obj: CliContext, code: str, passphrase_file: Path | None) -> None:
    from sandi.authority.agencies import resume_agency

    obj.store_passphrase(passphrase_file)  # for the directory republish afterwards
    info = resume_agency(obj.registry(), code)
    obj.emit(info.to_json(), _("resumed {code}").format(code=info.code))


@agency.command("token", help=_(
    "Make a one-time token with which the agency's workstation enrols online.\n"
    "\n"
    "Give the token to the agency by a channel you trust (in person, by phone); its\n"
    "workstation runs 'sandi keys request CODE --server URL --token TOKEN'. The token is\n"
    "shown once and kept only as a hash; it expires and works for one request.\n"
    "With --official NIP it enrols only that official's personal keys ('sandi official\n"
    "request'), with --purpose pdf-signing only the agency's PDF signing key.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi agency token BAPPEDA --hours 4\n"
    "  sandi agency token SETDA --official 196801011990031001\n"
    "  sandi agency token BAPPEDA --purpose pdf-signing"
))
@click.argument("code")
@click.option("--official", "official_nip", metavar="NIP",
              help=_("The token enrols this official's personal keys, nothing else."))
@click.option("--purpose", type=click.Choice(["pdf-signing"]), default=None,
              help=_("The token enrols the agency's PDF signing key, nothing else."))
@click.option("--hours", type=click.IntRange(1, 720), default=24, show_default=True,
              help=_("How long the token is valid."))
@click.option("--auto-approve", is_flag=True,
              help=_("'sandi keys certify --pending' certifies this token's request without asking."))
@pass_cli
def token_cmd(obj: CliContext, code: str, hours: int, auto_approve: bool, official_nip: str | None,
              purpose: str | None) -> None:
    from datetime import timedelta

    from sandi.authority.online import AGENCY_KEYS, OFFICIAL_KEYS, PDF_SIGNING_KEY, create_token
    from sandi.timefmt import iso_time, show_time

    if official_nip is not None and purpose is not None:
        raise click.UsageError(_("--official and --purpose exclude each other: a token enrols one thing"))
    kind = OFFICIAL_KEYS if official_nip is not None else PDF_SIGNING_KEY if purpose else AGENCY_KEYS
    made = create_token(obj.registry(), code, lifetime=timedelta(hours=hours), auto_approve=auto_approve,
                        kind=kind, official_nip=official_nip)
    if made.official_nip is not None:
        what = _("enrolment token for official {nip} of {code} (valid until {until}, one use):").format(
            nip=made.official_nip, code=made.agency, until=show_time(made.expires_at))
        how = _("on the official's workstation: sandi official request {code} --nip {nip} --server URL "
                "--token TOKEN").format(code=code, nip=made.official_nip)
    elif made.kind == PDF_SIGNING_KEY:
        what = _("enrolment token for the PDF signing key of {code} (valid until {until}, one use):").format(
            code=made.agency, until=show_time(made.expires_at))
        how = _("on the workstation: sandi keys request {code} --purpose pdf-signing --server URL "
                "--token TOKEN").format(code=code)
    else:
        what = _("enrolment token for {code} (valid until {until}, one use):").format(
            code=made.agency, until=show_time(made.expires_at))
        how = _("on the workstation: sandi keys request {code} --server URL --token TOKEN").format(code=code)
    obj.emit(
        {"agency": made.agency, "token": made.token, "expires_at": iso_time(made.expires_at),
         "auto_approve": made.auto_approve, "kind": made.kind, "nip": made.official_nip},
        [what, f"  {made.token}", how],
    )
