"""The library face of sealed documents and detached signatures.

seal / open_sealed / sign / verify with paths and with streams, their typed results,
armored and binary output, the size boundaries of age's 64 KiB chunks and of tar's
512-byte blocks, several recipients, the copy to the sender, and the refusals that
must leave nothing behind.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from sandi.audit.journal import Journal
from sandi.documents import (
    DirectoryPolicy,
    OpenResult,
    SealMetadata,
    SealResult,
    SignResult,
    UnsafeNoPolicyCheck,
    VerifyResult,
    Workspace,
    open_sealed,
    seal,
    sign,
    verify,
)
from sandi.errors import (
    AlreadyExistsError,
    CredentialError,
    DecryptionError,
    FormatError,
    NotFoundError,
    UsageError,
    VerificationError,
)
from sandi.formats.age import decrypt, parse_header
from sandi.home import Home
from sandi.timefmt import today
from tests import authority_fixtures as fx
from tests.authority_fixtures import AuthorityHome

authority_template = fx.authority_template
authority = fx.authority

KIB = 1024
MIB = 1024 * KIB


def content(size: int) -> bytes:
    # Not all zeros, not periodic at the chunk size: a misplaced chunk shows.
    return hashlib.shake_256(b"sandi-%d" % size).digest(size) if size else b""


def journal_actions(home: AuthorityHome) -> list[tuple[str, str, str]]:
    return [(e.actor, e.action, e.outcome) for e in Journal(Home(home.path).journal_path).entries()]


@pytest.fixture
def ws(authority: AuthorityHome) -> Workspace:
    return authority.workspace()


def seal_file(ws: Workspace, src: Path, dst: Path, recipients: list[str], **kw: object) -> SealResult:
    return seal(src, dst, workspace=ws, sender="DISKOMINFO", recipients=recipients, classification="R",
                policy=DirectoryPolicy(ws.snapshot), **kw)  # type: ignore[arg-type]


def open_as(ws: Workspace, src: object, opener: str, **kw: object) -> OpenResult:
    return open_sealed(src, workspace=ws, opener=opener, policy=DirectoryPolicy(ws.snapshot),  # type: ignore[arg-type]
                       **kw)  # type: ignore[arg-type]


# -- round trips: sizes x armor -----------------------------------------------------------

SIZES = [
    pytest.param(0, id="empty"),
    pytest.param(1, id="1-byte"),
    pytest.param(511, id="one-tar-block-minus-1"),
    pytest.param(64 * KIB, id="64KiB-exact"),
    pytest.param(64 * KIB + 1, id="64KiB-plus-1"),
    pytest.param(3 * MIB + 7, id="3MiB-odd"),
]


@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armored"])
@pytest.mark.parametrize("size", SIZES)
def test_round_trip_paths(ws: Workspace, authority: AuthorityHome, tmp_path: Path, size: int,
                          armor: bool) -> None:
    data = content(size)
    src = tmp_path / "surat.pdf"
    src.write_bytes(data)
    sealed = tmp_path / "surat.pdf.sandi"
    result = seal_file(ws, src, sealed, ["BAPPEDA"], armor=armor,
                       letter={"nomor": "005/1/2026", "hal": "Rapat", "sifat": "segera"})

    assert isinstance(result, SealResult) and result.output == sealed
    meta = result.metadata
    assert isinstance(meta, SealMetadata)
    assert (meta.sender.code, [r.code for r in meta.recipients]) == ("DISKOMINFO", ["BAPPEDA"])
    assert (meta.document_name, meta.document_size, meta.classification) == ("surat.pdf", size, "R")
    # sifat in its configured spelling; tanggal defaults to today in the province's zone
    assert meta.letter == {"nomor": "005/1/2026", "hal": "Rapat", "sifat": "Segera",
                           "tanggal": today(meta.sealed_at).isoformat()}
    assert meta.policy_id is None  # no policy applied on this authority
    raw = sealed.read_bytes()
    assert raw.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----") is armor
    with sealed.open("rb") as f:
        header = parse_header(f)
    assert meta.age_header_sha256 == hashlib.sha256(header.header_bytes).hexdigest()
    # Independently of sandi's reader: age with the exported identity, then Python's tarfile.
    plain = io.BytesIO()
    decrypt(io.BytesIO(raw), plain, [authority.identity("BAPPEDA")])
    with tarfile.open(fileobj=io.BytesIO(plain.getvalue()), mode="r:") as tar:
        members = tar.getmembers()
        assert (members[0].name, members[0].isreg(), members[0].size) == ("surat.pdf", True, size)
        assert [m.name for m in members] == ["surat.pdf", "surat.pdf.minisig"]
        assert tar.extractfile(members[0]).read() == data  # type: ignore[union-attr]
    assert size < 64 or data[:64] not in raw

    out = tmp_path / "masuk"
    opened = open_as(ws, sealed, "BAPPEDA", output_dir=out)
    assert isinstance(opened, OpenResult)
    assert opened.opener == "BAPPEDA" and opened.metadata == meta
    assert opened.output == out / "surat.pdf"
    assert (out / "surat.pdf").read_bytes() == data
    assert sorted(p.name for p in out.iterdir()) == ["surat.pdf"]  # no temporary left over
    assert (out / "surat.pdf").stat().st_mode & 0o077 == 0
    assert opened.summary()["opened_by"] == "BAPPEDA" and opened.summary()["nomor"] == "005/1/2026"


class _Unseekable(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_round_trip_streams(ws: Workspace, tmp_path: Path) -> None:
    data = content(200 * KIB + 3)
    sink = io.BytesIO()
    # A stream that can neither tell nor seek (a pipe): its size must be given.
    with pytest.raises(UsageError, match="size"):
        seal(_Unseekable(data), sink, workspace=ws, sender="DISKOMINFO", recipients=["BAPPEDA"],
             classification="T", policy=UnsafeNoPolicyCheck())
    assert sink.getvalue() == b""  # refused before writing
    # A BytesIO tells its size by seeking: no size= needed (issue 14).
    whole = seal(io.BytesIO(data), io.BytesIO(), workspace=ws, sender="DISKOMINFO", recipients=["BAPPEDA"],
                 classification="T", policy=UnsafeNoPolicyCheck(), name="laporan.txt")
    assert whole.metadata.document_size == len(data)
    result = seal(io.BytesIO(data), sink, workspace=ws, sender="DISKOMINFO", recipients=["BAPPEDA"],
                  classification="T", policy=UnsafeNoPolicyCheck(), size=len(data), name="../../etc/laporan.txt")
    assert result.output is None
    assert result.metadata.document_name == "laporan.txt"  # sanitised: a base name only

    # Opening from a stream, into an explicit path.
    target = tmp_path / "x" / "y.txt"
    target.parent.mkdir()
    opened = open_as(ws, io.BytesIO(sink.getvalue()), "BAPPEDA", output=target)
    assert opened.output == target and target.read_bytes() == data
    assert opened.metadata.classification == "T"

    # A stream that is shorter than the size stated is refused, nothing written.
    sink2 = io.BytesIO()
    with pytest.raises(UsageError, match="shorter"):
        seal(io.BytesIO(data[:-1]), sink2, workspace=ws, sender="DISKOMINFO", recipients=["BAPPEDA"],
             classification="T", policy=UnsafeNoPolicyCheck(), size=len(data))
    with pytest.raises(UsageError, match="grew"):
        seal(io.BytesIO(data + b"!"), io.BytesIO(), workspace=ws, sender="DISKOMINFO",
             recipients=["BAPPEDA"], classification="T", policy=UnsafeNoPolicyCheck(), size=len(data))


def test_seal_from_open_file_takes_its_size(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "nota.txt"
    src.write_bytes(b"header-to-skip|the document")
    with src.open("rb") as f:
        f.seek(len(b"header-to-skip|"))
        result = seal(f, tmp_path / "o.sandi", workspace=ws, sender="DISKOMINFO", recipients=["BAPPEDA"],
                      classification="B", policy=UnsafeNoPolicyCheck())
    assert (result.metadata.document_name, result.metadata.document_size) == ("nota.txt", 12)
    opened = open_as(ws, tmp_path / "o.sandi", "BAPPEDA", output=tmp_path / "nota.out")
    assert (tmp_path / "nota.out").read_bytes() == b"the document"
    assert opened.metadata.document_size == 12


# -- recipients --------------------------------------------------------------------------


def test_every_recipient_opens_and_a_stranger_gets_nothing(ws: Workspace, tmp_path: Path) -> None:
    data = content(70 * KIB)
    src = tmp_path / "undangan.odt"
    src.write_bytes(data)
    sealed = tmp_path / "undangan.odt.sandi"
    result = seal_file(ws, src, sealed, ["BAPPEDA", "SETDA", "BAPPEDA"])  # duplicates collapse
    assert [r.code for r in result.metadata.recipients] == ["BAPPEDA", "SETDA"]
    with sealed.open("rb") as f:
        assert len(parse_header(f).stanzas) == 2

    for code in ("BAPPEDA", "SETDA"):
        out = tmp_path / code
        open_as(ws, sealed, code, output_dir=out)
        assert (out / "undangan.odt").read_bytes() == data

    for stranger in ("KESBANGPOL", "DISKOMINFO"):  # the sender did not keep a copy
        out = tmp_path / f"stranger-{stranger}"
        with pytest.raises(DecryptionError, match=f"not encrypted to any key of {stranger}"):
            open_as(ws, sealed, stranger, output_dir=out)
        assert not out.exists()  # not even the folder it would have made


def test_copy_to_sender(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "arsip.txt"
    src.write_bytes(b"salinan untuk pengirim")
    sealed = tmp_path / "arsip.sandi"
    result = seal_file(ws, src, sealed, ["BAPPEDA"], copy_to_sender=True)
    refs = [(r.code, r.copy) for r in result.metadata.recipients]
    assert refs == [("BAPPEDA", False), ("DISKOMINFO", True)]
    assert result.summary()["recipients"] == ["BAPPEDA"]  # the copy is not an addressee

    opened = open_as(ws, sealed, "DISKOMINFO", output_dir=tmp_path / "sent")
    assert (tmp_path / "sent" / "arsip.txt").read_bytes() == b"salinan untuk pengirim"
    assert opened.metadata.sender.code == "DISKOMINFO"
    open_as(ws, sealed, "BAPPEDA", output_dir=tmp_path / "masuk")
    assert (tmp_path / "masuk" / "arsip.txt").read_bytes() == b"salinan untuk pengirim"


@pytest.mark.parametrize(
    ("sender", "recipients", "error", "message"),
    [
        ("DISKOMINFO", [], UsageError, "at least one recipient"),
        ("DISKOMINFO", ["NOPE"], NotFoundError, "agency NOPE is not in the directory"),
        ("NOPE", ["BAPPEDA"], NotFoundError, "agency NOPE is not in the directory"),
        # counted before any lookup (none of these codes is in the directory)
        ("DISKOMINFO", [f"A{i}" for i in range(2001)], UsageError, "at most 2000 recipients"),
    ],
    ids=["no-recipient", "unknown-recipient", "unknown-sender", "too-many"],
)
def test_seal_refusals_write_nothing(ws: Workspace, tmp_path: Path, sender: str, recipients: list[str],
                                     error: type[Exception], message: str) -> None:
    src = tmp_path / "a.txt"
    src.write_bytes(b"x")
    dst = tmp_path / "a.sandi"
    with pytest.raises(error, match=message):
        seal(src, dst, workspace=ws, sender=sender, recipients=recipients, classification="R",
             policy=UnsafeNoPolicyCheck())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_seal_refuses_a_suspended_recipient(authority: AuthorityHome, tmp_path: Path) -> None:
    authority.ok("agency", "suspend", "--yes", "SETDA", "--reason", "reorganisation")
    ws = authority.workspace()
    src = tmp_path / "a.txt"
    src.write_bytes(b"x")
    with pytest.raises(CredentialError, match="recipient SETDA is suspended"):
        seal_file(ws, src, tmp_path / "a.sandi", ["BAPPEDA", "SETDA"])
    with pytest.raises(CredentialError, match="agency SETDA is suspended"):
        seal(src, tmp_path / "b.sandi", workspace=ws, sender="SETDA", recipients=["BAPPEDA"],
             classification="R", policy=UnsafeNoPolicyCheck())
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["a.txt"]


def test_seal_metadata_must_fit_one_comment(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "a.txt"
    src.write_bytes(b"x")
    # 4 fields of 500 characters, each escaped to 6 bytes (\\uXXXX): far over 8 KiB.
    letter = {k: "é" * 500 for k in ("nomor", "hal", "lampiran", "kepada")}
    with pytest.raises(UsageError, match="do not fit"):
        seal_file(ws, src, tmp_path / "a.sandi", ["BAPPEDA"], letter=letter)
    assert not (tmp_path / "a.sandi").exists()
    with pytest.raises(UsageError, match="unknown letter field"):
        seal_file(ws, src, tmp_path / "a.sandi", ["BAPPEDA"], letter={"perihal": "x"})


def test_seal_does_not_overwrite(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "a.txt"
    src.write_bytes(b"x")
    dst = tmp_path / "a.sandi"
    dst.write_bytes(b"precious")
    with pytest.raises(AlreadyExistsError):
        seal_file(ws, src, dst, ["BAPPEDA"])
    assert dst.read_bytes() == b"precious"
    seal_file(ws, src, dst, ["BAPPEDA"], overwrite=True)
    assert dst.read_bytes() != b"precious"
    with pytest.raises(NotFoundError, match="no such folder"):
        seal_file(ws, src, tmp_path / "missing" / "a.sandi", ["BAPPEDA"])


# -- opening: outputs ----------------------------------------------------------------------


def test_open_output_rules(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "laporan.txt"
    src.write_bytes(b"isi laporan")
    sealed = tmp_path / "laporan.sandi"
    seal_file(ws, src, sealed, ["BAPPEDA"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "laporan.txt").write_bytes(b"older")
    with pytest.raises(AlreadyExistsError, match="exists already"):
        open_as(ws, sealed, "BAPPEDA", output_dir=out)
    assert (out / "laporan.txt").read_bytes() == b"older"
    assert sorted(p.name for p in out.iterdir()) == ["laporan.txt"]
    open_as(ws, sealed, "BAPPEDA", output_dir=out, overwrite=True)
    assert (out / "laporan.txt").read_bytes() == b"isi laporan"

    # -o into a missing folder is a mistake, not a folder to invent
    with pytest.raises(NotFoundError, match="no such folder"):
        open_as(ws, sealed, "BAPPEDA", output=tmp_path / "nowhere" / "x.txt")
    assert not (tmp_path / "nowhere").exists()
    # a nested --output-dir is created
    deep = tmp_path / "a" / "b" / "c"
    open_as(ws, sealed, "BAPPEDA", output_dir=deep)
    assert (deep / "laporan.txt").read_bytes() == b"isi laporan"

    # verify without writing (sandi inspect --as)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    result = open_as(ws, sealed, "BAPPEDA", write_document=False)
    assert result.output is None and result.metadata.document_name == "laporan.txt"
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_open_respects_the_size_bound(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "besar.bin"
    src.write_bytes(content(10 * KIB))
    sealed = tmp_path / "besar.sandi"
    seal_file(ws, src, sealed, ["BAPPEDA"])
    out = tmp_path / "out"
    with pytest.raises(FormatError, match="larger than the limit"):
        open_as(ws, sealed, "BAPPEDA", output_dir=out, max_document_size=10 * KIB - 1)
    assert not out.exists()
    open_as(ws, sealed, "BAPPEDA", output_dir=out, max_document_size=10 * KIB)


def test_outcomes_are_journaled(authority: AuthorityHome, ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "a.txt"
    src.write_bytes(b"x")
    seal_file(ws, src, tmp_path / "a.sandi", ["BAPPEDA"])
    open_as(ws, tmp_path / "a.sandi", "BAPPEDA", output_dir=tmp_path / "o")
    with pytest.raises(DecryptionError):
        open_as(ws, tmp_path / "a.sandi", "SETDA", output_dir=tmp_path / "p")
    broken = bytearray((tmp_path / "a.sandi").read_bytes())
    broken[-1] ^= 1
    (tmp_path / "b.sandi").write_bytes(broken)
    with pytest.raises(Exception, match=r"."):
        open_as(ws, tmp_path / "b.sandi", "BAPPEDA", output_dir=tmp_path / "q")
    assert journal_actions(authority) == [
        ("DISKOMINFO", "document.seal", "ok"), ("BAPPEDA", "document.open", "ok"),
        ("SETDA", "verify.fail", "failed"), ("BAPPEDA", "verify.fail", "failed")]
    last = list(Journal(Home(authority.path).journal_path).entries())[-1]
    # the class of the failure only: nothing of the content
    assert {k: last.details[k] for k in ("reason", "op")} == {"reason": "age payload", "op": "open"}


# -- detached signatures -------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 64 * KIB + 1], ids=["empty", "1-byte", "64KiB-plus-1"])
def test_sign_and_verify_paths_and_streams(ws: Workspace, tmp_path: Path, size: int) -> None:
    data = content(size)
    doc = tmp_path / "pengumuman.pdf"
    doc.write_bytes(data)
    sig_path = tmp_path / "pengumuman.pdf.minisig"
    result = sign(doc, workspace=ws, signer_code="DISKOMINFO", classification="B",
                  letter={"nomor": "045/88/2026"}, signature_path=sig_path)
    assert isinstance(result, SignResult)
    assert sig_path.read_text() == result.signature_text
    assert result.metadata.document_size == size and result.metadata.classification == "B"

    checked = verify(doc, sig_path.read_bytes(), workspace=ws)
    assert isinstance(checked, VerifyResult)
    assert (checked.signer, checked.metadata) == ("DISKOMINFO", result.metadata)
    assert checked.signed_at == result.metadata.signed_at
    assert checked.summary()["nomor"] == "045/88/2026" and checked.summary()["format"] == "sandi-sign/v1"
    # streams work the same (the signature as text too)
    assert verify(io.BytesIO(data), result.signature_text, workspace=ws).signer == "DISKOMINFO"

    # a stream signature: no path written, the text returned
    streamed = sign(io.BytesIO(data), workspace=ws, signer_code="BAPPEDA")
    assert streamed.signature_path is None and streamed.metadata.document_name == "document"
    assert verify(io.BytesIO(data), streamed.signature_text, workspace=ws).signer == "BAPPEDA"

    for changed in (data + b"\0", data[:-1] if size else b"\0", bytes([data[0] ^ 1]) + data[1:] if size else b"a"):
        with pytest.raises(VerificationError):
            verify(io.BytesIO(changed), result.signature_text, workspace=ws)


def test_sign_refusals(ws: Workspace, tmp_path: Path) -> None:
    doc = tmp_path / "a.txt"
    doc.write_bytes(b"x")
    with pytest.raises(UsageError, match="classification"):
        sign(doc, workspace=ws, signer_code="DISKOMINFO", classification="XX")
    with pytest.raises(NotFoundError):
        sign(doc, workspace=ws, signer_code="NOPE")
    sig = tmp_path / "a.txt.minisig"
    sig.write_text("keep")
    with pytest.raises(AlreadyExistsError):
        sign(doc, workspace=ws, signer_code="DISKOMINFO", signature_path=sig)
    assert sig.read_text() == "keep"


def test_verify_without_private_keys(authority: AuthorityHome, ws: Workspace, tmp_path: Path) -> None:
    """Verifying reads only the directory: a locked key store is enough."""
    from sandi.keystore import NoPassphrase

    doc = tmp_path / "a.txt"
    doc.write_bytes(b"public notice")
    text = sign(doc, workspace=ws, signer_code="SETDA").signature_text
    locked = Workspace.open(Home(authority.path), NoPassphrase())
    assert verify(doc, text, workspace=locked).signer == "SETDA"


def test_environment_is_not_touched(tmp_path: Path) -> None:
    # The fixtures never leak the test passphrase into the process environment.
    assert "SANDI_PASSPHRASE" not in os.environ


# -- hashing on a worker thread (large documents) -------------------------------------------


@pytest.fixture
def threaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take the worker-thread path for every size (normally from 8 MiB up)."""
    from sandi.documents import sources

    monkeypatch.setattr(sources, "BACKGROUND_MIN_SIZE", 0)


