"""Regenerate the seed corpora in ``fuzz/corpus`` with sandi itself.

``python -m fuzz.make_seeds`` runs the real command line in a scratch folder (an
authority with two agencies and the Banten policy, an agency workstation that enrols)
and the library's own encoders with the fixed fuzz keys of :mod:`fuzz.targets`. Seeds
are small on purpose (libFuzzer mutates them); regression inputs for fixed crashes
live beside them as ``crash-*`` files and are never regenerated.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from . import targets as t
from .harness import CORPUS

ROOT = Path(__file__).resolve().parent.parent
SANDI = [sys.executable, "-m", "sandi"]
ENV = {**os.environ, "SANDI_PASSPHRASE": "kata sandi fuzzing",
       "SANDI_EXPORT_PASSPHRASE": "ekspor fuzzing 2026", "SANDI_LANG": "en"}


def sandi(home: Path, *args: str | Path) -> str:
    r = subprocess.run([*SANDI, "--home", str(home), *map(str, args)], env=ENV, capture_output=True,
                       text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"sandi {' '.join(map(str, args))}: {r.stderr}")
    return r.stdout


def put(target: str, name: str, data: bytes | str) -> None:
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"seed-{name}").write_bytes(data.encode() if isinstance(data, str) else data)


def clear() -> None:
    for folder in CORPUS.iterdir() if CORPUS.is_dir() else []:
        for path in folder.iterdir() if folder.is_dir() else []:
            if path.name.startswith("seed-"):
                path.unlink()


def age_seeds() -> None:
    from sandi.formats.age import ScryptRecipient, X25519Identity, encrypt
    from sandi.formats.age.codec import _chunk_nonce, _payload_key

    me = t.identity().recipient
    other = X25519Identity.from_private_bytes(bytes(32 * [7])).recipient
    for name, recipients, armor, doc in [
        ("one", [me], False, t.DOCUMENT), ("two", [other, me], False, t.DOCUMENT),
        ("empty", [me], False, b""), ("armored", [me], True, t.DOCUMENT),
        ("scrypt", [ScryptRecipient(b"fuzz", work_factor=2)], False, t.DOCUMENT),
    ]:
        out = io.BytesIO()
        encrypt(io.BytesIO(doc), out, recipients, armor=armor)
        put("age_file", name, out.getvalue())
        put("age_armor" if armor else "age_header", name, out.getvalue())
    # payloads for the fixed file key: empty, short, exactly one chunk, two chunks
    for name, size in [("empty", 0), ("short", 27), ("one-chunk", 64 * 1024), ("two-chunks", 64 * 1024 + 5)]:
        nonce = bytes(range(16))
        aead = _payload_key(t.FILE_KEY, nonce)
        doc = bytes(i % 251 for i in range(size))
        chunks = [doc[i:i + 64 * 1024] for i in range(0, len(doc), 64 * 1024)] or [b""]
        body = b"".join(aead.encrypt(_chunk_nonce(i, i == len(chunks) - 1), c, None)
                        for i, c in enumerate(chunks))
        put("age_payload", name, nonce + body)


def minisign_seeds() -> None:
    from sandi.formats.minisign import (
        Prehasher,
        encode_secret_key,
        encode_secret_key_unencrypted,
        sign_digest,
    )

    key = t.minisign_key()
    hasher = Prehasher()
    hasher.update(t.DOCUMENT)
    for name, comment in [("plain", "timestamp:1790000000"), ("sandi", 'sandi-sign/v1 {"v":1}')]:
        put("minisign_signature", name, sign_digest(key, hasher.digest(), comment, "fuzz").to_bytes())
    put("minisign_public_key", "key", key.public_key.to_text())
    put("minisign_secret_key", "unencrypted", encode_secret_key_unencrypted(key))
    encrypted = encode_secret_key(key, b"fuzz", opslimit=1 << 10, memlimit=1 << 16)
    put("minisign_secret_key", "encrypted", encrypted)


def ustar_seeds() -> None:
    from sandi.formats.ustar import UstarWriter

    sealed = [("surat.pdf", t.DOCUMENT), ("surat.pdf.minisig", b"sig\n")]
    for name, members in [("empty", []), ("sealed", sealed)]:
        out = io.BytesIO()
        writer = UstarWriter(out)
        for member, data in members:
            writer.add_member(member, data, 1_790_000_000)
        writer.finish()
        put("ustar", name, out.getvalue())


def metadata_seeds() -> None:
    from sandi.documents.metadata import KeyRef, SealMetadata, SignMetadata, encode_manifest

    sender = KeyRef(code="DISKOMINFO", key="ab" * 32, serial="0a" * 20)
    at = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)
    seal = SealMetadata(sender=sender, recipients=(KeyRef(code="BAPPEDA", key="cd" * 32),
                                                   KeyRef(code="DISKOMINFO", key="ef" * 32, copy=True)),
                        classification="R", sealed_at=at, age_header_sha256="12" * 32,
                        document_name="surat.pdf", document_size=1234, policy_id="banten-phks",
                        policy_version=1, letter={"nomor": "800/123/DISKOMINFO", "hal": "Undangan"})
    put("seal_metadata", "seal", seal.to_comment())
    sign = SignMetadata(signer=sender, signed_at=at, document_name="pengumuman.txt", document_size=12,
                        classification="B", letter={"nomor": "1"})
    put("seal_metadata", "sign", sign.to_comment())
    put("recipient_manifest", "circular", encode_manifest(seal.recipients))


def cli_seeds(scratch: Path) -> None:
    """The authority and workstation files, made by the command line."""
    from sandi.authority.bundle import open_bundle
    from sandi.keystore.base import StoredKey

    auth = scratch / "authority"
    sandi(auth, "init", "--province", "Provinsi Banten")
    for code, name in [("DISKOMINFO", "Dinas Komunikasi dan Informatika"), ("BAPPEDA", "Bappeda")]:
        sandi(auth, "agency", "add", code, "--name", name)
        sandi(auth, "keys", "issue", code)
    from sandi.directory.snapshot import DirectorySnapshot

    envelope = (auth / "directory.json").read_bytes()
    body = base64.b64decode(json.loads(envelope)["body"])

    snapshot = DirectorySnapshot.from_body(body)
    (CORPUS / "directory_envelope.root").write_text(snapshot.root_fingerprint + "\n")
    put("directory_envelope", "authority", envelope)
    put("directory_body", "authority", body)
    put("home_config", "authority", (auth / "sandi.toml").read_bytes())

    work = scratch / "workstation"
    sandi(work, "init", "--agency", "DINSOS", "--root-fingerprint", snapshot.root_fingerprint)
    put("home_config", "workstation", (work / "sandi.toml").read_bytes())
    sandi(work, "keys", "request", "DINSOS", "-o", scratch / "request.json")
    put("enrolment_request", "request", (scratch / "request.json").read_bytes())
    sandi(auth, "agency", "add", "DINSOS", "--name", "Dinas Sosial")
    sandi(auth, "keys", "certify", scratch / "request.json", "-o", scratch / "response.json")
    put("enrolment_response", "response", (scratch / "response.json").read_bytes())

    sandi(auth, "keys", "export", "BAPPEDA", "--include-private-keys", "-o", scratch / "bundle.age")
    bundle = open_bundle((scratch / "bundle.age").read_bytes(), ENV["SANDI_EXPORT_PASSPHRASE"].encode())
    # the seed keeps the bundle's shape, not its keys: the secrets are zeroed
    bundle = replace(bundle, keys=[replace(k, secret=bytes(32)) for k in bundle.keys])
    put("key_bundle", "bappeda", bundle.encode())
    for k in bundle.keys[:2]:
        put("key_record", k.purpose, StoredKey("DISKOMINFO.signing.0000", k.purpose if k.purpose in (
            "signing", "encryption") else "signing", k.public_fingerprint, bytes(32)).encode())

    sandi(auth, "audit", "export", scratch / "audit.jsonl")
    export = (scratch / "audit.jsonl").read_bytes()
    lines = export.splitlines(keepends=True)
    put("audit_export", "authority", b"".join(lines[:6]))
    for i, line in enumerate(lines[1:4]):
        put("audit_journal_line", f"line{i}", line)



def policy_seeds() -> None:
    put("policy_toml", "banten", (ROOT / "policies" / "banten.toml").read_bytes())
    for path in sorted((ROOT / "tests" / "policy_corpus").rglob("*.toml")):
        put("policy_toml", path.stem, path.read_bytes())
    from sandi.policy import CompiledPolicy, parse_policy
    from sandi.policy.compiled import dump_compiled

    for path in [ROOT / "policies" / "banten.toml",
                 *sorted((ROOT / "tests" / "policy_corpus" / "good").glob("*.toml"))]:
        source = path.read_bytes()
        compiled = dump_compiled(CompiledPolicy(parse_policy(source)), hashlib.sha256(source).hexdigest())
        put("compiled_policy", path.stem, compiled)


def main() -> None:
    clear()
    age_seeds()
    minisign_seeds()
    ustar_seeds()
    metadata_seeds()
    policy_seeds()
    with tempfile.TemporaryDirectory(prefix="sandi-seeds-") as scratch:
        cli_seeds(Path(scratch))
    for folder in sorted(p for p in CORPUS.iterdir() if p.is_dir()):
        print(f"{folder.name}: {len(list(folder.iterdir()))} files")


if __name__ == "__main__":
    main()
