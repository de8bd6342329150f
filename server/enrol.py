"""Enrolment over HTTP: a workstation posts its signed request with a one-time token,
then polls for its certificates (sandi.authority.online holds the rules).

Invariants: the body is bounded and read before any registry work; token guessing is
limited per client address (``MAX_FAILURES`` refusals per ``WINDOW_SECONDS`` per worker,
then 429 until the window passes) and every refusal is audited by the library (a
rate-limited client once per window, so a flood cannot flood the audit log).
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandi.errors import FormatError, NotFoundError, VerificationError

from .limits import ClientError, parse_json_object, read_body

MAX_FAILURES = 10
WINDOW_SECONDS = 900.0
MAX_TRACKED_CLIENTS = 10_000
_HANDLE = re.compile(r"[A-Za-z0-9_-]{20,64}")


class FailureLimiter:
    """Refusals per client address in a fixed window (per process, bounded memory)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def blocked(self, client: str) -> bool:
        with self._lock:
            start, count = self._seen.get(client, (0.0, 0))
            return time.monotonic() - start < WINDOW_SECONDS and count >= MAX_FAILURES

    def fail(self, client: str) -> bool:
        """Count one refusal; True when this one reaches the limit."""
        now = time.monotonic()
        with self._lock:
            start, count = self._seen.pop(client, (now, 0))
            if now - start >= WINDOW_SECONDS:
                start, count = now, 0
            self._seen[client] = (start, count + 1)
            while len(self._seen) > MAX_TRACKED_CLIENTS:
                self._seen.popitem(last=False)
            return count + 1 == MAX_FAILURES


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def submit(request: Request) -> Response:
    from sandi.authority.online import TokenRefused, record_refusal
    from sandi.authority.online import submit as submit_request

    request.scope["sandi.route"] = "enrol"
    limiter: FailureLimiter = request.app.state.limiter
    registry = request.app.state.authority.registry
    client = _client(request)
    if limiter.blocked(client):
        raise ClientError(429, "too-many-attempts", "too many refused attempts; try again later")
    obj = parse_json_object(await read_body(request))
    token, text = obj.get("token"), obj.get("request")
    if not isinstance(token, str) or not isinstance(text, str) or not 0 < len(token) <= 200:
        raise ClientError(400, "bad-request", "expected {\"token\": STRING, \"request\": STRING}")
    try:
        done = await run_in_threadpool(submit_request, registry, token, text.encode("utf-8"), client=client)
    except TokenRefused as exc:
        request.app.state.metrics.count("enrolment_token_refused")
        if limiter.fail(client):
            await run_in_threadpool(record_refusal, registry, client, "rate-limited")
        raise ClientError(403, "token-refused", exc.source_message) from None
    except (FormatError, VerificationError) as exc:
        raise ClientError(400, "bad-enrolment-request", exc.source_message) from None
    request.app.state.metrics.count("enrolment_submitted")
    return JSONResponse({"id": done.handle, "status": "pending", "agency": done.agency,
                         "fingerprint": done.fingerprint, "kind": done.kind}, status_code=202)


async def status(request: Request) -> Response:
    from sandi.authority.online import poll

    request.scope["sandi.route"] = "enrol-status"
    handle = request.path_params["handle"]
    if not _HANDLE.fullmatch(handle):
        raise ClientError(404, "not-found", "no such enrolment request")
    try:
        state, response = await run_in_threadpool(poll, request.app.state.authority.registry, handle)
    except NotFoundError:
        raise ClientError(404, "not-found", "no such enrolment request") from None
    if state == "certified" and response is not None:
        return JSONResponse({"status": "certified", "response": response.decode("utf-8")})
    return JSONResponse({"status": state}, status_code=202, headers={"Retry-After": "5"})
