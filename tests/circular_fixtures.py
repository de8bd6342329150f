"""An authority whose directory holds a province's worth of agencies, for circulars.

Registering a thousand agencies through the registry (keys, certificates, key store
entries, audit) takes minutes; a circular's tests only need what the *documents* read:
a directory signed by the real root in which every agency has a real X25519 encryption
certificate issued by that root, and a policy version, signed by the root, that names
them (levels R and SR require post-quantum sealing). :func:`add_circular_agencies` builds exactly that for a copy of the authority
template in about a second: fresh keys and certificates (``issue_certificate``, the
authority's own code), a policy naming every agency in a group ``OPD`` that
DISKOMINFO may send to up to ``T``, the enlarged snapshot signed with the root key and
installed with ``sandi directory import``. The identities of the agencies a test opens
as are put into the home's key store (and written as plain age identity files, for
``age -d -i``); the others' private keys are thrown away.

No tests of its own; the benchmark ``bench/bench_circular.py`` uses it too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sandi.formats.age import X25519Identity

SENDER = "DISKOMINFO"
POLICY_ID = "circular-test"


def agency_code(index: int) -> str:
    return f"OPD-{index:04d}"


@dataclass(frozen=True)
class CircularHome:
    """The codes of the synthetic agencies, in directory order, and where the opening
    agencies' identity files are."""

    codes: tuple[str, ...]
    identities: Path

    def identity_file(self, code: str) -> Path:
        return self.identities / f"{code}.identity.txt"


def policy_source(codes: list[str], *, denied: str | None = None) -> str:
    """A policy naming ``codes`` (group OPD): DISKOMINFO -> OPD up to T; ``denied``, if
    given, is forbidden everything (to check that one denial stops a circular)."""
    lines = [
        "[policy]", f'id = "{POLICY_ID}"', 'title = "Surat edaran (uji)"', "version = 1",
        "effective = 2026-01-01", "expires = 2036-01-01", 'timezone = "+07:00"',
        'decree = "Keputusan uji coba surat edaran"', "",
    ]
    for code, name in (("B", "Biasa"), ("T", "Terbatas"), ("R", "Rahasia"), ("SR", "Sangat Rahasia")):
        lines += ["[[level]]", f'code = "{code}"', f'name = "{name}"']
        lines += ["post_quantum = true", ""] if code in ("R", "SR") else [""]
    lines.append("[entities]")
    lines.append(f'{SENDER} = {{ name = "Dinas Komunikasi dan Informatika", kind = "agency" }}')
    lines += [f'{code} = {{ name = "Perangkat Daerah {code}", kind = "agency" }}' for code in codes]
    lines += ["", "[groups.OPD]", 'description = "every addressee of a circular"',
              "members = [" + ", ".join(f'"{c}"' for c in codes) + "]", ""]
    lines += ["[[relation]]", 'id = "r-edaran"', 'description = "circulars"', f'from = "{SENDER}"',
              'to = "OPD"', 'max = "T"', 'direction = "one-way"', ""]
    if denied is not None:
        lines += ["[[forbid]]", 'id = "f-denied"', 'description = "nothing to this one"',
                  f'from = "{SENDER}"', f'to = "{denied}"', 'direction = "one-way"', ""]
    return "\n".join(lines)


def add_circular_agencies(home_path: Path, passphrase: str, count: int, *, openers: list[int],
                          identities: Path, denied: str | None = None,
                          import_directory: object) -> CircularHome:
    """Add ``count`` agencies with encryption certificates to ``home_path``'s directory.

    ``openers``: indexes of the agencies whose keys go into the home's key store (and
    ``identities``). ``import_directory(path)`` installs a directory file (the caller's
    ``sandi directory import``, in-process or not).
    """
    from sandi.authority.certs import issue_certificate
    from sandi.authority.root import load_root_signer
    from sandi.directory.local import installed_snapshot
    from sandi.directory.snapshot import AgencyEntry, CertEntry, PolicyEntry, sign_snapshot
    from sandi.home import Home
    from sandi.keystore import FixedPassphrase, key_ref, open_keystore
    from sandi.keystore.base import identity_fingerprint
    from sandi.policy.signature import sign_policy

    home = Home(home_path)
    keystore = open_keystore(home, FixedPassphrase(passphrase))
    signer = load_root_signer(home, keystore)
    snapshot = installed_snapshot(home)
    now = datetime.now(UTC)
    identities.mkdir(parents=True, exist_ok=True)
    codes = [agency_code(i) for i in range(count)]
    entries: list[AgencyEntry] = []
    for index, code in enumerate(codes):
        identity = X25519Identity.generate()
        issued = issue_certificate(
            signer, snapshot.root_certificate, purpose="encryption",
            public_key=identity.recipient.public_bytes, common_name=f"{code} encryption",
            organizational_unit=f"Perangkat Daerah {code}", province=snapshot.province,
            not_before=now - timedelta(days=1), not_after=now + timedelta(days=365),
        )
        cert = CertEntry(serial=issued.serial, purpose="encryption", state="current",
                         key_fingerprint=issued.key_fingerprint, not_before=issued.not_before,
                         not_after=issued.not_after, pem=issued.pem)
        entries.append(AgencyEntry(code=code, name=f"Perangkat Daerah {code}", kind="agency",
                                   status="active", parent=None, certificates=(cert,)))
        if index in openers:
            assert identity_fingerprint(identity) == issued.key_fingerprint
            keystore.put_encryption_key(key_ref(code, "encryption", issued.key_fingerprint), identity)
            (identities / f"{code}.identity.txt").write_text(identity.secret_bech32_unsafe() + "\n")
    source = policy_source(codes, denied=denied)
    policy = PolicyEntry(policy_id=POLICY_ID, version=1, source=source, signature=sign_policy(source, signer),
                         effective_from=datetime(2025, 12, 31, 17, tzinfo=UTC),
                         expires_at=datetime(2035, 12, 31, 17, tzinfo=UTC),
                         applied_at=now - timedelta(hours=1))
    grown = replace(snapshot, version=snapshot.version + 1, issued_at=now - timedelta(minutes=1),
                    expires_at=now + timedelta(days=7), agencies=(*snapshot.agencies, *entries),
                    policies=(*snapshot.policies, policy))
    envelope = home_path.parent / f"directory-circular-{hashlib.sha256(source.encode()).hexdigest()[:8]}.json"
    envelope.write_bytes(sign_snapshot(grown, signer))
    assert callable(import_directory)
    import_directory(envelope)
    return CircularHome(codes=tuple(codes), identities=identities)
