"""RFC 6962 / 9162 Merkle tree: leaf and node hashes, roots, inclusion and consistency proofs.

leaf hash = SHA-256(0x00 || data), node hash = SHA-256(0x01 || left || right). Pure functions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def root(leaves: list[bytes]) -> bytes:
    """MTH over leaf hashes."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = _split(n)
    return node_hash(root(leaves[:k]), root(leaves[k:]))


class Frontier:
    """The right edge of the tree (roots of its perfect subtrees), enough to append a leaf and
    compute the new root without reading old leaves."""

    def __init__(self, nodes: list[tuple[int, bytes]] | None = None) -> None:
        self.nodes = list(nodes or [])  # (subtree size, hash), largest first

    @property
    def size(self) -> int:
        return sum(size for size, _ in self.nodes)

    def append(self, leaf: bytes) -> None:
        self.nodes.append((1, leaf))
        while len(self.nodes) > 1 and self.nodes[-1][0] == self.nodes[-2][0]:
            (size, right), (_, left) = self.nodes.pop(), self.nodes.pop()
            self.nodes.append((size * 2, node_hash(left, right)))

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        acc = self.nodes[-1][1]
        for _, h in reversed(self.nodes[:-1]):
            acc = node_hash(h, acc)
        return acc

    def to_json(self) -> list[list]:
        return [[size, h.hex()] for size, h in self.nodes]

    @classmethod
    def from_json(cls, value: list[list]) -> Frontier:
        return cls([(int(size), bytes.fromhex(h)) for size, h in value])


def inclusion_proof(index: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962 section 2.1.1."""
    n = len(leaves)
    if not 0 <= index < n:
        raise IndexError(f"leaf {index} is not in a tree of size {n}")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return inclusion_proof(index, leaves[:k]) + [root(leaves[k:])]
    return inclusion_proof(index - k, leaves[k:]) + [root(leaves[:k])]


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: list[bytes], expected: bytes
) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected


def consistency_proof(old_size: int, leaves: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 6962 section 2.1.2."""
    n = len(leaves)
    if not 0 < old_size <= n:
        raise ValueError(f"no consistency proof from size {old_size} to {n}")
    return _subproof(old_size, leaves, True)


def _subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root(leaves)]
    k = _split(n)
    if m <= k:
        return _subproof(m, leaves[:k], complete) + [root(leaves[k:])]
    return _subproof(m - k, leaves[k:], False) + [root(leaves[:k])]


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if old_size == new_size:
        return old_root == new_root and not proof
    if old_size == 0 or old_size > new_size or not proof:
        return False
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        proof = [old_root, *proof]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


def last_leaf_inclusion(frontier: Frontier) -> list[bytes]:
    """PATH of the leaf appended to a tree whose right edge *before* the append was
    `frontier`: its left neighbours, smallest first. No old leaves are read."""
    return [h for _, h in reversed(frontier.nodes)]


def _subtrees(frontier: Frontier, new_leaves: list[bytes]) -> Callable[[int, int], bytes]:
    """MTH of the leaves [lo, hi) of the tree the right edge `frontier` grows into with
    `new_leaves`, for any range an RFC 6962 proof names: every such range wholly inside the old
    tree is one of the frontier's perfect subtrees, and one across the old size splits into
    such subtrees and new leaves. Memoised: a batch's proofs share their nodes."""
    old_size = frontier.size
    known: dict[tuple[int, int], bytes] = {}
    start = 0
    for size, h in frontier.nodes:
        known[(start, start + size)] = h
        start += size

    def subtree(lo: int, hi: int) -> bytes:
        found = known.get((lo, hi))
        if found is not None:
            return found
        if lo >= old_size:
            value = root(new_leaves[lo - old_size : hi - old_size])
        elif hi - lo == 1 or hi <= old_size:
            raise ValueError(f"subtree [{lo}, {hi}) is not on the old tree's right edge")
        else:
            k = _split(hi - lo)
            value = node_hash(subtree(lo, lo + k), subtree(lo + k, hi))
        known[(lo, hi)] = value
        return value

    return subtree


def consistency_from_frontier(frontier: Frontier, new_leaves: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) from the right edge at size m and the leaves appended since: every node
    of the proof inside the old tree is one of its perfect subtrees, so no old leaf is read."""
    old_size = frontier.size
    new_size = old_size + len(new_leaves)
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    return _path(old_size, new_size, _subtrees(frontier, new_leaves), 0, True)


def inclusions_from_frontier(frontier: Frontier, new_leaves: list[bytes]) -> list[list[bytes]]:
    """PATH(i, D[n]) of every leaf appended since the right edge `frontier` (in order), in the
    tree of all of them: a batch's records proven against the one head signed for the batch.
    No old leaf is read (the left neighbours are the frontier's subtrees)."""
    subtree = _subtrees(frontier, new_leaves)
    n = frontier.size + len(new_leaves)

    def path(index: int, lo: int, size: int) -> list[bytes]:
        if size == 1:
            return []
        k = _split(size)
        if index < k:
            return path(index, lo, k) + [subtree(lo + k, lo + size)]
        return path(index - k, lo + k, size - k) + [subtree(lo, lo + k)]

    return [path(frontier.size + i, 0, n) for i in range(len(new_leaves))]


def _path(
    m: int, n: int, subtree: Callable[[int, int], bytes], lo: int, complete: bool
) -> list[bytes]:
    if m == n:
        return [] if complete else [subtree(lo, lo + n)]
    k = _split(n)
    if m <= k:
        return _path(m, k, subtree, lo, complete) + [subtree(lo + k, lo + n)]
    return _path(m - k, n - k, subtree, lo + k, False) + [subtree(lo, lo + k)]
