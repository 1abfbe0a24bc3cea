"""RFC 9162 Merkle tree hashing over a log of stored hashes (docs/API.md, "Audit ledger").

The storage layout is the one of Go's checksum database (``golang.org/x/mod/sumdb/tlog``): every complete
subtree's root is stored once, at an index fixed by its level and position, in the order the hashes are
produced while leaves are appended. Any range of leaves then splits into O(log n) complete subtrees, so a root
or a proof costs one read of O(log n) stored hashes, whatever the size of the log.

The functions here never touch storage: they take a ``HashReader`` that maps stored-hash indexes to hashes
(one database query, in the server) and call it at most once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()

HashReader = Callable[[Sequence[int]], Sequence[bytes]]


class ProofError(ValueError):
    """A proof does not prove what it claims (or is not even shaped like a proof)."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


# --- the stored-hash layout ---------------------------------------------------------------------------------


def stored_hash_index(level: int, n: int) -> int:
    """Index of the stored hash of the n-th complete subtree of 2**level leaves (counted from 0)."""
    if level < 0 or n < 0:
        raise ValueError("level and n must not be negative")
    # The subtree is stored right after its last leaf's hash and the roots that leaf closed below `level`.
    last_leaf = ((n + 1) << level) - 1
    return _hashes_before_leaf(last_leaf) + level


def stored_hash_count(size: int) -> int:
    """How many hashes a tree of `size` leaves has stored."""
    if size < 0:
        raise ValueError("size must not be negative")
    return _hashes_before_leaf(size)


def _hashes_before_leaf(n: int) -> int:
    # Leaf k stores 1 + (trailing one bits of k) hashes, so leaves 0..n-1 store n + sum(n >> i for i >= 1),
    # which is sum(n >> i for i >= 0) == 2n - popcount(n).
    return 2 * n - n.bit_count()


def frontier_indexes(size: int) -> list[int]:
    """Stored-hash indexes of the maximal complete subtrees of a tree of `size` leaves, left to right.

    These are the only hashes that appending more leaves ever combines with, and they ascend.
    """
    if size < 0:
        raise ValueError("size must not be negative")
    return _subtree_indexes(0, size)


def stored_hashes_for_leaf(n: int, leaf: bytes, read: HashReader) -> list[bytes]:
    """The hashes to store when leaf number `n` (already hashed) joins a tree of `n` leaves, in index order.

    They start at ``stored_hash_index(0, n)``: the leaf hash, then the root of every complete subtree the leaf
    closes (one per trailing one bit of `n`).
    """
    if n < 0:
        raise ValueError("n must not be negative")
    _check_hash(leaf, "leaf hash")
    closed = _trailing_ones(n)
    # The left siblings of the closed subtrees, from the largest (lowest index) to the smallest.
    indexes = [stored_hash_index(level, (n >> level) - 1) for level in reversed(range(closed))]
    siblings = _read(read, indexes)
    hashes = [leaf]
    current = leaf
    for sibling in reversed(siblings):
        current = node_hash(sibling, current)
        hashes.append(current)
    return hashes


def _trailing_ones(n: int) -> int:
    return ((n + 1) & -(n + 1)).bit_length() - 1


# --- ranges of leaves as complete subtrees ------------------------------------------------------------------


def _subtree_indexes(lo: int, hi: int) -> list[int]:
    """Stored indexes of the complete subtrees that [lo, hi) splits into, largest (leftmost) first.

    RFC 9162's MTH splits a range at the largest power of two below its length; taking the largest complete
    subtree from the left again and again gives the same pieces, provided `lo` is aligned to the first one
    (true of every range that a tree hash or a proof asks for).
    """
    indexes = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        width = 1 << level
        if lo & (width - 1):
            raise AssertionError(f"range [{lo}, {hi}) is not aligned to its subtrees")
        indexes.append(stored_hash_index(level, lo >> level))
        lo += width
    return indexes


def _fold(hashes: Sequence[bytes]) -> bytes:
    """The MTH of a range from its complete subtrees' roots (left to right): they join from the right."""
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = node_hash(left, root)
    return root


