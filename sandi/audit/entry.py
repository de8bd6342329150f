"""One audit entry and its hash: the single chain logic both sinks share.

Invariants (docs/audit.md states them for other implementations):

* an entry is ``seq, time, actor, action, subject, outcome, details, prev_hash, hash``;
* ``seq`` starts at 1 and grows by exactly 1; the first entry's ``prev_hash`` is
  :data:`GENESIS_HASH` (64 zeros), every other entry's is the previous entry's ``hash``;
* ``hash = SHA-256(b"sandi-audit/v1\\n" + canonical_json(all fields except hash))``, in
  lower-case hex, where canonical JSON is sorted keys, no whitespace, UTF-8, non-ASCII
  characters as themselves (not ``\\u`` escapes), integers only (no floats);
* ``time`` is a string, UTC, RFC 3339 with microseconds and ``Z``; it is hashed as stored;
* ``details`` is a JSON object that never holds a secret: :func:`check_details` rejects
  secret-looking keys and values before anything is written.

Nothing here touches a file or a database: the sinks (:mod:`sandi.audit.journal`,
:mod:`sandi.audit.registry_sink`) call :func:`make_entry` with the head they locked.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sandi.audit.events import AuditEvent, JSONValue
from sandi.errors import AuditError
from sandi.i18n import _

DOMAIN = b"sandi-audit/v1\n"
GENESIS_HASH = "0" * 64
OUTCOMES = ("ok", "denied", "failed")

# Limits, checked before any work (they match the registry's column sizes).
MAX_ACTOR = 200
MAX_ACTION = 80
MAX_SUBJECT = 300
MAX_DETAILS_BYTES = 16 * 1024  # canonical JSON of details
MAX_DETAILS_DEPTH = 8
# 53 bits: the integers every JSON implementation (JavaScript included) reads exactly.
MAX_SAFE_INT = 2**53 - 1

_ACTION_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")

# A key is refused when its normalised name contains one of these: the guard against
# logging a secret by accident ("passphrase", "db_password", "private_key", ...).
SECRET_KEY_PARTS = (
    "passphrase",
    "password",
    "passwd",
    "secret",
    "private",
    "privkey",
    "plaintext",
    "seed",
)
# Values that are unmistakably key material, whatever the key is called.
_SECRET_VALUE_MARKERS = ("AGE-SECRET-KEY-", "PRIVATE KEY-----", "untrusted comment: minisign encrypted")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One link of the chain, exactly as hashed and stored."""

    seq: int
    time: str
    actor: str
    action: str
    subject: str
    outcome: str
    details: dict[str, JSONValue]
    prev_hash: str
    hash: str

    def hashed_fields(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "outcome": self.outcome,
            "details": self.details,
            "prev_hash": self.prev_hash,
        }

    def to_dict(self) -> dict[str, Any]:
        data = self.hashed_fields()
        data["hash"] = self.hash
        return data

    def compute_hash(self) -> str:
        """The hash this entry's content calls for (compare with :attr:`hash`)."""
        return entry_hash(self.hashed_fields())

    @property
    def datetime(self) -> datetime:
        return parse_time(self.time)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditEntry:
        """Rebuild an entry from its stored form; checks types, not the hash."""
        try:
            seq = data["seq"]
            details = data["details"]
            fields = {k: data[k] for k in ("time", "actor", "action", "subject", "outcome",
                                           "prev_hash", "hash")}
        except (KeyError, TypeError) as exc:
            raise AuditError(_("malformed audit entry: missing field {exc}").format(exc=exc)) from None
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise AuditError(_("malformed audit entry: seq is not an integer"))
        if not isinstance(details, dict):
            raise AuditError(_("malformed audit entry {seq}: details is not an object").format(seq=seq))
        for name, value in fields.items():
            if not isinstance(value, str):
                raise AuditError(_("malformed audit entry {seq}: {name} is not a string").format(
                    seq=seq,
                    name=name,
                ))
        return cls(seq=seq, details=details, **fields)


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8 without ``\\u`` escapes, no floats/NaN."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def entry_hash(hashed_fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(DOMAIN + canonical_json(hashed_fields)).hexdigest()


def format_time(when: datetime) -> str:
    """UTC, RFC 3339, microseconds, ``Z``: the one spelling that is hashed."""
    if when.tzinfo is None:
        raise AuditError(_("audit time must be timezone-aware"))
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    if not _TIME_RE.match(text):
        raise AuditError(_("malformed audit time {text!r}").format(text=text))
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_hex64(text: str) -> bool:
    return bool(_HEX64_RE.match(text))


