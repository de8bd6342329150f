"""The ASGI application: the directory, the CRL and the root, health and metrics.

Invariants:

* everything served is read from the registry the authority's commands write (SQLite
  on one machine, PostgreSQL for replicas): the newest signed directory envelope
  (``directory_versions.envelope``), its CRL and the root certificate; the server holds
  no key to sign any of them and cannot alter them (a reader verifies the root's
  signature, not the channel);
* the envelope is verified against the registry's root fingerprint before it is
  served, and re-read at most every ``CACHE_SECONDS`` (a publication is visible within
  that time on every worker and replica);
* paths are those certificates name (``publication_urls``): ``BASE/crl.der`` and
  ``BASE/root.der`` under the path of the home's ``base_url`` (PEM beside them), for
  pdf-signing certificates ``BASE/pdf-crl.der`` and ``BASE/pdf-root.der`` (ADR 0014), and
  ``BASE/directory.json``;
* the directory answers ``ETag`` (the SHA-256 of the envelope, as a workstation
  computes it from its own copy), ``If-None-Match`` with 304, and
  ``Cache-Control: public, no-cache, max-age=<seconds to expiry>``: a cache may keep
  it until it expires but must revalidate first, so a revocation is served at once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sandi.errors import SandiError
from sandi.home import Home, resolve_home
from sandi.registry import Registry

from . import enrol
from .limits import ClientError, HeaderLimit, error_response
from .metrics import Metrics, MetricsMiddleware
from .timestamp import TimeStampAuthority, timestamp

log = logging.getLogger("sandi.server")

#: the folder of the TSA's key and certificate (``sandi serve --tsa DIR`` sets it)
ENV_TSA_DIR = "SANDI_TSA_DIR"
#: seconds a worker keeps the newest publication before asking the registry again
CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class Served:
    """What one publication serves, prepared once (bytes ready to send)."""

    version: int
    envelope: bytes
    etag: str
    expires_at: datetime
    crl_der: bytes | None
    crl_pem: bytes | None
    root_der: bytes
    root_pem: bytes
    #: the PDF root and its CRL (ADR 0014), when the directory names one
    pdf_root_der: bytes | None = None
    pdf_root_pem: bytes | None = None
    pdf_crl_der: bytes | None = None
    pdf_crl_pem: bytes | None = None


class Authority:
    """The registry as the server reads it, with a short cache shared by the threads
    of one worker process."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        self._served: Served | None = None
        self._checked = 0.0

    def current(self) -> Served | None:
        now = time.monotonic()
        served = self._served
        if served is not None and now - self._checked < CACHE_SECONDS:
            return served
        with self._lock:
            if self._served is not None and time.monotonic() - self._checked < CACHE_SECONDS:
                return self._served
            self._served = self._load(self._served)
            self._checked = time.monotonic()
            return self._served

    def _load(self, previous: Served | None) -> Served | None:
        from sandi.directory.publish import latest_publication
        from sandi.directory.snapshot import parse_envelope
        from sandi.registry.models import AuthorityRow

        with self.registry.reading() as session:
            authority = session.get(AuthorityRow, 1)
            if authority is None:
                return None
            if previous is not None:
                # The usual case: nothing new. Only the version is read.
                from sqlalchemy import func, select

                from sandi.registry.models import DirectoryVersionRow

                newest: int | None = session.scalar(select(func.max(DirectoryVersionRow.version))
                                        .where(DirectoryVersionRow.envelope.is_not(None)))
                if newest == previous.version:
                    return previous
            publication = latest_publication(session)
            fingerprint = authority.root_fingerprint
        if publication is None:
            return None
        snapshot = parse_envelope(publication.envelope, fingerprint)
        root = x509.load_pem_x509_certificate(snapshot.root_cert_pem.encode("ascii"))
        crl_der = crl_pem = None
        if snapshot.crl_pem:
            crl = x509.load_pem_x509_crl(snapshot.crl_pem.encode("ascii"))
            crl_der, crl_pem = crl.public_bytes(Encoding.DER), crl.public_bytes(Encoding.PEM)
        pdf_root = snapshot.pdf_root_certificate
        pdf_crl = None if not snapshot.pdf_crl_pem else x509.load_pem_x509_crl(
            snapshot.pdf_crl_pem.encode("ascii"))
        return Served(
            version=publication.version, envelope=publication.envelope,
            etag=f'"{publication.sha256}"', expires_at=snapshot.expires_at,
            crl_der=crl_der, crl_pem=crl_pem,
            root_der=root.public_bytes(Encoding.DER), root_pem=root.public_bytes(Encoding.PEM),
            pdf_root_der=None if pdf_root is None else pdf_root.public_bytes(Encoding.DER),
            pdf_root_pem=None if pdf_root is None else pdf_root.public_bytes(Encoding.PEM),
            pdf_crl_der=None if pdf_crl is None else pdf_crl.public_bytes(Encoding.DER),
            pdf_crl_pem=None if pdf_crl is None else pdf_crl.public_bytes(Encoding.PEM),
        )


