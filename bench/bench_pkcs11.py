"""Benchmark: Ed25519 signing on a PKCS#11 token (SoftHSM2) beside the file key store.

One run initialises a throwaway SoftHSM2 token (its own folder through SOFTHSM2_CONF),
then, in this process, through sandi's key stores:

* raw signatures/s: ``KeyStore.signer(ref).sign(64 bytes)`` with a key on the token
  (every signature a ``C_SignInit`` + ``C_Sign`` through python-pkcs11) against the same
  with a key read from the encrypted file store (a ``SigningKey`` in memory);
* certificates/s: an end-entity certificate signed by a root on the token against a
  root from the file store (what ``keys issue`` does twice per agency);
* the one-off costs: opening the token session and logging in, reading the key from
  the file store (one scrypt at work factor 18, the default, then one age decryption).

Every signature is checked with an independent Ed25519 verifier (``cryptography``).

Usage:
  python bench/bench_pkcs11.py [--signatures 5000] [--certificates 300]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so")


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:10.0f}/s  ({seconds * 1e6 / count:7.1f} µs each)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signatures", type=int, default=5000)
    parser.add_argument("--certificates", type=int, default=300)
    args = parser.parse_args()
    module = next((m for m in MODULES if os.path.isfile(m)), None)
    if module is None or shutil.which("softhsm2-util") is None:
        print("SoftHSM2 is not installed (scripts/install-tools.sh installs it)", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="sandi-bench-pkcs11-"))
    try:
        (work / "tokens").mkdir()
        conf = work / "softhsm2.conf"
        conf.write_text(f"directories.tokendir = {work / 'tokens'}\nobjectstore.backend = file\n")
        os.environ["SOFTHSM2_CONF"] = str(conf)
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "bench", "--pin", "123456",
                        "--so-pin", "12345678"], check=True, capture_output=True)
        run(work, module, args.signatures, args.certificates)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def run(work: Path, module: str, signatures: int, certificates: int) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.x509.oid import NameOID

    from sandi.keystore import FixedPassphrase
    from sandi.keystore.filestore import DEFAULT_WORK_FACTOR, FileKeyStore, forget_unlocked
    from sandi.keystore.pkcs11 import Pkcs11KeyStore, Pkcs11Uri, TokenConfig

    passphrase = FixedPassphrase("bench-passphrase")
    file_store = FileKeyStore.create(work / "file-keys", passphrase, work_factor=DEFAULT_WORK_FACTOR)
    file_ref, _ = file_store.new_signing_key("root")
    forget_unlocked()
    t = time.perf_counter()
    file_signer = FileKeyStore(work / "file-keys", passphrase).signer(file_ref)
    file_open = time.perf_counter() - t

    fallback = FileKeyStore.create(work / "token-keys", passphrase, work_factor=10)
    config = TokenConfig(module, Pkcs11Uri.parse("pkcs11:token=bench"))
    token_store = Pkcs11KeyStore.create(work / "token-keys", fallback, config, FixedPassphrase("123456"))
    token_ref, _ = token_store.new_signing_key("root", on_token=True)
    token_store.close()
    t = time.perf_counter()
    reopened = Pkcs11KeyStore(work / "token-keys", fallback, config, FixedPassphrase("123456"))
    token_signer = reopened.signer(token_ref)
    token_open = time.perf_counter() - t

    message = os.urandom(64)
    print(f"SoftHSM2 module {module}; {signatures} signatures of 64 bytes, {certificates} certificates\n")
    print(f"open and unlock   file store (scrypt 2^{DEFAULT_WORK_FACTOR}) {file_open * 1000:8.1f} ms   "
          f"token (session + login + find key) {token_open * 1000:8.1f} ms")
    results = {}
    for name, signer in (("file store", file_signer), ("token", token_signer)):
        public = Ed25519PublicKey.from_public_bytes(signer.public_key_bytes())
        public.verify(signer.sign(message), message)
        t = time.perf_counter()
        for _ in range(signatures):
            signer.sign(message)
        results[name] = time.perf_counter() - t
        print(f"signatures        {name:<11} {rate(signatures, results[name])}")
    print(f"                  token / file store time: {results['token'] / results['file store']:.1f}x")

    leaf = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "BENCH signing")])
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench root")])
    now = datetime.now(UTC)
    for name, signer in (("file store", file_signer), ("token", token_signer)):
        t = time.perf_counter()
        for _ in range(certificates):
            cert = signer.sign_x509(
                x509.CertificateBuilder().subject_name(leaf).issuer_name(root_name)
                .public_key(signer.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now).not_valid_after(now + timedelta(days=365)))
        cert.verify_directly_issued_by(signer.sign_x509(
            x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
            .public_key(signer.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + timedelta(days=1))))
        print(f"certificates      {name:<11} {rate(certificates, time.perf_counter() - t)}")
    reopened.close()


if __name__ == "__main__":
    sys.exit(main())
