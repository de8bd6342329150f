"""The PKCS#11 key store: Ed25519 signing keys on a token or HSM, the rest beside it.

A home with ``keystore = "pkcs11"`` keeps its signing keys that must never be
copied (the root's; agencies' when their key profile says so) on a PKCS#11 token,
and every other key (encryption keys, software signing keys) in a *fallback* store
(the encrypted file store, or the OS keyring) in the home, as before.

Configuration (``sandi.toml``; the PIN is never in it, nor on the command line):

* ``pkcs11_module``: the PKCS#11 module (``$SANDI_PKCS11_MODULE`` overrides it);
* ``pkcs11_token``: an RFC 7512 URI naming the token (``pkcs11:token=...;serial=...``);
* ``pkcs11_fallback``: ``file`` (default) or ``keyring``;
* the PIN comes from the caller's source: ``--pin-file``, ``$SANDI_PKCS11_PIN``, a prompt.

Invariants:

* a token key is generated on the token (``CKM_EC_EDWARDS_KEY_PAIR_GEN``, Ed25519)
  with ``CKA_SENSITIVE=true``, ``CKA_EXTRACTABLE=false``, ``CKA_TOKEN=true``; sandi
  reads only its public key and asks the token to sign (``CKM_EDDSA``); no private
  byte of it is ever in this process, and ``get_signing_key`` on it is refused;
* an ECDSA P-256 key (the PDF root, ``pdf-signing`` keys; ADR 0014) asked for on the
  token is generated there likewise (``CKM_EC_KEY_PAIR_GEN`` on secp256r1) and signs
  with ``CKM_ECDSA`` over the SHA-256 digest sandi computes; the token's raw ``r || s``
  is DER-encoded with ``cryptography``'s ``encode_dss_signature``. Its reference
  (``OWNER.ecdsa-p256.<fp16>``) tells its kind, so an Ed25519 signer is never asked
  of it, nor a P-256 signer of an Ed25519 key;
* the token objects are named ``CKA_LABEL = <sandi key reference>`` and
  ``CKA_ID = <first 8 bytes of the public fingerprint>``; ``keys/pkcs11.json`` (public
  data only) lists them with their fingerprints, so listing needs no token and no
  PIN, and a token object whose public key is not the indexed one is refused;
* the PIN is asked only when a token key is first used, once per store;
* a missing module, a token not present, a wrong or locked PIN, a key missing from
  the token are :class:`SandiError` s with a hint, never a library exception.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sandi.errors import (
    AlreadyExistsError,
    ConfigError,
    CredentialError,
    FormatError,
    NotFoundError,
    SandiError,
)
from sandi.fsutil import atomic_write, ensure_private_dir
from sandi.i18n import _
from sandi.keystore.base import KeyKind, KeyStore, StoredKey, check_ref, key_ref
from sandi.keystore.keys import P256Signer, Signer, SigningKey, fingerprint
from sandi.keystore.passphrase import ENV_PASSPHRASE, PassphraseSource

if TYPE_CHECKING:
    from sandi.formats.age import X25519Identity

ENV_MODULE = "SANDI_PKCS11_MODULE"
ENV_PIN = "SANDI_PKCS11_PIN"
INDEX_NAME = "pkcs11.json"
INDEX_FORMAT = "sandi-pkcs11-index/v1"
FALLBACK_KINDS = ("file", "keyring")
MAX_INDEX_BYTES = 4 * 1024 * 1024

# PKCS#11 mechanism numbers (v3.0), compared as numbers: python-pkcs11 names some
# of them only in newer releases.
CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055
CKM_EC_MONTGOMERY_KEY_PAIR_GEN = 0x1056
CKM_EDDSA = 0x1057
CKM_ECDH1_DERIVE = 0x1050
ED25519_OID = "1.3.101.112"
#: secp256r1 (NIST P-256), the curve of the PDF keys
P256_OID = "1.2.840.10045.3.1.7"

_PATH_ATTRS = {
    "token", "manufacturer", "serial", "model", "library-manufacturer", "library-description",
    "library-version", "slot-id", "slot-description", "slot-manufacturer", "object", "id", "type",
}
_QUERY_ATTRS = {"module-path", "module-name", "pin-source", "pin-value"}


# -- RFC 7512 URIs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pkcs11Uri:
    """An RFC 7512 ``pkcs11:`` URI: path attributes (token, object, id...) and the
    module path. ``pin-value`` is refused: a PIN never sits in a URI or a file."""

    attributes: dict[str, str] = field(default_factory=dict)
    object_id: bytes | None = None
    module_path: str | None = None

    @classmethod
    def parse(cls, text: str) -> Pkcs11Uri:
        if not isinstance(text, str) or not text.startswith("pkcs11:"):
            raise ConfigError(
                _("not a PKCS#11 URI: {uri!r}").format(uri=text),
                hint=_("write it as in RFC 7512, e.g. pkcs11:token=sandi-root"),
            )
        body = text[len("pkcs11:"):]
        path, _sep, query = body.partition("?")
        attributes: dict[str, str] = {}
        object_id: bytes | None = None
        for part in filter(None, path.split(";")):
            name, eq, raw = part.partition("=")
            if not eq or name not in _PATH_ATTRS or name in attributes:
                raise ConfigError(_("PKCS#11 URI {uri!r}: unknown or repeated attribute {name!r}").format(
                    uri=text, name=name))
            if name == "id":
                object_id = urllib.parse.unquote_to_bytes(raw)
                attributes[name] = object_id.hex()
            else:
                attributes[name] = urllib.parse.unquote(raw, errors="strict")
        module_path = None
        for part in filter(None, query.split("&")):
            name, eq, raw = part.partition("=")
            if not eq or name not in _QUERY_ATTRS:
                raise ConfigError(_("PKCS#11 URI {uri!r}: unknown or repeated attribute {name!r}").format(
                    uri=text, name=name))
            if name in ("pin-value", "pin-source"):
                raise ConfigError(
                    _("a PKCS#11 URI in sandi never carries the PIN"),
                    hint=_("give the PIN with --pin-file, ${variable} or at the prompt").format(
                        variable=ENV_PIN),
                )
            if name == "module-path":
                module_path = urllib.parse.unquote(raw)
        if "slot-id" in attributes and not attributes["slot-id"].isdigit():
            raise ConfigError(_("PKCS#11 URI {uri!r}: slot-id must be a number").format(uri=text))
        return cls(attributes=attributes, object_id=object_id, module_path=module_path)

    def get(self, name: str) -> str | None:
        return self.attributes.get(name)

    def __str__(self) -> str:
        parts = []
        for name in ("token", "manufacturer", "serial", "model", "slot-id", "object", "type"):
            if name in self.attributes:
                parts.append(f"{name}={_pct(self.attributes[name])}")
        if self.object_id is not None:
            parts.append("id=" + "".join(f"%{b:02x}" for b in self.object_id))
        text = "pkcs11:" + ";".join(parts)
        if self.module_path:
            text += "?module-path=" + _pct(self.module_path, safe="/")
        return text


def _pct(value: str, safe: str = "") -> str:
    # RFC 7512 pchar: unreserved plus a few sub-delims; everything else percent-encoded.
    return urllib.parse.quote(value, safe="-._~:[]@!$'()*+,=&" + safe)


# -- the module and the token ------------------------------------------------------------------


@dataclass(frozen=True)
class TokenConfig:
    """Which module and which token: from the home's configuration."""

    module: str
    token: Pkcs11Uri
    fallback: str = "file"

    @classmethod
    def from_settings(cls, settings: dict[str, object], *, source: str = "sandi.toml") -> TokenConfig:
        module = os.environ.get(ENV_MODULE) or settings.get("pkcs11_module")
        uri_text = settings.get("pkcs11_token")
        fallback = settings.get("pkcs11_fallback", "file")
        if not isinstance(uri_text, str) or not uri_text:
            raise ConfigError(
                _("{source}: pkcs11_token is missing").format(source=source),
                hint=_("name the token with an RFC 7512 URI, e.g. "
                       "pkcs11_token = \"pkcs11:token=sandi-root\""),
            )
        uri = Pkcs11Uri.parse(uri_text)
        module = module or uri.module_path
        if not isinstance(module, str) or not module:
            raise ConfigError(
                _("{source}: pkcs11_module is missing").format(source=source),
                hint=_("give the PKCS#11 module path (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so) "
                       "in pkcs11_module or ${variable}").format(variable=ENV_MODULE),
            )
        if fallback not in FALLBACK_KINDS:
            raise ConfigError(_("{source}: pkcs11_fallback must be \"file\" or \"keyring\"").format(
                source=source))
        return cls(module=module, token=uri, fallback=str(fallback))

    def settings(self) -> dict[str, object]:
        return {"pkcs11_module": self.module, "pkcs11_token": str(self.token),
                "pkcs11_fallback": self.fallback}


