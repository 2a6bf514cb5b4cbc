"""The Merkle log's tree: RFC 6962 hashes, roots, inclusion and consistency proofs."""

import hashlib

from services.kit import merkle


def leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(f"record {i}".encode()) for i in range(n)]


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    assert merkle.leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    a, b = merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")
    assert merkle.node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert merkle.root([]) == hashlib.sha256(b"").digest()


def test_rfc6962_shape_for_three_leaves() -> None:
    a, b, c = leaves(3)
    assert merkle.root([a, b, c]) == merkle.node_hash(merkle.node_hash(a, b), c)


def test_frontier_gives_the_same_root_as_the_whole_tree() -> None:
    frontier = merkle.Frontier()
    all_leaves = leaves(70)
    for i, leaf in enumerate(all_leaves, 1):
        frontier.append(leaf)
        frontier = merkle.Frontier.from_json(frontier.to_json())
        assert frontier.size == i
        assert frontier.root() == merkle.root(all_leaves[:i])


def test_every_inclusion_proof_verifies_and_a_wrong_leaf_does_not() -> None:
    for n in range(1, 34):
        tree = leaves(n)
        top = merkle.root(tree)
        for i in range(n):
            proof = merkle.inclusion_proof(i, tree)
            assert merkle.verify_inclusion(i, n, tree[i], proof, top), (i, n)
            assert not merkle.verify_inclusion(i, n, merkle.leaf_hash(b"forged"), proof, top)


def test_every_consistency_proof_verifies_and_a_rewritten_history_does_not() -> None:
    tree = leaves(40)
    for n in range(1, 41):
        for m in range(1, n + 1):
            proof = merkle.consistency_proof(m, tree[:n])
            old, new = merkle.root(tree[:m]), merkle.root(tree[:n])
            assert merkle.verify_consistency(m, n, old, new, proof), (m, n)
            if m < n:
                forged = merkle.root([merkle.leaf_hash(b"forged"), *tree[1:m]])
                assert not merkle.verify_consistency(m, n, forged, new, proof), (m, n)


def test_proofs_from_the_right_edge_equal_the_proofs_from_all_leaves() -> None:
    tree = leaves(45)
    for m in range(1, 45):
        frontier = merkle.Frontier()
        for leaf in tree[:m]:
            frontier.append(leaf)
        assert merkle.last_leaf_inclusion(frontier) == merkle.inclusion_proof(m, tree[: m + 1])
        for n in range(m, 46):
            got = merkle.consistency_from_frontier(frontier, tree[m:n])
            assert got == merkle.consistency_proof(m, tree[:n]), (m, n)
