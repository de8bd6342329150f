"""Every JSON/TOML parser turns every malformed input into its own error (issue 13, item 4).

One row per parser and per attack: nesting deeper than Python's recursion limit, an
integer of 5,000 digits, one byte over the size limit, invalid UTF-8 (a lone surrogate
where the parser takes text). Each must raise the parser's documented error type;
before the bounded loader, deep nesting ended in ``RecursionError`` and a huge TOML
integer in ``ValueError``. A few rows go through the command line: the exit code, the
message, and for ``open``/``verify`` the ``verify.fail`` audit entry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandi.audit.export import ExportFile
from sandi.audit.journal import MAX_LINE, parse_line
from sandi.authority.agencies import MAX_POLICY_BYTES, entities_from_policy
from sandi.authority.bundle import MAX_BUNDLE_BYTES, KeyBundle
from sandi.authority.enrolment import MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, import_response, parse_request
from sandi.authority.profiles import MAX_PROFILE_BYTES, parse_profile
from sandi.directory.snapshot import MAX_DIRECTORY_BYTES, DirectorySnapshot, parse_envelope
from sandi.documents.metadata import MAX_METADATA_BYTES, SEAL_PREFIX, SealMetadata
from sandi.errors import (
    AuditError,
    ConfigError,
    FormatError,
    PolicyError,
    SandiError,
    UsageError,
    VerificationError,
)
from sandi.formats.bounded import DEFAULT_MAX_DEPTH, load_json, load_toml
from sandi.home import MAX_CONFIG_BYTES, Home
from sandi.keystore.base import MAX_RECORD_BYTES, StoredKey
from sandi.keystore.memory import MemoryKeyStore
from sandi.policy import parse_policy
from sandi.policy.loader import MAX_SOURCE_BYTES
from tests import authority_fixtures as fx
from tests.authority_fixtures import BANTEN_POLICY as BANTEN
from tests.authority_fixtures import AuthorityHome

authority_template = fx.authority_template
authority = fx.authority

DEEP = 20_000  # far past Python's recursion limit (1,000)
HUGE_INT = "1" * 5000  # past Python's int-string conversion limit (4,300 digits)


def json_attacks(limit: int, *, text: bool = False) -> dict[str, bytes | str]:
    deep = min(DEEP, limit - 64)
    attacks: dict[str, bytes | str] = {
        "deep-nesting": '{"format": ' + "[" * deep,
        "deep-objects": '{"a":' * (deep // 5),
        "huge-int": '{"format": ' + HUGE_INT + "}",
        "too-large": '{"format": "' + "x" * limit + '"}',
        "bad-utf8": b'{"format": "\xff\xfe"}',
        "lone-surrogate": '{"format": "\\ud800"}',
        "nan": '{"format": NaN}',
        "duplicate-key": '{"format": 1, "format": 2}',
    }
    if text:
        del attacks["bad-utf8"]
    return {k: (v if text or isinstance(v, bytes) else v.encode()) for k, v in attacks.items()}


def toml_attacks(limit: int, *, text: bool = False) -> dict[str, bytes | str]:
    deep = min(DEEP, limit - 64)
    attacks: dict[str, bytes | str] = {
        "deep-arrays": "format = " + "[" * deep,
        "deep-inline-tables": "format = " + "{a = " * (deep // 5),
        "deep-dotted-keys": ".".join(["a"] * 200) + " = 1\n",
        "huge-int": "format = " + HUGE_INT + "\n",
        "int-over-64-bits": "format = 9223372036854775808\n",
        "too-large": 'format = "' + "x" * limit + '"\n',
        "bad-utf8": b'format = "\xff\xfe"\n',
    }
    if text:
        del attacks["bad-utf8"]
    return {k: (v if text or isinstance(v, bytes) else v.encode()) for k, v in attacks.items()}


def _response(data: bytes, tmp: Path) -> None:
    import_response(Home(tmp), MemoryKeyStore(), data)


def _export(data: bytes, tmp: Path) -> None:
    path = tmp / "audit.export"
    path.write_bytes(data + b"\n")
    ExportFile(path)


def _agencies(data: bytes, tmp: Path) -> None:
    path = tmp / "agencies.toml"
    path.write_bytes(data)
    entities_from_policy(path)


def _home_config(data: bytes, tmp: Path) -> None:
    (tmp / "sandi.toml").write_bytes(data)
    Home(tmp).load_config()


Feed = Callable[[Any, Path], object]
# parser -> (how to feed it, its error type, its attacks)
PARSERS: dict[str, tuple[Feed, type[SandiError], dict[str, bytes | str]]] = {
    "directory-envelope": (lambda d, _t: parse_envelope(d, "00" * 32), FormatError,
                           json_attacks(MAX_DIRECTORY_BYTES)),
    "directory-body": (lambda d, _t: DirectorySnapshot.from_body(d), FormatError,
                       json_attacks(MAX_DIRECTORY_BYTES)),
    "seal-metadata": (lambda d, _t: SealMetadata.from_comment(SEAL_PREFIX + d), VerificationError,
                      json_attacks(MAX_METADATA_BYTES, text=True)),
    "enrolment-request": (lambda d, _t: parse_request(d), FormatError, json_attacks(MAX_REQUEST_BYTES)),
    "enrolment-response": (_response, FormatError, json_attacks(MAX_RESPONSE_BYTES)),
    "key-bundle": (lambda d, _t: KeyBundle.decode(d), FormatError, json_attacks(MAX_BUNDLE_BYTES)),
    "key-record": (lambda d, _t: StoredKey.decode(d, expected_ref="x"), FormatError,
                   json_attacks(MAX_RECORD_BYTES)),
    "audit-journal-line": (lambda d, _t: parse_line(d, "journal"), AuditError, json_attacks(MAX_LINE)),
    "audit-export": (_export, FormatError, json_attacks(MAX_LINE)),
    "policy": (lambda d, _t: parse_policy(d), PolicyError, toml_attacks(MAX_SOURCE_BYTES)),
    "agency-list": (_agencies, PolicyError, toml_attacks(MAX_POLICY_BYTES)),
    "key-profile": (lambda d, _t: parse_profile(d, source="p.toml"), UsageError,
                    toml_attacks(MAX_PROFILE_BYTES, text=True)),
    "home-config": (_home_config, ConfigError, toml_attacks(MAX_CONFIG_BYTES)),
}

CASES = [pytest.param(parser, attack, id=f"{parser}-{attack}")
         for parser, (_f, _e, attacks) in PARSERS.items() for attack in attacks]


@pytest.mark.parametrize(("parser", "attack"), CASES)
def test_malformed_input_is_the_parsers_own_error(parser: str, attack: str, tmp_path: Path) -> None:
    feed, error, attacks = PARSERS[parser]
    with pytest.raises(error) as caught:
        feed(attacks[attack], tmp_path)
    assert "RecursionError" not in caught.value.message and caught.value.message


@pytest.mark.parametrize(("attack", "reason"), [
    ("deep-nesting", f"nested deeper than {DEFAULT_MAX_DEPTH} levels"),
    ("huge-int", "outside the 64-bit range"),
    ("too-large", "larger than 10000 bytes"),
    ("bad-utf8", "not valid UTF-8"),
    ("lone-surrogate", "lone surrogate"),
    ("nan", "NaN is not a JSON number"),
    ("duplicate-key", "'format' appears twice"),
])
def test_json_reasons(attack: str, reason: str) -> None:
    with pytest.raises(FormatError, match=reason):
        load_json(json_attacks(10_000)[attack], max_bytes=10_000, error=FormatError)


@pytest.mark.parametrize(("attack", "reason"), [
    ("deep-arrays", "nested deeper than"),
    ("deep-inline-tables", "nested deeper than"),
    ("deep-dotted-keys", "nested deeper than"),
    ("huge-int", "outside the 64-bit range"),
    ("int-over-64-bits", "outside the 64-bit range"),
    ("too-large", "larger than 10000 bytes"),
    ("bad-utf8", "not valid UTF-8"),
])
def test_toml_reasons(attack: str, reason: str) -> None:
    with pytest.raises(FormatError, match=reason):
        load_toml(toml_attacks(10_000)[attack], max_bytes=10_000, error=FormatError)


@pytest.mark.parametrize("text", [
    # brackets inside strings and comments do not count as nesting
    'a = "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["\n',
    "a = '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['\n",
    'a = """\n[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"""\n"""\n',
    "a = '''\n[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['''\n",
    "# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\na = [[1], {b = [2]}]\n",
    'a = """x""""\nb = [[[1]]]\n',
])
def test_toml_strings_and_comments_are_not_nesting(text: str) -> None:
    assert load_toml(text, max_bytes=1000, error=FormatError)["a"] is not None


