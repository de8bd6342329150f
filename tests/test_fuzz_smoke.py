"""A short smoke pass of every fuzz target (the long runs are ``scripts/fuzz``).

Each target gets its checked-in corpus (seeds made by sandi, and ``crash-*`` inputs that
once crashed a parser) and a few hundred deterministic mutations of it; only the
parser's documented errors may come out. No atheris needed: this is the harness and
the targets themselves, so a target that rots, or a fixed crash that comes back,
fails here.
"""

from __future__ import annotations

import json

import pytest

from fuzz.harness import CORPUS, smoke_inputs
from fuzz.targets import TARGETS
from sandi.directory.snapshot import DirectorySnapshot
from sandi.errors import FormatError

MUTATIONS = 100


def test_every_target_has_seeds() -> None:
    assert {p.name for p in CORPUS.iterdir() if p.is_dir()} == set(TARGETS)
    for target in TARGETS.values():
        assert target.seeds(), target.name


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_smoke(name: str) -> None:
    target = TARGETS[name]
    for data in smoke_inputs(target, MUTATIONS):
        target.run_one(data)  # anything but the documented errors propagates and fails


def test_the_harness_lets_only_documented_errors_through() -> None:
    from fuzz.harness import Target

    def parse(data: bytes) -> None:
        if data == b"format":
            raise FormatError("bad")
        if data == b"crash":
            raise KeyError("x")

    target = Target("t", parse, (FormatError,))
    target.run_one(b"format")
    with pytest.raises(KeyError):
        target.run_one(b"crash")


def test_a_broken_certificate_in_the_directory_is_a_format_error() -> None:
    # found by fuzz/targets.py:directory_body (cryptography's ValueError escaped)
    body = (CORPUS / "directory_body" / "crash-agency-pem").read_bytes()
    snapshot = DirectorySnapshot.from_body(body)
    with pytest.raises(FormatError, match="not valid PEM"):
        snapshot.agencies[0].certificates[0].public_key_bytes()
    good = json.loads((CORPUS / "directory_body" / "seed-authority").read_bytes())
    good["root_certificate"] = "é"
    with pytest.raises(FormatError, match="not valid PEM"):
        DirectorySnapshot.from_body(json.dumps(good).encode()).root_fingerprint  # noqa: B018


def test_an_encrypted_minisign_key_with_unusable_scrypt_limits_is_a_format_error() -> None:
    # found by fuzz/targets.py:minisign_secret_key (opslimit and memlimit 0: a UsageError, exit 2)
    from sandi.formats.minisign import MinisignFormatError, decode_secret_key

    data = (CORPUS / "minisign_secret_key" / "crash-scrypt-limits-zero").read_bytes()
    with pytest.raises(MinisignFormatError, match="scrypt parameters"):
        decode_secret_key(data, b"fuzz")


def test_a_certificate_with_an_unknown_x509_version_is_a_format_error() -> None:
    # found by fuzz/targets.py:directory_body (cryptography's InvalidVersion is no ValueError)
    from sandi.authority.certs import load_pem

    body = (CORPUS / "directory_body" / "crash-x509-version").read_bytes()
    snapshot = DirectorySnapshot.from_body(body)
    with pytest.raises(FormatError, match="not valid PEM"):
        snapshot.root_fingerprint  # noqa: B018
    with pytest.raises(FormatError, match=r"not a PEM X\.509 certificate"):
        load_pem(snapshot.root_cert_pem)


def test_a_certificate_with_a_malformed_extension_is_a_format_error() -> None:
    # found by fuzz/targets.py:directory_body (cryptography parses extensions on first use)
    body = (CORPUS / "directory_body" / "crash-x509-extension-length").read_bytes()
    snapshot = DirectorySnapshot.from_body(body)
    refused = 0
    for agency in snapshot.agencies:
        for cert in agency.certificates:
            try:
                cert.public_key_bytes()
            except FormatError:
                refused += 1
    assert refused  # the damaged ones, and nothing but FormatError


def test_a_certificate_with_an_odd_name_attribute_is_a_format_error() -> None:
    # found by fuzz/targets.py:directory_body (cryptography raised TypeError reading the issuer)
    body = (CORPUS / "directory_body" / "crash-x509-name-type").read_bytes()
    snapshot = DirectorySnapshot.from_body(body)
    refused = 0
    for agency in snapshot.agencies:
        for cert in agency.certificates:
            try:
                cert.public_key_bytes()
            except FormatError:
                refused += 1
    assert refused


def test_a_root_certificate_with_a_duplicate_extension_is_a_format_error() -> None:
    # found by fuzz/targets.py:directory_body (cryptography's DuplicateExtension is no ValueError);
    # parse_envelope computes this fingerprint before it checks the signature
    body = (CORPUS / "directory_body" / "crash-x509-duplicate-extension").read_bytes()
    with pytest.raises(FormatError, match="not valid PEM"):
        DirectorySnapshot.from_body(body).root_fingerprint  # noqa: B018
