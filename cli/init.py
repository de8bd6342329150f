"""``sandi init``: create a home (an authority with its root, or an agency workstation).

A failed init leaves no half home: whatever it created is removed again.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import click

from sandi.home import Home, HomeConfig
from sandi.i18n import SUPPORTED_LANGUAGES, _
from sandi.keystore.passphrase import PassphraseSource
from sandi.timefmt import DEFAULT_ZONE, check_zone

from .context import CliContext, pass_cli
from .passphrase import check_new_passphrase, passphrase_file_option, weak_passphrase_option


@dataclass(frozen=True)
class HomeSettings:
    """What a person chooses for a new home besides its role: language and zone."""

    language: str | None
    timezone: str


def _complete_zone(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    from sandi.timefmt import known_zones

    return [z for z in known_zones() if z.lower().startswith(incomplete.lower())]


@click.command("init", help=_(
    "Create a new home: configuration, key store, and for an authority the\n"
    "registry and the root key and certificate.\n"
    "\n"
    "The key store passphrase is asked twice (or read from --passphrase-file /\n"
    "SANDI_PASSPHRASE). Keep the printed root fingerprint: agencies check the\n"
    "directory against it.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi --home ./authority init --province \"Provinsi Banten\"\n"
    "  sandi --home ./bappeda init --agency BAPPEDA --root-fingerprint 3f2a..."
))
@click.option(
    "--province",
    default="Provinsi Banten",
    show_default=True,
    help=_("The province the authority serves (the root certificate's organisation)."),
)
@click.option(
    "--keystore",
    "keystore_kind",
    type=click.Choice(["file", "keyring"]),
    default="file",
    show_default=True,
    help=_("Where private keys live: encrypted files in the home, or the OS keyring."),
)
@click.option("--agency", help=_("Create an agency workstation for this agency code instead of an "
                                 "authority."))
@click.option(
    "--root-fingerprint", help=_("With --agency: the authority's root fingerprint (from its 'sandi init').")
)
@click.option(
    "--base-url",
    metavar="URL",
    help=_("Authority: the base URL it publishes at; certificates then name BASE/crl.der as their "
           "CRL distribution point and BASE/root.der as their issuer."),
)
@click.option(
    "--force",
    is_flag=True,
    help=_("Use an existing non-empty folder that holds no home yet. Never overwrites a home."),
)
@click.option("--lang", "language", type=click.Choice(SUPPORTED_LANGUAGES, case_sensitive=False),
              help=_("The language this home speaks by default (written to sandi.toml)."))
@click.option("--zone", "zone", default=DEFAULT_ZONE, show_default=True, shell_complete=_complete_zone,
              help=_("The time zone times are shown and read in: WIB, WITA, WIT or an IANA name."))
@passphrase_file_option
@weak_passphrase_option
@pass_cli
def init_cmd(
    obj: CliContext,
    province: str,
    keystore_kind: str,
    agency: str | None,
    root_fingerprint: str | None,
    base_url: str | None,
    force: bool,
    language: str | None,
    zone: str,
    passphrase_file: Path | None,
    allow_weak_passphrase: bool,
) -> None:
    home = obj.home
    settings = HomeSettings(language=language.lower() if language else None, timezone=check_zone(zone))
    if base_url is not None:
        from sandi.authority.certs import check_base_url

        base_url = check_base_url(base_url)
    passphrase = obj.store_passphrase(passphrase_file)
    if keystore_kind == "file":
        # Checked before anything is created; the store asks the same cached source.
        from sandi.i18n import _

        check_new_passphrase(passphrase.get(_("the new key store"), confirm=True), what=_("the key store"),
                             allow_weak=allow_weak_passphrase, known_words=[province, agency or ""])
    if agency is not None or root_fingerprint is not None:
        if base_url is not None:
            raise click.UsageError(_("--base-url is an authority's setting (a workstation has none)"))
        _init_workstation(obj, home, province, keystore_kind, agency, root_fingerprint, force, passphrase,
                          settings)
        return
    from sandi.authority.root import create_root
    from sandi.keystore import create_keystore

    before = _snapshot(home.path)
    try:
        home.create(HomeConfig(role="authority", province=province, keystore=keystore_kind,
                               database_url=_url_to_remember(obj.database_url),
                               language=settings.language, timezone=settings.timezone,
                               extra={"base_url": base_url} if base_url else {}), force=force)
        registry = obj.registry(require_current=False)
        registry.upgrade()
        keystore = create_keystore(home, passphrase, kind=keystore_kind)
        root = create_root(home, keystore, province, registry=registry)
    except BaseException:
        _undo(obj, home.path, before)
        raise
    obj.emit(
        {
            "home": str(home.path),
            "role": "authority",
            "province": province,
            "root_fingerprint": root.fingerprint,
            "keystore": keystore_kind,
        },
        [
            _("created authority home at {path}").format(path=home.path),
            _("province: {province}").format(province=province),
            _("key store: {keystore_kind}").format(keystore_kind=keystore_kind),
            _("root fingerprint: {fingerprint}").format(fingerprint=root.fingerprint),
            _("give this fingerprint to the agencies: they check the directory against it"),
        ],
    )


def _init_workstation(
    obj: CliContext,
    home: Home,
    province: str,
    keystore_kind: str,
    agency: str | None,
    root_fingerprint: str | None,
    force: bool,
    passphrase: PassphraseSource,
    settings: HomeSettings,
) -> None:
    """An agency workstation: configuration and key store (the keys come from
    'sandi keys request' + 'keys import-certs', or 'sandi keys import').

    The directory part (importing the authority's signed directory) belongs to the
    directory command; it plugs in here.
    """
    import re

    from sandi.errors import UsageError
    from sandi.keystore import create_keystore

    if not agency or not root_fingerprint:
        raise UsageError(_("a workstation needs both --agency CODE and --root-fingerprint FP"))
    if not re.fullmatch(r"[A-Z][A-Z0-9-]{0,63}", agency):
        raise UsageError(
            _("not an agency code: {agency!r}").format(
                agency=agency,
            ), hint=_("codes are upper-case letters, digits and '-'")
        )
    fp = root_fingerprint.lower()
    if not re.fullmatch(r"[0-9a-f]{64}", fp):
        raise UsageError(_("the root fingerprint is 64 hexadecimal digits"))
    before = _snapshot(home.path)
    try:
        home.create(
            HomeConfig(
                role="workstation",
                province=province,
                agency=agency,
                root_fingerprint=fp,
                keystore=keystore_kind,
                language=settings.language,
                timezone=settings.timezone,
            ),
            force=force,
        )
        create_keystore(home, passphrase, kind=keystore_kind)
    except BaseException:
        _undo(obj, home.path, before)
        raise
    obj.emit(
        {
            "home": str(home.path),
            "role": "workstation",
            "agency": agency,
            "root_fingerprint": fp,
            "keystore": keystore_kind,
        },
        [
            _("created workstation home for {agency} at {path}").format(agency=agency, path=home.path),
            _("key store: {keystore_kind}").format(keystore_kind=keystore_kind),
            _("next, one of:"),
            _("  your keys are made here (enrolment):  sandi keys request {code} -o {file}").format(
                code=agency, file=f"{agency.lower()}-request.json"),
            _("  the authority made your keys:         sandi keys import BUNDLE"),
            _("then import the authority's directory:  sandi directory import FILE"),
        ],
    )


def _url_to_remember(url: str | None) -> str | None:
    """The registry URL for sandi.toml, without its password (libpq reads that from
    PGPASSWORD or ~/.pgpass), so later commands need no --database-url."""
    if not url:
        return None
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.password is not None:
        parsed = parsed._replace(password=None)
    return parsed.render_as_string(hide_password=False)


def _snapshot(path: Path) -> set[str] | None:
    """What was in the folder before init (None: the folder did not exist)."""
    if not path.exists():
        return None
    return {p.name for p in path.iterdir()}


def _undo(obj: CliContext, path: Path, before: set[str] | None) -> None:
    # Close the database first (SQLite keeps -wal/-shm files open).
    if obj._registry is not None:
        with contextlib.suppress(Exception):
            obj._registry.dispose()
        obj._registry = None
    if before is None:
        shutil.rmtree(path, ignore_errors=True)
        return
    if not path.exists():
        return
    for child in path.iterdir():
        if child.name in before:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                child.unlink()
