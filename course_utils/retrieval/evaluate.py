"""Scores of a set of rankings against a dataset's ground truth.

Rows of a distance or rank matrix are ``record.queries`` in order; columns are the searched images,
``record.database`` (or every image when the record has no ``database``). The query image itself is ignored
(treated as junk) unless the record lists it as a positive: Holidays passes it as junk, UKBench counts it (its
N-S score includes the query), Oxford/Paris list it among the "good" images, and the demo set keeps queries
out of the database, so this one rule serves all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..datasets.base import DatasetRecord, Query
from .search import rank

METRICS = ("auto", "map", "ns")


def database_indices(record: DatasetRecord) -> np.ndarray:
    """Indices (into ``record.paths``) of the searched images: ``record.database`` or all of them."""
    return np.arange(len(record)) if record.database is None else np.asarray(record.database, dtype=int)


def _ranked_ids(record: DatasetRecord, distances: np.ndarray | None, ranks: np.ndarray | None) -> np.ndarray:
    if (distances is None) == (ranks is None):
        raise ValueError("evaluate_retrieval: pass exactly one of distances= or ranks=.")
    ranks = rank(distances) if ranks is None else np.asarray(ranks)
    db = database_indices(record)
    if ranks.ndim != 2 or ranks.shape[0] != len(record.queries):
        raise ValueError(
            f"evaluate_retrieval: {record.name!r} has {len(record.queries)} queries but the rankings have "
            f"shape {ranks.shape}; pass one row per query, in record.queries order."
        )
    if ranks.size and (ranks.min() < 0 or ranks.max() >= len(db)):
        raise ValueError(
            f"evaluate_retrieval: rankings hold column numbers up to {ranks.max()}, but {record.name!r} "
            f"searches {len(db)} images; ranks index the searched images (record.database), not record.paths."
        )
    return db[ranks]


def _metric_for(record: DatasetRecord, metric: str) -> str:
    from ..metrics import NS_SCORE

    if metric not in METRICS:
        raise ValueError(f"Unknown retrieval metric {metric!r}; choose one of {METRICS}.")
    if metric != "auto":
        return metric
    return "ns" if record.metric is NS_SCORE else "map"


def is_revisited(record: DatasetRecord) -> bool:
    """Whether ``record`` follows the revisited Oxford/Paris protocol (its loaders' protocol says "revisited")."""
    return record.protocol.startswith("revisited")


def junk_images(query: Query) -> frozenset[int]:
    """The images (indices into ``record.paths``) that ``query``'s score ignores: its junk list, and the query
    image itself unless it is one of its positives.

    The one rule behind :func:`evaluate_retrieval`, the galleries and the explorers: an image ranked for a query is
    relevant (a positive), junk (this set: neither helps nor hurts) or wrong. Holidays passes the query as junk,
    UKBench counts it as a positive (its N-S score includes it), Oxford/Paris list it among the "good" images.
    """
    positives = set(query.positives)
    return frozenset(query.junk) | (frozenset() if query.index in positives else frozenset({query.index}))


@dataclass(frozen=True, kw_only=True, eq=False)  # holds arrays: compared by identity
class RetrievalScores:
    """How well one ranking per query scores against ``record``'s ground truth (:func:`evaluate_retrieval`).

    ``map`` and the ``precision_at`` values are fractions (0-1). ``ap`` holds each query's AP, NaN for a query
    with no positive (skipped, counted in ``n_empty_queries``). ``precision_at`` maps 1, 5 and 10 to the revisited
    Oxford/Paris protocol's mean precision at that rank (empty for other records). ``ns_score`` (0-4) and
    ``ukbench_percent`` (``ns_score`` x 25) are set for UKBench-style records only.
    """

    map: float
    ap: np.ndarray
    n_queries: int
    n_empty_queries: int
    precision_at: dict[int, float] = field(default_factory=dict)
    ns_score: float | None = None
    ukbench_percent: float | None = None


def evaluate_retrieval(
    record: DatasetRecord,
    distances: np.ndarray | None = None,
    *,
    ranks: np.ndarray | None = None,
    metric: str = "auto",
) -> RetrievalScores:
    """mAP (junk ignored) and, for UKBench-style sets, the N-S score of one ranking per query.

    Pass ``distances`` ``(Q, N)`` or ``ranks`` ``(Q, N)`` (columns of the searched images, best first).
    ``metric="auto"`` adds the N-S score when the record's metric is the UKBench one; ``"ns"`` forces it.

    A query with no positive (a revisited Oxford/Paris query in a setting where it has none) is skipped and counted,
    as the official ``compute_map`` does: its AP is NaN and mAP averages the other queries. Revisited records also
    get that protocol's mean precision at 1, 5 and 10 (:func:`course_utils.metrics.revisited_precision_at`).
    """
    from ..metrics import REVISITED_KAPPAS, retrieval_ap, revisited_precision_at, ukbench_score

    ranked = _ranked_ids(record, distances, ranks)
    kappas = list(REVISITED_KAPPAS) if is_revisited(record) else []
    aps = np.full(len(record.queries), np.nan)
    precision = np.full((len(record.queries), len(kappas)), np.nan)
    for q, (query, row) in enumerate(zip(record.queries, ranked, strict=True)):
        if not query.positives:
            continue
        junk = junk_images(query)
        aps[q] = retrieval_ap(row.tolist(), query.positives, junk)
        if kappas:
            precision[q] = revisited_precision_at(row.tolist(), query.positives, junk, kappas)
    answered = ~np.isnan(aps)
    if not answered.any():
        raise ValueError(f"evaluate_retrieval: {record.name!r}: none of its {len(aps)} queries has a positive; mAP "
                         "is undefined. Check the ground truth (or the revisited setting chosen).")
    ns_score = None
    if _metric_for(record, metric) == "ns":
        ns_score = float(np.mean([ukbench_score(row.tolist(), query.positives)
                                  for query, row in zip(record.queries, ranked, strict=True)]))
    return RetrievalScores(
        map=float(aps[answered].mean()), ap=aps, n_queries=len(aps), n_empty_queries=int((~answered).sum()),
        precision_at={k: float(precision[answered, i].mean()) for i, k in enumerate(kappas)},
        ns_score=ns_score, ukbench_percent=None if ns_score is None else 25.0 * ns_score,
    )