@pytest.mark.parametrize("size", [0, 1, 64 * KIB + 1, 3 * MIB + 7], ids=["empty", "1-byte", "64KiB+1", "3MiB+7"])
def test_threaded_round_trip(threaded: None, ws: Workspace, authority: AuthorityHome, tmp_path: Path,
                             size: int) -> None:
    data = content(size)
    src = tmp_path / "besar.bin"
    src.write_bytes(data)
    sealed = tmp_path / "besar.sandi"
    seal_file(ws, src, sealed, ["BAPPEDA"])
    # the signature made from the worker's digest verifies with an independent reader
    plain = io.BytesIO()
    decrypt(io.BytesIO(sealed.read_bytes()), plain, [authority.identity("BAPPEDA")])
    with tarfile.open(fileobj=io.BytesIO(plain.getvalue()), mode="r:") as tar:
        doc = tar.extractfile("besar.bin").read()  # type: ignore[union-attr]
        sig = tar.extractfile("besar.bin.minisig").read()  # type: ignore[union-attr]
    assert doc == data
    from sandi.formats.minisign import MinisignPublicKey, MinisignSignature, Prehasher, verify_digest

    cert = next(c for c in ws.snapshot.agency("DISKOMINFO").certificates if c.purpose == "signing")
    hasher = Prehasher()
    hasher.update(data)
    verify_digest(MinisignPublicKey.from_raw(cert.public_key_bytes()), MinisignSignature.from_text(sig),
                  hasher.digest())
    open_as(ws, sealed, "BAPPEDA", output_dir=tmp_path / "out")
    assert (tmp_path / "out" / "besar.bin").read_bytes() == data


