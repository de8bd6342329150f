"""What every command gets: the resolved home, output mode, and lazy handles."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from sandi.errors import ConfigError, FormatError
from sandi.home import Home, HomeConfig, resolve_home
from sandi.i18n import N_, _, translated

if TYPE_CHECKING:
    from pathlib import Path

    from sandi.keystore import KeyStore, PassphraseSource
    from sandi.registry import Registry


@dataclass
class CliContext:
    home_option: str | None
    database_url: str | None
    json_output: bool
    debug: bool
    _registry: Registry | None = field(default=None, repr=False)
    _audit_seq_at_open: int | None = field(default=None, repr=False)
    _expiry_checked: bool = field(default=False, repr=False)
    #: the opened directory's warnings (shared: a notice may be added during the command)
    _directory_warnings: list[str] = field(default_factory=list, repr=False)
    _directory_warnings_shown: int = field(default=0, repr=False)
    _store_passphrase: PassphraseSource | None = field(default=None, repr=False)
    #: ``sandi --pin-file FILE``: the PKCS#11 token PIN (else $SANDI_PKCS11_PIN, else a prompt)
    pin_file: Path | None = None
    _token_pin: PassphraseSource | None = field(default=None, repr=False)
    _opened_stores: list[KeyStore] = field(default_factory=list, repr=False)

    @property
    def home(self) -> Home:
        return Home(resolve_home(self.home_option))

    def config(self) -> HomeConfig:
        return self.home.load_config()

    def registry(self, *, require_current: bool = True) -> Registry:
        """The registry of this home (authority homes only); imports SQLAlchemy."""
        if self._registry is None:
            from sandi.registry import Registry

            home = self.home
            config = home.load_config() if not self.database_url and home.exists() else None
            if config is not None and config.role == "workstation" and not config.database_url:
                raise ConfigError(
                    _("{path} is an agency workstation: it has no registry").format(path=home.path),
                    hint=_("run this command on the authority's home (or give --database-url)"),
                )

            self._registry = Registry(self.home.database_url(self.database_url))
            if require_current:
                self._registry.require_current()
                self._audit_seq_at_open = self._audit_seq()
        return self._registry

    def _audit_seq(self) -> int:
        from sandi.audit.registry_sink import read_head

        assert self._registry is not None
        with self._registry.reading() as session:
            head = read_head(session)
        return 0 if head is None else head[0]

    def registry_changed(self) -> bool:
        """True if this command changed the registry (every change writes an audit entry)
        other than by publishing the directory itself."""
        if self._registry is None:
            return False
        if self._audit_seq_at_open is None:
            # Opened without the schema check (init): publish the first directory.
            return self.home.exists() and not self.home.directory_path.exists() and self._audit_seq() > 0
        from sqlalchemy import select

        from sandi.registry.models import AuditEntryRow

        with self._registry.reading() as session:
            actions = session.scalars(
                select(AuditEntryRow.action).where(AuditEntryRow.seq > self._audit_seq_at_open)
            ).all()
        return any(a not in _NOT_PUBLIC for a in actions)

    # -- output ------------------------------------------------------------------------

    def emit(self, data: Any, human: str | list[str] | None = None) -> None:
        """Print ``data`` as JSON with --json, else the human text."""
        if self.json_output:
            click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
            return
        if human is None:
            return
        lines = [human] if isinstance(human, str) else human
        for line in lines:
            click.echo(translated(line))

    def directory_expiry(self, warning: str | None) -> None:
        """Print the directory's near-expiry warning (at most once per command)."""
        if warning and not self._expiry_checked:
            self.note(_("warning: {warning}").format(warning=translated(warning)))
        self._expiry_checked = True

    def directory_read(self, warnings: list[str]) -> None:
        """The command read and verified the installed directory: print its warnings
        and skip the unverified expiry read after the command (one read, not two)."""
        self._directory_warnings = warnings
        self._show_directory_warnings()
        self._expiry_checked = True

    def _show_directory_warnings(self) -> None:
        """Print the directory warnings not printed yet (each once)."""
        for warning in self._directory_warnings[self._directory_warnings_shown:]:
            self.note(_("warning: {warning}").format(warning=translated(warning)))
        self._directory_warnings_shown = len(self._directory_warnings)

    def directory_not_needed(self) -> None:
        """The command reads no directory (``inspect`` without ``--as``): nothing after
        it reads one only to warn about its expiry."""
        self._expiry_checked = True

    def check_directory_expiry(self) -> None:
        """On a workstation, warn when the installed directory is near its expiry.

        Reads the expiry without verifying the signature: it only decides whether to
        warn; every command that relies on the directory verifies it in full.
        """
        self._show_directory_warnings()  # e.g. the index failed a check during the command
        if self._expiry_checked:
            return
        warning = None
        home = self.home
        try:
            if not home.directory_path.is_file() or home.load_config().role != "workstation":
                return
            from datetime import UTC, datetime

            from sandi.directory.local import peek_expiry
            from sandi.directory.snapshot import expiry_warning

            found = peek_expiry(home)
            if found is not None:
                warning = expiry_warning(found[0], found[1], datetime.now(UTC))
        except (OSError, ValueError, KeyError, TypeError, FormatError):
            pass  # an unreadable directory is reported by the commands that use it
        finally:
            self.directory_expiry(warning)

    def refresh_directory(self) -> None:
        """On a workstation that names its authority's server, fetch a fresh directory
        when the installed one is near its expiry (or missing). When the server does
        not answer, say so and carry on with the installed one (which warns as usual)."""
        from sandi.errors import SandiError

        home = self.home
        if not home.exists():
            return
        try:
            from sandi.directory.online import refresh_if_due

            fetched = refresh_if_due(home)
        except ConfigError:
            return  # the command itself reports a broken configuration
        except SandiError as exc:
            self.note(_("warning: the directory could not be refreshed from the server: {reason}").format(
                reason=exc))
            return
        if fetched is not None and fetched.changed:
            self.note(_("directory version {version} fetched from the server").format(
                version=fetched.snapshot.version))

    def store_passphrase(self, passphrase_file: Path | None) -> PassphraseSource:
        """The key store passphrase for this command (``--passphrase-file``, else the
        environment, else a prompt). Remembered for the rest of the invocation, so the
        directory republish after a change unlocks the store the same way: a script that
        passes ``--passphrase-file`` gets its directory republished too."""
        from .passphrase import passphrase_source

        if passphrase_file is None and self._store_passphrase is not None:
            return self._store_passphrase
        self._store_passphrase = passphrase_source(passphrase_file)
        return self._store_passphrase

    def token_pin(self) -> PassphraseSource:
        """The PKCS#11 token PIN source for this command (asked once, only if a token key
        signs)."""
        from .passphrase import pin_source

        if self._token_pin is None:
            self._token_pin = pin_source(self.pin_file)
        return self._token_pin

    def keystore(self, passphrase_file: Path | None = None) -> KeyStore:
        """The home's key store, unlocked by the passphrase and (for a token) the PIN of
        this command."""
        from sandi.keystore import open_keystore

        store = open_keystore(self.home, self.store_passphrase(passphrase_file), pin=self.token_pin())
        return self.opened(store)

    def opened(self, store: KeyStore) -> KeyStore:
        """Remember a store this command opened, so :meth:`close_stores` lets go of it."""
        self._opened_stores.append(store)
        return store

    def close_stores(self) -> None:
        """Close every key store this command opened (a token is logged out when the
        command ends, so nothing outlives it in a long-lived process either)."""
        import contextlib

        while self._opened_stores:
            with contextlib.suppress(Exception):
                self._opened_stores.pop().close()

    def note(self, message: str) -> None:
        """A remark for the person at the terminal (stderr, never in JSON output)."""
        click.echo(translated(message), err=True)


# Audit actions that change nothing the directory publishes.
_NOT_PUBLIC = frozenset({"directory.publish", "audit.checkpoint", "key.export", "crl.publish",
                         "enrolment.token", "enrolment.submit"})


pass_cli = click.make_pass_decorator(CliContext)

# States and purposes as tables show them to people (--json keeps the English values).
_STATE_WORDS = {
    "active": N_("active"), "suspended": N_("suspended"), "valid": N_("valid"), "due": N_("due"),
    "retired": N_("retired"), "not yet valid": N_("not yet valid"), "expired": N_("expired"),
    "revoked": N_("revoked"), "current": N_("current"), "signing": N_("signing"),
    "encryption": N_("encryption"), "encryption-pq": N_("encryption-pq"),
}


def purpose_width() -> int:
    """Column width for a key purpose in a table (10 in English, wider if a translation is)."""
    return max(10, *(len(state_word(p)) for p in ("signing", "encryption", "encryption-pq")))


def state_word(value: str) -> str:
    """``value`` (an agency or certificate state, a key purpose) in the current language."""
    word = _STATE_WORDS.get(value)
    return _(word) if word is not None else value
