"""Retrieval at scale: a faiss global index proposes the top-k, the paper's spatial or jittered-view distance re-ranks
only those.

The paper's spatial search compares every query patch with every patch of every database image (30 per image):
exact, and right for the course's sizes (a few thousand images, :func:`course_utils.retrieval.spatial_distances`),
but at a million images it is 30 million patch vectors to hold and scan per query. Here the search runs in two
stages:

1. **Global index** (:class:`GlobalIndex`): one vector per image (by default the mean of its L2-normalised views or
   patches, L2-normalised again: :func:`global_vectors`) in a faiss index chosen by :func:`plan_index` from the
   database size and the memory allowed:

   * ``flat`` (exact, ``IndexFlatL2``) up to :data:`EXACT_MAX_IMAGES` images, which covers every dataset of the
     course: an exact scan of that many 1,280-d vectors costs a few milliseconds per query on a 2-core CPU, needs
     no training and loses nothing (an approximate index answers faster from about a thousand images on:
     ``docs/scale.md``, section 2; but below this size the saving is not worth a recall loss);
   * ``hnsw`` (``HNSW32,Flat``: a graph over the full vectors, no training, high recall) when the vectors and the
     graph fit in the memory allowed;
   * ``ivfpq`` (``PCAR256,IVF<nlist>,PQ32``: rotated onto its 256 principal components, k-means cells, each vector
     stored as 32 bytes of product-quantisation codes) otherwise: a 1,280-d float32 vector of 5,120 bytes becomes
     32 bytes of codes plus its 8-byte id.

2. **Re-ranking** (:func:`rerank`): each query's ``k`` candidates are compared with the paper's distance
   (:func:`~course_utils.retrieval.spatial_distances`, or :func:`~course_utils.retrieval.jitter_distances`, the
   same min/mean rule over views) on their full views or patches, read only for those ``k`` rows (a memory-mapped
   feature-store layer file is read ``k`` rows at a time, never whole). Candidates are re-ranked in database order
   with a stable sort, so ties break as in the exhaustive search and, when ``k`` covers the database, the ranking is
   the exhaustive one.

:func:`search` chains the two; the exhaustive path (:mod:`course_utils.retrieval.search`) stays the default
everywhere else.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..normalize import l2_rows
from ..retrieval.search import jitter_distances, rank, spatial_distances
from . import SCALE_EXTRA_HINT

KINDS = ("auto", "flat", "hnsw", "ivfpq")
EXACT_MAX_IMAGES = 20_000  # up to this many images the exact index is chosen (see the module docstring)
HNSW_LINKS = 32  # graph neighbours per vector (faiss "HNSW32"): 2 x 32 int32 links per vector at the bottom level
HNSW_EF_SEARCH = 128  # candidates kept while walking the graph at query time
PCA_DIM = 256  # IVF-PQ first rotates and cuts wider vectors to this many principal components (faiss "PCAR256")
PQ_BYTES = 32  # bytes of product-quantisation codes per vector (at most; a divisor of the width is used)
PQ_MIN_SUBDIM = 8  # dimensions per product-quantisation sub-vector, at least
MAX_NLIST = 1024  # IVF cells at most: k-means over 39 x nlist training vectors is the build's cost on a CPU
IVF_PROBE_FRACTION = 1 / 16  # cells searched per query, as a fraction of nlist (at least 1)
SHORTLIST_FACTOR = 4  # an approximate index proposes this many times k candidates for re-ranking
TRAIN_PER_CELL = 39  # training vectors per IVF cell (faiss's own minimum for k-means)
DISTANCES: dict[str, Callable[..., np.ndarray]] = {"spatial": spatial_distances, "jitter": jitter_distances}


def import_faiss():
    """The ``faiss`` module, or an ``ImportError`` saying how to install it."""
    try:
        import faiss
    except ImportError as err:
        raise ImportError(f"Approximate search needs faiss: {SCALE_EXTRA_HINT}.") from err
    return faiss


@dataclass(frozen=True)
class IndexPlan:
    """Which faiss index to build for ``n`` vectors of width ``dim``, and why.

    ``factory`` is the faiss ``index_factory`` string; ``bytes_per_vector`` the index's memory per image (vectors or
    codes, ids, graph links), an estimate before it is built; ``nprobe`` (IVF cells searched per query) and
    ``ef_search`` (HNSW) are the query-time settings.
    """

    kind: str
    factory: str
    n: int
    dim: int
    bytes_per_vector: float
    reason: str
    nprobe: int = 0
    ef_search: int = 0

    @property
    def needs_training(self) -> bool:
        """Whether the index learns from a sample before vectors are added (IVF-PQ: its cells and codebooks)."""
        return self.kind == "ivfpq"

    @property
    def train_size(self) -> int:
        """Vectors to train on (0 for an index that needs none)."""
        if not self.needs_training:
            return 0
        nlist = int(next(part for part in self.factory.split(",") if part.startswith("IVF"))[3:])
        return min(self.n, max(TRAIN_PER_CELL * nlist, 256 * TRAIN_PER_CELL))


def memory_budget_bytes() -> int:
    """Half of this machine's physical memory: the default limit for an index held in memory."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): assume 8 GB
        return 4 * 2**30


