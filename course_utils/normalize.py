"""Feature normalisation as the paper applies it: L2, signed power and PCA-whitening.

Every step is a scikit-learn transformer, so the chains the paper uses are plain ``Pipeline`` objects that can be
cloned, cross-validated and printed. The paper's chains (``docs/protocols.md`` lists the sources):

* CNN-SVM: L2 only (every 4096-d vector has unit length).
* CNNaug-SVM: L2, then signed power with exponent 2 (the order is not stated; we suggest power, then L2 again).
* CNNaug-ss retrieval: L2, PCA to 500 dimensions with whitening, L2, signed power with exponent 2
  (following Jegou & Chum, ECCV 2012).

All transformers accept features shaped ``(N, D)`` or ``(N, V, D)`` (``V`` views per image, as the feature store
writes them) and act on the last axis only, so views never mix. PCA-whitening learns its statistics from every view
of every image it is fitted on.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

ORDERS = ("power_then_l2", "l2_then_power", "l2_then_power_then_l2")

# Features are accumulated into the covariance in blocks of this many rows, so that fitting PCA on
# (images x views) x 4096 float32 features never needs a float64 copy of the whole array.
_COVARIANCE_BLOCK_ROWS = 8192


def check_features(X: object, what: str = "X") -> np.ndarray:
    """``X`` as a floating array shaped ``(N, D)`` or ``(N, V, D)``, or an error saying what is wrong (in
    scikit-learn's words where its estimator checks look for them).

    float32 input stays float32 (feature stores hold float32 and copies of 4096-d features are large); any other
    numeric input becomes float64.
    """
    if hasattr(X, "tocsr"):  # a scipy sparse matrix or array
        raise TypeError(f"{what} is sparse; sparse input is not supported: pass a dense array (X.toarray()).")
    array = np.asarray(X)
    if array.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {what} has dtype {array.dtype}; pass real features.")
    if array.dtype.kind == "O":  # e.g. a pandas column of Python floats
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{what} must hold numbers: {err}") from err
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{what} must hold numbers; got dtype {array.dtype}.")
    if array.dtype != np.float32:
        array = array.astype(np.float64)
    if array.ndim not in (2, 3):
        raise ValueError(
            f"{what} must be 2-D (images, dims) or 3-D (images, views, dims); got shape {array.shape}. "
            "Reshape your data: a single vector becomes x[None, :]."
        )
    if array.shape[0] == 0 or array.shape[-1] == 0:
        count = "0 sample(s)" if array.shape[0] == 0 else "0 feature(s)"
        raise ValueError(f"{what} is empty: {count} (shape={array.shape}) while a minimum of 1 is required.")
    if not np.isfinite(array).all():
        bad = np.unique(np.argwhere(~np.isfinite(array))[:, 0])
        raise ValueError(
            f"{what} contains NaN or infinite values in {bad.size} row(s) (first: {bad[:5].tolist()}). "
            "Images that failed to load keep NaN rows in a FeatureSet; select FeatureSet.valid rows first."
        )
    return array


def check_n_features(estimator: object, array: np.ndarray, advice: str = "") -> None:
    """A ``ValueError`` when ``array``'s vectors are not as wide as those ``estimator`` was fitted on
    (``n_features_in_``; nothing to check before a fit), in scikit-learn's words plus ``advice``."""
    expected = getattr(estimator, "n_features_in_", None)
    if expected is not None and array.shape[-1] != expected:
        raise ValueError(f"X has {array.shape[-1]} features, but {type(estimator).__name__} is expecting {expected} "
                         f"features as input{advice}.")


def is_positive_number(value: object) -> bool:
    """True for a finite real number > 0 (not a bool, string or array), the rule for every scale parameter here."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and (
        bool(np.isfinite(value)) and value > 0
    )


def l2_rows(array: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Every vector (last axis) of ``array`` scaled to unit Euclidean length, the course's one L2 normalisation.

    A vector shorter than ``eps`` (an all-zero one) is divided by ``eps`` instead, so it stays (near) zero rather
    than becoming NaN. The result keeps ``array``'s floating dtype (float32 features stay float32).
    """
    norms = np.linalg.norm(array, axis=-1, keepdims=True)
    return array / np.maximum(norms, norms.dtype.type(eps))


def _as_rows(array: np.ndarray) -> np.ndarray:
    """All vectors of a 2-D or 3-D feature array as rows of one 2-D array (a view, not a copy, when possible)."""
    return array.reshape(-1, array.shape[-1])


def _principal_axes(rows: np.ndarray, mean: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``n_components`` covariance eigenvalues (ddof=1, descending) and unit eigenvectors as rows.

    The covariance (D x D) is accumulated block by block in float64; when there are fewer vectors than dimensions
    the smaller Gram matrix (N x N) gives the same non-zero eigenvalues far faster. Each eigenvector's
    largest-magnitude entry is made positive so that results do not depend on the eigensolver's sign choice.
    """
    n_samples, n_features = rows.shape
    if n_samples < n_features:
        centred = rows.astype(np.float64) - mean
        eigenvalues, vectors = np.linalg.eigh(centred @ centred.T / (n_samples - 1))
        order = np.argsort(eigenvalues)[::-1][:n_components]
        eigenvalues = np.maximum(eigenvalues[order], 0.0)
        components = (centred.T @ vectors[:, order]).T
        components /= np.linalg.norm(components, axis=1, keepdims=True)
    else:
        covariance = np.zeros((n_features, n_features))
        for start in range(0, n_samples, _COVARIANCE_BLOCK_ROWS):
            block = rows[start : start + _COVARIANCE_BLOCK_ROWS].astype(np.float64) - mean
            covariance += block.T @ block
        eigenvalues, vectors = np.linalg.eigh(covariance / (n_samples - 1))
        order = np.argsort(eigenvalues)[::-1][:n_components]
        eigenvalues = np.maximum(eigenvalues[order], 0.0)
        components = vectors[:, order].T
    largest = np.abs(components).argmax(axis=1)
    components *= np.sign(components[np.arange(n_components), largest])[:, None]
    return eigenvalues, components


class _StatelessTransformer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Shared plumbing of transformers that learn nothing: ``fit`` only records the input width."""

    def fit(self, X: object, y: object = None) -> _StatelessTransformer:
        self._check_params()
        self.n_features_in_ = check_features(X).shape[-1]
        return self

    def transform(self, X: object) -> np.ndarray:
        self._check_params()
        array = check_features(X)
        check_n_features(self, array)
        return self._apply(array)

    def _check_params(self) -> None:
        """Validate constructor arguments (scikit-learn convention: not in ``__init__``)."""

    def _apply(self, array: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __sklearn_tags__(self):  # scikit-learn >= 1.6; its Tags type does not exist in older versions
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags


class L2Normalizer(_StatelessTransformer):
    """Scale every vector (last axis) to unit Euclidean length.

    The paper L2-normalises every CNN vector in every experiment, because a linear SVM and an L2 distance are
    otherwise dominated by how strongly an image excites the network rather than by which units fire.
    Vectors whose norm is below ``eps`` (all-zero vectors) are returned unchanged instead of dividing by zero.
    """

    def __init__(self, eps: float = 1e-12) -> None:
        self.eps = eps

    def _check_params(self) -> None:
        if not is_positive_number(self.eps):
            raise ValueError(f"L2Normalizer: eps must be > 0; got {self.eps!r}.")

    def _apply(self, array: np.ndarray) -> np.ndarray:
        return l2_rows(array, self.eps)


class SignedPower(_StatelessTransformer):
    """Signed power ``sign(x) * |x| ** alpha`` per component.

    ``alpha = 0.5`` (the usual "power normalisation") damps bursty components; the paper's CNNaug-SVM and
    CNNaug-ss use ``alpha = 2``, which instead sharpens the largest components. The sign is kept so that features
    taken before a ReLU (negative values) stay distinguishable.
    """

    def __init__(self, alpha: float = 0.5) -> None:
        self.alpha = alpha

    def _check_params(self) -> None:
        if not is_positive_number(self.alpha):
            raise ValueError(f"SignedPower: alpha must be a finite number > 0; got {self.alpha!r}.")

    def _apply(self, array: np.ndarray) -> np.ndarray:
        return np.sign(array) * np.abs(array) ** array.dtype.type(self.alpha)


class PCAWhitening(TransformerMixin, BaseEstimator):
    """Project onto the top principal components and (optionally) divide each by its standard deviation.

    Fitted on one set (e.g. a separate image collection, or the database) and applied to another: the whitening
    statistics are part of the protocol, so where they come from must be explicit (see ``docs/protocols.md``).
    Whitening equalises the variance of all kept directions, which down-weights the few dominant, generic
    directions that co-occur in every image (Jegou & Chum, ECCV 2012).

    Parameters
    ----------
    n_components : int or None
        Dimensions kept (the paper uses 500). ``None`` keeps ``min(n_samples - 1, n_features)`` (centred data has
        no more directions than that). Asking for more raises, because the extra directions would have zero variance.
    whiten : bool
        Divide each projected coordinate by the square root of its eigenvalue.
    eps : float
        Eigenvalues below ``eps * largest eigenvalue`` are raised to that floor before whitening, so that
        near-degenerate directions are not blown up into noise.

    Attributes
    ----------
    mean_ : (D,) the mean vector of the fit set.
    components_ : (n_components, D) the principal directions, largest eigenvalue first, each with its
        largest-magnitude entry made positive (so that results do not depend on the eigensolver's sign choice).
    explained_variance_ : (n_components,) the covariance eigenvalues (variance along each component, ddof=1).
    n_features_in_, n_samples_seen_ : the fit set's width and number of vectors (images x views).
    """

    def __init__(self, n_components: int | None = 500, whiten: bool = True, eps: float = 1e-6) -> None:
        self.n_components = n_components
        self.whiten = whiten
        self.eps = eps

    def fit(self, X: object, y: object = None) -> PCAWhitening:
        rows = _as_rows(check_features(X))
        n_samples, n_features = rows.shape
        if n_samples < 2:
            raise ValueError("PCAWhitening needs at least 2 vectors to estimate a covariance; got 1 sample.")
        limit = min(n_samples - 1, n_features)
        n_components = limit if self.n_components is None else self.n_components
        if not (isinstance(n_components, (int, np.integer)) and 1 <= n_components <= limit):
            raise ValueError(
                f"PCAWhitening: n_components={self.n_components!r} must be an int between 1 and {limit} "
                f"(the fit set has {n_samples} vectors of {n_features} dims); fit on more vectors or keep fewer "
                "components."
            )
        if not is_positive_number(self.eps):
            raise ValueError(f"PCAWhitening: eps must be > 0; got {self.eps!r}.")
        mean = rows.mean(axis=0, dtype=np.float64)
        eigenvalues, components = _principal_axes(rows, mean, n_components)
        if not eigenvalues[0] > 0:
            raise ValueError("PCAWhitening: the fit set has zero variance (all vectors are equal); nothing to learn.")

        self.mean_ = mean
        self.components_ = components
        self.explained_variance_ = eigenvalues
        self.n_components_ = n_components
        self.n_features_in_ = n_features
        self.n_samples_seen_ = n_samples
        return self

    def transform(self, X: object) -> np.ndarray:
        check_is_fitted(self, "components_")
        array = check_features(X)
        check_n_features(self, array)
        projection = self.components_
        if self.whiten:
            floor = self.eps * self.explained_variance_[0]
            projection = projection / np.sqrt(np.maximum(self.explained_variance_, floor))[:, None]
        projected = (_as_rows(array) - self.mean_.astype(array.dtype)) @ projection.T.astype(array.dtype)
        return projected.reshape(*array.shape[:-1], self.n_components_)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        check_is_fitted(self, "components_")
        return np.array([f"pca{i}" for i in range(self.n_components_)], dtype=object)


def make_normalizer(
    power: float | None = None,
    l2: bool = True,
    order: str = "power_then_l2",
    pca_components: int | None = None,
) -> Pipeline:
    """The normalisation chain of one experiment as a ``Pipeline`` (step names say what each does).

    ``power``: exponent of :class:`SignedPower` (``None``: no power step; the paper's "aug" rows use 2).
    ``l2``: add an :class:`L2Normalizer`, after the power step (``order="power_then_l2"``, our choice for
    CNNaug-SVM, so the SVM sees unit vectors), before it (``order="l2_then_power"``, the paper's stated retrieval
    order) or both (``order="l2_then_power_then_l2"``, the retrieval chain of
    :class:`~course_utils.retrieval.RetrievalPostprocessor`: after the power step the lengths differ again).
    ``pca_components``: first L2-normalise, then PCA-whiten to this many dimensions (retrieval's CNNaug-ss uses
    500).

    Examples: CNN-SVM ``make_normalizer()``; CNNaug-SVM ``make_normalizer(power=2)``; CNNaug-ss
    ``make_normalizer(power=2, order="l2_then_power", pca_components=500)``. With nothing to do the pipeline is a
    single ``"passthrough"`` step (the "raw features" row of an ablation).
    """
    if order not in ORDERS:
        raise ValueError(f"make_normalizer: order must be one of {ORDERS}; got {order!r}.")
    steps: list[tuple[str, object]] = []
    if pca_components is not None:
        steps += [("l2_before_pca", L2Normalizer()), ("pca_whitening", PCAWhitening(n_components=pca_components))]
    tail: list[tuple[str, object]] = [] if power is None else [("signed_power", SignedPower(alpha=power))]
    if l2:
        l2_step = ("l2", L2Normalizer())
        if order == "power_then_l2":
            tail = [*tail, l2_step]
        elif order == "l2_then_power" or power is None:
            tail = [l2_step, *tail]
        else:
            tail = [l2_step, *tail, ("final_l2", L2Normalizer())]
    steps += tail
    return Pipeline(steps or [("identity", "passthrough")])


def normalize_features(X: object, power: float | None = None) -> np.ndarray:
    """The course's feature normalisation for classification (``docs/paper.md`` section 3), as float32: every vector
    (each view of each image) L2-normalised and, with a ``power`` other than ``None`` or 1, signed power then L2
    again (CNNaug-SVM's ``power=2``)."""
    plain = power is None or power == 1
    chain = make_normalizer() if plain else make_normalizer(power=power, order="l2_then_power_then_l2")
    return np.asarray(chain.fit_transform(np.asarray(X, dtype=np.float32)), dtype=np.float32)
