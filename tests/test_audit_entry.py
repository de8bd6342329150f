"""The entry format: canonical encoding pinned by a vector, limits, the secret guard."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from sandi.audit.checkpoint import checkpoint_message, sign_checkpoint, signature_valid
from sandi.audit.entry import (
    GENESIS_HASH,
    AuditEntry,
    canonical_json,
    check_details,
    format_time,
    make_entry,
    parse_time,
)
from sandi.audit.events import AuditEvent
from sandi.errors import AuditError
from sandi.keystore.keys import SigningKey

WHEN = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)


def test_hash_vector_pins_the_canonical_encoding() -> None:
    # docs/audit.md shows this same vector; another implementation must reproduce it.
    event = AuditEvent("operator", "agency.add", "DISKOMINFO",
                       details={"name": "Dinas Komunikasi dan Informatika", "kode": "é"})
    entry = make_entry(event, prev_seq=0, prev_hash=GENESIS_HASH, when=WHEN)
    expected_bytes = (
        b'sandi-audit/v1\n{"action":"agency.add","actor":"operator","details":{"kode":"\xc3\xa9",'
        b'"name":"Dinas Komunikasi dan Informatika"},"outcome":"ok","prev_hash":"' + b"0" * 64
        + b'","seq":1,"subject":"DISKOMINFO","time":"2026-01-02T03:04:05.000006Z"}'
    )
    assert entry.hash == hashlib.sha256(expected_bytes).hexdigest()
    assert entry.hash == "5db7f380282fedb0f2a05b72d4f81cc70ca3b4812d4b19e89ca68c145b1bfd1c"
    assert entry.seq == 1 and entry.prev_hash == GENESIS_HASH
    assert entry.time == "2026-01-02T03:04:05.000006Z"


def test_entry_round_trips_through_its_dict() -> None:
    entry = make_entry(AuditEvent("a", "key.issue", "s", details={"l": [1, "x", None, True]}),
                       prev_seq=4, prev_hash="ab" * 32, when=WHEN)
    again = AuditEntry.from_dict(entry.to_dict())
    assert again == entry and again.compute_hash() == entry.hash
    assert entry.seq == 5


def test_time_is_utc_with_microseconds() -> None:
    local = datetime(2026, 1, 2, 10, 4, 5, tzinfo=timezone(timedelta(hours=7)))  # WIB
    assert format_time(local) == "2026-01-02T03:04:05.000000Z"
    assert parse_time("2026-01-02T03:04:05.000000Z") == local
    with pytest.raises(AuditError):
        format_time(datetime(2026, 1, 2))  # naive
    with pytest.raises(AuditError):
        parse_time("2026-01-02 03:04:05")


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": {"d": [], "c": "ü"}}) == '{"a":{"c":"ü","d":[]},"b":1}'.encode()


@pytest.mark.parametrize(
    "details",
    [
        {"passphrase": "x"},
        {"Passphrase": "x"},
        {"db-password": "x"},
        {"secret": "x"},
        {"client_secret": "x"},
        {"private_key": "x"},
        {"privateKey": "x"},
        {"seed": "x"},
        {"plaintext": "x"},
        {"nested": {"list": [{"api_secret": 1}]}},
        {"identity": "AGE-SECRET-KEY-1QQQQ"},
        {"pem": "-----BEGIN PRIVATE KEY-----\nMC4C"},
    ],
    ids=lambda d: next(iter(d)),
)
def test_secret_looking_details_are_refused(details: dict[str, Any]) -> None:
    with pytest.raises(AuditError, match=r"secret|key material"):
        check_details(details)


@pytest.mark.parametrize(
    ("details", "message"),
    [
        ({"ratio": 0.5}, "floats"),
        ({"big": 2**60}, "portable range"),
        ({"obj": object()}, "not JSON"),
        ({1: "x"}, "keys must be strings"),
        ({"blob": "x" * 20000}, "too large"),
        ({"deep": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}}, "nested"),
    ],
    ids=["float", "bigint", "object", "int-key", "too-large", "too-deep"],
)
def test_non_portable_details_are_refused(details: dict[Any, Any], message: str) -> None:
    with pytest.raises(AuditError, match=message):
        check_details(details)


def test_ordinary_details_are_accepted_and_copied() -> None:
    details = {"serial": "0a1b", "recipients": ("A", "B"), "count": 3, "key_fingerprint": "ab" * 32}
    checked = check_details(details)
    assert checked == {"serial": "0a1b", "recipients": ["A", "B"], "count": 3,
                       "key_fingerprint": "ab" * 32}


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (AuditEvent("", "agency.add", "X"), "actor is empty"),
        (AuditEvent("a" * 201, "agency.add", "X"), "actor too long"),
        (AuditEvent("op", "Agency Add", "X"), "dotted"),
        (AuditEvent("op", "agency.add", "X" * 301), "subject too long"),
        (AuditEvent("op", "agency.add", "X", outcome="maybe"), "outcome"),  # type: ignore[arg-type]
        (AuditEvent("op", "agency.add", "\ud800"), "not valid text"),
    ],
    ids=["empty-actor", "long-actor", "bad-action", "long-subject", "bad-outcome", "surrogate"],
)
def test_bad_events_are_refused_before_anything_is_written(event: AuditEvent, message: str) -> None:
    with pytest.raises(AuditError, match=message):
        make_entry(event, prev_seq=0, prev_hash=GENESIS_HASH)


def test_checkpoint_signature_round_trip() -> None:
    key = SigningKey.generate()
    cp = sign_checkpoint(key, 7, "cd" * 32, when=WHEN)
    assert cp.signer == hashlib.sha256(key.public_key_bytes()).hexdigest()
    assert cp.message() == checkpoint_message(7, "cd" * 32, "2026-01-02T03:04:05.000006Z")
    assert cp.message().startswith(b"sandi-audit-checkpoint/v1\n{")
    assert signature_valid(cp, key.public_key_bytes())
    assert not signature_valid(cp, SigningKey.generate().public_key_bytes())
    with pytest.raises(AuditError, match="empty"):
        sign_checkpoint(key, 0, GENESIS_HASH)
