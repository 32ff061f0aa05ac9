"""What the paper does to retrieval features before searching ("CNNaug-ss"), and query expansion beyond it.

:class:`RetrievalPostprocessor` chains L2 -> PCA to ``pca_dim`` with whitening -> L2 -> signed power -> L2,
after Jegou & Chum (ECCV 2012) as the paper does. The final L2 is not in the paper (UNVERIFIED there); we add
it because after the power step the vectors' lengths differ again, and a distance between vectors of different
lengths mixes "how similar" with "how peaked". PCA-whitening must be learned on a *different* dataset from the
one searched (the paper's protocol; learning it on the searched images lets their statistics leak into the
result), so ``fit`` refuses training rows that are also rows of the searched set unless told otherwise.

:class:`QueryExpansion` (Chum et al. 2007, average QE; Radenovic et al. 2018, alpha-QE) re-queries with the
mean of the query and its top-``k`` results, weighted by similarity to the power ``alpha`` (``alpha = 0``:
plain average). It applies to one global vector per image.
"""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..normalize import l2_rows


def _rows(features: np.ndarray) -> np.ndarray:
    array = np.asarray(features, dtype=np.float32)
    return array.reshape(-1, array.shape[-1])


def _row_hashes(features: np.ndarray) -> set[bytes]:
    """A digest of every vector's float32 bytes: equal rows, and only those, share a digest."""
    rows = np.ascontiguousarray(_rows(features))
    return {hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in rows}


def count_shared_rows(features: np.ndarray, searched: np.ndarray) -> int:
    """How many vectors of ``features`` occur, bit for bit (as float32), among the vectors of ``searched``."""
    searched_hashes = _row_hashes(searched)
    rows = np.ascontiguousarray(_rows(features))
    return sum(hashlib.blake2b(row.tobytes(), digest_size=16).digest() in searched_hashes for row in rows)


class RetrievalPostprocessor(TransformerMixin, BaseEstimator):
    """L2 -> PCA-whitening to ``pca_dim`` -> L2 -> signed power ``power`` -> L2 (the paper's CNNaug-ss).

    The chain is :func:`course_utils.normalize.make_normalizer`'s (``order="l2_then_power_then_l2"``, or
    ``"l2_then_power"`` without ``final_l2``), fitted as ``chain_``; this class adds the retrieval protocol's guard
    (no whitening learned on the searched images) and the ``pca_dim`` cap.

    Accepts ``(N, D)`` or ``(N, V, D)`` features (every patch or view is one vector; PCA learns from all of
    them) and returns the same leading shape with ``pca_dim`` dimensions. ``pca_dim`` larger than the training
    set allows (``min(n_vectors - 1, D)``) is reduced to that, with a warning.
    """

    def __init__(self, pca_dim: int = 500, power: float = 2.0, final_l2: bool = True) -> None:
        self.pca_dim = pca_dim
        self.power = power
        self.final_l2 = final_l2

    def fit(
        self,
        X: np.ndarray,
        y: object = None,
        *,
        searched: np.ndarray | str | None = None,
        fit_dataset: str | None = None,
        allow_fit_on_searched: bool = False,
    ) -> RetrievalPostprocessor:
        """Learn the PCA-whitening on ``X``, which must not come from the searched images.

        ``searched`` is either the features of the images that will be searched (any row of ``X`` found among
        them is refused) or the searched dataset's name, compared with ``fit_dataset``, the name of the
        dataset ``X`` comes from. ``allow_fit_on_searched=True`` skips the check (e.g. to measure how much the
        leak helps).
        """
        from ..normalize import check_features, make_normalizer

        array = check_features(X, "X")
        if not allow_fit_on_searched:
            self._refuse_searched(array, searched, fit_dataset)
        n_vectors, dims = int(np.prod(array.shape[:-1])), array.shape[-1]
        limit = min(n_vectors - 1, dims)
        n_components = int(self.pca_dim)
        if n_components > limit:
            warnings.warn(
                f"RetrievalPostprocessor: pca_dim={self.pca_dim} is more than the {n_vectors} training "
                f"vectors of {dims} dims allow; using {limit}. Fit on more images for the paper's "
                "500.",
                stacklevel=2,
            )
            n_components = limit
        order = "l2_then_power_then_l2" if self.final_l2 else "l2_then_power"
        self.chain_ = make_normalizer(power=self.power, order=order, pca_components=n_components).fit(array)
        self.n_components_ = n_components
        self.n_features_in_ = dims
        self.fit_dataset_ = fit_dataset
        return self

    @staticmethod
    def _refuse_searched(
        array: np.ndarray, searched: np.ndarray | str | None, fit_dataset: str | None
    ) -> None:
        advice = (
            "Learn PCA-whitening on another dataset (the paper's protocol, e.g. Paris6k for Oxford5k), or "
            "pass allow_fit_on_searched=True to do it knowingly."
        )
        if isinstance(searched, str):
            if fit_dataset is None:
                raise ValueError(
                    f"RetrievalPostprocessor.fit: searched={searched!r} names the searched dataset; also say "
                    "which dataset X comes from with fit_dataset=..., so the two can be compared."
                )
            if fit_dataset == searched:
                raise ValueError(
                    f"RetrievalPostprocessor.fit: X comes from {fit_dataset!r}, the dataset being searched. "
                    f"{advice}"
                )
        elif searched is not None:
            shared = count_shared_rows(array, searched)
            if shared:
                raise ValueError(
                    f"RetrievalPostprocessor.fit: {shared} of the {len(_rows(array))} training vectors are "
                    f"also vectors of the searched set. {advice}"
                )

    def transform(self, X: np.ndarray) -> np.ndarray:
        """``X`` ``(N, D)`` or ``(N, V, D)`` through the fitted chain, with ``pca_dim`` dimensions."""
        from ..normalize import check_features, check_n_features

        check_is_fitted(self, "chain_")
        array = check_features(X, "X")
        check_n_features(self, array, "; use the same backbone layer for fitting and searching")
        return self.chain_.transform(array)


