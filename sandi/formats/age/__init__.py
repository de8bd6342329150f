"""age v1 (https://age-encryption.org/v1): a strict, streaming codec.

Public API (everything else in this package is internal):

* keys: :class:`X25519Identity`, :class:`X25519Recipient`, :class:`ScryptRecipient`,
  :class:`ScryptIdentity`, and the :class:`Identity` / :class:`Recipient` protocols for
  other key types; :func:`parse_identities` for age-keygen style identity files;
* streams: :class:`EncryptWriter`, :class:`DecryptReader`, and the one-shot
  :func:`encrypt` / :func:`decrypt`; :func:`parse_header` for inspection;
* errors: :class:`AgeError` (``.kind`` in ``armor``, ``header``, ``no match``, ``hmac``,
  ``payload``), the only error the parser raises.

See docs/format.md for what is accepted and rejected, and the limits.
"""

from .armor import ArmorReader, ArmorWriter
from .codec import CHUNK_SIZE, DecryptReader, EncryptWriter, decrypt, encrypt, parse_header
from .errors import AgeError, AgeErrorKind
from .header import (
    DEFAULT_MAX_HEADER_SIZE,
    DEFAULT_MAX_STANZAS,
    Header,
    Stanza,
    encode_stanza,
    marshal_header,
)
from .keys import (
    DEFAULT_MAX_WORK_FACTOR,
    DEFAULT_WORK_FACTOR,
    Identity,
    Recipient,
    ScryptIdentity,
    ScryptRecipient,
    X25519Identity,
    X25519Recipient,
    parse_identities,
)

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_MAX_HEADER_SIZE",
    "DEFAULT_MAX_STANZAS",
    "DEFAULT_MAX_WORK_FACTOR",
    "DEFAULT_WORK_FACTOR",
    "AgeError",
    "AgeErrorKind",
    "ArmorReader",
    "ArmorWriter",
    "DecryptReader",
    "EncryptWriter",
    "Header",
    "Identity",
    "Recipient",
    "ScryptIdentity",
    "ScryptRecipient",
    "Stanza",
    "X25519Identity",
    "X25519Recipient",
    "decrypt",
    "encode_stanza",
    "encrypt",
    "marshal_header",
    "parse_header",
    "parse_identities",
]