def pinned_config(module: str, uri: str, fallback: str, pin: PassphraseSource) -> TokenConfig:
    """The configuration for a token found now, pinned to its label *and* serial (so that
    another token with the same label is never used in its place)."""
    config = TokenConfig(module=module, token=Pkcs11Uri.parse(uri), fallback=fallback)
    found = TokenSession(config, pin).describe()
    pinned = Pkcs11Uri({"token": str(found["label"]), "serial": str(found["serial"])})
    return TokenConfig(module=module, token=pinned, fallback=fallback)


_LIB_LOCK = threading.RLock()


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError:
        raise ConfigError(
            _("the PKCS#11 key store needs the python-pkcs11 package"),
            hint=_("install sandi with the pkcs11 extra: pip install 'sandi[pkcs11]'"),
        ) from None
    return pkcs11


def load_module(path: str) -> Any:
    """The loaded PKCS#11 module (one per path and process)."""
    pkcs11 = _pkcs11()
    if not os.path.isfile(path):
        raise ConfigError(
            _("the PKCS#11 module {path} does not exist").format(path=path),
            hint=_("check pkcs11_module in sandi.toml or ${variable} (SoftHSM2: "
                   "/usr/lib/softhsm/libsofthsm2.so)").format(variable=ENV_MODULE),
        )
    with _LIB_LOCK:
        try:
            return pkcs11.lib(path)
        except pkcs11.PKCS11Error as exc:
            raise ConfigError(
                _("cannot load the PKCS#11 module {path} ({reason})").format(
                    path=path, reason=type(exc).__name__),
                hint=_("check pkcs11_module in sandi.toml or ${variable}").format(variable=ENV_MODULE),
            ) from None