class QueryExpansion:
    """Re-query with the weighted mean of the query and its top ``k`` database vectors, then search again.

    The weight of a vector is its similarity (dot product) with the query, clipped at 0, to the power
    ``alpha``; the query itself has weight 1. ``alpha = 0`` is average query expansion (AQE, Chum et al.
    2007); ``alpha = 3`` is alpha-QE as Radenovic et al. (2018) use it. Vectors should be L2-normalised; the
    expanded query is L2-normalised again.
    """

    def __init__(self, k: int = 5, alpha: float = 0.0) -> None:
        if int(k) < 1:
            raise ValueError(f"QueryExpansion: k must be >= 1 (number of top results averaged), got {k}.")
        if not alpha >= 0:
            raise ValueError(f"QueryExpansion: alpha must be >= 0, got {alpha}.")
        self.k, self.alpha = int(k), float(alpha)

    @property
    def name(self) -> str:
        return f"aqe{self.k}" if self.alpha == 0 else f"alpha{self.alpha:g}qe{self.k}"

    def expand(self, query: np.ndarray, db: np.ndarray, ranks: np.ndarray) -> np.ndarray:
        """Expanded queries ``(Q, D)`` from queries ``(Q, D)``, database ``(N, D)`` and first-round ranks."""
        query, db = np.asarray(query, dtype=np.float64), np.asarray(db, dtype=np.float64)
        top = np.asarray(ranks)[:, : self.k]
        neighbours = db[top]  # (Q, k, D)
        similarity = np.einsum("qd,qkd->qk", query, neighbours)
        weights = np.clip(similarity, 0.0, None) ** self.alpha if self.alpha else np.ones_like(similarity)
        expanded = query + np.einsum("qk,qkd->qd", weights, neighbours)
        return l2_rows(expanded).astype(np.float32)

    def __repr__(self) -> str:
        return f"QueryExpansion(k={self.k}, alpha={self.alpha:g})"
