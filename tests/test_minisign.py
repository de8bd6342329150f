"""sandi.formats.minisign: byte layouts, strict parsing, ED-only verification, key files, interop."""

from __future__ import annotations

import base64
import hashlib
import io
import pickle
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import nacl.signing
import pytest

from sandi.errors import CredentialError, FormatError, UsageError, VerificationError
from sandi.formats import minisign as m
from sandi.formats.minisign import (
    MinisignFormatError,
    MinisignPublicKey,
    MinisignSecretKey,
    MinisignSignature,
)

# Small scrypt limits so tests are fast (N=2^10, r=8, p=1); minisign uses what the file says.
FAST = {"opslimit": 32768, "memlimit": 16 * 1024 * 1024}
SEED = bytes(range(32))


class MemorySigner:
    """The in-memory test signer: a PyNaCl key under a chosen minisign key id."""

    def __init__(self, seed: bytes = SEED, key_id: bytes | None = None) -> None:
        self._sk = nacl.signing.SigningKey(seed)
        self.public_key_bytes = bytes(self._sk.verify_key)
        self._key_id = key_id if key_id is not None else m.derive_key_id(self.public_key_bytes)
        self.calls: list[bytes] = []

    @property
    def minisign_key_id(self) -> bytes:
        return self._key_id

    @property
    def key_id(self) -> bytes:
        return self._key_id

    def sign(self, message: bytes) -> bytes:
        self.calls.append(message)
        return self._sk.sign(message).signature

    @property
    def public(self) -> MinisignPublicKey:
        return MinisignPublicKey(self.key_id, self.public_key_bytes)


def digest_of(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=64).digest()


@pytest.fixture
def signer() -> MemorySigner:
    return MemorySigner()


# --- key ids -----------------------------------------------------------------------------------


def test_derive_key_id_is_the_documented_function() -> None:
    pk = MemorySigner().public_key_bytes
    expected = hashlib.blake2b(b"sandi/minisign-key-id/v1" + pk, digest_size=32).digest()[:8]
    assert m.derive_key_id(pk) == expected
    assert m.derive_key_id(pk) != hashlib.blake2b(pk, digest_size=32).digest()[:8]
    assert MinisignPublicKey.from_raw(pk).key_id == expected
    assert MinisignSecretKey(SEED).key_id == expected


@pytest.mark.parametrize("bad", [b"", b"\x00" * 31, b"\x00" * 33])
def test_derive_key_id_needs_32_bytes(bad: bytes) -> None:
    with pytest.raises(UsageError):
        m.derive_key_id(bad)


@pytest.mark.parametrize(
    ("key_id", "shown"),
    [
        (bytes.fromhex("e795e2260987c7e3"), "E3C7870926E295E7"),  # the example in the notes
        (bytes.fromhex("e795e2260987c700"), "C7870926E295E7"),  # top byte 0: no zero padding
        (bytes.fromhex("0100000000000000"), "1"),
        (bytes(8), "0"),
        (b"\xff" * 8, "FFFFFFFFFFFFFFFF"),
    ],
)
def test_key_id_display_is_minisigns(key_id: bytes, shown: str) -> None:
    assert m.key_id_hex(key_id) == shown
    assert MinisignPublicKey(key_id, bytes(32)).key_id_hex == shown


# --- public keys -------------------------------------------------------------------------------


def test_public_key_text_round_trip(signer: MemorySigner) -> None:
    pub = signer.public
    text = pub.to_text()
    line1, line2 = text.split("\n")[:2]
    assert text.endswith("\n") and text.count("\n") == 2
    assert line1 == f"untrusted comment: minisign public key {pub.key_id_hex}"
    assert len(line2) == 56 and line2.startswith("RW")
    assert base64.b64decode(line2) == b"Ed" + pub.key_id + pub.public_key
    assert MinisignPublicKey.from_text(text) == pub
    assert MinisignPublicKey.from_text(text.encode()) == pub
    assert MinisignPublicKey.from_base64(pub.to_base64()) == pub
    assert MinisignPublicKey.from_text(text.replace("\n", "\r\n")) == pub
    assert MinisignPublicKey.from_text(text.rstrip("\n")) == pub
    custom = pub.to_text("agency DISKOMINFO signing key")
    assert custom.startswith("untrusted comment: agency DISKOMINFO signing key\n")


def _pub_b64(alg: bytes = b"Ed", key_id: bytes = b"\x01" * 8, pk: bytes = b"\x02" * 32) -> str:
    return base64.b64encode(alg + key_id + pk).decode()


GOOD_PUB = _pub_b64()


