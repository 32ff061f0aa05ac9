"""Notebook 02's checkers give each typical mistake its own hint."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.exercises import ExerciseFailed, check


def test_global_average_pool_over_channels() -> None:
    def global_average_pool(maps):
        return maps.mean(axis=1)

    with pytest.raises(ExerciseFailed, match=r"you averaged over the channels \(axis 1\)"):
        check(global_average_pool)


def test_global_average_pool_max() -> None:
    def global_average_pool(maps):
        return maps.max(axis=(2, 3))

    with pytest.raises(ExerciseFailed, match="that is max pooling"):
        check(global_average_pool)


def test_global_average_pool_sum() -> None:
    def global_average_pool(maps):
        return maps.sum(axis=(2, 3))

    with pytest.raises(ExerciseFailed, match="that is the sum over the map"):
        check(global_average_pool)


def test_global_average_pool_flattened() -> None:
    def global_average_pool(maps):
        return maps.reshape(len(maps), -1)

    with pytest.raises(ExerciseFailed, match="the map flattened: pooling keeps one number per channel"):
        check(global_average_pool)


def test_nearest_by_cosine_plain_dot_product() -> None:
    def nearest_by_cosine(train_X, test_X):
        return (test_X @ train_X.T).argmax(axis=1)

    with pytest.raises(ExerciseFailed, match="a plain dot product favours long vectors"):
        check(nearest_by_cosine)


def test_nearest_by_cosine_raw_l2_distance() -> None:
    def nearest_by_cosine(train_X, test_X):
        return np.linalg.norm(test_X[:, None] - train_X[None], axis=-1).argmin(axis=1)

    with pytest.raises(ExerciseFailed, match="the L2 distance between raw vectors compares their lengths too"):
        check(nearest_by_cosine)


def test_nearest_by_cosine_argmin() -> None:
    def nearest_by_cosine(train_X, test_X):
        unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
        return (unit(test_X) @ unit(train_X).T).argmin(axis=1)

    with pytest.raises(ExerciseFailed, match=r"you picked the \*least\* similar row"):
        check(nearest_by_cosine)


def test_nearest_by_cosine_similarity_matrix() -> None:
    def nearest_by_cosine(train_X, test_X):
        unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
        return unit(test_X) @ unit(train_X).T

    with pytest.raises(ExerciseFailed, match="a similarity matrix; return, for each test row, the index"):
        check(nearest_by_cosine)


def _eigen(X):
    centred = X - X.mean(axis=0)
    return centred, np.linalg.eigh(centred.T @ centred)[1]


def test_pca_2d_not_centred() -> None:
    def pca_2d(X):
        _, vectors = _eigen(X)
        return X @ vectors[:, ::-1][:, :2]

    with pytest.raises(ExerciseFailed, match="not centred on 0: subtract the mean of each column"):
        check(pca_2d)


def test_pca_2d_smallest_directions() -> None:
    def pca_2d(X):
        centred, vectors = _eigen(X)
        return centred @ vectors[:, :2]

    with pytest.raises(ExerciseFailed, match=r"np.linalg.eigh sorts its eigenvalues in ascending order"):
        check(pca_2d)


def test_pca_2d_swapped_columns() -> None:
    def pca_2d(X):
        centred, vectors = _eigen(X)
        return centred @ vectors[:, -2:]

    with pytest.raises(ExerciseFailed, match=r"the columns are swapped: column 0 should be the direction of "
                                             r"\*largest\* variance"):
        check(pca_2d)


def test_pca_2d_returning_the_directions() -> None:
    def pca_2d(X):
        _, vectors = _eigen(X)
        return vectors[:, ::-1][:, :2].T

    with pytest.raises(ExerciseFailed, match="those are the two directions; project the centred rows"):
        check(pca_2d)
