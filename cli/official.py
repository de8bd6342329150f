"""``sandi official``: named officials of an agency and their personal signing keys (ADR 0017)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sandi.i18n import _
from sandi.timefmt import iso_time, show_day, show_time

from .confirm import Cancelled, confirm_change, yes_option
from .context import CliContext, pass_cli, state_word
from .passphrase import passphrase_file_option

if TYPE_CHECKING:
    from sandi.authority.issuance import Issuer
    from sandi.authority.officials import OfficialPlan
    from sandi.authority.online import PendingRequest
    from sandi.authority.online_client import Posted
    from sandi.authority.profiles import KeyProfile
    from sandi.authority.records import OfficialInfo
    from sandi.keystore import KeyStore

OUT_PATH = click.Path(dir_okay=False, path_type=Path)
IN_PATH = click.Path(dir_okay=False, exists=True, path_type=Path)
REASONS = [
    "unspecified",
    "keyCompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "privilegeWithdrawn",
]
json_option = click.option("--json", "json_output", is_flag=True, help=_("Machine-readable JSON output."))


def _json_flag(obj: CliContext, json_output: bool) -> None:
    if json_output:
        obj.json_output = True


@click.group(
    "official",
    help=_(
        "Named officials of an agency (nama, jabatan, NIP) and their personal signing keys.\n"
        "\n"
        "\b\n"
        "Example:\n"
        '  sandi official add SETDA --nip 196801011990031001 --nama "Budi Santoso" --jabatan Sekda\n'
        "  sandi official request SETDA --nip 196801011990031001 -o budi.json  # on their workstation\n"
        "  sandi official certify budi.json                                    # at the authority\n"
        "  sandi sign surat.pdf --pdf --as-official 196801011990031001"
    ),
)
def official() -> None:
    pass


@official.command(
    "add",
    help=_(
        "Register an official of an agency.\n"
        "\n"
        "\b\n"
        "Example:\n"
        '  sandi official add SETDA --nip 196801011990031001 --nama "Budi Santoso" --jabatan Sekda'
    ),
)
@click.argument("code")
@click.option("--nip", required=True, help=_("The official's NIP (Nomor Induk Pegawai, 18 digits)."))
@click.option("--nama", "name", required=True, help=_("The official's name as it appears on letters."))
@click.option("--jabatan", "title", required=True, help=_("The official's position (jabatan)."))
@json_option
@passphrase_file_option
@pass_cli
def add_cmd(
    obj: CliContext,
    code: str,
    nip: str,
    name: str,
    title: str,
    json_output: bool,
    passphrase_file: Path | None,
) -> None:
    from sandi.authority.officials import add_official

    _json_flag(obj, json_output)
    obj.store_passphrase(passphrase_file)  # for the directory republish afterwards
    info = add_official(obj.registry(), code, nip, name, title)
    obj.emit(
        info.to_json(datetime.now(UTC)),
        _("registered official {nip} of {code}: {name}, {title}").format(
            nip=info.nip, code=info.agency, name=info.name, title=info.title
        ),
    )


def _lines(info: OfficialInfo, now: datetime) -> list[str]:
    lines = [f"{info.agency:<14} {info.nip}  {state_word(info.status):<9} {info.name}, {info.title}"]
    lines += [
        _("  signing {serial}  {status}  until {until}").format(
            serial=c.serial, status=state_word(c.status(now).value), until=show_day(c.not_after)
        )
        for c in info.certificates
    ]
    return lines


@official.command(
    "list",
    help=_(
        "List officials (of one agency) and their personal certificates.\n"
        "\n"
        "\b\n"
        "Example:\n"
        "  sandi official list SETDA --json"
    ),
)
@click.argument("code", required=False)
@json_option
@pass_cli
def list_cmd(obj: CliContext, code: str | None, json_output: bool) -> None:
    from sandi.authority.officials import list_officials

    _json_flag(obj, json_output)
    now = datetime.now(UTC)
    found = list_officials(obj.registry(), code)
    lines = [line for info in found for line in _lines(info, now)] or [_("no officials yet")]
    obj.emit([info.to_json(now) for info in found], lines)


@official.command(
    "retire",
    help=_(
        "Retire an official who left the post: their certificates are revoked\n"
        "(affiliationChanged), what they signed before stays valid.\n"
        "\n"
        "\b\n"
        "Example:\n"
        "  sandi official retire SETDA 196801011990031001"
    ),
)
@click.argument("code")
@click.argument("nip")
@yes_option
@json_option
@passphrase_file_option
@pass_cli
def retire_cmd(
    obj: CliContext, code: str, nip: str, assume_yes: bool, json_output: bool, passphrase_file: Path | None
) -> None:
    from sandi.authority.officials import get_official, retire_official

    _json_flag(obj, json_output)
    obj.store_passphrase(passphrase_file)
    registry = obj.registry()
    info = get_official(registry, code, nip)  # unknown: fails before the question
    doomed = [c.serial for c in info.certificates if c.revocation is None]
    confirm_change(
        [
            _("Retire official {nip} of {code} ({name}, {title}).").format(
                nip=info.nip, code=info.agency, name=info.name, title=info.title
            )
        ]
        + [_("  revokes personal certificate {serial} (affiliationChanged)").format(serial=s) for s in doomed]
        + [_("Signatures made before now stay valid; nothing new can be signed with these keys.")],
        _("Retire the official?"),
        assume_yes=assume_yes,
    )
    serials = retire_official(registry, code, nip)
    obj.emit(
        {"agency": code, "nip": info.nip, "status": "retired", "revoked": serials},
        [_("retired official {nip} of {code}").format(nip=info.nip, code=code)]
        + [_("  revoked {serial}").format(serial=s) for s in serials],
    )


@official.command(
    "revoke",
    help=_(
        "Revoke every personal certificate of an official.\n"
        "\n"
        "\b\n"
        "Example:\n"
        "  sandi official revoke SETDA 196801011990031001 --reason keyCompromise"
    ),
)
@click.argument("code")
@click.argument("nip")
@click.option(
    "--reason",
    required=True,
    type=click.Choice(REASONS),
    help=_("RFC 5280 reason. keyCompromise voids every signature of the key."),
)
@yes_option
@json_option
@passphrase_file_option
@pass_cli
def revoke_cmd(
    obj: CliContext,
    code: str,
    nip: str,
    reason: str,
    assume_yes: bool,
    json_output: bool,
    passphrase_file: Path | None,
) -> None:
    from sandi.authority.officials import get_official, revoke_official

    _json_flag(obj, json_output)
    obj.store_passphrase(passphrase_file)
    registry = obj.registry()
    info = get_official(registry, code, nip)
    consequence = (
        _("keyCompromise: every signature these keys ever made stops verifying, old ones too.")
        if reason == "keyCompromise"
        else _("signatures made before now stay valid; nothing new can be signed or sealed to these keys.")
    )
    confirm_change(
        [
            _("Revoke ({reason}) the personal certificates of {name} ({nip}, {code}):").format(
                reason=reason, name=info.name, nip=info.nip, code=info.agency
            )
        ]
        + [f"  {c.serial}" for c in info.certificates if c.revocation is None]
        + [consequence, _("Revocation cannot be undone.")],
        _("Revoke?"),
        assume_yes=assume_yes,
    )
    done = revoke_official(registry, code, nip, reason)
    obj.emit(
        [
            {
                "serial": d.serial,
                "agency": code,
                "nip": info.nip,
                "reason": d.reason,
                "revoked_at": iso_time(d.revoked_at),
            }
            for d in done
        ],
        [
            _("revoked {serial} of official {nip} ({reason})").format(
                serial=d.serial, nip=info.nip, reason=d.reason
            )
            for d in done
        ],
    )


@official.command(
    "request",
    help=_(
        "On the official's workstation: make their personal signing key in this home's key\n"
        "store and write a request signed by it for the authority (-o), or post it to the\n"
        "authority's server with a one-time token made for this official\n"
        "('sandi agency token CODE --official NIP') and wait for the approval.\n"
        "\n"
        "\b\n"
        "Example:\n"
        "  sandi official request SETDA --nip 196801011990031001 -o budi-request.json\n"
        "  sandi official request SETDA --nip 196801011990031001 --server URL --token TOKEN"
    ),
)
@click.argument("code")
@click.option("--nip", required=True, help=_("The official's NIP (Nomor Induk Pegawai, 18 digits)."))
@click.option("-o", "--output", type=OUT_PATH, help=_("Where to write the request."))
@click.option("--token", metavar="TOKEN",
              help=_("Enrol online with this one-time token from the authority ('sandi agency token "
                     "CODE --official NIP')."))
@click.option("--server", "server", metavar="URL",
              help=_("With --token: the authority's base URL [default: the home's, from 'init --server']."))
@click.option("--wait", type=click.IntRange(0, 86400), default=600, show_default=True,
              help=_("With --token or --resume: seconds to wait for the authority's approval."))
@click.option("--resume", is_flag=True,
              help=_("Wait again for the certificates of the request posted online before."))
@json_option
@passphrase_file_option
@pass_cli
def request_cmd(
    obj: CliContext, code: str, nip: str, output: Path | None, token: str | None, server: str | None,
    wait: int, resume: bool, json_output: bool, passphrase_file: Path | None
) -> None:
    from sandi.authority.enrolment import request_fingerprint
    from sandi.authority.officials import create_official_request, validate_nip
    from sandi.fsutil import atomic_write

    from .keyrequest import request_destination

    _json_flag(obj, json_output)
    nip = validate_nip(nip)
    if resume:
        _wait_online(obj, code, nip, None, wait)
        return
    base = request_destination(obj, token, server, output)
    store = obj.keystore(passphrase_file)
    data, refs = create_official_request(obj.home, store, code, nip)
    try:
        if output is not None:
            atomic_write(output, data, mode=0o644, overwrite=False)
        if token is not None and base is not None:
            from sandi.authority.online_client import post_request

            posted = post_request(obj.home, base, token, data, kind="official", nip=nip)
    except BaseException:
        if output is not None:
            output.unlink(missing_ok=True)
        for ref in refs:  # no request, no keys waiting for one
            store.delete(ref)
        raise
    if token is not None:
        obj.note(_("request posted to {server}; request fingerprint: {fingerprint}").format(
            server=base, fingerprint=posted.fingerprint))
        obj.note(_("read this fingerprint to the authority's operator by phone; they compare it before "
                   "certifying"))
        _wait_online(obj, code, nip, posted, wait)
        return
    assert output is not None
    fp = request_fingerprint(data)
    obj.emit(
        {"agency": code, "nip": nip, "request": str(output), "key_refs": refs, "fingerprint": fp},
        [
            _("wrote the request of official {nip} of {code}: {path}").format(
                nip=nip, code=code, path=output
            ),
            _("request fingerprint: {fingerprint}").format(fingerprint=fp),
            _(
                "read this fingerprint to the authority's operator by phone; they compare it before "
                "certifying"
            ),
            _(
                "the private key stays in this home's key store; the official signs once the new "
                "directory is imported"
            ),
        ],
    )


def _wait_online(obj: CliContext, code: str, nip: str, posted: Posted | None, wait: int) -> None:
    """Wait for the authority to certify the official's request posted online."""
    from sandi.authority.officials import parse_official_response
    from sandi.authority.online_client import finished, load_pending, wait_for_response

    if posted is None:
        posted = load_pending(obj.home, "official", nip)
        if posted.agency != code:
            raise click.UsageError(_("the request waiting here is for {agency}, not {code}").format(
                agency=posted.agency, code=code))
    response = wait_for_response(posted, wait)
    if response is None:
        obj.emit({"agency": code, "nip": nip, "status": "pending", "fingerprint": posted.fingerprint},
                 [_("not approved yet; wait again with 'sandi official request {code} --nip {nip} "
                    "--resume'").format(code=code, nip=nip)])
        return
    issued = parse_official_response(response, code, nip)
    finished(obj.home, "official", nip)
    obj.emit(
        {"agency": code, "nip": nip, "status": "certified", "fingerprint": posted.fingerprint,
         "certificates": [{"purpose": c.purpose, "serial": c.serial, "key_fingerprint": c.key_fingerprint,
                           "not_after": c.not_after} for c in issued]},
        [_("certified: {purpose} {serial} until {until}").format(
            purpose=state_word(c.purpose), serial=c.serial, until=c.not_after) for c in issued]
        + [_("the official signs once this workstation imports the new directory ('sandi directory "
             "fetch')")],
    )


