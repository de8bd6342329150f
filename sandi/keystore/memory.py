"""An in-memory key store for tests and short-lived applications (nothing touches disk)."""

from __future__ import annotations

from sandi.errors import AlreadyExistsError
from sandi.i18n import N_, _
from sandi.keystore.base import KeyStore, StoredKey, check_ref, not_found


class MemoryKeyStore(KeyStore):
    kind = "memory"

    def __init__(self) -> None:
        self._records: dict[str, bytes] = {}

    def _write(self, record: StoredKey) -> None:
        if record.ref in self._records:
            raise AlreadyExistsError(_("key {ref} exists already").format(
                ref=record.ref,
            ), hint=_("sandi never overwrites a key"))
        self._records[record.ref] = record.encode()

    def _read(self, ref: str) -> StoredKey:
        data = self._records.get(ref)
        if data is None:
            raise not_found(ref, N_("memory key store"))
        return StoredKey.decode(data, expected_ref=ref)

    def refs(self) -> list[str]:
        return sorted(self._records)

    def delete(self, ref: str) -> None:
        if self._records.pop(check_ref(ref), None) is None:
            raise not_found(ref, N_("memory key store"))
