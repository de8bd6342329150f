"""Bounds on what a client may send, applied before anything is read, and JSON errors.

Invariants:

* a request whose declared body is over its route's limit is refused (413) before one
  byte of the body is read; a body sent without a length is counted while read and
  refused at the limit; reading a body has a deadline (a slow client gets 408);
* more than 64 header fields or 16 KiB of them get 431 (h11 bounds what it buffers
  before a request is complete; this bounds what reaches the application);
* every error a client causes is a 4xx with ``{"error": CODE, "message": TEXT}``;
  only a fault of the server itself (the registry unreachable: 503) is a 5xx, and an
  unexpected exception becomes a JSON 500 and is logged, never a traceback to the
  client. Messages are machine output (English), never secrets.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

#: the largest request body any route accepts (enrolment requests are a few KiB)
MAX_BODY_BYTES = 64 * 1024
#: header fields per request, and their bytes (names and values)
MAX_HEADER_FIELDS = 64
MAX_HEADER_BYTES = 16 * 1024
#: seconds a client has to send its whole body
BODY_DEADLINE_SECONDS = 10.0


class ClientError(Exception):
    """A request the server refuses: HTTP status, a stable code and an English message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None
                   ) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers,
                        media_type="application/json")


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, at most ``limit`` bytes, within the deadline."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit() or len(declared) > 12:
            raise ClientError(400, "bad-length", "Content-Length is not a number")
        if int(declared) > limit:
            raise ClientError(413, "too-large", f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(BODY_DEADLINE_SECONDS):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ClientError(413, "too-large", f"the body is larger than {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise ClientError(408, "too-slow", "the body did not arrive in time") from None
    return b"".join(chunks)


def parse_json_object(body: bytes) -> dict[str, Any]:
    """A JSON object from ``body`` (bounded by read_body), or 400."""
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ClientError(400, "bad-json", "the body is not JSON") from None
    if not isinstance(value, dict):
        raise ClientError(400, "bad-json", "the body is not a JSON object")
    return value


class HeaderLimit:
    """ASGI middleware: refuse requests with too many header fields, or a declared body
    over the global limit, before the application sees them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", [])
        if len(headers) > MAX_HEADER_FIELDS or sum(len(n) + len(v) for n, v in headers) > MAX_HEADER_BYTES:
            await error_response(431, "headers-too-large",
                                 f"more than {MAX_HEADER_FIELDS} header fields or {MAX_HEADER_BYTES} bytes"
                                 )(scope, receive, send)
            return
        for name, value in headers:
            if name == b"content-length" and value.isdigit() and len(value) < 13 \
                    and int(value) > MAX_BODY_BYTES:
                response = error_response(413, "too-large", f"the body is larger than {MAX_BODY_BYTES} bytes",
                                          headers={"Connection": "close"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