def official_summary(plan: OfficialPlan) -> list[str]:
    req = plan.request
    lines = [
        _("Agency:               {code} ({name})").format(code=req.agency, name=plan.agency_name),
        _("Official:             {name}, {title} (NIP {nip})").format(
            name=plan.name, title=plan.title, nip=req.nip
        ),
        _("Request made:         {created}").format(created=show_time(req.created)),
        _("Request fingerprint:  {fingerprint}").format(fingerprint=req.fingerprint),
        _("New signing key:      {fingerprint}").format(fingerprint=plan.key_fingerprint[:16]),
        _("New PDF signing key:  {fingerprint}").format(fingerprint=plan.pdf_key_fingerprint[:16])
        if plan.pdf_key_fingerprint
        else _("New PDF signing key:  none (this authority has no PDF root, or the request has no PDF key)"),
        _("Valid until:          {until}").format(until=show_time(plan.not_after)),
    ]
    if plan.clamped:
        lines.append(
            _(
                "  (cut to the agency's signing certificate: a personal certificate never outlives "
                "its agency's)"
            )
        )
    if plan.retires:
        lines.append(_("Retires:              {serials}").format(serials=", ".join(plan.retires)))
    lines.append(_("Compare the request fingerprint with the one the official reads to you."))
    return lines


