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
from dataclasses import dataclass, field

import numpy as np

from ..backbones import Backbone
from ..datasets.base import DatasetRecord
from .evaluate import RetrievalScores, database_indices, evaluate_retrieval
from .patches import SpatialPatches
from .postprocess import QueryExpansion, RetrievalPostprocessor
from .search import global_distances, rank, spatial_distances

METHODS = ("global", "spatial", "jitter")


@dataclass(frozen=True)
class ViewRecipes:
    """What each side of a search extracts per image, by method: the jitter recipe (``"jitter"``) and the levels
    of the spatial pyramids (``"spatial"``: 4 levels, 30 patches, per database image; 3 levels, 14, per query)."""

    jitter: str = "paper16"
    db_levels: int = 4
    query_levels: int = 3

    def for_method(self, method: str) -> tuple[object, object]:
        """The ``views=`` recipes of ``features.extract`` for the database and the query side of ``method``."""
        if method == "global":
            return "whole", "whole"
        if method == "spatial":
            return SpatialPatches(self.db_levels), SpatialPatches(self.query_levels)
        return self.jitter, self.jitter


@dataclass(frozen=True)
class SearchOptions:
    """How distances are computed (:func:`~course_utils.retrieval.search.spatial_distances`): storage ``dtype``
    (``"float16"`` halves the searched features' memory), database images per ``chunk``, ``device``, ``backend``."""

    dtype: str = "float32"
    chunk: int | None = None
    device: str = "cpu"
    backend: str = "torch"


@dataclass(frozen=True, kw_only=True, eq=False)  # holds arrays: compared by identity
class RetrievalOutcome(RetrievalScores):
    """What :func:`run_retrieval` measured: the scores of :class:`RetrievalScores` (``map``, ``ap``, ``ns_score``,
    ``ukbench_percent``, ``precision_at``, ``n_queries``, ``n_empty_queries``) and how they came about.

    ``ranks`` and ``distances`` are ``(Q, N)`` over the searched images, whose indices in ``record.paths`` are
    ``db_index`` (``query_index``: the queries'). ``setting`` names the row (backbone, layer, method, post-processing,
    query expansion); ``seconds`` times the ``"features"`` and ``"search"`` stages.
    """

    ranks: np.ndarray
    distances: np.ndarray | None
    layer: str
    seconds: dict[str, float]
    dataset: str
    backbone: str
    method: str
    setting: str
    db_index: np.ndarray
    query_index: np.ndarray


def _valid(features: np.ndarray) -> np.ndarray:
    """Which images have features: the NaN rows of images the feature engine skipped are left alone (rank last)."""
    return np.isfinite(features).all(axis=tuple(range(1, features.ndim)))


def _l2_valid_rows(features: np.ndarray) -> np.ndarray:
    """L2-normalise every vector, leaving the NaN rows of skipped images as they are (they rank last)."""
    from ..normalize import l2_rows

    out = np.array(features, dtype=np.float32)
    valid = _valid(out)
    if valid.any():
        out[valid] = l2_rows(out[valid])
    return out


def _postprocess_valid_rows(postprocess: RetrievalPostprocessor, features: np.ndarray) -> np.ndarray:
    valid = _valid(features)
    out = np.full((*features.shape[:-1], postprocess.n_components_), np.nan, dtype=np.float32)
    if valid.any():
        out[valid] = postprocess.transform(features[valid])
    return out


def _query_boxes(record: DatasetRecord) -> np.ndarray | None:
    boxes = [q.box for q in record.queries]
    if all(box is None for box in boxes):
        return None
    return np.array([[np.nan] * 4 if box is None else box for box in boxes], dtype=float)


def _reusable_db_rows(
    record: DatasetRecord, db: np.ndarray, method: str, recipes: ViewRecipes
) -> tuple[np.ndarray, int | None] | None:
    """Rows of the database features that already hold the queries' features, and how many views to keep.

    Possible when every query is a database image searched whole (no box) and its views are the database's, or
    (spatial search) their first views: a 3-level pyramid is the first 14 patches of the 4-level one.
    """
    if _query_boxes(record) is not None or (method == "spatial" and recipes.query_levels > recipes.db_levels):
        return None
    position = {int(index): row for row, index in enumerate(db)}
    rows = [position.get(q.index) for q in record.queries]
    if any(row is None for row in rows):
        return None
    n_views = SpatialPatches(recipes.query_levels).n_views if method == "spatial" else None
    return np.array(rows, dtype=int), n_views


@dataclass
class _Extraction:
    """One backbone's L2-normalised features of a list of images (``features.extract``, cached), for one layer."""

    backbone: str | Backbone
    layer: str | None
    options: dict = field(default_factory=dict)

    def __call__(self, paths: list, views: object, boxes: np.ndarray | None = None) -> np.ndarray:
        from .. import features

        found = features.extract(paths, self.backbone, None if self.layer is None else [self.layer], views=views,
                                 boxes=boxes, **self.options)
        self.layer = self.layer or found.layers[0]
        return _l2_valid_rows(found[self.layer])


