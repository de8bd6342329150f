"""Online enrolment through a real ``sandi serve``: a one-time token (hashed, single use,
expiring), the operator's approval with the same summary as a request file, the
workstation's poll, auto-approve, and token guessing rate-limited and audited."""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from pathlib import Path

from tests.server_fixtures import Served, served  # noqa: F401


def _token(served: Served, code: str, *extra: str) -> str:
    r = served.authority.ok("--json", "agency", "token", code, *extra)
    return str(json.loads(r.stdout)["token"])


def _post(served: Served, body: bytes) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(served.base + "/enrol", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_token_enrolment_approval_and_poll(served: Served, tmp_path: Path) -> None:
    token = _token(served, "DISKOMINFO", "--hours", "2")
    db = sqlite3.connect(served.authority.home / "registry.db")
    stored = [row[0] for row in db.execute("SELECT token_sha256 FROM enrolment_tokens")]
    db.close()
    assert token not in "".join(stored) and len(stored[-1]) == 64  # kept only hashed

    site = served.workstation("ws-online", "DISKOMINFO", "--server", served.base)
    r = site.ok("--json", "keys", "request", "DISKOMINFO", "--token", token, "--wait", "0")
    posted = json.loads(r.stdout)
    assert posted["status"] == "pending"
    assert "request fingerprint" in r.stderr

    # The operator sees the same summary as for a file, fingerprint included.
    r = served.authority.ok("keys", "certify", "--pending", "--yes")
    assert "Request fingerprint:  " + posted["fingerprint"] in r.stderr
    assert "1 request(s) certified" in r.stderr
    assert "no enrolment requests are waiting" in served.authority.ok("keys", "certify", "--pending").stderr

    r = site.ok("--json", "keys", "request", "DISKOMINFO", "--resume", "--wait", "10")
    done = json.loads(r.stdout)
    assert done["status"] == "certified" and done["installed"]
    assert not (site.home / "enrolment.pending.json").exists()
    served.settle()
    site.ok("directory", "fetch")
    note = tmp_path / "nota.txt"
    note.write_text("nota\n")
    site.ok("sign", note)  # the keys made here are certified and usable

    # The token is spent: a second use is refused, and audited.
    other = served.workstation("ws-again", "DISKOMINFO", "--server", served.base)
    r = other.sandi("keys", "request", "DISKOMINFO", "--token", token, "--wait", "0")
    assert r.code == 1, r
    assert "403" in r.stderr and "token was refused (spent)" in r.stderr
    log = served.authority.ok("--json", "audit", "log").stdout
    assert '"enrolment.submit"' in log and '"enrolment.token"' in log


def test_auto_approve_needs_no_answer(served: Served) -> None:
    served.authority.ok("agency", "add", "KESBANGPOL", "--name", "Badan Kesatuan Bangsa dan Politik")
    token = _token(served, "KESBANGPOL", "--auto-approve")
    site = served.workstation("ws-auto", "KESBANGPOL", "--server", served.base)
    site.ok("keys", "request", "KESBANGPOL", "--token", token, "--wait", "0")
    # No --yes and no terminal: only an auto-approve token gets through without a question.
    r = served.authority.ok("keys", "certify", "--pending")
    assert "--auto-approve" in r.stderr
    r = site.ok("--json", "keys", "request", "KESBANGPOL", "--resume", "--wait", "10")
    assert json.loads(r.stdout)["status"] == "certified"


def test_a_token_for_another_agency_or_expired_is_refused(served: Served) -> None:
    token = _token(served, "BAPPEDA")
    site = served.workstation("ws-wrong", "DISKOMINFO", "--server", served.base)
    r = site.sandi("keys", "request", "DISKOMINFO", "--token", token, "--wait", "0")
    assert r.code == 1 and "other-agency" in r.stderr, r


def test_token_guessing_is_rate_limited_and_audited(served: Served) -> None:
    request = (served.folder / "guess.request.json")
    site = served.workstation("ws-guess", "BAPPEDA")
    site.ok("keys", "request", "BAPPEDA", "-o", request)
    text = request.read_text()
    statuses = [_post(served, json.dumps({"token": f"sandi-enrol-guess{i}", "request": text}).encode())[0]
                for i in range(12)]
    # Refusals from this address in earlier tests count too: some 403s, then only 429s.
    from sandi_server.enrol import MAX_FAILURES

    refused = statuses.index(429)
    assert 1 <= refused <= MAX_FAILURES and set(statuses[:refused]) == {403}, statuses
    assert set(statuses[refused:]) == {429}, statuses
    log = served.authority.ok("--json", "audit", "log").stdout
    assert log.count('"rate-limited"') == 1


def test_malformed_enrolment_posts_are_4xx(served: Served) -> None:
    for body in (b"not json", b"[]", b'{"token": 1}', json.dumps({"token": "x", "request": "{}"}).encode()):
        status, answer = _post(served, body)
        assert 400 <= status < 500 and answer["error"], (body, status, answer)
    status, _, body = served.get("/enrol/" + "A" * 40)
    assert status == 404 and json.loads(body)["error"] == "not-found"