def certify_posted_official(obj: CliContext, item: PendingRequest, issuer: Issuer, store: KeyStore,
                            prof: KeyProfile, wanted: str | None, assume_yes: bool) -> int:
    """An official's request posted online (``sandi serve``): the summary and question of
    'official certify FILE', the same issuance; 1 if certified, 0 if its fingerprint is not
    the one expected."""
    from sandi.authority.officials import (
        certify_official_request,
        official_response,
        plan_official_certification,
    )
    from sandi.authority.online import mark_certified
    from sandi.authority.pdfroot import pdf_issuer_if_any

    registry = obj.registry()
    pdf_issuer = pdf_issuer_if_any(obj.home, registry, store)
    plan = plan_official_certification(registry, issuer, item.request, profile=prof, pdf_issuer=pdf_issuer)
    if wanted is not None and wanted != plan.request.fingerprint:
        obj.note(_("request {id} for {code}: fingerprint {actual}, not the one expected; skipped").format(
            id=item.id, code=item.agency, actual=plan.request.fingerprint))
        return 0
    summary = official_summary(plan)
    if item.auto_approve:
        summary.append(_("The token of this request was made with --auto-approve."))
    confirm_change(summary, _("Certify this request?"), assume_yes=assume_yes or item.auto_approve)
    plan, certs = certify_official_request(registry, issuer, item.request, profile=prof,
                                           pdf_issuer=pdf_issuer)
    mark_certified(registry, item.id, official_response(plan, certs))
    for c in certs:
        obj.note(_("certified official {nip} of {code}: {purpose} {serial} until {until}").format(
            nip=plan.request.nip, code=plan.request.agency, purpose=state_word(c.purpose),
            serial=c.serial, until=show_time(c.not_after)))
    return 1


