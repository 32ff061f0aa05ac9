"""Instance retrieval as the paper does it (Sec. 4.2, Table 7), and a step beyond.

* :mod:`.patches`: the spatial-search pyramid of square patches (:class:`SpatialPatches`,
  :func:`patch_boxes`);
* :mod:`.search`: global, spatial and jittered-view search, chunked over the database
  (:func:`spatial_distances`);
* :mod:`.postprocess`: PCA-whitening + power normalisation (:class:`RetrievalPostprocessor`) and query
  expansion;
* :mod:`.evaluate`: mAP / N-S score of rankings (:class:`RetrievalScores`) and the junk rule
  (:func:`junk_images`);
* :mod:`.pipeline`: :func:`run_retrieval`, from a dataset record to a :class:`RetrievalOutcome` in one call.

``docs/retrieval.md`` gives the protocol and the choices the paper leaves open.
"""

from __future__ import annotations

from .evaluate import (
    RetrievalScores,
    database_indices,
    evaluate_retrieval,
    junk_images,
)
from .patches import SpatialPatches, crop_square, patch_boxes, patch_names, square_box
from .pipeline import METHODS, RetrievalOutcome, SearchOptions, ViewRecipes, run_retrieval
from .postprocess import QueryExpansion, RetrievalPostprocessor, count_shared_rows
from .search import BACKENDS, global_distances, global_search, jitter_distances, rank, spatial_distances

__all__ = [
    "BACKENDS",
    "METHODS",
    "QueryExpansion",
    "RetrievalOutcome",
    "RetrievalPostprocessor",
    "RetrievalScores",
    "SearchOptions",
    "SpatialPatches",
    "count_shared_rows",
    "crop_square",
    "database_indices",
    "evaluate_retrieval",
    "global_distances",
    "global_search",
    "jitter_distances",
    "junk_images",
    "patch_boxes",
    "patch_names",
    "rank",
    "run_retrieval",
    "spatial_distances",
    "square_box",
    "ViewRecipes",
]