def _normalise_key(key: str) -> str:
    return key.lower().replace("-", "_").replace(" ", "_")


def _check_value(value: object, path: str, depth: int) -> None:
    if depth > MAX_DETAILS_DEPTH:
        raise AuditError(_("audit details nested too deeply at {path}").format(path=path))
    if value is None or isinstance(value, bool | str):
        if isinstance(value, str) and any(m in value for m in _SECRET_VALUE_MARKERS):
            raise AuditError(_("audit details {path} looks like key material; refusing to log it").format(
                path=path,
            ))
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            raise AuditError(_("audit details {path}: integer out of the portable range; use a "
                               "string").format(path=path))
        return
    if isinstance(value, float):
        # Float spelling differs between JSON implementations, so a float would make
        # the hash unreproducible elsewhere.
        raise AuditError(_("audit details {path}: floats are not allowed; use a string or an "
                           "integer").format(path=path))
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_value(item, f"{path}[{i}]", depth + 1)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise AuditError(_("audit details {path}: keys must be strings").format(path=path))
            norm = _normalise_key(key)
            if any(part in norm for part in SECRET_KEY_PARTS):
                raise AuditError(
                    _("audit details key {key!r} looks like a secret; refusing to log it").format(key=key),
                    hint=_("audit details hold names, codes, fingerprints and reasons, never secrets"),
                )
            _check_value(item, f"{path}.{key}", depth + 1)
        return
    raise AuditError(_("audit details {path}: {name} is not JSON").format(
        path=path,
        name=type(value).__name__,
    ))


def check_details(details: Mapping[str, object]) -> dict[str, JSONValue]:
    """Validate ``details`` and return it as a plain JSON object (a deep copy).

    Raises AuditError for a secret-looking key or value, a float, a non-JSON value,
    or details larger than :data:`MAX_DETAILS_BYTES`.
    """
    if not isinstance(details, Mapping):
        raise AuditError(_("audit details must be a JSON object"))
    _check_value(details, "details", 0)
    encoded = canonical_json(dict(details))
    if len(encoded) > MAX_DETAILS_BYTES:
        raise AuditError(_("audit details too large ({count} bytes, at most {max_details_bytes})").format(
            count=len(encoded),
            max_details_bytes=MAX_DETAILS_BYTES,
        ))
    # A round trip turns tuples into lists and copies, so the entry is what is hashed.
    return cast(dict[str, JSONValue], json.loads(encoded))


def check_event(event: AuditEvent) -> dict[str, JSONValue]:
    """Check an event's fields against the limits; returns its checked details."""
    for name, value, limit in (
        ("actor", event.actor, MAX_ACTOR),
        ("action", event.action, MAX_ACTION),
        ("subject", event.subject, MAX_SUBJECT),
    ):
        if not isinstance(value, str):
            raise AuditError(_("audit {name} must be a string").format(name=name))
        if len(value) > limit:
            raise AuditError(_("audit {name} too long ({count} characters, at most {limit})").format(
                name=name,
                count=len(value),
                limit=limit,
            ))
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise AuditError(_("audit {name} is not valid text").format(name=name)) from None
    if not event.actor:
        raise AuditError(_("audit actor is empty"))
    if not _ACTION_RE.match(event.action):
        raise AuditError(_("audit action {action!r} is not a dotted lower-case name").format(
            action=event.action,
        ))
    if event.outcome not in OUTCOMES:
        raise AuditError(_("audit outcome must be one of {outcomes}, not {outcome!r}").format(
            outcomes=', '.join(OUTCOMES),
            outcome=event.outcome,
        ))
    try:
        return check_details(event.details)
    except UnicodeEncodeError:
        raise AuditError(_("audit details hold invalid text")) from None


def make_entry(
    event: AuditEvent, *, prev_seq: int, prev_hash: str, when: datetime | None = None
) -> AuditEntry:
    """The entry that follows ``(prev_seq, prev_hash)`` for ``event``, hashed."""
    details = check_event(event)
    fields: dict[str, Any] = {
        "seq": prev_seq + 1,
        "time": format_time(when or utcnow()),
        "actor": event.actor,
        "action": event.action,
        "subject": event.subject,
        "outcome": event.outcome,
        "details": details,
        "prev_hash": prev_hash,
    }
    return AuditEntry(hash=entry_hash(fields), **fields)
