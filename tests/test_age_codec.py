"""The age codec's API: keys, round trips, streaming, limits and tamper rejection."""

from __future__ import annotations

import io
import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandi.errors import FormatError, UsageError
from sandi.formats.age import (
    CHUNK_SIZE,
    AgeError,
    DecryptReader,
    EncryptWriter,
    Identity,
    Recipient,
    ScryptIdentity,
    ScryptRecipient,
    Stanza,
    X25519Identity,
    X25519Recipient,
    bech32,
    decrypt,
    encrypt,
    parse_header,
    parse_identities,
)
from sandi.formats.age.header import DEFAULT_MAX_STANZAS, encode_header

KAT_IDENTITY = "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0"
KAT_RECIPIENT = "age1xmwwc06ly3ee5rytxm9mflaz2u56jjj36s0mypdrwsvlul66mv4q47ryef"
KAT_SCALAR = "ca1626252c53cf1a4dc46695e7fcc46594cb4ccadedb6712dfda0753f3ae355e"
KAT_PUBKEY = "36dcec3f5f24739a0c8b36cbb4ffa25729a94a51d41fb205a37419fe7f5adb2a"

ALICE = X25519Identity.generate()
BOB = X25519Identity.generate()
CAROL = X25519Identity.generate()


def enc(data: bytes, recipients: list[Recipient], *, armor: bool = False) -> bytes:
    out = io.BytesIO()
    encrypt(io.BytesIO(data), out, recipients, armor=armor)
    return out.getvalue()


def dec(data: bytes, identities: list[Identity], **kw: object) -> bytes:
    out = io.BytesIO()
    decrypt(io.BytesIO(data), out, identities, **kw)  # type: ignore[arg-type]
    return out.getvalue()


def kind_of(data: bytes, identities: list[Identity]) -> str:
    with pytest.raises(AgeError) as info:
        dec(data, identities)
    return info.value.kind


# -- keys -------------------------------------------------------------------------


def test_x25519_known_answer() -> None:
    ident = X25519Identity.from_bech32(KAT_IDENTITY)
    assert ident.private_bytes_unsafe().hex() == KAT_SCALAR
    assert ident.recipient.public_bytes.hex() == KAT_PUBKEY
    assert ident.recipient.to_bech32() == KAT_RECIPIENT
    assert ident.secret_bech32_unsafe() == KAT_IDENTITY
    assert X25519Recipient.from_bech32(KAT_RECIPIENT) == ident.recipient
    assert X25519Recipient.from_public_bytes(bytes.fromhex(KAT_PUBKEY)) == ident.recipient
    assert X25519Identity.from_private_bytes(bytes.fromhex(KAT_SCALAR)).recipient == ident.recipient


def test_identity_is_opaque() -> None:
    ident = X25519Identity.from_bech32(KAT_IDENTITY)
    assert repr(ident) == f"X25519Identity(recipient={KAT_RECIPIENT!r})"
    assert KAT_IDENTITY not in repr(ident) and KAT_SCALAR not in repr(ident)
    assert "passphrase" not in repr(ScryptIdentity(b"hunter2")).replace("ScryptIdentity", "")
    assert "hunter2" not in repr(ScryptRecipient(b"hunter2", 10))


@pytest.mark.parametrize(
    ("text", "cls"),
    [
        (KAT_IDENTITY.lower(), X25519Identity),  # identities are uppercase
        (KAT_IDENTITY[:-1] + "1", X25519Identity),  # bad checksum
        (KAT_IDENTITY[:20] + KAT_IDENTITY[20:].lower(), X25519Identity),  # mixed case
        (KAT_RECIPIENT, X25519Identity),  # a recipient is not an identity
        (KAT_RECIPIENT.upper(), X25519Recipient),  # recipients are lowercase
        (KAT_RECIPIENT[:-1] + "q", X25519Recipient),
        (KAT_IDENTITY, X25519Recipient),
        (bech32.encode("age", bytes(31)), X25519Recipient),  # wrong length
        ("age1", X25519Recipient),
        ("", X25519Recipient),
    ],
)
def test_bad_key_strings_rejected_without_echo(text: str, cls: type) -> None:
    with pytest.raises(FormatError) as info:
        cls.from_bech32(text)
    assert not isinstance(info.value, AgeError)
    if text:
        assert text not in str(info.value)