def plan_index(n: int, dim: int, *, kind: str = "auto", memory_mb: float | None = None) -> IndexPlan:
    """The index for ``n`` vectors of width ``dim`` within ``memory_mb`` (default: half the physical memory).

    ``kind="auto"`` takes the exact ``flat`` index up to :data:`EXACT_MAX_IMAGES` images, else ``hnsw`` when its
    vectors and graph fit in the memory allowed, else ``ivfpq``; a named ``kind`` is built as asked (its estimated
    memory is still reported). Raises ``ValueError`` for a size or width below 1 or an unknown kind.
    """
    if n < 1 or dim < 1:
        raise ValueError(f"plan_index needs at least one vector of width >= 1; got n={n}, dim={dim}.")
    if kind not in KINDS:
        raise ValueError(f"Unknown index kind {kind!r}; choose one of {KINDS}.")
    budget = memory_budget_bytes() if memory_mb is None else memory_mb * 2**20
    flat_bytes, hnsw_bytes = 4 * dim + 0.0, 4 * dim + 2 * HNSW_LINKS * 4 * 1.1  # upper levels: ~10% more links
    if kind == "auto":
        if n <= EXACT_MAX_IMAGES:
            kind, why = "flat", (f"{n:,} images <= {EXACT_MAX_IMAGES:,}: an exact scan costs milliseconds per query "
                                 f"and loses nothing")
        elif n * hnsw_bytes <= budget:
            kind, why = "hnsw", (f"{n:,} images > {EXACT_MAX_IMAGES:,}, and the full vectors with their graph "
                                 f"({n * hnsw_bytes / 2**30:.1f} GiB) fit in {budget / 2**30:.1f} GiB")
        else:
            kind, why = "ivfpq", (f"{n:,} images > {EXACT_MAX_IMAGES:,}, and the full vectors with an HNSW graph "
                                  f"({n * hnsw_bytes / 2**30:.1f} GiB) do not fit in {budget / 2**30:.1f} GiB: "
                                  f"compressed codes instead")
    else:
        why = "asked for by name"
    if kind == "flat":
        return IndexPlan("flat", "Flat", n, dim, flat_bytes, why)
    if kind == "hnsw":
        return IndexPlan("hnsw", f"HNSW{HNSW_LINKS},Flat", n, dim, hnsw_bytes, why, ef_search=HNSW_EF_SEARCH)
    nlist = max(1, min(2 ** round(math.log2(4 * math.sqrt(n))), MAX_NLIST, n // TRAIN_PER_CELL or 1))
    width = min(dim, PCA_DIM)
    # at least 8 dimensions per sub-quantiser: faiss trains narrower ones very slowly, for little gain in recall
    pq = max(m for m in range(1, min(PQ_BYTES, max(1, width // PQ_MIN_SUBDIM)) + 1) if width % m == 0)
    pca = f"PCAR{width}," if width < dim else ""
    # "np": no polysemous training (it only serves Hamming-distance filtering, which is not used here, and is slow)
    return IndexPlan("ivfpq", f"{pca}IVF{nlist},PQ{pq}np", n, dim, pq + 8.0, why,
                     nprobe=max(1, round(nlist * IVF_PROBE_FRACTION)))


class GlobalIndex:
    """A faiss index over one vector per database image (L2 distance), built as :func:`plan_index` says.

    Build it at once with :meth:`build`, or in steps for a database that does not fit in memory as float32:
    ``index = GlobalIndex(plan)``, ``index.train(sample)`` (IVF-PQ only), then ``index.add(block)`` block by block.
    Ids are the order of addition (database rows).
    """

    def __init__(self, plan: IndexPlan) -> None:
        faiss = import_faiss()
        self.plan = plan
        self.index = faiss.index_factory(plan.dim, plan.factory, faiss.METRIC_L2)
        settings = {"ivfpq": f"nprobe={plan.nprobe}", "hnsw": f"efSearch={plan.ef_search}"}.get(plan.kind)
        if settings:  # through ParameterSpace: it reaches the IVF index inside the PCA wrapper too
            faiss.ParameterSpace().set_index_parameters(self.index, settings)

    @classmethod
    def build(cls, vectors: np.ndarray, *, kind: str = "auto", memory_mb: float | None = None,
              seed: int = 0) -> GlobalIndex:
        """An index over ``vectors`` ``(N, D)`` (trained on a seeded sample of them when it needs training)."""
        vectors = _matrix(vectors, "vectors")
        index = cls(plan_index(len(vectors), vectors.shape[1], kind=kind, memory_mb=memory_mb))
        if index.plan.needs_training:
            rows = np.random.default_rng(seed).choice(len(vectors), index.plan.train_size, replace=False)
            index.train(vectors[np.sort(rows)])
        index.add(vectors)
        return index

    def train(self, sample: np.ndarray) -> None:
        """Learn the IVF cells and PQ codebooks from ``sample`` (a no-op for an index that needs no training)."""
        if self.plan.needs_training:
            self.index.train(_matrix(sample, "training sample", self.plan.dim))

    def add(self, vectors: np.ndarray) -> None:
        """Append ``vectors`` ``(n, D)``; their ids continue from :attr:`ntotal`."""
        if not self.index.is_trained:
            raise RuntimeError(f"The {self.plan.factory} index must be trained first: call train(sample).")
        self.index.add(_matrix(vectors, "vectors", self.plan.dim))

    @property
    def ntotal(self) -> int:
        """Vectors in the index."""
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(distances, ids)``, each ``(Q, k)``: the ``k`` nearest database rows of each query, nearest first
        (squared L2 distances; id ``-1`` where the index found fewer than ``k``)."""
        if k < 1:
            raise ValueError(f"k must be at least 1; got {k}.")
        return self.index.search(_matrix(queries, "queries", self.plan.dim), min(k, self.ntotal))

    def memory_bytes(self) -> int:
        """The index's size as faiss serialises it: what it holds in memory (vectors or codes, ids, graph)."""
        return int(import_faiss().serialize_index(self.index).nbytes)


def _matrix(array: np.ndarray, what: str, dim: int | None = None) -> np.ndarray:
    array = np.ascontiguousarray(array, dtype=np.float32)
    if array.ndim != 2 or (dim is not None and array.shape[1] != dim):
        width = "D" if dim is None else str(dim)
        raise ValueError(f"{what} must be shaped (n, {width}); got {array.shape}.")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} hold NaN or infinite values (images the feature engine skipped?); drop those rows "
                         f"first, e.g. with FeatureSet.valid.")
    return array


def global_vectors(views: np.ndarray, how: str = "mean") -> np.ndarray:
    """One L2-normalised vector per image from its views or patches ``(N, V, D)``: ``"mean"`` of the L2-normalised
    views, or the ``"first"`` view (the whole image for ``paper16`` and the spatial pyramid). ``(N, D)`` float32."""
    views = np.asarray(views, dtype=np.float32)
    if views.ndim != 3:
        raise ValueError(f"global_vectors needs (images, views, dim) features; got shape {views.shape}.")
    if how not in ("mean", "first"):
        raise ValueError(f"how must be 'mean' or 'first'; got {how!r}.")
    if how == "first":
        vectors = views[:, 0]
    else:
        vectors = l2_rows(views).mean(axis=1)
    return l2_rows(vectors)


def rerank(query_views: np.ndarray, db_views: np.ndarray, candidates: np.ndarray, *, distance: str = "spatial",
           **search_options) -> tuple[np.ndarray, np.ndarray]:
    """Re-rank each query's candidate database rows with the paper's ``distance`` (``"spatial"`` or ``"jitter"``).

    ``query_views`` ``(Q, Pq, D)``, ``db_views`` ``(N, Pr, D)`` (a memory map is read only at the candidates' rows),
    ``candidates`` ``(Q, k)`` database rows (``-1`` entries are ignored). Returns ``(ranks, distances)``, each
    ``(Q, k)``: the candidates sorted by distance (ties in database order, as in the exhaustive search), padded with
    ``-1`` and ``inf`` where a query had fewer than ``k``. ``search_options`` go to
    :func:`~course_utils.retrieval.spatial_distances` (``dtype``, ``device``, ``memory_mb`` ...).
    """
    if distance not in DISTANCES:
        raise ValueError(f"Unknown distance {distance!r}; choose one of {sorted(DISTANCES)}.")
    candidates = np.asarray(candidates)
    if candidates.ndim != 2 or len(candidates) != len(query_views):
        raise ValueError(f"candidates must be (queries, k) with one row per query ({len(query_views)}); got shape "
                         f"{candidates.shape}.")
    ranks = np.full(candidates.shape, -1, dtype=np.int64)
    distances = np.full(candidates.shape, np.inf)
    for q, row in enumerate(candidates):
        rows = np.unique(row[row >= 0])  # database order: the stable sort below then breaks ties as the exhaustive one
        if len(rows) == 0:
            continue
        found = DISTANCES[distance](query_views[q : q + 1], db_views[rows], **search_options)[0]
        order = rank(found[None])[0]
        ranks[q, : len(rows)], distances[q, : len(rows)] = rows[order], found[order]
    return ranks, distances


@dataclass(frozen=True)
class ApproximateResult:
    """What :func:`search` found: ``ranks`` and ``distances`` ``(Q, shortlist)`` after re-ranking (``-1`` / ``inf``
    padding), the global index's ``candidates`` ``(Q, shortlist)`` before it, and the ``plan`` of that index."""

    ranks: np.ndarray
    distances: np.ndarray
    candidates: np.ndarray
    plan: IndexPlan

    def full_ranking(self, n_db: int) -> np.ndarray:
        """``(Q, n_db)`` rankings for evaluation: the re-ranked shortlist, then every other database row in
        database order (the approximate search says nothing about them: they count as not found)."""
        out = np.empty((len(self.ranks), n_db), dtype=np.int64)
        for q, row in enumerate(self.ranks):
            top = row[row >= 0]
            rest = np.setdiff1d(np.arange(n_db), top, assume_unique=False)
            out[q] = np.concatenate([top, rest])
        return out


def search(query_views: np.ndarray, db_views: np.ndarray, *, k: int = 100, distance: str = "spatial",
           index: GlobalIndex | None = None, kind: str = "auto", memory_mb: float | None = None,
           how: str = "mean", shortlist: int | None = None, **search_options) -> ApproximateResult:
    """The global ``index`` (built over ``db_views`` with :func:`global_vectors` when not given) proposes
    ``shortlist`` candidates per query, re-ranked by the paper's ``distance`` (:func:`rerank`); the result holds
    them all, best first (its first ``k`` are the answer). ``shortlist`` defaults to ``k`` for the exact index and
    :data:`SHORTLIST_FACTOR` x ``k`` for an approximate one, whose own top-``k`` misses some of the true ``k``
    nearest (``docs/scale.md``) but whose top ``4k`` holds nearly all of them: re-ranking a few hundred
    candidates costs little next to the search. ``query_views`` ``(Q, Pq, D)``, ``db_views`` ``(N, Pr, D)``; the
    global query vectors are made from the query's views the same way (``how``)."""
    if index is None:
        index = GlobalIndex.build(global_vectors(db_views, how), kind=kind, memory_mb=memory_mb)
    if shortlist is None:
        shortlist = k if index.plan.kind == "flat" else SHORTLIST_FACTOR * k
    _, candidates = index.search(global_vectors(query_views, how), max(k, shortlist))
    ranks, distances = rerank(query_views, db_views, candidates, distance=distance, **search_options)
    return ApproximateResult(ranks, distances, candidates, index.plan)


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each query's true neighbours ``truth`` ``(Q, k)`` that ``found`` ``(Q, k')`` holds."""
    found, truth = np.asarray(found), np.asarray(truth)
    if found.ndim != 2 or truth.ndim != 2 or len(found) != len(truth):
        raise ValueError(f"recall_at needs two (queries, k) arrays with as many rows; got {found.shape} and "
                         f"{truth.shape}.")
    return float(np.mean([len(np.intersect1d(f, t)) / len(t) for f, t in zip(found, truth, strict=True)]))


@lru_cache(maxsize=4)
def _synthetic_model(dim: int, latent: int, clusters: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, 0])
    centres = rng.standard_normal((clusters, latent)).astype(np.float32)
    projection = (rng.standard_normal((latent, dim)) / math.sqrt(latent)).astype(np.float32)
    return centres, projection


def synthetic_features(n: int, dim: int, *, seed: int = 0, stream: int = 0, start: int = 0, latent: int = 64,
                       clusters: int = 1000, spread: float = 0.7) -> np.ndarray:
    """``n`` synthetic image vectors ``(n, dim)`` float32, shaped like a CNN's pooled features, for benchmarks at
    sizes no dataset here reaches.

    Real features are non-negative (after a ReLU), L2-normalised, clustered (objects, scenes) and of low intrinsic
    dimension; uniform noise in ``dim`` dimensions has none of that, and no index can find its neighbours. So: a
    point of one of ``clusters`` Gaussian clusters in ``latent`` dimensions (``spread``: the noise around its
    centre), mapped to ``dim`` by a fixed random projection, passed through a ReLU and L2-normalised. The model
    depends on ``seed`` only; the rows on ``(seed, stream, start)``, so that a database generated block by block
    (``start`` = the block's first row) is the same on every run, and ``stream=1`` gives queries from the same
    distribution that are not database rows.
    """
    centres, projection = _synthetic_model(dim, latent, clusters, seed)
    rng = np.random.default_rng([seed, 1 + stream, start])
    points = centres[rng.integers(0, clusters, n)] + np.float32(spread) * rng.standard_normal((n, latent),
                                                                                               dtype=np.float32)
    return l2_rows(np.maximum(points @ projection, 0.0))
