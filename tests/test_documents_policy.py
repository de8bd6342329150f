"""The policy (PHKS) around sealed documents: checked at sealing, checked again at opening.

With ``policies/banten.toml`` in force: DISKOMINFO may send up to R to every agency
(r-kominfo-agencies) and up to SR to KESBANGPOL (r-security); agencies send each
other up to T (r-agencies). A denial at sealing writes nothing and exits 3 naming the
rule; a document that names no policy, or not the version in force when it was
sealed, is refused at opening.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pytest

from sandi.audit.journal import Journal
from sandi.documents import DirectoryPolicy, SealMetadata, UnsafeNoPolicyCheck, open_sealed, seal
from sandi.errors import PolicyDenied
from sandi.home import Home
from tests import authority_fixtures as fx
from tests.authority_fixtures import BANTEN_POLICY, AuthorityHome

authority_template = fx.authority_template
policy_authority_template = fx.policy_authority_template
policy_authority = fx.policy_authority


class ClaimsVersion:
    """A gate that checks nothing and claims a policy version: a sender's modified software."""

    def __init__(self, policy_id: str, version: int) -> None:
        self.claim = (policy_id, version)

    def before_seal(self, sender: str, recipients: Sequence[str], classification: str,
                    at: datetime) -> tuple[str, int] | None:
        return self.claim

    def after_open(self, metadata: SealMetadata, opener: str) -> None:
        return None


def letter(tmp_path: Path, name: str = "surat.txt") -> Path:
    path = tmp_path / "in" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"Yth. Kepala Badan ...")
    return path


@pytest.mark.parametrize(
    ("sender", "recipients", "classification"),
    [("DISKOMINFO", ["BAPPEDA", "SETDA"], "R"), ("DISKOMINFO", ["KESBANGPOL"], "SR"),
     ("BAPPEDA", ["SETDA"], "R"), ("BAPPEDA", ["KESBANGPOL", "DISKOMINFO"], "R"),
     ("SETDA", ["BAPPEDA"], "T")],
)
def test_allowed_relations_seal_and_open(policy_authority: AuthorityHome, tmp_path: Path, sender: str,
                                         recipients: list[str], classification: str) -> None:
    doc = letter(tmp_path)
    args = [a for r in recipients for a in ("--to", r)]
    r = policy_authority.run("--json", "seal", doc, "--as", sender, *args, "--class", classification)
    assert r.code == 0, r
    summary = json.loads(r.stdout)
    assert summary["policy"] == "banten-phks v1" and summary["classification"] == classification
    for code in recipients:
        out = tmp_path / f"out-{code}"
        r = policy_authority.run("--json", "open", doc.with_name("surat.txt.sandi"), "--as", code,
                                 "--output-dir", out)
        assert r.code == 0, r
        assert json.loads(r.stdout)["policy"] == "banten-phks v1"
        assert (out / "surat.txt").read_bytes() == doc.read_bytes()


@pytest.mark.parametrize(
    ("sender", "recipients", "classification", "rule"),
    [("DISKOMINFO", ["BAPPEDA"], "SR", "r-kominfo-agencies"),
     ("DISKOMINFO", ["KESBANGPOL", "BAPPEDA"], "SR", "r-kominfo-agencies"),  # one denial stops all
     ("BAPPEDA", ["KESBANGPOL", "SETDA"], "SR", "r-agencies-security"),
     ("SETDPRD", ["SETDA"], "SR", "f-setdprd-sr"),  # a forbid overrides the relation that would allow
     ("SETDA", ["KESBANGPOL"], "SR", "r-setda-agencies"),
     ("BAPPEDA", ["SETDA"], "SR", "r-setda-agencies")],
)
def test_denied_relation_writes_nothing(policy_authority: AuthorityHome, tmp_path: Path, sender: str,
                                        recipients: list[str], classification: str, rule: str) -> None:
    doc = letter(tmp_path)
    args = [a for r in recipients for a in ("--to", r)]
    r = policy_authority.run("seal", doc, "--as", sender, *args, "--class", classification)
    assert r.code == 3, r
    assert r.stderr.startswith("error: denied by policy banten-phks v1"), r
    assert rule in r.stderr and "hint: see 'sandi policy explain" in r.stderr, r
    assert [p.name for p in doc.parent.iterdir()] == ["surat.txt"]  # no output, no temporary
    last = list(Journal(Home(policy_authority.path).journal_path).entries())[-1]
    assert (last.actor, last.action, last.outcome) == (sender, "policy.deny", "denied")


def test_explain_agrees_with_the_gate(policy_authority: AuthorityHome) -> None:
    r = policy_authority.run("policy", "explain", "--from", "DISKOMINFO", "--to", "BAPPEDA", "--class", "SR",
                             "--policy", BANTEN_POLICY)
    assert r.code in (0, 3) and "DENY" in r.stdout + r.stderr, r
    r = policy_authority.run("policy", "explain", "--from", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R",
                             "--policy", BANTEN_POLICY)
    assert r.code == 0 and "ALLOW" in r.stdout, r


