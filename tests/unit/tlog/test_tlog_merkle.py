"""RFC 9162 trees over the stored-hash layout: known answers, agreement with a naive MTH, proofs that verify
and tampered proofs that do not, and one `read` per root or proof (docs/API.md, "Audit ledger")."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.tlog.merkle import (
    EMPTY_ROOT,
    ProofError,
    RootBuilder,
    consistency_proof,
    frontier_indexes,
    inclusion_proof,
    leaf_hash,
    node_hash,
    stored_hash_count,
    stored_hash_index,
    stored_hashes_for_leaf,
    tree_hash,
    verify_consistency,
    verify_inclusion,
)

# Known answers of the Certificate Transparency reference implementation, as published in
# github.com/transparency-dev/merkle (testonly/constants.go and testonly/reference_test.go), originally from
# google/certificate-transparency cpp/merkletree/merkle_tree_test.cc. Leaf indexes here are 0-based.
CT_INPUTS = [bytes.fromhex(h) for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657"]] + [
    bytes.fromhex("606162636465666768696a6b6c6d6e6f")
]
CT_ROOTS = [
    bytes.fromhex(h)
    for h in [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]
CT_INCLUSION_PROOFS = [  # (leaf index, tree size, audit path)
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CT_CONSISTENCY_PROOFS = [  # (old size, new size, proof)
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]


class StoredLog:
    """The stored hashes of a log, as the sequencer keeps them, with a count of the reads made."""

    def __init__(self) -> None:
        self.hashes: list[bytes] = []
        self.size = 0
        self.reads: list[list[int]] = []

    def append(self, data: bytes) -> None:
        frontier = set(frontier_indexes(self.size))

        def read_frontier(indexes: Sequence[int]) -> list[bytes]:
            assert set(indexes) <= frontier, "appending read outside the frontier"
            return [self.hashes[i] for i in indexes]

        new = stored_hashes_for_leaf(self.size, leaf_hash(data), read_frontier)
        assert len(self.hashes) == stored_hash_index(0, self.size)
        self.hashes.extend(new)
        self.size += 1
        assert len(self.hashes) == stored_hash_count(self.size)

    def read(self, indexes: Sequence[int]) -> list[bytes]:
        self.reads.append(list(indexes))
        return [self.hashes[i] for i in indexes]


def build(leaves: Sequence[bytes]) -> StoredLog:
    log = StoredLog()
    for data in leaves:
        log.append(data)
    return log


def naive_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 9162 2.1.1 MTH, straight from its definition."""
    if not leaf_hashes:
        return hashlib.sha256(b"").digest()
    if len(leaf_hashes) == 1:
        return leaf_hashes[0]
    k = 1
    while k * 2 < len(leaf_hashes):
        k *= 2
    return node_hash(naive_root(leaf_hashes[:k]), naive_root(leaf_hashes[k:]))


def leaves_of(size: int) -> list[bytes]:
    return [f"event {i}".encode() for i in range(size)]


def flip(value: bytes, position: int = 0) -> bytes:
    return value[:position] + bytes([value[position] ^ 1]) + value[position + 1 :]


# --- known answers ------------------------------------------------------------------------------------------


def test_hashes_separate_leaves_from_nodes_and_the_empty_tree_is_the_hash_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    assert tree_hash(0, StoredLog().read) == EMPTY_ROOT
    assert RootBuilder().root() == EMPTY_ROOT


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_certificate_transparency_vectors(size: int) -> None:
    log = build(CT_INPUTS)
    assert tree_hash(size, log.read) == CT_ROOTS[size - 1]
    builder = RootBuilder()
    for data in CT_INPUTS[:size]:
        builder.append(leaf_hash(data))
    assert (builder.size, builder.root()) == (size, CT_ROOTS[size - 1])


@pytest.mark.parametrize(("index", "size", "expected"), CT_INCLUSION_PROOFS)
def test_inclusion_proofs_match_the_certificate_transparency_vectors(
    index: int, size: int, expected: list[str]
) -> None:
    proof = inclusion_proof(index, size, build(CT_INPUTS).read)
    assert [h.hex() for h in proof] == expected
    verify_inclusion(index, size, leaf_hash(CT_INPUTS[index]), proof, CT_ROOTS[size - 1])


@pytest.mark.parametrize(("old", "new", "expected"), CT_CONSISTENCY_PROOFS)
def test_consistency_proofs_match_the_certificate_transparency_vectors(
    old: int, new: int, expected: list[str]
) -> None:
    proof = consistency_proof(old, new, build(CT_INPUTS).read)
    assert [h.hex() for h in proof] == expected
    verify_consistency(old, new, CT_ROOTS[old - 1], CT_ROOTS[new - 1], proof)


def test_stored_hash_layout_is_the_one_of_go_sumdb() -> None:
    # Leaves 0 and 1 (0, 1), their parent (2), leaf 2 (3), leaf 3 (4), then [2,4) (5) and [0,4) (6), ...
    assert [stored_hash_index(0, n) for n in range(5)] == [0, 1, 3, 4, 7]
    assert [stored_hash_index(1, n) for n in range(3)] == [2, 5, 9]
    assert stored_hash_index(2, 0) == 6
    assert stored_hash_index(3, 0) == 14
    assert [stored_hash_count(size) for size in range(9)] == [0, 1, 3, 4, 7, 8, 10, 11, 15]
    assert frontier_indexes(7) == [6, 9, 10]


