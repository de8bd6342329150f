"""The archive of retired certificates (issue 20, ADR 0019 "The archive").

A retired agency certificate (superseded by a rotation or renewal) is needed only to
judge signatures made before it was retired, so it leaves its agency's entry and goes to
a Merkle tree of its own: one leaf ``{"certificate": ..., "code": ...}`` per certificate,
canonical JSON, sorted by serial. The directory's signed header carries the tree's head
through the side member ``archive`` (``{"count", "root"}``, hashed into the header like
every member), and the leaves travel apart in ``directory-archive.json``
(``{"format": "sandi-directory-archive/v1", "leaves": [...]}``). The current directory's
size then depends only on current certificates.

Invariants:

* what moves: an agency's own certificate in state ``retired`` unless it is revoked for
  key compromise (that voids every signature of the key, so it must stay where every
  verifier sees it: :func:`is_archived`); officials' certificates stay in their entry;
* an archive is used only if its leaves hash to the head the verified directory signs
  (:func:`load_archive`); a file for another version is refused, never half-trusted;
* a verifier that needs an archived certificate and has no archive says so (exit 4),
  it never passes or fails the signature silently.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from sandi.authority.validity import VOIDS_ALL_SIGNATURES
from sandi.directory import v2
from sandi.directory.snapshot import AgencyEntry, CertEntry, DirectorySnapshot
from sandi.errors import ConfigError, FormatError, VerificationError
from sandi.formats.bounded import load_json
from sandi.i18n import Message, _

FORMAT = "sandi-directory-archive/v1"
FILE_NAME = "directory-archive.json"
MEMBER = "archive"
#: the archive grows with rotations (about 1.5 KB per certificate): 512 MiB is 300,000 of them
MAX_ARCHIVE_BYTES = 512 * 1024 * 1024


def is_archived(cert: Mapping[str, Any]) -> bool:
    """Whether an agency certificate entry (JSON) belongs in the archive."""
    revocation = cert.get("revocation")
    compromised = isinstance(revocation, dict) and revocation.get("reason") in VOIDS_ALL_SIGNATURES
    return cert.get("state") == "retired" and not compromised


def split_entry(entry: Mapping[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
    """An agency entry (JSON) without its archived certificates, and their archive leaves."""
    certificates = entry.get("certificates", [])
    kept = [c for c in certificates if not is_archived(c)]
    moved = [archive_leaf(str(entry["code"]), c) for c in certificates if is_archived(c)]
    return {**entry, "certificates": kept}, moved


def archive_leaf(code: str, certificate: Mapping[str, Any]) -> bytes:
    return v2.canonical({"certificate": dict(certificate), "code": code})


def archive_bytes(leaves: Sequence[bytes]) -> bytes:
    """``directory-archive.json`` from leaves sorted by serial: canonical JSON, joined as
    bytes (``format`` sorts before ``leaves``)."""
    return (b'{"format":' + v2.canonical(FORMAT) + b',"leaves":[' + b",".join(leaves) + b"]}\n")


@dataclass(frozen=True)
class Archive:
    """A verified archive: the retired certificates by key fingerprint."""

    head: v2.TreeHead
    by_key: Mapping[str, list[tuple[str, CertEntry]]] = field(default_factory=dict)

    def key_owners(self, key_fingerprint: str) -> list[tuple[str, CertEntry]]:
        """``(agency code, certificate)`` for every archived certificate of the key."""
        return list(self.by_key.get(key_fingerprint, []))


def _tampered() -> VerificationError:
    return VerificationError(
        _("the archive of retired certificates does not match the signed directory"),
        hint=_("the archive file was altered or belongs to another directory version; get the archive "
               "of the directory you have ('sandi directory fetch', or 'sandi directory import' of the "
               "authority's directory-archive.json)"))


def load_archive(data: bytes, head: v2.TreeHead) -> Archive:
    """The archive in ``data`` if its leaves hash to ``head`` (the verified directory's)."""
    obj = load_json(data, max_bytes=MAX_ARCHIVE_BYTES, error=lambda reason: FormatError(
        Message("directory: the archive is not valid ({reason})", reason=reason)))
    if not isinstance(obj, dict) or set(obj) != {"format", "leaves"} or obj["format"] != FORMAT \
            or not isinstance(obj["leaves"], list):
        raise FormatError(_("directory: not a {format} file").format(format=FORMAT))
    entries = obj["leaves"]
    if not all(isinstance(e, dict) and set(e) == {"certificate", "code"} and isinstance(e["code"], str)
               and isinstance(e["certificate"], dict) for e in entries):
        raise _tampered()
    leaves = [v2.canonical(e) for e in entries]
    found, _tree = v2.tree_head(leaves)
    if found.count != head.count or not hmac.compare_digest(found.root, head.root):
        raise _tampered()
    by_key: dict[str, list[tuple[str, CertEntry]]] = {}
    certs = [CertEntry.from_json(e["certificate"], f"archive[{i}]") for i, e in enumerate(entries)]
    if any(a.serial >= b.serial for a, b in pairwise(certs)):
        raise _tampered()  # the authority writes them sorted by serial, once each
    for entry, cert in zip(entries, certs, strict=True):
        by_key.setdefault(cert.key_fingerprint, []).append((entry["code"], cert))
    return Archive(head, by_key)


def archive_path(home_path: Path) -> Path:
    return home_path / FILE_NAME


def is_archive_bytes(data: bytes) -> bool:
    """True for the start of a ``directory-archive.json`` (its canonical JSON begins with
    its format); a shape check, not a verification."""
    return data.startswith(b'{"format":"' + FORMAT.encode("ascii") + b'"')


def replaceable_companion(path: Path) -> bool:
    """May ``directory publish -o`` write the archive beside its output at ``path``
    without --force? Yes when nothing is there or an earlier archive is (sandi's own
    companion of an earlier publication, public and bound to its directory by the signed
    head); any other file is the person's and is not replaced."""
    try:
        with path.open("rb") as existing:
            return is_archive_bytes(existing.read(64))
    except FileNotFoundError:
        return True
    except OSError:
        return False


def missing_archive_hint() -> str:
    return _("get the archive: 'sandi directory fetch' from the authority's server, or 'sandi directory "
             "import directory-archive.json' from the authority; then verify again")


def missing_archive() -> VerificationError:
    return VerificationError(
        _("the signer's certificate is not in the current directory: it may be a retired certificate, "
          "kept in the archive of retired certificates, which this computer does not have"),
        hint=missing_archive_hint())


def installed_archive(snapshot: DirectorySnapshot) -> Archive | None:
    """The home's archive checked against ``snapshot``'s signed head, read once per
    snapshot; None when the directory archives nothing or the home has no archive file."""
    if snapshot.archive_head is None or snapshot.archive_file is None:
        return None
    if "archive" not in snapshot.archive_cache:
        try:
            data = snapshot.archive_file.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(_("cannot read {path}: {reason}").format(
                path=snapshot.archive_file, reason=exc.strerror or exc)) from None
        snapshot.archive_cache["archive"] = load_archive(data, snapshot.archive_head)
    found: Archive = snapshot.archive_cache["archive"]
    return found


def required_archive(snapshot: DirectorySnapshot) -> Archive | None:
    """:func:`installed_archive`, or :func:`missing_archive` raised when the directory
    archives certificates and the home has none (the signer's may be there)."""
    if snapshot.archive_head is None:
        return None
    archive = installed_archive(snapshot)
    if archive is None:
        raise missing_archive()
    return archive


def archived_key_owners(snapshot: DirectorySnapshot,
                        key_fingerprint: str) -> list[tuple[AgencyEntry, CertEntry]]:
    """The archived certificates of this key with their agencies' current entries (an
    agency no longer in the directory vouches for nothing)."""
    archive = required_archive(snapshot)
    if archive is None:
        return []
    out = []
    for code, cert in archive.key_owners(key_fingerprint):
        agency = snapshot.agency_or_none(code)
        if agency is not None:
            out.append((agency, cert))
    return out
