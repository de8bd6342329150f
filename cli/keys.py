"""``sandi keys`` and ``sandi crl``: issue, enrol, renew, rotate, revoke, list, export, import."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sandi.errors import SandiError, UsageError
from sandi.i18n import N_, _, ngettext
from sandi.timefmt import iso_time, show_day, show_time

from .confirm import Cancelled, confirm_change, yes_option
from .context import CliContext, pass_cli, purpose_width, state_word
from .keyrequest import request_destination
from .passphrase import (
    ENV_EXPORT_PASSPHRASE,
    check_new_passphrase,
    export_passphrase_file_option,
    passphrase_file_option,
    passphrase_source,
    weak_passphrase_option,
)

if TYPE_CHECKING:
    from sandi.authority.enrolment import CertificationPlan
    from sandi.authority.issuance import Issuer, IssueResult
    from sandi.authority.online import PendingRequest
    from sandi.authority.pdfenrol import PdfCertificationPlan
    from sandi.authority.profiles import KeyProfile
    from sandi.keystore import KeyStore
    from sandi.keystore.passphrase import PassphraseSource

OUT_PATH = click.Path(dir_okay=False, path_type=Path)
IN_PATH = click.Path(dir_okay=False, exists=True, path_type=Path)


def _keystore(obj: CliContext, passphrase_file: Path | None) -> KeyStore:
    return obj.keystore(passphrase_file)


def _issuer(obj: CliContext, keystore: KeyStore) -> Issuer:
    from sandi.authority.issuance import load_issuer

    return load_issuer(obj.home, keystore)


def _profile(obj: CliContext, name: str | None) -> KeyProfile:
    from sandi.authority.profiles import load_profile

    return load_profile(name, home=obj.home)


def _work_factor(obj: CliContext) -> int:
    from sandi.keystore.filestore import scrypt_work_factor

    return scrypt_work_factor(obj.config().extra.get("scrypt_work_factor"))


def _issue_lines(headline: str, result: IssueResult) -> list[str]:
    """``headline``: an N_-marked sentence with {agency} and {profile}."""
    lines = [_(headline).format(agency=result.agency, profile=result.profile)]
    lines += [
        _("  {purpose} serial {serial}  until {until}  key {key}").format(
            purpose=state_word(c.purpose).ljust(purpose_width()), serial=c.serial,
            until=show_day(c.not_after), key=c.key_fingerprint[:16])
        for c in result.certificates
    ]
    if result.retired:
        lines.append(_("  retired: {retired}").format(retired=', '.join(result.retired)))
    return lines


def _issue_json(result: IssueResult) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "agency": result.agency,
        "profile": result.profile,
        "retired": result.retired,
        "key_refs": result.key_refs,
        "certificates": [c.to_json(now) for c in result.certificates],
    }


def _emit_issue(obj: CliContext, headline: str, result: IssueResult) -> None:
    obj.emit(_issue_json(result), _issue_lines(headline, result))


profile_option = click.option(
    "--profile", help=_("Key profile (default: 'default'; the home's profiles/ override it).")
)
purpose_option = click.option(
    "--purpose", type=click.Choice(["pdf-signing"]), default=None,
    help=_("pdf-signing: the agency's ECDSA P-256 key and certificate from the PDF root, for "
           "signatures inside PDFs that viewers validate (needs 'sandi pdf-root init' first)."),
)


def _pdf_issuer(obj: CliContext, keystore: KeyStore) -> Any:
    from sandi.authority.pdfroot import load_pdf_issuer

    return load_pdf_issuer(obj.home, obj.registry(), keystore)


@click.group("keys", help=_(
    "Issue, enrol, renew, rotate, revoke, list, export and import agency keys.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi keys issue BAPPEDA\n"
    "  sandi keys list BAPPEDA\n"
    "  sandi keys revoke BAPPEDA --reason keyCompromise"
))
def keys() -> None:
    pass

@keys.command("issue", help=_(
    "Generate agencies' signing and encryption keys, certify them, keep them in the key store.\n"
    "\n"
    "Each agency's issuance is complete on its own (one transaction, one audit entry);\n"
    "with several, the first failure stops the rest, and those issued before it stay\n"
    "issued. The directory is republished once, at the end. With one CODE --json\n"
    "prints one object; with several, or --all, a list.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi keys issue BAPPEDA --profile default\n"
    "  sandi agency add --from-policy policies/banten.toml && sandi keys issue --all\n"
    "  sandi keys issue SETDA --purpose pdf-signing"
))
@click.argument("codes", metavar="[CODE]...", nargs=-1)
@click.option("--all", "all_agencies", is_flag=True,
              help=_("Every active agency that has never been issued keys."))
@profile_option
@purpose_option
@passphrase_file_option
@pass_cli
def issue_cmd(obj: CliContext, codes: tuple[str, ...], all_agencies: bool, profile: str | None,
              purpose: str | None, passphrase_file: Path | None) -> None:
    from sandi.authority.issuance import agencies_without_keys, issue_keys

    if all_agencies == bool(codes):
        raise UsageError(_("give agency codes or --all, not both") if codes
                         else _("give an agency CODE (or --all)"))
    registry = obj.registry()
    prof = _profile(obj, profile)
    if purpose == "pdf-signing":
        if all_agencies:
            raise UsageError(_("--purpose pdf-signing takes agency codes, not --all"))
        _issue_pdf_signing(obj, codes, prof, passphrase_file, replace=False)
        return
    targets = list(codes) if codes else agencies_without_keys(registry)
    if not targets:
        obj.emit([], _("every active agency has keys already; nothing to issue"))
        return
    ks = _keystore(obj, passphrase_file)
    issuer = _issuer(obj, ks)
    results: list[IssueResult] = []
    for code in targets:
        try:
            results.append(issue_keys(registry, ks, issuer, code, profile=prof))
        except SandiError:
            if results:
                obj.note(_("note: issued keys for {value} before this failure; not attempted: "
                           "{targets}").format(
                    value=', '.join(r.agency for r in results),
                    targets=', '.join(targets[len(results) + 1:]) or 'none',
                ))
                from .directory import NotRepublished, republish_or_warn

                try:
                    republish_or_warn(obj)  # those issued are published, failure or not
                except NotRepublished as missed:
                    obj.note(_("warning: {message}").format(message=missed.message))
            raise
    if len(codes) == 1:
        _emit_issue(obj, N_("issued keys for {agency} (profile {profile})"), results[0])
        return
    obj.emit([_issue_json(r) for r in results],
             [line for r in results
              for line in _issue_lines(N_("issued keys for {agency} (profile {profile})"), r)]
             + [ngettext("issued keys for {count} agency", "issued keys for {count} agencies",
                         len(results)).format(count=len(results))])


def _issue_pdf_signing(obj: CliContext, codes: tuple[str, ...], prof: KeyProfile,
                       passphrase_file: Path | None, *, replace: bool) -> None:
    from sandi.authority.pdfroot import issue_pdf_signing

    registry = obj.registry()
    ks = _keystore(obj, passphrase_file)
    pdf_issuer = _pdf_issuer(obj, ks)
    headline = N_("rotated the PDF signing key of {agency} (profile {profile})") if replace else \
        N_("issued a PDF signing key for {agency} (profile {profile})")
    results = [issue_pdf_signing(registry, ks, pdf_issuer, code, profile=prof, replace=replace)
               for code in codes]
    if len(results) == 1:
        _emit_issue(obj, headline, results[0])
        return
    obj.emit([_issue_json(r) for r in results], [line for r in results for line in _issue_lines(headline, r)])


@keys.command("renew", help=_(
    "New certificates for an agency's current keys (the old certificates are retired).\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi keys renew BAPPEDA"
))
@click.argument("code")
@profile_option
@passphrase_file_option
@pass_cli
def renew_cmd(obj: CliContext, code: str, profile: str | None, passphrase_file: Path | None) -> None:
    from sandi.authority.lifecycle import renew_keys

    registry = obj.registry()
    prof = _profile(obj, profile)
    ks = _keystore(obj, passphrase_file)
    _emit_issue(obj, N_("renewed {agency} (profile {profile})"),
                renew_keys(registry, _issuer(obj, ks), code, profile=prof))


@keys.command(
    "rotate",
    help=_("New keys and certificates; the old keys stay in the store to open old documents."),
    epilog=_("Example:\n\n  sandi keys rotate BAPPEDA\n\n"
             "For an agency that enrolled from its workstation, rotation starts there: "
             "'sandi keys request CODE --rotate'."),
)
@click.argument("code")
@yes_option
@profile_option
@purpose_option
@passphrase_file_option
@pass_cli
def rotate_cmd(
    obj: CliContext, code: str, assume_yes: bool, profile: str | None, purpose: str | None,
    passphrase_file: Path | None,
) -> None:
    from sandi.authority.lifecycle import require_keys_held_here, rotate_keys
    from sandi.authority.records import list_certificates
    from sandi.authority.validity import PDF_PURPOSES

    registry = obj.registry()
    prof = _profile(obj, profile)
    if purpose == "pdf-signing":
        confirm_change(
            [_("Rotate {code}'s PDF signing key: a new P-256 key is made here and certified by the "
               "PDF root; the current one is retired (it still verifies what it signed).").format(code=code)],
            _("Rotate the keys?"), assume_yes=assume_yes)
        _issue_pdf_signing(obj, (code,), prof, passphrase_file, replace=True)
        return
    ks = _keystore(obj, passphrase_file)
    current = [c for c in list_certificates(registry, code)
               if c.state == "current" and c.purpose not in PDF_PURPOSES]
    require_keys_held_here(ks, code, current)  # before asking: a refusal needs no "yes"
    confirm_change(
        [_("Rotate {code}'s keys: new signing and encryption keys are made here and certified.").format(
            code=code)]
        + ([_("  with a hybrid post-quantum (age1pq1) encryption key: profile {profile}").format(
            profile=prof.name)] if "encryption-pq" in prof.purposes else [])
        + [_("  retires {purpose} certificate {serial} (its key stays, to open old documents)").format(
            purpose=c.purpose, serial=c.serial) for c in current]
        + [_("{code} needs the new keys: export them afterwards ('sandi keys export {code} "
             "--include-private-keys -o FILE').").format(code=code)],
        _("Rotate the keys?"),
        assume_yes=assume_yes,
    )
    _emit_issue(obj, N_("rotated {agency} (profile {profile})"),
                rotate_keys(registry, ks, _issuer(obj, ks), code, profile=prof))


@keys.command("revoke", help=_(
    "Revoke an agency's certificates (TARGET = CODE) or one certificate (TARGET = SERIAL).\n"
    "\n"
    "The home's directory and CRL are republished at once; hand the agencies the new\n"
    "directory ('sandi directory publish -o FILE') so they learn of it.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi keys revoke BAPPEDA --reason cessationOfOperation\n"
    "  sandi keys revoke 4f1c...e2 --reason keyCompromise"
))
@click.argument("target")
@click.option(
    "--reason",
    required=True,
    type=click.Choice(
        [
            "unspecified",
            "keyCompromise",
            "affiliationChanged",
            "superseded",
            "cessationOfOperation",
            "privilegeWithdrawn",
        ]
    ),
    help=_("RFC 5280 reason. keyCompromise voids every signature of the key."),
)
@yes_option
@passphrase_file_option
@pass_cli
def revoke_cmd(
    obj: CliContext, target: str, reason: str, assume_yes: bool, passphrase_file: Path | None
) -> None:
    from sandi.authority.records import list_certificates
    from sandi.authority.revocation import revoke

    obj.store_passphrase(passphrase_file)  # for the directory republish afterwards
    registry = obj.registry()
    from sandi.authority.revocation import official_cascade_reason

    every = list_certificates(registry)
    doomed = [
        c for c in every
        if c.revocation is None and c.official is None
        and (c.serial == target.lower() or (c.agency == target and c.state == "current"))
    ]
    # The officials' personal certificates go with their agency, or with its current
    # signing certificate (ADR 0017); a serial of an official's certificate is just that one.
    cascade_from = {c.agency for c in doomed if c.serial != target.lower() or (c.purpose == "signing"
                                                                              and c.state == "current")}
    personal = [
        c for c in every
        if c.revocation is None and c.official is not None
        and (c.serial == target.lower() or c.agency in cascade_from)
    ]
    tsa_doomed = _tsa_serials(obj, target)
    consequence = (
        _("keyCompromise: every signature these keys ever made stops verifying, old ones too.")
        if reason == "keyCompromise"
        else _("signatures made before now stay valid; nothing new can be signed or sealed to these keys.")
    )
    confirm_change(
        [_("Revoke ({reason}):").format(reason=reason)]
        + [_("  {agency} {purpose} certificate {serial}").format(
            agency=c.agency, purpose=c.purpose, serial=c.serial) for c in doomed]
        + [_("  {agency} official {nip}: {purpose} certificate {serial} ({reason})").format(
            agency=c.agency, nip=c.official, purpose=c.purpose, serial=c.serial,
            reason=reason if c.serial == target.lower() else official_cascade_reason(reason))
           for c in personal]
        + [_("  time-stamp authority certificate {serial} (its tokens stop verifying only for "
             "keyCompromise)").format(serial=serial) for serial in tsa_doomed]
        + [consequence, _("Revocation cannot be undone.")],
        _("Revoke?"),
        assume_yes=assume_yes,
    )
    done = revoke(registry, target, reason)
    obj.emit(
        [
            {
                "serial": d.serial,
                "agency": d.agency,
                "purpose": d.purpose,
                "reason": d.reason,
                "revoked_at": iso_time(d.revoked_at),
            }
            for d in done
        ],
        [_("revoked {agency} {purpose} {serial} ({reason})").format(
            agency=d.agency, purpose=d.purpose, serial=d.serial, reason=d.reason) for d in done]
        + [_("agencies learn of it from the next directory you hand out "
             "('sandi directory publish -o FILE')")],
    )


def _tsa_serials(obj: CliContext, target: str) -> list[str]:
    """The unrevoked time-stamp authority certificate ``target`` names, if it is one."""
    from sandi.authority.certs import normalize_serial
    from sandi.authority.tsa import tsa_rows

    try:
        serial = normalize_serial(target)
    except UsageError:
        return []
    with obj.registry().reading() as session:
        return [r.serial for r in tsa_rows(session) if r.serial == serial and r.revoked_at is None]


def _list_on_workstation(obj: CliContext, code: str | None) -> None:
    """A workstation lists from its verified directory, and says which keys it holds."""
    from sandi.directory.local import installed_snapshot
    from sandi.keystore import NoPassphrase, open_keystore
    from sandi.keystore.base import key_ref

    snapshot = installed_snapshot(obj.home)
    code = code or obj.config().agency
    assert code is not None
    agency = snapshot.agency(code)
    held = set(open_keystore(obj.home, NoPassphrase()).refs())
    now = datetime.now(UTC)
    rows = []
    for c in sorted(agency.certificates, key=lambda c: (c.purpose, c.not_before)):
        here = key_ref(code, "signing" if c.purpose == "signing" else "encryption", c.key_fingerprint) in held
        status = "revoked" if c.revocation is not None else ("expired" if c.not_after < now else c.state)
        rows.append((
            {"serial": c.serial, "agency": code, "purpose": c.purpose, "state": c.state, "status": status,
             "key_fingerprint": c.key_fingerprint, "not_before": c.not_before.isoformat(),
             "not_after": c.not_after.isoformat(), "private_key_here": here},
            f"{code:<14} {state_word(c.purpose):<{purpose_width()}} {c.serial}  {state_word(status):<9} "
            f"{c.not_before:%Y-%m-%d} .. {c.not_after:%Y-%m-%d}  "
            + (_("private key here") if here else "-"),
        ))
    obj.emit([r[0] for r in rows], [r[1] for r in rows] or [_("no certificates")])


@keys.command("list", help=_(
    "List certificates with their state (valid, due, retired, expired, revoked).\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi keys list BAPPEDA --json"
))
@click.argument("code", required=False)
@click.option("--json", "json_output", is_flag=True, help=_("Machine-readable JSON output."))
@pass_cli
def list_cmd(obj: CliContext, code: str | None, json_output: bool) -> None:
    from sandi.authority.profiles import load_profile
    from sandi.authority.records import list_certificates

    if json_output:
        obj.json_output = True
    if obj.config().role == "workstation":
        _list_on_workstation(obj, code)
        return
    certs = list_certificates(obj.registry(), code)
    overlap = load_profile(None, home=obj.home).overlap_days
    now = datetime.now(UTC)
    lines = [
        f"{c.agency:<14} {state_word(c.purpose):<{purpose_width()}} {c.serial}  "
        f"{state_word(c.status(now, overlap_days=overlap).value):<13} "
        f"{show_day(c.not_before)} .. {show_day(c.not_after)}"
        # an official's personal certificate (ADR 0017) says whose it is
        + ("" if c.official is None else "  " + _("official {nip}").format(nip=c.official))
        for c in certs
    ] or [_("no certificates")]
    obj.emit([c.to_json(now, overlap_days=overlap) for c in certs], lines)


@keys.command(
    "store",
    help=_("Show the key store: its kind, the token (if any) and what it can do, and where each key "
           "lives. Asks no passphrase and no PIN."),
    epilog=_("Example:\n\n  sandi keys store"),
)
@click.option("--json", "json_output", is_flag=True, help=_("Machine-readable JSON output."))
@pass_cli
def store_cmd(obj: CliContext, json_output: bool) -> None:
    from sandi.keystore import open_keystore
    from sandi.keystore.passphrase import NoPassphrase

    if json_output:
        obj.json_output = True
    status = open_keystore(obj.home, NoPassphrase(), pin=NoPassphrase()).status()
    keys_ = [k for k in status["keys"] if isinstance(k, dict)]  # type: ignore[attr-defined]
    lines = [_("key store: {kind}").format(kind=status["keystore"])]
    token = status.get("token")
    if isinstance(token, dict):
        caps = token["capabilities"]
        yes, no = _("yes"), _("no")
        lines += [
            _("token: {uri} ({manufacturer}, {model})").format(
                uri=token["uri"], manufacturer=token["manufacturer"], model=token["model"]),
            _("module: {path}").format(path=status["module"]),
            _("the token can: make Ed25519 keys {ed}, sign EdDSA {eddsa}, make X25519 keys {x}").format(
                ed=yes if caps["ed25519_generate"] else no, eddsa=yes if caps["ed25519_sign"] else no,
                x=yes if caps["x25519_generate"] else no),
            _("encryption keys are kept in the {fallback} key store of this home, never on the token").format(
                fallback=status["fallback"]),
        ]
    for place in sorted({str(k["location"]) for k in keys_}):
        lines.append(_("on the token (the keys never leave it):") if place == "token"
                     else _("in the {place} key store:").format(place=place))
        lines += [f"  {k['ref']}" + (f"  {k['uri']}" if "uri" in k else "") for k in keys_
                  if k["location"] == place]
    if not keys_:
        lines.append(_("no keys"))
    obj.emit(status, lines)


@keys.command(
    "move-root",
    help=_("Move the root onto a PKCS#11 token: a new root made on the token, cross-certified by the "
           "old one; every current certificate re-issued, the policies re-signed, the old root key "
           "deleted (ADR 0012). Agencies must then trust the new fingerprint."),
    epilog=_("Example:\n\n  sandi --pin-file root.pin keys move-root "
             "--pkcs11-module /usr/lib/softhsm/libsofthsm2.so --pkcs11-token pkcs11:token=sandi-root"),
)
@click.option("--pkcs11-module", envvar="SANDI_PKCS11_MODULE", required=True,
              help=_("The PKCS#11 module (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so) "
                     "[env SANDI_PKCS11_MODULE]."))
@click.option("--pkcs11-token", metavar="URI", required=True,
              help=_("The token, as an RFC 7512 URI (pkcs11:token=LABEL)."))
@yes_option
@passphrase_file_option
@pass_cli
def move_root_cmd(
    obj: CliContext, pkcs11_module: str, pkcs11_token: str, assume_yes: bool, passphrase_file: Path | None
) -> None:
    from sandi.authority.crl import publish_crl
    from sandi.authority.rollover import move_root_to_token
    from sandi.keystore.pkcs11 import pinned_config

    home = obj.home
    cfg = home.load_config()
    keystore = _keystore(obj, passphrase_file)
    if keystore.hardware:
        raise UsageError(_("the root key of this home is on a PKCS#11 token already"))
    token = pinned_config(pkcs11_module, pkcs11_token, cfg.keystore, obj.token_pin())
    registry = obj.registry()
    confirm_change(
        [_("Move the root onto the token {uri}: a new root key is made there and certified by the "
           "current root; every current certificate is re-issued under the new root.").format(
               uri=token.token),
         _("The current root key is then deleted: agencies must be given the new fingerprint, and every "
           "backup of the old key folder destroyed."), _("This cannot be undone.")],
        _("Move the root?"),
        assume_yes=assume_yes,
    )
    result = move_root_to_token(home, registry, keystore, token, obj.token_pin())
    crl = publish_crl(registry, _issuer(obj, _keystore(obj, passphrase_file)), home)
    obj.emit(
        {"old_root_fingerprint": result.old_fingerprint, "root_fingerprint": result.new_fingerprint,
         "root_key_uri": result.new_key_uri, "cross_certificate": str(result.cross_certificate),
         "reissued": result.reissued, "policies_resigned": result.resigned_policies,
         "crl_number": crl.number},
        [
            _("the root is on the token now: {uri}").format(uri=result.new_key_uri),
            _("new root fingerprint: {fp}").format(fp=result.new_fingerprint),
            _("old root fingerprint: {fp} (its key was deleted; destroy every backup of the old key "
              "folder)").format(fp=result.old_fingerprint),
            _("cross-certificate from the old root: {path}").format(path=result.cross_certificate),
            _("{count} certificates re-issued, {policies} policy versions re-signed").format(
                count=len(result.reissued), policies=result.resigned_policies),
            _("give the agencies the new fingerprint and the cross-certificate (docs/operations.md)"),
        ],
    )


@keys.command(
    "request",
    help=_("Agency side of enrolment: make keys here and write a signed request for the authority."),
    epilog=_("Examples:\n\n  sandi --home ./bappeda keys request BAPPEDA -o bappeda-request.json\n\n"
             "  sandi --home ./bappeda keys request BAPPEDA --rotate -o bappeda-rotation.json"),
)
@click.argument("code")
@click.option("-o", "--output", type=OUT_PATH, help=_("Where to write the request."))
@click.option("--rotate", is_flag=True,
              help=_("New keys to replace this home's current ones; the request is signed by the "
                     "current signing key too, so the authority retires the old certificates."))
@click.option("--token", metavar="TOKEN",
              help=_("Enrol online with this one-time token from the authority ('sandi agency token')."))
@click.option("--server", "server", metavar="URL",
              help=_("With --token: the authority's base URL [default: the home's, from 'init --server']."))
@click.option("--wait", type=click.IntRange(0, 86400), default=600, show_default=True,
              help=_("With --token or --resume: seconds to wait for the authority's approval."))
@click.option("--resume", is_flag=True,
              help=_("Wait again for the certificates of the request posted online before."))
@purpose_option
@passphrase_file_option
@pass_cli
def request_cmd(obj: CliContext, code: str, output: Path | None, rotate: bool, token: str | None,
                server: str | None, wait: int, resume: bool, purpose: str | None,
                passphrase_file: Path | None) -> None:
    from sandi.authority.enrolment import create_request, request_fingerprint
    from sandi.fsutil import atomic_write

    kind = "pdf-signing" if purpose == "pdf-signing" else "agency"
    if purpose == "pdf-signing" and rotate:
        raise click.UsageError(_("--purpose pdf-signing always replaces the PDF signing key; it takes no "
                               "--rotate"))
    if resume:
        _enrol_online(obj, code, None, None, None, wait, passphrase_file, kind=kind)
        return
    base = request_destination(obj, token, server, output)
    if purpose == "pdf-signing":
        from sandi.authority.pdfenrol import create_pdf_request

        store = _keystore(obj, passphrase_file)
        data, ref = create_pdf_request(obj.home, store, code)
        refs = [ref]
    else:
        store = _keystore(obj, passphrase_file)
        data, refs = create_request(obj.home, store, code, rotate=rotate)
    if output is not None:
        atomic_write(output, data, mode=0o644, overwrite=False)
    if token is not None and base is not None:
        # Refused or unreachable, with no request file written: no keys wait for a request.
        discard = (store, refs) if output is None else None
        _enrol_online(obj, code, base, token, data, wait, passphrase_file, kind=kind, discard=discard)
        return
    assert output is not None
    if purpose == "pdf-signing":
        fp = request_fingerprint(data)
        obj.emit({"request": str(output), "fingerprint": fp, "key_refs": refs},
                 [_("wrote {path}: a request for a PDF signing key of {code}").format(path=output, code=code),
                  _("request fingerprint: {fingerprint} (read it to the authority)").format(fingerprint=fp)])
        return
    assert output is not None
    fp = request_fingerprint(data)
    obj.emit(
        {"agency": code, "request": str(output), "key_refs": refs, "fingerprint": fp,
         "kind": "rotate" if rotate else "enrol"},
        [
            _("wrote {kind} request {path}").format(
                kind=_("rotation") if rotate else _("enrolment"), path=output
            ),
            _("request fingerprint: {fingerprint}").format(fingerprint=fp),
            _("read this fingerprint to the authority's operator by phone; they compare it before "
              "certifying"),
            _("the private keys stay in this home's key store"),
            _("import the authority's answer with 'sandi keys import-certs FILE'"),
        ],
    )


def _enrol_online(obj: CliContext, code: str, base: str | None, token: str | None, data: bytes | None,
                  wait: int, passphrase_file: Path | None, *, kind: str = "agency",
                  discard: tuple[KeyStore, list[str]] | None = None) -> None:
    """Post the request (or resume the one posted), wait for the approval, install."""
    from sandi.authority.enrolment import import_response
    from sandi.authority.online_client import finished, load_pending, post_request, wait_for_response
    from sandi.authority.pdfenrol import import_pdf_response

    home = obj.home
    if base is not None and token is not None and data is not None:
        try:
            posted = post_request(home, base, token, data, kind=kind)
        except BaseException:
            if discard is not None:
                for ref in discard[1]:
                    discard[0].delete(ref)
            raise
        obj.note(_("request posted to {server}; request fingerprint: {fingerprint}").format(
            server=base, fingerprint=posted.fingerprint))
        obj.note(_("read this fingerprint to the authority's operator by phone; they compare it before "
                   "certifying"))
    else:
        posted = load_pending(home, kind)
        if posted.agency != code:
            raise click.UsageError(_("the request waiting here is for {agency}, not {code}").format(
                agency=posted.agency, code=code))
    response = wait_for_response(posted, wait)
    if response is None:
        again = (_("not approved yet; wait again with 'sandi keys request {code} --purpose pdf-signing "
                   "--resume'") if kind == "pdf-signing"
                 else _("not approved yet; wait again with 'sandi keys request {code} --resume'"))
        obj.emit({"agency": code, "status": "pending", "fingerprint": posted.fingerprint},
                 [again.format(code=code)])
        return
    if kind == "pdf-signing":
        written = import_pdf_response(home, _keystore(obj, passphrase_file), response)
    else:
        written = import_response(home, _keystore(obj, passphrase_file), response)
    finished(home, kind)
    obj.emit({"agency": code, "status": "certified", "fingerprint": posted.fingerprint,
              "installed": [str(p) for p in written]},
             [_("certified: installed {name}").format(name=p.name) for p in written])


@keys.command(
    "certify",
    help=_("Authority side of enrolment: check a request, show what it will do, and issue its "
           "two certificates."),
    epilog=_("Examples:\n\n"
             "  sandi keys certify bappeda-request.json -o bappeda-certs.json --agency BAPPEDA\n\n"
             "  sandi keys certify req.json -o certs.json --expect-fingerprint '3F2A 91C0 ...' --yes"),
)
@click.argument("request", type=IN_PATH, required=False)
@click.option(
    "-o", "--output", type=OUT_PATH, help=_("Where to write the certificates for the agency.")
)
@click.option("--pending", is_flag=True,
              help=_("Certify the requests workstations posted online ('sandi serve'), one by one."))
@click.option("--agency", "expected", help=_("Refuse the request unless it is for this agency."))
@click.option("--expect-fingerprint", "expected_fingerprint", metavar="FP",
              help=_("Refuse the request unless its fingerprint is FP (as the agency read it to you)."))
@click.option("--replace", is_flag=True,
              help=_("The agency lost its keys: retire its current certificates for this new request."))
@yes_option
@profile_option
@passphrase_file_option
@pass_cli
def certify_cmd(
    obj: CliContext,
    request: Path | None,
    output: Path | None,
    pending: bool,
    expected: str | None,
    expected_fingerprint: str | None,
    replace: bool,
    assume_yes: bool,
    profile: str | None,
    passphrase_file: Path | None,
) -> None:
    from sandi.authority.enrolment import (
        MAX_REQUEST_BYTES,
        certify_request,
        normalise_fingerprint,
        plan_certification,
    )
    from sandi.errors import VerificationError
    from sandi.fsutil import atomic_write

    if pending:
        if request is not None or output is not None:
            raise click.UsageError(_("--pending takes no request file and no -o"))
        _certify_pending(obj, expected, expected_fingerprint, replace, assume_yes, profile, passphrase_file)
        return
    if request is None or output is None:
        raise click.UsageError(_("give a request file and -o FILE, or --pending"))
    if output.exists():
        raise click.UsageError(_("{path} exists already").format(path=output))
    with open(request, "rb") as f:
        data = f.read(MAX_REQUEST_BYTES + 1)
    from sandi.authority.pdfenrol import is_pdf_key_request

    if is_pdf_key_request(data):
        if replace:
            raise click.UsageError(_("a PDF key request always replaces the agency's PDF signing key; "
                                     "--replace is for enrolment requests"))
        _certify_pdf(obj, data, output, expected, expected_fingerprint, assume_yes, profile, passphrase_file)
        return
    registry = obj.registry()
    prof = _profile(obj, profile)
    ks = _keystore(obj, passphrase_file)
    issuer = _issuer(obj, ks)
    plan = plan_certification(registry, issuer, data, expected_agency=expected, replace=replace)
    wanted = None if expected_fingerprint is None else normalise_fingerprint(expected_fingerprint)
    if wanted is not None and wanted != plan.request.fingerprint:
        raise VerificationError(
            _("the request's fingerprint is {actual}, not {expected}").format(
                actual=plan.request.fingerprint, expected=wanted
            ),
            hint=_("the file is not the request the agency made: ask it for the file again"),
        )
    confirm_change(_certify_summary(plan), _("Certify this request?"), assume_yes=assume_yes)
    response, result = certify_request(
        registry, issuer, data, expected_agency=expected, profile=prof, replace=replace
    )
    atomic_write(output, response, mode=0o644, overwrite=False)
    _emit_issue(obj, N_("certified {agency} (profile {profile})"), result)
    obj.note(_("wrote {path}: give it to {code} ('sandi keys import-certs {name}')").format(
        path=output, code=result.agency, name=output.name))


def _certify_pdf(obj: CliContext, data: bytes, output: Path, expected: str | None,
                 expected_fingerprint: str | None, assume_yes: bool, profile: str | None,
                 passphrase_file: Path | None) -> None:
    """A PDF key request (ADR 0014): the agency's new P-256 key, certified by the PDF root."""
    from sandi.authority.enrolment import normalise_fingerprint
    from sandi.authority.pdfenrol import certify_pdf_request, plan_pdf_certification
    from sandi.errors import VerificationError
    from sandi.fsutil import atomic_write

    registry = obj.registry()
    prof = _profile(obj, profile)
    ks = _keystore(obj, passphrase_file)
    root_fp = _issuer(obj, ks).key.fingerprint
    pdf_issuer = _pdf_issuer(obj, ks)
    plan = plan_pdf_certification(registry, root_fp, data, expected_agency=expected)
    wanted = None if expected_fingerprint is None else normalise_fingerprint(expected_fingerprint)
    if wanted is not None and wanted != plan.request.fingerprint:
        raise VerificationError(
            _("the request's fingerprint is {actual}, not {expected}").format(
                actual=plan.request.fingerprint, expected=wanted),
            hint=_("the file is not the request the agency made: ask it for the file again"),
        )
    confirm_change(_pdf_summary(plan), _("Certify this request?"), assume_yes=assume_yes)
    response, result = certify_pdf_request(registry, pdf_issuer, root_fp, data, expected_agency=expected,
                                           profile=prof)
    atomic_write(output, response, mode=0o644, overwrite=False)
    _emit_issue(obj, N_("certified the PDF signing key of {agency} (profile {profile})"), result)
    obj.note(_("wrote {path}: give it to {code} ('sandi keys import-certs {name}')").format(
        path=output, code=result.agency, name=output.name))


