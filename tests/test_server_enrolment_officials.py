"""Online enrolment of officials' personal keys and agencies' PDF signing keys through a
real ``sandi serve`` (issue 22): the token names what it enrols (an agency's keys, one
official's, or the PDF signing key) and is refused for anything else; the operator's
``keys certify --pending`` shows the official's nama/jabatan/NIP and the fingerprints and
issues through the officials' and the PDF root's own code; everything is audited."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.server_fixtures import Served, Site, served  # noqa: F401

NIP = "196801011990031001"
OTHER_NIP = "197505152000122002"
NAMA = "Budi Santoso"
JABATAN = "Sekretaris Dinas"


def _token(served: Served, code: str, *extra: str) -> dict[str, object]:
    return dict(json.loads(served.authority.ok("--json", "agency", "token", code, *extra).stdout))


def _audit(served: Served) -> list[dict[str, object]]:
    return list(json.loads(served.authority.ok("--json", "audit", "log").stdout))


@pytest.fixture(scope="module")
def agency_site(served: Served) -> Site:
    """DISKOMINFO enrolled (by file): an official's certificate needs its agency's."""
    site = served.workstation("ws-diskominfo", "DISKOMINFO", "--server", served.base)
    served.enrol_by_file(site, "DISKOMINFO")
    served.authority.ok("official", "add", "DISKOMINFO", "--nip", NIP, "--nama", NAMA, "--jabatan", JABATAN)
    served.authority.ok("official", "add", "DISKOMINFO", "--nip", OTHER_NIP, "--nama", "Siti Aminah",
                        "--jabatan", "Kepala Bidang")
    return site


def test_an_official_enrols_online(served: Served, agency_site: Site) -> None:
    made = _token(served, "DISKOMINFO", "--official", NIP, "--hours", "2")
    assert made["kind"] == "official" and made["nip"] == NIP
    token = str(made["token"])
    db = sqlite3.connect(served.authority.home / "registry.db")
    (kind, nip, digest), = db.execute(
        "SELECT kind, official_nip, token_sha256 FROM enrolment_tokens ORDER BY id DESC LIMIT 1").fetchall()
    db.close()
    assert (kind, nip) == ("official", NIP) and token not in digest  # kept only hashed

    official = served.workstation("ws-budi", "DISKOMINFO", "--server", served.base)
    r = official.ok("--json", "official", "request", "DISKOMINFO", "--nip", NIP, "--token", token,
                    "--wait", "0")
    posted = json.loads(r.stdout)
    assert posted["status"] == "pending" and posted["nip"] == NIP
    assert (official.home / f"enrolment-official-{NIP}.pending.json").exists()

    # Without --yes and without a terminal nothing is issued (the same confirmation rule).
    r = served.authority.sandi("keys", "certify", "--pending")
    assert r.code == 2 and "no terminal" in r.stderr, r
    r = served.authority.ok("keys", "certify", "--pending", "--yes")
    assert f"Official:             {NAMA}, {JABATAN} (NIP {NIP})" in r.stderr
    assert "Request fingerprint:  " + posted["fingerprint"] in r.stderr
    assert "New signing key:" in r.stderr and "1 request(s) certified" in r.stderr

    r = official.ok("--json", "official", "request", "DISKOMINFO", "--nip", NIP, "--resume", "--wait", "10")
    done = json.loads(r.stdout)
    assert done["status"] == "certified" and [c["purpose"] for c in done["certificates"]] == ["signing"]
    assert not (official.home / f"enrolment-official-{NIP}.pending.json").exists()

    # The official issuance: the certificate names the official, is clamped to the agency's.
    listed = json.loads(served.authority.ok("official", "list", "DISKOMINFO", "--json").stdout)
    (budi,) = [o for o in listed if o["nip"] == NIP]
    assert [c["serial"] for c in budi["certificates"]] == [done["certificates"][0]["serial"]]
    agency_certs = json.loads(served.authority.ok("--json", "keys", "list", "DISKOMINFO").stdout)
    agency_until = max(c["not_after"] for c in agency_certs if c["purpose"] == "signing")
    assert done["certificates"][0]["not_after"] <= agency_until

    # The official signs with it once the directory is in.
    served.settle()
    official.ok("directory", "fetch")
    note = served.folder / "nota-budi.txt"
    note.write_text("nota dinas\n")
    official.ok("sign", note, "--as-official", NIP)

    events = _audit(served)
    actions = [(e["action"], e["subject"]) for e in events]
    assert ("enrolment.submit", f"DISKOMINFO/{NIP}") in actions
    assert ("official.certify", f"DISKOMINFO/{NIP}") in actions

    # Spent: a second use is refused, and audited.
    again = served.workstation("ws-budi-again", "DISKOMINFO", "--server", served.base)
    r = again.sandi("official", "request", "DISKOMINFO", "--nip", NIP, "--token", token, "--wait", "0")
    assert r.code == 1 and "token was refused (spent)" in r.stderr, r
    assert not list(again.home.glob("enrolment-*.pending.json"))


def test_tokens_never_cross_between_agency_and_official(served: Served, agency_site: Site) -> None:
    # An agency's token does not enrol an official...
    agency_token = str(_token(served, "DISKOMINFO")["token"])
    official = served.workstation("ws-cross-1", "DISKOMINFO", "--server", served.base)
    r = official.sandi("official", "request", "DISKOMINFO", "--nip", NIP, "--token", agency_token,
                       "--wait", "0")
    assert r.code == 1 and "token was refused (other-kind)" in r.stderr, r
    # ...and the refused request leaves no keys behind on the workstation.
    held = json.loads(official.ok("--json", "keys", "store").stdout)
    assert NIP not in json.dumps(held), held

    # An official's token does not enrol the agency's keys, nor its PDF key, nor another official.
    official_token = str(_token(served, "DISKOMINFO", "--official", OTHER_NIP)["token"])
    site = served.workstation("ws-cross-2", "DISKOMINFO", "--server", served.base)
    r = site.sandi("keys", "request", "DISKOMINFO", "--token", official_token, "--wait", "0")
    assert r.code == 1 and "token was refused (other-kind)" in r.stderr, r
    assert not json.loads(site.ok("--json", "keys", "store").stdout)["keys"]  # the refused keys are gone
    before = json.loads(agency_site.ok("--json", "keys", "store").stdout)["keys"]
    r = agency_site.sandi("keys", "request", "DISKOMINFO", "--purpose", "pdf-signing", "--token",
                          official_token, "--wait", "0")
    assert r.code == 1 and "token was refused (other-kind)" in r.stderr, r
    assert json.loads(agency_site.ok("--json", "keys", "store").stdout)["keys"] == before
    r = official.sandi("official", "request", "DISKOMINFO", "--nip", NIP, "--token", official_token,
                       "--wait", "0")
    assert r.code == 1 and "token was refused (other-official)" in r.stderr, r

    # None of those spent the tokens: each still enrols what it was made for.
    r = official.ok("--json", "official", "request", "DISKOMINFO", "--nip", OTHER_NIP, "--token",
                    official_token, "--wait", "0")
    assert json.loads(r.stdout)["status"] == "pending"
    reasons = [e["details"]["reason"] for e in _audit(served)  # type: ignore[index]
               if e["action"] == "enrolment.token" and e["outcome"] == "failed"]
    assert reasons.count("other-kind") >= 3 and "other-official" in reasons
    # The operator certifies it: the summary names Siti Aminah, not the agency.
    r = served.authority.ok("keys", "certify", "--pending", "--yes", "--agency", "DISKOMINFO")
    assert f"(NIP {OTHER_NIP})" in r.stderr and "Siti Aminah" in r.stderr


def test_a_token_for_a_retired_or_unknown_official_is_not_made(served: Served,
                                                              agency_site: Site) -> None:
    r = served.authority.sandi("agency", "token", "DISKOMINFO", "--official", "198001012005011003")
    assert r.code != 0 and "no official with NIP" in r.stderr, r
    served.authority.ok("official", "add", "DISKOMINFO", "--nip", "198001012005011003", "--nama", "Agus",
                        "--jabatan", "Kepala Seksi")
    served.authority.ok("official", "retire", "DISKOMINFO", "198001012005011003", "--yes")
    r = served.authority.sandi("agency", "token", "DISKOMINFO", "--official", "198001012005011003")
    assert r.code != 0 and "is retired" in r.stderr, r
    r = served.authority.sandi("agency", "token", "DISKOMINFO", "--official", NIP, "--purpose", "pdf-signing")
    assert r.code == 2, r


def test_the_pdf_signing_key_enrols_online(served: Served, agency_site: Site) -> None:
    served.authority.ok("pdf-root", "init")
    made = _token(served, "DISKOMINFO", "--purpose", "pdf-signing")
    assert made["kind"] == "pdf-signing"
    # A PDF key token does not enrol the agency's own keys.
    other = served.workstation("ws-pdf-cross", "DISKOMINFO", "--server", served.base)
    r = other.sandi("keys", "request", "DISKOMINFO", "--token", str(made["token"]), "--wait", "0")
    assert r.code == 1 and "token was refused (other-kind)" in r.stderr, r

    r = agency_site.ok("--json", "keys", "request", "DISKOMINFO", "--purpose", "pdf-signing",
                       "--token", str(made["token"]), "--wait", "0")
    posted = json.loads(r.stdout)
    assert posted["status"] == "pending"
    assert (agency_site.home / "enrolment-pdf-signing.pending.json").exists()
    r = served.authority.ok("keys", "certify", "--pending", "--yes")
    assert "PDF signing key request of DISKOMINFO" in r.stderr
    assert "request fingerprint " + posted["fingerprint"] in r.stderr
    r = agency_site.ok("--json", "keys", "request", "DISKOMINFO", "--purpose", "pdf-signing", "--resume",
                       "--wait", "10")
    done = json.loads(r.stdout)
    assert done["status"] == "certified" and done["installed"]
    assert not (agency_site.home / "enrolment-pdf-signing.pending.json").exists()
    certs = json.loads(served.authority.ok("--json", "keys", "list", "DISKOMINFO").stdout)
    assert [c for c in certs if c["purpose"] == "pdf-signing" and c["state"] == "current"]
    certify = [e for e in _audit(served) if e["action"] == "key.certify"]
    assert certify[-1]["details"]["flow"] == "pdf-request"  # type: ignore[index]



def test_official_certify_pending_and_a_request_that_cannot_be_certified(
        served: Served, agency_site: Site) -> None:
    nip = "198203102008011004"
    served.authority.ok("official", "add", "DISKOMINFO", "--nip", nip, "--nama", "Dewi Lestari",
                        "--jabatan", "Kepala Subbagian")
    token = str(_token(served, "DISKOMINFO", "--official", nip)["token"])
    ws = served.workstation("ws-dewi", "DISKOMINFO", "--server", served.base)
    ws.ok("official", "request", "DISKOMINFO", "--nip", nip, "--token", token, "--wait", "0")
    # She leaves the post before the operator gets to it: nothing is issued, the request is
    # reported and stays where it is.
    served.authority.ok("official", "retire", "DISKOMINFO", nip, "--yes")
    r = served.authority.ok("official", "certify", "--pending", "--yes")
    assert "cannot be certified" in r.stderr and "retired" in r.stderr and "0 request(s)" in r.stderr, r
    listed = json.loads(served.authority.ok("official", "list", "DISKOMINFO", "--json").stdout)
    assert [o["certificates"] for o in listed if o["nip"] == nip] == [[]]
    r = ws.ok("--json", "official", "request", "DISKOMINFO", "--nip", nip, "--resume", "--wait", "0")
    assert json.loads(r.stdout)["status"] == "pending"
    stray = served.folder / "stray-request.json"
    stray.write_text("{}")
    r = served.authority.sandi("official", "certify", "--pending", stray)
    assert r.code == 2 and "--pending takes no request file" in r.stderr, r