def _certify_pending(obj: CliContext, expected_fingerprint: str | None, profile: str | None,
                     assume_yes: bool, passphrase_file: Path | None) -> None:
    """Every official's request posted online, one by one (agencies' with 'keys certify --pending')."""
    from sandi.authority.issuance import load_issuer
    from sandi.authority.officials import normalise_fingerprint
    from sandi.authority.online import OFFICIAL_KEYS, pending_requests
    from sandi.authority.profiles import load_profile
    from sandi.errors import SandiError, UsageError


    registry = obj.registry()
    waiting = [p for p in pending_requests(registry) if p.kind == OFFICIAL_KEYS]
    if not waiting:
        obj.note(_("no enrolment requests are waiting"))
        return
    prof = load_profile(profile, home=obj.home)
    store = obj.keystore(passphrase_file)
    issuer = load_issuer(obj.home, store)
    wanted = None if expected_fingerprint is None else normalise_fingerprint(expected_fingerprint)
    done = 0
    for item in waiting:
        try:
            done += certify_posted_official(obj, item, issuer, store, prof, wanted, assume_yes)
        except (Cancelled, UsageError):
            raise  # the operator's answer (or no terminal to ask on) stops the round
        except SandiError as exc:  # this request cannot be certified; the others still can
            obj.note(_("request {id} for {code} cannot be certified: {reason}").format(
                id=item.id, code=item.agency, reason=exc))
    obj.note(_("{count} request(s) certified; the workstations fetch their certificates").format(count=done))


