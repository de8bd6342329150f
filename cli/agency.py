"""``sandi agency``: register and manage the agencies (authority homes)."""

from __future__ import annotations

from pathlib import Path

import click

from sandi.i18n import _

from .confirm import confirm_change, yes_option
from .context import CliContext, pass_cli
from .passphrase import passphrase_file_option
from .policyfiles import POLICY_FILE


def _json_flag(obj: CliContext, json_output: bool) -> None:
    if json_output:
        obj.json_output = True


@click.group("agency")
def agency() -> None:
    """Register and manage agencies (Perangkat Daerah).

    \b
    Example:
      sandi agency add BAPPEDA --name "Badan Perencanaan Pembangunan Daerah"
      sandi agency add --from-policy banten
      sandi agency list
    """


@agency.command("add")
@click.argument("code", required=False)
@click.option("--name", help="The agency's full name.")
@click.option(
    "--kind",
    type=click.Choice(["agency", "leader", "regency", "city", "central"]),
    default="agency",
    show_default=True,
    help="What kind of entity it is.",
)
@click.option("--parent", help="The code of the entity it belongs to (registered already).")
@click.option(
    "--from-policy",
    "policy_file",
    type=POLICY_FILE,
    help="Register every entity this policy file names (known codes are skipped).",
)
@click.option("--json", "json_output", is_flag=True, help="Machine-readable JSON output.")
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
    """Register an agency, or every entity of a policy file.

    \b
    Example:
      sandi agency add DISKOMINFO --name "Dinas Komunikasi, Informatika, Statistik dan Persandian"
      sandi agency add BIRO-HUKUM --name "Biro Hukum" --parent SETDA
      sandi agency add --from-policy banten
    """
    from sandi.authority.agencies import add_agency, add_from_policy

    _json_flag(obj, json_output)
    obj.store_passphrase(passphrase_file)  # for the directory republish afterwards
    registry = obj.registry()
    if policy_file is not None:
        if code or name or parent:
            raise click.UsageError("--from-policy takes no CODE, --name or --parent")
        result = add_from_policy(registry, policy_file)
        for skipped in result.skipped:
            obj.note(f"note: {skipped} is registered already; skipped")
        obj.emit(
            {"added": result.added, "skipped": result.skipped},
            [
                f"registered {len(result.added)} agencies from {policy_file}"
                + (f" ({len(result.skipped)} known already)" if result.skipped else "")
            ],
        )
        return
    if not code or not name:
        raise click.UsageError("give CODE and --name (or --from-policy FILE)")
    info = add_agency(registry, code, name, kind=kind, parent=parent)
    obj.emit(info.to_json(), f"registered {info.code} ({info.name})")


@agency.command("list")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable JSON output.")
@pass_cli
def list_cmd(obj: CliContext, json_output: bool) -> None:
    """List the registered agencies.

    \b
    Example:
      sandi agency list --json
    """
    from sandi.authority.agencies import list_agencies

    _json_flag(obj, json_output)
    agencies = list_agencies(obj.registry())
    lines = [f"{a.code:<16} {a.status:<10} {a.kind:<8} {a.name}" for a in agencies] or ["no agencies yet"]
    obj.emit([a.to_json() for a in agencies], lines)


@agency.command("show")
@click.argument("code")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable JSON output.")
@pass_cli
def show_cmd(obj: CliContext, code: str, json_output: bool) -> None:
    """Show one agency and its certificates.

    \b
    Example:
      sandi agency show BAPPEDA
    """
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
        f"code:    {info.code}",
        f"name:    {info.name}",
        f"kind:    {info.kind}",
        f"parent:  {info.parent or '-'}",
        f"status:  {info.status}",
        f"certificates: {len(certs)}",
    ]
    lines += [f"  {c.purpose:<10} {c.serial}  {c.status(now).value}" for c in certs]
    obj.emit(data, lines)


@agency.command("suspend")
@click.argument("code")
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
@yes_option
@passphrase_file_option
@pass_cli
def suspend_cmd(
    obj: CliContext, code: str, reason: str, assume_yes: bool, passphrase_file: Path | None
) -> None:
    """Suspend an agency: no new certificates, and the directory marks it suspended.

    \b
    Example:
      sandi agency suspend DISPAR --reason "merged into DISPORA"
    """
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
    obj.emit(info.to_json(), f"suspended {info.code}")


@agency.command("resume")
@click.argument("code")
@passphrase_file_option
@pass_cli
def resume_cmd(obj: CliContext, code: str, passphrase_file: Path | None) -> None:
    """Resume a suspended agency.

    \b
    Example:
      sandi agency resume DISPAR
    """
    from sandi.authority.agencies import resume_agency

    obj.store_passphrase(passphrase_file)  # for the directory republish afterwards
    info = resume_agency(obj.registry(), code)
    obj.emit(info.to_json(), f"resumed {info.code}")
