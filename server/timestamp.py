"""``POST /timestamp``: RFC 3161 time-stamps over HTTP (RFC 3161 section 3.4).

Invariants:

* only when the server was started with the TSA's key and certificate (``sandi serve
  --tsa DIR``); otherwise 404 with a JSON error. The TSA key is the only private key
  the server holds; it signs TSTInfo structures and nothing else;
* the body is ``application/timestamp-query`` (else 415 JSON), at most
  ``MAX_QUERY_BYTES`` (else 413 JSON, before it is read). Every body that arrives is
  answered in RFC 3161's own terms: a ``application/timestamp-reply`` with status
  *granted*, or with status *rejection* and the PKIFailureInfo (badDataFormat, badAlg,
  unacceptedPolicy, unacceptedExtension): an RFC 3161 client understands why, and
  nothing a client sends reaches a 500;
* genTime is the server's clock (whole seconds, accuracy 1 s); serial numbers are 128
  random bits (top bit set), unique without a registry write; the nonce is echoed, the
  certificate included when the request asks (certReq);
* the server refuses (503 JSON) while its certificate is outside its validity or is
  revoked in the registry (read at most every ``REVOCATION_CHECK_SECONDS``);
* every token is logged (serial, hash algorithm, client) and counted
  (``sandi_events_total{event="timestamp.issued"}``), not written to the registry's
  audit chain: see ADR 0013 (a token reveals nothing but a hash and a time, and one
  registry write per token would let any client grow the authority's audit log).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sandi.formats.timestamp import MAX_QUERY_BYTES, Rejected, granted_reply, parse_query, rejection_reply
from sandi.registry import Registry

from .limits import ClientError, read_body
from .metrics import Metrics

log = logging.getLogger("sandi.server")

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
REVOCATION_CHECK_SECONDS = 5.0


class TimeStampAuthority:
    """The TSA key and certificate, and whether the registry still lets them sign."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, registry: Registry) -> None:
        self._key = key
        self.cert = cert
        self.cert_der = cert.public_bytes(Encoding.DER)
        self.serial = f"{cert.serial_number:040x}"
        self._registry = registry
        self._lock = threading.Lock()
        self._revoked = False
        self._checked = float("-inf")

    def __repr__(self) -> str:
        return f"TimeStampAuthority(serial={self.serial})"

    @classmethod
    def from_folder(cls, folder: Path, registry: Registry) -> TimeStampAuthority:
        from sandi.authority.tsa import CERT_NAME, KEY_NAME, load_tsa_files

        key, cert = load_tsa_files(folder / KEY_NAME, folder / CERT_NAME)
        return cls(key, cert, registry)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))

    def revoked(self) -> bool:
        """Whether the registry says this certificate is revoked (cached a few seconds)."""
        if time.monotonic() - self._checked < REVOCATION_CHECK_SECONDS:
            return self._revoked
        with self._lock:
            if time.monotonic() - self._checked >= REVOCATION_CHECK_SECONDS:
                from sqlalchemy import select

                from sandi.registry.models import TsaCertificateRow

                with self._registry.reading() as session:
                    revoked_at = session.scalar(select(TsaCertificateRow.revoked_at)
                                                .where(TsaCertificateRow.serial == self.serial))
                self._revoked = revoked_at is not None
                self._checked = time.monotonic()
            return self._revoked


async def timestamp(request: Request) -> Response:
    request.scope["sandi.route"] = "timestamp"
    tsa: TimeStampAuthority | None = request.app.state.tsa
    metrics: Metrics = request.app.state.metrics
    if tsa is None:
        raise ClientError(404, "no-tsa", "this server issues no time-stamps (started without --tsa)")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != QUERY_TYPE:
        raise ClientError(415, "bad-content-type", f"send a DER TimeStampReq as {QUERY_TYPE}")
    body = await read_body(request, limit=MAX_QUERY_BYTES)
    now = datetime.now(UTC)
    if not tsa.cert.not_valid_before_utc <= now < tsa.cert.not_valid_after_utc:
        raise ClientError(503, "tsa-expired", "the time-stamp authority's certificate is not valid now")
    if await run_in_threadpool(tsa.revoked):
        raise ClientError(503, "tsa-revoked", "the time-stamp authority's certificate is revoked")
    client = request.client.host if request.client else "-"
    try:
        query = parse_query(body)
    except Rejected as rejected:
        metrics.count("timestamp.rejected")
        log.info("timestamp rejected (%s) for %s", rejected.fail_info, client)
        return Response(rejection_reply(rejected), media_type=REPLY_TYPE)
    serial = (1 << 127) | secrets.randbits(127)
    reply = granted_reply(query, serial=serial, gen_time=now, certificate_der=tsa.cert_der, sign=tsa.sign)
    metrics.count("timestamp.issued")
    log.info("timestamp %032x %s for %s", serial, query.hash_algorithm, client)
    return Response(reply, media_type=REPLY_TYPE)
