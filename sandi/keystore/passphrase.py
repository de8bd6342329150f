"""Where passphrases come from: a prompt, a file, ``SANDI_PASSPHRASE``, or the caller.

Invariants:

* a passphrase is asked for only when it is needed (the file store asks once per
  process, when it first has to read a key), never earlier;
* the library never prompts itself: a prompt is a callback the command line
  supplies (:class:`CallbackPassphrase`);
* an empty passphrase is refused, a passphrase file readable by others is refused
  (like ssh refuses such a key), and a passphrase never appears in an error.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from sandi.errors import CredentialError, UsageError
from sandi.fsutil import check_private_file
from sandi.i18n import _

ENV_PASSPHRASE = "SANDI_PASSPHRASE"  # noqa: S105 - a variable name
MAX_PASSPHRASE_BYTES = 1024


class PassphraseSource(Protocol):
    """Anything that can produce a passphrase on demand.

    ``purpose`` says what it unlocks (for the prompt text); ``confirm`` asks for it
    twice when a new secret is being protected.
    """

    def get(self, purpose: str, *, confirm: bool = False) -> bytes: ...


def _check(value: bytes, origin: str) -> bytes:
    if not value:
        raise CredentialError(_("the passphrase from {origin} is empty").format(
            origin=origin,
        ), hint=_("use a non-empty passphrase"))
    if len(value) > MAX_PASSPHRASE_BYTES:
        raise CredentialError(_("the passphrase from {origin} is longer than "
                                "{max_passphrase_bytes} bytes").format(
            origin=origin,
            max_passphrase_bytes=MAX_PASSPHRASE_BYTES,
        ))
    return value


class FixedPassphrase:
    """A passphrase the caller already has (applications, tests)."""

    def __init__(self, passphrase: str | bytes) -> None:
        self._value = passphrase.encode() if isinstance(passphrase, str) else bytes(passphrase)

    def __repr__(self) -> str:
        return "FixedPassphrase(<hidden>)"

    def get(self, purpose: str, *, confirm: bool = False) -> bytes:
        return _check(self._value, "the caller")


class EnvPassphrase:
    """The passphrase in an environment variable (``SANDI_PASSPHRASE`` by default)."""

    def __init__(self, variable: str = ENV_PASSPHRASE) -> None:
        self.variable = variable

    def __repr__(self) -> str:
        return f"EnvPassphrase({self.variable!r})"

    def available(self) -> bool:
        return bool(os.environ.get(self.variable))

    def get(self, purpose: str, *, confirm: bool = False) -> bytes:
        value = os.environ.get(self.variable)
        if not value:
            raise CredentialError(_("{variable} is not set").format(
                variable=self.variable,
            ), hint=_("set {variable} or use a prompt").format(
                variable=self.variable,
            ))
        return _check(value.encode(), f"${self.variable}")


class FilePassphrase:
    """The first line of a file (without its line ending); the file must be private."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"FilePassphrase({str(self.path)!r})"

    def get(self, purpose: str, *, confirm: bool = False) -> bytes:
        try:
            check_private_file(self.path)
            with open(self.path, "rb") as f:
                data = f.read(MAX_PASSPHRASE_BYTES + 2)
        except FileNotFoundError:
            raise UsageError(_("passphrase file {path} does not exist").format(path=self.path)) from None
        except OSError as exc:
            raise UsageError(_("cannot read passphrase file {path}: {reason}").format(
                path=self.path,
                reason=exc.strerror,
            )) from None
        line = data.split(b"\n", 1)[0].rstrip(b"\r")
        return _check(line, str(self.path))


class CallbackPassphrase:
    """Ask someone: ``ask(purpose, confirm)`` returns the passphrase (the CLI prompt)."""

    def __init__(self, ask: Callable[[str, bool], str | bytes]) -> None:
        self._ask = ask

    def __repr__(self) -> str:
        return "CallbackPassphrase()"

    def get(self, purpose: str, *, confirm: bool = False) -> bytes:
        value = self._ask(purpose, confirm)
        return _check(value.encode() if isinstance(value, str) else value, "the prompt")


class NoPassphrase:
    """No way to get a passphrase: fails with a clear error when one is needed."""

    def __repr__(self) -> str:
        return "NoPassphrase()"

    def get(self, purpose: str, *, confirm: bool = False) -> bytes:
        raise CredentialError(
            _("a passphrase is needed to unlock {purpose}").format(purpose=purpose),
            hint=_("give --passphrase-file FILE or set {env_passphrase}").format(
                env_passphrase=ENV_PASSPHRASE,
            ),
        )


class CachedPassphrase:
    """Ask the inner source once, then repeat the answer (one prompt per process)."""

    def __init__(self, inner: PassphraseSource) -> None:
        self._inner = inner
        self._value: bytes | None = None

    def __repr__(self) -> str:
        return f"CachedPassphrase({self._inner!r})"

    def get(self, purpose: str, *, confirm: bool = False) -> bytes:
        if self._value is None:
            self._value = self._inner.get(purpose, confirm=confirm)
        return self._value
