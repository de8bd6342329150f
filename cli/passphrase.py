"""The passphrase options every key-touching command shares.

Order: ``--passphrase-file FILE``, then ``$SANDI_PASSPHRASE``, then a prompt on the
terminal (stderr, hidden input; twice when a new secret is protected). Without a
terminal and without file or variable, the command fails with a clear error instead
of waiting for input that never comes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from sandi.i18n import N_, _
from sandi.keystore.passphrase import (
    ENV_PASSPHRASE,
    CachedPassphrase,
    CallbackPassphrase,
    EnvPassphrase,
    FilePassphrase,
    NoPassphrase,
    PassphraseSource,
)

ENV_EXPORT_PASSPHRASE = "SANDI_EXPORT_PASSPHRASE"  # noqa: S105 - a variable name

F = TypeVar("F", bound=Callable[..., Any])


def passphrase_file_option(f: F) -> F:
    """``--passphrase-file``: the key store passphrase (first line of a private file)."""
    return click.option(
        "--passphrase-file",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help=_("Key store passphrase from this file (mode 0600) [else ${env_passphrase}, else a "
               "prompt].").format(env_passphrase=ENV_PASSPHRASE),
    )(f)


def export_passphrase_file_option(f: F) -> F:
    return click.option(
        "--export-passphrase-file",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help=_("Passphrase protecting exported private keys [else ${env_export_passphrase}, else "
               "a prompt].").format(env_export_passphrase=ENV_EXPORT_PASSPHRASE),
    )(f)


def weak_passphrase_option(f: F) -> F:
    """``--insecure-allow-weak-passphrase``: skip the strength check of a new passphrase."""
    from sandi.i18n import _

    return click.option(
        "--insecure-allow-weak-passphrase",
        "allow_weak_passphrase",
        is_flag=True,
        help=_("INSECURE, for tests and demos only: accept a weak new passphrase (warns)."),
    )(f)


def check_new_passphrase(
    value: bytes,
    *,
    what: str,
    allow_weak: bool,
    known_words: Sequence[str] = (),
    must_differ_from: bytes | None = None,
) -> None:
    """Refuse a weak new passphrase (sandi.keystore.strength), unless overridden: then warn."""
    from sandi.i18n import _
    from sandi.keystore.strength import require_strong

    if allow_weak:
        click.echo(
            _("WARNING: --insecure-allow-weak-passphrase: the passphrase for {what} was not "
              "checked; never use this for real keys").format(what=what),
            err=True,
        )
        return
    require_strong(value, what=what, known_words=known_words, must_differ_from=must_differ_from)


def _prompt(label: str) -> Callable[[str, bool], str]:
    def ask(purpose: str, confirm: bool) -> str:
        value = click.prompt(
            _("{label} for {purpose}").format(label=_(label), purpose=purpose),
            hide_input=True,
            confirmation_prompt=confirm,
            err=True,
        )
        return str(value)

    return ask


def passphrase_source(
    passphrase_file: Path | None, *, env: str = ENV_PASSPHRASE, label: str = N_("Passphrase")
) -> PassphraseSource:
    """The passphrase source for this invocation (asked at most once)."""
    source: PassphraseSource
    if passphrase_file is not None:
        source = FilePassphrase(passphrase_file)
    elif EnvPassphrase(env).available():
        source = EnvPassphrase(env)
    elif can_prompt():
        # One prompt per process and label: the command and the directory republish
        # after it share the answer.
        if label not in _PROMPTS:
            _PROMPTS[label] = CachedPassphrase(CallbackPassphrase(_prompt(label)))
        return _PROMPTS[label]
    else:
        source = _NoTerminal(env)
    return CachedPassphrase(source)


_PROMPTS: dict[str, PassphraseSource] = {}


def pin_source(pin_file: Path | None) -> PassphraseSource:
    """The PKCS#11 token PIN for this invocation: ``--pin-file``, then
    ``$SANDI_PKCS11_PIN``, then a prompt (asked once, only when a token key is used)."""
    from sandi.keystore.pkcs11 import ENV_PIN

    if pin_file is not None:
        return CachedPassphrase(FilePassphrase(pin_file))
    if EnvPassphrase(ENV_PIN).available():
        return CachedPassphrase(EnvPassphrase(ENV_PIN))
    if can_prompt():
        if "PIN" not in _PROMPTS:
            _PROMPTS["PIN"] = CachedPassphrase(CallbackPassphrase(_pin_prompt))
        return _PROMPTS["PIN"]
    return _NoTerminalPin()


def _pin_prompt(purpose: str, confirm: bool) -> str:
    return str(click.prompt(_("PIN for {purpose}").format(purpose=purpose), hide_input=True, err=True))


class _NoTerminalPin(NoPassphrase):
    def get(self, purpose: str, *, confirm: bool = False) -> bytes:
        from sandi.errors import CredentialError
        from sandi.keystore.pkcs11 import ENV_PIN

        raise CredentialError(
            _("a PIN is needed for {purpose} and there is no terminal to ask on").format(purpose=purpose),
            hint=_("give --pin-file FILE or set {variable}").format(variable=ENV_PIN),
        )


def can_prompt() -> bool:
    """A person can be asked (see :func:`sandi.portable.can_prompt`): getpass reads the
    terminal itself, so a prompt works even when stdin carries data."""
    from sandi.portable import can_prompt as terminal_can_prompt

    return terminal_can_prompt()


class _NoTerminal(NoPassphrase):
    def __init__(self, env: str) -> None:
        self.env = env

    def get(self, purpose: str, *, confirm: bool = False) -> bytes:
        from sandi.errors import CredentialError

        raise CredentialError(
            _("a passphrase is needed for {purpose} and there is no terminal to ask on").format(
                purpose=purpose,
            ),
            hint=_("give --passphrase-file FILE or set {env}").format(env=self.env),
        )