def _published(request: Request) -> Served:
    authority: Authority = request.app.state.authority
    served = authority.current()
    if served is None:
        raise ClientError(404, "not-published", "the authority has published no directory yet")
    return served


Endpoint = Callable[[Request], Awaitable[Response]]


def _named(name: str) -> Callable[[Endpoint], Endpoint]:
    """Label the request with its route's name (metrics) before the endpoint runs."""
    def wrap(endpoint: Endpoint) -> Endpoint:
        async def run(request: Request) -> Response:
            request.scope["sandi.route"] = name
            return await endpoint(request)
        return run
    return wrap


async def _in_thread(request: Request) -> Served:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_published, request)


@_named("directory")
async def directory(request: Request) -> Response:
    served = await _in_thread(request)
    left = int((served.expires_at - datetime.now(UTC)).total_seconds())
    headers = {
        "ETag": served.etag,
        "Cache-Control": f"public, no-cache, max-age={max(left, 0)}",
        "X-Sandi-Directory-Version": str(served.version),
    }
    if _matches(request.headers.get("if-none-match"), served.etag):
        return Response(status_code=304, headers=headers)
    return Response(served.envelope, media_type="application/json", headers=headers)


def _delta_bytes(authority: Authority, base: int) -> bytes | None:
    from sandi.directory.publish import delta_since

    with authority.registry.reading() as session:
        return delta_since(session, base)


@_named("directory-delta")
async def directory_delta(request: Request) -> Response:
    """``GET /directory/delta?from=N``: the newest directory as a delta from version N
    (docs/format.md §4.A.2); 304 when N is the newest, 404 when no delta from N exists
    (the client fetches ``/directory.json``)."""
    from starlette.concurrency import run_in_threadpool

    raw = request.query_params.get("from", "")
    if not raw.isdigit() or len(raw) > 18:
        raise ClientError(400, "bad-request", "'from' must be a directory version number")
    base = int(raw)
    served = await _in_thread(request)
    headers = {"X-Sandi-Directory-Version": str(served.version), "Cache-Control": "public, no-cache"}
    if base == served.version:
        return Response(status_code=304, headers=headers)
    data = None if base > served.version else await run_in_threadpool(
        _delta_bytes, request.app.state.authority, base)
    if data is None:
        raise ClientError(404, "no-delta", "no delta from this version: fetch the full directory")
    return Response(data, media_type="application/json", headers=headers)


def _archive_bytes(authority: Authority) -> bytes | None:
    from sandi.directory import leaves
    from sandi.directory.publish import archive_file_bytes

    with authority.registry.reading() as session:
        return archive_file_bytes(session) if leaves.archive_head(session).count else None


@_named("directory-archive")
async def directory_archive(request: Request) -> Response:
    """``GET /directory-archive.json``: the archive of retired certificates of the newest
    directory (ADR 0019); 404 when it archives nothing. The client checks it against the
    head the directory's signed header carries, so it needs no signature of its own."""
    from starlette.concurrency import run_in_threadpool

    served = await _in_thread(request)
    data = await run_in_threadpool(_archive_bytes, request.app.state.authority)
    if data is None:
        raise ClientError(404, "no-archive", "this directory archives no certificates")
    headers = {"X-Sandi-Directory-Version": str(served.version), "Cache-Control": "public, no-cache"}
    return Response(data, media_type="application/json", headers=headers)


def _matches(header: str | None, etag: str) -> bool:
    if not header or len(header) > 4096:
        return False
    candidates = [t.strip() for t in header.split(",")][:32]
    return any(t in (etag, "*", "W/" + etag) for t in candidates)


@_named("crl")
async def crl(request: Request) -> Response:
    served = await _in_thread(request)
    pem = request.url.path.endswith(".pem")
    body = served.crl_pem if pem else served.crl_der
    if body is None:
        raise ClientError(404, "no-crl", "the published directory carries no CRL")
    left = int((served.expires_at - datetime.now(UTC)).total_seconds())
    return Response(body, media_type="application/x-pem-file" if pem else "application/pkix-crl",
                    headers={"Cache-Control": f"public, no-cache, max-age={max(left, 0)}"})


@_named("pdf-crl")
async def pdf_crl(request: Request) -> Response:
    """The PDF root's CRL (ADR 0014), where pdf-signing certificates name it."""
    served = await _in_thread(request)
    pem = request.url.path.endswith(".pem")
    body = served.pdf_crl_pem if pem else served.pdf_crl_der
    if body is None:
        raise ClientError(404, "no-pdf-root", "the published directory names no PDF root")
    left = int((served.expires_at - datetime.now(UTC)).total_seconds())
    return Response(body, media_type="application/x-pem-file" if pem else "application/pkix-crl",
                    headers={"Cache-Control": f"public, no-cache, max-age={max(left, 0)}"})


