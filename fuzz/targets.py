"""One fuzz target per parser of untrusted input, and the errors each may raise.

Keys are fixed (derived from constant bytes), so the seeds in ``fuzz/corpus`` (made
by ``fuzz/make_seeds.py`` with sandi itself) stay valid inputs that reach the deep
checks: signatures verify, the age header MAC holds for the payload target, the
directory names the root whose fingerprint is in ``corpus/directory_envelope.root``.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from functools import cache
from pathlib import Path

from sandi.errors import (
    AuditError,
    ConfigError,
    CredentialError,
    FormatError,
    PolicyError,
    VerificationError,
)
from sandi.formats.age import AgeError

from .harness import CORPUS, Target

#: the payload target's file key, and the identity all age seeds are encrypted to
FILE_KEY = hashlib.sha256(b"sandi fuzz file key").digest()[:16]
IDENTITY_SEED = hashlib.sha256(b"sandi fuzz age identity").digest()
MINISIGN_SEED = hashlib.sha256(b"sandi fuzz minisign key").digest()
DOCUMENT = b"Surat dinas untuk fuzzing.\n"


@cache
def identity():  # type: ignore[no-untyped-def]
    from sandi.formats.age import X25519Identity

    return X25519Identity.from_private_bytes(IDENTITY_SEED)


@cache
def minisign_key():  # type: ignore[no-untyped-def]
    from sandi.formats.minisign import MinisignSecretKey

    return MinisignSecretKey(MINISIGN_SEED)


@cache
def payload_header() -> bytes:
    from sandi.formats.age.header import encode_header

    return encode_header(identity().recipient.wrap(FILE_KEY), FILE_KEY).header_bytes


@cache
def directory_root() -> str:
    path = CORPUS / "directory_envelope.root"
    return path.read_text().strip() if path.exists() else "00" * 32


# -- the parsers ---------------------------------------------------------------------------------


def age_header(data: bytes) -> None:
    from sandi.formats.age import parse_header

    parse_header(io.BytesIO(data))


def age_armor(data: bytes) -> None:
    from sandi.formats.age import ArmorReader

    reader = ArmorReader(io.BytesIO(data))
    while reader.read(4096):
        pass


def age_payload(data: bytes) -> None:
    """The STREAM payload (nonce and chunks) after a valid header for :data:`FILE_KEY`."""
    from sandi.formats.age import DecryptReader

    reader = DecryptReader(io.BytesIO(payload_header() + data), [identity()], armor=False)
    for _chunk in reader.chunks():
        pass


def age_file(data: bytes) -> None:
    """A whole age file, armored or not, decrypted with the fixed identity."""
    from sandi.formats.age import DecryptReader

    reader = DecryptReader(io.BytesIO(data), [identity()], max_work_factor=10)
    for _chunk in reader.chunks():
        pass


def minisign_signature(data: bytes) -> None:
    from sandi.formats.minisign import MinisignSignature, Prehasher, verify_digest

    signature = MinisignSignature.from_text(data)
    hasher = Prehasher()
    hasher.update(DOCUMENT)
    verify_digest(minisign_key().public_key, signature, hasher.digest())


def minisign_public_key(data: bytes) -> None:
    from sandi.formats.minisign import MinisignPublicKey

    MinisignPublicKey.from_text(data).to_text()


def minisign_secret_key(data: bytes) -> None:
    from sandi.formats.minisign import decode_secret_key

    # scrypt limits far below the defaults: a key asking for more is refused before any work
    decode_secret_key(data, b"fuzz", max_opslimit=1 << 10, max_memlimit=1 << 16)


def ustar(data: bytes) -> None:
    from sandi.formats.ustar import UstarReader

    for member in UstarReader(io.BytesIO(data), max_members=4, max_member_size=1 << 16):
        while member.stream.read(4096):
            pass


def seal_metadata(data: bytes) -> None:
    from sandi.documents.metadata import SealMetadata, SignMetadata

    text = data.decode("utf-8", "replace")
    if text.startswith("sandi-sign/v1 "):
        SignMetadata.from_comment(text)
    else:
        SealMetadata.from_comment(text).summary()


#: the trusted comment around a fuzzed manifest: its hash is the input's, so the parser runs
_MANIFEST_COMMENT = (
    'sandi-seal/v1 {{"age_header_sha256":"{h}","class":"B","document":{{"name":"edaran.pdf","size":1}},'
    '"letter":{{}},"policy":null,"recipients_manifest":{{"count":2,"sha256":"{m}"}},"sealed_at":'
    '"2026-12-02T00:00:00.000000Z","sender":{{"code":"DISKOMINFO","key":"{h}","serial":"0a"}},"v":1}}'
)


def recipient_manifest(data: bytes) -> None:
    """A circular's ``sandi-recipients.json`` member, named by a comment carrying its hash."""
    from sandi.documents.metadata import SealMetadata

    comment = _MANIFEST_COMMENT.format(h="12" * 32, m=hashlib.sha256(data).hexdigest())
    SealMetadata.from_comment(comment, data).summary()


