"""The private key bundle: an agency's keys and certificates in one passphrase-protected file.

Format: an age file (scrypt recipient, i.e. the export passphrase) whose plaintext is
UTF-8 JSON::

    {"format": "sandi-key-bundle/v1", "agency": "BAPPEDA", "created": "...Z",
     "root_certificate": "<PEM>",
     "keys": [{"purpose": "signing", "ref": "BAPPEDA.signing.<fp16>",
               "public_fingerprint": "<hex>", "secret": "<base64 raw 32 bytes>"}, ...],
     "certificates": [{"purpose": "signing", "serial": "<hex>", "pem": "<PEM>"}, ...],
     "pdf_root_certificate": "<PEM>"}

``pdf_root_certificate`` is present only when the bundle holds a ``pdf-signing`` key
(an ECDSA P-256 key, whose secret is its 32-byte scalar, ADR 0014): its certificate is
checked against that PDF root, which a home trusts only through its directory.

Invariants:

* a bundle is never written unencrypted (``age -d`` with the passphrase opens it);
* reading checks every key against its fingerprint and every certificate against
  the bundle's root (and the home's configured root fingerprint), refuses a key
  whose certificate is missing, and bounds the file size before decrypting.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sandi.errors import CredentialError, FormatError
from sandi.formats.bounded import load_json
from sandi.i18n import N_, Message, _

BUNDLE_FORMAT = "sandi-key-bundle/v1"
MAX_BUNDLE_BYTES = 1024 * 1024


#: the purposes of the keys a bundle may hold (``pdf-signing``: a P-256 key, ADR 0014)
KEY_PURPOSES = ("signing", "encryption", "encryption-pq", "pdf-signing")


def _not_a_bundle(reason: str) -> FormatError:
    return FormatError(Message("not a sandi key bundle ({reason})", reason=reason))


@dataclass(frozen=True, repr=False)
class BundleKey:
    purpose: str
    ref: str
    public_fingerprint: str
    secret: bytes

    def __repr__(self) -> str:
        return f"BundleKey({self.ref!r})"


@dataclass(frozen=True)
class BundleCert:
    purpose: str
    serial: str
    pem: str


@dataclass(frozen=True, repr=False)
class KeyBundle:
    agency: str
    created: str
    root_certificate: str
    keys: list[BundleKey]
    certificates: list[BundleCert]
    #: the PDF root that issued the bundle's pdf-signing certificates (None: there are none)
    pdf_root_certificate: str | None = None

    def __repr__(self) -> str:
        return f"KeyBundle({self.agency!r}, {len(self.keys)} keys)"

    def encode(self) -> bytes:
        return json.dumps(
            {
                "format": BUNDLE_FORMAT,
                "agency": self.agency,
                "created": self.created,
                "root_certificate": self.root_certificate,
                "keys": [
                    {
                        "purpose": k.purpose,
                        "ref": k.ref,
                        "public_fingerprint": k.public_fingerprint,
                        "secret": base64.b64encode(k.secret).decode(),
                    }
                    for k in self.keys
                ],
                "certificates": [
                    {"purpose": c.purpose, "serial": c.serial, "pem": c.pem} for c in self.certificates
                ],
                **({} if self.pdf_root_certificate is None
                   else {"pdf_root_certificate": self.pdf_root_certificate}),
            },
            indent=1,
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> KeyBundle:
        try:
            obj = load_json(data, max_bytes=MAX_BUNDLE_BYTES, error=_not_a_bundle)
            if not isinstance(obj, dict) or obj.get("format") != BUNDLE_FORMAT:
                raise ValueError
            keys = [
                BundleKey(
                    _s(k, "purpose"),
                    _s(k, "ref"),
                    _s(k, "public_fingerprint"),
                    base64.b64decode(_s(k, "secret"), validate=True),
                )
                for k in _list(obj, "keys")
            ]
            certs = [
                BundleCert(_s(c, "purpose"), _s(c, "serial"), _s(c, "pem"))
                for c in _list(obj, "certificates")
            ]
            pdf_root = None if obj.get("pdf_root_certificate") is None else _s(obj, "pdf_root_certificate")
            bundle = cls(_s(obj, "agency"), _s(obj, "created"), _s(obj, "root_certificate"), keys, certs,
                         pdf_root)
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise FormatError(_("not a sandi key bundle (or a damaged one)")) from None
        if any(len(k.secret) != 32 or k.purpose not in KEY_PURPOSES for k in bundle.keys):
            raise FormatError(_("not a sandi key bundle (or a damaged one)"))
        return bundle


def _s(obj: Any, key: str) -> str:
    value = obj[key]
    if not isinstance(value, str):
        raise ValueError(key)
    return value


def _list(obj: Any, key: str) -> list[Any]:
    value = obj[key]
    if not isinstance(value, list):
        raise ValueError(key)
    return value


def seal_bundle(bundle: KeyBundle, passphrase: bytes, work_factor: int) -> bytes:
    from sandi.keystore.filestore import scrypt_encrypt

    return scrypt_encrypt(bundle.encode(), passphrase, work_factor)


def open_bundle(data: bytes, passphrase: bytes) -> KeyBundle:
    from sandi.keystore.filestore import scrypt_decrypt

    if len(data) > MAX_BUNDLE_BYTES:
        raise FormatError(_("a key bundle is at most {max_bundle_bytes} bytes").format(
            max_bundle_bytes=MAX_BUNDLE_BYTES,
        ))
    try:
        plain = scrypt_decrypt(data, passphrase, what=N_("the key bundle"))
    except CredentialError as exc:
        raise CredentialError(
            exc.message, hint=_("give the passphrase the bundle was exported with")
        ) from None
    return KeyBundle.decode(plain)


def iso_now(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")