@_named("pdf-root")
async def pdf_root(request: Request) -> Response:
    served = await _in_thread(request)
    pem = request.url.path.endswith(".pem")
    body = served.pdf_root_pem if pem else served.pdf_root_der
    if body is None:
        raise ClientError(404, "no-pdf-root", "the published directory names no PDF root")
    return Response(body, media_type="application/x-pem-file" if pem else "application/pkix-cert",
                    headers={"Cache-Control": "public, max-age=86400"})


@_named("root")
async def root(request: Request) -> Response:
    served = await _in_thread(request)
    pem = request.url.path.endswith(".pem")
    return Response(served.root_pem if pem else served.root_der,
                    media_type="application/x-pem-file" if pem else "application/pkix-cert",
                    headers={"Cache-Control": "public, max-age=86400"})


@_named("health")
async def health(request: Request) -> Response:
    served = await _in_thread(request)
    now = datetime.now(UTC)
    expired = now >= served.expires_at
    return JSONResponse({"status": "expired" if expired else "ok", "directory_version": served.version,
                         "expires_at": served.expires_at.isoformat()},
                        status_code=503 if expired else 200)


@_named("metrics")
async def metrics(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    gauges: dict[str, float] = {}
    authority: Authority = request.app.state.authority
    served = authority._served
    if served is not None:
        gauges["sandi_directory_version"] = served.version
        gauges["sandi_directory_expires_timestamp_seconds"] = served.expires_at.timestamp()
    return PlainTextResponse(metrics.render(gauges), media_type="text/plain; version=0.0.4")


async def _client_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ClientError)
    return error_response(exc.status, exc.code, exc.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "bad-request")
    return error_response(exc.status_code, code, str(exc.detail),
                          headers=None if exc.headers is None else dict(exc.headers))


async def _sandi_error(request: Request, exc: Exception) -> Response:
    # The library's errors here are the registry's (unreachable, schema): the server's
    # fault, not the client's; the message names no URL or password (sandi.registry).
    log.error("registry: %s", exc)
    return error_response(503, "unavailable", "the authority's registry is not available now",
                          headers={"Retry-After": "5"})


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error")
    return error_response(500, "internal", "internal error")


def base_path(base_url: str | None) -> str:
    """The path prefix the routes live under: the path of the home's base URL."""
    if not base_url:
        return ""
    return urlsplit(base_url).path.rstrip("/")


def build_app(home: Home, registry: Registry, tsa: TimeStampAuthority | None = None) -> Starlette:
    """The application over ``registry``, at the paths ``home``'s base URL names;
    ``tsa``: the time-stamp authority (``POST /timestamp``), if this server has one."""
    config = home.load_config()
    base = config.extra.get("base_url")
    prefix = base_path(base if isinstance(base, str) else None)
    routes = [
        Route(f"{prefix}/directory.json", directory, methods=["GET", "HEAD"]),
        Route(f"{prefix}/directory/delta", directory_delta, methods=["GET"]),
        Route(f"{prefix}/directory-archive.json", directory_archive, methods=["GET"]),
        Route(f"{prefix}/crl.der", crl, methods=["GET", "HEAD"]),
        Route(f"{prefix}/crl.pem", crl, methods=["GET", "HEAD"]),
        Route(f"{prefix}/root.der", root, methods=["GET", "HEAD"]),
        Route(f"{prefix}/root.pem", root, methods=["GET", "HEAD"]),
        Route(f"{prefix}/pdf-crl.der", pdf_crl, methods=["GET", "HEAD"]),
        Route(f"{prefix}/pdf-crl.pem", pdf_crl, methods=["GET", "HEAD"]),
        Route(f"{prefix}/pdf-root.der", pdf_root, methods=["GET", "HEAD"]),
        Route(f"{prefix}/pdf-root.pem", pdf_root, methods=["GET", "HEAD"]),
        Route(f"{prefix}/healthz", health, methods=["GET", "HEAD"]),
        Route(f"{prefix}/metrics", metrics, methods=["GET"]),
        Route(f"{prefix}/enrol", enrol.submit, methods=["POST"]),
        Route(f"{prefix}/enrol/{{handle}}", enrol.status, methods=["GET"]),
        Route(f"{prefix}/timestamp", timestamp, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            ClientError: _client_error,
            HTTPException: _http_error,
            SandiError: _sandi_error,
            Exception: _unexpected,
        },
    )
    app.state.authority = Authority(registry)
    app.state.metrics = Metrics()
    app.state.limiter = enrol.FailureLimiter()
    app.state.home = home
    app.state.tsa = tsa
    app.add_middleware(HeaderLimit)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app


def create_app() -> Starlette:
    """uvicorn's factory: the home from ``SANDI_HOME``, the registry from
    ``SANDI_DATABASE_URL`` or the home's configuration (as every command finds them)."""
    home = Home(resolve_home(os.environ.get("SANDI_HOME")))
    registry = Registry(home.database_url())
    registry.require_current()
    folder = os.environ.get(ENV_TSA_DIR)
    tsa = TimeStampAuthority.from_folder(Path(folder), registry) if folder else None
    return build_app(home, registry, tsa)
