"""Notebook 07's checkers give each typical mistake its own hint."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.exercises import ExerciseFailed, check


def _pairs(query_patches, db_patches):
    return np.linalg.norm(query_patches[:, None, :] - db_patches[None, :, :], axis=2)


@pytest.mark.parametrize(("distance", "hint"), [
    (lambda d: (d ** 2).min(axis=1).mean(), "not its square"),
    (lambda d: d.min(axis=0).mean(), "the roles are swapped: the mean runs over the \\*query's\\* patches"),
    (lambda d: d.min(), "that is the single closest pair of patches"),
    (lambda d: d.mean(), "that is the mean over all pairs of patches"),
    (lambda d: d.max(axis=1).mean(), "\\*nearest\\* database patch \\(min\\), not its farthest"),
])
def test_mean_of_min_mistakes(distance, hint) -> None:
    def mean_of_min_distance(query_patches, db_patches):
        return distance(_pairs(query_patches, db_patches))

    with pytest.raises(ExerciseFailed, match=hint):
        check(mean_of_min_distance)


def _trapezoid(ranked, positives, junk, drop_junk=True, divide_by_found=False):
    kept = [item for item in ranked if not (drop_junk and item in junk)]
    ap, found = 0.0, 0
    for position, item in enumerate(kept, start=1):
        if item in positives:
            before = found / (position - 1) if position > 1 else 1.0
            found += 1
            ap += (before + found / position) / 2
    return ap / (found if divide_by_found else len(positives))


def test_retrieval_ap_counting_junk_as_wrong() -> None:
    def retrieval_ap_with_junk(ranked_ids, positives, junk):
        return _trapezoid(ranked_ids, positives, junk, drop_junk=False)

    with pytest.raises(ExerciseFailed, match="junk images count neither for nor against: drop them"):
        check(retrieval_ap_with_junk)


def test_retrieval_ap_without_the_trapezoid() -> None:
    def retrieval_ap_with_junk(ranked_ids, positives, junk):
        kept = [item for item in ranked_ids if item not in junk]
        hits = np.array([item in positives for item in kept])
        precision = np.cumsum(hits) / np.arange(1, len(kept) + 1)
        return precision[hits].sum() / len(positives)

    with pytest.raises(ExerciseFailed, match="that is the precision-at-each-hit AP; .* trapezoid rule"):
        check(retrieval_ap_with_junk)


def test_retrieval_ap_dividing_by_the_positives_found() -> None:
    def retrieval_ap_with_junk(ranked_ids, positives, junk):
        return _trapezoid(ranked_ids, positives, junk, divide_by_found=True)

    with pytest.raises(ExerciseFailed, match="a positive that is never retrieved still counts"):
        check(retrieval_ap_with_junk)


def _ns(rankings, top=slice(0, 4), group=lambda q: range(4 * (q // 4), 4 * (q // 4) + 4)):
    return np.array([len(set(ranking[top]) & set(group(q))) for q, ranking in enumerate(rankings)])


@pytest.mark.parametrize(("score", "hint"), [
    (lambda r: 25 * _ns(r).mean(), "that is Table 7's percentage \\(N-S x 25\\)"),
    (lambda r: _ns(r).sum(), "return the \\*mean\\* over queries, not the sum"),
    (lambda r: _ns(r, top=slice(1, 5)).mean(), "the query itself is one of its object's 4 images"),
    (lambda r: _ns(r, top=slice(0, 5)).mean(), "only the top 4 results count"),
    (lambda r: _ns(r, group=lambda q: range(q, q + 4)).mean(), "image q belongs to object q // 4"),
])
def test_ukbench_mistakes(score, hint) -> None:
    def ukbench_ns_score(rankings):
        return score(rankings)

    with pytest.raises(ExerciseFailed, match=hint):
        check(ukbench_ns_score)


def _whiten(fit, vectors, dim, *, learn_on=None, centre=None, power=0.5, l2=True, smallest=False):
    learn_on = fit if learn_on is None else learn_on
    mean = learn_on.mean(axis=0)
    values, directions = np.linalg.eigh(np.cov(learn_on - mean, rowvar=False))
    order = np.argsort(values) if smallest else np.argsort(values)[::-1]
    top = order[:dim]
    out = (vectors - (mean if centre is None else centre)) @ directions[:, top] / values[top] ** power
    return out / np.linalg.norm(out, axis=1, keepdims=True) if l2 else out


@pytest.mark.parametrize(("options", "hint"), [
    ({"l2": False}, "the rows are not unit length: L2-normalise"),
    ({"learn_on": "vectors"}, "the PCA was learned on `vectors`, the images being searched"),
    ({"centre": "own"}, "centre `vectors` with the mean of `fit_vectors`"),
    ({"power": 0.0}, "that is a plain PCA projection"),
    ({"power": 1.0}, "not by the eigenvalue \\(the variance\\) itself"),
    ({"smallest": True}, "these are the directions of \\*smallest\\* variance"),
])
def test_whitening_mistakes(options, hint) -> None:
    def whiten_with_other_set(fit_vectors, vectors, dim):
        chosen = dict(options)
        if chosen.get("learn_on") == "vectors":
            chosen["learn_on"] = vectors
        if chosen.get("centre") == "own":
            chosen["centre"] = vectors.mean(axis=0)
        return _whiten(fit_vectors, vectors, dim, **chosen)

    with pytest.raises(ExerciseFailed, match=hint):
        check(whiten_with_other_set)


def test_whitening_keeping_every_dimension() -> None:
    def whiten_with_other_set(fit_vectors, vectors, dim):
        return _whiten(fit_vectors, vectors, fit_vectors.shape[1])

    with pytest.raises(ExerciseFailed, match="should give shape \\(10, 3\\); got \\(10, 8\\)"):
        check(whiten_with_other_set)