def _noncanonical(b64: str) -> str:
    """Same bytes, different spelling: set unused low bits in the last data character."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    stripped = b64.rstrip("=")
    pad = len(b64) - len(stripped)
    last = alphabet.index(stripped[-1])
    bumped = alphabet[last | (0b1111 if pad == 2 else 0b11)]
    out = stripped[:-1] + bumped + "=" * pad
    assert out != b64 and base64.b64decode(out) == base64.b64decode(b64)
    return out


def _noncanonical_unpadded(b64: str) -> str:
    """For a 56-char (unpadded) line there is no slack: spell it with a space instead."""
    return b64[:-1] + " "


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (GOOD_PUB[:-1], "too short"),
        (GOOD_PUB + "A", "too long"),
        (GOOD_PUB[:-4] + "AA==", "padding inside a full-length line"),
        (_noncanonical_unpadded(GOOD_PUB), "space"),
        (GOOD_PUB[:-1] + "!", "invalid character"),
        (GOOD_PUB[:-1] + "é", "non-ASCII"),
        (" " + GOOD_PUB[1:], "leading space"),
        (_pub_b64(alg=b"ED"), "ED in a public key struct"),
        (_pub_b64(alg=b"XX"), "unknown algorithm"),
        (base64.urlsafe_b64encode(b"Ed" + b"\xfb" * 40).decode(), "url-safe alphabet"),
    ],
)
def test_public_key_base64_is_strict(line: str, why: str) -> None:
    with pytest.raises(MinisignFormatError):
        MinisignPublicKey.from_base64(line)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (GOOD_PUB + "\n", "one line"),
        (f"untrusted comment: x\n{GOOD_PUB}\nextra\n", "three lines"),
        (f"untrusted comment: x\n{GOOD_PUB}\n\n", "blank trailing line"),
        (f"comment: x\n{GOOD_PUB}\n", "wrong prefix"),
        (f"untrusted comment: x\n {GOOD_PUB}\n", "indented key"),
        ("untrusted comment: " + "x" * 1004 + f"\n{GOOD_PUB}\n", "comment line 1023 bytes"),
        (f"untrusted comment: a\x00b\n{GOOD_PUB}\n", "NUL in comment"),
        (f"untrusted comment: a\rb\n{GOOD_PUB}\n", "stray CR"),
        (b"untrusted comment: \xff\n" + GOOD_PUB.encode() + b"\n", "not UTF-8"),
        ("x" * 100_000, "huge"),
    ],
)
def test_public_key_file_is_strict(text: str | bytes, why: str) -> None:
    with pytest.raises(MinisignFormatError):
        MinisignPublicKey.from_text(text)


def test_public_key_comment_at_limit_is_accepted() -> None:
    line = "untrusted comment: " + "x" * 1003
    assert len(line) == 1022
    assert MinisignPublicKey.from_text(f"{line}\n{GOOD_PUB}\n").key_id == b"\x01" * 8


@pytest.mark.parametrize(
    ("key_id", "pk"), [(b"\x00" * 7, b"\x00" * 32), (b"\x00" * 8, b"\x00" * 31), (b"\x00" * 9, b"\x00" * 32)]
)
def test_public_key_lengths_checked_on_construction(key_id: bytes, pk: bytes) -> None:
    with pytest.raises(UsageError):
        MinisignPublicKey(key_id, pk)


# --- prehash -----------------------------------------------------------------------------------


class RecordingStream(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.sizes: list[int] = []

    def read(self, size: int | None = -1, /) -> bytes:
        self.sizes.append(-1 if size is None else size)
        return super().read(size)


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 3 * 65536 + 7])
def test_prehash_stream_is_blake2b_512_in_64k_blocks(size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    stream = RecordingStream(data)
    assert m.prehash_stream(stream) == digest_of(data)
    assert set(stream.sizes) == {65536}
    h = m.Prehasher()
    for i in range(0, size, 1000):
        h.update(memoryview(data)[i : i + 1000])
    snapshot = h.copy()
    assert h.digest() == digest_of(data) == snapshot.digest()
    h.update(b"more")
    assert snapshot.digest() == digest_of(data) != h.digest()


# --- signing and verifying ---------------------------------------------------------------------


def test_sign_digest_layout(signer: MemorySigner) -> None:
    digest = digest_of(b"document")
    sig = m.sign_digest(signer, digest, "sandi-sign/v1 {}", untrusted_comment="from DISKOMINFO")
    assert sig.algorithm == b"ED" and sig.key_id == signer.key_id
    # What is signed, exactly: the digest, then signature || trusted comment.
    assert signer.calls == [digest, sig.signature + b"sandi-sign/v1 {}"]
    lines = sig.to_text().split("\n")
    assert lines[0] == "untrusted comment: from DISKOMINFO"
    assert lines[1].startswith("RUT") or base64.b64decode(lines[1])[:2] == b"ED"
    assert base64.b64decode(lines[1]) == b"ED" + signer.key_id + sig.signature
    assert lines[2] == "trusted comment: sandi-sign/v1 {}"
    assert base64.b64decode(lines[3]) == sig.global_signature
    assert lines[4] == "" and len(lines) == 5
    assert MinisignSignature.from_text(sig.to_text()) == sig
    assert MinisignSignature.from_text(sig.to_bytes()) == sig
    assert m.verify_digest(signer.public, sig, digest) == "sandi-sign/v1 {}"
    default = m.sign_digest(signer, digest, "x")
    assert default.untrusted_comment == f"signature from sandi key {signer.public.key_id_hex}"


def test_sign_and_verify_stream(signer: MemorySigner) -> None:
    data = b"surat dinas\n" * 20000
    sig = m.sign_stream(signer, io.BytesIO(data), "timestamp:1\tfile:x")
    assert m.verify_stream(signer.public, sig, io.BytesIO(data)) == "timestamp:1\tfile:x"
    with pytest.raises(VerificationError):
        m.verify_stream(signer.public, sig, io.BytesIO(data + b"!"))


@pytest.mark.parametrize(
    ("comment", "ok"),
    [
        ("x" * 8173, True),
        ("é" * 4086 + "x", True),  # 8173 bytes, 4087 characters
        ("x" * 8174, False),
        ("é" * 4087, False),  # 8174 bytes
        ("tab\tis fine", True),
        ("", True),
        ("new\nline", False),
        ("cr\rhere", False),
        ("nul\x00", False),
        ("del\x7f", False),
        ("bidi \u202e", False),
        ("lone surrogate \udcff", False),
    ],
)
def test_trusted_comment_rules_when_signing(signer: MemorySigner, comment: str, ok: bool) -> None:
    digest = digest_of(b"d")
    if ok:
        sig = m.sign_digest(signer, digest, comment)
        parsed = MinisignSignature.from_text(sig.to_text())
        assert m.verify_digest(signer.public, parsed, digest) == comment
    else:
        with pytest.raises(UsageError):
            m.sign_digest(signer, digest, comment)
        assert signer.calls == []  # refused before any signing work


@pytest.mark.parametrize("comment", ["a" * 1004, "line\nbreak", "nul\x00"])
def test_untrusted_comment_rules_when_signing(signer: MemorySigner, comment: str) -> None:
    with pytest.raises(UsageError):
        m.sign_digest(signer, digest_of(b"d"), "ok", untrusted_comment=comment)


class BadSigner(MemorySigner):
    def sign(self, message: bytes) -> bytes:
        return super().sign(message)[:63]


@pytest.mark.parametrize(
    ("make_signer", "digest"),
    [
        (BadSigner, digest_of(b"d")),
        (lambda: MemorySigner(key_id=b"short"), digest_of(b"d")),
        (MemorySigner, hashlib.sha256(b"d").digest()),
    ],
)
def test_sign_digest_checks_its_inputs(make_signer: type[MemorySigner], digest: bytes) -> None:
    with pytest.raises(UsageError):
        m.sign_digest(make_signer(), digest, "c")


def _legacy(signer: MemorySigner, message: bytes, comment: str) -> MinisignSignature:
    """A legacy Ed signature made the way minisign -l makes it (pure Ed25519 over the file)."""
    s = signer.sign(message)
    return MinisignSignature(b"Ed", signer.key_id, s, comment, signer.sign(s + comment.encode()))


def _flip(b: bytes, i: int = 0) -> bytes:
    return b[:i] + bytes([b[i] ^ 1]) + b[i + 1 :]


OTHER = MemorySigner(seed=b"\x07" * 32)


@pytest.mark.parametrize(
    "tamper",
    [
        "legacy Ed algorithm",
        "ED label on a legacy signature",
        "key id mismatch",
        "same key id, other key",
        "document changed",
        "signature changed",
        "trusted comment changed",
        "global signature changed",
        "global signature swapped from another signature",
    ],
)
def test_verify_digest_fails_generically(signer: MemorySigner, tamper: str) -> None:
    doc = b"the document"
    digest = digest_of(doc)
    good = m.sign_digest(signer, digest, "sandi-sign/v1 {\"n\":1}")
    pub = signer.public
    sig = good
    if tamper == "legacy Ed algorithm":
        sig = _legacy(signer, doc, good.trusted_comment)
        assert nacl.signing.VerifyKey(pub.public_key).verify(doc, sig.signature)  # a valid Ed sig
    elif tamper == "ED label on a legacy signature":
        sig = replace(_legacy(signer, doc, good.trusted_comment), algorithm=b"ED")
    elif tamper == "key id mismatch":
        sig = replace(good, key_id=_flip(good.key_id))
    elif tamper == "same key id, other key":
        pub = MinisignPublicKey(signer.key_id, OTHER.public_key_bytes)
    elif tamper == "document changed":
        digest = digest_of(doc + b"\n")
    elif tamper == "signature changed":
        sig = replace(good, signature=_flip(good.signature, 5))
    elif tamper == "trusted comment changed":
        sig = replace(good, trusted_comment="sandi-sign/v1 {\"n\":2}")
    elif tamper == "global signature changed":
        sig = replace(good, global_signature=_flip(good.global_signature, 63))
    elif tamper == "global signature swapped from another signature":
        other = m.sign_digest(signer, digest_of(b"other"), good.trusted_comment)
        sig = replace(good, global_signature=other.global_signature)
    with pytest.raises(VerificationError) as info:
        m.verify_digest(pub, sig, digest)
    assert str(info.value) == "signature verification failed"
    assert info.value.exit_code == 4
    # Round-tripping through text changes nothing about the verdict.
    with pytest.raises(VerificationError):
        m.verify_digest(pub, MinisignSignature.from_text(sig.to_text()), digest)


def test_the_real_signing_key_is_a_signer() -> None:
    keys = pytest.importorskip("sandi.keystore.keys")
    key = keys.SigningKey.from_private_bytes_unsafe(SEED)
    assert isinstance(key, m.Signer)
    digest = digest_of(b"surat")
    sig = m.sign_digest(key, digest, "sandi-sign/v1 {}")
    pub = MinisignPublicKey.from_raw(key.public_key_bytes())
    assert sig.key_id == pub.key_id == MinisignSecretKey(SEED).key_id
    assert m.verify_digest(pub, sig, digest) == "sandi-sign/v1 {}"
    # Ed25519 is deterministic: the keystore key and the minisign codec key agree byte for byte.
    assert sig == m.sign_digest(MinisignSecretKey(SEED), digest, "sandi-sign/v1 {}")


def test_untrusted_comment_is_not_authenticated(signer: MemorySigner) -> None:
    digest = digest_of(b"x")
    sig = replace(m.sign_digest(signer, digest, "t"), untrusted_comment="anything at all")
    assert m.verify_digest(signer.public, sig, digest) == "t"


def test_verify_digest_checks_its_inputs(signer: MemorySigner) -> None:
    sig = m.sign_digest(signer, digest_of(b"x"), "t")
    with pytest.raises(UsageError):
        m.verify_digest(signer.public, sig, b"\x00" * 32)


# --- signature files: strict parsing -----------------------------------------------------------


def _good_sig_text() -> str:
    return m.sign_digest(MemorySigner(), digest_of(b"doc"), "tc", untrusted_comment="uc").to_text()


def _lines() -> list[str]:
    return _good_sig_text().split("\n")[:4]


def _with(i: int, value: str) -> str:
    lines = _lines()
    lines[i] = value
    return "\n".join(lines) + "\n"


def _sig_line(alg: bytes) -> str:
    raw = base64.b64decode(_lines()[1])
    return base64.b64encode(alg + raw[2:]).decode()


BAD_SIGNATURE_FILES: list[tuple[str, str | bytes]] = [
    ("empty", ""),
    ("three lines", "\n".join(_lines()[:3]) + "\n"),
    ("five lines", _good_sig_text() + "extra\n"),
    ("blank line at end", _good_sig_text() + "\n"),
    ("blank line inside", "\n".join(_lines()[:2]) + "\n\n" + "\n".join(_lines()[2:]) + "\n"),
    ("untrusted prefix missing", _with(0, "comment: uc")),
    ("untrusted prefix wrong case", _with(0, "Untrusted comment: uc")),
    ("trusted prefix missing", _with(2, "tc")),
    ("trusted prefix without space", _with(2, "trusted comment:tc")),
    ("signature line short", _with(1, _lines()[1][:-4])),
    ("signature line long", _with(1, _lines()[1] + "AAAA")),
    ("signature non-canonical", _with(1, _noncanonical(_lines()[1]))),
    ("signature bad char", _with(1, "*" + _lines()[1][1:])),
    ("signature trailing space", _with(1, _lines()[1] + " ")),
    ("unknown algorithm", _with(1, _sig_line(b"XX"))),
    ("algorithm lower case", _with(1, _sig_line(b"ed"))),
    ("global signature short", _with(3, _lines()[3][:-4])),
    ("global signature non-canonical", _with(3, _noncanonical(_lines()[3]))),
    ("global signature swapped with signature line", _with(3, _lines()[1])),
    ("untrusted comment line 1023 bytes", _with(0, "untrusted comment: " + "u" * 1004)),
    ("trusted comment 8174 bytes", _with(2, "trusted comment: " + "t" * 8174)),
    ("NUL in trusted comment", _with(2, "trusted comment: t\x00c")),
    ("stray CR in trusted comment", _with(2, "trusted comment: t\rc")),
    ("bidi override in trusted comment", _with(2, "trusted comment: t\u202ec")),
    ("NUL in untrusted comment", _with(0, "untrusted comment: u\x00c")),
    ("trusted comment not UTF-8", _good_sig_text().encode().replace(b"comment: tc", b"comment: t\xc3")),
    ("huge input", "untrusted comment: x\n" * 100_000),
    ("CR-only line endings", _good_sig_text().replace("\n", "\r")),
]


@pytest.mark.parametrize(("why", "text"), BAD_SIGNATURE_FILES, ids=[b[0] for b in BAD_SIGNATURE_FILES])
def test_signature_file_is_strict(why: str, text: str | bytes) -> None:
    with pytest.raises(MinisignFormatError) as info:
        MinisignSignature.from_text(text)
    assert isinstance(info.value, FormatError) and info.value.exit_code == 4
    # Error text never echoes the input.
    assert "tc" not in str(info.value) or why.startswith("trusted")
    assert "AAAA" not in str(info.value)


@pytest.mark.parametrize(
    ("why", "transform"),
    [
        ("CRLF", lambda t: t.replace("\n", "\r\n")),
        ("mixed LF/CRLF", lambda t: t.replace("\n", "\r\n", 2)),
        ("no final newline", lambda t: t.rstrip("\n")),
        ("bytes", lambda t: t.encode()),
        ("untrusted comment line exactly 1022 bytes", lambda t: t.replace("uc\n", "u" * 1003 + "\n")),
        ("legacy Ed parses (verify rejects it)", lambda t: t.replace(_lines()[1], _sig_line(b"Ed"))),
    ],
)
def test_signature_file_accepted_variants(why: str, transform: object) -> None:
    assert callable(transform)
    parsed = MinisignSignature.from_text(transform(_good_sig_text()))
    assert parsed.trusted_comment == "tc"


@pytest.mark.parametrize(
    ("untrusted_len", "trusted_len", "newline", "ok"),
    [
        (1003, 8173, "\n", True),
        (1003, 1, "\r\n", False),  # 1022-byte line + CR does not fit minisign's buffer
        (1002, 1, "\r\n", True),
        (1, 8173, "\r\n", False),
        (1, 8172, "\r\n", True),
    ],
)
def test_limits_count_the_cr_like_minisign(
    signer: MemorySigner, untrusted_len: int, trusted_len: int, newline: str, ok: bool
) -> None:
    sig = m.sign_digest(signer, digest_of(b"d"), "t" * trusted_len, untrusted_comment="u" * untrusted_len)
    text = sig.to_text().replace("\n", newline)
    if ok:
        assert MinisignSignature.from_text(text) == sig
    else:
        with pytest.raises(MinisignFormatError):
            MinisignSignature.from_text(text)


def test_crlf_signature_verifies(signer: MemorySigner) -> None:
    digest = digest_of(b"doc")
    text = m.sign_digest(signer, digest, "tc").to_text().replace("\n", "\r\n")
    assert m.verify_digest(signer.public, MinisignSignature.from_text(text), digest) == "tc"


def test_signature_construction_is_checked() -> None:
    good = MinisignSignature.from_text(_good_sig_text())
    with pytest.raises(MinisignFormatError):
        replace(good, algorithm=b"XX")
    with pytest.raises(UsageError):
        replace(good, signature=b"\x00" * 63)
    with pytest.raises(UsageError):
        replace(good, trusted_comment="x" * 8174)


# --- secret key files --------------------------------------------------------------------------


def test_secret_key_is_opaque() -> None:
    sk = MinisignSecretKey(SEED)
    assert repr(sk) == f"MinisignSecretKey(key_id={sk.key_id_hex})"
    assert SEED.hex() not in repr(sk) and SEED.hex().upper() not in str(sk)
    with pytest.raises(TypeError):
        pickle.dumps(sk)
    assert sk.reveal_seed() == SEED
    assert sk.public_key_bytes() == bytes(nacl.signing.SigningKey(SEED).verify_key)
    assert isinstance(sk, m.Signer)
    digest = digest_of(b"x")
    assert m.verify_digest(sk.public_key, m.sign_digest(sk, digest, "t"), digest) == "t"
    assert MinisignSecretKey.generate().reveal_seed() != MinisignSecretKey.generate().reveal_seed()


@pytest.mark.parametrize("key_id", [None, bytes.fromhex("e795e2260987c7e3")])
def test_encrypted_secret_key_round_trip(key_id: bytes | None) -> None:
    sk = MinisignSecretKey(SEED, key_id)
    text = m.encode_secret_key(sk, b"correct horse", **FAST)
    comment, line = text.split("\n")[:2]
    assert comment == "untrusted comment: minisign encrypted secret key"
    assert len(line) == 212 and line.startswith("RWRTY0Iy")  # "Ed" "Sc" "B2"
    raw = base64.b64decode(line)
    assert int.from_bytes(raw[38:46], "little") == FAST["opslimit"]
    assert int.from_bytes(raw[46:54], "little") == FAST["memlimit"]
    assert raw[54:62] != sk.key_id  # key id is encrypted too, like minisign
    assert m.secret_key_is_encrypted(text)
    back = m.decode_secret_key(text, b"correct horse")
    assert back.key_id == sk.key_id and back.reveal_seed() == SEED
    assert back.public_key == sk.public_key


def test_encrypted_secret_key_is_deterministic_given_salt() -> None:
    sk = MinisignSecretKey(SEED)
    salt = b"\x05" * 32
    a = m.encode_secret_key(sk, b"pw", salt=salt, **FAST)
    assert a == m.encode_secret_key(sk, b"pw", salt=salt, **FAST)
    assert a != m.encode_secret_key(sk, b"pw", **FAST)
    # Hand-computed layout: the stream is libsodium scrypt, the checksum BLAKE2b-256.
    import nacl.pwhash.scrypt

    stream = nacl.pwhash.scrypt.kdf(104, b"pw", salt, FAST["opslimit"], FAST["memlimit"])
    sk64 = SEED + sk.public_key_bytes()
    chk = hashlib.blake2b(b"Ed" + sk.key_id + sk64, digest_size=32).digest()
    plain = sk.key_id + sk64 + chk
    struct = (
        b"EdScB2" + salt + FAST["opslimit"].to_bytes(8, "little") + FAST["memlimit"].to_bytes(8, "little")
        + bytes(x ^ y for x, y in zip(plain, stream, strict=True))
    )
    assert a.split("\n")[1] == base64.b64encode(struct).decode()


def test_wrong_passphrase_is_a_credential_error() -> None:
    text = m.encode_secret_key(MinisignSecretKey(SEED), b"right", **FAST)
    with pytest.raises(CredentialError) as info:
        m.decode_secret_key(text, b"wrong")
    assert "wrong" in str(info.value) and "right" not in str(info.value).replace("wrong", "")
    with pytest.raises(CredentialError):
        m.decode_secret_key(text, None)


def test_scrypt_limits_checked_before_work(monkeypatch: pytest.MonkeyPatch) -> None:
    text = m.encode_secret_key(MinisignSecretKey(SEED), b"pw", **FAST)
    import nacl.pwhash.scrypt

    def boom(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("scrypt must not run")

    monkeypatch.setattr(nacl.pwhash.scrypt, "kdf", boom)
    with pytest.raises(MinisignFormatError):
        m.decode_secret_key(text, b"pw", max_memlimit=FAST["memlimit"] - 1)
    with pytest.raises(MinisignFormatError):
        m.decode_secret_key(text, b"pw", max_opslimit=FAST["opslimit"] - 1)
    # A hostile file asking for 2^64-1 of everything is refused with the default limits.
    raw = bytearray(base64.b64decode(text.split("\n")[1]))
    raw[38:54] = b"\xff" * 16
    hostile = "untrusted comment: x\n" + base64.b64encode(bytes(raw)).decode() + "\n"
    with pytest.raises(MinisignFormatError):
        m.decode_secret_key(hostile, b"pw")


def test_unencrypted_secret_key_round_trip() -> None:
    sk = MinisignSecretKey(SEED, b"\x11" * 8)
    text = m.encode_secret_key_unencrypted(sk)
    assert text.split("\n")[1].startswith("RWQAAEIy")  # "Ed" "\0\0" "B2"
    assert not m.secret_key_is_encrypted(text)
    for pw in (None, b"ignored"):
        back = m.decode_secret_key(text, pw)
        assert back.reveal_seed() == SEED and back.key_id == sk.key_id


def _unencrypted_struct(sk: MinisignSecretKey) -> bytearray:
    return bytearray(base64.b64decode(m.encode_secret_key_unencrypted(sk).split("\n")[1]))


def _key_text(raw: bytes | bytearray) -> str:
    return "untrusted comment: k\n" + base64.b64encode(bytes(raw)).decode() + "\n"


def test_unencrypted_key_with_zero_checksum_like_minisign_0_11_is_accepted() -> None:
    raw = _unencrypted_struct(MinisignSecretKey(SEED))
    raw[126:158] = bytes(32)
    assert m.decode_secret_key(_key_text(raw), None).reveal_seed() == SEED


def _mutate(offset: int, value: bytes) -> str:
    raw = _unencrypted_struct(MinisignSecretKey(SEED))
    raw[offset : offset + len(value)] = value
    return _key_text(raw)


@pytest.mark.parametrize(
    ("why", "text"),
    [
        ("signature algorithm ED", _mutate(0, b"ED")),
        ("unknown kdf", _mutate(2, b"Ar")),
        ("unknown checksum", _mutate(4, b"B3")),
        ("salt on an unencrypted key", _mutate(6, b"\x01")),
        ("opslimit on an unencrypted key", _mutate(38, b"\x01")),
        ("wrong checksum", _mutate(126, b"\x01")),
        ("public half does not match seed", _mutate(62 + 32, b"\x00" * 32)),
        ("seed changed (checksum catches it)", _mutate(62, b"\xaa")),
        ("short", "untrusted comment: k\n" + base64.b64encode(b"EdScB2" + bytes(100)).decode() + "\n"),
        ("one line", base64.b64encode(bytes(158)).decode() + "\n"),
        ("no prefix", "k\n" + _mutate(0, b"Ed").split("\n")[1] + "\n"),
        ("non-canonical", "untrusted comment: k\n" + _noncanonical(_mutate(0, b"Ed").split("\n")[1]) + "\n"),
    ],
)
def test_secret_key_file_is_strict(why: str, text: str) -> None:
    with pytest.raises(MinisignFormatError) as info:
        m.decode_secret_key(text, b"pw")
    assert SEED.hex() not in str(info.value)


@pytest.mark.parametrize("passphrase", [b"", b"two\nlines", b"nul\x00"])
def test_unusable_passphrases_are_refused(passphrase: bytes) -> None:
    with pytest.raises(UsageError):
        m.encode_secret_key(MinisignSecretKey(SEED), passphrase, **FAST)


# --- interop with minisign 0.11 ----------------------------------------------------------------

needs_minisign = pytest.mark.skipif(shutil.which("minisign") is None, reason="minisign not installed")


def run(*args: str | Path, input: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(a) for a in args], input=input, capture_output=True, cwd=cwd, timeout=120, check=False
    )


@pytest.fixture
def doc(tmp_path: Path) -> Path:
    path = tmp_path / "surat.pdf"
    path.write_bytes(b"%PDF-1.7 surat edaran\n" * 5000 + bytes(range(256)))
    return path


@pytest.fixture
def minisign_key(tmp_path: Path) -> tuple[Path, Path]:
    """An unencrypted key pair made by ``minisign -G -W`` (random key id)."""
    pub, key = tmp_path / "ms.pub", tmp_path / "ms.key"
    r = run("minisign", "-G", "-W", "-p", pub, "-s", key)
    assert r.returncode == 0, r.stderr
    return pub, key


@pytest.mark.interop
@needs_minisign
@pytest.mark.parametrize("flags", [["-V"], ["-V", "-H"], ["-V", "-H", "-Q"]])
def test_python_signature_verifies_with_minisign(tmp_path: Path, doc: Path, flags: list[str]) -> None:
    sk = MinisignSecretKey(SEED)
    pub = tmp_path / "sandi.pub"
    pub.write_text(sk.public_key.to_text())
    comment = 'sandi-sign/v1 {"agency":"DISKOMINFO","class":"B"}\twith tab'
    with doc.open("rb") as f:
        sig = m.sign_stream(sk, f, comment)
    Path(f"{doc}.minisig").write_text(sig.to_text())
    r = run("minisign", *flags, "-p", pub, "-m", doc)
    assert r.returncode == 0, r.stderr
    assert comment.encode() in r.stdout
    # -P takes the key inline, the same 56 characters.
    r = run("minisign", *flags, "-P", sk.public_key.to_base64(), "-m", doc)
    assert r.returncode == 0, r.stderr


@pytest.mark.interop
@needs_minisign
@pytest.mark.parametrize(("length", "minisign_ok"), [(8173, True), (8174, False)])
def test_trusted_comment_limit_matches_minisign(tmp_path: Path, doc: Path, length: int, minisign_ok: bool) -> None:
    sk = MinisignSecretKey(SEED)
    pub = tmp_path / "sandi.pub"
    pub.write_text(sk.public_key.to_text())
    with doc.open("rb") as f:
        digest = m.prehash_stream(f)
    s = m.sign_digest(sk, digest, "x" * 8173)
    # Forge the over-long one by hand (sandi refuses to sign it).
    tc = "x" * length
    sig = replace(s, trusted_comment="x", global_signature=sk.sign(s.signature + tc.encode()))
    text = sig.to_text().replace("trusted comment: x\n", f"trusted comment: {tc}\n")
    Path(f"{doc}.minisig").write_text(text)
    assert (run("minisign", "-V", "-p", pub, "-m", doc).returncode == 0) is minisign_ok
    if minisign_ok:
        assert m.verify_digest(sk.public_key, MinisignSignature.from_text(text), digest) == tc
    else:
        with pytest.raises(MinisignFormatError):
            MinisignSignature.from_text(text)


@pytest.mark.interop
@needs_minisign
@pytest.mark.parametrize(
    ("untrusted_len", "trusted_len", "newline"),
    [(1003, 1, "\n"), (1004, 1, "\n"), (1003, 1, "\r\n"), (1002, 1, "\r\n"), (1, 8173, "\r\n"), (1, 8172, "\r\n")],
)
def test_parser_agrees_with_minisign_on_line_limits(
    tmp_path: Path, doc: Path, untrusted_len: int, trusted_len: int, newline: str
) -> None:
    sk = MinisignSecretKey(SEED)
    pub = tmp_path / "sandi.pub"
    pub.write_text(sk.public_key.to_text())
    with doc.open("rb") as f:
        digest = m.prehash_stream(f)
    base = m.sign_digest(sk, digest, "t" * trusted_len, untrusted_comment="u")
    # Build the text by hand so sandi's own signing-side checks do not get in the way.
    text = base.to_text().replace("untrusted comment: u\n", "untrusted comment: " + "u" * untrusted_len + "\n")
    Path(f"{doc}.minisig").write_bytes(text.replace("\n", newline).encode())
    minisign_ok = run("minisign", "-V", "-p", pub, "-m", doc).returncode == 0
    try:
        MinisignSignature.from_text(text.replace("\n", newline))
        sandi_ok = True
    except MinisignFormatError:
        sandi_ok = False
    assert sandi_ok == minisign_ok


@pytest.mark.interop
@needs_minisign
def test_minisign_signature_verifies_in_python(doc: Path, minisign_key: tuple[Path, Path]) -> None:
    pub_path, key_path = minisign_key
    r = run("minisign", "-S", "-s", key_path, "-m", doc, "-t", "made by minisign\tok")
    assert r.returncode == 0, r.stderr
    pub = MinisignPublicKey.from_text(pub_path.read_text())
    # The key id comment minisign wrote is our display of the same bytes.
    assert pub_path.read_text().split("\n")[0] == f"untrusted comment: minisign public key {pub.key_id_hex}"
    sig_text = Path(f"{doc}.minisig").read_bytes()
    sig = MinisignSignature.from_text(sig_text)
    assert sig.algorithm == b"ED"
    with doc.open("rb") as f:
        assert m.verify_stream(pub, sig, f) == "made by minisign\tok"
    # CRLF version verifies in both.
    Path(f"{doc}.minisig").write_bytes(sig_text.replace(b"\n", b"\r\n"))
    assert run("minisign", "-V", "-H", "-p", pub_path, "-m", doc).returncode == 0
    with doc.open("rb") as f:
        assert m.verify_stream(pub, MinisignSignature.from_text(Path(f"{doc}.minisig").read_bytes()), f)
    # The -W key reads in Python and signs the same bytes as minisign (Ed25519 is deterministic).
    sk = m.decode_secret_key(key_path.read_text(), None)
    assert sk.public_key == pub
    with doc.open("rb") as f:
        ours = m.sign_stream(sk, f, "made by minisign\tok")
    assert ours.signature == sig.signature and ours.global_signature == sig.global_signature
    assert ours.to_text().split("\n")[1:] == sig_text.decode().split("\n")[1:]


@pytest.mark.interop
@needs_minisign
def test_python_exported_encrypted_key_signs_with_minisign(tmp_path: Path, doc: Path) -> None:
    sk = MinisignSecretKey(SEED)
    key_path = tmp_path / "agency.key"
    key_path.write_text(m.encode_secret_key(sk, b"rahasia negara", **FAST))
    key_path.chmod(0o600)
    # minisign 0.11 reads the passphrase as one line from stdin when stdin is not a terminal.
    r = run("minisign", "-S", "-s", key_path, "-m", doc, "-t", "via minisign", input=b"rahasia negara\n")
    assert r.returncode == 0, r.stderr
    with doc.open("rb") as f:
        assert m.verify_stream(sk.public_key, MinisignSignature.from_text(Path(f"{doc}.minisig").read_text()), f)
    r = run("minisign", "-S", "-s", key_path, "-m", doc, "-x", tmp_path / "bad.minisig", input=b"salah\n")
    assert r.returncode != 0 and b"Wrong password" in r.stderr
    assert not (tmp_path / "bad.minisig").exists()


@pytest.mark.interop
@needs_minisign
@pytest.mark.slow
def test_minisign_encrypted_key_decodes_in_python(tmp_path: Path) -> None:
    # minisign -G uses the SENSITIVE limits (1 GiB of scrypt); this proves the defaults match.
    pub, key = tmp_path / "e.pub", tmp_path / "e.key"
    r = run("minisign", "-G", "-p", pub, "-s", key, input=b"pw-sandi\npw-sandi\n")
    assert r.returncode == 0, r.stderr
    text = key.read_text()
    assert m.secret_key_is_encrypted(text)
    sk = m.decode_secret_key(text, b"pw-sandi")
    assert sk.public_key == MinisignPublicKey.from_text(pub.read_text())


@pytest.mark.interop
@needs_minisign
def test_legacy_minisign_signature_is_rejected(doc: Path, minisign_key: tuple[Path, Path]) -> None:
    pub_path, key_path = minisign_key
    assert run("minisign", "-S", "-l", "-s", key_path, "-m", doc).returncode == 0
    # minisign itself accepts it by default and rejects it with -H; sandi behaves like -H.
    assert run("minisign", "-V", "-p", pub_path, "-m", doc).returncode == 0
    r = run("minisign", "-V", "-H", "-p", pub_path, "-m", doc)
    assert r.returncode == 1 and b"Legacy" in r.stderr
    sig = MinisignSignature.from_text(Path(f"{doc}.minisig").read_text())
    assert sig.algorithm == b"Ed"
    with doc.open("rb") as f, pytest.raises(VerificationError):
        m.verify_stream(MinisignPublicKey.from_text(pub_path.read_text()), sig, f)


@pytest.mark.interop
@needs_minisign
@pytest.mark.parametrize("who", ["python", "minisign"])
def test_tampered_trusted_comment_fails_everywhere(
    tmp_path: Path, doc: Path, minisign_key: tuple[Path, Path], who: str
) -> None:
    pub_path, key_path = minisign_key
    sig_path = Path(f"{doc}.minisig")
    if who == "minisign":
        assert run("minisign", "-S", "-s", key_path, "-m", doc, "-t", "class:B").returncode == 0
    else:
        sk = m.decode_secret_key(key_path.read_text(), None)
        with doc.open("rb") as f:
            sig_path.write_text(m.sign_stream(sk, f, "class:B").to_text())
    sig_path.write_text(sig_path.read_text().replace("trusted comment: class:B", "trusted comment: class:R"))
    r = run("minisign", "-V", "-p", pub_path, "-m", doc)
    assert r.returncode != 0 and b"Comment signature verification failed" in r.stderr
    with doc.open("rb") as f, pytest.raises(VerificationError):
        m.verify_stream(MinisignPublicKey.from_text(pub_path.read_text()), MinisignSignature.from_text(sig_path.read_text()), f)


@pytest.mark.interop
@needs_minisign
def test_key_id_mismatch_matches_minisign(tmp_path: Path, doc: Path, minisign_key: tuple[Path, Path]) -> None:
    _, key_path = minisign_key
    assert run("minisign", "-S", "-s", key_path, "-m", doc).returncode == 0
    other = tmp_path / "other.pub"
    other.write_text(MinisignSecretKey(SEED).public_key.to_text())
    r = run("minisign", "-V", "-p", other, "-m", doc)
    assert r.returncode != 0
    with doc.open("rb") as f, pytest.raises(VerificationError):
        m.verify_stream(MinisignPublicKey.from_text(other.read_text()),
                        MinisignSignature.from_text(Path(f"{doc}.minisig").read_text()), f)