@official.command(
    "certify",
    help=_(
        "At the authority: check an official's key request, show what it will do, and issue\n"
        "their personal signing certificate (published with the next directory).\n"
        "\n"
        "\b\n"
        "Example:\n"
        "  sandi official certify budi-request.json --expect-fingerprint '3F2A 91C0 ...'\n"
        "  sandi official certify --pending      # the requests officials posted online"
    ),
)
@click.argument("request", type=IN_PATH, required=False)
@click.option("--pending", is_flag=True,
              help=_("Certify the requests officials posted online ('sandi serve'), one by one."))
@click.option(
    "--expect-fingerprint",
    "expected_fingerprint",
    metavar="FP",
    help=_("Refuse the request unless its fingerprint is FP (as the official read it to you)."),
)
@click.option("--profile", help=_("Key profile (default: 'default'; the home's profiles/ override it)."))
@yes_option
@json_option
@passphrase_file_option
@pass_cli
def certify_cmd(
    obj: CliContext,
    request: Path | None,
    pending: bool,
    expected_fingerprint: str | None,
    profile: str | None,
    assume_yes: bool,
    json_output: bool,
    passphrase_file: Path | None,
) -> None:
    from sandi.authority.issuance import load_issuer
    from sandi.authority.officials import (
        MAX_REQUEST_BYTES,
        certify_official_request,
        normalise_fingerprint,
        plan_official_certification,
    )
    from sandi.authority.pdfroot import pdf_issuer_if_any
    from sandi.authority.profiles import load_profile
    from sandi.errors import VerificationError

    _json_flag(obj, json_output)
    if pending:
        if request is not None:
            raise click.UsageError(_("--pending takes no request file"))
        _certify_pending(obj, expected_fingerprint, profile, assume_yes, passphrase_file)
        return
    if request is None:
        raise click.UsageError(_("give a request file, or --pending"))
    with open(request, "rb") as f:
        data = f.read(MAX_REQUEST_BYTES + 1)
    registry = obj.registry()
    prof = load_profile(profile, home=obj.home)
    store = obj.keystore(passphrase_file)
    issuer = load_issuer(obj.home, store)
    pdf_issuer = pdf_issuer_if_any(obj.home, registry, store)
    plan = plan_official_certification(registry, issuer, data, profile=prof, pdf_issuer=pdf_issuer)
    if (
        expected_fingerprint is not None
        and normalise_fingerprint(expected_fingerprint) != plan.request.fingerprint
    ):
        raise VerificationError(
            _("the request's fingerprint is {actual}, not {expected}").format(
                actual=plan.request.fingerprint, expected=normalise_fingerprint(expected_fingerprint)
            ),
            hint=_("the file is not the request the official made: ask for the file again"),
        )
    confirm_change(official_summary(plan), _("Certify this request?"), assume_yes=assume_yes)
    plan, certs = certify_official_request(registry, issuer, data, profile=prof, pdf_issuer=pdf_issuer)
    now = datetime.now(UTC)
    obj.emit(
        {
            "agency": plan.request.agency,
            "nip": plan.request.nip,
            "clamped": plan.clamped,
            "certificates": [c.to_json(now) for c in certs],
        },
        [
            _("certified official {nip} of {code}: {purpose} {serial} until {until}").format(
                nip=plan.request.nip,
                code=plan.request.agency,
                purpose=state_word(c.purpose),
                serial=c.serial,
                until=show_time(c.not_after),
            )
            for c in certs
        ]
        + [_("the official signs once their workstation imports the new directory")],
    )
