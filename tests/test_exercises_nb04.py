"""Notebook 04's checkers give each typical mistake its own hint."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.exercises import ExerciseFailed, check


def _l2(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_signed_power_l2_without_the_final_l2() -> None:
    def signed_power_l2(x, alpha):
        x = _l2(x)
        return np.sign(x) * np.abs(x) ** alpha

    with pytest.raises(ExerciseFailed, match="not unit length after the power step: L2-normalise again"):
        check(signed_power_l2)


def test_signed_power_l2_losing_the_sign() -> None:
    def signed_power_l2(x, alpha):
        return _l2(np.abs(_l2(x)) ** alpha)

    with pytest.raises(ExerciseFailed, match="some signs changed: keep each value's sign"):
        check(signed_power_l2)


def test_signed_power_l2_power_without_sign_gives_nan() -> None:
    def signed_power_l2(x, alpha):
        return _l2(_l2(x) ** alpha)

    with np.errstate(invalid="ignore"), pytest.raises(ExerciseFailed, match=r"the result has NaN: a negative number "
                                                                            r"to a fractional power"):
        check(signed_power_l2)


def test_signed_power_l2_normalising_columns() -> None:
    def signed_power_l2(x, alpha):
        x = x / np.linalg.norm(x, axis=0, keepdims=True)
        x = np.sign(x) * np.abs(x) ** alpha
        return x / np.linalg.norm(x, axis=0, keepdims=True)

    with pytest.raises(ExerciseFailed, match="the columns are unit length, not the rows"):
        check(signed_power_l2)


def test_signed_power_l2_inverse_exponent() -> None:
    def signed_power_l2(x, alpha):
        x = _l2(x)
        return _l2(np.sign(x) * np.abs(x) ** (1 / alpha))

    with pytest.raises(ExerciseFailed, match=r"is the exponent applied to the absolute values, with alpha"):
        check(signed_power_l2)


def _eigen(fit_set):
    centred = fit_set - fit_set.mean(axis=0)
    values, vectors = np.linalg.eigh(centred.T @ centred / (len(fit_set) - 1))
    return values[::-1], vectors[:, ::-1]


def test_pca_whiten_fitted_on_the_wrong_set() -> None:
    def pca_whiten(fit_set, apply_to, dims):
        values, vectors = _eigen(apply_to)
        return _l2((apply_to - apply_to.mean(axis=0)) @ vectors[:, :dims] / np.sqrt(values[:dims]))

    with pytest.raises(ExerciseFailed, match="the whitening was learned on apply_to: learn the mean and the "
                                             "directions from fit_set only"):
        check(pca_whiten)


def test_pca_whiten_without_whitening() -> None:
    def pca_whiten(fit_set, apply_to, dims):
        _, vectors = _eigen(fit_set)
        return _l2((apply_to - fit_set.mean(axis=0)) @ vectors[:, :dims])

    with pytest.raises(ExerciseFailed, match="a PCA projection without whitening"):
        check(pca_whiten)


def test_pca_whiten_dividing_by_the_variance() -> None:
    def pca_whiten(fit_set, apply_to, dims):
        values, vectors = _eigen(fit_set)
        return _l2((apply_to - fit_set.mean(axis=0)) @ vectors[:, :dims] / values[:dims])

    with pytest.raises(ExerciseFailed, match=r"divided by its eigenvalue \(a variance\); divide by its square root"):
        check(pca_whiten)


def test_pca_whiten_centred_on_its_own_mean() -> None:
    def pca_whiten(fit_set, apply_to, dims):
        values, vectors = _eigen(fit_set)
        return _l2((apply_to - apply_to.mean(axis=0)) @ vectors[:, :dims] / np.sqrt(values[:dims]))

    with pytest.raises(ExerciseFailed, match="apply_to was centred on its own mean"):
        check(pca_whiten)


def test_pca_whiten_without_the_final_l2() -> None:
    def pca_whiten(fit_set, apply_to, dims):
        values, vectors = _eigen(fit_set)
        return (apply_to - fit_set.mean(axis=0)) @ vectors[:, :dims] / np.sqrt(values[:dims])

    with pytest.raises(ExerciseFailed, match="the rows are not unit length: L2-normalise the whitened rows"):
        check(pca_whiten)


def test_pca_whiten_smallest_directions() -> None:
    def pca_whiten(fit_set, apply_to, dims):
        values, vectors = _eigen(fit_set)
        return _l2((apply_to - fit_set.mean(axis=0)) @ vectors[:, -dims:] / np.sqrt(values[-dims:]))

    with pytest.raises(ExerciseFailed, match="np.linalg.eigh sorts eigenvalues in ascending order"):
        check(pca_whiten)


def _cv_score(X, y, power, C):
    import course_utils as cu

    return cu.classify.select_C(cu.normalize.normalize_features(X, power), y, Cs=[C], cv=3).mean_scores[0]


def test_choose_power_using_the_test_rows() -> None:
    def choose_power(X, y, split, powers, C):
        return powers[int(np.argmax([_cv_score(X, y, p, C) for p in powers]))]

    with pytest.raises(ExerciseFailed, match=r"(?s)raised ValueError.*the test rows are NaN on purpose"):
        check(choose_power)


def test_choose_power_lowest_score() -> None:
    def choose_power(X, y, split, powers, C):
        train = split == "train"
        return powers[int(np.argmin([_cv_score(X[train], y[train], p, C) for p in powers]))]

    with pytest.raises(ExerciseFailed, match=r"the \*lowest\* cross-validated score"):
        check(choose_power)


def test_choose_power_returning_the_position() -> None:
    def choose_power(X, y, split, powers, C):
        train = split == "train"
        return int(np.argmax([_cv_score(X[train], y[train], p, C) for p in powers]))

    with pytest.raises(ExerciseFailed, match="a position in the list; return the exponent itself"):
        check(choose_power)


def test_choose_power_returning_the_score() -> None:
    def choose_power(X, y, split, powers, C):
        train = split == "train"
        return max(_cv_score(X[train], y[train], p, C) for p in powers)

    with pytest.raises(ExerciseFailed, match="a score; return the exponent that scored best"):
        check(choose_power)
