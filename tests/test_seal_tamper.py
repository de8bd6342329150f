"""The tamper matrix: every change to a sealed document is refused by ``sandi open``.

Each case changes one thing and runs the real command line; the open must exit with
the verification code (4), say ``error:``, and leave the output folder empty (no
document, no temporary). The outer cases change the age file's bytes. The inner
cases (tar headers, document, signature, trusted comment, members) rebuild the age
payload around a changed plaintext *with the real file key and the same header*, so
the age layer authenticates and the check that fails is the inner one; each inner
case is matched to the message of the check that must catch it. A control case
re-encrypts the unchanged plaintext the same way and must open.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sandi.documents import SealMetadata, UnsafeNoPolicyCheck, Workspace, seal
from sandi.documents.metadata import KeyRef
from sandi.formats.age import CHUNK_SIZE, EncryptWriter, Stanza, X25519Recipient, decrypt, parse_header
from sandi.formats.age.header import encode_header
from sandi.formats.minisign import MinisignSignature, Prehasher, sign_digest
from sandi.formats.ustar import UstarWriter
from sandi.keystore import key_ref
from tests import authority_fixtures as fx
from tests.authority_fixtures import AuthorityHome

authority_template = fx.authority_template
authority = fx.authority

DOC_NAME = "surat.pdf"
# Four payload chunks (first, middle, last), a document that does not fill its last block.
DOC = hashlib.shake_256(b"surat rahasia").digest(3 * CHUNK_SIZE + 1234)
assert DOC[-1] != 0  # so a shortened size in the tar header must show as non-zero padding
TAG = 16
NONCE = 16


# -- building blocks -------------------------------------------------------------------------


def stream_encrypt(file_key: bytes, plaintext: bytes) -> bytes:
    """age's payload (nonce + STREAM), written here independently of sandi's codec."""
    nonce = os.urandom(NONCE)
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=nonce, info=b"payload").derive(file_key)
    aead = ChaCha20Poly1305(key)
    chunks = [plaintext[i:i + CHUNK_SIZE] for i in range(0, len(plaintext), CHUNK_SIZE)] or [b""]
    out = [nonce]
    for counter, chunk in enumerate(chunks):
        last = counter == len(chunks) - 1
        out.append(aead.encrypt(counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00"), chunk, None))
    return b"".join(out)


@dataclass
class Sealed:
    """A sealed document and what a recipient holding its identity can learn from it."""

    raw: bytes
    header: bytes  # the binary age header
    file_key: bytes
    plaintext: bytes  # the tar stream

    @property
    def payload_start(self) -> int:
        return len(self.header) + NONCE

    def chunk_offset(self, index: int) -> int:
        return self.payload_start + index * (CHUNK_SIZE + TAG)

    @property
    def chunks(self) -> int:
        return -(-(len(self.raw) - self.payload_start) // (CHUNK_SIZE + TAG))

    def reencrypt(self, plaintext: bytes, header: bytes | None = None) -> bytes:
        """The same header (or ``header``) and file key over another plaintext."""
        return (header or self.header) + stream_encrypt(self.file_key, plaintext)


def unpack(authority: AuthorityHome, raw: bytes, code: str = "BAPPEDA") -> Sealed:
    header = parse_header(io.BytesIO(raw))
    file_key = authority.identity(code).unwrap(header.stanzas)
    assert file_key is not None
    plain = io.BytesIO()
    decrypt(io.BytesIO(raw), plain, [authority.identity(code)])
    return Sealed(raw, header.header_bytes, file_key, plain.getvalue())


@dataclass(frozen=True)
class Member:
    name: str
    header_at: int
    data_at: int
    size: int


def members(plaintext: bytes) -> list[Member]:
    out, pos = [], 0
    while plaintext[pos:pos + 512] != bytes(512):
        block = plaintext[pos:pos + 512]
        size = int(block[124:136].rstrip(b"\0 ") or b"0", 8)
        out.append(Member(block[:100].rstrip(b"\0").decode(), pos, pos + 512, size))
        pos += 512 + size + (-size % 512)
    return out


def flip(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    out = bytearray(data)
    out[offset] ^= mask
    return bytes(out)


def splice(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new):]


def rebuild_tar(parts: list[tuple[str, bytes]], mtime: int = 1_790_000_000) -> bytes:
    sink = io.BytesIO()
    tar = UstarWriter(sink)
    for name, data in parts:
        tar.add_member(name, data, mtime)
    tar.finish()
    return sink.getvalue()


def signature_of(s: Sealed) -> MinisignSignature:
    sig = members(s.plaintext)[1]
    return MinisignSignature.from_text(s.plaintext[sig.data_at:sig.data_at + sig.size])


def with_signature(s: Sealed, signature: MinisignSignature) -> bytes:
    """The plaintext with its .minisig member replaced (same name, tar rebuilt)."""
    doc = members(s.plaintext)[0]
    return rebuild_tar([(DOC_NAME, s.plaintext[doc.data_at:doc.data_at + doc.size]),
                        (DOC_NAME + ".minisig", signature.to_bytes())])


def fresh(parent: Path, name: str) -> Path:
    path = parent / name
    path.mkdir()
    return path


def assert_refused(authority: AuthorityHome, raw: bytes, tmp_path: Path, opener: str = "BAPPEDA",
                   message: str | None = None, code: int = 4) -> str:
    """``sandi open`` refuses with ``code`` and writes nothing into the output folder.

    ``tmp_path`` must not hold anything else (use :func:`fresh` for a second refusal).
    """
    sealed = tmp_path / "tampered.sandi"
    sealed.write_bytes(raw)
    out = tmp_path / "masuk"
    out.mkdir(exist_ok=True)
    r = authority.run("open", sealed, "--as", opener, "--output-dir", out)
    assert r.code == code, r
    assert r.stderr.startswith("error: "), r
    assert list(out.iterdir()) == [], "the refused document left a file behind"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["masuk", "tampered.sandi"]
    if message is not None:
        assert re.search(message, r.stderr), r
    return r.stderr


def assert_opens(authority: AuthorityHome, raw: bytes, tmp_path: Path, opener: str = "BAPPEDA") -> None:
    sealed = tmp_path / "ok.sandi"
    sealed.write_bytes(raw)
    out = tmp_path / "ok-out"
    r = authority.run("open", sealed, "--as", opener, "--output-dir", out)
    assert r.code == 0, r
    assert (out / DOC_NAME).read_bytes() == DOC


def seal_now(ws: Workspace, tmp_path: Path, recipients: tuple[str, ...] = ("BAPPEDA",), *,
             armor: bool = False, sender: str = "DISKOMINFO") -> bytes:
    src = tmp_path / "src" / DOC_NAME
    src.parent.mkdir(exist_ok=True)
    src.write_bytes(DOC)
    dst = tmp_path / "src" / "out.sandi"
    seal(src, dst, workspace=ws, sender=sender, recipients=list(recipients), classification="R",
         policy=UnsafeNoPolicyCheck(), armor=armor, overwrite=True)
    raw = dst.read_bytes()
    src.unlink()
    dst.unlink()
    src.parent.rmdir()
    return raw


@pytest.fixture
def sealed(authority: AuthorityHome, tmp_path: Path) -> Sealed:
    return unpack(authority, seal_now(authority.workspace(), tmp_path))


# -- the outer layer: bytes of the age file ----------------------------------------------------


def b64_change(data: bytes, offset: int) -> bytes:
    """Another valid base64 character at ``offset`` (a flipped bit might not be one)."""
    return splice(data, offset, b"A" if data[offset] != ord("A") else b"B")


def _header_line_offset(s: Sealed, prefix: bytes, into: int) -> int:
    return s.header.index(prefix) + into


OUTER: list[tuple[str, Callable[[Sealed], bytes], str]] = [
    ("header-version-line", lambda s: flip(s.raw, 5), "not an age file"),
    ("header-stanza-type", lambda s: flip(s.raw, _header_line_offset(s, b"-> X25519 ", 4)),
     "not encrypted to any key of BAPPEDA"),
    ("header-ephemeral-share", lambda s: b64_change(s.raw, _header_line_offset(s, b"-> X25519 ", 12)),
     "not encrypted to any key of BAPPEDA"),
    ("header-wrapped-key", lambda s: b64_change(s.raw, s.header.index(b"\n", s.header.index(b"-> ")) + 6),
     "not encrypted to any key of BAPPEDA"),
    ("header-mac", lambda s: b64_change(s.raw, _header_line_offset(s, b"\n--- ", 10)), "header MAC does not verify"),
    ("header-mac-malformed", lambda s: splice(s.raw, _header_line_offset(s, b"\n--- ", 10), b"*"),
     "age header failure"),
    ("payload-nonce", lambda s: flip(s.raw, len(s.header) + 3), "chunk 0 failed to authenticate"),
    ("payload-first-chunk", lambda s: flip(s.raw, s.chunk_offset(0) + 100), "chunk 0 failed to authenticate"),
    ("payload-middle-chunk", lambda s: flip(s.raw, s.chunk_offset(2) + 7), "chunk 2 failed to authenticate"),
    ("payload-last-chunk", lambda s: flip(s.raw, s.chunk_offset(3) + 1), "chunk 3 failed to authenticate"),
    ("payload-last-tag", lambda s: flip(s.raw, len(s.raw) - 1), "chunk 3 failed to authenticate"),
    ("truncated-1-byte", lambda s: s.raw[:-1], "chunk 3 failed to authenticate"),
    ("truncated-mid-chunk", lambda s: s.raw[: s.chunk_offset(1) + 5000], "chunk 1 failed to authenticate"),
    ("truncated-at-chunk-boundary", lambda s: s.raw[: s.chunk_offset(3)], r"truncated \(no final chunk\)"),
    ("truncated-after-header", lambda s: s.raw[: len(s.header)], "payload nonce is missing"),
    ("truncated-in-header", lambda s: s.raw[: len(s.header) // 2], "header is truncated"),
    ("empty-file", lambda s: b"", "header is truncated"),
    ("appended-1-byte", lambda s: s.raw + b"\0", "chunk 3 failed to authenticate"),
    ("appended-chunk", lambda s: s.raw + s.raw[s.chunk_offset(0):s.chunk_offset(1)],
     "chunk 3 failed to authenticate"),
    ("appended-text", lambda s: s.raw + b"\n-- forwarded by X\n", "chunk 3 failed to authenticate"),
    ("chunk-dropped", lambda s: s.raw[: s.chunk_offset(1)] + s.raw[s.chunk_offset(2):],
     "chunk 1 failed to authenticate"),
    ("chunks-reordered", lambda s: s.raw[: s.chunk_offset(1)] + s.raw[s.chunk_offset(2):s.chunk_offset(3)]
     + s.raw[s.chunk_offset(1):s.chunk_offset(2)] + s.raw[s.chunk_offset(3):], "chunk 1 failed to authenticate"),
]


@pytest.mark.parametrize(("change", "message"), [pytest.param(f, m, id=i) for i, f, m in OUTER])
def test_outer_tampering_is_refused(authority: AuthorityHome, sealed: Sealed, tmp_path: Path,
                                    change: Callable[[Sealed], bytes], message: str) -> None:
    assert sealed.chunks == 4
    tampered = change(sealed)
    assert tampered != sealed.raw
    assert_refused(authority, tampered, tmp_path, message=message)


ARMORED: list[tuple[str, Callable[[bytes], bytes]]] = [
    ("armor-body-char", lambda raw: splice(raw, 200, b"A" if raw[200:201] != b"A" else b"B")),
    ("armor-begin-line", lambda raw: raw.replace(b"BEGIN AGE", b"BEGIN AGF", 1)),
    ("armor-end-line-missing", lambda raw: raw[: raw.index(b"-----END")]),
    ("armor-text-after-end", lambda raw: raw + b"Salam,\nBappeda\n"),
    ("armor-line-dropped", lambda raw: b"\n".join(line for i, line in enumerate(raw.split(b"\n")) if i != 3)),
]


@pytest.mark.parametrize("change", [pytest.param(f, id=i) for i, f in ARMORED])
def test_armored_tampering_is_refused(authority: AuthorityHome, tmp_path: Path,
                                      change: Callable[[bytes], bytes]) -> None:
    raw = seal_now(authority.workspace(), tmp_path, armor=True)
    assert_opens(authority, raw, tmp_path)
    tampered = change(raw)
    assert tampered != raw
    assert_refused(authority, tampered, fresh(tmp_path, "t"))


# -- the inner layers: re-encrypted with the real file key and the same header --------------


def _doc(s: Sealed) -> Member:
    return members(s.plaintext)[0]


def _sig(s: Sealed) -> Member:
    return members(s.plaintext)[1]


def _comment_changed(s: Sealed) -> bytes:
    sig = signature_of(s)
    changed = sig.trusted_comment.replace('"class":"R"', '"class":"B"')
    assert changed != sig.trusted_comment
    return with_signature(s, replace(sig, trusted_comment=changed))


def _comment_recipient_added(s: Sealed) -> bytes:
    sig = signature_of(s)
    changed = sig.trusted_comment.replace('"recipients":[{"code":"BAPPEDA"',
                                          '"recipients":[{"code":"SETDA","key":"' + "0" * 64
                                          + '"},{"code":"BAPPEDA"')
    assert changed != sig.trusted_comment
    return with_signature(s, replace(sig, trusted_comment=changed))


def _renamed(s: Sealed, doc_name: str, sig_name: str) -> bytes:
    doc, sig = members(s.plaintext)
    return rebuild_tar([(doc_name, s.plaintext[doc.data_at:doc.data_at + doc.size]),
                        (sig_name, s.plaintext[sig.data_at:sig.data_at + sig.size])])


def _header_field(s: Sealed, member: int, offset: int, value: bytes, fix_checksum: bool = True) -> bytes:
    m = members(s.plaintext)[member]
    block = bytearray(s.plaintext[m.header_at:m.header_at + 512])
    block[offset:offset + len(value)] = value
    if fix_checksum:
        block[148:156] = b" " * 8
        block[148:156] = b"%06o\x00 " % sum(block)
    return splice(s.plaintext, m.header_at, bytes(block))


def _third_member(s: Sealed) -> bytes:
    doc, sig = members(s.plaintext)
    return rebuild_tar([(DOC_NAME, s.plaintext[doc.data_at:doc.data_at + doc.size]),
                        (DOC_NAME + ".minisig", s.plaintext[sig.data_at:sig.data_at + sig.size]),
                        ("catatan.txt", b"an extra member")])


def _members_swapped(s: Sealed) -> bytes:
    doc, sig = members(s.plaintext)
    return rebuild_tar([(DOC_NAME + ".minisig", s.plaintext[sig.data_at:sig.data_at + sig.size]),
                        (DOC_NAME, s.plaintext[doc.data_at:doc.data_at + doc.size])])


INNER: list[tuple[str, Callable[[Sealed], bytes], str]] = [
    # tar headers
    ("tar-doc-header-name-byte", lambda s: flip(s.plaintext, 2), "checksum"),
    ("tar-doc-header-size-byte", lambda s: flip(s.plaintext, 130), "checksum"),
    ("tar-sig-header-byte", lambda s: flip(s.plaintext, _sig(s).header_at + 1), "checksum"),
    ("tar-doc-size-changed-checksum-fixed",
     lambda s: _header_field(s, 0, 124, b"%011o\x00" % (len(DOC) - 1)), r"padding|tar|member"),
    ("tar-doc-symlink-checksum-fixed", lambda s: _header_field(s, 0, 156, b"2"), "symbolic link|only regular"),
    ("tar-doc-directory-checksum-fixed", lambda s: _header_field(s, 0, 156, b"5"), "only regular"),
    ("tar-doc-setuid-checksum-fixed", lambda s: _header_field(s, 0, 100, b"0004755\x00"), "mode"),
    ("tar-doc-path-traversal", lambda s: _header_field(s, 0, 0, b"../../etc/surat.pdf\x00"), "name|path"),
    ("tar-doc-absolute-path", lambda s: _header_field(s, 0, 0, b"/tmp/surat.pdf\x00"), "name|path"),
    ("tar-doc-prefix-field", lambda s: _header_field(s, 0, 345, b"tmp"), "prefix"),
    # names Windows would read otherwise (an alternate data stream, a path) or a terminal would obey
    ("tar-doc-name-colon", lambda s: _header_field(s, 0, 0, b"surat.pdf:Zone.Identifier\x00"), "forbidden"),
    ("tar-doc-name-backslash", lambda s: _header_field(s, 0, 0, b"..\\..\\surat.pdf\x00"), "separator"),
    ("tar-doc-name-escape", lambda s: _header_field(s, 0, 0, b"surat\x1b[2J.pdf\x00"), "forbidden"),
    ("tar-doc-name-bidi", lambda s: _header_field(s, 0, 0, "fdp\u202e.exe\x00".encode()), "forbidden"),
    ("tar-doc-name-hidden", lambda s: _header_field(s, 0, 0, b".bashrc\x00\x00\x00"), "starts with a dot"),
    ("tar-doc-name-device", lambda s: _header_field(s, 0, 0, b"nul.pdf\x00\x00"), "device name"),
    ("tar-padding-not-zero", lambda s: flip(s.plaintext, _doc(s).data_at + len(DOC) + 3), "padding"),
    ("tar-garbage-after-end", lambda s: s.plaintext + b"\x01" * 512, "after"),
    ("tar-single-zero-block", lambda s: s.plaintext[:-512] + b"x" * 512, "zero block"),
    ("tar-no-end-marker", lambda s: s.plaintext[:-1024], "truncated|end"),
    # the document
    ("document-first-byte", lambda s: flip(s.plaintext, _doc(s).data_at), "signature verification failed"),
    ("document-middle-byte", lambda s: flip(s.plaintext, _doc(s).data_at + len(DOC) // 2, 0x80),
     "signature verification failed"),
    ("document-last-byte", lambda s: flip(s.plaintext, _doc(s).data_at + len(DOC) - 1),
     "signature verification failed"),
    # the signature and its trusted comment
    ("signature-bytes", lambda s: with_signature(s, replace(signature_of(s), signature=flip(
        signature_of(s).signature, 10))), "signature verification failed"),
    ("signature-global-bytes", lambda s: with_signature(s, replace(signature_of(s), global_signature=flip(
        signature_of(s).global_signature, 63))), "signature verification failed"),
    ("signature-key-id", lambda s: with_signature(s, replace(signature_of(s), key_id=flip(
        signature_of(s).key_id, 0))), "signature verification failed"),
    ("signature-legacy-Ed", lambda s: with_signature(s, replace(signature_of(s), algorithm=b"Ed")),
     "signature verification failed"),
    ("signature-text-byte", lambda s: flip(s.plaintext, _sig(s).data_at + 60), "signature|base64|minisign"),
    ("comment-class-changed", _comment_changed, "signature verification failed"),
    ("comment-recipient-added", _comment_recipient_added, "signature verification failed"),
    # still well-formed metadata, a microsecond off (within the same second, so every
    # certificate and policy check still passes): only the signature can tell
    ("comment-byte", lambda s: flip(s.plaintext, s.plaintext.index(b'"sealed_at":"') + 13 + 25),
     "signature verification failed"),
    # no longer sandi metadata: refused before the key is even looked up
    ("comment-prefix", lambda s: flip(s.plaintext, s.plaintext.index(b"\ntrusted comment: ") + 25),
     "does not carry sandi seal metadata"),
    ("comment-json", lambda s: flip(s.plaintext, s.plaintext.index(b'"age_header_sha256"') + 2),
     "does not carry sandi seal metadata"),
    # the members
    ("third-member", _third_member, "exactly two members"),
    ("second-member-misnamed", lambda s: _renamed(s, DOC_NAME, "other.pdf.minisig"), "second member"),
    ("second-member-missing", lambda s: rebuild_tar([(DOC_NAME, DOC)]), "second member"),
    ("members-swapped", _members_swapped, "must start with the document"),
    ("both-members-renamed", lambda s: _renamed(s, "laporan.pdf", "laporan.pdf.minisig"),
     "name or size differs"),
    ("empty-archive", lambda s: bytes(1024), "must start with the document"),
]


def test_reencryption_control(authority: AuthorityHome, sealed: Sealed, tmp_path: Path) -> None:
    """The helper makes valid files: the unchanged plaintext, re-encrypted, opens."""
    again = sealed.reencrypt(sealed.plaintext)
    assert again != sealed.raw and again.startswith(sealed.header)
    assert_opens(authority, again, tmp_path)
    assert [m.name for m in members(sealed.plaintext)] == [DOC_NAME, DOC_NAME + ".minisig"]
    # rebuilding the tar around the parsed signature is faithful too
    assert_opens(authority, sealed.reencrypt(with_signature(sealed, signature_of(sealed))), fresh(tmp_path, "x"))


def test_untrusted_comment_is_not_covered(authority: AuthorityHome, sealed: Sealed, tmp_path: Path) -> None:
    """As in minisign, the first line is free text: changing it changes nothing that is verified."""
    sig = signature_of(sealed)
    edited = with_signature(sealed, replace(sig, untrusted_comment="diteruskan oleh siapa saja"))
    assert_opens(authority, sealed.reencrypt(edited), tmp_path)


@pytest.mark.parametrize(("change", "message"), [pytest.param(f, m, id=i) for i, f, m in INNER])
def test_inner_tampering_is_refused(authority: AuthorityHome, sealed: Sealed, tmp_path: Path,
                                    change: Callable[[Sealed], bytes], message: str) -> None:
    plaintext = change(sealed)
    assert plaintext != sealed.plaintext
    assert_refused(authority, sealed.reencrypt(plaintext), tmp_path, message=message)


# -- the header: stanzas swapped, file key re-wrapped (forwarding) ---------------------------------


def test_swapped_stanzas_fail_the_header_mac(authority: AuthorityHome, tmp_path: Path) -> None:
    raw = seal_now(authority.workspace(), tmp_path, ("BAPPEDA", "SETDA"))
    header = parse_header(io.BytesIO(raw)).header_bytes
    lines = header.split(b"\n")
    # version, stanza 1 (2 lines), stanza 2 (2 lines), mac
    assert lines[1].startswith(b"-> X25519") and lines[3].startswith(b"-> X25519")
    swapped = b"\n".join([lines[0], *lines[3:5], *lines[1:3], *lines[5:]])
    assert swapped != header and len(swapped) == len(header)
    for opener in ("BAPPEDA", "SETDA"):
        assert_refused(authority, swapped + raw[len(header):], fresh(tmp_path, opener), opener=opener,
                       message="MAC|hmac|header")


@pytest.mark.parametrize(
    ("rewrap_for", "opener"),
    [(["KESBANGPOL"], "KESBANGPOL"), (["BAPPEDA", "KESBANGPOL"], "KESBANGPOL"),
     (["BAPPEDA", "KESBANGPOL"], "BAPPEDA"), (["BAPPEDA"], "BAPPEDA")],
    ids=["third-only", "third-added/third-opens", "third-added/recipient-opens", "recipient-rewrapped"],
)
def test_forwarding_by_rewrapping_the_file_key(authority: AuthorityHome, sealed: Sealed, tmp_path: Path,
                                               rewrap_for: list[str], opener: str) -> None:
    """A recipient wraps the file key anew (a valid header, MAC and all): the signed hash no longer matches."""
    stanzas = [st for code in rewrap_for for st in authority.recipient(code).wrap(sealed.file_key)]
    header = encode_header(stanzas, sealed.file_key).header_bytes
    forwarded = header + sealed.raw[len(sealed.header):]  # payload untouched: same key, same nonce
    assert_refused(authority, forwarded, tmp_path, opener=opener, message="re-wrapped or forwarded")


def test_forwarding_by_reencrypting_to_a_third_agency(authority: AuthorityHome, sealed: Sealed,
                                                      tmp_path: Path) -> None:
    """The recipient decrypts and re-encrypts the same tar for KESBANGPOL with plain age."""
    sink = io.BytesIO()
    with EncryptWriter(sink, [authority.recipient("KESBANGPOL")]) as writer:
        writer.write(sealed.plaintext)
    assert_refused(authority, sink.getvalue(), tmp_path, opener="KESBANGPOL",
                   message="re-wrapped or forwarded")


# -- forged metadata signed by the real sender key ------------------------------------------------


class ForeignStanza:
    """A recipient of a type sandi never writes (age ignores unknown types when opening)."""

    def wrap(self, file_key: bytes) -> list[Stanza]:
        return [Stanza("sandi-test-foreign", ("arg",), os.urandom(32))]


def forge(authority: AuthorityHome, ws: Workspace, *, sender: str = "DISKOMINFO",
          stanzas_for: tuple[str, ...] = ("BAPPEDA",), edit: Callable[[SealMetadata], SealMetadata] = lambda m: m,
          foreign_stanza: bool = False, doc_name: str = DOC_NAME) -> bytes:
    """A sealed document built from the format layer, signed with the sender's real key.

    Unlike ``seal`` it lets the metadata say anything: what a sender's modified
    software (or a stolen key used outside sandi) could produce.
    """
    agency = ws.snapshot.agency(sender)
    cert = max((c for c in agency.certificates if c.purpose == "signing"), key=lambda c: c.not_before)
    signer = ws.keystore.get_signing_key(key_ref(sender, "signing", cert.key_fingerprint))
    refs, recipients = [], []
    for code in stanzas_for:
        enc = max((c for c in ws.snapshot.agency(code).certificates if c.purpose == "encryption"),
                  key=lambda c: c.not_before)
        refs.append(KeyRef(code=code, key=enc.key_fingerprint))
        recipients.append(X25519Recipient.from_public_bytes(enc.public_key_bytes()))
    sink = io.BytesIO()
    writer = EncryptWriter(sink, [*recipients, *([ForeignStanza()] if foreign_stanza else [])])
    import hashlib

    meta = edit(SealMetadata(
        sender=KeyRef(code=sender, key=cert.key_fingerprint, serial=cert.serial),
        recipients=tuple(refs), classification="R", sealed_at=ws.now().replace(microsecond=0),
        age_header_sha256=hashlib.sha256(writer.header_bytes).hexdigest(),
        document_name=doc_name, document_size=len(DOC)))
    hasher = Prehasher()
    hasher.update(DOC)
    signature = sign_digest(signer, hasher.digest(), meta.to_comment(), "forged")
    tar = UstarWriter(writer)
    tar.add_member(doc_name, DOC, 0)
    tar.add_member(doc_name + ".minisig", signature.to_bytes(), 0)
    tar.finish()
    writer.close()
    return sink.getvalue()


def test_forge_control(authority: AuthorityHome, tmp_path: Path) -> None:
    assert_opens(authority, forge(authority, authority.workspace()), tmp_path)


FORGED: list[tuple[str, tuple[str, ...], Callable[[SealMetadata], SealMetadata], str, str | None]] = [
    # stanza for KESBANGPOL, but the signed list does not name it
    ("not-addressed-to-opener", ("BAPPEDA", "KESBANGPOL"),
     lambda m: replace(m, recipients=m.recipients[:1]), "KESBANGPOL",
     "list does not match the encryption header: 1 entries for 2 recipient stanzas"),
    # named by code, but with another key than the opener's
    ("named-with-a-foreign-key", ("BAPPEDA", "KESBANGPOL"),
     lambda m: replace(m, recipients=(m.recipients[0], replace(m.recipients[1], key=m.recipients[0].key))),
     "KESBANGPOL", "does not name the key of KESBANGPOL where the header holds it"),
    # the signed list must be the stanzas, one entry each, in order (issue 13, item 2)
    ("listed-in-another-order", ("BAPPEDA", "SETDA"),
     lambda m: replace(m, recipients=m.recipients[::-1]), "BAPPEDA",
     "does not name the key of BAPPEDA where the header holds it"),
    ("opener-stanza-listed-as-another-agency", ("BAPPEDA", "BAPPEDA"),
     lambda m: replace(m, recipients=(m.recipients[0], replace(m.recipients[1], code="SETDA"))), "BAPPEDA",
     "does not name the key of BAPPEDA where the header holds it"),
    ("opener-key-claimed-for-another-stanza", ("BAPPEDA", "SETDA"),
     lambda m: replace(m, recipients=(m.recipients[0], m.recipients[0])), "BAPPEDA",
     "does not name the key of BAPPEDA where the header holds it"),
    ("opener-listed-once-for-two-stanzas", ("BAPPEDA", "BAPPEDA"),
     lambda m: replace(m, recipients=m.recipients[:1]), "BAPPEDA", "1 entries for 2 recipient stanzas"),
    ("header-hash-of-another-header", ("BAPPEDA",),
     lambda m: replace(m, age_header_sha256="ab" * 32), "BAPPEDA", "re-wrapped or forwarded"),
    ("size-differs", ("BAPPEDA",), lambda m: replace(m, document_size=len(DOC) + 1), "BAPPEDA",
     "name or size differs"),
    ("name-differs", ("BAPPEDA",), lambda m: replace(m, document_name="lain.pdf"), "BAPPEDA",
     "name or size differs"),
    ("sender-claims-other-agency", ("BAPPEDA",),
     lambda m: replace(m, sender=replace(m.sender, code="SETDA")), "BAPPEDA", "does not belong"),
    ("sender-key-unknown", ("BAPPEDA",),
     lambda m: replace(m, sender=replace(m.sender, key="cd" * 32)), "BAPPEDA", "not in the directory"),
    ("sender-serial-unknown", ("BAPPEDA",),
     lambda m: replace(m, sender=replace(m.sender, serial="00" * 20)), "BAPPEDA", "not in the directory"),
    ("sealed-before-the-certificate", ("BAPPEDA",),
     lambda m: replace(m, sealed_at=m.sealed_at - timedelta(days=3)), "BAPPEDA", "not valid at the signing"),
    ("sealed-after-the-certificate", ("BAPPEDA",),
     lambda m: replace(m, sealed_at=m.sealed_at + timedelta(days=400)), "BAPPEDA", "not valid at the signing"),
    # dated ahead of the opener's clock: the certificate covers it, but the time is a lie
    ("sealed-an-hour-in-the-future", ("BAPPEDA",),
     lambda m: replace(m, sealed_at=m.sealed_at + timedelta(hours=1)), "BAPPEDA", "signing time in the future"),
    ("sealed-a-month-in-the-future", ("BAPPEDA",),
     lambda m: replace(m, sealed_at=m.sealed_at + timedelta(days=30)), "BAPPEDA", "signing time in the future"),
    # a sender whose clock runs a little ahead is within the allowed skew
    ("sealed-within-the-clock-skew", ("BAPPEDA",),
     lambda m: replace(m, sealed_at=m.sealed_at + timedelta(minutes=3)), "BAPPEDA", None),
    # a copy entry is the sender's own: the flag on a real recipient would waive its policy check
    ("copy-flag-for-a-recipient", ("BAPPEDA",),
     lambda m: replace(m, recipients=(replace(m.recipients[0], copy=True),)), "BAPPEDA",
     "marks BAPPEDA as the sender's copy, but the sender is DISKOMINFO"),
    ("copy-flag-for-another-recipient", ("BAPPEDA", "SETDA"),
     lambda m: replace(m, recipients=(m.recipients[0], replace(m.recipients[1], copy=True))), "BAPPEDA",
     "marks SETDA as the sender's copy"),
    ("class-that-is-no-level", ("BAPPEDA",), lambda m: replace(m, classification="ZZ"), "BAPPEDA",
     "classification 'ZZ' is not a level"),
]


@pytest.mark.parametrize(("stanzas", "edit", "opener", "message"),
                         [pytest.param(s, e, o, m, id=i) for i, s, e, o, m in FORGED])
def test_forged_metadata_is_refused(authority: AuthorityHome, tmp_path: Path, stanzas: tuple[str, ...],
                                    edit: Callable[[SealMetadata], SealMetadata], opener: str,
                                    message: str | None) -> None:
    raw = forge(authority, authority.workspace(), stanzas_for=stanzas, edit=edit)
    if message is None:
        # Not a forgery: a sender clock a few minutes ahead.
        assert_opens(authority, raw, tmp_path, opener=opener)
        return
    assert_refused(authority, raw, tmp_path, opener=opener, message=message)


def test_signed_list_naming_an_agency_without_a_stanza(authority: AuthorityHome, tmp_path: Path) -> None:
    """Encrypted to BAPPEDA alone, the signed list says BAPPEDA and SETDA: refused, not shown."""
    ws = authority.workspace()
    setda = max((c for c in ws.snapshot.agency("SETDA").certificates if c.purpose == "encryption"),
                key=lambda c: c.not_before)
    raw = forge(authority, ws, stanzas_for=("BAPPEDA",), edit=lambda m: replace(
        m, recipients=(*m.recipients, KeyRef(code="SETDA", key=setda.key_fingerprint))))
    stderr = assert_refused(authority, raw, tmp_path,
                            message="does not match the encryption header: 2 entries for 1 recipient stanzas")
    assert "SETDA" not in stderr
    import json

    last = json.loads(authority.ok("--json", "audit", "log", "--action", "verify.fail").stdout)[-1]
    assert (last["actor"], last["details"]["op"]) == ("BAPPEDA", "open")
    # the same list over both stanzas is what seal writes, and opens for each
    both = forge(authority, ws, stanzas_for=("BAPPEDA", "SETDA"))
    assert_opens(authority, both, fresh(tmp_path, "both"))
    assert_opens(authority, both, fresh(tmp_path, "both-setda"), opener="SETDA")


def test_a_stanza_of_another_type_is_refused(authority: AuthorityHome, tmp_path: Path) -> None:
    """A sealed document is encrypted to agency keys (X25519 or hybrid) only, one entry per stanza."""
    ws = authority.workspace()
    raw = forge(authority, ws, stanzas_for=("BAPPEDA",), foreign_stanza=True, edit=lambda m: replace(
        m, recipients=(*m.recipients, replace(m.recipients[0], code="SETDA"))))
    assert_refused(authority, raw, tmp_path, message="a recipient stanza that is neither X25519 nor mlkem768x25519")


# -- names the sender chose: nothing hidden, nothing Windows reads as a device (issue 13, item 8) --


@pytest.mark.parametrize(
    ("name", "why"),
    [(".bashrc", "starts with a dot"), (".profile", "starts with a dot"), ("...", "starts with a dot"),
     (".surat.pdf", "starts with a dot"), ("surat.pdf.", "ends with a dot"),
     ("CON", "CON is a device name"), ("con.txt", "con is a device name"), ("NUL.tar.gz", "NUL is a device"),
     ("Aux .pdf", "Aux is a device name"), ("COM1.pdf", "COM1 is a device"), ("lpt9", "lpt9 is a device"),
     ("COM\u00b9.txt", "is a device name"), ("CONOUT$", "CONOUT\\$ is a device"), ("prn.doc.", "ends with a dot")],
)
def test_dangerous_document_names_are_refused(authority: AuthorityHome, tmp_path: Path, name: str,
                                              why: str) -> None:
    """Signed by the real sender, so only the name rule can refuse it; ``--output-dir`` is a
    home folder, where ``.bashrc`` would be run by the next shell."""
    raw = forge(authority, authority.workspace(), doc_name=name)
    sealed = tmp_path / "surat.sandi"
    sealed.write_bytes(raw)
    home = tmp_path / "home"
    home.mkdir()
    for output in (["--output-dir", home], ["-o", tmp_path / "chosen.pdf"]):
        r = authority.run("open", sealed, "--as", "BAPPEDA", *output)
        assert r.code == 4, r
        assert "is not allowed" in r.stderr and re.search(why, r.stderr), r
        assert list(home.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["home", "surat.sandi"]
    import json

    last = json.loads(authority.ok("--json", "audit", "log", "--action", "verify.fail").stdout)[-1]
    assert (last["actor"], last["details"]["op"], last["details"]["reason"]) == ("BAPPEDA", "open", "FormatError")


@pytest.mark.parametrize("name", ["CONTOH.pdf", "console.txt", "COM10.txt", "nul_laporan.txt", "surat.v2.pdf",
                                  "LPT.doc", "a.minisig.pdf"])
def test_names_that_merely_look_alike_open(authority: AuthorityHome, tmp_path: Path, name: str) -> None:
    raw = forge(authority, authority.workspace(), doc_name=name)
    sealed = tmp_path / "surat.sandi"
    sealed.write_bytes(raw)
    r = authority.run("open", sealed, "--as", "BAPPEDA", "--output-dir", tmp_path / "masuk")
    assert r.code == 0, r
    assert (tmp_path / "masuk" / name).read_bytes() == DOC


# -- certificates: revocation, renewal, expiry ----------------------------------------------------


def signing_serial(authority: AuthorityHome, code: str) -> str:
    import json

    listed = json.loads(authority.ok("keys", "list", code, "--json").stdout)
    (serial,) = [c["serial"] for c in listed if c["purpose"] == "signing" and c["state"] == "current"]
    return str(serial)


def after_the_sealing_second(raw_sealed_at: datetime) -> None:
    # Revocations are recorded in whole seconds, as is the sealing time: a revocation in
    # the same second counts as before the signature. Step into the next second.
    while int(time.time()) <= int(raw_sealed_at.timestamp()):
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("target", "reason", "opens"),
    [("signing", "keyCompromise", False), ("agency", "keyCompromise", False),
     ("signing", "superseded", True), ("signing", "cessationOfOperation", True),
     ("agency", "affiliationChanged", True)],
)
def test_revocation_after_sealing(authority: AuthorityHome, tmp_path: Path, target: str, reason: str,
                                  opens: bool) -> None:
    ws = authority.workspace()
    raw = seal_now(ws, tmp_path)
    sealed_at = datetime.now(UTC)
    after_the_sealing_second(sealed_at)
    authority.ok("keys", "revoke", "--yes", signing_serial(authority, "DISKOMINFO") if target == "signing"
                 else "DISKOMINFO", "--reason", reason)
    if opens:
        assert_opens(authority, raw, tmp_path)
    else:
        assert_refused(authority, raw, tmp_path, message="revoked for key compromise")
    # either way, no new document can be sealed with the revoked key
    doc = fresh(tmp_path, "new") / "baru.txt"
    doc.write_bytes(b"x")
    r = authority.run("seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R")
    assert r.code == 1 and "no valid signing certificate" in r.stderr, r
    assert [p.name for p in doc.parent.iterdir()] == ["baru.txt"]


@pytest.mark.parametrize("revoked_before_sealing", [True, False], ids=["revoked-then-sealed", "sealed-then-revoked"])
def test_document_sealed_to_a_revoked_recipient_key(authority: AuthorityHome, tmp_path: Path,
                                                     revoked_before_sealing: bool) -> None:
    """A sender whose directory predates the revocation of BAPPEDA's encryption key still
    seals to it. BAPPEDA opens it (the key is its own) but is warned that others may have
    read it; a document sealed before the revocation opens without a warning."""
    import json

    stale = authority.workspace()  # the sender's view, from before the revocation
    listed = json.loads(authority.ok("keys", "list", "BAPPEDA", "--json").stdout)
    (serial,) = [c["serial"] for c in listed if c["purpose"] == "encryption" and c["state"] == "current"]
    raw = b""
    if not revoked_before_sealing:
        raw = seal_now(stale, tmp_path)
        after_the_sealing_second(datetime.now(UTC))
    authority.ok("keys", "revoke", "--yes", serial, "--reason", "keyCompromise")
    if revoked_before_sealing:
        raw = seal_now(stale, tmp_path)

    sealed = tmp_path / "surat.sandi"
    sealed.write_bytes(raw)
    out = tmp_path / "masuk"
    r = authority.run("--json", "open", sealed, "--as", "BAPPEDA", "--output-dir", out)
    assert r.code == 0, r
    assert (out / DOC_NAME).read_bytes() == DOC
    warned = "sealed to a key of BAPPEDA that was revoked or not valid at its sealing time" in r.stderr
    assert warned is revoked_before_sealing, r
    assert ("warnings" in json.loads(r.stdout)) is revoked_before_sealing
    log = json.loads(authority.ok("--json", "audit", "log", "--action", "document.open").stdout)
    assert log[-1]["details"].get("sealed_to_invalid_key", False) is revoked_before_sealing


def test_renewal_keeps_old_documents_and_signatures_valid(authority: AuthorityHome, tmp_path: Path) -> None:
    """Renewal: a new certificate for the same key. What was sealed or signed before stays valid."""
    ws = authority.workspace()
    raw = seal_now(ws, tmp_path)
    doc = tmp_path / "pengumuman.txt"
    doc.write_bytes(b"pengumuman")
    authority.ok("sign", doc, "--as", "DISKOMINFO")
    after_the_sealing_second(datetime.now(UTC))
    authority.ok("keys", "renew", "DISKOMINFO")
    assert_opens(authority, raw, tmp_path)
    assert authority.run("verify", doc).code == 0
    # and a key compromise of the renewed certificate voids the old certificate's signatures too
    authority.ok("keys", "revoke", "--yes", signing_serial(authority, "DISKOMINFO"), "--reason", "keyCompromise")
    assert_refused(authority, raw, fresh(tmp_path, "c"), message="revoked for key compromise")
    r = authority.run("verify", doc)
    assert r.code == 4 and "key compromise" in r.stderr, r


def test_expired_certificate(authority: AuthorityHome, tmp_path: Path) -> None:
    """DINKES holds one-day certificates (the 'short' profile)."""
    authority.ok("agency", "add", "DINKES", "--name", "Dinas Kesehatan")
    authority.ok("keys", "issue", "DINKES", "--profile", "short")
    now = datetime.now(UTC)
    later = now + timedelta(days=2)  # the directory (7 days) is still fresh, the certificate is not

    # sealed while valid: opens now, and still opens after the certificate expired
    raw = seal_now(authority.workspace(), tmp_path, sender="DINKES")
    assert_opens(authority, raw, tmp_path)
    from sandi.documents import DirectoryPolicy, open_sealed

    future = authority.workspace(clock=lambda: later)
    result = open_sealed(io.BytesIO(raw), workspace=future, opener="BAPPEDA", policy=DirectoryPolicy(
        future.snapshot), write_document=False)
    assert result.metadata.sender.code == "DINKES"

    # sealing after expiry is refused before anything is written
    from sandi.errors import CredentialError

    with pytest.raises(CredentialError, match="no valid signing certificate"):
        seal_now(future, tmp_path, sender="DINKES")
    # a document claiming to be sealed after expiry (the sender's software ignoring it) is refused
    forged = forge(authority, future, sender="DINKES")
    assert_refused(authority, forged, fresh(tmp_path, "forged"), message="not valid at the signing time")
    # and the expired recipient key: nobody can seal to DINKES any more
    with pytest.raises(CredentialError, match="no valid encryption certificate"):
        seal_now(future, tmp_path, recipients=("DINKES",))
