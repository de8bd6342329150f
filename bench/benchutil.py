"""What the throughput benchmarks share: sizes, input files, checksums, a run's figures."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Run:
    seconds: float  # wall clock
    cpu: float  # user + system (of every process of the command)
    max_rss_mib: float  # the largest process


def parse_size(text: str) -> int:
    """``1G``, ``256M``, ``64KiB`` or plain bytes."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def make_input(path: Path, size: int) -> None:
    # A random 1 MiB block repeated: incompressible enough for a cipher benchmark and
    # much faster to produce than 1 GiB from the kernel CSPRNG.
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n
