"""Circulars (surat edaran, issue 20): one sealed document to 1,000 agencies.

A directory of 1,000 synthetic agencies (real X25519 keys and certificates issued by
the real root, a root-signed policy naming them: :mod:`tests.circular_fixtures`) is
built once for this module. Then:

* ``seal --to-file`` (1,000 codes) and ``seal --to-all`` work through the real command
  line; the recipient list travels as the signed manifest ``sandi-recipients.json``
  (the archive's first member), the trusted comment carries its hash and count;
* the first, a middle and the last agency open it (``sandi open``);
* the standard tools check it: ``age -d`` with one agency's identity, ``tar`` lists and
  extracts it, ``minisign -V`` verifies the signature, and the manifest's hash equals
  the one in the verified trusted comment (``sed`` + ``sha256sum -c``, as docs/format.md
  3.5 shows);
* a changed, missing, unnamed or oversized manifest is refused, and so is a manifest
  the sender signed that does not match the stanzas (issue 13's checks, unchanged);
* more than 2,000 recipients is refused before any lookup; one denied relation stops
  the whole circular; up to 50 recipients the list stays inline (the earlier format).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from sandi.documents import (
    MAX_RECIPIENTS,
    DirectoryPolicy,
    SealMetadata,
    UnsafeNoPolicyCheck,
    Workspace,
    seal,
)
from sandi.documents.metadata import MANIFEST_NAME, KeyRef, encode_manifest, manifest_ref
from sandi.errors import UsageError
from sandi.formats.age import EncryptWriter, X25519Identity, X25519Recipient, decrypt, parse_header
from sandi.formats.minisign import Prehasher, sign_digest
from sandi.formats.ustar import UstarWriter
from sandi.keystore import key_ref
from tests import authority_fixtures as fx
from tests.authority_fixtures import PASSPHRASE, AuthorityHome
from tests.circular_fixtures import CircularHome, add_circular_agencies, agency_code
from tests.test_seal_tamper import members, rebuild_tar, stream_encrypt

authority_template = fx.authority_template

COUNT = 1000
DENIED = agency_code(COUNT)  # one more agency, which the policy forbids everything
OPENERS = [0, COUNT // 2, COUNT - 1]
DOC_NAME = "edaran.pdf"
DOC = hashlib.shake_256(b"surat edaran gubernur").digest(70_000)


@dataclass(frozen=True)
class Province:
    home: AuthorityHome
    circular: CircularHome
    work: Path

    @property
    def addressees(self) -> list[str]:
        return list(self.circular.codes[:COUNT])


@pytest.fixture(scope="module")
def province(authority_template: AuthorityHome, tmp_path_factory: pytest.TempPathFactory) -> Province:
    work = tmp_path_factory.mktemp("circular")
    home = authority_template.copy_to(work / "authority")
    circular = add_circular_agencies(
        home.path, PASSPHRASE, COUNT + 1, openers=OPENERS, identities=work / "identities", denied=DENIED,
        import_directory=lambda path: home.ok("directory", "import", path),
    )
    return Province(home, circular, work)


@pytest.fixture(scope="module")
def sealed(province: Province) -> Path:
    """The circular, sealed once through the command line to the 1,000 allowed agencies."""
    folder = province.work / "sent"
    folder.mkdir()
    doc = folder / DOC_NAME
    doc.write_bytes(DOC)
    listing = folder / "penerima.txt"
    listing.write_text("# penerima surat edaran\n" + "\n".join(province.addressees) + "\n")
    r = province.home.run("seal", doc, "--as", "DISKOMINFO", "--to-file", listing, "--class", "B",
                          "--hal", "Libur nasional", "--nomor", "800/1/DISKOMINFO/2026")
    assert r.code == 0, r
    assert f"({COUNT} agencies)" in r.stdout, r  # the human summary does not print 1,000 codes
    return folder / (DOC_NAME + ".sandi")


def open_as(province: Province, raw: bytes | Path, opener: str, folder: Path) -> tuple[int, str]:
    """``sandi open --as OPENER``; returns (exit code, stderr); checks the document if opened
    and that nothing is left behind if not."""
    source = raw if isinstance(raw, Path) else folder / "in.sandi"
    if not isinstance(raw, Path):
        folder.mkdir()
        source.write_bytes(raw)
    out = folder / f"out-{opener}"
    r = province.home.run("open", source, "--as", opener, "--output-dir", out)
    if r.code == 0:
        assert (out / DOC_NAME).read_bytes() == DOC
    else:
        assert not out.exists() or list(out.iterdir()) == [], "a refused circular left a file behind"
    return r.code, r.stderr


def test_circular_opens_for_the_first_a_middle_and_the_last(province: Province, sealed: Path,
                                                            tmp_path: Path) -> None:
    header = parse_header(io.BytesIO(sealed.read_bytes()))
    assert len(header.stanzas) == COUNT and {s.type for s in header.stanzas} == {"X25519"}
    for index in OPENERS:
        code, stderr = open_as(province, sealed, agency_code(index), tmp_path)
        assert code == 0, stderr
    r = province.home.ok("--json", "inspect", sealed, "--as", agency_code(COUNT // 2))
    shown = json.loads(r.stdout)["verified"]
    assert shown["recipients"] == province.addressees and shown["sender"] == "DISKOMINFO"
    # an agency of the directory that is not among the addressees is refused
    assert open_as(province, sealed, "BAPPEDA", tmp_path)[0] == 4
    # the sender's audit entry names the manifest (its hash pins the whole list) and the count
    log = json.loads(province.home.ok("--json", "audit", "log", "--action", "document.seal").stdout)
    details = log[-1]["details"]
    assert details["recipients_count"] == COUNT and details["recipients"] == province.addressees
    assert len(details["recipients_sha256"]) == 64


@pytest.mark.interop
@pytest.mark.skipif(not all(shutil.which(t) for t in ("age", "tar", "minisign", "sha256sum", "sed")),
                    reason="age, tar, minisign, sha256sum or sed is not installed")
def test_circular_checks_with_age_tar_and_minisign(province: Province, sealed: Path, tmp_path: Path) -> None:
    opener = agency_code(COUNT // 2)
    plain = subprocess.run(["age", "-d", "-i", str(province.circular.identity_file(opener)), str(sealed)],
                           capture_output=True, check=True).stdout
    listed = subprocess.run(["tar", "-t", "-f", "-"], input=plain, capture_output=True, check=True).stdout
    assert listed.decode().splitlines() == [MANIFEST_NAME, DOC_NAME, DOC_NAME + ".minisig"]
    subprocess.run(["tar", "-x", "-C", str(tmp_path), "-f", "-"], input=plain, check=True, capture_output=True)
    assert (tmp_path / DOC_NAME).read_bytes() == DOC
    public = province.home.minisign_public_key("DISKOMINFO")
    comment = subprocess.run(["minisign", "-V", "-Q", "-p", str(public), "-m", DOC_NAME], cwd=tmp_path,
                             capture_output=True, check=True, text=True).stdout.strip()
    meta = json.loads(comment.removeprefix("sandi-seal/v1 "))
    assert "recipients" not in meta and meta["recipients_manifest"]["count"] == COUNT
    assert len(comment.encode()) < 1024  # bounded, whatever the number of recipients
    header = parse_header(io.BytesIO(sealed.read_bytes())).header_bytes
    assert meta["age_header_sha256"] == hashlib.sha256(header).hexdigest()
    # The check docs/format.md 3.5 prints: the manifest is the one the verified comment names.
    check = ("minisign -V -Q -p \"$1\" -m edaran.pdf | sed -n "
             "'s/.*\"recipients_manifest\":{\"count\":[0-9]*,\"sha256\":\"\\([0-9a-f]*\\)\"}.*/\\1  "
             "sandi-recipients.json/p' | sha256sum -c")
    done = subprocess.run(["bash", "-o", "pipefail", "-c", check, "check", str(public)], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0 and "sandi-recipients.json: OK" in done.stdout, done
    listed_codes = [e["code"] for e in json.loads((tmp_path / MANIFEST_NAME).read_text())["recipients"]]
    assert listed_codes == province.addressees
    # one changed byte in the extracted manifest, and the same standard check fails
    manifest = tmp_path / MANIFEST_NAME
    manifest.write_text(manifest.read_text().replace(agency_code(7), agency_code(8), 1))
    done = subprocess.run(["bash", "-o", "pipefail", "-c", check, "check", str(public)], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode != 0 and "FAILED" in done.stdout, done


# -- a circular changed after sealing ---------------------------------------------------------


def file_key_and_plaintext(province: Province, raw: bytes, opener: int = COUNT // 2) -> tuple[bytes, bytes, bytes]:
    """(header bytes, file key, tar stream), as an agency (the middle one) can learn them."""
    (identity,) = _identities(province, agency_code(opener))
    header = parse_header(io.BytesIO(raw))
    file_key = identity.unwrap(header.stanzas)
    assert file_key is not None
    plain = io.BytesIO()
    decrypt(io.BytesIO(raw), plain, [identity])
    return header.header_bytes, file_key, plain.getvalue()


def _identities(province: Province, code: str) -> list[X25519Identity]:
    from sandi.formats.age import parse_identities

    return list(parse_identities(province.circular.identity_file(code).read_text()))  # type: ignore[arg-type]


def _data(plain: bytes, index: int) -> bytes:
    member = members(plain)[index]
    return plain[member.data_at:member.data_at + member.size]


def _oversized_manifest(plain: bytes) -> bytes:
    return rebuild_tar([(MANIFEST_NAME, b" " * (512 * 1024 + 1)), (DOC_NAME, _data(plain, 1)),
                        (DOC_NAME + ".minisig", _data(plain, 2))])


TAMPERED: list[tuple[str, Callable[[bytes], bytes], str]] = [
    ("manifest-entries-swapped", lambda p: rebuild_tar([
        (MANIFEST_NAME, _data(p, 0).replace(b"OPD-0001", b"OPD-XXXX").replace(b"OPD-0002", b"OPD-0001")
         .replace(b"OPD-XXXX", b"OPD-0002")),
        (DOC_NAME, _data(p, 1)), (DOC_NAME + ".minisig", _data(p, 2))]),
     "recipient list .sandi-recipients.json. is not the one the sender signed"),
    ("manifest-one-byte-changed", lambda p: rebuild_tar([
        (MANIFEST_NAME, _data(p, 0).replace(b"OPD-0999", b"OPD-0998")),
        (DOC_NAME, _data(p, 1)), (DOC_NAME + ".minisig", _data(p, 2))]),
     "is not the one the sender signed"),
    ("manifest-removed", lambda p: rebuild_tar([(DOC_NAME, _data(p, 1)), (DOC_NAME + ".minisig", _data(p, 2))]),
     "names a recipient list .sandi-recipients.json. that the document does not hold"),
    ("manifest-moved-after-the-document", lambda p: rebuild_tar([
        (DOC_NAME, _data(p, 1)), (MANIFEST_NAME, _data(p, 0)), (DOC_NAME + ".minisig", _data(p, 2))]),
     "second member must be its .minisig signature"),
    ("manifest-at-the-end", lambda p: rebuild_tar([
        (DOC_NAME, _data(p, 1)), (DOC_NAME + ".minisig", _data(p, 2)), (MANIFEST_NAME, _data(p, 0))]),
     "exactly two members"),
    ("manifest-over-512-KiB", _oversized_manifest, "recipient list is larger than the limit"),
]


@pytest.mark.parametrize(("change", "message"), [pytest.param(c, m, id=i) for i, c, m in TAMPERED])
def test_changed_circular_is_refused(province: Province, sealed: Path, tmp_path: Path,
                                     change: Callable[[bytes], bytes], message: str) -> None:
    import re

    header, file_key, plain = file_key_and_plaintext(province, sealed.read_bytes())
    assert [m.name for m in members(plain)] == [MANIFEST_NAME, DOC_NAME, DOC_NAME + ".minisig"]
    raw = header + stream_encrypt(file_key, change(plain))
    code, stderr = open_as(province, raw, agency_code(COUNT // 2), tmp_path / "open")
    assert code == 4 and re.search(message, stderr), stderr


def test_reencryption_control(province: Province, sealed: Path, tmp_path: Path) -> None:
    """The same rebuilding without a change opens: the refusals above are the changes'."""
    header, file_key, plain = file_key_and_plaintext(province, sealed.read_bytes())
    same = rebuild_tar([(m.name, _data(plain, i)) for i, m in enumerate(members(plain))])
    code, stderr = open_as(province, header + stream_encrypt(file_key, same), agency_code(0), tmp_path / "o")
    assert code == 0, stderr


