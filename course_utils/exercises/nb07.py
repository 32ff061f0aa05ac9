"""Checkers for notebook 07's exercises (see :mod:`course_utils.exercises.checking` for how a checker is written)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import metrics
from ..normalize import PCAWhitening
from ..retrieval.search import spatial_distances
from .checking import Checker, exercise


def _patches(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A query of 3 patches and a database image of 5 patches, 4 numbers each."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(3, 4)), rng.normal(size=(5, 4))


@exercise("07", "mean-of-min spatial distance")
def check_mean_of_min_distance(fn: Callable) -> None:
    """``mean_of_min_distance(query_patches, db_patches)``: the mean over query patches of the L2 distance to the
    nearest database patch (paper Sec. 4.2)."""
    with Checker("mean-of-min spatial distance") as check:
        for seed in (0, 1, 2):
            query, database = _patches(seed)
            got = check.number(check.call(fn, query, database), what="the distance")
            want = float(spatial_distances(query[None], database[None])[0, 0])
            pairs = np.linalg.norm(query[:, None, :] - database[None, :, :], axis=2)  # (3, 5)
            mistakes = {
                "squared": ((pairs ** 2).min(axis=1).mean(),
                            "use the L2 distance itself, not its square: np.linalg.norm(a - b), or take "
                            "np.sqrt of the squared distances before the minimum and the mean."),
                "swapped": (pairs.min(axis=0).mean(),
                            "the roles are swapped: the mean runs over the *query's* patches, each looking for its "
                            "nearest patch of the database image (min over axis 1 of a (query, database) matrix)."),
                "min of min": (pairs.min(),
                               "that is the single closest pair of patches; the paper averages, over every query "
                               "patch, the distance to its own nearest database patch."),
                "mean of all": (pairs.mean(),
                                "that is the mean over all pairs of patches; take the minimum over the database "
                                "patches first, then the mean over the query patches."),
                "max": (pairs.max(axis=1).mean(),
                        "take each query patch's *nearest* database patch (min), not its farthest."),
            }
            for value, hint in mistakes.values():
                check.require(np.isclose(want, value) or not np.isclose(got, value), hint)
            check.close(got, want, f"the distance should be {want:.4f}; yours is {got:.4f}.", atol=1e-5)


AP_CASES = (
    (["A", "J", "X", "B", "Y"], ["A", "B"], ["J"]),
    (["X", "A", "Y", "J1", "B", "Z", "J2", "C"], ["A", "B", "C"], ["J1", "J2"]),
    (["A", "X", "J", "B", "Y", "Z"], ["A", "B", "C"], ["J"]),  # C is never retrieved
)


def _ap_mistakes(ranked: list, positives: list, junk: list) -> dict[str, float]:
    kept = [item for item in ranked if item not in junk]
    hits = np.array([item in positives for item in kept], dtype=float)
    found = np.cumsum(hits)
    precision = found / np.arange(1, hits.size + 1)
    at_hits = precision[hits > 0]
    return {
        "junk counted": metrics.retrieval_ap(ranked, positives),
        "no trapezoid": float(at_hits.sum() / len(positives)),
        "divided by found": float(metrics.retrieval_ap(ranked, positives, junk) * len(positives) / found[-1]),
    }


AP_HINTS = {
    "junk counted": "junk images count neither for nor against: drop them from the ranking before you walk down "
                    "it (they are not wrong results).",
    "no trapezoid": "that is the precision-at-each-hit AP; the Oxford and Holidays scripts use the trapezoid "
                    "rule: each hit adds (1 / n_positives) x (precision before it + precision at it) / 2, with "
                    "precision 1 before the first result.",
    "divided by found": "a positive that is never retrieved still counts: divide by the number of positives, not "
                        "by how many were found.",
}


@exercise("07", "retrieval AP with junk ignored")
def check_retrieval_ap_with_junk(fn: Callable) -> None:
    """``retrieval_ap_with_junk(ranked_ids, positives, junk)``: the Oxford/Holidays trapezoid AP, junk dropped."""
    with Checker("retrieval AP with junk ignored") as check:
        for ranked, positives, junk in AP_CASES:
            got = check.number(check.call(fn, ranked, positives, junk), what="the AP")
            want = metrics.retrieval_ap(ranked, positives, junk)
            if not np.isclose(got, want):
                for mistake, value in _ap_mistakes(ranked, positives, junk).items():
                    check.require(np.isclose(value, want) or not np.isclose(got, value), AP_HINTS[mistake])
            check.close(got, want, f"ranking {ranked}, positives {positives}, junk {junk}: the AP is {want:.4f}; "
                                   f"yours is {got:.4f}. Work it out by hand as in section 5.")


def _ukbench_rankings() -> np.ndarray:
    """Rankings of 12 images (3 objects of 4: images 4k..4k+3) for each image as a query, the query first."""
    rng = np.random.default_rng(0)
    objects = np.arange(12) // 4
    distances = rng.uniform(0.3, 1.0, size=(12, 12)) - 0.2 * (objects[:, None] == objects[None, :])
    np.fill_diagonal(distances, 0.0)
    return metrics.rankings_from_distances(distances)


@exercise("07", "UKBench N-S score")
def check_ukbench_ns_score(fn: Callable) -> None:
    """``ukbench_ns_score(rankings)``: the mean over queries of how many of the query's 4 images are in its top 4."""
    rankings = _ukbench_rankings()
    scores = [metrics.ukbench_score(rankings[q], range(4 * (q // 4), 4 * (q // 4) + 4)) for q in range(12)]
    want = float(np.mean(scores))
    with Checker("UKBench N-S score") as check:
        got = check.number(check.call(fn, rankings), what="the N-S score")
        check.require(not np.isclose(got, 25 * want), "that is Table 7's percentage (N-S x 25); return the N-S "
                                                      "score itself, between 0 and 4.")
        check.require(not np.isclose(got, np.sum(scores)), "return the *mean* over queries, not the sum.")
        groups = [set(range(4 * (q // 4), 4 * (q // 4) + 4)) for q in range(12)]
        without_query = np.mean([len(set(rankings[q][1:5]) & groups[q]) for q in range(12)])
        check.require(not np.isclose(got, without_query),
                      "the query itself is one of its object's 4 images and counts when it comes first: look at "
                      "rankings[q][:4], not rankings[q][1:5].")
        top_five = np.mean([len(set(rankings[q][:5]) & groups[q]) for q in range(12)])
        check.require(not np.isclose(got, top_five), "only the top 4 results count (rankings[q][:4]).")
        shifted = np.mean([len(set(rankings[q][:4]) & set(range(q, q + 4))) for q in range(12)])
        check.require(not np.isclose(got, shifted),
                      "image q belongs to object q // 4, whose images are 4 * (q // 4) to 4 * (q // 4) + 3; "
                      "images q to q + 3 are not one object unless q is a multiple of 4.")
        check.close(got, want, f"the mean N-S score of these rankings is {want:.4f}; yours is {got:.4f}.")
        perfect = np.array([np.r_[[q], [i for i in range(4 * (q // 4), 4 * (q // 4) + 4) if i != q],
                                  [i for i in range(12) if i // 4 != q // 4]] for q in range(12)])
        check.close(check.number(check.call(fn, perfect), what="the N-S score"), 4.0,
                    "a perfect ranking (every object's 4 images first) should score 4.0.")


def _whitening_sets() -> tuple[np.ndarray, np.ndarray]:
    """200 vectors to learn from and 10 others to transform, of 8 dimensions, with different means and spreads."""
    rng = np.random.default_rng(0)
    fit = rng.normal(size=(200, 8)) * np.array([5.0, 3.0, 2.0, 1.5, 1.0, 0.7, 0.5, 0.3]) + 1.0
    vectors = rng.normal(size=(10, 8)) * 2.0 - 0.5
    return fit, vectors


def _gram(x: np.ndarray) -> np.ndarray:
    """Inner products between rows: unchanged by the sign of each principal direction, which PCA does not fix."""
    return x @ x.T


def _whiten(fit: np.ndarray, vectors: np.ndarray, dim: int, *, centre: np.ndarray | None = None,
            power: float = 0.5, l2: bool = True) -> np.ndarray:
    pca = PCAWhitening(n_components=dim, whiten=False).fit(fit)
    centred = vectors - (pca.mean_ if centre is None else centre)
    out = centred @ pca.components_.T / pca.explained_variance_ ** power
    return out / np.linalg.norm(out, axis=1, keepdims=True) if l2 else out


@exercise("07", "PCA-whitening fitted on another set")
def check_whiten_with_other_set(fn: Callable) -> None:
    """``whiten_with_other_set(fit_vectors, vectors, dim)``: PCA learned on ``fit_vectors`` (mean, top ``dim``
    directions, their variances) applied to ``vectors``: centre, project, divide by the standard deviation, L2."""
    fit, vectors = _whitening_sets()
    dim = 3
    with Checker("PCA-whitening fitted on another set") as check:
        got = check.array(check.call(fn, fit, vectors, dim), what="the whitened vectors")
        check.require(got.shape == (10, dim), f"10 vectors kept to dim={dim} directions should give shape (10, {dim}); "
                                              f"got {got.shape}. Keep the top `dim` principal directions only.")
        check.require(np.allclose(np.linalg.norm(got, axis=1), 1.0),
                      "the rows are not unit length: L2-normalise each whitened vector at the end.")
        want = _gram(_whiten(fit, vectors, dim))
        if not np.allclose(_gram(got), want, atol=1e-6):
            learned_on_searched = _gram(_whiten(vectors, vectors, dim))
            check.require(not np.allclose(_gram(got), learned_on_searched, atol=1e-6),
                          "the PCA was learned on `vectors`, the images being searched: learn the mean, the "
                          "directions and the variances on `fit_vectors` only, then apply them to `vectors`.")
            own_mean = _gram(_whiten(fit, vectors, dim, centre=vectors.mean(axis=0)))
            check.require(not np.allclose(_gram(got), own_mean, atol=1e-6),
                          "centre `vectors` with the mean of `fit_vectors` (part of what is learned), not with "
                          "their own mean.")
            check.require(not np.allclose(_gram(got), _gram(_whiten(fit, vectors, dim, power=0.0)), atol=1e-6),
                          "that is a plain PCA projection: whitening also divides each coordinate by the standard "
                          "deviation of its direction, np.sqrt(eigenvalue).")
            check.require(not np.allclose(_gram(got), _gram(_whiten(fit, vectors, dim, power=1.0)), atol=1e-6),
                          "divide by the standard deviation, np.sqrt(eigenvalue), not by the eigenvalue (the "
                          "variance) itself.")
            smallest = PCAWhitening(n_components=8, whiten=False).fit(fit)
            low = (vectors - smallest.mean_) @ smallest.components_[-dim:].T / np.sqrt(
                smallest.explained_variance_[-dim:])
            low /= np.linalg.norm(low, axis=1, keepdims=True)
            check.require(not np.allclose(_gram(got), _gram(low), atol=1e-6),
                          "these are the directions of *smallest* variance: np.linalg.eigh returns eigenvalues in "
                          "ascending order, so sort them largest first (np.argsort(values)[::-1]).")
        check.close(_gram(got), want, "the whitened vectors differ from centre (fit mean) -> project on the top "
                                      "`dim` eigenvectors of fit's covariance -> divide by sqrt(eigenvalue) -> L2.",
                    atol=1e-6)
