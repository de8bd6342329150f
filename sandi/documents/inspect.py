"""What can be said about an age / sealed file without a key."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from sandi.documents.sources import StreamOrPath, open_input


@dataclass(frozen=True)
class InspectResult:
    armored: bool
    stanza_types: tuple[str, ...]
    header_size: int
    file_size: int | None

    @property
    def protection(self) -> str:
        """``post-quantum`` (hybrid stanzas only), ``classical`` (X25519 and the like),
        ``mixed`` (both: a downgrade sandi refuses to open), ``passphrase`` or ``other``."""
        from sandi.formats.age import CLASSICAL_TYPES, POST_QUANTUM_TYPES

        kinds = set(self.stanza_types)
        if kinds <= POST_QUANTUM_TYPES:
            return "post-quantum"
        if kinds & POST_QUANTUM_TYPES and kinds & CLASSICAL_TYPES:
            return "mixed"
        if kinds == {"scrypt"}:
            return "passphrase"
        if kinds <= CLASSICAL_TYPES:
            return "classical"
        return "other"

    def summary(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for t in self.stanza_types:
            counts[t] = counts.get(t, 0) + 1
        return {
            "format": "age-encryption.org/v1",
            "armored": self.armored,
            "recipient_stanzas": len(self.stanza_types),
            "stanza_types": counts,
            "protection": self.protection,
            "header_bytes": self.header_size,
            "file_size": self.file_size,
        }


def inspect(src: StreamOrPath) -> InspectResult:
    """Parse the age header (strictly) and report what it shows."""
    from sandi.formats.age import parse_header

    stream, _, size, opened = open_input(src)
    try:
        header = parse_header(stream)
    finally:
        if opened:
            stream.close()
    if size is None and isinstance(src, str | os.PathLike):
        size = os.stat(src).st_size
    return InspectResult(
        armored=header.armored,
        stanza_types=tuple(s.type for s in header.stanzas),
        header_size=len(header.header_bytes),
        file_size=size,
    )