def _split(size: int) -> int:
    """RFC 9162's k: the largest power of two smaller than `size` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def _range_hashes(ranges: Sequence[tuple[int, int]], read: HashReader) -> list[bytes]:
    """The MTH of each range, for the price of one `read` (none when `ranges` is empty)."""
    per_range = [_subtree_indexes(lo, hi) for lo, hi in ranges]
    stored = _read(read, [index for indexes in per_range for index in indexes])
    result = []
    start = 0
    for indexes in per_range:
        result.append(_fold(stored[start : start + len(indexes)]))
        start += len(indexes)
    return result


def _read(read: HashReader, indexes: list[int]) -> list[bytes]:
    if not indexes:
        return []
    hashes = list(read(indexes))
    if len(hashes) != len(indexes):
        raise ValueError(f"hash reader returned {len(hashes)} hashes for {len(indexes)} indexes")
    for value in hashes:
        _check_hash(value, "stored hash")
    return hashes


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ValueError(f"{what} must be {HASH_SIZE} bytes, not {len(value)}")


# --- roots and proofs ---------------------------------------------------------------------------------------


def tree_hash(size: int, read: HashReader) -> bytes:
    """The root (MTH) of the first `size` leaves."""
    if size < 0:
        raise ValueError("size must not be negative")
    if size == 0:
        return EMPTY_ROOT
    return _range_hashes([(0, size)], read)[0]


def inclusion_proof(index: int, size: int, read: HashReader) -> list[bytes]:
    """RFC 9162 2.1.3 PATH(index, D[0:size]): the audit path, from the leaf's sibling up to the root."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    siblings: list[tuple[int, int]] = []  # root first
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            siblings.append((mid, hi))
            hi = mid
        else:
            siblings.append((lo, mid))
            lo = mid
    siblings.reverse()
    return _range_hashes(siblings, read)


def consistency_proof(old: int, new: int, read: HashReader) -> list[bytes]:
    """RFC 9162 2.1.4 PROOF(old, D[0:new]); empty when the sizes are equal."""
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from {old} to {new} leaves (need 0 < old <= new)")
    nodes: list[tuple[int, int]] = []  # root first; SUBPROOF(m, D[lo:hi], b) unrolled
    lo, hi, m, whole = 0, new, old, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            nodes.append((lo + k, hi))
            hi = lo + k
        else:
            nodes.append((lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        nodes.append((lo, hi))
    nodes.reverse()
    return _range_hashes(nodes, read)


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 2.1.3.2: raise ProofError unless `proof` shows leaf hash `leaf` at `index` under `root`."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
    _check_proof_hashes([leaf, root, *proof])
    fn, sn, computed = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            computed = node_hash(sibling, computed)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            computed = node_hash(computed, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the path to the root")
    if computed != root:
        raise ProofError(f"inclusion proof of leaf {index} does not lead to the root of tree size {size}")


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """RFC 9162 2.1.4.2: raise ProofError unless `proof` shows tree `old_root` is a prefix of `new_root`."""
    if not 0 < old <= new:
        raise ProofError(f"no consistency proof from {old} to {new} leaves (need 0 < old <= new)")
    _check_proof_hashes([old_root, new_root, *proof])
    if old == new:
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for tree size {old}")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    if old & (old - 1) == 0:  # the old tree is a complete subtree: its root starts the path
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    old_computed = new_computed = path[0]
    for node in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            old_computed = node_hash(node, old_computed)
            new_computed = node_hash(node, new_computed)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            new_computed = node_hash(new_computed, node)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than the path to the root")
    if old_computed != old_root:
        raise ProofError(f"consistency proof does not lead to the root of tree size {old}")
    if new_computed != new_root:
        raise ProofError(f"consistency proof does not lead to the root of tree size {new}")


def _check_proof_hashes(hashes: Sequence[bytes]) -> None:
    for value in hashes:
        if len(value) != HASH_SIZE:
            raise ProofError(f"a hash is {len(value)} bytes, not {HASH_SIZE}")


class RootBuilder:
    """The root of leaf hashes appended in order, keeping only the O(log n) roots of complete subtrees."""

    def __init__(self) -> None:
        self._size = 0
        self._subtrees: list[bytes] = []  # the frontier, largest (leftmost) first

    def append(self, leaf: bytes) -> None:
        _check_hash(leaf, "leaf hash")
        current = leaf
        for _ in range(_trailing_ones(self._size)):
            current = node_hash(self._subtrees.pop(), current)
        self._subtrees.append(current)
        self._size += 1

    @property
    def size(self) -> int:
        return self._size

    def root(self) -> bytes:
        return _fold(self._subtrees) if self._subtrees else EMPTY_ROOT
