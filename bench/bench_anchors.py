"""What the anchors of ADR 0010 cost: reading the directory, publishing, verifying.

    .venv/bin/python bench/bench_anchors.py [--agencies 600] [--entries 20000] [--repeat 20]

Figures, each beside its baseline:

* reading the installed directory (``installed_snapshot``: parse, verify the root's
  signature, freshness, and now the comparison with ``directory.anchor.json``) against
  the same read without the anchor check (``load_installed``), for a synthetic
  directory of ``--agencies`` agencies with four certificates each;
* a registry checkpoint and the anchor raise that every publication now makes;
* ``verify_journal`` of ``--entries`` entries with the home's anchor as a witness,
  against the same verify without it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sandi.audit.anchor import raise_anchor, read_anchor
from sandi.audit.events import AuditEvent
from sandi.audit.journal import Journal
from sandi.audit.verify import verify_journal
from sandi.directory.local import import_snapshot, installed_snapshot
from sandi.directory.snapshot import (
    AgencyEntry,
    CertEntry,
    DirectorySnapshot,
    cert_fingerprint,
    load_installed,
    sign_snapshot,
)
from sandi.home import Home, HomeConfig


class _Root:
    """An Ed25519 root: signs directories and checkpoints, and has a certificate."""

    def __init__(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding
        from cryptography.x509.oid import NameOID

        self.key = Ed25519PrivateKey.generate()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bench Root")])
        now = datetime.now(UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self.key.public_key()).serial_number(1)
                .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
                .sign(self.key, None))
        self.pem = cert.public_bytes(Encoding.PEM).decode()

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data)

    def public_key_bytes(self) -> bytes:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        return self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _timed(fn: Callable[[], object], repeat: int) -> float:
    """Median milliseconds of ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agencies", type=int, default=600)
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    key = _Root()
    root_pem = key.pem
    now = datetime.now(UTC)
    pem_like = root_pem  # certificates are parsed lazily: any PEM text makes the size
    agencies = tuple(
        AgencyEntry(code=f"AG{i:04d}", name=f"Agency {i}", kind="dinas", status="active",
                    certificates=tuple(
                        CertEntry(serial=f"{i:04x}{j:02x}" * 4, purpose="signing" if j % 2 else "encryption",
                                  state="current", key_fingerprint=f"{i:060d}{j:04d}",
                                  not_before=now - timedelta(days=1), not_after=now + timedelta(days=300),
                                  pem=pem_like)
                        for j in range(4)))
        for i in range(args.agencies))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        home = Home(folder / "home")
        home.create(HomeConfig(role="workstation", province="Bench", agency="AG0000",
                               root_fingerprint=cert_fingerprint(root_pem)))
        source = folder / "directory.json"
        snapshot = DirectorySnapshot(version=1, issued_at=now, expires_at=now + timedelta(days=7),
                                     province="Bench", root_cert_pem=root_pem, agencies=agencies)
        source.write_bytes(sign_snapshot(snapshot, key))
        import_snapshot(home, source)
        size = home.directory_path.stat().st_size
        fp = cert_fingerprint(root_pem)
        base = _timed(lambda: load_installed(home.directory_path, fp, datetime.now(UTC)), args.repeat)
        anchored = _timed(lambda: installed_snapshot(home), args.repeat)
        print(f"directory read, {args.agencies} agencies, {size / 1e6:.1f} MB: "
              f"{anchored:.1f} ms with the anchor check, {base:.1f} ms without "
              f"(+{anchored - base:.1f} ms, {100 * (anchored - base) / base:.0f} %)")

        journal = Journal(folder / "audit.journal")
        for i in range(args.entries):
            journal.append(AuditEvent("operator", "document.seal", f"surat-{i}.pdf"))
        checkpoint = journal.checkpoint(key)
        assert checkpoint is not None
        anchor = folder / "audit.journal.anchor"

        def checkpoint_and_anchor() -> None:
            made = journal.checkpoint(key)
            assert made is not None
            raise_anchor(anchor, "journal", made)

        cp_ms = _timed(checkpoint_and_anchor, 5)
        witness = read_anchor(anchor, "journal")
        assert witness is not None
        public = key.public_key_bytes()
        plain = _timed(lambda: verify_journal(journal, public), 3)
        with_witness = _timed(lambda: verify_journal(journal, public, witnesses=[witness]), 3)
        print(f"checkpoint + anchor raise (journal of {args.entries} entries): {cp_ms:.1f} ms")
        print(f"verify {args.entries} entries: {with_witness:.0f} ms with the anchor as witness, "
              f"{plain:.0f} ms without")


if __name__ == "__main__":
    main()