def _certify_pending(obj: CliContext, expected: str | None, expected_fingerprint: str | None, replace: bool,
                     assume_yes: bool, profile: str | None, passphrase_file: Path | None) -> None:
    """Each request posted online: the same checks, summary and question as a file; the
    certificates go back to the workstation that polls. A token made with
    --auto-approve needs no answer. Officials' and PDF signing keys' requests go through
    their own issuance (clamp, retirement, audit) exactly as their files do."""
    from sandi.authority.enrolment import certify_request, normalise_fingerprint, plan_certification
    from sandi.authority.online import AGENCY_KEYS, mark_certified, pending_requests
    from sandi.errors import SandiError

    registry = obj.registry()
    waiting = [p for p in pending_requests(registry) if expected is None or p.agency == expected]
    if not waiting:
        obj.note(_("no enrolment requests are waiting"))
        return
    prof = _profile(obj, profile)
    ks = _keystore(obj, passphrase_file)
    issuer = _issuer(obj, ks)
    wanted = None if expected_fingerprint is None else normalise_fingerprint(expected_fingerprint)
    done = 0
    for item in waiting:
        if item.kind != AGENCY_KEYS:
            try:
                done += _certify_pending_other(obj, item, issuer, ks, prof, wanted, assume_yes)
            except (Cancelled, UsageError):
                raise  # the operator's answer (or no terminal to ask on) stops the round
            except SandiError as exc:  # this request cannot be certified; the others still can
                obj.note(_("request {id} for {code} cannot be certified: {reason}").format(
                    id=item.id, code=item.agency, reason=exc))
            continue
        try:
            plan = plan_certification(registry, issuer, item.request, expected_agency=item.agency,
                                      replace=replace)
        except SandiError as exc:
            obj.note(_("request {id} for {code} cannot be certified: {reason}").format(
                id=item.id, code=item.agency, reason=exc))
            continue
        if wanted is not None and wanted != plan.request.fingerprint:
            obj.note(_("request {id} for {code}: fingerprint {actual}, not the one expected; skipped").format(
                id=item.id, code=item.agency, actual=plan.request.fingerprint))
            continue
        summary = _certify_summary(plan)
        if item.auto_approve:
            summary.append(_("The token of this request was made with --auto-approve."))
        confirm_change(summary, _("Certify this request?"), assume_yes=assume_yes or item.auto_approve)
        response, result = certify_request(registry, issuer, item.request, expected_agency=item.agency,
                                           profile=prof, replace=replace)
        mark_certified(registry, item.id, response)
        _emit_issue(obj, N_("certified {agency} (profile {profile})"), result)
        done += 1
    obj.note(_("{count} request(s) certified; the workstations fetch their certificates").format(count=done))


