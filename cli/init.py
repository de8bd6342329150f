"""``sandi init``: create a home (an authority with its root, or an agency workstation).

A failed init leaves no half home: whatever it created is removed again.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sandi.home import Home, HomeConfig
from sandi.i18n import SUPPORTED_LANGUAGES, _
from sandi.keystore.passphrase import PassphraseSource
from sandi.timefmt import DEFAULT_ZONE, check_zone

from .context import CliContext, pass_cli
from .passphrase import check_new_passphrase, passphrase_file_option, weak_passphrase_option

if TYPE_CHECKING:
    from sandi.keystore import KeyStore
    from sandi.keystore.pkcs11 import TokenConfig


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
    type=click.Choice(["file", "keyring", "pkcs11"]),
    default="file",
    show_default=True,
    help=_("Where private keys live: encrypted files in the home, the OS keyring, or a PKCS#11 "
           "token (signing keys) beside one of those."),
)
@click.option(
    "--pkcs11-module",
    envvar="SANDI_PKCS11_MODULE",
    help=_("With --keystore pkcs11: the PKCS#11 module (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so) "
           "[env SANDI_PKCS11_MODULE]."),
)
@click.option(
    "--pkcs11-token",
    metavar="URI",
    help=_("With --keystore pkcs11: the token, as an RFC 7512 URI (pkcs11:token=LABEL)."),
)
@click.option(
    "--pkcs11-fallback",
    type=click.Choice(["file", "keyring"]),
    default="file",
    show_default=True,
    help=_("With --keystore pkcs11: where the keys the token does not hold live (encryption keys)."),
)
@click.option(
    "--pin-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help=_("The token's user PIN from this file (mode 0600) [else $SANDI_PKCS11_PIN, else a prompt]."),
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
    "--server",
    "server_url",
    metavar="URL",
    help=_("With --agency: the authority's base URL; 'directory fetch' and every document command "
           "then fetch the directory from it, and 'keys request --token' enrols there."),
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
    server_url: str | None,
    force: bool,
    language: str | None,
    zone: str,
    passphrase_file: Path | None,
    allow_weak_passphrase: bool,
    pkcs11_module: str | None,
    pkcs11_token: str | None,
    pkcs11_fallback: str,
    pin_file: Path | None,
) -> None:
    home = obj.home
    settings = HomeSettings(language=language.lower() if language else None, timezone=check_zone(zone))
    if base_url is not None:
        from sandi.authority.certs import check_base_url

        base_url = check_base_url(base_url)
    if pin_file is not None:
        obj.pin_file = pin_file
    if server_url is not None:
        from sandi.authority.certs import check_base_url

        if agency is None:
            raise click.UsageError(_("--server is a workstation's setting (with --agency)"))
        server_url = check_base_url(server_url)
    passphrase = obj.store_passphrase(passphrase_file)
    token = _token_config(obj, keystore_kind, pkcs11_module, pkcs11_token, pkcs11_fallback)
    if keystore_kind == "file" or (token is not None and token.fallback == "file"):
        # Checked before anything is created; the store asks the same cached source.
        check_new_passphrase(passphrase.get(_("the new key store"), confirm=True), what=_("the key store"),
                             allow_weak=allow_weak_passphrase, known_words=[province, agency or ""])
    if agency is not None or root_fingerprint is not None:
        if base_url is not None:
            raise click.UsageError(_("--base-url is an authority's setting (a workstation has none)"))
        _init_workstation(obj, home, province, keystore_kind, agency, root_fingerprint, force, passphrase,
                          settings, token, server_url)
        return
    from sandi.authority.root import create_root

    before = _snapshot(home.path)
    try:
        home.create(HomeConfig(role="authority", province=province, keystore=keystore_kind,
                               database_url=_url_to_remember(obj.database_url),
                               language=settings.language, timezone=settings.timezone,
                               extra={**({"base_url": base_url} if base_url else {}),
                                      **(token.settings() if token else {})}), force=force)
        registry = obj.registry(require_current=False)
        registry.upgrade()
        keystore = _create_keystore(obj, home, passphrase, keystore_kind, token)
        root = create_root(home, keystore, province, registry=registry)
    except BaseException:
        _undo(obj, home.path, before)
        raise
    data: dict[str, object] = {
        "home": str(home.path),
        "role": "authority",
        "province": province,
        "root_fingerprint": root.fingerprint,
        "keystore": keystore_kind,
    }
    lines = [
        _("created authority home at {path}").format(path=home.path),
        _("province: {province}").format(province=province),
        _("key store: {keystore_kind}").format(keystore_kind=keystore_kind),
        _("root fingerprint: {fingerprint}").format(fingerprint=root.fingerprint),
        _("give this fingerprint to the agencies: they check the directory against it"),
    ]
    if token is not None:
        from sandi.keystore.pkcs11 import Pkcs11KeyStore

        assert isinstance(keystore, Pkcs11KeyStore)
        data["root_key_uri"] = keystore.key_uri(root.key_ref)
        data["fallback"] = token.fallback
        lines += [
            _("root key: generated on the token, never leaves it: {uri}").format(
                uri=keystore.key_uri(root.key_ref)),
            _("encryption keys and software signing keys: the {fallback} key store in this home").format(
                fallback=token.fallback),
        ]
    obj.emit(data, lines)


def _token_config(
    obj: CliContext, kind: str, module: str | None, uri: str | None, fallback: str
) -> TokenConfig | None:
    """The token settings for sandi.toml, pinned to the token found now (label and
    serial), or None for a file or keyring store; checked before anything is created."""
    from sandi.errors import UsageError

    if kind != "pkcs11":
        if module or uri:
            raise UsageError(_("--pkcs11-module and --pkcs11-token need --keystore pkcs11"))
        return None
    from sandi.keystore.pkcs11 import pinned_config

    if not module or not uri:
        raise UsageError(
            _("--keystore pkcs11 needs --pkcs11-module PATH and --pkcs11-token URI"),
            hint=_("e.g. --pkcs11-module /usr/lib/softhsm/libsofthsm2.so "
                   "--pkcs11-token pkcs11:token=sandi-root"),
        )
    return pinned_config(module, uri, fallback, obj.token_pin())


def _create_keystore(
    obj: CliContext, home: Home, passphrase: PassphraseSource, kind: str, token: TokenConfig | None
) -> KeyStore:
    from sandi.keystore import create_keystore

    return obj.opened(create_keystore(home, passphrase, kind=kind, token=token, pin=obj.token_pin()))


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
    token: TokenConfig | None,
    server_url: str | None = None,
) -> None:
    """An agency workstation: configuration and key store (the keys come from
    'sandi keys request' + 'keys import-certs', or 'sandi keys import').

    The directory part (importing the authority's signed directory) belongs to the
    directory command; it plugs in here.
    """
    import re

    from sandi.errors import UsageError

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
                extra={**(token.settings() if token else {}),
                       **({"server_url": server_url} if server_url else {})},
            ),
            force=force,
        )
        _create_keystore(obj, home, passphrase, keystore_kind, token)
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
            "server_url": server_url,
        },
        [
            _("created workstation home for {agency} at {path}").format(agency=agency, path=home.path),
            _("key store: {keystore_kind}").format(keystore_kind=keystore_kind),
            _("next, one of:"),
            _("  your keys are made here (enrolment):  sandi keys request {code} -o {file}").format(
                code=agency, file=f"{agency.lower()}-request.json"),
            _("  the authority made your keys:         sandi keys import BUNDLE"),
            _("then fetch the authority's directory:   sandi directory fetch") if server_url else
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
