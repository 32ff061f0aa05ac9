"""Checkers for notebook 04's exercises (see :mod:`course_utils.exercises.checking` for how a checker is written)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .checking import Checker, ExerciseFailed, exercise


def _reference_power_l2(x: np.ndarray, alpha: float) -> np.ndarray:
    """L2, signed power, L2 again: the course's ``normalize.make_normalizer(power=alpha)`` written out."""
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    powered = np.sign(unit) * np.abs(unit) ** alpha
    return powered / np.linalg.norm(powered, axis=1, keepdims=True)


@exercise("04", "signed power + L2")
def check_signed_power_l2(fn: Callable) -> None:
    """``signed_power_l2(x, alpha)``: rows L2-normalised, signed power ``alpha``, then L2-normalised again."""
    x = np.array([[3.0, -4.0, 0.0], [1.0, 1.0, -2.0], [-0.5, 0.0, 0.25]])
    with Checker("signed power + L2") as check:
        for alpha in (0.5, 2.0, 1.0):
            got = np.asarray(check.call(fn, x, alpha), dtype=float)
            check.require(not np.isnan(got).any(),
                          f"with alpha={alpha} the result has NaN: a negative number to a fractional power is not "
                          "real. Keep the sign apart: np.sign(x) * np.abs(x) ** alpha.")
            got = check.array(got, shape=x.shape, what=f"signed_power_l2(x, {alpha})")
            rows, columns = np.linalg.norm(got, axis=1), np.linalg.norm(got, axis=0)
            check.require(np.allclose(rows, 1.0) or not np.allclose(columns, 1.0),
                          "the columns are unit length, not the rows: each row is one image, so normalise "
                          "along axis=1 (np.linalg.norm(x, axis=1, keepdims=True)).")
            check.require(np.all(np.sign(got) == np.sign(x)),
                          f"with alpha={alpha} some signs changed: keep each value's sign, "
                          "np.sign(x) * np.abs(x) ** alpha.")
            check.require(np.allclose(rows, 1.0),
                          f"with alpha={alpha} the rows are not unit length after the power step: "
                          "L2-normalise again at the end.")
            check.close(got, _reference_power_l2(x, alpha),
                        f"with alpha={alpha} the values differ from L2 -> signed power -> L2: is the exponent "
                        "applied to the absolute values, with alpha (not 1/alpha)?")


def _reference_pca_whiten(fit_set: np.ndarray, apply_to: np.ndarray, dims: int) -> np.ndarray:
    """PCA-whitening learned on ``fit_set`` (the course's :class:`~course_utils.normalize.PCAWhitening`), applied to
    ``apply_to``, then L2."""
    from ..normalize import PCAWhitening

    whitened = PCAWhitening(n_components=dims).fit(fit_set).transform(apply_to)
    return whitened / np.linalg.norm(whitened, axis=1, keepdims=True)


def _projection(fit_set: np.ndarray, apply_to: np.ndarray, dims: int, mean: np.ndarray, scale: float) -> np.ndarray:
    """A typical mistake, made on purpose: top ``dims`` directions of ``fit_set``, centring ``apply_to`` on ``mean``,
    each coordinate divided by its eigenvalue ** ``scale`` (0: no whitening, 0.5: right, 1: too much), then L2."""
    centred = fit_set - fit_set.mean(axis=0)
    eigenvalues, vectors = np.linalg.eigh(centred.T @ centred / (len(fit_set) - 1))
    order = np.argsort(eigenvalues)[::-1][:dims]
    projected = (apply_to - mean) @ vectors[:, order] / eigenvalues[order] ** scale
    return projected / np.linalg.norm(projected, axis=1, keepdims=True)


