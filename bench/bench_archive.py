"""Benchmark: the archive of retired certificates (issue 20, ADR 0019) — directory and
index size with every agency's retired certificate in its entry (before) and in the
archive (sandi), side by side.

    .venv/bin/python bench/bench_archive.py [--agencies 10000]

A fresh authority (``sandi init``) is filled to N agencies by bench_provision's fast path
(each synthetic agency gets copies of a real signing and encryption certificate under
its own serials and key fingerprints), then every agency gets one *retired* signing
certificate (what a key rotation leaves behind) and the directory is republished through
the library: that is sandi's directory.json, directory.index and directory-archive.json.
The baseline is the same publication with the retired certificates put back in their
agencies' entries (what every version before the archive published): its envelope is
written with ``v2.envelope_bytes`` and its index with ``index.write_index``, the code the
workstation runs. Also timed (CPU, in-process): loading and checking the archive against
its signed head, which the first verification of an archived signature on a workstation
pays once per command.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_provision import SCALE_PASSPHRASE, fill_registry


def add_retired(home_path: Path) -> int:
    """One retired signing certificate per agency (Core inserts, marked for the leaf store)."""
    from datetime import timedelta

    from sqlalchemy import insert, select

    from sandi.home import Home
    from sandi.registry import Registry
    from sandi.registry.changes import mark_agencies
    from sandi.registry.models import AgencyRow, CertificateRow

    registry = Registry(Home(home_path).database_url())
    with registry.transaction() as session:
        template = session.scalars(select(CertificateRow).where(CertificateRow.purpose == "signing")).first()
        assert template is not None
        ids = list(session.scalars(select(AgencyRow.id)))
        session.execute(insert(CertificateRow), [
            {"serial": f"{0x7000000 + i:x}", "agency_id": agency_id, "purpose": template.purpose,
             "key_fingerprint": hashlib.sha256(f"retired/{agency_id}".encode()).hexdigest(),
             "public_key": template.public_key, "cert_pem": template.cert_pem,
             "not_before": template.not_before - timedelta(days=365),
             "not_after": template.not_after - timedelta(days=365),
             "issued_at": template.issued_at - timedelta(days=365), "state": "retired",
             "profile": template.profile}
            for i, agency_id in enumerate(ids)])
        mark_agencies(session, ids)
    registry.dispose()
    return len(ids)


def republish_home(home_path: Path) -> float:
    from sandi.authority.issuance import load_issuer
    from sandi.directory.publish import republish
    from sandi.home import Home
    from sandi.keystore import FixedPassphrase, open_keystore
    from sandi.registry import Registry

    home = Home(home_path)
    registry = Registry(home.database_url())
    issuer = load_issuer(home, open_keystore(home, FixedPassphrase(SCALE_PASSPHRASE)))
    start = time.process_time()
    republish(home, registry, issuer)
    elapsed = time.process_time() - start
    registry.dispose()
    return elapsed


def baseline(home_path: Path, work: Path) -> tuple[int, int]:
    """(directory bytes, index bytes) with the archived certificates back in their entries."""
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from sandi.directory import v2

    envelope = json.loads((home_path / "directory.json").read_bytes())
    header = json.loads(base64.b64decode(envelope["header"]))
    archive = json.loads((home_path / "directory-archive.json").read_bytes())
    by_code: dict[str, list[dict[str, object]]] = {}
    for leaf in archive["leaves"]:
        by_code.setdefault(leaf["code"], []).append(leaf["certificate"])
    agencies = [{**a, "certificates": sorted(a["certificates"] + by_code.get(a["code"], []),
                                             key=lambda c: (c["not_before"], c["serial"]))}
                for a in envelope["agencies"]]
    members = {k: v for k, v in envelope["members"].items() if k != "archive"}

    raw_header = v2.header_bytes(
        version=header["version"], issued_at=_when(header["issued_at"]),
        expires_at=_when(header["expires_at"]),
        province=header["province"], root_certificate=header["root_certificate"], agencies=agencies,
        policies=envelope["policies"], members=members, audit_checkpoint=header["audit_checkpoint"])
    # a throwaway key: the signature has the root's length, the file its size
    signature = Ed25519PrivateKey.generate().sign(v2.SIGNING_CONTEXT + raw_header)
    data = v2.envelope_bytes(raw_header, signature, agencies, envelope["policies"], members)
    return len(data), index_size(data, work / "before.index")


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def index_size(data: bytes, path: Path) -> int:
    """The size of ``directory.index`` freshly built for the envelope ``data`` (the
    authority's own may carry free pages from deltas applied in place)."""
    from sandi.directory import v2
    from sandi.directory.index import write_index

    decoded = v2.decode_envelope(json.loads(data))
    checked = v2.check_body(v2.parse_header(decoded.header), decoded)
    write_index(path, decoded, checked, v2.sha256_hex(data), "bench")
    return path.stat().st_size


def archive_load_cpu(home_path: Path) -> float:
    from sandi.directory.archive import load_archive
    from sandi.directory.snapshot import _archive_head

    envelope = json.loads((home_path / "directory.json").read_bytes())
    head = _archive_head(envelope["members"]["archive"])
    assert head is not None
    data = (home_path / "directory-archive.json").read_bytes()
    start = time.process_time()
    load_archive(data, head)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agencies", type=int, default=10000)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDI_")}
    env.update({"SANDI_PASSPHRASE": SCALE_PASSPHRASE, "SANDI_SCRYPT_WORK_FACTOR": "10",
                "SANDI_OPERATOR": "bench", "SANDI_LANG": "en"})
    os.environ.update(env)
    with tempfile.TemporaryDirectory(prefix="sandi-bench-archive-") as tmp:
        work = Path(tmp)
        home = work / "authority"
        subprocess.run([sys.executable, "-m", "sandi", "--home", str(home), "init", "--province",
                        "Provinsi Banten"], env=env, cwd=tmp, check=True, capture_output=True)
        fill_registry(home, args.agencies)
        current_only = (home / "directory.json").stat().st_size
        retired = add_retired(home)
        cpu = republish_home(home)
        after_dir = (home / "directory.json").stat().st_size
        after_index = index_size((home / "directory.json").read_bytes(), work / "after.index")
        archive = (home / "directory-archive.json").stat().st_size
        before_dir, before_index = baseline(home, work)
        load = archive_load_cpu(home)
    mb = 1e6
    print(f"{args.agencies:,} agencies, {retired:,} retired signing certificates (one each); "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'':<34}{'before (in entries)':>20}{'sandi (archive)':>18}")
    print(f"{'directory.json':<34}{before_dir / mb:>18.1f}MB{after_dir / mb:>16.1f}MB")
    print(f"{'directory.index':<34}{before_index / mb:>18.1f}MB{after_index / mb:>16.1f}MB")
    print(f"{'directory-archive.json (apart)':<34}{'-':>20}{archive / mb:>16.1f}MB")
    print(f"directory.json before the retired certificates were added: {current_only / mb:.1f} MB")
    print(f"republish that moved {retired:,} certificates: {cpu:.2f} s CPU; loading + checking the archive "
          f"against its signed head: {load:.3f} s CPU")


if __name__ == "__main__":
    main()