def _certify_pending_other(obj: CliContext, item: PendingRequest, issuer: Issuer, ks: KeyStore,
                           prof: KeyProfile, wanted: str | None, assume_yes: bool) -> int:
    """One official's or PDF signing key's request posted online: 1 if certified, 0 if skipped."""
    from sandi.authority.online import OFFICIAL_KEYS, mark_certified

    registry = obj.registry()
    if item.kind == OFFICIAL_KEYS:
        from .official import certify_posted_official

        return certify_posted_official(obj, item, issuer, ks, prof, wanted, assume_yes)
    from sandi.authority.pdfenrol import certify_pdf_request, plan_pdf_certification

    root_fp = issuer.key.fingerprint
    pdf_issuer = _pdf_issuer(obj, ks)
    pdf_plan = plan_pdf_certification(registry, root_fp, item.request, expected_agency=item.agency)
    if wanted is not None and wanted != pdf_plan.request.fingerprint:
        obj.note(_("request {id} for {code}: fingerprint {actual}, not the one expected; skipped").format(
            id=item.id, code=item.agency, actual=pdf_plan.request.fingerprint))
        return 0
    summary = _pdf_summary(pdf_plan)
    if item.auto_approve:
        summary.append(_("The token of this request was made with --auto-approve."))
    confirm_change(summary, _("Certify this request?"), assume_yes=assume_yes or item.auto_approve)
    response, result = certify_pdf_request(registry, pdf_issuer, root_fp, item.request,
                                           expected_agency=item.agency, profile=prof)
    mark_certified(registry, item.id, response)
    _emit_issue(obj, N_("certified the PDF signing key of {agency} (profile {profile})"), result)
    return 1


