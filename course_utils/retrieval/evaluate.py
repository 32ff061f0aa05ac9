"""Scores of a set of rankings against a dataset's ground truth, and rankings saved for galleries.

Rows of a distance or rank matrix are ``record.queries`` in order; columns are the searched images,
``record.database`` (or every image when the record has no ``database``). The query image itself is ignored
(treated as junk) unless the record lists it as a positive: Holidays passes it as junk, UKBench counts it (its
N-S score includes the query), Oxford/Paris list it among the "good" images, and the demo set keeps queries
out of the database, so this one rule serves all of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..datasets.base import DatasetRecord
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
    if metric not in METRICS:
        raise ValueError(f"Unknown retrieval metric {metric!r}; choose one of {METRICS}.")
    if metric != "auto":
        return metric
    return "ns" if record.metric.lower().startswith("n-s") else "map"


def is_revisited(record: DatasetRecord) -> bool:
    """Whether ``record`` follows the revisited Oxford/Paris protocol (its loaders' protocol says "revisited")."""
    return record.protocol.startswith("revisited")


def evaluate_retrieval(
    record: DatasetRecord,
    distances: np.ndarray | None = None,
    *,
    ranks: np.ndarray | None = None,
    metric: str = "auto",
) -> dict:
    """mAP (junk ignored) and, for UKBench-style sets, the N-S score of one ranking per query.

    Pass ``distances`` ``(Q, N)`` or ``ranks`` ``(Q, N)`` (columns of the searched images, best first).
    ``metric="auto"`` adds the N-S score when the record's metric is the UKBench one; ``"ns"`` forces it.

    A query with no positive (a revisited Oxford/Paris query in a setting where it has none) is skipped and counted,
    as the official ``compute_map`` does: its AP is NaN and mAP averages the other queries. Revisited records also
    get that protocol's mean precision at 1, 5 and 10 (:func:`course_utils.metrics.revisited_precision_at`).

    Returns ``{"map", "ap" (per query), "n_queries", "n_empty_queries"}``, plus ``"mp@1"``, ``"mp@5"``, ``"mp@10"``
    (fractions, like ``map``), ``"precision_at"`` ``(Q, 3)`` and ``"kappas"`` for revisited records, and
    ``"ns_score"`` (mean, max 4) and ``"ukbench_percent"`` (x 25) when computed.
    """
    from ..metrics import REVISITED_KAPPAS, retrieval_ap, revisited_precision_at, ukbench_score

    ranked = _ranked_ids(record, distances, ranks)
    searched = set(database_indices(record).tolist())
    kappas = list(REVISITED_KAPPAS) if is_revisited(record) else []
    aps = np.full(len(record.queries), np.nan)
    precision = np.full((len(record.queries), len(kappas)), np.nan)
    for q, (query, row) in enumerate(zip(record.queries, ranked, strict=True)):
        if not query.positives:
            continue
        junk = set(query.junk)
        if query.index in searched and query.index not in query.positives:
            junk.add(query.index)
        aps[q] = retrieval_ap(row.tolist(), query.positives, junk)
        if kappas:
            precision[q] = revisited_precision_at(row.tolist(), query.positives, junk, kappas)
    answered = ~np.isnan(aps)
    if not answered.any():
        raise ValueError(f"evaluate_retrieval: {record.name!r}: none of its {len(aps)} queries has a positive; mAP "
                         "is undefined. Check the ground truth (or the revisited setting chosen).")
    result = {"map": float(aps[answered].mean()), "ap": aps, "n_queries": len(aps),
              "n_empty_queries": int((~answered).sum())}
    if kappas:
        result.update({f"mp@{k}": float(precision[answered, i].mean()) for i, k in enumerate(kappas)})
        result.update(precision_at=precision, kappas=kappas)
    if _metric_for(record, metric) == "ns":
        scores = [
            ukbench_score(row.tolist(), query.positives)
            for query, row in zip(record.queries, ranked, strict=True)
        ]
        result["ns_score"] = float(np.mean(scores))
        result["ukbench_percent"] = 25.0 * result["ns_score"]
    return result


def save_rankings(
    path: str | Path,
    ranks: np.ndarray,
    record: DatasetRecord,
    distances: np.ndarray | None = None,
    top: int = 100,
) -> Path:
    """Write the first ``top`` results of every query to ``path`` (``.npz`` or ``.json``), atomically.

    Both formats hold, per query, its index, name and path and its ranked database indices and paths (indices
    into ``record.paths``), with distances when given, so a notebook can draw a gallery without the features.
    """
    from ..datasets.images import atomic_path, write_text_atomic

    path = Path(path)
    if path.suffix not in (".npz", ".json"):
        raise ValueError(f"save_rankings: {path} must end in .npz or .json.")
    ranked = _ranked_ids(record, None, ranks)[:, :top]
    columns = np.asarray(ranks)[:, :top]
    kept = None if distances is None else np.take_along_axis(np.asarray(distances), columns, axis=1)
    query_index = np.array([q.index for q in record.queries], dtype=int)
    if path.suffix == ".npz":
        arrays = {
            "dataset": np.array(record.name),
            "query_index": query_index,
            "query_name": np.array([q.name for q in record.queries]),
            "ranked_index": ranked,
            "paths": np.array([str(p) for p in record.paths]),
        }
        if kept is not None:
            arrays["distance"] = kept
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:  # a file handle: np.savez would append ".npz" to a bare name
                np.savez_compressed(handle, **arrays)
        return path
    queries = []
    for row, q in enumerate(record.queries):
        results = [{"index": int(i), "path": str(record.paths[i])} for i in ranked[row]]
        if kept is not None:
            for item, value in zip(results, kept[row], strict=True):
                item["distance"] = float(value)
        queries.append(
            {"index": q.index, "name": q.name, "path": str(record.paths[q.index]), "results": results}
        )
    return write_text_atomic(path, json.dumps({"dataset": record.name, "queries": queries}, indent=1))


def load_rankings(path: str | Path) -> dict:
    """Read back :func:`save_rankings`' file as ``{"dataset", "query_index", "query_name", "query_path",
    "ranked_index" (Q, top), "ranked_path" (Q, top), "distance" (Q, top) or None}``."""
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            paths = data["paths"]
            ranked = data["ranked_index"]
            return {
                "dataset": str(data["dataset"]),
                "query_index": data["query_index"],
                "query_name": data["query_name"].tolist(),
                "query_path": paths[data["query_index"]].tolist(),
                "ranked_index": ranked,
                "ranked_path": paths[ranked],
                "distance": data["distance"] if "distance" in data.files else None,
            }
    if path.suffix != ".json":
        raise ValueError(f"load_rankings: {path} must end in .npz or .json.")
    content = json.loads(path.read_text(encoding="utf-8"))
    queries = content["queries"]
    has_distance = any("distance" in r for q in queries for r in q["results"])
    return {
        "dataset": content["dataset"],
        "query_index": np.array([q["index"] for q in queries], dtype=int),
        "query_name": [q["name"] for q in queries],
        "query_path": [q["path"] for q in queries],
        "ranked_index": np.array([[r["index"] for r in q["results"]] for q in queries], dtype=int),
        "ranked_path": np.array([[r["path"] for r in q["results"]] for q in queries]),
        "distance": np.array([[r["distance"] for r in q["results"]] for q in queries])
        if has_distance
        else None,
    }