def _token_text(v: object) -> str:
    return v.decode("ascii", "replace").strip() if isinstance(v, bytes) else str(v).strip()


def _slot_matches(slot: Any, uri: Pkcs11Uri) -> bool:
    try:
        token = slot.get_token()
    except _pkcs11().PKCS11Error:
        return False  # a slot that cannot describe its token holds none we can use
    wanted = {
        "token": token.label,
        "serial": token.serial,
        "manufacturer": token.manufacturer_id,
        "model": token.model,
        "slot-id": slot.slot_id,
    }
    for name, actual in wanted.items():
        expected = uri.get(name)
        if expected is not None and _token_text(actual) != expected:
            return False
    return True


def find_slot(lib: Any, uri: Pkcs11Uri) -> Any:
    """The one slot whose token the URI names; the module is asked again once if none
    is found (a token inserted, or initialised, after the module was loaded)."""
    pkcs11 = _pkcs11()
    for attempt in range(2):
        try:
            with _LIB_LOCK:
                if attempt:
                    lib.reinitialize()
                found = [s for s in lib.get_slots(token_present=True) if _slot_matches(s, uri)]
        except pkcs11.PKCS11Error as exc:
            raise token_error(exc, uri) from None
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ConfigError(
                _("more than one PKCS#11 token matches {uri}").format(uri=uri),
                hint=_("add the token's serial to pkcs11_token in sandi.toml"),
            )
    raise NotFoundError(
        _("the PKCS#11 token {uri} is not present").format(uri=uri),
        hint=_("insert the token (or check pkcs11_token and the module in sandi.toml; for SoftHSM2, "
               "SOFTHSM2_CONF and its token folder)"),
    )


@dataclass(frozen=True)
class TokenCapabilities:
    """What the token can do for sandi, from its mechanism list."""

    ed25519_generate: bool
    ed25519_sign: bool
    x25519_generate: bool
    ecdh_derive: bool

    @property
    def signs_ed25519(self) -> bool:
        return self.ed25519_generate and self.ed25519_sign

    def as_json(self) -> dict[str, bool]:
        return {"ed25519_generate": self.ed25519_generate, "ed25519_sign": self.ed25519_sign,
                "x25519_generate": self.x25519_generate, "ecdh_derive": self.ecdh_derive}


def capabilities(slot: Any) -> TokenCapabilities:
    mechanisms = {int(m) for m in slot.get_mechanisms()}
    return TokenCapabilities(
        ed25519_generate=CKM_EC_EDWARDS_KEY_PAIR_GEN in mechanisms,
        ed25519_sign=CKM_EDDSA in mechanisms,
        x25519_generate=CKM_EC_MONTGOMERY_KEY_PAIR_GEN in mechanisms,
        ecdh_derive=CKM_ECDH1_DERIVE in mechanisms,
    )


def token_error(exc: BaseException, uri: Pkcs11Uri | str, what: str | None = None) -> SandiError:
    """A PKCS#11 library error as a sandi error people can act on."""
    name = type(exc).__name__
    where = str(uri)
    if name == "PinIncorrect":
        return CredentialError(
            _("wrong PIN for the PKCS#11 token {uri}").format(uri=where),
            hint=_("give the user PIN chosen when the token was initialised (--pin-file, ${variable} "
                   "or the prompt); a few wrong PINs lock the token").format(variable=ENV_PIN),
        )
    if name in ("PinLocked", "PinExpired"):
        return CredentialError(
            _("the PIN of the PKCS#11 token {uri} is locked or expired").format(uri=where),
            hint=_("the token's security officer must reset the user PIN (SoftHSM2: softhsm2-util; "
                   "an HSM: its own tools)"),
        )
    if name in ("PinInvalid", "PinLenRange"):
        return CredentialError(_("the PIN given for the PKCS#11 token {uri} is not a valid PIN").format(
            uri=where))
    if name in ("DeviceRemoved", "TokenNotPresent", "SessionClosed", "SessionHandleInvalid",
                "DeviceError", "TokenNotRecognised", "SlotIDInvalid", "NoSuchToken"):
        return NotFoundError(
            _("the PKCS#11 token {uri} is not present ({reason})").format(uri=where, reason=name),
            hint=_("insert the token (or check pkcs11_token and the module in sandi.toml; for SoftHSM2, "
                   "SOFTHSM2_CONF and its token folder)"),
        )
    if name in ("GeneralError", "DeviceMemory", "FunctionFailed", "CryptokiNotInitialized"):
        return NotFoundError(
            _("the PKCS#11 token {uri} failed ({reason}): it was removed or its storage is "
              "damaged").format(uri=where, reason=name),
            hint=_("insert the token again, or restore it from its backup (for SoftHSM2, check the "
                   "token folder named in SOFTHSM2_CONF)"),
        )
    doing = what or _("the token operation")
    return CredentialError(
        _("the PKCS#11 token {uri} refused {what} ({reason})").format(uri=where, what=doing, reason=name),
        hint=_("check that the token supports Ed25519 (CKM_EDDSA) and is not full or write-protected"),
    )