def _pdf_summary(plan: PdfCertificationPlan) -> list[str]:
    summary = [
        _("PDF signing key request of {code} ({name})").format(
            code=plan.request.agency, name=plan.agency_name),
        _("  request fingerprint {fingerprint}").format(fingerprint=plan.request.fingerprint),
        _("  new P-256 key {key}, signed by the agency's signing key {signing}").format(
            key=plan.request.key_fingerprint[:16], signing=plan.request.signing_key[:16]),
    ]
    if plan.retires is not None:
        summary.append(_("  retires pdf-signing certificate {serial} (it still verifies what it "
                         "signed)").format(serial=plan.retires))
    return summary


def _certify_summary(plan: CertificationPlan) -> list[str]:
    req = plan.request
    lines = [
        _("Agency:               {code} ({name})").format(code=req.agency, name=plan.agency_name),
        _("Request:              {kind}, made {created}").format(
            kind=_("rotation (signed by the current key)") if req.kind == "rotate" else _("enrolment"),
            created=show_time(req.created),
        ),
        _("Request fingerprint:  {fingerprint}").format(fingerprint=req.fingerprint),
        _("New signing key:      {fingerprint}").format(fingerprint=plan.signing_key_fingerprint[:16]),
        _("New encryption key:   {fingerprint}").format(fingerprint=plan.encryption_key_fingerprint[:16]),
    ]
    if plan.retires:
        lines.append(_("Retires:"))
        lines += [
            _("  {purpose} certificate {serial} (valid until {until})").format(
                purpose=c.purpose, serial=c.serial, until=show_day(c.not_after)
            )
            for c in plan.retires
        ]
    else:
        lines.append(_("Retires:              nothing ({code} holds no current certificates)").format(
            code=req.agency))
    lines.append(_("Compare the request fingerprint with the one the agency reads to you."))
    return lines


