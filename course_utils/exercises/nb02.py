"""Checkers for notebook 02's exercises (see :mod:`course_utils.exercises.checking` for how a checker is written).

From a convolutional map to one vector per image (global average pooling), and two ways of looking at the vectors:
nearest neighbours by cosine similarity, and a 2-D PCA projection.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .checking import Checker, exercise


@exercise("02", "global average pooling")
def check_global_average_pool(fn: Callable) -> None:
    """``global_average_pool(maps)``: ``(N, C, H, W)`` -> ``(N, C)``, each channel averaged over its map."""
    rng = np.random.default_rng(0)
    with Checker("global average pooling") as check:
        for shape in ((2, 3, 4, 5), (1, 80, 7, 7), (4, 6, 1, 3)):
            maps = rng.normal(size=shape)
            n, channels, height, width = shape
            got = np.asarray(check.call(fn, maps), dtype=float)
            check.require(got.shape != (n, height, width),
                          f"the result has shape {got.shape}: you averaged over the channels (axis 1). Average "
                          "over each channel's map instead, the height and width: axis=(2, 3).")
            check.require(got.shape != (n, channels * height * width),
                          f"the result has shape {got.shape}, the map flattened: pooling keeps one number per "
                          "channel, the mean over height and width.")
            got = check.array(got, shape=(n, channels), what=f"the pooled {shape} maps")
            check.require(not np.allclose(got, maps.max(axis=(2, 3))) or height * width == 1,
                          "that is max pooling (the strongest response); global *average* pooling takes the mean.")
            check.require(not np.allclose(got, maps.sum(axis=(2, 3))) or height * width == 1,
                          "that is the sum over the map; divide by its height x width (or use .mean).")
            check.close(got, maps.mean(axis=(2, 3)),
                        "each channel's value should be the mean of its height x width map: maps.mean(axis=(2, 3)).")


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)


@exercise("02", "nearest neighbour by cosine")
def check_nearest_by_cosine(fn: Callable) -> None:
    """``nearest_by_cosine(train_X, test_X)``: for each test row, the index of the training row at the smallest angle."""
    train = np.array([[10.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    rng = np.random.default_rng(1)
    cases = ((train, np.array([[1.0, 0.2]])), (train, np.array([[0.2, 1.0], [1.0, 0.2]])),
             (rng.normal(size=(12, 5)) * rng.uniform(0.1, 10, size=(12, 1)), rng.normal(size=(4, 5))))
    with Checker("nearest neighbour by cosine") as check:
        for train_X, test_X in cases:
            got = np.asarray(check.call(fn, train_X, test_X))
            similarity = _unit(test_X) @ _unit(train_X).T
            want = similarity.argmax(axis=1)
            check.require(got.shape != similarity.shape or got.shape == want.shape,
                          f"the result has shape {got.shape}, a similarity matrix; return, for each test row, "
                          "the index of its best training row: .argmax(axis=1).")
            check.require(got.shape == want.shape,
                          f"expected one index per test row, shape {want.shape}; got shape {got.shape}. "
                          "Compare test rows (rows of the result) with training rows (columns).")
            check.require(not np.array_equal(got, similarity.argmin(axis=1)),
                          "you picked the *least* similar row: a cosine similarity is largest for the nearest "
                          "neighbour, so use argmax (argmin is for distances).")
            check.require(np.array_equal(got, want) or not np.array_equal(got, (test_X @ train_X.T).argmax(axis=1)),
                          "a plain dot product favours long vectors: divide each row by its length first "
                          "(np.linalg.norm(x, axis=1, keepdims=True)), so only the angle counts.")
            check.require(np.array_equal(got, want) or not np.array_equal(got, _distances(test_X, train_X)
                                                                         .argmin(axis=1)),
                          "the L2 distance between raw vectors compares their lengths too: L2-normalise the rows "
                          "first (then the nearest by L2 distance and by cosine are the same).")
            check.require(np.array_equal(got, want), f"the nearest training rows by cosine are {want.tolist()}, "
                                                     f"got {np.asarray(got).tolist()}.")


def _reference_pca_2d(X: np.ndarray) -> np.ndarray:
    centred = X - X.mean(axis=0)
    _, _, directions = np.linalg.svd(centred, full_matrices=False)
    return centred @ directions[:2].T


@exercise("02", "a 2-D PCA projection")
def check_pca_2d(fn: Callable) -> None:
    """``pca_2d(X)``: ``(N, D)`` -> ``(N, 2)``, the centred rows projected on the two directions of largest variance."""
    rng = np.random.default_rng(2)
    with Checker("a 2-D PCA projection") as check:
        for n, d in ((30, 5), (12, 8)):
            X = rng.normal(size=(n, d)) * np.linspace(3.0, 0.5, d) @ np.linalg.qr(rng.normal(size=(d, d)))[0]
            X = X + 5.0  # far from the origin, so that forgetting to centre shows
            got = np.asarray(check.call(fn, X), dtype=float)
            check.require(got.shape != (2, d),
                          f"the result has shape {got.shape}: those are the two directions; project the centred "
                          "rows on them, (X - mean) @ directions, to get one 2-D point per row.")
            got = check.array(got, shape=(n, 2), what=f"pca_2d of a ({n}, {d}) array")
            want = _reference_pca_2d(X)
            check.require(np.allclose(got.mean(axis=0), 0, atol=1e-6),
                          "the projected points are not centred on 0: subtract the mean of each column, "
                          "X - X.mean(axis=0), before projecting.")
            variances = got.var(axis=0)
            matched = np.allclose(np.abs(got), np.abs(want), atol=1e-6)
            check.require(matched or variances[0] >= variances[1] - 1e-9 or not np.allclose(
                np.abs(got[:, ::-1]), np.abs(want), atol=1e-6),
                "the columns are swapped: column 0 should be the direction of *largest* variance.")
            check.require(matched or variances.sum() > want.var(axis=0).sum() - 1e-6,
                          "these are not the directions of largest variance (np.linalg.eigh sorts its "
                          "eigenvalues in ascending order: take its *last* two eigenvectors, largest first).")
            check.require(matched, "the points differ from the projection on the two directions of largest "
                                   "variance of the centred data (a flipped sign is fine; anything else is not).")
