"""Strict, canonical base64 as the age header uses it (RFC 4648 §4, no padding).

Canonical means: no ``=``, no whitespace or line breaks, only the standard alphabet,
and the unused low bits of the last character are zero, so every byte string has
exactly one accepted encoding (a parser that accepted two would make the header
malleable).
"""

from __future__ import annotations

import binascii

from sandi.i18n import _


class Base64Error(ValueError):
    """Not canonical unpadded base64 (callers turn it into their own error)."""


def encode(data: bytes) -> bytes:
    """Unpadded standard base64."""
    return binascii.b2a_base64(data, newline=False).rstrip(b"=")


def decode(text: bytes) -> bytes:
    """Decode canonical unpadded base64; raise :class:`Base64Error` otherwise."""
    if b"=" in text or len(text) % 4 == 1:
        raise Base64Error(_("invalid base64"))
    padded = text + b"=" * (-len(text) % 4)
    try:
        data = binascii.a2b_base64(padded, strict_mode=True)
    except binascii.Error:
        raise Base64Error(_("invalid base64")) from None
    # Re-encoding is the simplest exact canonicity check: non-zero trailing bits
    # would decode to the same bytes but re-encode differently.
    if encode(data) != text:
        raise Base64Error(_("non-canonical base64"))
    return data