def test_json_strings_are_not_nesting() -> None:
    text = json.dumps({"a": "[" * 100, "b": "\\\"[[[[" * 20, "c": [[{"d": "]]]]"}]]})
    assert load_json(text, max_bytes=10_000, error=FormatError)["c"] == [[{"d": "]]]]"}]]


# -- through the command line ------------------------------------------------------------------


def _journal(home: AuthorityHome) -> list[dict[str, Any]]:
    lines = (home.path / "audit.journal").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("type") == "entry"]


def _signed_with_comment(authority: AuthorityHome, comment: str) -> tuple[bytes, bytes]:
    """A document and a detached signature by DISKOMINFO's real key over ``comment``."""
    from sandi.formats.minisign import Prehasher, sign_digest
    from sandi.keystore import key_ref

    ws = authority.workspace()
    agency = ws.snapshot.agency("DISKOMINFO")
    cert = max((c for c in agency.certificates if c.purpose == "signing"), key=lambda c: c.not_before)
    signer = ws.keystore.get_signing_key(key_ref("DISKOMINFO", "signing", cert.key_fingerprint))
    doc = b"Pengumuman.\n"
    hasher = Prehasher()
    hasher.update(doc)
    return doc, sign_digest(signer, hasher.digest(), comment, "nested").to_bytes()


