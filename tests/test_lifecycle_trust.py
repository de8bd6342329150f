"""Enrolment, rotation and recovery an operator can trust (issue 16).

Each test is one trap found by trying the lifecycle as an operator and an agency would:
a request without a fingerprint to compare, a certify that acts without showing what it
does, a second request that silently retires live certificates, a rotation made at the
authority for keys that live on a workstation.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandi.authority.enrolment import normalise_fingerprint, request_fingerprint
from tests import test_authority_enrolment as enrolment_tests
from tests import test_authority_support as support
from tests.conftest import RunSandi
from tests.test_authority_enrolment import make_request, root_fp
from tests.test_authority_support import db_rows, ok

authority = support.authority
fast_env = support.fast_env

workstation = enrolment_tests.workstation  # BAPPEDA registered, its workstation home made


def enrolled(run_sandi: RunSandi, authority: Path, workstation: Path, tmp_path: Path) -> None:
    req = make_request(run_sandi, workstation, tmp_path, "first.json")
    answer = tmp_path / "first-answer.json"
    ok(run_sandi, "--home", authority, "keys", "certify", "--yes", req, "-o", answer)
    ok(run_sandi, "--home", workstation, "keys", "import-certs", answer)


def test_request_prints_a_fingerprint_to_compare_by_phone(
    run_sandi: RunSandi, workstation: Path, tmp_path: Path
) -> None:
    req = tmp_path / "req.json"
    shown = run_sandi("--home", workstation, "keys", "request", "BAPPEDA", "-o", req)
    assert shown.code == 0, shown
    fp = request_fingerprint(req.read_bytes())
    assert fp in shown.stdout
    assert len(fp.split()) == 8 and all(len(group) == 4 for group in fp.split())
    as_json = run_sandi("--home", workstation, "--json", "keys", "request", "BAPPEDA", "-o", tmp_path / "b.json")
    assert json.loads(as_json.stdout)["fingerprint"] == request_fingerprint((tmp_path / "b.json").read_bytes())


def test_certify_shows_what_it_certifies_and_asks(
    run_sandi: RunSandi, authority: Path, workstation: Path, tmp_path: Path
) -> None:
    req = make_request(run_sandi, workstation, tmp_path)
    out = tmp_path / "answer.json"
    before = db_rows(authority)
    # No terminal and no --yes: a clear usage error before anything changes.
    no_tty = run_sandi("--home", authority, "keys", "certify", req, "-o", out)
    assert no_tty.code == 2, no_tty
    assert "--yes" in no_tty.stderr
    assert "BAPPEDA (Badan Perencanaan)" in no_tty.stderr  # the summary was shown
    assert request_fingerprint(req.read_bytes()) in no_tty.stderr
    assert db_rows(authority) == before and not out.exists()
    # A terminal that answers no: cancelled, nothing changed.
    declined = on_a_terminal(["--home", str(authority), "keys", "certify", str(req), "-o", str(out)], "n\n")
    assert declined.returncode == 1, declined
    assert "Certify this request?" in declined.output and "cancelled" in declined.output
    assert db_rows(authority) == before and not out.exists()
    accepted = on_a_terminal(["--home", str(authority), "keys", "certify", str(req), "-o", str(out)], "y\n")
    assert accepted.returncode == 0, accepted
    assert out.exists()


@dataclass
class TerminalRun:
    returncode: int
    output: str


def on_a_terminal(args: list[str], answer: str) -> TerminalRun:
    """Run sandi with a real pseudo-terminal as standard input, typing ``answer``."""
    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("SANDI_HOME", "SANDI_DATABASE_URL")}
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from sandi_cli.main import main; main(sys.argv[1:])", *args],
        stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
    )
    os.close(terminal)
    os.write(controller, answer.encode())
    output, _ = proc.communicate(timeout=120)
    os.close(controller)
    return TerminalRun(proc.returncode, output.decode("utf-8", "replace"))


@pytest.mark.parametrize(
    ("spelling", "accepted"),
    [
        ("same", True),
        ("lower-dashed", True),
        ("other", False),
    ],
)
def test_expect_fingerprint(run_sandi: RunSandi, authority: Path, workstation: Path, tmp_path: Path,
                            spelling: str, accepted: bool) -> None:
    req = make_request(run_sandi, workstation, tmp_path)
    fp = request_fingerprint(req.read_bytes())
    given = {"same": fp, "lower-dashed": fp.lower().replace(" ", "-"),
             "other": "0000 " + fp[5:]}[spelling]
    out = tmp_path / "answer.json"
    before = db_rows(authority)
    r = run_sandi("--home", authority, "keys", "certify", "--yes", req, "-o", out,
                  "--expect-fingerprint", given)
    if accepted:
        assert r.code == 0, r
        assert out.exists()
    else:
        assert r.code == 4, r
        assert "fingerprint" in r.stderr
        assert db_rows(authority) == before and not out.exists()
    assert normalise_fingerprint(given) == normalise_fingerprint(fp) or not accepted


def test_second_request_for_an_enrolled_agency_is_refused_without_replace(
    run_sandi: RunSandi, authority: Path, workstation: Path, tmp_path: Path
) -> None:
    enrolled(run_sandi, authority, workstation, tmp_path)
    stranger = tmp_path / "stranger"
    ok(run_sandi, "--home", stranger, "init", "--agency", "BAPPEDA", "--root-fingerprint", root_fp(authority))
    second = make_request(run_sandi, stranger, tmp_path, "second.json")
    before = db_rows(authority)
    refused = run_sandi("--home", authority, "keys", "certify", "--yes", second, "-o", tmp_path / "x.json")
    assert refused.code == 1, refused
    assert "holds current certificates" in refused.stderr
    assert db_rows(authority) == before
    # The workstation's live keys still work: it can sign.
    letter = tmp_path / "nota.txt"
    letter.write_text("Nota dinas.\n")
    ok(run_sandi, "--home", workstation, "directory", "import", _publish(run_sandi, authority, tmp_path))
    ok(run_sandi, "--home", workstation, "sign", letter, "--as", "BAPPEDA")


def _publish(run_sandi: RunSandi, authority: Path, tmp_path: Path, name: str = "dir.json") -> Path:
    path = tmp_path / name
    ok(run_sandi, "--home", authority, "directory", "publish", "-o", path)
    return path


def test_rotation_starts_where_the_keys_live(
    run_sandi: RunSandi, authority: Path, workstation: Path, tmp_path: Path
) -> None:
    enrolled(run_sandi, authority, workstation, tmp_path)
    before = db_rows(authority)
    # The authority does not make new keys for an agency whose keys live elsewhere.
    refused = run_sandi("--home", authority, "keys", "rotate", "--yes", "BAPPEDA", "--yes")
    assert refused.code == 1, refused
    assert "--rotate" in refused.stderr and "workstation" in refused.stderr
    assert db_rows(authority) == before
    # The workstation asks; the request is signed by its current key, so no --replace.
    rotation = tmp_path / "rotation.json"
    shown = ok(run_sandi, "--home", workstation, "keys", "request", "BAPPEDA", "--rotate", "-o", rotation)
    assert "rotation" in shown
    answer = tmp_path / "rotation-answer.json"
    certified = run_sandi("--home", authority, "keys", "certify", "--yes", rotation, "-o", answer)
    assert certified.code == 0, certified
    assert "rotation" in certified.stderr and "Retires:" in certified.stderr
    ok(run_sandi, "--home", workstation, "keys", "import-certs", answer)
    listed = json.loads(ok(run_sandi, "--home", authority, "keys", "list", "BAPPEDA", "--json"))
    assert sorted(c["state"] for c in listed) == ["current", "current", "retired", "retired"]
    # The workstation signs with its new key after importing the new directory.
    ok(run_sandi, "--home", workstation, "directory", "import", _publish(run_sandi, authority, tmp_path, "d2.json"))
    letter = tmp_path / "nota.txt"
    letter.write_text("Nota dinas.\n")
    ok(run_sandi, "--home", workstation, "sign", letter, "--as", "BAPPEDA")


def test_rotation_request_signed_by_another_key_is_refused(
    run_sandi: RunSandi, authority: Path, workstation: Path, tmp_path: Path
) -> None:
    enrolled(run_sandi, authority, workstation, tmp_path)
    # A thief's workstation with its own (certified, then replaced) keys cannot rotate BAPPEDA.
    rotation = tmp_path / "rotation.json"
    ok(run_sandi, "--home", workstation, "keys", "request", "BAPPEDA", "--rotate", "-o", rotation)
    body = json.loads(rotation.read_text())
    body["replacing_signature"] = body["signature"]  # signed by the new key, not the current one
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(body))
    before = db_rows(authority)
    r = run_sandi("--home", authority, "keys", "certify", "--yes", forged, "-o", tmp_path / "x.json")
    assert r.code == 4, r
    assert "current signing key" in r.stderr
    assert db_rows(authority) == before


def test_rotate_without_certificates_says_how_to_enrol(run_sandi: RunSandi, workstation: Path,
                                                       tmp_path: Path) -> None:
    r = run_sandi("--home", workstation, "keys", "request", "BAPPEDA", "--rotate", "-o", tmp_path / "r.json")
    assert r.code == 1, r
    assert "without --rotate" in r.stderr
    assert not (tmp_path / "r.json").exists()
