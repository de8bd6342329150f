"""RFC 3161 time-stamps for sealed documents and detached signatures (ADR 0013).

A workstation asks the authority's server (``BASE/timestamp``) for a token over the
hash of what it signs and carries the token inside the signed metadata (the
``timestamp`` field, docs/format.md section 3.8). Because the signature covers the
token, and the token covers a hash that did not exist before the document was sealed
or signed, the signature cannot be older than the token's genTime: a claimed signing
time far before genTime (back-dating) is refused.

What the token covers (its message imprint, always SHA-256):

* a sealed document: SHA-256 over the binary age header followed by the document
  (the header is fresh for every seal, so the server learns nothing of the plaintext);
* a detached signature: SHA-256 of the document.

Invariants of :func:`verify_timestamp`: the token parses strictly, its imprint is the
document's, it states sandi's TSA policy, it is signed by a TSA certificate the signed
directory publishes, which chains to the root, has the timeStamping key purpose, was
valid at genTime and not revoked by then (a keyCompromise revocation voids every token
it signed); genTime is not in the future (5 minutes of skew), and the claimed signing
time lies within ``TOLERANCE`` of it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sandi.authority.validity import CLOCK_SKEW, VOIDS_ALL_SIGNATURES
from sandi.directory.snapshot import DirectorySnapshot, TsaEntry
from sandi.errors import FormatError, ServerError, UsageError, VerificationError
from sandi.i18n import _
from sandi.timefmt import iso_time, show_time

if TYPE_CHECKING:
    from sandi.home import Home

#: how far a claimed signing time may lie from the token's genTime: clock differences
#: between workstation and server, and the time to stream a large document before the
#: token is asked for. Further is refused (a back-dated or post-dated claim).
TOLERANCE = timedelta(minutes=15)
#: the largest token carried in metadata (sandi's, without the certificate, are about
#: 480 bytes); the metadata keeps room for its base64 (``MAX_TIMESTAMP_TEXT``)
MAX_EMBEDDED_TOKEN_BYTES = 1024
REQUEST_TIMEOUT = 5.0
QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"


@dataclass(frozen=True)
class Stamper:
    """Where to ask for time-stamps, and whether failing to get one is an error."""

    url: str
    required: bool


def usable_tsa(snapshot: DirectorySnapshot, now: datetime) -> TsaEntry | None:
    """A published TSA certificate valid now and unrevoked, if any."""
    for entry in snapshot.timestamp_authorities:
        if entry.revocation is None and entry.not_before <= now < entry.not_after:
            return entry
    return None


def stamper_for(home: Home, snapshot: DirectorySnapshot, choice: bool | None,
                now: datetime) -> Stamper | None:
    """The stamper to use, or None. ``choice``: ``--timestamp`` (True), ``--no-timestamp``
    (False) or neither (None: the home's ``timestamps`` setting; unset means "when the
    home has a server and the directory publishes a time-stamp authority")."""
    from sandi.directory.online import server_url

    if choice is False:
        return None
    base = server_url(home)
    setting = home.load_config().extra.get("timestamps")
    if choice is None:
        if setting is False:
            return None
        if setting is not True and (base is None or usable_tsa(snapshot, now) is None):
            return None
    if base is None:
        if choice is True:
            raise UsageError(_("time-stamps need the authority's server, and this home has none"),
                             hint=_("set server_url in sandi.toml (or 'sandi init --server URL'), or "
                                    "leave out --timestamp"))
        return None
    return Stamper(url=base.rstrip("/") + "/timestamp", required=choice is True)


def request_token(stamper: Stamper, digest: bytes, snapshot: DirectorySnapshot, *, claimed: datetime,
                  now: datetime) -> tuple[bytes, VerifiedTimestamp]:
    """A token (DER) over ``digest`` (SHA-256) from the server, checked as a verifier
    will check it; ServerError, FormatError or VerificationError otherwise."""
    from sandi.formats.timestamp import MAX_TOKEN_BYTES, make_query, parse_token, token_from_reply
    from sandi.httpclient import http_request

    nonce = secrets.randbits(128)
    query = make_query("sha256", digest, nonce=nonce, cert_req=False)
    _status, body = http_request(stamper.url, headers={"Content-Type": QUERY_TYPE, "Accept": REPLY_TYPE},
                                 timeout=REQUEST_TIMEOUT, limit=MAX_TOKEN_BYTES + 1024, data=query)
    token_der = token_from_reply(body)
    if len(token_der) > MAX_EMBEDDED_TOKEN_BYTES:
        raise FormatError(_("the time-stamp token is larger than {limit} bytes").format(
            limit=MAX_EMBEDDED_TOKEN_BYTES))
    if parse_token(token_der).nonce != nonce:
        raise VerificationError(_("the time-stamp reply does not answer this request (nonce)"))
    return token_der, verify_timestamp(snapshot, token_der, digest=digest, claimed=claimed, now=now)


def obtain_token(stamper: Stamper, digest: bytes, snapshot: DirectorySnapshot, *, claimed: datetime,
                 now: datetime, warnings: list[str]) -> tuple[bytes, VerifiedTimestamp] | None:
    """:func:`request_token`, or None with a warning when the token is optional."""
    try:
        return request_token(stamper, digest, snapshot, claimed=claimed, now=now)
    except (ServerError, FormatError, VerificationError) as exc:
        if stamper.required:
            raise ServerError(_("no time-stamp: {reason}").format(reason=exc.message),
                              hint=_("nothing was written; try again later, or leave out --timestamp"),
                              ) from None
        warnings.append(_("no time-stamp ({reason}); carrying on without one").format(reason=exc.message))
        return None


@dataclass(frozen=True)
class VerifiedTimestamp:
    gen_time: datetime
    serial: int
    tsa_serial: str

    def summary(self) -> dict[str, Any]:
        return {"time": iso_time(self.gen_time), "serial": f"{self.serial:x}", "tsa": self.tsa_serial}

    def line(self) -> str:
        return _("time-stamped {time} by the authority's time-stamp service").format(
            time=show_time(self.gen_time))


def verify_timestamp(snapshot: DirectorySnapshot, token_der: bytes, *, digest: bytes, claimed: datetime,
                     now: datetime, algorithm: str = "sha256") -> VerifiedTimestamp:
    """Check ``token_der`` for ``digest`` (made with ``algorithm``: SHA-256, except for a
    PDF signature time-stamp, whose imprint uses the signature's digest) against the
    directory (see the module's invariants); VerificationError or FormatError (both exit 4)
    otherwise."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from sandi.authority.certs import issued_by
    from sandi.formats.timestamp import POLICY_OID, parse_token, verify_token_signature

    token = parse_token(token_der)
    if not token.imprint_matches(algorithm, digest):
        raise VerificationError(_("the time-stamp token is for another document"))
    if token.policy != POLICY_OID:
        raise VerificationError(_("the time-stamp token was issued under another policy"))
    entry = next((t for t in snapshot.timestamp_authorities if int(t.serial, 16) == token.signer_serial),
                 None)
    if entry is None:
        raise VerificationError(_("the time-stamp token is not signed by this authority's time-stamp "
                                  "service"), hint=_("your directory may be old: import a newer one"))
    certificate = entry.certificate
    verify_token_signature(token, certificate.public_bytes(Encoding.DER))
    if not issued_by(certificate, snapshot.root_certificate):
        raise VerificationError(_("the time-stamp certificate was not issued by this authority"))
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        usage = None
    if usage is None or not usage.critical or list(usage.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise VerificationError(_("the time-stamp certificate is not for time-stamping"))
    gen_time = token.gen_time
    if not certificate.not_valid_before_utc <= gen_time < certificate.not_valid_after_utc:
        raise VerificationError(_("the time-stamp was made outside its certificate's validity"))
    if entry.revocation is not None and (entry.revocation.reason in VOIDS_ALL_SIGNATURES
                                         or gen_time >= entry.revocation.revoked_at):
        raise VerificationError(_("the time-stamp certificate is revoked ({reason}, {time})").format(
            reason=entry.revocation.reason, time=show_time(entry.revocation.revoked_at)))
    if gen_time > now + CLOCK_SKEW:
        raise VerificationError(_("the time-stamp is dated in the future"),
                                hint=_("check this machine's clock"))
    if abs(claimed - gen_time) > TOLERANCE:
        raise VerificationError(
            _("the claimed signing time {claimed} is not the time-stamped time {stamped} (more than "
              "{minutes} minutes apart): the signature is back- or post-dated").format(
                claimed=show_time(claimed), stamped=show_time(gen_time),
                minutes=int(TOLERANCE.total_seconds() // 60)))
    return VerifiedTimestamp(gen_time=gen_time, serial=token.serial, tsa_serial=entry.serial)