# -- a manifest the sender signed that does not match the stanzas (issue 13) -------------------


def forge_circular(ws: Workspace, codes: list[str], edit: Callable[[list[KeyRef]], list[KeyRef]],
                   *, inline: bool = False) -> bytes:
    """A circular built from the format layer, signed with DISKOMINFO's real key, whose
    manifest says what ``edit`` makes of the true list (a modified sender's software)."""
    sender = "DISKOMINFO"
    agency = ws.snapshot.agency(sender)
    cert = max((c for c in agency.certificates if c.purpose == "signing"), key=lambda c: c.not_before)
    signer = ws.keystore.get_signing_key(key_ref(sender, "signing", cert.key_fingerprint))
    refs, recipients = [], []
    for code in codes:
        enc = ws.snapshot.agency(code).current("encryption")[0]
        refs.append(KeyRef(code=code, key=enc.key_fingerprint))
        recipients.append(X25519Recipient.from_public_bytes(enc.public_key_bytes()))
    listed = tuple(edit(refs))
    manifest = encode_manifest(listed)
    sink = io.BytesIO()
    writer = EncryptWriter(sink, recipients)
    meta = SealMetadata(
        sender=KeyRef(code=sender, key=cert.key_fingerprint, serial=cert.serial), recipients=listed,
        classification="B", sealed_at=ws.now().replace(microsecond=0),
        age_header_sha256=hashlib.sha256(writer.header_bytes).hexdigest(), document_name=DOC_NAME,
        document_size=len(DOC), policy_id="circular-test", policy_version=1,
        manifest=None if inline else manifest_ref(manifest, len(listed)))
    hasher = Prehasher()
    hasher.update(DOC)
    signature = sign_digest(signer, hasher.digest(), meta.to_comment(), "forged")
    tar = UstarWriter(writer)
    tar.add_member(MANIFEST_NAME, manifest, 0)
    tar.add_member(DOC_NAME, DOC, 0)
    tar.add_member(DOC_NAME + ".minisig", signature.to_bytes(), 0)
    tar.finish()
    writer.close()
    return sink.getvalue()


