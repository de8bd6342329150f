"""Online enrolment, workstation side: post the signed request with the token, poll.

Invariants: the request posted is the very file ``keys request`` writes (its fingerprint
is the one the operator compares); the poll handle the server returns is a secret
capability, kept in the home as ``enrolment.pending.json`` (0600; the PDF signing key's
request as ``enrolment-pdf-signing.pending.json``, an official's as
``enrolment-official-NIP.pending.json``, so one kind never resumes another's) until the
certificates are installed, then removed; certificates are installed only through
:func:`sandi.authority.enrolment.import_response` or
:func:`sandi.authority.pdfenrol.import_pdf_response` (chain to the trusted root, keys held
here); an official's certificates reach the workstation with the directory.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from sandi.errors import FormatError, NotFoundError
from sandi.fsutil import atomic_write
from sandi.home import Home
from sandi.httpclient import http_request
from sandi.i18n import _

PENDING_NAME = "enrolment.pending.json"
TIMEOUT = 15.0
POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Posted:
    server: str
    handle: str
    agency: str
    fingerprint: str


def pending_path(home: Home, kind: str = "agency", nip: str | None = None) -> Path:
    """Where the poll handle of a request of ``kind`` waits (``nip``: an official's)."""
    if kind == "official" and nip is not None:
        return home.path / f"enrolment-official-{nip}.pending.json"
    if kind == "pdf-signing":
        return home.path / "enrolment-pdf-signing.pending.json"
    return home.path / PENDING_NAME


def post_request(home: Home, server: str, token: str, request: bytes, *, kind: str = "agency",
                 nip: str | None = None) -> Posted:
    body = json.dumps({"token": token, "request": request.decode("utf-8")}).encode()
    _status, answer = http_request(server.rstrip("/") + "/enrol", data=body, timeout=TIMEOUT, limit=64 * 1024,
                             headers={"Content-Type": "application/json", "User-Agent": "sandi"})
    try:
        obj = json.loads(answer)
        posted = Posted(server, str(obj["id"]), str(obj["agency"]), str(obj["fingerprint"]))
    except (ValueError, KeyError, TypeError):
        raise FormatError(_("the server's answer to the enrolment is not understood")) from None
    atomic_write(pending_path(home, kind, nip), json.dumps(posted.__dict__).encode(), mode=0o600,
                 overwrite=True)
    return posted


def load_pending(home: Home, kind: str = "agency", nip: str | None = None) -> Posted:
    path = pending_path(home, kind, nip)
    try:
        obj = json.loads(path.read_bytes()[:4096])
        return Posted(str(obj["server"]), str(obj["handle"]), str(obj["agency"]), str(obj["fingerprint"]))
    except FileNotFoundError:
        raise NotFoundError(
            _("this home has no enrolment waiting"),
            hint=_("enrol with 'sandi keys request CODE --server URL --token TOKEN'")) from None
    except (OSError, ValueError, KeyError, TypeError):
        raise FormatError(_("{path} is damaged").format(path=path)) from None


def wait_for_response(posted: Posted, wait_seconds: float) -> bytes | None:
    """The enrolment response once the authority certified; None if ``wait_seconds`` passed."""
    url = f"{posted.server.rstrip('/')}/enrol/{posted.handle}"
    deadline = time.monotonic() + wait_seconds
    while True:
        status, answer = http_request(url, headers={"User-Agent": "sandi"}, timeout=TIMEOUT, limit=512 * 1024)
        if status == 200:
            try:
                return str(json.loads(answer)["response"]).encode("utf-8")
            except (ValueError, KeyError, TypeError):
                raise FormatError(_("the server's answer to the enrolment is not understood")) from None
        if time.monotonic() + POLL_SECONDS > deadline:
            return None
        time.sleep(POLL_SECONDS)


def finished(home: Home, kind: str = "agency", nip: str | None = None) -> None:
    pending_path(home, kind, nip).unlink(missing_ok=True)