def test_bech32_roundtrip_long_and_padding() -> None:
    data = os.urandom(1200)  # far above BIP173's 90-character limit, as age needs
    hrp, out = bech32.decode(bech32.encode("age1pq", data))
    assert (hrp, out) == ("age1pq", data)
    # BIP173 test vector (valid) and a non-zero padding-bit string (invalid).
    assert bech32.decode("A12UEL5L") == ("a", b"")
    with pytest.raises(bech32.Bech32Error):
        bech32.decode("a12uel5m")


def test_parse_identities_file() -> None:
    text = f"# created: 2024-01-01T00:00:00Z\n# public key: {KAT_RECIPIENT}\n\n{KAT_IDENTITY}\r\n"
    [ident] = parse_identities(text)
    assert ident.recipient.to_bech32() == KAT_RECIPIENT
    with pytest.raises(FormatError) as info:
        parse_identities("# nothing\n")
    assert "no identity" in str(info.value)
    with pytest.raises(FormatError) as info:
        parse_identities(KAT_IDENTITY[:-1] + "X\n")
    assert "line 1" in str(info.value) and KAT_IDENTITY[:-1] not in str(info.value)


# -- round trips ------------------------------------------------------------------

SIZES = [0, 1, 100, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE, 3 * CHUNK_SIZE + 17]