MID = COUNT // 2
FORGED: list[tuple[str, Callable[[list[KeyRef]], list[KeyRef]], str | None]] = [
    ("control", lambda refs: refs, None),
    ("one-entry-dropped", lambda refs: refs[:-1], f"{COUNT - 1} entries for {COUNT} recipient stanzas"),
    ("one-entry-added", lambda refs: [*refs, refs[0]], f"{COUNT + 1} entries for {COUNT} recipient stanzas"),
    ("listed-in-another-order", lambda refs: refs[::-1],
     f"does not name the key of {agency_code(MID)} where the header holds it"),
    ("opener-listed-as-another-agency",
     lambda refs: [*refs[:MID], replace(refs[MID], code="BAPPEDA"), *refs[MID + 1:]],
     f"does not name the key of {agency_code(MID)} where the header holds it"),
    ("opener-key-claimed-twice", lambda refs: [*refs[:1], refs[MID], *refs[2:]],
     f"does not name the key of {agency_code(MID)} where the header holds it"),
    ("copy-flag-on-a-recipient",
     lambda refs: [*refs[:3], replace(refs[3], copy=True), *refs[4:]],
     f"marks {agency_code(3)} as the sender's copy"),
    ("opener-not-listed", lambda refs: [*refs[:MID], replace(refs[MID], code="OPD-0001", key=refs[1].key),
                                         *refs[MID + 1:]],
     f"does not name the key of {agency_code(MID)}"),
]


