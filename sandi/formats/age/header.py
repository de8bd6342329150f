"""The age v1 header: strict parsing, canonical encoding and the header MAC.

Invariants:

* The parser accepts exactly the spec's grammar (LF line ends, ``->`` stanza lines with
  one or more non-empty VCHAR arguments, bodies of 64-column canonical base64 lines
  ending with one shorter line, ``---`` MAC line with a canonical 32-byte MAC) and
  raises ``AgeError("header")`` for anything else.
* Because parsing is strict, the raw header bytes equal their canonical re-encoding,
  so the MAC is computed over the raw bytes and :func:`encode_header` of a parsed
  header gives the same bytes back.
* Limits (header size, stanza count) are checked while reading, before more input is
  consumed than the limit allows.
"""

from __future__ import annotations

import hmac as _hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _c_hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sandi.i18n import _

from . import b64
from .errors import AgeError

INTRO = b"age-encryption.org/v1\n"
_VERSION_PREFIX = b"age-encryption.org/"
STANZA_PREFIX = b"-> "
MAC_PREFIX = b"---"
FILE_KEY_SIZE = 16
MAC_SIZE = 32
BODY_COLUMNS = 64

#: default bound on the binary header size (bytes, MAC line included)
DEFAULT_MAX_HEADER_SIZE = 1024 * 1024
#: default bound on the number of stanzas (recipients) in one header
DEFAULT_MAX_STANZAS = 2000  # a circular to every agency of a province (docs/format.md 3.1.2)


@dataclass(frozen=True)
class Stanza:
    """One recipient stanza: its type (first argument), further arguments and body."""

    type: str
    args: tuple[str, ...]
    body: bytes

    def __repr__(self) -> str:  # the body is a wrapped key: not secret, but noise
        return f"Stanza(type={self.type!r}, args={self.args!r}, body=<{len(self.body)} bytes>)"


@dataclass(frozen=True)
class Header:
    """A parsed (or freshly built) header.

    ``header_bytes`` is the complete binary header, from the version line through the
    LF that ends the MAC line; it is what the sealing layer hashes. ``armored`` says
    whether the file it came from was ASCII-armored.
    """

    stanzas: tuple[Stanza, ...]
    mac: bytes
    header_bytes: bytes
    armored: bool = False

    @property
    def mac_input(self) -> bytes:
        """The bytes the MAC covers: everything up to and including ``---``."""
        return self.header_bytes[: len(self.header_bytes) - (1 + 43 + 1)]


class LineSource(Protocol):
    def readline(self, limit: int) -> bytes: ...


def _valid_arg(arg: bytes) -> bool:
    return bool(arg) and all(0x21 <= c <= 0x7E for c in arg)


def encode_stanza(stanza: Stanza) -> bytes:
    """Canonical stanza encoding (what age writes)."""
    args = [stanza.type, *stanza.args]
    for a in args:
        if not _valid_arg(a.encode("ascii", "replace")):
            raise ValueError("stanza arguments must be non-empty printable ASCII without spaces")
    out = [STANZA_PREFIX + " ".join(args).encode("ascii") + b"\n"]
    text = b64.encode(stanza.body)
    for i in range(0, len(text) + 1, BODY_COLUMNS):
        # range goes one past a full final line, so a body whose encoding is a multiple
        # of 64 columns ends with the required empty short line.
        out.append(text[i : i + BODY_COLUMNS] + b"\n")
    return b"".join(out)


def header_mac(file_key: bytes, mac_input: bytes) -> bytes:
    hmac_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"header").derive(file_key)
    h = _c_hmac.HMAC(hmac_key, hashes.SHA256())
    h.update(mac_input)
    return h.finalize()


def _mac_input(stanzas: Sequence[Stanza]) -> bytes:
    if not stanzas:
        raise ValueError("an age header needs at least one stanza")
    return INTRO + b"".join(encode_stanza(s) for s in stanzas) + MAC_PREFIX


def marshal_header(stanzas: Sequence[Stanza], mac: bytes) -> bytes:
    """The canonical bytes of a header with the given stanzas and MAC."""
    return _mac_input(stanzas) + b" " + b64.encode(mac) + b"\n"


def encode_header(stanzas: Sequence[Stanza], file_key: bytes) -> Header:
    """Build a canonical header for ``stanzas`` and MAC it with ``file_key``."""
    mac = header_mac(file_key, _mac_input(stanzas))
    return Header(tuple(stanzas), mac, marshal_header(stanzas, mac))


def verify_mac(header: Header, file_key: bytes) -> None:
    expected = header_mac(file_key, header.mac_input)
    if not _hmac.compare_digest(expected, header.mac):
        raise AgeError("hmac", _("the header MAC does not verify"))


def read_header(
    src: LineSource,
    *,
    max_size: int = DEFAULT_MAX_HEADER_SIZE,
    max_stanzas: int = DEFAULT_MAX_STANZAS,
    armored: bool = False,
) -> Header:
    """Read and strictly parse one header from ``src`` (which is left at the payload)."""
    raw = bytearray()

    def line() -> bytes:
        remaining = max_size - len(raw)
        got = src.readline(remaining)
        if not got.endswith(b"\n"):
            if len(got) >= remaining:
                raise AgeError("header", _("header larger than the limit of {max_size} bytes").format(
                    max_size=max_size,
                ))
            raise AgeError("header", _("the header is truncated"))
        raw.extend(got)
        return got[:-1]

    first = line()
    if first + b"\n" != INTRO:
        if first.startswith(_VERSION_PREFIX):
            raise AgeError("header", _("unsupported age version line"))
        raise AgeError("header", _("not an age file (no age-encryption.org/v1 line)"))

    stanzas: list[Stanza] = []
    current = line()
    while True:
        if current.startswith(MAC_PREFIX):
            parts = current.split(b" ")
            if len(parts) != 2 or parts[0] != MAC_PREFIX:
                raise AgeError("header", _("malformed MAC line"))
            try:
                mac = b64.decode(parts[1])
            except b64.Base64Error:
                raise AgeError("header", _("the MAC is not canonical base64")) from None
            if len(mac) != MAC_SIZE:
                raise AgeError("header", _("the MAC has the wrong length"))
            break
        if not current.startswith(b"->"):
            raise AgeError("header", _("expected a stanza or the MAC line"))
        if len(stanzas) >= max_stanzas:
            raise AgeError("header", _("more than {max_stanzas} stanzas (recipients)").format(
                max_stanzas=max_stanzas,
            ))
        parts = current.split(b" ")
        if parts[0] != b"->" or len(parts) < 2:
            raise AgeError("header", _("malformed stanza line"))
        if not all(_valid_arg(a) for a in parts[1:]):
            raise AgeError("header", _("invalid stanza argument"))
        body = bytearray()
        while True:
            body_line = line()
            if len(body_line) > BODY_COLUMNS:
                raise AgeError("header", _("stanza body line longer than 64 columns"))
            try:
                body.extend(b64.decode(body_line))
            except b64.Base64Error:
                raise AgeError("header", _("stanza body is not canonical base64")) from None
            if len(body_line) < BODY_COLUMNS:
                break
        args = tuple(a.decode("ascii") for a in parts[1:])
        stanzas.append(Stanza(args[0], args[1:], bytes(body)))
        current = line()
    if not stanzas:
        raise AgeError("header", _("the header has no stanza"))
    return Header(tuple(stanzas), mac, bytes(raw), armored)