def test_threaded_open_of_a_corrupt_chunk_writes_nothing(threaded: None, ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "besar.bin"
    src.write_bytes(content(5 * 64 * KIB))
    sealed = tmp_path / "besar.sandi"
    seal_file(ws, src, sealed, ["BAPPEDA"])
    raw = bytearray(sealed.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    sealed.write_bytes(bytes(raw))
    out = tmp_path / "out"
    with pytest.raises(FormatError, match="failed to authenticate"):
        open_as(ws, sealed, "BAPPEDA", output_dir=out)
    assert not out.exists()


def test_background_sink_order_errors_and_buffers() -> None:
    from sandi.documents.sources import BackgroundSink, pump

    seen: list[bytes] = []
    data = content(5 * MIB + 3)
    fed = pump(io.BytesIO(data), [], background=lambda b: seen.append(bytes(b)), size_hint=1 << 40,
               chunk=64 * KIB)
    assert fed == len(data) and b"".join(seen) == data  # in order, every byte, buffers not overwritten early

    def broken(_: memoryview) -> None:
        raise ValueError("hash failed")

    with pytest.raises(ValueError, match="hash failed"), BackgroundSink(broken) as worker:
        worker.submit(memoryview(b"x"))
    # the caller's own error wins over the worker's, and nothing hangs
    with pytest.raises(KeyError), BackgroundSink(broken) as worker:
        worker.submit(memoryview(b"x"))
        raise KeyError("caller")
    # a limit stops early; a short input is reported by read_exactly
    assert pump(io.BytesIO(data), [], background=lambda b: None, size_hint=1 << 40, limit=10) == 10
    from sandi.documents.sources import read_exactly

    with pytest.raises(UsageError, match="shorter"):
        read_exactly(io.BytesIO(data), len(data) + 1, [], background=lambda b: None)