# -- the token session ---------------------------------------------------------------------------


class TokenSession:
    """One logged-in session on the configured token, opened on first use."""

    def __init__(self, config: TokenConfig, pin: PassphraseSource) -> None:
        self.config = config
        self._pin = pin
        self._session: Any = None
        self._slot: Any = None
        self._label = config.token.get("token") or str(config.token)
        self.lock = threading.RLock()

    def __repr__(self) -> str:
        return f"TokenSession({str(self.config.token)!r})"

    @property
    def uri(self) -> Pkcs11Uri:
        return self.config.token

    def slot(self) -> Any:
        if self._slot is None:
            self._slot = find_slot(load_module(self.config.module), self.config.token)
        return self._slot

    def describe(self) -> dict[str, object]:
        """The token's identity and capabilities (no login needed)."""
        pkcs11 = _pkcs11()
        slot = self.slot()
        try:
            token = slot.get_token()
            caps = capabilities(slot)
        except pkcs11.PKCS11Error as exc:
            raise token_error(exc, self.uri) from None
        return {
            "uri": str(Pkcs11Uri({"token": _token_text(token.label), "serial": _token_text(token.serial),
                                  "manufacturer": _token_text(token.manufacturer_id),
                                  "model": _token_text(token.model)})),
            "label": _token_text(token.label),
            "serial": _token_text(token.serial),
            "manufacturer": _token_text(token.manufacturer_id),
            "model": _token_text(token.model),
            "capabilities": caps.as_json(),
        }

    def session(self) -> Any:
        """The logged-in read-write session (asks for the PIN the first time)."""
        pkcs11 = _pkcs11()
        with self.lock:
            if self._session is not None:
                return self._session
            slot = self.slot()
            pin = self._pin.get(_("the PKCS#11 token {label}").format(label=self._label))
            try:
                token = slot.get_token()
                self._session = token.open(user_pin=pin.decode("utf-8"), rw=True)
            except UnicodeDecodeError:
                raise CredentialError(_("the PIN is not UTF-8 text")) from None
            except pkcs11.PKCS11Error as exc:
                if type(exc).__name__ == "UserAlreadyLoggedIn":
                    self._session = slot.get_token().open(rw=True)
                else:
                    raise token_error(exc, self.uri) from None
            return self._session

    def close(self) -> None:
        with self.lock:
            if self._session is not None:
                with contextlib.suppress(Exception):
                    self._session.close()
                self._session = None

    # -- keys on the token -------------------------------------------------------------

    def generate_ed25519(self, label: str, key_id: bytes) -> tuple[Any, Any, bytes]:
        """A new Ed25519 key pair on the token: (public object, private object, raw public)."""
        pkcs11 = _pkcs11()
        from pkcs11 import Attribute, KeyType, Mechanism
        from pkcs11.util.ec import encode_named_curve_parameters

        caps = self.capabilities()
        if not caps.signs_ed25519:
            raise ConfigError(
                _("the PKCS#11 token {uri} cannot make Ed25519 keys (no CKM_EC_EDWARDS_KEY_PAIR_GEN "
                  "or CKM_EDDSA)").format(uri=self.uri),
                hint=_("use a token that supports Ed25519, or the file key store"),
            )
        session = self.session()
        with self.lock:
            try:
                public, private = session.generate_keypair(
                    KeyType.EC_EDWARDS, 0, store=True, label=label, id=key_id,
                    mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
                    public_template={Attribute.EC_PARAMS: encode_named_curve_parameters(ED25519_OID),
                                     Attribute.VERIFY: True, Attribute.TOKEN: True},
                    private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                                      Attribute.SIGN: True, Attribute.TOKEN: True,
                                      Attribute.PRIVATE: True},
                )
                raw = ec_point_bytes(public[Attribute.EC_POINT])
            except pkcs11.PKCS11Error as exc:
                raise token_error(exc, self.uri, _("to generate an Ed25519 key")) from None
        return public, private, raw

    def generate_p256(self, label: str, key_id: bytes) -> tuple[Any, Any, bytes]:
        """A new ECDSA P-256 key pair on the token: (public object, private object, the
        65-byte uncompressed point)."""
        pkcs11 = _pkcs11()
        from pkcs11 import Attribute, KeyType, Mechanism
        from pkcs11.util.ec import encode_named_curve_parameters

        session = self.session()
        with self.lock:
            try:
                public, private = session.generate_keypair(
                    KeyType.EC, 0, store=True, label=label, id=key_id,
                    mechanism=Mechanism.EC_KEY_PAIR_GEN,
                    public_template={Attribute.EC_PARAMS: encode_named_curve_parameters(P256_OID),
                                     Attribute.VERIFY: True, Attribute.TOKEN: True},
                    private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                                      Attribute.SIGN: True, Attribute.TOKEN: True,
                                      Attribute.PRIVATE: True},
                )
                raw = p256_point_bytes(public[Attribute.EC_POINT])
            except pkcs11.PKCS11Error as exc:
                raise token_error(exc, self.uri, _("to generate a P-256 key")) from None
        return public, private, raw

    def capabilities(self) -> TokenCapabilities:
        pkcs11 = _pkcs11()
        try:
            return capabilities(self.slot())
        except pkcs11.PKCS11Error as exc:
            raise token_error(exc, self.uri) from None

    def find(self, label: str, key_id: bytes) -> tuple[Any, Any]:
        """(public, private) objects of one sandi key; NotFoundError if either is missing."""
        pkcs11 = _pkcs11()
        from pkcs11 import Attribute, ObjectClass

        session = self.session()
        found: dict[Any, list[Any]] = {}
        with self.lock:
            try:
                for cls in (ObjectClass.PUBLIC_KEY, ObjectClass.PRIVATE_KEY):
                    found[cls] = list(session.get_objects(
                        {Attribute.CLASS: cls, Attribute.LABEL: label, Attribute.ID: key_id}))
            except pkcs11.PKCS11Error as exc:
                raise token_error(exc, self.uri) from None
        public, private = found[ObjectClass.PUBLIC_KEY], found[ObjectClass.PRIVATE_KEY]
        if len(public) != 1 or len(private) != 1:
            raise NotFoundError(
                _("the PKCS#11 token {uri} holds no key {ref}").format(uri=self.uri, ref=label),
                hint=_("this is not the token the key was made on, or the key was deleted from it; "
                       "restore the token from its backup"),
            )
        return public[0], private[0]

    def destroy(self, label: str, key_id: bytes) -> None:
        pkcs11 = _pkcs11()
        public, private = self.find(label, key_id)
        with self.lock:
            try:
                private.destroy()
                public.destroy()
            except pkcs11.PKCS11Error as exc:
                raise token_error(exc, self.uri, _("to delete a key")) from None


