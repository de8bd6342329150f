"""age v1 conformance: every C2SP/CCTV vector, outcome and released-plaintext hash.

Each vector is run twice, with armor given explicitly (as the vector says) and with
armor auto-detected; both must give the expected outcome and, where the vector has a
``payload`` hash, exactly the expected released plaintext (failures included). None is
skipped: the hybrid post-quantum (``mlkem768x25519``) vectors run like the others.

sandi's one deliberate difference: by default it refuses a header that mixes
post-quantum and classical recipients (age.md lets an identity refuse them). The
vectors are checked in age's lenient mode, and again in the default mode, where only
the mixed ones change outcome, to a header failure.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sandi.formats.age import (
    AgeError,
    ArmorReader,
    ArmorWriter,
    DecryptReader,
    Identity,
    ScryptIdentity,
    X25519Identity,
    encode_stanza,
    marshal_header,
    mixes_classical,
    parse_header,
    parse_identity,
)
from sandi.formats.age.header import encode_header

VECTOR_DIR = Path(__file__).parent / "vectors" / "age"
OUTCOME = {
    "armor": "armor failure",
    "header": "header failure",
    "no match": "no match",
    "hmac": "HMAC failure",
    "payload": "payload failure",
}


@dataclass
class Vector:
    name: str
    expect: str
    payload: str | None
    file_key: bytes | None
    identities: list[str] = field(default_factory=list)
    passphrases: list[str] = field(default_factory=list)
    armored: bool = False
    data: bytes = b""

    @property
    def needs_pq(self) -> bool:
        return any(i.startswith("AGE-SECRET-KEY-PQ-") for i in self.identities)

    def make_identities(self) -> list[Identity]:
        ids: list[Identity] = [parse_identity(i) for i in self.identities]
        ids += [ScryptIdentity(p.encode()) for p in self.passphrases]
        # A vector without any identity (e.g. armor_empty) fails before one is needed;
        # an unrelated identity keeps the API's "at least one identity" rule satisfied.
        return ids or [X25519Identity.generate()]


def load(path: Path) -> Vector:
    raw = path.read_bytes()
    head, _, body = raw.partition(b"\n\n")
    v = Vector(path.name, "", None, None)
    compressed = False
    for line in head.decode().splitlines():
        key, _, value = line.partition(": ")
        if key == "expect":
            v.expect = value
        elif key == "payload":
            v.payload = value
        elif key == "file key":
            v.file_key = bytes.fromhex(value)
        elif key == "identity":
            v.identities.append(value)
        elif key == "passphrase":
            v.passphrases.append(value)
        elif key == "armored":
            v.armored = value == "yes"
        elif key == "compressed":
            assert value == "zlib"
            compressed = True
        elif key != "comment":
            raise AssertionError(f"unknown vector key {key!r}")
    v.data = zlib.decompress(body) if compressed else body
    return v


VECTORS = [load(p) for p in sorted(VECTOR_DIR.iterdir()) if p.name not in {"README.md", "LICENSE"}]


def run(v: Vector, armor: bool | None, *, allow_mixed: bool = True) -> tuple[str, bytes]:
    out = io.BytesIO()
    try:
        reader = DecryptReader(
            io.BytesIO(v.data), v.make_identities(), armor=armor, allow_mixed_post_quantum=allow_mixed
        )
        for chunk in reader.chunks():
            out.write(chunk)
    except AgeError as exc:
        return OUTCOME[exc.kind], out.getvalue()
    return "success", out.getvalue()


def test_vector_set_is_complete() -> None:
    assert len(VECTORS) == 143
    assert sum(v.needs_pq for v in VECTORS) == 19


@pytest.mark.parametrize("armor_mode", ["explicit", "auto"])
@pytest.mark.parametrize("v", VECTORS, ids=[v.name for v in VECTORS])
def test_cctv_vector(v: Vector, armor_mode: str) -> None:
    armor = v.armored if armor_mode == "explicit" else None
    outcome, released = run(v, armor)
    assert outcome == v.expect
    if v.payload is not None:
        assert hashlib.sha256(released).hexdigest() == v.payload
    if outcome != "success":
        assert v.payload is not None or released == b""


def _mixed(v: Vector) -> bool:
    try:
        return mixes_classical(parse_header(io.BytesIO(v.data), armor=v.armored).stanzas)
    except AgeError:
        return False


@pytest.mark.parametrize("v", VECTORS, ids=[v.name for v in VECTORS])
def test_cctv_vector_default_refuses_only_mixed_files(v: Vector) -> None:
    outcome, released = run(v, v.armored, allow_mixed=False)
    if _mixed(v):
        assert (outcome, released) == ("header failure", b"")
    else:
        assert outcome == v.expect


def test_mixed_vectors_are_exactly_the_expected_ones() -> None:
    # Guards the default-mode test above: only hybrid_and_x25519 mixes the two kinds.
    assert [v.name for v in VECTORS if _mixed(v)] == ["hybrid_and_x25519"]


def _binary(v: Vector) -> bytes:
    return ArmorReader(io.BytesIO(v.data)).read() if v.armored else v.data


def _header_parses(v: Vector) -> bool:
    try:
        parse_header(io.BytesIO(v.data), armor=v.armored)
    except AgeError:
        return False
    return True


PARSEABLE = [v for v in VECTORS if _header_parses(v)]


def test_parseable_header_count() -> None:
    # Guards the re-encoding test below against silently shrinking.
    assert len(PARSEABLE) == 105


@pytest.mark.parametrize("v", PARSEABLE, ids=[v.name for v in PARSEABLE])
def test_header_reencodes_byte_for_byte(v: Vector) -> None:
    header = parse_header(io.BytesIO(v.data), armor=v.armored)
    assert marshal_header(header.stanzas, header.mac) == header.header_bytes
    if v.expect != "armor failure":
        assert _binary(v).startswith(header.header_bytes)
    for stanza in header.stanzas:
        assert encode_stanza(stanza) in header.header_bytes
    if v.expect not in {"HMAC failure"} and v.file_key is not None and v.expect == "success":
        assert encode_header(header.stanzas, v.file_key).header_bytes == header.header_bytes


ARMORED_OK = [v for v in VECTORS if v.armored and v.expect not in {"armor failure"}]


@pytest.mark.parametrize("v", ARMORED_OK, ids=[v.name for v in ARMORED_OK])
def test_armor_reencodes_to_canonical_form(v: Vector) -> None:
    binary = _binary(v)
    out = io.BytesIO()
    w = ArmorWriter(out)
    w.write(binary)
    w.close()
    # The canonical form is the input without outside whitespace, LF line ends, final LF.
    canonical = v.data.strip().replace(b"\r\n", b"\n") + b"\n"
    assert out.getvalue() == canonical
