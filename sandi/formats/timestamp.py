"""RFC 3161 time-stamp requests, replies and tokens (docs/format.md, section 3.8).

asn1crypto builds and parses every structure (no hand-written DER); ``cryptography``
signs (ECDSA P-256 with SHA-256, ADR 0013 decision 8) and verifies.

Invariants:

* a request or token is read only within its size bound (``MAX_QUERY_BYTES``,
  ``MAX_TOKEN_BYTES``) and parsed strictly (no trailing bytes); a request in full before
  any field is used, a token field by field inside one error handler; anything asn1crypto
  cannot read is a :class:`FormatError` (a rejected request: badDataFormat);
* message imprints use SHA-256, SHA-384 or SHA-512 only, with a digest of exactly that
  algorithm's length; nonces are at most 256 bits;
* a token is accepted (:func:`verify_token_signature`) only as a CMS SignedData holding
  a TSTInfo with exactly one signer, whose signed attributes carry the TSTInfo content
  type, the digest of the TSTInfo and an ESS signing-certificate(-v2) naming the
  certificate the caller trusts, signed with that certificate's key. Which certificate
  to trust (published, chained to the root, unrevoked) is the caller's decision;
* the library signs through a callable, so the private key never passes through here.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sandi.errors import FormatError, VerificationError
from sandi.i18n import _

#: the time-stamp policy sandi's TSA states in every token: a placeholder private OID
#: under the UUID arc (ITU-T X.667) until the province registers an arc of its own
#: ("sandi TSA policy v1", docs/format.md section 3.8)
POLICY_OID = "2.25.96640368957475592623039154372901474828"
#: hash algorithms accepted in a message imprint, with their digest lengths
HASH_ALGORITHMS = {"sha256": 32, "sha384": 48, "sha512": 64}
#: a TimeStampReq is about 100 bytes; anything this large is not one
MAX_QUERY_BYTES = 4096
#: a token without the TSA certificate is about 700 bytes, with it about 1,200
MAX_TOKEN_BYTES = 8192
MAX_NONCE_BITS = 256

SignFunction = Callable[[bytes], bytes]


@dataclass(frozen=True)
class Query:
    """What a TimeStampReq asks for."""

    hash_algorithm: str
    hashed_message: bytes
    nonce: int | None
    cert_req: bool
    policy: str | None


class Rejected(Exception):
    """A request the TSA refuses: RFC 3161 PKIFailureInfo name and a short English text."""

    def __init__(self, fail_info: str, text: str) -> None:
        super().__init__(text)
        self.fail_info = fail_info
        self.text = text


def _load(spec: type, data: bytes, what: str, *, whole: bool = True) -> object:
    """``data`` as ``spec``, nothing trailing; ``whole``: every field parsed now (else
    lazily: the caller reads its fields inside its own error handling, because parsing a
    whole token this way takes asn1crypto a tenth of a second)."""
    try:
        value = spec.load(data, strict=True)  # type: ignore[attr-defined]
        if whole:
            value.native  # noqa: B018 (parses every field now, so nothing fails later)
        return value
    except (ValueError, TypeError, KeyError, IndexError, OverflowError):
        raise FormatError(_("{what} is not valid DER").format(what=what)) from None


def make_query(hash_algorithm: str, digest: bytes, *, nonce: int, cert_req: bool = False) -> bytes:
    """A TimeStampReq (DER) for ``digest``."""
    from asn1crypto import tsp

    _check_imprint(hash_algorithm, digest)
    return bytes(tsp.TimeStampReq({
        "version": "v1",
        "message_imprint": {"hash_algorithm": {"algorithm": hash_algorithm}, "hashed_message": digest},
        "nonce": nonce,
        "cert_req": cert_req,
    }).dump())


def _check_imprint(hash_algorithm: str, digest: bytes) -> None:
    if HASH_ALGORITHMS.get(hash_algorithm) != len(digest):
        raise Rejected("bad_alg", "the hash algorithm must be SHA-256, SHA-384 or SHA-512, "
                                  "with a digest of its length")


def parse_query(data: bytes) -> Query:
    """The request in ``data``; :class:`Rejected` says why the TSA refuses it."""
    from asn1crypto import tsp

    if len(data) > MAX_QUERY_BYTES:
        raise Rejected("bad_data_format", "the request is too large")
    try:
        request = _load(tsp.TimeStampReq, data, "the time-stamp request")
    except FormatError:
        raise Rejected("bad_data_format", "the body is not a DER TimeStampReq") from None
    assert isinstance(request, tsp.TimeStampReq)
    if request["version"].native != "v1":
        raise Rejected("bad_data_format", "only version 1 requests are answered")
    imprint = request["message_imprint"]
    algorithm = imprint["hash_algorithm"]["algorithm"].native
    if imprint["hash_algorithm"]["parameters"].native is not None:
        raise Rejected("bad_alg", "the hash algorithm has parameters")
    digest = bytes(imprint["hashed_message"].native)
    _check_imprint(algorithm, digest)
    if request["extensions"].native:
        raise Rejected("unaccepted_extension", "no request extension is supported")
    policy = request["req_policy"].native
    if policy is not None and policy != POLICY_OID:
        raise Rejected("unaccepted_policy", "this TSA issues tokens under one policy only")
    nonce = request["nonce"].native
    if nonce is not None and (nonce < 0 or nonce.bit_length() > MAX_NONCE_BITS):
        raise Rejected("bad_data_format", "the nonce is negative or longer than 256 bits")
    return Query(algorithm, digest, nonce, bool(request["cert_req"].native), policy)


def _digest(algorithm: str, data: bytes) -> bytes:
    return hashlib.new(algorithm, data).digest()


def granted_reply(query: Query, *, serial: int, gen_time: datetime, certificate_der: bytes,
                  sign: SignFunction) -> bytes:
    """A TimeStampResp (DER) granting ``query``: a token signed by ``sign`` (ECDSA
    P-256 over SHA-256 of the signed attributes, DER signature) for the TSA certificate
    ``certificate_der``, carried in the token when the request asked for it."""
    from asn1crypto import algos, cms, core, tsp, x509

    tst_info = tsp.TSTInfo({
        "version": "v1",
        "policy": POLICY_OID,
        "message_imprint": {"hash_algorithm": {"algorithm": query.hash_algorithm},
                            "hashed_message": query.hashed_message},
        "serial_number": serial,
        "gen_time": gen_time.astimezone(UTC).replace(microsecond=0),
        "accuracy": {"seconds": 1},
        **({"nonce": query.nonce} if query.nonce is not None else {}),
    })
    content = tst_info.dump()
    sid_der, signing_certificate_der = _signer_parts(certificate_der)
    signed_attrs = cms.CMSAttributes([
        cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
        cms.CMSAttribute({"type": "message_digest", "values": [_digest("sha256", content)]}),
        cms.CMSAttribute.load(signing_certificate_der),
    ])
    signature = sign(signed_attrs.dump())
    signer_info = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier.load(sid_der),
        "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
        "signed_attrs": signed_attrs,
        "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
        "signature": signature,
    })
    signed_data = cms.SignedData({
        "version": "v3",
        "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
        "encap_content_info": cms.EncapsulatedContentInfo({
            "content_type": "tst_info", "content": core.ParsableOctetString(content)}),
        **({"certificates": [x509.Certificate.load(certificate_der)]} if query.cert_req else {}),
        "signer_infos": [signer_info],
    })
    token = cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
    return bytes(tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token}).dump())


def _reply_spec() -> type:
    """TimeStampResp as RFC 3161 defines it: asn1crypto's own lacks the OPTIONAL on the
    token, so it can neither write nor read a rejection."""
    from asn1crypto import cms, core, tsp

    class TimeStampResp(core.Sequence):  # type: ignore[misc]
        _fields = [  # noqa: RUF012 (asn1crypto's declaration style)
            ("status", tsp.PKIStatusInfo),
            ("time_stamp_token", cms.ContentInfo, {"optional": True}),
        ]

    return TimeStampResp


@functools.lru_cache(maxsize=4)
def _signer_parts(certificate_der: bytes) -> tuple[bytes, bytes]:
    """(SignerIdentifier, ESS signing-certificate-v2 attribute) of a TSA certificate, as
    DER: the same for every token, and slow to encode (asn1crypto compares the
    attribute's default hash algorithm field by field), so made once per certificate."""
    from asn1crypto import cms, x509

    certificate = x509.Certificate.load(certificate_der)
    sid = cms.SignerIdentifier("issuer_and_serial_number", cms.IssuerAndSerialNumber({
        "issuer": certificate.issuer, "serial_number": certificate.serial_number}))
    attribute = cms.CMSAttribute({"type": "signing_certificate_v2", "values": [
        {"certs": [{"cert_hash": _digest("sha256", certificate_der)}]}]})
    return bytes(sid.dump()), bytes(attribute.dump())


def rejection_reply(rejected: Rejected) -> bytes:
    """A TimeStampResp (DER) with status rejection, the failure and its text."""
    return bytes(_reply_spec()({"status": {
        "status": "rejection", "status_string": [rejected.text], "fail_info": {rejected.fail_info},
    }}).dump())


def token_from_reply(data: bytes) -> bytes:
    """The token (DER ContentInfo) of a granted TimeStampResp; FormatError for a
    malformed reply, VerificationError naming the TSA's reason for a refusal."""
    from asn1crypto import core

    if len(data) > MAX_TOKEN_BYTES + 1024:
        raise FormatError(_("the time-stamp reply is too large"))
    reply: Any = _load(_reply_spec(), data, "the time-stamp reply", whole=False)
    try:
        status = reply["status"]["status"].native
        if status not in ("granted", "granted_with_mods"):
            text = "; ".join(reply["status"]["status_string"].native or [])[:300]
            raise VerificationError(_("the time-stamp authority refused: {status} {text}").format(
                status=status, text=text))
        token = reply["time_stamp_token"]
        if isinstance(token, core.Void):
            raise FormatError(_("the time-stamp reply carries no token"))
        # The token's own bytes as received (parse_token reads them in full).
        return bytes(token.dump())
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        raise FormatError(_("{what} is not valid DER").format(what="the time-stamp reply")) from None


@dataclass(frozen=True)
class Token:
    """A parsed time-stamp token: what it states, and what its signature check needs."""

    der: bytes
    gen_time: datetime
    serial: int
    policy: str
    hash_algorithm: str
    hashed_message: bytes
    nonce: int | None
    signer_serial: int
    #: the signer's issuer name (DER), as the SignerInfo names it
    signer_issuer: bytes
    #: certificates the token carries (DER), if the request asked for them
    certificates: tuple[bytes, ...]
    _content: bytes
    _signed_attrs: bytes
    _signature: bytes
    _digest_algorithm: str
    _message_digest: bytes
    _cert_hash: tuple[str, bytes] | None

    def imprint_matches(self, hash_algorithm: str, digest: bytes) -> bool:
        import hmac

        return self.hash_algorithm == hash_algorithm and hmac.compare_digest(self.hashed_message, digest)


def _malformed(reason: str) -> FormatError:
    return FormatError(_("malformed time-stamp token ({reason})").format(reason=reason))


def _plain_digest(identifier: Any) -> str:
    """The name of a SHA-2 digest AlgorithmIdentifier whose parameters are absent or NULL."""
    name = identifier["algorithm"].native
    if name not in HASH_ALGORITHMS or bytes(identifier["parameters"].dump()) not in (b"", b"\x05\x00"):
        raise _malformed("digest algorithm")
    return str(name)


def parse_token(der: bytes) -> Token:
    """A token (DER ContentInfo); FormatError for anything else. Checks structure only:
    :func:`verify_token_signature` checks the signature."""
    from asn1crypto import cms, core

    if len(der) > MAX_TOKEN_BYTES:
        raise _malformed("too large")
    info = _load(cms.ContentInfo, der, "the time-stamp token", whole=False)
    assert isinstance(info, cms.ContentInfo)
    try:
        if info["content_type"].native != "signed_data":
            raise _malformed("not SignedData")
        signed = info["content"]
        encap = signed["encap_content_info"]
        if encap["content_type"].native != "tst_info" or encap["content"].native is None:
            raise _malformed("no TSTInfo")
        tst = encap["content"].parsed
        content = bytes(encap["content"].contents)
        if signed["version"].native != "v3":
            raise _malformed("SignedData version")
        signers = signed["signer_infos"]
        if len(signers) != 1:
            raise _malformed("not exactly one signer")
        signer = signers[0]
        sid = signer["sid"]
        if sid.name != "issuer_and_serial_number":
            raise _malformed("signer not named by issuer and serial")
        digest_algorithm = _plain_digest(signer["digest_algorithm"])
        if signer["version"].native != "v1":
            raise _malformed("SignerInfo version")
        if [_plain_digest(a) for a in signed["digest_algorithms"]] != [digest_algorithm]:
            raise _malformed("digest algorithms")
        if signer["signature_algorithm"]["algorithm"].native != f"{digest_algorithm}_ecdsa":
            raise _malformed("signature algorithm")
        attrs = signer["signed_attrs"]
        if isinstance(attrs, core.Void) or len(attrs) == 0:
            raise _malformed("no signed attributes")
        found: dict[str, object] = {}
        for attr in attrs:
            name = attr["type"].native
            if name in found or len(attr["values"]) != 1:
                raise _malformed("repeated signed attribute")
            found[name] = attr["values"][0]
        if found.get("content_type") is None or found["content_type"].native != "tst_info":  # type: ignore[attr-defined]
            raise _malformed("content type attribute")
        message_digest = found.get("message_digest")
        if message_digest is None:
            raise _malformed("no message digest")
        cert_hash: tuple[str, bytes] | None = None
        if "signing_certificate_v2" in found:
            ids = found["signing_certificate_v2"]["certs"]  # type: ignore[index]
            if len(ids) < 1:
                raise _malformed("empty signing certificate")
            cert_hash = (ids[0]["hash_algorithm"]["algorithm"].native, bytes(ids[0]["cert_hash"].native))
        elif "signing_certificate" in found:
            ids = found["signing_certificate"]["certs"]  # type: ignore[index]
            if len(ids) < 1:
                raise _malformed("empty signing certificate")
            cert_hash = ("sha1", bytes(ids[0]["cert_hash"].native))
        if cert_hash is None:
            raise _malformed("no signing certificate attribute")
        gen_time = tst["gen_time"].native
        if tst["version"].native != "v1" or not isinstance(gen_time, datetime):
            raise _malformed("TSTInfo version or time")
        imprint = tst["message_imprint"]
        certs = () if isinstance(signed["certificates"], core.Void) else tuple(
            bytes(c.chosen.dump()) for c in signed["certificates"])
        return Token(
            der=der, gen_time=gen_time.astimezone(UTC), serial=int(tst["serial_number"].native),
            policy=str(tst["policy"].native),
            hash_algorithm=str(imprint["hash_algorithm"]["algorithm"].native),
            hashed_message=bytes(imprint["hashed_message"].native), nonce=tst["nonce"].native,
            signer_serial=int(sid.chosen["serial_number"].native),
            signer_issuer=bytes(sid.chosen["issuer"].dump()), certificates=certs,
            _content=content, _signed_attrs=bytes(attrs.untag().dump()),
            _signature=bytes(signer["signature"].native), _digest_algorithm=digest_algorithm,
            _message_digest=bytes(message_digest.native),  # type: ignore[attr-defined]
            _cert_hash=cert_hash,
        )
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        raise _malformed("structure") from None


def verify_token_signature(token: Token, certificate_der: bytes) -> None:
    """Check that the TSA certificate ``certificate_der`` signed ``token``: the signed
    attributes name it, carry the TSTInfo's digest, and its key's signature verifies.
    VerificationError otherwise (one message, whichever check failed)."""
    import hmac

    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    failed = VerificationError(_("the time-stamp token's signature does not verify"))
    algorithm, cert_hash = token._cert_hash or ("", b"")
    if algorithm not in ("sha1", *HASH_ALGORITHMS) or not hmac.compare_digest(
            _digest(algorithm, certificate_der), cert_hash):
        raise failed
    if not hmac.compare_digest(_digest(token._digest_algorithm, token._content), token._message_digest):
        raise failed
    certificate = x509.load_der_x509_certificate(certificate_der)
    if certificate.serial_number != token.signer_serial or not hmac.compare_digest(
            certificate.issuer.public_bytes(), token.signer_issuer):
        raise failed
    key = certificate.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise failed
    chosen = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}
    try:
        key.verify(token._signature, token._signed_attrs, ec.ECDSA(chosen[token._digest_algorithm]))
    except (InvalidSignature, ValueError):
        raise failed from None