def test_sealed_without_policy_check_is_refused_at_open(policy_authority: AuthorityHome, tmp_path: Path) -> None:
    ws = policy_authority.workspace()
    sealed = tmp_path / "bypass.sandi"
    result = seal(letter(tmp_path), sealed, workspace=ws, sender="DISKOMINFO", recipients=["BAPPEDA"],
                  classification="R", policy=UnsafeNoPolicyCheck())
    assert result.metadata.policy_id is None
    out = tmp_path / "out"
    r = policy_authority.run("open", sealed, "--as", "BAPPEDA", "--output-dir", out)
    assert r.code == 4 and "names no policy, but a policy was in force" in r.stderr, r
    assert not out.exists()
    # knowingly bypassing at open too is possible through the library only
    ok = open_sealed(sealed, workspace=ws, opener="BAPPEDA", policy=UnsafeNoPolicyCheck(),
                     write_document=False)
    assert ok.metadata.policy_id is None


def version_2(tmp_path: Path) -> Path:
    text = BANTEN_POLICY.read_text()
    assert "\nversion = 1\n" in text
    path = tmp_path / "banten-v2.toml"
    path.write_text(text.replace("\nversion = 1\n", "\nversion = 2\n", 1))
    return path


@pytest.mark.parametrize(
    ("claim", "message"),
    [(("banten-phks", 1), "v1 was not the version in force"), (("banten-phks", 9), "v9 is unknown here"),
     (("other-policy", 1), "other-policy v1 is unknown here")],
    ids=["outdated", "unknown-version", "unknown-policy"],
)
def test_document_naming_another_policy_version_is_refused(policy_authority: AuthorityHome, tmp_path: Path,
                                                           claim: tuple[str, int], message: str) -> None:
    policy_authority.ok("policy", "apply", version_2(tmp_path))
    ws = policy_authority.workspace()
    assert DirectoryPolicy(ws.snapshot).in_force(ws.now()).version == 2  # type: ignore[union-attr]
    sealed = tmp_path / "claims.sandi"
    seal(letter(tmp_path), sealed, workspace=ws, sender="DISKOMINFO", recipients=["BAPPEDA"],
         classification="R", policy=ClaimsVersion(*claim))
    out = tmp_path / "out"
    r = policy_authority.run("open", sealed, "--as", "BAPPEDA", "--output-dir", out)
    assert r.code == 4 and message in r.stderr, r
    assert not out.exists()


def test_policy_is_checked_again_at_open(policy_authority: AuthorityHome, tmp_path: Path) -> None:
    """A sender that skipped the check but claims the right version: the opener's check denies it."""
    ws = policy_authority.workspace()
    sealed = tmp_path / "sr.sandi"
    seal(letter(tmp_path), sealed, workspace=ws, sender="DISKOMINFO", recipients=["BAPPEDA"],
         classification="SR", policy=ClaimsVersion("banten-phks", 1))
    out = tmp_path / "out"
    r = policy_authority.run("open", sealed, "--as", "BAPPEDA", "--output-dir", out)
    assert r.code == 3 and "denied by policy banten-phks v1" in r.stderr, r
    assert not out.exists()
    with pytest.raises(PolicyDenied):
        open_sealed(sealed, workspace=ws, opener="BAPPEDA", policy=DirectoryPolicy(ws.snapshot),
                    write_document=False)


def test_copy_to_sender_skips_only_the_senders_own_check(policy_authority: AuthorityHome, tmp_path: Path) -> None:
    doc = letter(tmp_path)
    r = policy_authority.run("seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R",
                             "--copy-to-self")
    assert r.code == 0, r
    for code in ("DISKOMINFO", "BAPPEDA"):
        r = policy_authority.run("open", doc.with_name("surat.txt.sandi"), "--as", code, "--output-dir",
                                 tmp_path / code)
        assert r.code == 0, r


def test_policy_applied_after_sealing_with_a_later_start(policy_authority: AuthorityHome, tmp_path: Path) -> None:
    """v2 taking effect in the future does not touch what v1 governed."""
    ws = policy_authority.workspace()
    sealed = tmp_path / "v1.sandi"
    seal(letter(tmp_path), sealed, workspace=ws, sender="DISKOMINFO", recipients=["BAPPEDA"],
         classification="R", policy=DirectoryPolicy(ws.snapshot))
    text = version_2(tmp_path).read_text().replace("effective = 2026-01-01", "effective = 2027-06-01")
    later = tmp_path / "banten-v2-later.toml"
    later.write_text(text)
    policy_authority.ok("policy", "apply", later)
    r = policy_authority.run("open", sealed, "--as", "BAPPEDA", "--output-dir", tmp_path / "out")
    assert r.code == 0, r


def test_policy_reapplied_with_the_same_start_keeps_old_documents(policy_authority: AuthorityHome,
                                                                  tmp_path: Path) -> None:
    ws = policy_authority.workspace()
    sink = io.BytesIO()
    seal(letter(tmp_path), sink, workspace=ws, sender="DISKOMINFO", recipients=["BAPPEDA"],
         classification="R", policy=DirectoryPolicy(ws.snapshot))
    policy_authority.ok("policy", "apply", version_2(tmp_path))
    ws2 = policy_authority.workspace()
    open_sealed(io.BytesIO(sink.getvalue()), workspace=ws2, opener="BAPPEDA",
                policy=DirectoryPolicy(ws2.snapshot), write_document=False)
