"""One call from a dataset record to scores and rankings: extract, post-process, search, evaluate.

``method`` chooses the paper's representation (Table 7):

* ``"global"``: one vector per image (the "CNN" row), optionally with query expansion;
* ``"spatial"``: the patch pyramid, 30 squares per database image and 14 per query (Oxford, Paris,
  Sculptures);
* ``"jitter"``: the classification jitter (``paper16`` views) for both sides (Holidays, UKBench).

``postprocess`` (a :class:`RetrievalPostprocessor`) turns "CNN-ss" into "CNNaug-ss"; an unfitted one is fitted
on ``fit_record``'s images (never the searched ones: the fit refuses shared vectors). R-MAC and GeM are layers
(``layer="head@rmac"``, ``"head@gem"``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..backbones import Backbone
from ..datasets.base import DatasetRecord
from .evaluate import database_indices, evaluate_retrieval, save_rankings
from .patches import SpatialPatches
from .postprocess import QueryExpansion, RetrievalPostprocessor
from .search import global_distances, rank, spatial_distances

METHODS = ("global", "spatial", "jitter")


def _l2_valid_rows(features: np.ndarray) -> np.ndarray:
    """L2-normalise every vector, leaving the NaN rows of skipped images as they are (they rank last)."""
    from ..normalize import L2Normalizer

    out = np.array(features, dtype=np.float32)
    valid = np.isfinite(out).all(axis=tuple(range(1, out.ndim)))
    if valid.any():
        out[valid] = L2Normalizer().fit_transform(out[valid])
    return out


def _postprocess_valid_rows(postprocess: RetrievalPostprocessor, features: np.ndarray) -> np.ndarray:
    valid = np.isfinite(features).all(axis=tuple(range(1, features.ndim)))
    out = np.full((*features.shape[:-1], postprocess.n_components_), np.nan, dtype=np.float32)
    if valid.any():
        out[valid] = postprocess.transform(features[valid])
    return out


def _query_boxes(record: DatasetRecord) -> np.ndarray | None:
    boxes = [q.box for q in record.queries]
    if all(box is None for box in boxes):
        return None
    return np.array([[np.nan] * 4 if box is None else box for box in boxes], dtype=float)


def _views(method: str, jitter_views: str, db_levels: int, query_levels: int) -> tuple[object, object]:
    if method == "global":
        return "whole", "whole"
    if method == "spatial":
        return SpatialPatches(db_levels), SpatialPatches(query_levels)
    return jitter_views, jitter_views


def _reusable_db_rows(
    record: DatasetRecord, db: np.ndarray, method: str, db_levels: int, query_levels: int
) -> tuple[np.ndarray, int] | None:
    """Rows of the database features that already hold the queries' features, and how many views to keep.

    Possible when every query is a database image searched whole (no box) and its views are the database's, or
    (spatial search) their first views: a 3-level pyramid is the first 14 patches of the 4-level one.
    """
    if _query_boxes(record) is not None or (method == "spatial" and query_levels > db_levels):
        return None
    position = {int(index): row for row, index in enumerate(db)}
    rows = [position.get(q.index) for q in record.queries]
    if any(row is None for row in rows):
        return None
    n_views = SpatialPatches(query_levels).n_views if method == "spatial" else None
    return np.array(rows, dtype=int), n_views


def run_retrieval(
    record: DatasetRecord,
    backbone: str | Backbone = "efficientnet_lite0",
    method: str = "global",
    layer: str | None = None,
    postprocess: RetrievalPostprocessor | None = None,
    qe: QueryExpansion | None = None,
    *,
    fit_record: DatasetRecord | None = None,
    jitter_views: str = "paper16",
    db_levels: int = 4,
    query_levels: int = 3,
    dtype: str = "float32",
    chunk: int | None = None,
    device: str = "cpu",
    backend: str = "torch",
    save_to: str | Path | None = None,
    extract_options: dict | None = None,
) -> dict:
    """Search ``record``'s database with each of its queries and score the rankings.

    ``backbone`` is a registry name or a loaded :class:`~course_utils.backbones.Backbone` (load it once to run
    several settings). Features come from ``features.extract`` (cached), are L2-normalised (the paper's raw
    "CNN"/"CNN-ss" features) and, with ``postprocess``, PCA-whitened and power-normalised. ``dtype="float16"``
    keeps the searched features in half precision (half the memory). ``save_to`` (``.npz``/``.json``) keeps
    the top 100 results per query for galleries. ``extract_options`` go to ``features.extract`` (e.g.
    ``batch_size``).

    Returns a dict with the metrics of :func:`evaluate_retrieval` (``map``, ``ap``, and ``ns_score`` for
    UKBench-style sets), ``distances`` and ``ranks`` ``(Q, N)`` over the searched images, ``db_index`` (their
    indices in ``record.paths``), ``query_index``, a ``setting`` string and timings in ``seconds``.
    """
    from .. import features

    if method not in METHODS:
        raise ValueError(f"Unknown retrieval method {method!r}; choose one of {METHODS}.")
    if not record.queries:
        raise ValueError(f"Dataset {record.name!r} has no queries; run_retrieval needs a retrieval record.")
    if qe is not None and method != "global":
        raise ValueError(
            f"Query expansion averages global vectors; it does not apply to method={method!r}. "
            "Use method='global'."
        )
    options = {"progress": False, **(extract_options or {})}
    db_views, query_views = _views(method, jitter_views, db_levels, query_levels)
    db = database_indices(record)
    started = time.perf_counter()

    db_set = features.extract(
        [record.paths[i] for i in db], backbone, None if layer is None else [layer], views=db_views, **options
    )
    layer = layer or db_set.layers[0]
    db_features = _l2_valid_rows(db_set[layer])
    reuse = _reusable_db_rows(record, db, method, db_levels, query_levels)
    if reuse is not None:
        rows, n_views = reuse
        query_features = db_features[rows, :n_views]
    else:
        query_set = features.extract(
            [record.paths[q.index] for q in record.queries],
            backbone,
            [layer],
            views=query_views,
            boxes=_query_boxes(record),
            **options,
        )
        query_features = _l2_valid_rows(query_set[layer])

    if postprocess is not None:
        if not hasattr(postprocess, "pca_"):
            if fit_record is None:
                raise ValueError(
                    "postprocess is not fitted: pass fit_record= (another dataset, whose images learn the "
                    "PCA-whitening) or fit it first with postprocess.fit(...)."
                )
            fit_set = features.extract(list(fit_record.paths), backbone, [layer], views=db_views, **options)
            train = _l2_valid_rows(fit_set[layer])
            train = train[np.isfinite(train).all(axis=(1, 2))]
            postprocess.fit(
                train,
                searched=db_features[np.isfinite(db_features).all(axis=(1, 2))],
                fit_dataset=fit_record.name,
            )
        db_features = _postprocess_valid_rows(postprocess, db_features)
        query_features = _postprocess_valid_rows(postprocess, query_features)
    extracted = time.perf_counter()

    if dtype == "float16":
        db_features = db_features.astype(np.float16)
    search = {"dtype": dtype, "chunk": chunk, "device": device, "backend": backend}
    if method == "global":
        distances = global_distances(query_features[:, 0], db_features[:, 0], **search)
        if qe is not None:
            expanded = qe.expand(query_features[:, 0], np.nan_to_num(db_features[:, 0]), rank(distances))
            distances = global_distances(expanded, db_features[:, 0], **search)
    else:
        distances = spatial_distances(query_features, db_features, **search)
    ranks = rank(distances)
    searched = time.perf_counter()

    result = evaluate_retrieval(record, ranks=ranks)
    backbone_name = backbone if isinstance(backbone, str) else backbone.name
    setting = f"{backbone_name}:{layer} {method}" + (" +pca-whiten-power" if postprocess is not None else "")
    result.update(
        dataset=record.name,
        backbone=backbone_name,
        layer=layer,
        method=method,
        setting=setting + (f" +{qe.name}" if qe is not None else ""),
        distances=distances,
        ranks=ranks,
        db_index=db,
        query_index=np.array([q.index for q in record.queries]),
        seconds={"features": extracted - started, "search": searched - extracted},
    )
    if save_to is not None:
        result["saved_to"] = save_rankings(save_to, ranks, record, distances)
    return result
