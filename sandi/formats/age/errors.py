"""The one error type of the age codec.

Every failure of parsing or decrypting an age file is an :class:`AgeError`; its
``kind`` says which layer failed, with the classes used by the age conformance
vectors (C2SP/CCTV):

``armor``     the ASCII armor (PEM) wrapping is invalid;
``header``    the header does not parse, or a stanza of a known type is malformed, or a
              limit (header size, stanza count, scrypt work factor) was exceeded, or
              the payload nonce is missing;
``no match``  the header is fine but none of the given identities opens a stanza;
``hmac``      an identity unwrapped the file key but the header MAC does not verify;
``payload``   the encrypted payload is corrupt, truncated, or followed by extra data.

Messages name what is wrong, never key material, file keys or plaintext.
"""

from __future__ import annotations

from typing import Literal

from sandi.errors import FormatError
from sandi.i18n import N_, _

AgeErrorKind = Literal["armor", "header", "no match", "hmac", "payload"]

_HINTS: dict[str, str] = {
    "armor": N_("the file is not a valid ASCII-armored age file"),
    "header": N_("the file is not a valid age v1 file, or it exceeds sandi's limits"),
    "no match": N_("none of the given keys or passphrases can open this file"),
    "hmac": N_("the age header was modified; do not trust this file"),
    "payload": N_("the encrypted data is corrupt, truncated or extended; discard any partial output"),
}


class AgeError(FormatError):
    """An age file could not be parsed, opened or authenticated."""

    def __init__(self, kind: AgeErrorKind, message: str, *, hint: str | None = None) -> None:
        super().__init__(
            _("age {kind} failure: {message}").format(kind=kind, message=message),
            hint=hint if hint is not None else _(_HINTS[kind]),
        )
        self.kind: AgeErrorKind = kind