@pytest.mark.parametrize("armor", [False, True])
@pytest.mark.parametrize("size", SIZES)
def test_roundtrip_x25519(size: int, armor: bool) -> None:
    data = os.urandom(size)
    ct = enc(data, [ALICE.recipient, BOB.recipient], armor=armor)
    for ident in (ALICE, BOB):
        assert dec(ct, [ident]) == data
    assert kind_of(ct, [CAROL]) == "no match"
    header = parse_header(io.BytesIO(ct))
    assert header.armored is armor
    assert [s.type for s in header.stanzas] == ["X25519", "X25519"]
    if not armor:
        chunks = max(1, -(-size // CHUNK_SIZE))
        assert len(ct) == len(header.header_bytes) + 16 + size + 16 * chunks


@pytest.mark.parametrize("armor", [False, True])
def test_roundtrip_scrypt(armor: bool) -> None:
    data = os.urandom(CHUNK_SIZE + 5)
    ct = enc(data, [ScryptRecipient(b"correct horse", work_factor=10)], armor=armor)
    [stanza] = parse_header(io.BytesIO(ct)).stanzas
    assert stanza.type == "scrypt" and stanza.args[1] == "10" and len(stanza.body) == 32
    assert dec(ct, [ScryptIdentity(b"correct horse")]) == data
    assert kind_of(ct, [ScryptIdentity(b"wrong horse")]) == "no match"
    assert kind_of(ct, [ALICE]) == "no match"


def test_identities_tried_in_order() -> None:
    ct = enc(b"x", [BOB.recipient])
    assert dec(ct, [ALICE, CAROL, BOB]) == b"x"


@pytest.mark.parametrize("write_size", [1, 1000, CHUNK_SIZE, CHUNK_SIZE + 1, 5 * CHUNK_SIZE])
def test_streaming_writer_independent_of_write_sizes(write_size: int) -> None:
    data = os.urandom(3 * CHUNK_SIZE + 123 if write_size > 1 else 2 * CHUNK_SIZE + 3)
    out = io.BytesIO()
    writer = EncryptWriter(out, [ALICE.recipient])
    header = writer.header_bytes
    # The header is known (and written) before any payload byte.
    assert out.getvalue().startswith(header)
    assert len(out.getvalue()) == len(header) + 16
    for i in range(0, len(data), write_size):
        writer.write(data[i : i + write_size])
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"more")
    ct = out.getvalue()
    assert len(ct) == len(header) + 16 + len(data) + 16 * -(-len(data) // CHUNK_SIZE)
    reader = DecryptReader(io.BytesIO(ct), [ALICE])
    assert reader.header_bytes == header
    got = bytearray()
    while piece := reader.read(7777):
        got += piece
    assert bytes(got) == data
    assert reader.read(10) == b""


def test_encrypt_returns_header_and_armored_header_equals_binary() -> None:
    out = io.BytesIO()
    header = encrypt(io.BytesIO(b"hello"), out, [ALICE.recipient], armor=True)
    assert out.getvalue().startswith(b"-----BEGIN AGE ENCRYPTED FILE-----\n")
    assert out.getvalue().endswith(b"\n-----END AGE ENCRYPTED FILE-----\n")
    reader = DecryptReader(io.BytesIO(out.getvalue()), [ALICE])
    assert reader.armored and reader.header_bytes == header
    assert header.startswith(b"age-encryption.org/v1\n-> X25519 ")


def test_writer_aborted_by_exception_never_finalises() -> None:
    out = io.BytesIO()
    with pytest.raises(RuntimeError), EncryptWriter(out, [ALICE.recipient]) as writer:
        writer.write(b"a" * (CHUNK_SIZE + 10))
        raise RuntimeError("disk full")
    assert kind_of(out.getvalue(), [ALICE]) == "payload"


def test_readinto_and_read_all() -> None:
    data = os.urandom(2 * CHUNK_SIZE + 9)
    ct = enc(data, [ALICE.recipient])
    assert DecryptReader(io.BytesIO(ct), [ALICE]).read() == data
    reader = DecryptReader(io.BytesIO(ct), [ALICE])
    buf = bytearray(50000)
    got = bytearray()
    while n := reader.readinto(buf):
        got += buf[:n]
    assert bytes(got) == data


class _Trickle(io.RawIOBase):
    """A pipe-like source that returns at most 3 bytes per read."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        chunk = self._data.read(min(3, len(b)))
        b[: len(chunk)] = chunk
        return len(chunk)


@pytest.mark.parametrize("armor", [False, True])
def test_short_reads_from_source(armor: bool) -> None:
    data = os.urandom(CHUNK_SIZE + 1)
    ct = enc(data, [ALICE.recipient], armor=armor)
    out = io.BytesIO()
    decrypt(_Trickle(ct), out, [ALICE])  # type: ignore[arg-type]
    assert out.getvalue() == data


# -- release only authenticated data, EOF only at the verified end ----------------------


def test_chunk_released_only_after_authentication() -> None:
    data = os.urandom(3 * CHUNK_SIZE)
    ct = bytearray(enc(data, [ALICE.recipient]))
    header_len = len(parse_header(io.BytesIO(bytes(ct))).header_bytes) + 16
    ct[header_len + (CHUNK_SIZE + 16) + 5] ^= 1  # inside chunk 1
    reader = DecryptReader(io.BytesIO(bytes(ct)), [ALICE])
    assert reader.read(CHUNK_SIZE) == data[:CHUNK_SIZE]
    with pytest.raises(AgeError) as info:
        reader.read(1)
    assert info.value.kind == "payload" and "chunk 1" in str(info.value)
    with pytest.raises(AgeError):  # the error sticks
        reader.read(1)


@pytest.mark.parametrize(
    "extra", [b"\x00", b"x" * 100, os.urandom(CHUNK_SIZE + 16)], ids=["1-byte", "100-bytes", "a-chunk"]
)
@pytest.mark.parametrize("size", [5, CHUNK_SIZE])
def test_trailing_data_rejected(size: int, extra: bytes) -> None:
    data = os.urandom(size)
    reader = DecryptReader(io.BytesIO(enc(data, [ALICE.recipient]) + extra), [ALICE])
    if size == CHUNK_SIZE:
        # A full-size final chunk authenticates on its own (as in age it is released);
        # the end of file is then refused because data follows.
        assert reader.read(size + 1) == data
    # A short final chunk swallows the extra bytes and fails to authenticate.
    with pytest.raises(AgeError) as info:
        reader.read(size + 1)
    assert info.value.kind == "payload"


def test_final_empty_chunk_only_for_empty_file() -> None:
    # An empty plaintext is one empty final chunk: 16 bytes of tag.
    ct = enc(b"", [ALICE.recipient])
    assert len(ct) == len(parse_header(io.BytesIO(ct)).header_bytes) + 16 + 16
    assert dec(ct, [ALICE]) == b""


# -- stanza rules and limits ------------------------------------------------------


def test_scrypt_must_be_alone_when_encrypting() -> None:
    with pytest.raises(UsageError):
        enc(b"x", [ScryptRecipient(b"pw", 10), ALICE.recipient])
    with pytest.raises(UsageError):
        enc(b"x", [ScryptRecipient(b"pw", 10), ScryptRecipient(b"pw2", 10)])
    with pytest.raises(UsageError):
        enc(b"x", [])
    with pytest.raises(UsageError):
        DecryptReader(io.BytesIO(b""), [])


@pytest.mark.parametrize("work_factor", [0, 23, 40])
def test_scrypt_recipient_work_factor_bounds(work_factor: int) -> None:
    with pytest.raises(UsageError):
        ScryptRecipient(b"pw", work_factor)


def _scrypt_file(work_factor: int) -> bytes:
    """A well-formed scrypt file with any work factor (its stanza is never opened)."""
    stanza = Stanza("scrypt", ("rF0/NwblUHHTpgQgRpe5CQ", str(work_factor)), os.urandom(32))
    return encode_header([stanza], os.urandom(16)).header_bytes + os.urandom(40)


@pytest.mark.parametrize(
    ("file_wf", "kwargs", "identity_max"),
    [
        (23, {}, 22),  # age's default limit
        (30, {}, 22),
        (15, {"max_work_factor": 14}, 22),  # lowered per call
        (15, {}, 14),  # lowered per identity
    ],
)
def test_scrypt_work_factor_checked_before_scrypt_runs(
    file_wf: int, kwargs: dict[str, int], identity_max: int
) -> None:
    start = time.monotonic()
    with pytest.raises(AgeError) as info:
        DecryptReader(io.BytesIO(_scrypt_file(file_wf)), [ScryptIdentity(b"pw", identity_max)], **kwargs)  # type: ignore[arg-type]
    assert info.value.kind == "header" and "work factor" in str(info.value)
    assert time.monotonic() - start < 0.5  # 2**15+ scrypt would have taken longer


def _many_stanza_file(count: int) -> bytes:
    stanzas = [Stanza("example.org/grease", (str(i),), b"") for i in range(count)]
    stanzas += ALICE.recipient.wrap(b"0" * 16)
    return encode_header(stanzas, b"0" * 16).header_bytes


def test_stanza_count_limit() -> None:
    assert DEFAULT_MAX_STANZAS == 2000  # docs/format.md 1.3 and 3.1.2 (circulars)
    ok = _many_stanza_file(1999)  # 2000 with the real one
    with pytest.raises(AgeError) as info:
        DecryptReader(io.BytesIO(ok), [ALICE])
    assert info.value.kind == "header" and "nonce" in str(info.value)  # got past the header
    assert len(parse_header(io.BytesIO(ok)).stanzas) == 2000
    with pytest.raises(AgeError) as info:
        parse_header(io.BytesIO(_many_stanza_file(2000)))
    assert info.value.kind == "header" and "2000 stanzas" in str(info.value)
    assert len(parse_header(io.BytesIO(_many_stanza_file(2000)), max_stanzas=2001).stanzas) == 2001
    with pytest.raises(AgeError) as info:
        parse_header(io.BytesIO(ok), max_stanzas=1000)
    assert info.value.kind == "header" and "1000 stanzas" in str(info.value)
    with pytest.raises(UsageError, match="more than 2000 recipients"):
        EncryptWriter(io.BytesIO(), [ALICE.recipient] * 2001)


def test_header_size_limit() -> None:
    big = [Stanza("example.org/big", ("a",), os.urandom(700 * 1024))]
    data = encode_header(big + ALICE.recipient.wrap(b"0" * 16), b"0" * 16).header_bytes
    assert len(parse_header(io.BytesIO(data)).header_bytes) == len(data)
    with pytest.raises(AgeError) as info:
        parse_header(io.BytesIO(data), max_header_size=512 * 1024)
    assert info.value.kind == "header" and "limit" in str(info.value)


class _Endless(io.RawIOBase):
    """An age intro, then a stanza line that never ends (counts what was read)."""

    def __init__(self) -> None:
        self.prefix = b"age-encryption.org/v1\n-> "
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        n = len(b)
        if self.served < len(self.prefix):
            chunk = self.prefix[self.served : self.served + n]
            b[: len(chunk)] = chunk
            n = len(chunk)
        else:
            b[:] = b"A" * n
        self.served += n
        return n


def test_header_limit_bounds_reading_an_endless_line() -> None:
    src = _Endless()
    with pytest.raises(AgeError) as info:
        parse_header(src, max_header_size=64 * 1024)  # type: ignore[arg-type]
    assert info.value.kind == "header" and "limit" in str(info.value)
    assert src.served < 64 * 1024 + 8192  # stopped near the limit, not at memory exhaustion


def test_errors_never_contain_key_material() -> None:
    ct = enc(b"secret text", [ALICE.recipient])
    for bad in (ct[:-1], ct + b"x", ct.replace(b"X25519", b"X25520", 1)):
        with pytest.raises(AgeError) as info:
            dec(bad, [ALICE])
        text = str(info.value) + info.value.hint
        assert ALICE.secret_bech32_unsafe() not in text and "secret text" not in text


# -- tampering (property tests) -----------------------------------------------------

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.binary(max_size=3 * CHUNK_SIZE), st.booleans())
def test_property_roundtrip(data: bytes, armor: bool) -> None:
    assert dec(enc(data, [ALICE.recipient], armor=armor), [ALICE]) == data


CIPHERTEXT_PLAIN = os.urandom(CHUNK_SIZE + 200)
CIPHERTEXT = enc(CIPHERTEXT_PLAIN, [ALICE.recipient, BOB.recipient])
ARMORED = enc(CIPHERTEXT_PLAIN, [ALICE.recipient], armor=True)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(CIPHERTEXT) - 1), st.integers(1, 255))
def test_property_any_byte_change_rejected(pos: int, xor: int) -> None:
    bad = bytearray(CIPHERTEXT)
    bad[pos] ^= xor
    with pytest.raises(AgeError):
        dec(bytes(bad), [ALICE])


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(CIPHERTEXT) - 1))
def test_property_any_truncation_rejected(length: int) -> None:
    with pytest.raises(AgeError):
        dec(CIPHERTEXT[:length], [ALICE])


ARMOR_BODY_START = ARMORED.index(b"\n") + 1
ARMOR_BODY_END = ARMORED.rindex(b"\n-----END")


@settings(max_examples=200, deadline=None)
@given(st.integers(ARMOR_BODY_START, ARMOR_BODY_END - 1), st.integers(1, 255))
def test_property_armored_byte_change_rejected(pos: int, xor: int) -> None:
    # Outside the BEGIN/END block the armor tolerates whitespace and CRLF by spec, so
    # only changes to the lines between them must always be caught.
    bad = bytearray(ARMORED)
    bad[pos] ^= xor
    with pytest.raises(AgeError):
        dec(bytes(bad), [ALICE])


@settings(max_examples=100, deadline=None)
@given(st.integers(0, len(ARMORED) - 34))
def test_property_armored_truncation_rejected(length: int) -> None:
    with pytest.raises(AgeError):
        dec(ARMORED[:length], [ALICE])


def test_fallback_without_into_methods(monkeypatch: pytest.MonkeyPatch) -> None:
    """Older `cryptography` has no encrypt_into/decrypt_into: the copies path must agree."""
    data = os.urandom(2 * CHUNK_SIZE + 3)
    out = io.BytesIO()
    writer = EncryptWriter(out, [ALICE.recipient])
    writer._encrypt_into = None
    writer.write(data)
    writer.close()
    reader = DecryptReader(io.BytesIO(out.getvalue()), [ALICE])
    reader._decrypt_into = None
    assert reader.read() == data
    bad = bytearray(out.getvalue())
    bad[-1] ^= 1
    reader = DecryptReader(io.BytesIO(bytes(bad)), [ALICE])
    reader._decrypt_into = None
    with pytest.raises(AgeError):
        reader.read()


@pytest.mark.parametrize("size", [1 << 20, 2 << 20, (2 << 20) + 1, (1 << 20) - 1 + 3 * CHUNK_SIZE])
@pytest.mark.parametrize("trickle", [False, True])
def test_write_from_lookahead_path(size: int, trickle: bool) -> None:
    data = os.urandom(size)
    src = _Trickle(data) if trickle else io.BytesIO(data)
    if trickle:
        src._data = io.BytesIO(data)
        src.readinto = lambda b: src._data.readinto(b[: 70_001])  # type: ignore[method-assign]
    out = io.BytesIO()
    with EncryptWriter(out, [ALICE.recipient]) as writer:
        assert writer.write_from(src) == size  # type: ignore[arg-type]
    assert writer.plaintext_size == size
    ct = out.getvalue()
    assert len(ct) == len(writer.header_bytes) + 16 + size + 16 * -(-size // CHUNK_SIZE)
    assert dec(ct, [ALICE]) == data
