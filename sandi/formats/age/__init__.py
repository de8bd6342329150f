"""age v1 (https://age-encryption.org/v1): a strict, streaming codec.

Public API (everything else in this package is internal):

* keys: :class:`X25519Identity`, :class:`X25519Recipient`, the hybrid post-quantum
  :class:`MLKEM768X25519Identity` / :class:`MLKEM768X25519Recipient` (``age1pq1...``),
  :class:`ScryptRecipient`, :class:`ScryptIdentity`, and the :class:`Identity` /
  :class:`Recipient` protocols for other key types; :func:`parse_identities`,
  :func:`parse_identity` and :func:`parse_recipient` for key strings and files;
  :func:`is_post_quantum` / :func:`mixes_classical` to judge a header's recipients;
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
    parse_identity,
    parse_recipient,
)
from .pq import (
    CLASSICAL_TYPES,
    MLKEM768X25519_TYPE,
    POST_QUANTUM_TYPES,
    MLKEM768X25519Identity,
    MLKEM768X25519Recipient,
    is_post_quantum,
    mixes_classical,
)

__all__ = [
    "CHUNK_SIZE",
    "CLASSICAL_TYPES",
    "DEFAULT_MAX_HEADER_SIZE",
    "DEFAULT_MAX_STANZAS",
    "DEFAULT_MAX_WORK_FACTOR",
    "DEFAULT_WORK_FACTOR",
    "MLKEM768X25519_TYPE",
    "POST_QUANTUM_TYPES",
    "AgeError",
    "AgeErrorKind",
    "ArmorReader",
    "ArmorWriter",
    "DecryptReader",
    "EncryptWriter",
    "Header",
    "Identity",
    "MLKEM768X25519Identity",
    "MLKEM768X25519Recipient",
    "Recipient",
    "ScryptIdentity",
    "ScryptRecipient",
    "Stanza",
    "X25519Identity",
    "X25519Recipient",
    "decrypt",
    "encode_stanza",
    "encrypt",
    "is_post_quantum",
    "marshal_header",
    "mixes_classical",
    "parse_header",
    "parse_identities",
    "parse_identity",
    "parse_recipient",
]