@pytest.mark.parametrize(("edit", "message"), [pytest.param(e, m, id=i) for i, e, m in FORGED])
def test_signed_manifest_must_match_the_stanzas(province: Province, tmp_path: Path,
                                                edit: Callable[[list[KeyRef]], list[KeyRef]],
                                                message: str | None) -> None:
    raw = forge_circular(province.home.workspace(), province.addressees, edit)
    code, stderr = open_as(province, raw, agency_code(MID), tmp_path / "open")
    if message is None:
        assert code == 0, stderr
    else:
        assert code == 4 and message in stderr, stderr


def test_a_manifest_the_signature_does_not_name_is_refused(province: Province, tmp_path: Path) -> None:
    """Inline list in the comment, and a manifest member beside it: one of them is not signed."""
    ws = province.home.workspace()
    raw = forge_circular(ws, province.addressees[:3], lambda refs: refs, inline=True)
    code, stderr = open_as(province, raw, agency_code(0), tmp_path / "open")
    assert code == 4 and "holds a recipient list (sandi-recipients.json) that the signature does not name" in stderr


# -- limits, policy, the inline format ---------------------------------------------------------


def test_over_the_limit_is_refused_before_any_work(province: Province, tmp_path: Path) -> None:
    doc = tmp_path / DOC_NAME
    doc.write_bytes(DOC)
    # codes the directory does not know: the count is refused before a single lookup
    unknown = [f"NONE-{i:04d}" for i in range(MAX_RECIPIENTS + 1)]
    with pytest.raises(UsageError, match="at most 2000 recipients per sealed document"):
        seal(doc, tmp_path / "out.sandi", workspace=province.home.workspace(), sender="DISKOMINFO",
             recipients=unknown, classification="B", policy=UnsafeNoPolicyCheck())
    listing = tmp_path / "list.txt"
    listing.write_text(" ".join(unknown))
    r = province.home.run("seal", doc, "--as", "DISKOMINFO", "--to-file", listing, "--class", "B")
    assert r.code == 2 and "at most 2000 recipients" in r.stderr, r
    # with the sender's own copy, 2,000 addressees are one too many
    listing.write_text(" ".join(unknown[:MAX_RECIPIENTS]))
    r = province.home.run("seal", doc, "--as", "DISKOMINFO", "--to-file", listing, "--class", "B",
                          "--copy-to-self")
    assert r.code == 2 and "at most 2000 recipients" in r.stderr, r
    assert sorted(p.name for p in tmp_path.iterdir()) == [DOC_NAME, "list.txt"]


