"""The hybrid post-quantum age type (mlkem768x25519): keys, encodings, round trips,
strict stanzas, and the rule against mixing it with classical recipients.

The CCTV vectors (test_age_vectors.py) pin decryption; these tests pin what sandi
writes and the key encodings, including the example key pair printed in C2SP age.md.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from sandi.errors import FormatError, UsageError
from sandi.formats.age import (
    MLKEM768X25519_TYPE,
    AgeError,
    DecryptReader,
    EncryptWriter,
    MLKEM768X25519Identity,
    MLKEM768X25519Recipient,
    ScryptRecipient,
    Stanza,
    X25519Identity,
    bech32,
    decrypt,
    encrypt,
    is_post_quantum,
    mixes_classical,
    parse_header,
    parse_identities,
    parse_recipient,
)
from sandi.formats.age.header import encode_header

SPEC_EXAMPLE = Path(__file__).parent / "vectors" / "age-spec" / "mlkem768x25519-example.txt"
PQ = MLKEM768X25519Identity.generate()
PQ2 = MLKEM768X25519Identity.generate()
CLASSICAL = X25519Identity.generate()


def _spec_example() -> tuple[str, str]:
    lines = [ln for ln in SPEC_EXAMPLE.read_text().splitlines() if not ln.startswith("#")]
    return lines[0], lines[1]


def test_spec_example_identity_gives_spec_recipient() -> None:
    identity_text, recipient_text = _spec_example()
    identity = MLKEM768X25519Identity.from_bech32(identity_text)
    assert identity.recipient.to_bech32() == recipient_text
    assert identity.secret_bech32_unsafe() == identity_text
    assert MLKEM768X25519Recipient.from_bech32(recipient_text) == identity.recipient
    # 1216 bytes: far past BIP 173's 90 characters, which age does not apply.
    assert len(identity.recipient.public_bytes) == 1216
    assert len(recipient_text) == 1959


def test_key_encodings_and_sizes() -> None:
    text = PQ.secret_bech32_unsafe()
    assert text.startswith("AGE-SECRET-KEY-PQ-1") and text == text.upper()
    assert len(PQ.private_bytes_unsafe()) == 32
    assert PQ.recipient.to_bech32().startswith("age1pq1")
    assert MLKEM768X25519Identity.from_bech32(text).recipient == PQ.recipient
    assert parse_recipient(PQ.recipient.to_bech32()) == PQ.recipient
    assert parse_recipient(CLASSICAL.recipient.to_bech32()) == CLASSICAL.recipient


def test_secrets_stay_out_of_repr() -> None:
    secret = PQ.secret_bech32_unsafe()
    for shown in (repr(PQ), repr(PQ.recipient), str([PQ])):
        assert secret not in shown and secret.lower() not in shown
        assert PQ.private_bytes_unsafe().hex() not in shown


@pytest.mark.parametrize(
    "text",
    [
        "",
        "age1pq1",
        # an X25519 recipient is not a post-quantum one
        "age1xmwwc06ly3ee5rytxm9mflaz2u56jjj36s0mypdrwsvlul66mv4q47ryef",
    ],
)
def test_bad_recipient_strings(text: str) -> None:
    with pytest.raises(FormatError):
        MLKEM768X25519Recipient.from_bech32(text)


def test_recipient_encoding_rules() -> None:
    good = PQ.recipient.to_bech32()
    with pytest.raises(FormatError):
        MLKEM768X25519Recipient.from_bech32(good.upper())  # recipients are lowercase
    with pytest.raises(FormatError):
        MLKEM768X25519Recipient.from_bech32(good[:-1] + ("q" if good[-1] != "q" else "p"))  # checksum
    with pytest.raises(FormatError):  # one byte short
        MLKEM768X25519Recipient.from_bech32(bech32.encode("age1pq", PQ.recipient.public_bytes[:-1]))
    with pytest.raises(FormatError):
        MLKEM768X25519Recipient.from_public_bytes(b"\x00" * 1215)


def test_invalid_mlkem_key_is_refused() -> None:
    # FIPS 203's modulus check: coefficients >= q (here 0xFFF) are not a valid key.
    bad = b"\xff" * 1184 + PQ.recipient.public_bytes[1184:]
    with pytest.raises(FormatError):
        MLKEM768X25519Recipient.from_public_bytes(bad)


def test_bad_identity_strings() -> None:
    good = PQ.secret_bech32_unsafe()
    for text in (good.lower(), good[:-1] + ("Q" if good[-1] != "Q" else "P"),
                 CLASSICAL.secret_bech32_unsafe(),
                 bech32.encode("AGE-SECRET-KEY-PQ-", b"\x01" * 31, upper=True)):
        with pytest.raises(FormatError) as info:
            MLKEM768X25519Identity.from_bech32(text)
        assert good not in str(info.value)


@pytest.mark.parametrize("size", [0, 1, 65536, 200_000])
@pytest.mark.parametrize("armor", [False, True])
def test_round_trip(size: int, armor: bool) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    out = io.BytesIO()
    header = encrypt(io.BytesIO(data), out, [PQ.recipient, PQ2.recipient], armor=armor)
    stanzas = parse_header(io.BytesIO(header)).stanzas
    assert [s.type for s in stanzas] == [MLKEM768X25519_TYPE] * 2
    assert all(len(s.body) == 32 and len(s.args) == 1 and len(s.args[0]) == 1494 for s in stanzas)
    for identity in (PQ, PQ2):
        plain = io.BytesIO()
        decrypt(io.BytesIO(out.getvalue()), plain, [identity])
        assert plain.getvalue() == data
    with pytest.raises(AgeError) as info:
        decrypt(io.BytesIO(out.getvalue()), io.BytesIO(), [CLASSICAL, MLKEM768X25519Identity.generate()])
    assert info.value.kind == "no match"


def test_fresh_encapsulation_per_stanza_and_file() -> None:
    a = parse_header(io.BytesIO(encrypt(io.BytesIO(b"x"), io.BytesIO(), [PQ.recipient, PQ.recipient])))
    b = parse_header(io.BytesIO(encrypt(io.BytesIO(b"x"), io.BytesIO(), [PQ.recipient])))
    encs = [s.args[0] for s in (*a.stanzas, *b.stanzas)]
    assert len(set(encs)) == 3


def test_identity_file_with_both_key_types() -> None:
    text = (
        f"# created: 2026-12-02T00:00:00Z\n# public key: {PQ.recipient}\n{PQ.secret_bech32_unsafe()}\n"
        f"\n{CLASSICAL.secret_bech32_unsafe()}\n"
    )
    ids = parse_identities(text)
    assert isinstance(ids[0], MLKEM768X25519Identity) and ids[0].recipient == PQ.recipient
    assert isinstance(ids[1], X25519Identity)


def test_encrypting_to_mixed_recipients_is_refused() -> None:
    for others in ([CLASSICAL.recipient], [ScryptRecipient(b"pw", 1)]):
        out = io.BytesIO()
        with pytest.raises(UsageError):
            EncryptWriter(out, [PQ.recipient, *others])
        assert out.getvalue() == b""


class _RevealKey:
    """A test recipient that writes the file key in the clear, so a test can re-header."""

    def wrap(self, file_key: bytes) -> list[Stanza]:
        return [Stanza("example.org/reveal", (), file_key)]


def _mixed_file() -> bytes:
    """A file with X25519 and mlkem768x25519 stanzas, as a non-conforming encoder writes it."""
    out = io.BytesIO()
    encrypt(io.BytesIO(b"secret"), out, [_RevealKey()])
    original = parse_header(io.BytesIO(out.getvalue()))
    file_key = original.stanzas[0].body
    header = encode_header([*CLASSICAL.recipient.wrap(file_key), *PQ.recipient.wrap(file_key)], file_key)
    return header.header_bytes + out.getvalue()[len(original.header_bytes) :]


def test_opening_a_mixed_file_is_refused_by_default() -> None:
    data = _mixed_file()
    assert mixes_classical(parse_header(io.BytesIO(data)).stanzas)
    for identity in (PQ, CLASSICAL):
        with pytest.raises(AgeError) as info:
            DecryptReader(io.BytesIO(data), [identity])
        assert info.value.kind == "header"
        assert "post-quantum" in info.value.message
    # age's lenient reading, which the CCTV vector hybrid_and_x25519 pins
    reader = DecryptReader(io.BytesIO(data), [PQ], allow_mixed_post_quantum=True)
    assert reader.read() == b"secret"


def test_stanza_kind_helpers() -> None:
    pq = Stanza(MLKEM768X25519_TYPE, ("x",), b"")
    grease = Stanza("example.org/grease", (), b"")
    classical = Stanza("X25519", ("x",), b"")
    assert is_post_quantum([pq]) and not is_post_quantum([classical, grease])
    assert not mixes_classical([pq, grease])  # unknown types are not judged
    assert mixes_classical([grease, pq, classical])


@pytest.mark.parametrize(
    ("args", "body", "why"),
    [
        ((), 32, "exactly one argument"),
        (("A", "B"), 32, "exactly one argument"),
        (("A" * 1493 + "=",), 32, "canonical base64"),
        (("A" * 1492,), 32, "1120 bytes"),
        (("A" * 1494,), 33, "32 bytes"),
    ],
)
def test_malformed_stanzas_are_header_failures(args: tuple[str, ...], body: int, why: str) -> None:
    with pytest.raises(AgeError) as info:
        PQ.unwrap([Stanza(MLKEM768X25519_TYPE, args, b"\x00" * body)])
    assert info.value.kind == "header"
    assert why in info.value.message


def test_a_header_sandi_could_not_read_is_not_written() -> None:
    # 700 hybrid stanzas are about 1.1 MB of header: over the 1 MiB limit for reading.
    out = io.BytesIO()
    with pytest.raises(UsageError, match="larger than"):
        EncryptWriter(out, [PQ.recipient] * 700)
    assert out.getvalue() == b""


def test_bench_pq_smoke(tmp_path: Path) -> None:
    """A short pass of bench/bench_pq.py (the figures are the script's; this keeps it working)."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parent.parent / "bench" / "bench_pq.py"
    done = subprocess.run([sys.executable, str(script), "--small", "100", "--large", "200K", "--recipients", "1,3",
                           "--repeat", "1", "--dir", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split() for line in done.stdout.splitlines() if "x25519" in line]
    assert len(rows) == 8  # 2 sizes x 2 counts x 2 kinds
    assert sorted(w for row in rows for w in row if w.endswith("x25519")) == ["mlkem768x25519"] * 4 + ["x25519"] * 4
