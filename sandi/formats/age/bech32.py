"""Bech32 (BIP 173) as age uses it for keys: no 90-character limit, single case.

This is an encoding, not cryptography: a checksummed base32 so that a mistyped key
is noticed. age encodes recipients with HRP ``age`` (lowercase) and identities with
HRP ``AGE-SECRET-KEY-`` (uppercase); the checksum is always over the lowercase form.
"""

from __future__ import annotations

from sandi.i18n import _

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHARSET_REV = {c: i for i, c in enumerate(_CHARSET)}
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


class Bech32Error(ValueError):
    """The string is not valid Bech32 (callers turn it into their own error)."""


def _polymod(values: list[int]) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= _GEN[i]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: bytes | list[int], frombits: int, tobits: int, pad: bool) -> list[int]:
    acc = 0
    bits = 0
    out: list[int] = []
    maxv = (1 << tobits) - 1
    for value in data:
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or ((acc << (tobits - bits)) & maxv):
        # Leftover bits must be fewer than one input group and all zero: anything
        # else means the string was not produced by an encoder (non-canonical).
        raise Bech32Error(_("invalid padding"))
    return out


def encode(hrp: str, data: bytes, *, upper: bool = False) -> str:
    """Encode ``data`` under the human-readable part ``hrp``."""
    hrp_l = hrp.lower()
    values = _convert_bits(data, 8, 5, True)
    checksum_input = _hrp_expand(hrp_l) + values + [0] * 6
    polymod = _polymod(checksum_input) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    text = hrp_l + "1" + "".join(_CHARSET[v] for v in values + checksum)
    return text.upper() if upper else text


def decode(text: str) -> tuple[str, bytes]:
    """Return ``(hrp, data)``; the hrp is returned lowercase. Mixed case is rejected."""
    if any(ord(c) < 33 or ord(c) > 126 for c in text):
        raise Bech32Error(_("invalid character"))
    if text.lower() != text and text.upper() != text:
        raise Bech32Error(_("mixed case"))
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text):
        raise Bech32Error(_("missing separator or checksum"))
    hrp = text[:pos]
    try:
        values = [_CHARSET_REV[c] for c in text[pos + 1 :]]
    except KeyError:
        raise Bech32Error(_("invalid character")) from None
    if _polymod(_hrp_expand(hrp) + values) != 1:
        raise Bech32Error(_("bad checksum"))
    return hrp, bytes(_convert_bits(values[:-6], 5, 8, False))
