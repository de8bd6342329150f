"""How strong a new passphrase must be: the key store's (``sandi init``) and an export's.

A passphrase protecting private keys is attacked offline: whoever copies the key
store or an exported bundle can guess at leisure, slowed only by scrypt. So a new one
must be

* at least :data:`MIN_CHARACTERS` characters long, and
* estimated at :data:`MIN_SCORE` or more by zxcvbn (Dropbox's estimator: dictionary
  words in English, names, keyboard patterns, repeats, sequences, dates, l33t; score
  3 means about 10^8 guesses or more), with the province, the agency code and the
  word "sandi" counted as known words;
* and an export passphrase must differ from the key store passphrase (an export is
  carried off the machine; it must not also open the store).

Only the first :data:`ESTIMATED_CHARACTERS` characters are estimated (zxcvbn's cost
grows with the length; a longer passphrase is strong if its start is). Indonesian
words are not in zxcvbn's dictionaries: "kata sandi saya" is judged by its length and
patterns only, so the length floor matters.

An explicit override exists for tests and demos (the CLI's
``--insecure-allow-weak-passphrase``, which warns); it is never the default.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from sandi.errors import CredentialError
from sandi.i18n import _

MIN_CHARACTERS = 12
MIN_SCORE = 3
ESTIMATED_CHARACTERS = 100


class WeakPassphraseError(CredentialError):
    """A new passphrase is too weak to protect private keys."""


def weakness(passphrase: bytes, *, known_words: Sequence[str] = ()) -> str | None:
    """Why ``passphrase`` is too weak, or None if it is strong enough."""
    text = passphrase.decode("utf-8", "replace")
    if len(text) < MIN_CHARACTERS:
        return _("it is shorter than {count} characters").format(count=MIN_CHARACTERS)
    from zxcvbn import zxcvbn  # loads word lists: only when a passphrase is being set

    words = ["sandi", "persandian", *(w for w in known_words if w)]
    result = zxcvbn(text[:ESTIMATED_CHARACTERS], user_inputs=words)
    if int(result["score"]) < MIN_SCORE:
        return _("it is easy to guess (words, names, patterns or repeats)")
    return None


def require_strong(
    passphrase: bytes,
    *,
    what: str,
    known_words: Sequence[str] = (),
    must_differ_from: bytes | None = None,
) -> None:
    """Raise :class:`WeakPassphraseError` unless ``passphrase`` may protect ``what``."""
    if must_differ_from is not None and hmac.compare_digest(passphrase, must_differ_from):
        raise WeakPassphraseError(
            _("the passphrase for {what} is the key store passphrase").format(what=what),
            hint=_("choose a different passphrase: an export travels, the key store stays"),
        )
    reason = weakness(passphrase, known_words=known_words)
    if reason is not None:
        raise WeakPassphraseError(
            _("the passphrase for {what} is too weak: {reason}").format(what=what, reason=reason),
            hint=_("use at least {count} characters, for example four or five unrelated words").format(
                count=MIN_CHARACTERS),
        )