# --- properties ---------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(size=st.integers(min_value=0, max_value=3000))
def test_the_stored_tree_has_the_root_of_a_naive_mth(size: int) -> None:
    leaves = leaves_of(size)
    log = build(leaves)
    hashes = [leaf_hash(data) for data in leaves]
    expected = naive_root(hashes)
    assert tree_hash(size, log.read) == expected
    builder = RootBuilder()
    for h in hashes:
        builder.append(h)
    assert builder.root() == expected


@settings(max_examples=60, deadline=None)
@given(data=st.data(), size=st.integers(min_value=1, max_value=3000))
def test_every_inclusion_proof_verifies_and_a_tampered_one_does_not(data: st.DataObject, size: int) -> None:
    log = build(leaves_of(size))
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    root = tree_hash(size, log.read)
    leaf = leaf_hash(f"event {index}".encode())
    proof = inclusion_proof(index, size, log.read)
    verify_inclusion(index, size, leaf, proof, root)

    with pytest.raises(ProofError):
        verify_inclusion(index, size, flip(leaf), proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(index, size, leaf, proof, flip(root, 31))
    if proof:
        position = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="tampered hash")
        tampered = [*proof[:position], flip(proof[position], 7), *proof[position + 1 :]]
        with pytest.raises(ProofError):
            verify_inclusion(index, size, leaf, tampered, root)
        with pytest.raises(ProofError):
            verify_inclusion(index, size, leaf, proof[:-1], root)
    if size > 1:
        others = st.integers(min_value=0, max_value=size - 1).filter(lambda i: i != index)
        other = data.draw(others, label="other")
        with pytest.raises(ProofError):
            verify_inclusion(other, size, leaf, proof, root)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), new=st.integers(min_value=1, max_value=3000))
def test_every_consistency_proof_verifies_and_a_tampered_one_does_not(data: st.DataObject, new: int) -> None:
    log = build(leaves_of(new))
    old = data.draw(st.integers(min_value=1, max_value=new), label="old")
    old_root, new_root = tree_hash(old, log.read), tree_hash(new, log.read)
    proof = consistency_proof(old, new, log.read)
    verify_consistency(old, new, old_root, new_root, proof)

    with pytest.raises(ProofError):
        verify_consistency(old, new, flip(old_root), new_root, proof)
    with pytest.raises(ProofError):
        verify_consistency(old, new, old_root, flip(new_root), proof)
    if proof:
        position = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="tampered hash")
        tampered = [*proof[:position], flip(proof[position], 3), *proof[position + 1 :]]
        with pytest.raises(ProofError):
            verify_consistency(old, new, old_root, new_root, tampered)
        with pytest.raises(ProofError):
            verify_consistency(old, new, old_root, new_root, proof[1:])
    if old > 1 and old < new:
        with pytest.raises(ProofError):
            verify_consistency(old - 1, new, old_root, new_root, proof)


def test_a_proof_about_a_forked_log_does_not_verify() -> None:
    honest = build(leaves_of(20))
    forked = build([*leaves_of(13), b"rewritten history", *leaves_of(20)[14:]])
    old_root = tree_hash(16, honest.read)
    new_root, proof = tree_hash(20, forked.read), consistency_proof(16, 20, forked.read)
    with pytest.raises(ProofError, match="does not lead to the root"):
        verify_consistency(16, 20, old_root, new_root, proof)


# --- cost: one read, of O(log n) hashes ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [2, 7, 8, 1000, 1023, 1025])
def test_roots_and_proofs_read_storage_once(size: int) -> None:
    log = build(leaves_of(size))
    calls: list[Callable[[], object]] = [
        lambda: tree_hash(size, log.read),
        lambda: tree_hash(size - 1, log.read),
        lambda: inclusion_proof(0, size, log.read),
        lambda: inclusion_proof(size - 1, size, log.read),
        lambda: inclusion_proof(size // 3, size, log.read),
        lambda: consistency_proof(1, size, log.read),
        lambda: consistency_proof(size // 2 or 1, size, log.read),
        lambda: consistency_proof(size - 1, size, log.read),
    ]
    for call in calls:
        log.reads.clear()
        call()
        assert len(log.reads) == 1
        assert len(log.reads[0]) <= 2 * size.bit_length()


def test_empty_proofs_read_nothing() -> None:
    log = build(leaves_of(4))
    assert inclusion_proof(0, 1, log.read) == []
    assert consistency_proof(4, 4, log.read) == []
    assert log.reads == []


def test_impossible_requests_are_refused() -> None:
    log = build(leaves_of(4))
    refused: list[Callable[[], object]] = [
        lambda: inclusion_proof(4, 4, log.read),
        lambda: inclusion_proof(-1, 4, log.read),
        lambda: consistency_proof(0, 4, log.read),
        lambda: consistency_proof(3, 2, log.read),
    ]
    for call in refused:
        with pytest.raises(ValueError):
            call()
    root = tree_hash(4, log.read)
    with pytest.raises(ProofError, match="not in a tree"):
        verify_inclusion(4, 4, leaf_hash(b"event 0"), [], root)
    with pytest.raises(ProofError, match="must be empty"):
        verify_consistency(4, 4, root, root, [root])
    with pytest.raises(ProofError, match="different roots"):
        verify_consistency(4, 4, root, flip(root), [])