def directory_envelope(data: bytes) -> None:
    from sandi.directory.snapshot import parse_envelope

    snapshot = parse_envelope(data, directory_root())
    for agency in snapshot.agencies:
        for cert in agency.certificates:
            cert.public_key_bytes()


def directory_body(data: bytes) -> None:
    from sandi.directory.snapshot import DirectorySnapshot

    snapshot = DirectorySnapshot.from_body(data)
    snapshot.root_fingerprint  # noqa: B018 - parses the root certificate
    for agency in snapshot.agencies:
        for cert in agency.certificates:
            cert.public_key_bytes()


def enrolment_request(data: bytes) -> None:
    from sandi.authority.enrolment import parse_request

    parse_request(data)


def enrolment_response(data: bytes) -> None:
    from sandi.authority.enrolment import import_response
    from sandi.home import Home
    from sandi.keystore.memory import MemoryKeyStore

    # parsed in full before the (missing) home is read: a well-formed response ends in ConfigError
    import_response(Home(Path(_scratch()) / "no-home"), MemoryKeyStore(), data)


def key_bundle(data: bytes) -> None:
    from sandi.authority.bundle import KeyBundle

    KeyBundle.decode(data)


def key_record(data: bytes) -> None:
    from sandi.keystore.base import StoredKey

    StoredKey.decode(data, expected_ref="DISKOMINFO.signing.0000")


def policy_toml(data: bytes) -> None:
    from sandi.policy import parse_policy

    parse_policy(data, source="fuzz.toml")


def compiled_policy(data: bytes) -> None:
    """The compiled policy a directory carries: load it, then ask what decisions ask
    (every line a decision can reach is decoded on the way)."""
    from datetime import UTC, datetime

    from sandi.policy.compiled import load_compiled

    policy = load_compiled(data)
    names = [*list(policy._principals)[:12], "*", "NOBODY"]
    at = datetime(2026, 6, 1, tzinfo=UTC)
    for sender in names:
        for recipient in names:
            policy.matching_rules(sender, recipient)
            policy.ceiling(sender, recipient, at)
            for level in policy._codes[:4]:
                policy.decide(sender, recipient, level, at)


def home_config(data: bytes) -> None:
    from sandi.home import HomeConfig

    HomeConfig.from_toml(data, source="sandi.toml")


def audit_export(data: bytes) -> None:
    from sandi.audit.export import ExportFile

    path = Path(_scratch()) / "export.jsonl"
    path.write_bytes(data)
    export = ExportFile(path)
    export.checkpoints()
    for _entry in export.entries():
        pass


def audit_journal_line(data: bytes) -> None:
    from sandi.audit.journal import parse_line

    parse_line(data, "journal line 1")


@cache
def _scratch() -> str:
    # on tmpfs when there is one: the audit export target writes a file per input
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    return tempfile.mkdtemp(prefix="sandi-fuzz-", dir=base)


_AGE = (AgeError,)
TARGETS: dict[str, Target] = {t.name: t for t in [
    Target("age_header", age_header, _AGE),
    Target("age_armor", age_armor, _AGE),
    Target("age_payload", age_payload, _AGE),
    Target("age_file", age_file, _AGE),
    Target("minisign_signature", minisign_signature, (FormatError, VerificationError)),
    Target("minisign_public_key", minisign_public_key, (FormatError,)),
    Target("minisign_secret_key", minisign_secret_key, (FormatError, CredentialError)),
    Target("ustar", ustar, (FormatError,)),
    Target("seal_metadata", seal_metadata, (VerificationError,)),
    Target("recipient_manifest", recipient_manifest, (VerificationError,)),
    Target("directory_envelope", directory_envelope, (FormatError, VerificationError)),
    Target("directory_body", directory_body, (FormatError, VerificationError)),
    Target("enrolment_request", enrolment_request, (FormatError, VerificationError)),
    Target("enrolment_response", enrolment_response, (FormatError, ConfigError)),
    Target("key_bundle", key_bundle, (FormatError,)),
    Target("key_record", key_record, (FormatError, CredentialError)),
    Target("policy_toml", policy_toml, (PolicyError,)),
    Target("compiled_policy", compiled_policy, (FormatError,)),
    Target("home_config", home_config, (ConfigError,)),
    Target("audit_export", audit_export, (FormatError, AuditError, VerificationError)),
    Target("audit_journal_line", audit_journal_line, (AuditError,)),
]}
