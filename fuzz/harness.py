"""The common harness: a target may fail only with its parser's own documented errors.

Each target (:mod:`fuzz.targets`) feeds one byte string to one parser. The parser may
accept it or refuse it with the error types the target names (its documented format /
verification errors, all :class:`~sandi.errors.SandiError` subclasses). Anything else —
``ValueError``, ``KeyError``, ``RecursionError``, ``UnicodeError``, ``AssertionError``,
a ``SandiError`` of another type — is a crash: :func:`run_one` lets it propagate, so
atheris (``fuzz/run.py``) records the input, and the smoke test fails.

:func:`mutate` is a small deterministic mutator for the test suite's smoke pass (no
atheris needed there); the long, coverage-guided runs are ``scripts/fuzz``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"


@dataclass(frozen=True)
class Target:
    name: str
    parse: Callable[[bytes], object]
    #: the parser's documented error types: the only exceptions allowed through
    allowed: tuple[type[BaseException], ...]

    def run_one(self, data: bytes) -> None:
        """Feed ``data``; return normally if it is accepted or refused the documented way."""
        try:
            self.parse(data)
        except self.allowed:
            return

    def seeds(self) -> list[bytes]:
        folder = CORPUS / self.name
        return [p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()] if folder.is_dir() else []


_INTERESTING = [b"\x00", b"\xff", b"\n", b"\r\n", b"[", b"{", b'"', b"\\", b"0" * 30, b"-1", b"\xc3\x28",
                b"\xed\xa0\x80", b"=", b"#", b" ", b"9" * 25, b"\\ud800", b"[" * 200, b"{\"a\":" * 60]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four random edits: flip, insert, delete, duplicate, splice a token."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        at = rng.randint(0, len(buf))
        if op == 0 and buf:
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[at:at] = rng.choice(_INTERESTING)
        elif op == 2 and buf:
            del buf[at:at + rng.randint(1, 16)]
        elif op == 3 and buf:
            start = rng.randrange(len(buf))
            buf[at:at] = buf[start:start + rng.randint(1, 64)]
        elif op == 4:
            buf[at:at] = bytes([rng.randrange(256)])
        elif buf:
            del buf[at:]
    return bytes(buf)


def smoke_inputs(target: Target, count: int, seed: int = 13) -> Iterator[bytes]:
    """The seeds, then ``count`` mutations of them (deterministic)."""
    seeds = target.seeds() or [b""]
    yield from seeds
    rng = random.Random(f"{target.name}:{seed}")
    for _ in range(count):
        yield mutate(rng.choice(seeds), rng)