@keys.command("import-certs", help=_(
    "Agency side of enrolment: install the certificates the authority sent back.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi --home ./bappeda keys import-certs bappeda-certs.json"
))
@click.argument("response", type=IN_PATH)
@passphrase_file_option
@pass_cli
def import_certs_cmd(obj: CliContext, response: Path, passphrase_file: Path | None) -> None:
    from sandi.authority.enrolment import MAX_RESPONSE_BYTES, import_response
    from sandi.authority.pdfenrol import import_pdf_response, is_pdf_key_response

    with open(response, "rb") as f:
        data = f.read(MAX_RESPONSE_BYTES + 1)
    if is_pdf_key_response(data):
        written = import_pdf_response(obj.home, _keystore(obj, passphrase_file), data)
    else:
        written = import_response(obj.home, _keystore(obj, passphrase_file), data)
    obj.emit(
        {"installed": [str(p) for p in written]},
        [_("installed {name}").format(name=p.name) for p in written]
        or [_("the certificates were installed already")],
    )


@keys.command("export", help=_(
    "Export an agency's keys: public files, or private keys only when asked explicitly.\n"
    "\n"
    "Private exports are protected by an export passphrase (--export-passphrase-file,\n"
    "SANDI_EXPORT_PASSPHRASE, or a prompt), distinct from the key store passphrase.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi keys export BAPPEDA --public -o ./bappeda-public\n"
    "  sandi keys export BAPPEDA --include-private-keys -o bappeda.keys.age\n"
    "  sandi keys export BAPPEDA --age-identity bappeda.identity.age"
))
@click.argument("code")
@click.option(
    "--public",
    is_flag=True,
    help=_("Write the public files (certificates, age recipient, minisign key, root) into the -o folder."),
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help=_("With --public: the folder; with --include-private-keys: the bundle file."),
)
@click.option(
    "--include-private-keys",
    is_flag=True,
    help=_("Write every private key of the agency into a passphrase-protected bundle (-o FILE)."),
)
@click.option(
    "--age-identity",
    type=OUT_PATH,
    help=_("Write the encryption key as a passphrase-protected age identity file ('age -d -i FILE')."),
)
@click.option(
    "--unencrypted-age-identity",
    type=OUT_PATH,
    help=_("DANGEROUS: write the encryption key as a PLAIN age identity file (tests, one-off use)."),
)
@click.option(
    "--minisign-secret-key",
    type=OUT_PATH,
    help=_("Write the signing key as a passphrase-protected minisign secret key."),
)
@passphrase_file_option
@export_passphrase_file_option
@weak_passphrase_option
@pass_cli
def export_cmd(
    obj: CliContext,
    code: str,
    public: bool,
    output: Path | None,
    include_private_keys: bool,
    age_identity: Path | None,
    unencrypted_age_identity: Path | None,
    minisign_secret_key: Path | None,
    passphrase_file: Path | None,
    export_passphrase_file: Path | None,
    allow_weak_passphrase: bool,
) -> None:
    from sandi.authority import export as ex

    chosen = [
        public,
        include_private_keys,
        bool(age_identity),
        bool(unencrypted_age_identity),
        bool(minisign_secret_key),
    ]
    if sum(chosen) != 1:
        raise click.UsageError(
            _("choose exactly one of --public, --include-private-keys, --age-identity, "
              "--unencrypted-age-identity, --minisign-secret-key")
        )
    if chosen[0]:
        if output is None:
            raise click.UsageError(_("--public needs -o FOLDER"))
        if obj.config().role == "workstation":
            # No registry here: the public files come from the verified, installed directory.
            from sandi.directory.export import export_public_from_directory
            from sandi.directory.local import installed_snapshot

            files = export_public_from_directory(installed_snapshot(obj.home), code, output)
        else:
            files = ex.export_public(obj.registry(), code, output).files
        obj.emit({"agency": code, "files": files}, [_("wrote {path}").format(path=f) for f in files])
        return
    registry = obj.registry()
    ks = _keystore(obj, passphrase_file)
    if unencrypted_age_identity is not None:
        obj.note(
            _("WARNING: writing an UNENCRYPTED private key; anyone who reads the file can open "
              "{code}'s documents. Delete it as soon as you are done.").format(code=code)
        )
        res = ex.export_age_identity(
            registry, ks, code, unencrypted_age_identity, None, work_factor=_work_factor(obj)
        )
        obj.emit(
            {"agency": code, "files": res.files, "encrypted": False},
            [_("wrote {file} (UNENCRYPTED)").format(file=f) for f in res.files],
        )
        return
    export_pw = _checked_export_passphrase(
        obj, ks, code, passphrase_file, export_passphrase_file, allow_weak_passphrase,
        include_private_keys=include_private_keys, age_identity=age_identity is not None,
    )
    if include_private_keys:
        if output is None:
            raise click.UsageError(_("--include-private-keys needs -o FILE"))
        res = ex.export_private_bundle(
            registry,
            ks,
            code,
            output,
            export_pw.get("the key bundle", confirm=True),
            work_factor=_work_factor(obj),
        )
    elif age_identity is not None:
        res = ex.export_age_identity(
            registry,
            ks,
            code,
            age_identity,
            export_pw.get("the age identity file", confirm=True),
            work_factor=_work_factor(obj),
        )
    else:
        assert minisign_secret_key is not None
        ops, mem = _minisign_limits()
        res = ex.export_minisign_secret_key(
            registry,
            ks,
            code,
            minisign_secret_key,
            export_pw.get("the minisign secret key", confirm=True),
            opslimit=ops,
            memlimit=mem,
        )
    obj.emit(
        {"agency": code, "files": res.files, "key_refs": res.refs, "encrypted": True},
        [_("wrote {file} (passphrase-protected)").format(file=f) for f in res.files],
    )