def _same_up_to_signs(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two sets of L2-normalised rows agree up to a sign flip of each component (eigenvectors have no sign):
    their cosine similarities between rows are then the same."""
    return a.shape == b.shape and np.allclose(a @ a.T, b @ b.T, atol=1e-6)


@exercise("04", "PCA-whitening fitted on another set")
def check_pca_whiten(fn: Callable) -> None:
    """``pca_whiten(fit_set, apply_to, dims)``: mean and top ``dims`` directions from ``fit_set``, applied to
    ``apply_to``, each coordinate divided by its standard deviation, rows L2-normalised."""
    rng = np.random.default_rng(5)
    mixing = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    fit_set = rng.normal(size=(40, 6)) * np.array([5.0, 3.0, 2.0, 1.0, 0.5, 0.2]) @ mixing + 1.0
    apply_to = rng.normal(size=(8, 6)) * np.array([0.3, 0.5, 1.0, 2.0, 3.0, 4.0]) @ mixing - 2.0
    with Checker("PCA-whitening fitted on another set") as check:
        for dims in (3, 5):
            got = check.array(check.call(fn, fit_set, apply_to, dims), what=f"pca_whiten(..., dims={dims})")
            check.require(got.shape != (len(fit_set), dims),
                          f"the result has {len(fit_set)} rows, one per row of fit_set: return the rows of "
                          "apply_to, whitened with what was learned on fit_set.")
            check.require(got.shape == (len(apply_to), dims),
                          f"expected shape ({len(apply_to)}, {dims}), one row of {dims} coordinates per row of "
                          f"apply_to; got {got.shape}.")
            check.require(np.allclose(np.linalg.norm(got, axis=1), 1.0),
                          "the rows are not unit length: L2-normalise the whitened rows at the end.")
            want = _reference_pca_whiten(fit_set, apply_to, dims)
            right = _same_up_to_signs(got, want)
            check.require(right or not _same_up_to_signs(got, _reference_pca_whiten(apply_to, apply_to, dims)),
                          "the whitening was learned on apply_to: learn the mean and the directions from fit_set "
                          "only, so the images you transform never shape their own representation.")
            check.require(right or not _same_up_to_signs(
                got, _projection(fit_set, apply_to, dims, apply_to.mean(axis=0), 0.5)),
                "apply_to was centred on its own mean: subtract fit_set's mean, learned with the directions.")
            check.require(right or not _same_up_to_signs(
                got, _projection(fit_set, apply_to, dims, fit_set.mean(axis=0), 0.0)),
                "that is a PCA projection without whitening: divide each coordinate by the square root of its "
                "eigenvalue (its standard deviation).")
            check.require(right or not _same_up_to_signs(
                got, _projection(fit_set, apply_to, dims, fit_set.mean(axis=0), 1.0)),
                "each coordinate was divided by its eigenvalue (a variance); divide by its square root, the "
                "standard deviation.")
            check.require(right or not _same_up_to_signs(
                got, _projection(fit_set, apply_to, dims, np.zeros(apply_to.shape[1]), 0.5)),
                "apply_to was not centred: subtract fit_set's mean before projecting.")
            check.require(right, "the result differs from L2(whiten(project(apply_to - mean))) with the top "
                                 f"{dims} directions of fit_set: np.linalg.eigh sorts eigenvalues in ascending "
                                 "order, so take the largest (the last columns), largest first.")


def _power_data(bursty: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A small three-class set of non-negative 'features' and its train/test split; the test rows are NaN.

    ``bursty``: the class signal sits in many small components and three components fire strongly at random, so a
    power below 1 helps. Otherwise each class lights up one component above noise everywhere else, so a power
    above 1 helps. The test rows are NaN on purpose: a function that chooses on the training rows only never
    touches them.
    """
    rng = np.random.default_rng(0 if bursty else 1)
    labels = np.repeat(np.arange(3), 20)
    if bursty:
        X = rng.uniform(0.5, 1.5, size=(3, 30))[labels] + rng.normal(scale=0.6, size=(60, 30))
        X[:, :3] += rng.exponential(scale=8.0, size=(60, 3))
    else:
        X = np.abs(rng.normal(size=(60, 30)))
        X[np.arange(60), labels] += rng.uniform(1.0, 2.0, size=60)
    X = np.abs(X)
    split = np.array(["train", "train", "train", "test"] * 15)
    X[split == "test"] = np.nan
    return X, labels, split


def _cv_scores(X: np.ndarray, y: np.ndarray, powers: list[float], C: float) -> list[float]:
    from ..classify import select_C
    from ..normalize import normalize_features

    return [float(select_C(normalize_features(X, p), y, Cs=[C], cv=3).mean_scores[0]) for p in powers]


@exercise("04", "choosing the power by cross-validation")
def check_choose_power(fn: Callable) -> None:
    """``choose_power(X, y, split, powers, C)``: the exponent in ``powers`` whose 3-fold cross-validated score on the
    training rows (``split == "train"``) is highest, as ``cu.classify.select_C`` measures it."""
    powers = [0.25, 0.5, 1.0, 2.0]
    with Checker("choosing the power by cross-validation") as check:
        C = 1.0
        for bursty in (True, False):
            X, y, split = _power_data(bursty)
            try:
                got = check.call(fn, X, y, split, powers, C)
            except ExerciseFailed as error:
                raise ExerciseFailed(
                    f"{error}\nHint: in this case the test rows are NaN on purpose; a function that chooses on the "
                    "training rows only (X[split == 'train']) never touches them. The test set must not choose "
                    "the representation.") from None
            got = check.number(got, what="the chosen power")
            train = split == "train"
            scores = _cv_scores(X[train], y[train], powers, C)
            want = powers[int(np.argmax(scores))]
            check.require(not any(np.isclose(got, score) or np.isclose(got, 100 * score) for score in scores)
                          or got in powers,
                          f"you returned {got:g}, a score; return the exponent that scored best (an element of "
                          "powers).")
            check.require(got in powers or not float(got).is_integer(),
                          f"you returned {got:g}, a position in the list; return the exponent itself, "
                          "powers[best].")
            check.require(got != powers[int(np.argmin(scores))],
                          "you chose the exponent with the *lowest* cross-validated score; take the highest "
                          "(np.argmax).")
            check.require(got == want, f"with C={C} the cross-validated scores of {powers} are "
                                       f"{np.round(scores, 3).tolist()}, so the choice is {want:g}; got {got:g}.")