def test_one_denied_agency_stops_the_circular(province: Province, tmp_path: Path) -> None:
    doc = tmp_path / DOC_NAME
    doc.write_bytes(DOC)
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join([*province.addressees, DENIED]))
    r = province.home.run("seal", doc, "--as", "DISKOMINFO", "--to-file", listing, "--class", "B")
    assert r.code == 3 and "f-denied" in r.stderr, r
    assert sorted(p.name for p in tmp_path.iterdir()) == [DOC_NAME, "list.txt"]
    last = json.loads(province.home.ok("--json", "audit", "log", "--action", "policy.deny").stdout)[-1]
    # the whole list does not fit in an audit subject: the denied agency does
    assert last["subject"] == DENIED and last["details"]["recipients_count"] == COUNT + 1
    # --to-all takes the agencies this policy does not name too: the first of them is denied
    r = province.home.run("seal", doc, "--as", "DISKOMINFO", "--to-all", "--class", "B")
    assert r.code == 3 and "unknown recipient 'BAPPEDA'" in r.stderr, r
    assert sorted(p.name for p in tmp_path.iterdir()) == [DOC_NAME, "list.txt"]


def test_to_all_addresses_every_agency_with_a_key(province: Province) -> None:
    from sandi.documents import circular_recipients

    ws = province.home.workspace()
    everyone = circular_recipients(ws, "DISKOMINFO")
    assert "DISKOMINFO" not in everyone and DENIED in everyone
    assert set(province.circular.codes) <= set(everyone) and "BAPPEDA" in everyone


@pytest.mark.parametrize(("count", "inline"), [(50, True), (51, False)])
def test_up_to_50_recipients_stay_inline(province: Province, tmp_path: Path, count: int, inline: bool) -> None:
    doc = tmp_path / DOC_NAME
    doc.write_bytes(DOC)
    out = tmp_path / "out.sandi"
    ws = province.home.workspace()
    result = seal(doc, out, workspace=ws, sender="DISKOMINFO", recipients=province.addressees[-count:],
                  classification="B", policy=DirectoryPolicy(ws.snapshot))
    assert (result.metadata.manifest is None) is inline
    _header, _key, plain = file_key_and_plaintext(province, out.read_bytes(), COUNT - 1)
    names = [m.name for m in members(plain)]
    assert names == ([] if inline else [MANIFEST_NAME]) + [DOC_NAME, DOC_NAME + ".minisig"]
    code, stderr = open_as(province, out, agency_code(COUNT - 1), tmp_path)
    assert code == 0, stderr