def _checked_export_passphrase(
    obj: CliContext, ks: KeyStore, code: str, passphrase_file: Path | None,
    export_passphrase_file: Path | None, allow_weak: bool, *, include_private_keys: bool, age_identity: bool,
) -> PassphraseSource:
    """The export passphrase, asked (twice) and checked before anything is written:
    strong, and not the key store's own."""
    from sandi.i18n import _
    from sandi.keystore.passphrase import FixedPassphrase

    if include_private_keys:
        what = _("the key bundle")
    elif age_identity:
        what = _("the age identity file")
    else:
        what = _("the minisign secret key")
    value = passphrase_source(export_passphrase_file, env=ENV_EXPORT_PASSPHRASE,
                              label=N_("Export passphrase")).get(what, confirm=True)
    store = obj.store_passphrase(passphrase_file).get(_("the key store")) if ks.kind == "file" else None
    check_new_passphrase(value, what=what, allow_weak=allow_weak, known_words=[code, obj.home.path.name],
                         must_differ_from=store)
    return FixedPassphrase(value)


def _minisign_limits() -> tuple[int | None, int | None]:
    """minisign's own limits, unless SANDI_SCRYPT_WORK_FACTOR asks for fast test/demo keys."""
    import os

    if os.environ.get("SANDI_SCRYPT_WORK_FACTOR"):
        return 32768, 16 * 1024 * 1024  # libsodium's minimum: fast, for tests and demos only
    return None, None