def ec_point_bytes(value: bytes) -> bytes:
    """The raw 32-byte Ed25519 public key from ``CKA_EC_POINT`` (a DER OCTET STRING, or
    raw as some tokens give it)."""
    data = bytes(value)
    if len(data) == 34 and data[0] == 0x04 and data[1] == 0x20:
        return data[2:]
    if len(data) == 32:
        return data
    raise FormatError(_("the token gave an Ed25519 public key in a form sandi does not know"))


def p256_point_bytes(value: bytes) -> bytes:
    """The 65-byte uncompressed P-256 point from ``CKA_EC_POINT`` (a DER OCTET STRING, or
    raw as some tokens give it)."""
    data = bytes(value)
    if len(data) == 67 and data[:3] == b"\x04\x41\x04":
        return data[2:]
    if len(data) == 65 and data[0] == 0x04:
        return data
    raise FormatError(_("the token gave a P-256 public key in a form sandi does not know"))


def _ref_kind(ref: str) -> str:
    """The key kind a reference names (``OWNER.KIND.<fp16>``, see :func:`key_ref`)."""
    parts = ref.rsplit(".", 2)
    return parts[1] if len(parts) == 3 else ""


# -- signing on the token ---------------------------------------------------------------------


# Programming errors (TypeError), not messages for people.
_NEVER_LEAVES = "a token key never leaves the token"
_NOT_COPIED = "a token key is not copied or pickled"


