"""One base error for everything sandi raises, with a hint for the user.

The library raises only these (or their subclasses); the command line maps each
class to one documented exit code. Messages never contain secrets: callers pass
names, codes and fingerprints, never key material or plaintext.
"""

from __future__ import annotations

from sandi.i18n import _, translated


class SandiError(Exception):
    """Base error: a message saying what went wrong and a hint saying what to do."""

    #: exit code the command line uses for this class of error
    exit_code: int = 1
    default_hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        # A sandi.i18n.Message is shown translated and kept in English for the audit log.
        shown = translated(message)
        super().__init__(shown)
        self.message = shown
        #: the English text when ``message`` was a Message (audit entries), else the message
        self.source_message = str(message)
        # default_hint is marked with N_ where it is defined (at import, before the
        # language is known) and translated here.
        self.hint = hint if hint is not None else (_(self.default_hint) if self.default_hint else "")

    def __str__(self) -> str:
        return self.message


class UsageError(SandiError):
    """The call itself is wrong: bad option, bad value, missing configuration."""

    exit_code = 2


class ConfigError(UsageError):
    """The home or its configuration is missing, unreadable or inconsistent."""


class NotFoundError(SandiError):
    """A named thing (agency, key, certificate, policy version, file) does not exist."""


class AlreadyExistsError(SandiError):
    """The thing to create exists already; sandi does not overwrite."""


class CredentialError(SandiError):
    """A key or certificate problem: missing, wrong passphrase, suspended, expired, revoked."""


class PolicyDenied(SandiError):
    """The communication-pattern policy does not allow this relation."""

    exit_code = 3


class PolicyError(SandiError):
    """A policy file is malformed or inconsistent (not a denial)."""


class VerificationError(SandiError):
    """A signature, certificate, MAC or decryption check failed.

    Deliberately vague: it says that verification failed, not which byte or which
    check, so that it does not act as an oracle.
    """

    exit_code = 4


class DecryptionError(VerificationError):
    """The ciphertext could not be decrypted and authenticated."""


class FormatError(SandiError):
    """Input does not follow its format (age, armor, minisign, tar, policy TOML...)."""

    exit_code = 4


class AuditError(SandiError):
    """The audit log could not be written or does not verify; the operation fails closed."""


class RegistryError(SandiError):
    """The registry database is unreachable, too old, too new, or refused the change."""


class RegistryConflict(RegistryError):
    """A change broke a registry constraint (a duplicate, usually a concurrent one)."""


class CommitOutcomeUnknown(RegistryError):
    """The connection was lost while the database committed: the change may or may not
    have been saved, and only a look at the registry afterwards can tell."""


class ServerError(SandiError):
    """The authority's server could not be reached, or answered with an error."""


EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_DENIED = 3
EXIT_VERIFICATION = 4
#: the change is committed and audited, but the signed directory could not be republished
EXIT_NOT_REPUBLISHED = 5
EXIT_INTERRUPTED = 130