def test_verify_of_deeply_nested_signed_metadata_is_refused_and_audited(
    authority: AuthorityHome, tmp_path: Path
) -> None:
    doc, sig = _signed_with_comment(authority, "sandi-sign/v1 " + "[" * 4000)
    (tmp_path / "p.txt").write_bytes(doc)
    (tmp_path / "p.txt.minisig").write_bytes(sig)
    r = authority.run("verify", tmp_path / "p.txt")
    assert r.code == 4, r
    assert "nested deeper than" in r.stderr and "internal error" not in r.stderr, r
    last = _journal(authority)[-1]
    assert (last["action"], last["outcome"], last["details"]["op"]) == ("verify.fail", "failed", "verify")


def test_open_of_deeply_nested_sealed_metadata_is_refused_and_audited(
    authority: AuthorityHome, tmp_path: Path
) -> None:
    from tests.test_seal_tamper import assert_refused, forge

    class Nested(SealMetadata):
        def to_comment(self) -> str:
            return super().to_comment()[:-1] + ',"x":' + "{\"a\":" * 1500

    def nested(m: SealMetadata) -> SealMetadata:
        return Nested(**{f: getattr(m, f) for f in m.__dataclass_fields__})

    raw = forge(authority, authority.workspace(), edit=nested)
    assert_refused(authority, raw, tmp_path, message="does not carry sandi seal metadata")
    last = _journal(authority)[-1]
    assert (last["action"], last["outcome"], last["details"]["op"]) == ("verify.fail", "failed", "open")


def test_policy_validate_of_deep_toml_says_why(authority: AuthorityHome, tmp_path: Path) -> None:
    policy = tmp_path / "deep.toml"
    policy.write_text("[policy]\nid = " + "[" * 50_000 + "\n")
    r = authority.run("policy", "validate", policy)
    assert r.code == 1, r
    assert "nested deeper than" in r.stderr and "internal error" not in r.stderr, r
    policy.write_text("[policy]\nversion = " + HUGE_INT + "\n")
    r = authority.run("policy", "validate", policy)
    assert r.code == 1, r
    assert "outside the 64-bit range" in r.stderr, r


def test_home_config_with_a_huge_integer_says_why(authority: AuthorityHome) -> None:
    config = authority.path / "sandi.toml"
    config.write_text(config.read_text() + "directory_validity_days = " + HUGE_INT + "\n")
    r = authority.run("agency", "list")
    assert r.code == 2, r  # a bad configuration is a usage error (docs/cli.md)
    assert "not a valid configuration" in r.stderr and "internal error" not in r.stderr, r


def test_a_deeply_nested_directory_file_is_a_format_error(authority: AuthorityHome, tmp_path: Path) -> None:
    (authority.path / "directory.json").write_bytes(b'{"body": ' + b"[" * 50_000)
    doc = tmp_path / "p.txt"
    doc.write_text("x")
    (tmp_path / "p.txt.minisig").write_text("x")
    r = authority.run("verify", doc)
    assert r.code == 4, r
    assert "directory: the file is not valid (nested deeper than" in r.stderr, r



def test_a_workstation_command_with_a_deeply_nested_directory_says_so(tmp_path: Path) -> None:
    # every command on a workstation first reads directory.json for its expiry warning
    from tests.authority_fixtures import ENV
    from tests.conftest import invoke

    home = tmp_path / "dinsos"
    r = invoke("--home", home, "init", "--agency", "DINSOS", "--root-fingerprint", "ab" * 32, env=ENV)
    assert r.code == 0, r
    (home / "directory.json").write_bytes(b'{"body": ' + b"[" * 50_000)
    # a command that does not need the directory still works (the expiry check stays quiet) ...
    r = invoke("--home", home, "policy", "validate", BANTEN, env=ENV)
    assert r.code == 0, r
    # ... and one that needs it says what is wrong with it
    r = invoke("--home", home, "directory", "show", env=ENV)
    assert r.code == 4, r
    assert "nested deeper than" in r.stderr and "internal error" not in r.stderr, r
