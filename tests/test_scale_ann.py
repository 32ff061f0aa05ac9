"""Retrieval at scale (course_utils.scale.ann): the index chosen by size and memory, recall of the approximate
indexes against exact search, and re-ranking that gives the exhaustive ranking when k covers the database."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("faiss")

from course_utils.retrieval import jitter_distances, rank, spatial_distances  # noqa: E402
from course_utils.scale import ann  # noqa: E402


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    """Unit vectors around 50 centres (real features cluster; uniform noise would have no neighbours to find)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).standard_normal((50, dim))
    x = centres[rng.integers(0, 50, n)] + 0.6 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_neighbours(queries: np.ndarray, db: np.ndarray, k: int) -> np.ndarray:
    squared = (queries**2).sum(1)[:, None] - 2 * queries @ db.T + (db**2).sum(1)[None]
    return np.argsort(squared, axis=1, kind="stable")[:, :k]


def test_plan_by_size_and_memory():
    small = ann.plan_index(5_000, 1280)
    assert (small.kind, small.factory, small.bytes_per_vector) == ("flat", "Flat", 5120.0)
    # 1 M x 1280-d: the vectors and an HNSW graph take 1e6 x (5120 + 2 x 32 x 4 x 1.1) bytes = 5.0 GiB
    roomy = ann.plan_index(1_000_000, 1280, memory_mb=8 * 1024)
    assert roomy.kind == "hnsw" and roomy.factory == "HNSW32,Flat" and roomy.bytes_per_vector == pytest.approx(5401.6)
    tight = ann.plan_index(1_000_000, 1280, memory_mb=4 * 1024)
    assert tight.kind == "ivfpq" and tight.factory == "PCAR256,IVF1024,PQ32np"
    assert (tight.bytes_per_vector, tight.nprobe, tight.train_size) == (40.0, 64, 39 * 1024)
    assert "do not fit in 4.0 GiB" in tight.reason
    # no PCA below 256-d; at least 8 dimensions per PQ sub-vector: 8 bytes of codes for 64-d
    assert ann.plan_index(200_000, 64, kind="ivfpq").factory == "IVF1024,PQ8np"
    with pytest.raises(ValueError, match="Unknown index kind 'lsh'"):
        ann.plan_index(10, 8, kind="lsh")
    with pytest.raises(ValueError, match="n=0"):
        ann.plan_index(0, 8)


def test_flat_index_is_exact():
    db, queries = clustered(2_000, 32, 1), clustered(20, 32, 2)
    index = ann.GlobalIndex.build(db)
    assert index.plan.kind == "flat" and index.ntotal == 2_000
    _, ids = index.search(queries, 10)
    np.testing.assert_array_equal(ids, exact_neighbours(queries, db, 10))
    assert index.memory_bytes() >= 2_000 * 32 * 4


@pytest.mark.parametrize(("kind", "floor"), [("hnsw", 0.95), ("ivfpq", 0.65)])
def test_recall_of_approximate_indexes(kind, floor):
    """Recall@10 against exact search (measured: HNSW 0.99+, IVF-PQ with 8 bytes per 64-d vector 0.72)."""
    db = ann.synthetic_features(20_000, 64, latent=16, clusters=100)
    queries = ann.synthetic_features(50, 64, latent=16, clusters=100, stream=1)
    index = ann.GlobalIndex.build(db, kind=kind)
    _, ids = index.search(queries, 10)
    recall = ann.recall_at(ids, exact_neighbours(queries, db, 10))
    assert floor <= recall <= 1.0
    if kind == "ivfpq":
        assert index.memory_bytes() < 20_000 * 64 * 4 / 3  # codes, not vectors


@pytest.mark.parametrize("distance", ["spatial", "jitter"])
def test_rerank_covering_the_database_is_exhaustive(distance):
    rng = np.random.default_rng(5)
    db_views = rng.standard_normal((60, 30 if distance == "spatial" else 16, 24)).astype(np.float32)
    query_views = rng.standard_normal((7, 14 if distance == "spatial" else 16, 24)).astype(np.float32)
    query_views[0] = db_views[17, : query_views.shape[1]]  # a planted copy: distance 0 to image 17
    exhaustive = (spatial_distances if distance == "spatial" else jitter_distances)(query_views, db_views)
    found = ann.search(query_views, db_views, k=60, distance=distance)
    assert found.plan.kind == "flat" and found.candidates.shape == (7, 60)
    np.testing.assert_array_equal(found.ranks, rank(exhaustive))
    np.testing.assert_allclose(found.distances, np.sort(exhaustive, axis=1), rtol=1e-6)
    assert found.ranks[0, 0] == 17 and found.distances[0, 0] == pytest.approx(0.0, abs=1e-3)
    np.testing.assert_array_equal(found.full_ranking(60), rank(exhaustive))


def test_rerank_of_a_few_candidates_and_padding():
    rng = np.random.default_rng(6)
    db_views = rng.standard_normal((10, 4, 8)).astype(np.float32)
    query_views = rng.standard_normal((2, 4, 8)).astype(np.float32)
    candidates = np.array([[7, 2, 2, -1], [5, 1, 9, 3]])
    ranks, distances = ann.rerank(query_views, db_views, candidates, distance="jitter")
    exhaustive = jitter_distances(query_views, db_views)
    for q, rows in enumerate([[2, 7], [1, 3, 5, 9]]):
        expected = sorted(rows, key=lambda r: exhaustive[q, r])
        assert ranks[q, : len(rows)].tolist() == expected
        np.testing.assert_allclose(distances[q, : len(rows)], exhaustive[q, expected], rtol=1e-6)
    assert ranks[0, 2:].tolist() == [-1, -1] and np.isinf(distances[0, 2:]).all()
    full = ann.ApproximateResult(ranks, distances, candidates, ann.plan_index(10, 8)).full_ranking(10)
    assert full[0].tolist() == [*sorted([2, 7], key=lambda r: exhaustive[0, r]), 0, 1, 3, 4, 5, 6, 8, 9]
    with pytest.raises(ValueError, match="Unknown distance 'cosine'"):
        ann.rerank(query_views, db_views, candidates, distance="cosine")


def test_global_vectors_and_input_checks():
    views = np.array([[[3.0, 4.0], [0.0, 2.0]]], dtype=np.float32)  # normalised: (0.6, 0.8) and (0, 1)
    np.testing.assert_allclose(ann.global_vectors(views), [[0.3, 0.9] / np.hypot(0.3, 0.9)], rtol=1e-6)
    np.testing.assert_allclose(ann.global_vectors(views, "first"), [[0.6, 0.8]], rtol=1e-6)
    index = ann.GlobalIndex.build(clustered(100, 8, 7))
    with pytest.raises(ValueError, match=r"queries must be shaped \(n, 8\); got \(2, 9\)"):
        index.search(np.zeros((2, 9)), 5)
    with pytest.raises(ValueError, match="NaN or infinite"):
        index.add(np.full((1, 8), np.nan))
    assert ann.recall_at(np.array([[1, 2, 3]]), np.array([[3, 4]])) == 0.5


def test_synthetic_features_are_reproducible_unit_vectors():
    block = ann.synthetic_features(300, 40, seed=3, start=1000)
    assert block.shape == (300, 40) and block.dtype == np.float32 and (block >= 0).all()
    np.testing.assert_allclose(np.linalg.norm(block, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(block, ann.synthetic_features(300, 40, seed=3, start=1000))
    assert not np.array_equal(block, ann.synthetic_features(300, 40, seed=3, start=1000, stream=1))
