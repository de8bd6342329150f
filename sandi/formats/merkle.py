"""The RFC 6962 Merkle tree (SHA-256) over which a ``sandi-directory/v2`` header signs.

Hashes (RFC 6962 section 2.1; RFC 9162 section 2.1.1 is the same):

* a leaf: ``SHA-256(0x00 || leaf bytes)``;
* an inner node: ``SHA-256(0x01 || left || right)``;
* the empty tree: ``SHA-256()``.

The tree is built level by level: pair the nodes of a level left to right; a last node
without a partner moves up unchanged. This gives exactly RFC 6962's ``MTH`` (which splits
at the largest power of two below ``n``) and lets a reader keep every level as a table
and read an audit path as one sibling per level (a level where the node moved up has
none). Checked against the Certificate Transparency test vectors in
``tests/test_merkle.py``.

Invariants: everything here is a pure function of bytes (no I/O, no state); a hash is
always 32 bytes; :func:`verify_inclusion` never raises for a bad proof, it answers False.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

HASH_SIZE = 32
_LEAF = b"\x00"
_NODE = b"\x01"


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(_LEAF + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def empty_root() -> bytes:
    return hashlib.sha256(b"").digest()


def levels(leaf_hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the tree, leaves first, the root's level (one hash) last.

    An empty tree has one level holding :func:`empty_root`.
    """
    if not leaf_hashes:
        return [[empty_root()]]
    out = [list(leaf_hashes)]
    while len(out[-1]) > 1:
        below = out[-1]
        above = [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
        if len(below) % 2:
            above.append(below[-1])  # no partner: it moves up unchanged
        out.append(above)
    return out


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The tree head over ``leaf_hashes`` (already leaf-hashed)."""
    return levels(leaf_hashes)[-1][0]


def path_positions(index: int, size: int) -> list[tuple[int, int]]:
    """The (level, position) of each sibling on ``index``'s audit path, leaf level first.

    Levels where the node moves up without a partner contribute nothing, so the list
    is RFC 6962's ``PATH(index, D[size])`` in order.
    """
    if not 0 <= index < size:
        raise ValueError("leaf index outside the tree")
    out: list[tuple[int, int]] = []
    level, position, width = 0, index, size
    while width > 1:
        sibling = position ^ 1
        if sibling < width:
            out.append((level, sibling))
        level, position, width = level + 1, position // 2, (width + 1) // 2
    return out


def audit_path(tree: Sequence[Sequence[bytes]], index: int) -> list[bytes]:
    """The audit path of leaf ``index`` from the levels :func:`levels` returned."""
    return [tree[level][position] for level, position in path_positions(index, len(tree[0]))]


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root that ``leaf`` (a leaf hash) at ``index`` with ``path`` implies; None when
    the path has the wrong length for a tree of ``size`` leaves or a hash of the wrong size."""
    if not 0 <= index < size or any(len(h) != HASH_SIZE for h in path) or len(leaf) != HASH_SIZE:
        return None
    siblings = iter(path)
    node, position, width = leaf, index, size
    try:
        while width > 1:
            if position % 2:
                node = node_hash(next(siblings), node)
            elif position + 1 < width:
                node = node_hash(node, next(siblings))
            position, width = position // 2, (width + 1) // 2
    except StopIteration:
        return None
    if next(siblings, None) is not None:
        return None
    return node


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], expected_root: bytes) -> bool:
    """True when ``leaf`` (a leaf hash) is leaf ``index`` of the tree of ``size`` leaves
    whose head is ``expected_root``."""
    implied = root_from_path(leaf, index, size, path)
    return implied is not None and hmac.compare_digest(implied, expected_root)