class _TokenPrivateKey(Ed25519PrivateKey):
    """The ``cryptography`` face of a token key, so certificate and CRL builders sign
    with it (they call ``sign``); every way to read the private key raises."""

    def __init__(self, signer: TokenSigner) -> None:
        self._signer = signer

    def public_key(self) -> Ed25519PublicKey:
        return self._signer.public_key()

    def sign(self, data: bytes | bytearray | memoryview) -> bytes:
        return self._signer.sign(bytes(data))

    def private_bytes(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(_NEVER_LEAVES)

    def private_bytes_raw(self) -> NoReturn:
        raise TypeError(_NEVER_LEAVES)

    def __copy__(self) -> NoReturn:
        raise TypeError(_NOT_COPIED)

    def __deepcopy__(self, memo: object) -> NoReturn:
        raise TypeError(_NOT_COPIED)


class TokenSigner(Signer):
    """An Ed25519 key on a PKCS#11 token: every signature is made by the token."""

    __slots__ = ("_private", "_pub", "_session", "ref")

    def __init__(self, session: TokenSession, ref: str, private: Any, public_raw: bytes) -> None:
        self._session = session
        self.ref = ref
        self._private = private
        self._pub = public_raw

    def sign(self, data: bytes) -> bytes:
        pkcs11 = _pkcs11()
        from pkcs11 import Mechanism

        with self._session.lock:
            try:
                signature = bytes(self._private.sign(bytes(data), mechanism=Mechanism.EDDSA))
            except pkcs11.PKCS11Error as exc:
                raise token_error(exc, self._session.uri, _("to sign")) from None
        if len(signature) != 64:
            raise CredentialError(_("the PKCS#11 token gave a signature of {size} bytes, not 64").format(
                size=len(signature)))
        return signature

    def public_key_bytes(self) -> bytes:
        return self._pub

    def sign_x509(self, builder: Any) -> Any:
        return builder.sign(_TokenPrivateKey(self), None)

    def __repr__(self) -> str:
        return f"TokenSigner({self.ref!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError(_NOT_COPIED)


class _TokenEcPrivateKey(ec.EllipticCurvePrivateKey):
    """The ``cryptography`` face of a token P-256 key for certificate and CRL builders
    (they call ``sign``); every way to read the private key raises."""

    def __init__(self, signer: TokenP256Signer) -> None:
        self._signer = signer

    @property
    def curve(self) -> ec.EllipticCurve:
        return ec.SECP256R1()

    @property
    def key_size(self) -> int:
        return 256

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._signer.public_key()

    def sign(self, data: bytes | bytearray | memoryview,
             signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        algorithm = getattr(signature_algorithm, "algorithm", None)
        if not isinstance(signature_algorithm, ec.ECDSA) or not isinstance(algorithm, hashes.SHA256):
            raise TypeError("a token P-256 key signs ECDSA with SHA-256 only")
        return self._signer.sign(bytes(data))

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> NoReturn:
        raise TypeError(_NEVER_LEAVES)

    def private_numbers(self) -> NoReturn:
        raise TypeError(_NEVER_LEAVES)

    def private_bytes(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(_NEVER_LEAVES)

    def __copy__(self) -> NoReturn:
        raise TypeError(_NOT_COPIED)

    def __deepcopy__(self, memo: object) -> NoReturn:
        raise TypeError(_NOT_COPIED)


class TokenP256Signer(P256Signer):
    """An ECDSA P-256 key on a PKCS#11 token: the token signs the SHA-256 digest."""

    __slots__ = ("_private", "_pub", "_session", "ref")

    def __init__(self, session: TokenSession, ref: str, private: Any, public_raw: bytes) -> None:
        self._session = session
        self.ref = ref
        self._private = private
        self._pub = public_raw

    def sign(self, data: bytes) -> bytes:
        import hashlib

        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        pkcs11 = _pkcs11()
        from pkcs11 import Mechanism

        digest = hashlib.sha256(bytes(data)).digest()
        with self._session.lock:
            try:
                raw = bytes(self._private.sign(digest, mechanism=Mechanism.ECDSA))
            except pkcs11.PKCS11Error as exc:
                raise token_error(exc, self._session.uri, _("to sign")) from None
        if len(raw) != 64:
            raise CredentialError(_("the PKCS#11 token gave a signature of {size} bytes, not 64").format(
                size=len(raw)))
        # PKCS#11 gives r || s (32 bytes each); CMS and X.509 carry the DER SEQUENCE
        return encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), self._pub)

    def public_key_bytes(self) -> bytes:
        return self._pub

    def sign_x509(self, builder: Any) -> Any:
        return builder.sign(_TokenEcPrivateKey(self), hashes.SHA256())

    def __repr__(self) -> str:
        return f"TokenP256Signer({self.ref!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError(_NOT_COPIED)


# -- the store --------------------------------------------------------------------------------


def object_id(public_fingerprint: str) -> bytes:
    """``CKA_ID`` of a sandi key: the first 8 bytes of its fingerprint (the reference's suffix)."""
    return bytes.fromhex(public_fingerprint[:16])


class Pkcs11KeyStore(KeyStore):
    """Token keys (signing) plus a fallback store for everything else."""

    kind = "pkcs11"
    hardware = True

    def __init__(self, keys_dir: Path, fallback: KeyStore, config: TokenConfig,
                 pin: PassphraseSource) -> None:
        self.keys_dir = keys_dir
        self.fallback = fallback
        self.config = config
        self.token = TokenSession(config, pin)
        self._signers: dict[str, TokenSigner] = {}
        self._p256_signers: dict[str, TokenP256Signer] = {}
        self._load_index()

    def __repr__(self) -> str:
        return f"Pkcs11KeyStore({str(self.config.token)!r}, fallback={self.fallback.kind})"

    @classmethod
    def create(cls, keys_dir: Path, fallback: KeyStore, config: TokenConfig,
               pin: PassphraseSource) -> Pkcs11KeyStore:
        """Check that the token is there and can make Ed25519 keys, and write the index."""
        session = TokenSession(config, pin)
        if not session.capabilities().signs_ed25519:
            raise ConfigError(
                _("the PKCS#11 token {uri} cannot make Ed25519 keys (no CKM_EC_EDWARDS_KEY_PAIR_GEN "
                  "or CKM_EDDSA)").format(uri=config.token),
                hint=_("use a token that supports Ed25519, or the file key store"),
            )
        session.session()  # the PIN is right: fail at init, not at the first signature
        ensure_private_dir(keys_dir)
        index = {"format": INDEX_FORMAT, "token": str(config.token), "keys": {}}
        atomic_write(keys_dir / INDEX_NAME, json.dumps(index, indent=1).encode(), mode=0o600,
                     overwrite=False)
        store = cls(keys_dir, fallback, config, pin)
        store.token = session
        return store

    # -- the index (public data) ---------------------------------------------------------

    def _load_index(self) -> dict[str, Any]:
        path = self.keys_dir / INDEX_NAME
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_INDEX_BYTES + 1)
        except FileNotFoundError:
            raise NotFoundError(
                _("no PKCS#11 key index in {folder}").format(folder=self.keys_dir),
                hint=_("create the home with 'sandi init --keystore pkcs11'"),
            ) from None
        try:
            data = json.loads(raw)
            ok = (isinstance(data, dict) and data.get("format") == INDEX_FORMAT
                  and isinstance(data.get("keys"), dict)
                  and all(isinstance(v, dict) and isinstance(v.get("fingerprint"), str)
                          for v in data["keys"].values()))
        except ValueError:
            ok = False
        if not ok or len(raw) > MAX_INDEX_BYTES:
            raise FormatError(_("{path} is not a sandi PKCS#11 key index").format(path=path))
        return dict(data)

    def _save_index(self, index: dict[str, Any]) -> None:
        atomic_write(self.keys_dir / INDEX_NAME, json.dumps(index, indent=1, sort_keys=True).encode(),
                     mode=0o600)

    def token_refs(self) -> list[str]:
        return sorted(self._load_index()["keys"])

    def _token_fingerprint(self, ref: str) -> str | None:
        entry = self._load_index()["keys"].get(ref)
        return None if entry is None else str(entry["fingerprint"])

    def key_uri(self, ref: str) -> str:
        """The RFC 7512 URI of a token key (private object)."""
        fp = self._token_fingerprint(check_ref(ref))
        if fp is None:
            raise NotFoundError(_("{ref} is not a key on the PKCS#11 token").format(ref=ref))
        attrs = {k: v for k, v in self.config.token.attributes.items() if k in ("token", "serial")}
        return str(Pkcs11Uri({**attrs, "object": ref, "type": "private"}, object_id=object_id(fp)))

    # -- KeyStore ------------------------------------------------------------------------

    def _write(self, record: StoredKey) -> None:
        if self._token_fingerprint(record.ref) is not None:
            raise AlreadyExistsError(_("key {ref} exists already").format(ref=record.ref),
                                     hint=_("sandi never overwrites a key"))
        self.fallback._write(record)

    def _read(self, ref: str) -> StoredKey:
        if self._token_fingerprint(ref) is not None:
            raise CredentialError(
                _("the key {ref} lives on the PKCS#11 token and never leaves it").format(ref=ref),
                hint=_("it signs on the token; it cannot be exported or copied (back up the token "
                       "with its own tools)"),
            )
        return self.fallback._read(ref)

    def refs(self) -> list[str]:
        return sorted({*self.fallback.refs(), *self.token_refs()})

    def delete(self, ref: str) -> None:
        fp = self._token_fingerprint(check_ref(ref))
        if fp is None:
            self.fallback.delete(ref)
            return
        with contextlib.suppress(NotFoundError):
            self.token.destroy(ref, object_id(fp))
        index = self._load_index()
        index["keys"].pop(ref, None)
        self._save_index(index)
        self._signers.pop(ref, None)
        self._p256_signers.pop(ref, None)

    def close(self) -> None:
        self._signers.clear()
        self._p256_signers.clear()
        self.token.close()

    def location(self, ref: str) -> str:
        return "token" if self._token_fingerprint(check_ref(ref)) is not None else self.fallback.location(ref)

    def signer(self, ref: str) -> Signer:
        fp = self._token_fingerprint(check_ref(ref))
        if fp is None:
            return self.fallback.signer(ref)
        if _ref_kind(ref) != "signing":
            raise CredentialError(_("{ref} is a {kind} key, not a {kind2} key").format(
                ref=ref, kind=_ref_kind(ref), kind2="signing"))
        cached = self._signers.get(ref)
        if cached is not None:
            return cached
        from pkcs11 import Attribute

        public, private = self.token.find(ref, object_id(fp))
        try:
            raw = ec_point_bytes(public[Attribute.EC_POINT])
        except _pkcs11().PKCS11Error as exc:
            raise token_error(exc, self.config.token) from None
        if fingerprint(raw) != fp:
            raise CredentialError(
                _("the token object {ref} is not the key sandi made under that name").format(ref=ref),
                hint=_("the token was changed by other tools; restore it from its backup"),
            )
        signer = TokenSigner(self.token, ref, private, raw)
        self._signers[ref] = signer
        return signer

    def p256_signer(self, ref: str) -> P256Signer:
        fp = self._token_fingerprint(check_ref(ref))
        if fp is None:
            return self.fallback.p256_signer(ref)
        if _ref_kind(ref) != "ecdsa-p256":
            raise CredentialError(_("{ref} is a {kind} key, not a {kind2} key").format(
                ref=ref, kind=_ref_kind(ref), kind2="ecdsa-p256"))
        cached = self._p256_signers.get(ref)
        if cached is not None:
            return cached
        from pkcs11 import Attribute

        public, private = self.token.find(ref, object_id(fp))
        try:
            raw = p256_point_bytes(public[Attribute.EC_POINT])
        except _pkcs11().PKCS11Error as exc:
            raise token_error(exc, self.config.token) from None
        if fingerprint(raw) != fp:
            raise CredentialError(
                _("the token object {ref} is not the key sandi made under that name").format(ref=ref),
                hint=_("the token was changed by other tools; restore it from its backup"),
            )
        signer = TokenP256Signer(self.token, ref, private, raw)
        self._p256_signers[ref] = signer
        return signer

    def new_p256_key(self, owner: str, *, on_token: bool = False) -> tuple[str, P256Signer]:
        if not on_token:
            return self.fallback.new_p256_key(owner)
        temporary = f"sandi-new-{secrets.token_hex(8)}"
        public, private, raw = self.token.generate_p256(temporary, b"\0" * 8)
        ref = self._name_token_key(owner, "ecdsa-p256", public, private, raw)
        signer = TokenP256Signer(self.token, ref, private, raw)
        self._p256_signers[ref] = signer
        return ref, signer

    def new_signing_key(self, owner: str, *, on_token: bool = False) -> tuple[str, Signer]:
        if not on_token:
            return self.fallback.new_signing_key(owner)
        # A temporary label until the public key (and so the reference) is known.
        temporary = f"sandi-new-{secrets.token_hex(8)}"
        public, private, raw = self.token.generate_ed25519(temporary, b"\0" * 8)
        ref = self._name_token_key(owner, "signing", public, private, raw)
        signer = TokenSigner(self.token, ref, private, raw)
        self._signers[ref] = signer
        return ref, signer

    def _name_token_key(self, owner: str, kind: KeyKind, public: Any, private: Any, raw: bytes) -> str:
        """Label a freshly generated token key with its reference and index it (the key is
        destroyed again if that fails)."""
        fp = fingerprint(raw)
        ref = key_ref(owner, kind, fp)
        try:
            if self.contains(ref):
                raise AlreadyExistsError(_("key {ref} exists already").format(ref=ref))
            from pkcs11 import Attribute

            with self.token.lock:
                try:
                    for obj in (public, private):
                        obj[Attribute.LABEL] = ref
                        obj[Attribute.ID] = object_id(fp)
                except _pkcs11().PKCS11Error as exc:
                    raise token_error(exc, self.config.token, _("to name a new key")) from None
            index = self._load_index()
            index["keys"][ref] = {"fingerprint": fp, "owner": owner}
            self._save_index(index)
        except BaseException:
            with contextlib.suppress(Exception), self.token.lock:
                private.destroy()
                public.destroy()
            raise
        return ref

    def put_signing_key(self, ref: str, key: SigningKey) -> None:
        # A software key is never imported onto the token: it existed outside it.
        self._write(StoredKey(check_ref(ref), "signing", key.fingerprint, key.private_bytes_unsafe()))

    def put_encryption_key(self, ref: str, identity: X25519Identity) -> None:
        self.fallback.put_encryption_key(ref, identity)

    def status(self) -> dict[str, object]:
        """What is where: the token (identity, capabilities) and each key's place."""
        info = self.token.describe()
        return {
            "keystore": "pkcs11",
            "module": self.config.module,
            "token": info,
            "fallback": self.fallback.kind,
            "keys": [{"ref": r, "location": self.location(r),
                      **({"uri": self.key_uri(r)} if self.location(r) == "token" else {})}
                     for r in self.refs()],
        }


def default_pin_source() -> PassphraseSource:
    """The PIN from ``$SANDI_PKCS11_PIN`` (libraries); the command line adds --pin-file and a prompt."""
    from sandi.keystore.passphrase import EnvPassphrase

    return _PinFromEnv(EnvPassphrase(ENV_PIN))


class _PinFromEnv:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __repr__(self) -> str:
        return f"PinFrom(${ENV_PIN})"

    def get(self, purpose: str, *, confirm: bool = False) -> bytes:
        if not self._inner.available():
            raise CredentialError(
                _("a PIN is needed for {purpose}").format(purpose=purpose),
                hint=_("give --pin-file FILE or set {variable}").format(variable=ENV_PIN),
            )
        value: bytes = self._inner.get(purpose, confirm=confirm)
        return value


__all__ = [
    "ENV_MODULE",
    "ENV_PASSPHRASE",
    "ENV_PIN",
    "Pkcs11KeyStore",
    "Pkcs11Uri",
    "TokenCapabilities",
    "TokenConfig",
    "TokenSession",
    "TokenSigner",
    "default_pin_source",
    "ec_point_bytes",
]
