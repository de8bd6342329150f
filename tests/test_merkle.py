"""sandi.formats.merkle against the Certificate Transparency (RFC 6962) test vectors, and an
independent recursive implementation of RFC 6962's MTH/PATH for every shape up to 70 leaves."""

from __future__ import annotations

import hashlib

import pytest

from sandi.formats import merkle

# The reference leaves and tree heads of RFC 6962 implementations (certificate-transparency,
# transparency-dev/merkle testonly): data only.
CT_LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
)]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_PATHS = {  # (index, size) -> audit path
    (0, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (5, 8): ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
}


def test_tree_heads_match_the_ct_vectors() -> None:
    hashes = [merkle.leaf_hash(leaf) for leaf in CT_LEAVES]
    for size in range(len(CT_LEAVES) + 1):
        assert merkle.root(hashes[:size]).hex() == CT_ROOTS[size], size


def test_audit_paths_match_the_ct_vectors_and_verify() -> None:
    hashes = [merkle.leaf_hash(leaf) for leaf in CT_LEAVES]
    tree = merkle.levels(hashes)
    root = bytes.fromhex(CT_ROOTS[8])
    for (index, size), expected in CT_PATHS.items():
        path = merkle.audit_path(tree, index)
        assert [h.hex() for h in path] == expected
        assert merkle.verify_inclusion(hashes[index], index, size, path, root)


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, literally (recursive split at the largest power of two < n)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def _path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 section 2.1.1 PATH(m, D[n]), literally."""
    if len(leaves) == 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if m < k:
        return [*_path(m, leaves[:k]), _mth(leaves[k:])]
    return [*_path(m - k, leaves[k:]), _mth(leaves[:k])]


@pytest.mark.parametrize("size", [*range(1, 40), 63, 64, 65, 70])
def test_every_shape_agrees_with_the_recursive_definition(size: int) -> None:
    leaves = [f"agency-{i}".encode() for i in range(size)]
    hashes = [merkle.leaf_hash(leaf) for leaf in leaves]
    tree = merkle.levels(hashes)
    root = _mth(leaves)
    assert merkle.root(hashes) == root
    for index in range(size):
        path = merkle.audit_path(tree, index)
        assert path == _path(index, leaves)
        assert merkle.verify_inclusion(hashes[index], index, size, path, root)


def test_a_wrong_leaf_index_size_or_path_does_not_verify() -> None:
    leaves = [f"agency-{i}".encode() for i in range(11)]
    hashes = [merkle.leaf_hash(leaf) for leaf in leaves]
    tree = merkle.levels(hashes)
    root = merkle.root(hashes)
    path = merkle.audit_path(tree, 6)
    assert merkle.verify_inclusion(hashes[6], 6, 11, path, root)
    assert not merkle.verify_inclusion(hashes[5], 6, 11, path, root)  # another leaf
    assert not merkle.verify_inclusion(merkle.leaf_hash(b"edited"), 6, 11, path, root)
    assert not merkle.verify_inclusion(hashes[6], 7, 11, path, root)  # another position
    assert not merkle.verify_inclusion(hashes[6], 6, 7, path, root)  # another shape
    assert not merkle.verify_inclusion(hashes[6], 6, 11, path[:-1], root)  # too short
    assert not merkle.verify_inclusion(hashes[6], 6, 11, [*path, path[0]], root)  # too long
    assert not merkle.verify_inclusion(hashes[6], 6, 11, [path[0][:31], *path[1:]], root)
    assert not merkle.verify_inclusion(hashes[6], 11, 11, path, root)  # outside the tree
    # A leaf's bytes are never an inner node's: the prefixes keep the two apart.
    assert merkle.leaf_hash(hashes[0] + hashes[1]) != merkle.node_hash(hashes[0], hashes[1])