@keys.command(
    "import",
    help=_("Import a private key bundle (from 'keys export --include-private-keys' or 'keys backup') "
           "into this home; without a home, create the agency's workstation home for it."),
    epilog=_("Examples:\n\n  sandi --home ./bappeda keys import bappeda.keys.age\n\n"
             "  sandi --home ./bappeda keys import bappeda.keys.age --root-fingerprint FP"),
)
@click.argument("bundle", type=IN_PATH)
@click.option("--root-fingerprint", metavar="FP",
              help=_("Creating a home: refuse a bundle whose root is not this one "
                     "(as your authority gave it)."))
@passphrase_file_option
@export_passphrase_file_option
@weak_passphrase_option
@pass_cli
def import_cmd(
    obj: CliContext, bundle: Path, root_fingerprint: str | None, passphrase_file: Path | None,
    export_passphrase_file: Path | None, allow_weak_passphrase: bool,
) -> None:
    _import_bundle(obj, bundle, root_fingerprint, passphrase_file, export_passphrase_file,
                   allow_weak_passphrase)


@keys.command(
    "restore",
    help=_("Restore a workstation from its backup ('keys backup'): into a fresh home, or into this one."),
    epilog=_("Example:\n\n  sandi --home ./bappeda keys restore bappeda-backup.age --root-fingerprint FP"),
)
@click.argument("backup", type=IN_PATH)
@click.option("--root-fingerprint", metavar="FP",
              help=_("Refuse a backup whose root is not this one (as your authority gave it)."))
@passphrase_file_option
@export_passphrase_file_option
@weak_passphrase_option
@pass_cli
def restore_cmd(
    obj: CliContext, backup: Path, root_fingerprint: str | None, passphrase_file: Path | None,
    export_passphrase_file: Path | None, allow_weak_passphrase: bool,
) -> None:
    _import_bundle(obj, backup, root_fingerprint, passphrase_file, export_passphrase_file,
                   allow_weak_passphrase)


def _import_bundle(
    obj: CliContext, path: Path, root_fingerprint: str | None, passphrase_file: Path | None,
    export_passphrase_file: Path | None, allow_weak_passphrase: bool,
) -> None:
    import shutil

    from sandi.authority.backup import create_home_for_bundle
    from sandi.authority.bundle import MAX_BUNDLE_BYTES, open_bundle
    from sandi.authority.imports import import_opened_bundle
    from sandi.keystore import create_keystore

    with open(path, "rb") as f:
        data = f.read(MAX_BUNDLE_BYTES + 1)
    export_pw = passphrase_source(
        export_passphrase_file, env=ENV_EXPORT_PASSPHRASE, label=N_("Export passphrase")
    )
    opened = open_bundle(data, export_pw.get(_("the key bundle")))
    home = obj.home
    created_fp = None
    if not home.exists():
        fresh = not home.path.exists()
        # The new home's key store gets a strong passphrase, checked before anything is made.
        check_new_passphrase(
            obj.store_passphrase(passphrase_file).get(_("the new key store"), confirm=True),
            what=_("the key store"), allow_weak=allow_weak_passphrase, known_words=[opened.agency],
        )
        created_fp = create_home_for_bundle(home, opened, root_fingerprint)
    try:
        if created_fp is not None:
            keystore = create_keystore(home, obj.store_passphrase(passphrase_file))
        else:
            keystore = _keystore(obj, passphrase_file)
        res = import_opened_bundle(home, keystore, opened)
    except BaseException:
        if created_fp is not None and fresh:
            shutil.rmtree(home.path, ignore_errors=True)  # nothing half-made stays behind
        raise
    lines = []
    if created_fp is not None:
        lines += [
            _("created workstation home for {code} at {path}").format(code=res.agency, path=home.path),
            _("root fingerprint: {fingerprint}").format(fingerprint=created_fp),
            _("compare it with the fingerprint your authority gave you before trusting this home"),
        ]
    lines.append(
        ngettext("imported {count} key of {code}", "imported {count} keys of {code}", len(res.added)).format(
            count=len(res.added), code=res.agency)
        + (_(" ({count} present already)").format(count=len(res.present)) if res.present else "")
    )
    lines.append(_("next: import the authority's directory ('sandi directory import FILE')"))
    obj.emit(
        {"agency": res.agency, "added": res.added, "present": res.present, "certificates": res.certificates,
         "created_home": created_fp is not None, "root_fingerprint": created_fp},
        lines,
    )


