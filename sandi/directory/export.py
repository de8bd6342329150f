"""Public key material of any agency, from a workstation's verified directory.

A workstation has no registry, but its installed directory is signed by the root and
carries every agency's certificates: ``keys export CODE --public`` there writes the same
files an authority writes (certificates, age recipient, and the ``age1pq1`` one where the
agency has a hybrid key, minisign public key, root), so
``minisign -V -p CODE.minisign.pub`` works on any desk.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sandi.authority.export import public_files, write_public_files
from sandi.directory.trust import current_signing_cert, encryption_certs, has_post_quantum_key

if TYPE_CHECKING:
    from pathlib import Path

    from sandi.directory.snapshot import DirectorySnapshot


def export_public_from_directory(
    snapshot: DirectorySnapshot, code: str, outdir: Path, *, now: datetime | None = None
) -> list[str]:
    """Write the agency's current public files into ``outdir`` (all or none)."""
    now = now or datetime.now(UTC)
    signing = current_signing_cert(snapshot, code, now)
    encryption = max(encryption_certs(snapshot, code, now), key=lambda c: c.not_before)
    files = public_files(
        code,
        signing_pem=signing.pem,
        signing_public=signing.public_key_bytes(),
        encryption_pem=encryption.pem,
        encryption_public=encryption.public_key_bytes(),
        root_pem=snapshot.root_cert_pem,
    )
    if has_post_quantum_key(snapshot, code, now):
        from sandi.formats.age import MLKEM768X25519Recipient

        hybrid = encryption_certs(snapshot, code, now, post_quantum=True)[0]
        files[f"{code}.encryption-pq.pem"] = hybrid.pem
        files[f"{code}.age-pq.txt"] = MLKEM768X25519Recipient.from_public_bytes(
            hybrid.public_key_bytes()).to_bech32() + "\n"
    return write_public_files(outdir, files)
