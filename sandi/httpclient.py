"""HTTP requests to the authority's server, with the standard library (urllib).

Invariants: only http(s) URLs; a response is read up to a caller's limit and no further,
within a timeout; every failure (network, status other than 2xx/304, too large) is a
:class:`sandi.errors.ServerError` naming the URL, with the server's JSON error message
when it sent one. urllib keeps workstations free of another dependency.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from sandi.errors import ServerError
from sandi.i18n import _


def http_request(url: str, *, headers: dict[str, str], timeout: float, limit: int,
                 data: bytes | None = None) -> tuple[int, bytes]:
    """(status, body) of one request; the body read up to ``limit`` bytes. 2xx and 304
    are answers; anything else, and every network failure, is a ServerError."""
    if not url.startswith(("http://", "https://")):
        raise ServerError(_("{url} is not an http(s) URL").format(url=url))
    request = urllib.request.Request(url, data=data, headers=headers,  # noqa: S310 (scheme checked)
                                     method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, _read_limited(response, limit, url)
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return 304, b""
        reason = _error_message(exc)
        raise ServerError(
            _("the server at {url} answered {status}: {reason}").format(url=url, status=exc.code,
                                                                        reason=reason),
            hint=_("check the server URL in sandi.toml (server_url) and ask the authority"),
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        why = getattr(exc, "reason", None) or exc
        raise ServerError(
            _("cannot reach the server at {url}: {reason}").format(url=url, reason=why),
            hint=_("check the network and the server URL; files still work: "
                   "'sandi directory import FILE'"),
        ) from None


def _read_limited(response: Any, limit: int, url: str) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ServerError(_("the server at {url} sent more than {limit} bytes").format(url=url, limit=limit))
    data: bytes = response.read(limit + 1)
    if len(data) > limit:
        raise ServerError(_("the server at {url} sent more than {limit} bytes").format(url=url, limit=limit))
    return data


def _error_message(exc: urllib.error.HTTPError) -> str:
    """The server's JSON error message (bounded), else the HTTP reason phrase."""
    try:
        body = exc.read(4096)
        value = json.loads(body.decode("utf-8"))
        message = value.get("message") if isinstance(value, dict) else None
        if isinstance(message, str) and message.isprintable():
            return message[:300]
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    return str(exc.reason)[:300]