def _check_request(record: DatasetRecord, method: str, qe: QueryExpansion | None) -> None:
    if method not in METHODS:
        raise ValueError(f"Unknown retrieval method {method!r}; choose one of {METHODS}.")
    if not record.queries:
        raise ValueError(f"Dataset {record.name!r} has no queries; run_retrieval needs a retrieval record.")
    if qe is not None and method != "global":
        raise ValueError(
            f"Query expansion averages global vectors; it does not apply to method={method!r}. "
            "Use method='global'."
        )


def _search_features(
    record: DatasetRecord, db: np.ndarray, method: str, recipes: ViewRecipes, extraction: _Extraction
) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised features ``(N, V, D)`` of the searched images and ``(Q, V', D)`` of the queries (read from the
    database's rows when the queries are database images searched whole)."""
    db_views, query_views = recipes.for_method(method)
    db_features = extraction([record.paths[i] for i in db], db_views)
    reuse = _reusable_db_rows(record, db, method, recipes)
    if reuse is not None:
        rows, n_views = reuse
        return db_features, db_features[rows, :n_views]
    query_paths = [record.paths[q.index] for q in record.queries]
    return db_features, extraction(query_paths, query_views, _query_boxes(record))


def _fit_postprocess(postprocess: RetrievalPostprocessor, fit_record: DatasetRecord | None, views: object,
                     extraction: _Extraction, db_features: np.ndarray) -> None:
    """Learn ``postprocess``'s PCA-whitening on ``fit_record``'s images, refusing any vector of the searched set."""
    if fit_record is None:
        raise ValueError(
            "postprocess is not fitted: pass fit_record= (another dataset, whose images learn the "
            "PCA-whitening) or fit it first with postprocess.fit(...)."
        )
    train = extraction(list(fit_record.paths), views)
    postprocess.fit(train[_valid(train)], searched=db_features[_valid(db_features)], fit_dataset=fit_record.name)


def _distances(method: str, query: np.ndarray, db: np.ndarray, qe: QueryExpansion | None,
               search: SearchOptions) -> np.ndarray:
    """Distances ``(Q, N)``: one vector per image (``"global"``, re-queried with ``qe``) or the views' search."""
    options = {"dtype": search.dtype, "chunk": search.chunk, "device": search.device, "backend": search.backend}
    if search.dtype == "float16":
        db = db.astype(np.float16)
    if method != "global":
        return spatial_distances(query, db, **options)
    distances = global_distances(query[:, 0], db[:, 0], **options)
    if qe is None:
        return distances
    expanded = qe.expand(query[:, 0], np.nan_to_num(db[:, 0]), rank(distances))
    return global_distances(expanded, db[:, 0], **options)


def run_retrieval(
    record: DatasetRecord,
    backbone: str | Backbone = "efficientnet_lite0",
    method: str = "global",
    layer: str | None = None,
    postprocess: RetrievalPostprocessor | None = None,
    qe: QueryExpansion | None = None,
    *,
    fit_record: DatasetRecord | None = None,
    recipes: ViewRecipes = ViewRecipes(),
    search: SearchOptions = SearchOptions(),
    extract_options: dict | None = None,
) -> RetrievalOutcome:
    """Search ``record``'s database with each of its queries and score the rankings.

    ``backbone`` is a registry name or a loaded :class:`~course_utils.backbones.Backbone` (load it once to run
    several settings). Features come from ``features.extract`` (cached; ``extract_options`` such as
    ``batch_size`` go to it) with the views of ``recipes``, are L2-normalised (the paper's raw "CNN"/"CNN-ss"
    features) and, with ``postprocess``, PCA-whitened and power-normalised; ``search`` says how distances are
    computed.
    """
    _check_request(record, method, qe)
    db = database_indices(record)
    extraction = _Extraction(backbone, layer, {"progress": False, **(extract_options or {})})
    started = time.perf_counter()
    db_features, query_features = _search_features(record, db, method, recipes, extraction)
    if postprocess is not None:
        if not hasattr(postprocess, "n_components_"):
            _fit_postprocess(postprocess, fit_record, recipes.for_method(method)[0], extraction, db_features)
        db_features = _postprocess_valid_rows(postprocess, db_features)
        query_features = _postprocess_valid_rows(postprocess, query_features)
    extracted = time.perf_counter()
    distances = _distances(method, query_features, db_features, qe, search)
    ranks = rank(distances)
    searched = time.perf_counter()
    backbone_name = backbone if isinstance(backbone, str) else backbone.name
    setting = f"{backbone_name}:{extraction.layer} {method}" + (" +pca-whiten-power" if postprocess is not None else "")
    return RetrievalOutcome(
        **vars(evaluate_retrieval(record, ranks=ranks)), ranks=ranks, distances=distances, layer=extraction.layer,
        seconds={"features": extracted - started, "search": searched - extracted}, dataset=record.name,
        backbone=backbone_name, method=method, setting=setting + (f" +{qe.name}" if qe is not None else ""),
        db_index=db, query_index=np.array([q.index for q in record.queries]),
    )