@keys.command(
    "backup",
    help=_("Back up this workstation's keys (current and retired) into a passphrase-protected file."),
    epilog=_("Example:\n\n  sandi --home ./bappeda keys backup -o /media/usb/bappeda-backup.age\n\n"
             "Keep the file and its passphrase apart; 'sandi keys restore' brings the keys back."),
)
@click.option("-o", "--output", type=OUT_PATH, required=True, help=_("The backup file to write (new)."))
@passphrase_file_option
@export_passphrase_file_option
@weak_passphrase_option
@pass_cli
def backup_cmd(
    obj: CliContext, output: Path, passphrase_file: Path | None, export_passphrase_file: Path | None,
    allow_weak_passphrase: bool,
) -> None:
    from sandi.authority.backup import backup_workstation, installed_root_pem

    if output.exists():
        raise click.UsageError(_("{path} exists already").format(path=output))
    home = obj.home
    ks = _keystore(obj, passphrase_file)
    root_pem = installed_root_pem(home)
    if root_pem is None:
        from sandi.directory.local import installed_snapshot

        root_pem = installed_snapshot(home).root_cert_pem
    export_pw = passphrase_source(
        export_passphrase_file, env=ENV_EXPORT_PASSPHRASE, label=N_("Export passphrase")
    )
    secret = export_pw.get(_("the backup"), confirm=True)
    store = obj.store_passphrase(passphrase_file).get(_("the key store")) if ks.kind == "file" else None
    check_new_passphrase(secret, what=_("the backup"), allow_weak=allow_weak_passphrase,
                         known_words=[obj.config().agency or "", home.path.name], must_differ_from=store)
    res = backup_workstation(home, ks, output, secret, root_pem=root_pem, work_factor=_work_factor(obj))
    lines = [
        ngettext("backed up {count} key of {code} to {path}", "backed up {count} keys of {code} to {path}",
                 len(res.refs)).format(count=len(res.refs), code=res.agency, path=res.path),
        _("keep the file and its passphrase in different places; restore with 'sandi keys restore FILE'"),
    ]
    if res.left_out:
        lines.append(ngettext(
            "left out {count} key still waiting for its certificate "
            "(import the answer, then back up again)",
            "left out {count} keys still waiting for their certificates "
            "(import the answer, then back up again)",
            len(res.left_out)).format(count=len(res.left_out)))
    obj.emit(
        {"agency": res.agency, "backup": res.path, "key_refs": res.refs, "left_out": res.left_out}, lines
    )


@keys.group("profile", help=_("Key profiles: which keys an agency gets, their lifetimes and naming."))
def profile_group() -> None:
    pass


@profile_group.command("list", help=_("List the key profiles this home can use."))
@pass_cli
def profile_list_cmd(obj: CliContext) -> None:
    from sandi.authority.profiles import profile_names

    home = obj.home if obj.home.exists() else None
    names = profile_names(home)
    obj.emit({"profiles": names}, names)


@profile_group.command(
    "show",
    help=_("Print a key profile as TOML (a starting point for your own)."),
    epilog=_("Examples:\n\n  sandi keys profile show\n\n"
             "  sandi keys profile show default > short-lived.toml"),
)
@click.argument("name", default="default")
@pass_cli
def profile_show_cmd(obj: CliContext, name: str) -> None:
    from sandi.authority.profiles import profile_text

    home = obj.home if obj.home.exists() else None
    text, origin = profile_text(name, home=home)
    if obj.json_output:
        obj.emit({"name": name, "source": origin, "toml": text}, [])
        return
    click.echo(text, nl=False)


@keys.command("tsa", help=_(
    "Create the time-stamp authority's key and certificate (RFC 3161) for 'sandi serve'.\n"
    "\n"
    "Writes DIR/tsa.key (ECDSA P-256, PKCS#8 PEM, mode 0600, never overwritten) and\n"
    "DIR/tsa.pem, a certificate from the root (extended key usage timeStamping). The TSA\n"
    "key is the only private key the server holds: make DIR belong to the server's user\n"
    "and start it with 'sandi serve --tsa DIR'. The certificate is published in the\n"
    "directory, so workstations know it; revoke it with 'sandi keys revoke SERIAL'.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi keys tsa --out /etc/sandi/tsa\n"
    "  openssl ts -verify -data FILE -in token.tsr -CAfile root.pem -untrusted tsa.pem"
))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help=_("Folder for tsa.key and tsa.pem (it must exist; neither file may)."))
@click.option("--days", type=click.IntRange(1, 3650), default=730, show_default=True,
              help=_("Validity of the TSA certificate (never beyond the root's)."))
@passphrase_file_option
@pass_cli
def tsa_cmd(obj: CliContext, out_dir: Path, days: int, passphrase_file: Path | None) -> None:
    from sandi.authority.tsa import issue_tsa

    registry = obj.registry()
    issued = issue_tsa(registry, _issuer(obj, _keystore(obj, passphrase_file)), out_dir, days=days)
    obj.emit(
        {"serial": issued.serial, "key_fingerprint": issued.key_fingerprint,
         "not_before": iso_time(issued.not_before), "not_after": iso_time(issued.not_after),
         "key": str(issued.key_path), "certificate": str(issued.cert_path)},
        [_("time-stamp authority certificate {serial} until {until}").format(
            serial=issued.serial, until=show_day(issued.not_after)),
         _("wrote {file} (private key, mode 0600) and {cert}").format(
             file=issued.key_path, cert=issued.cert_path),
         _("serve it with: sandi serve --tsa {folder}").format(folder=out_dir)],
    )


@click.command("crl", help=_(
    "Write the certificate revocation list, signed by the root (crl.pem in the home).\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi crl -o banten.crl.pem\n"
    "  openssl crl -in banten.crl.pem -CAfile root.pem -verify -noout"
))
@click.option(
    "-o", "--output", type=OUT_PATH, help=_("Also write the CRL here (it is always written to the home).")
)
@click.option(
    "--next-update-days",
    type=click.IntRange(1, 366),
    default=7,
    show_default=True,
    help=_("When relying parties should expect the next CRL."),
)
@click.option("--force", is_flag=True, help=_("Replace the -o file if it exists."))
@passphrase_file_option
@pass_cli
def crl_cmd(
    obj: CliContext, output: Path | None, next_update_days: int, force: bool, passphrase_file: Path | None
) -> None:
    if output is not None and output.exists() and not force:
        raise click.UsageError(_("{path} exists already (add --force to replace it)").format(path=output))
    from sandi.authority.crl import publish_crl

    registry = obj.registry()
    ks = _keystore(obj, passphrase_file)
    info = publish_crl(registry, _issuer(obj, ks), obj.home, output=output, overwrite_output=force,
                       next_update_days=next_update_days)
    obj.emit(
        {
            "number": info.number,
            "revoked": info.revoked,
            "this_update": iso_time(info.this_update),
            "next_update": iso_time(info.next_update),
            "files": info.written,
        },
        [_("CRL {number}: {count} revoked certificate(s), next update {next_update}").format(
            number=info.number, count=info.revoked, next_update=show_day(info.next_update))]
        + [_("wrote {file}").format(file=f) for f in info.written],
    )