def test_list_file_errors_name_the_line(province: Province, tmp_path: Path) -> None:
    doc = tmp_path / DOC_NAME
    doc.write_bytes(DOC)
    listing = tmp_path / "list.txt"
    listing.write_text("OPD-0001, opd-0002  # two\n\nOPD 0003/x\n")
    r = province.home.run("seal", doc, "--as", "DISKOMINFO", "--to-file", listing, "--class", "B")
    assert r.code == 2 and "line 3" in r.stderr and "'0003/x' is not an agency code" in r.stderr, r
    r = province.home.run("seal", doc, "--as", "DISKOMINFO", "--class", "B")
    assert r.code == 2 and "--to, --to-file or --to-all" in r.stderr, r
    listing.write_text("OPD-0001, opd-0002  # two\nOPD-0001\n")
    r = province.home.run("--json", "seal", doc, "--as", "DISKOMINFO", "--to-file", listing, "--class", "B")
    assert r.code == 0 and json.loads(r.stdout)["recipients"] == ["OPD-0001", "OPD-0002"], r


def test_document_named_like_the_manifest_is_refused(province: Province, tmp_path: Path) -> None:
    doc = tmp_path / MANIFEST_NAME
    doc.write_bytes(b"{}")
    with pytest.raises(UsageError, match=r"cannot be named sandi-recipients\.json"):
        seal(doc, tmp_path / "out.sandi", workspace=province.home.workspace(), sender="DISKOMINFO",
             recipients=province.addressees[:60], classification="B", policy=UnsafeNoPolicyCheck())
    assert not (tmp_path / "out.sandi").exists()
    os.unlink(doc)


@pytest.mark.slow
def test_bench_circular_smoke(tmp_path: Path) -> None:
    """A short pass of bench/bench_circular.py (the figures are the script's; this keeps it working)."""
    import sys

    script = Path(__file__).resolve().parent.parent / "bench" / "bench_circular.py"
    done = subprocess.run([sys.executable, str(script), "--counts", "2,51", "--repeat", "1", "--dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split() for line in done.stdout.splitlines() if line.strip().split(" ")[0].isdigit()]
    assert [row[0] for row in rows] == ["2", "51"]
    assert rows[0][-2] == "0" and int(rows[1][-2]) > 0  # inline at 2, a manifest at 51


def test_post_quantum_circular_is_bounded_by_the_header_before_any_encapsulation(province: Province,
                                                                                  tmp_path: Path) -> None:
    """Hybrid stanzas are 1,557 bytes: 673 fit in the 1 MiB age header. The policy requires
    post-quantum sealing at R, so a circular at R to 1,000 is refused by count, at once."""
    from sandi.documents.seal import _max_post_quantum_recipients, _post_quantum_header_size
    from sandi.formats.age import DEFAULT_MAX_HEADER_SIZE, MLKEM768X25519Identity

    assert _max_post_quantum_recipients() == 673
    recipient = MLKEM768X25519Identity.generate().recipient
    written = EncryptWriter(io.BytesIO(), [recipient] * 673)  # the codec's own header, exactly
    assert len(written.header_bytes) == _post_quantum_header_size(673) <= DEFAULT_MAX_HEADER_SIZE
    with pytest.raises(UsageError, match="larger than"):
        EncryptWriter(io.BytesIO(), [recipient] * 674)
    doc = tmp_path / DOC_NAME
    doc.write_bytes(DOC)
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(province.addressees))
    r = province.home.run("seal", doc, "--as", "DISKOMINFO", "--to-file", listing, "--class", "R")
    assert r.code == 2 and "a post-quantum document can go to at most 673 recipients" in r.stderr, r
    assert sorted(p.name for p in tmp_path.iterdir()) == [DOC_NAME, "list.txt"]
