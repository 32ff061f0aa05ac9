"""Checkers for notebook 05's exercises (see :mod:`course_utils.exercises.checking` for how a checker is written)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import classify, metrics
from .checking import Checker, exercise

CV_CS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)


def _cv_problem(scale: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """45 L2-normalised vectors of 3 classes (15 each) whose class centres are ``scale`` apart in 30 dimensions."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], 15)
    X = (rng.normal(size=(3, 30)) * scale)[y] + rng.normal(size=(45, 30))
    return X / np.linalg.norm(X, axis=1, keepdims=True), y


def _cv_mistake(X: np.ndarray, y: np.ndarray, folds: list, mistake: str) -> float:
    """The C that a typical wrong cross-validation picks: ``"leak"`` fits on all of X, ``"train"`` scores the
    images the model was trained on."""
    means = []
    for C in CV_CS:
        scores = []
        for train, validation in folds:
            fitted_on = np.arange(len(y)) if mistake == "leak" else train
            model = classify.LinearSVMClassifier(C=C).fit(X[fitted_on], y[fitted_on])
            scored = train if mistake == "train" else validation
            scores.append(metrics.mean_class_accuracy(y[scored], model.predict(X[scored])))
        means.append(np.mean(scores))
    return CV_CS[int(np.argmax(means))]


@exercise("05", "choosing C by cross-validation")
def check_choose_C_by_cv(fn: Callable) -> None:
    """``choose_C_by_cv(X, y, Cs, folds)``: the C whose SVMs score best on the held-out folds (ties: smallest C)."""
    with Checker("choosing C by cross-validation") as check:
        # A hard problem (C matters, and the typical mistakes pick other Cs), then an easy one (every C ties).
        for scale, seed in ((0.25, 9), (3.0, 0)):
            X, y = _cv_problem(scale, seed)
            folds = classify.cv_folds(y, 3, random_state=0)
            want = classify.select_C(X, y, CV_CS, cv=3, random_state=0).C
            got = check.number(check.call(fn, X, y, CV_CS, folds), what="the chosen C")
            check.require(any(np.isclose(got, c) for c in CV_CS),
                          f"the result {got:g} is not one of the candidates {list(CV_CS)}: return the value of C "
                          "itself, not its index or its mean score.")
            if not np.isclose(got, want):
                scores = classify.select_C(X, y, CV_CS, cv=3, random_state=0).mean_scores
                check.require(not np.allclose(scores, scores[0]),
                              "on this easy problem every C scores the same on every fold; on a tie keep the "
                              "smallest C (the most regularised model): compare with > rather than >=, or use "
                              "np.argmax on the mean scores in the order of Cs.")
                check.require(not np.isclose(got, _cv_mistake(X, y, folds, "leak")),
                              "the SVM that scores a fold must not have seen that fold's images: fit on "
                              "X[train_idx] only, then score on X[val_idx]. Fitting on all of X is the same leak "
                              "as choosing C on the test set.")
                check.require(not np.isclose(got, _cv_mistake(X, y, folds, "train")),
                              "each model is scored on the images it was trained on, which favours the largest C: "
                              "score it on the held-out fold, X[val_idx], y[val_idx].")
            check.close(got, want, f"you chose C = {got:g}, cross-validation chooses {want:g}: for every C, fit "
                                   "cu.classify.LinearSVMClassifier(C=C) on each fold's training part, score the "
                                   "held-out part with cu.metrics.mean_class_accuracy, average over the folds, and "
                                   "keep the best C.")


def _precision_recall(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hits = labels[metrics.rank_by_score(scores)].astype(bool)
    found = np.cumsum(hits)
    return found / np.arange(1, hits.size + 1), found / hits.sum()


def _eleven_point_mistakes(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Values that typical wrong 11-point APs give on one case, by mistake."""
    precision, recall = _precision_recall(scores, labels)
    unsorted_precision = np.cumsum(labels) / np.arange(1, labels.size + 1)
    unsorted_recall = np.cumsum(labels) / labels.sum()

    def interpolated(levels: np.ndarray, p: np.ndarray, r: np.ndarray) -> float:
        return float(np.mean([p[r >= t].max() if (r >= t).any() else 0.0 for t in levels]))

    first_reached = [precision[np.argmax(recall >= t)] for t in np.arange(11) / 10]
    return {
        "unsorted": interpolated(np.arange(11) / 10, unsorted_precision, unsorted_recall),
        "ten levels": interpolated(np.arange(10) / 10, precision, recall),
        "ten levels from 0.1": interpolated(np.arange(1, 11) / 10, precision, recall),
        "area": metrics.average_precision(scores, labels),
        "no interpolation": float(np.mean(first_reached)),
    }


# Cases away from the devkit's floating-point recall levels: with 3, 4 or 7 positives recall never equals 0.3, 0.6
# or 0.7 exactly, so the plain tenths 0, 0.1, ..., 1 and the devkit's MATLAB 0:0.1:1 give the same AP.
ELEVEN_POINT_CASES = (
    (np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4]), np.array([1, 0, 0, 1, 1, 0])),
    (np.array([0.2, 1.5, -0.3, 0.8, 0.1, 2.0, -1.0, 0.4]), np.array([0, 1, 1, 0, 1, 0, 0, 1])),
    (np.array([3.0, 2.5, 2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0, -1.5]), np.array([0, 1, 0, 1, 1, 0, 1, 1, 0, 1])),
)


@exercise("05", "VOC 2007 11-point AP")
def check_voc07_11_point_ap(fn: Callable) -> None:
    """``voc07_11_point_ap(scores, labels)``: the mean over recall levels 0, 0.1, ..., 1 of the best precision at
    that recall or beyond."""
    hints = {
        "unsorted": "the items must be ranked by score first, highest first (order = np.argsort(-scores)), then "
                    "walk down that ranking; the arrays arrive in no particular order.",
        "ten levels": "there are 11 recall levels, 0, 0.1, ..., 1.0, both ends included (np.arange(11) / 10).",
        "ten levels from 0.1": "there are 11 recall levels, 0, 0.1, ..., 1.0, both ends included "
                               "(np.arange(11) / 10): the level 0 counts too.",
        "area": "that is the area (non-interpolated) AP, the mean precision at each positive's rank. The 11-point "
                "AP takes, at each recall level t, the best precision at recall >= t, and averages those 11 values.",
        "no interpolation": "at each level take the best precision at that recall *or beyond* (the maximum over "
                            "every rank whose recall is >= t), not the precision where recall first reaches t.",
    }
    with Checker("VOC 2007 11-point AP") as check:
        for scores, labels in ELEVEN_POINT_CASES:
            got = check.fraction(check.call(fn, scores, labels), "the AP", "the AP is a fraction between 0 and 1 "
                                 "here (cu.metrics.voc07_ap's scale); drop the x 100.")
            want = metrics.voc07_ap(scores, labels)
            if not np.isclose(got, want, atol=1e-9):
                for mistake, value in _eleven_point_mistakes(scores, labels).items():
                    check.require(not np.isclose(got, value, atol=1e-9), hints[mistake])
            check.close(got, want, f"on scores {scores.tolist()} and labels {labels.tolist()} the AP should be "
                                   f"{want:.4f}; yours is {got:.4f}. Trace precision and recall down the ranking "
                                   "by hand and compare level by level.", atol=1e-9)


MEAN_CLASS_CASES = (
    (np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 2]), np.array([0, 1, 0, 1, 1, 2, 0, 2, 1, 2])),
    (np.array([0] * 8 + [1] * 2), np.zeros(10, dtype=int)),
    (np.array([2, 2, 5, 5, 5, 7]), np.array([2, 3, 5, 5, 7, 7])),  # labels need not be 0..K-1; 3 is never true
)


@exercise("05", "mean class accuracy")
def check_mean_per_class_accuracy(fn: Callable) -> None:
    """``mean_per_class_accuracy(y_true, y_pred)``: each true class's accuracy, then their plain mean (a fraction)."""
    with Checker("mean class accuracy") as check:
        for y_true, y_pred in MEAN_CLASS_CASES:
            got = check.fraction(check.call(fn, y_true, y_pred), "the mean class accuracy", "return a fraction "
                                 "between 0 and 1 (as cu.metrics does), not a percentage.")
            want = metrics.mean_class_accuracy(y_true, y_pred)
            check.require(not (np.isclose(got, np.mean(y_true == y_pred)) and not np.isclose(got, want)),
                          "that is the overall accuracy, where a big class outweighs a small one: compute the "
                          "accuracy of each true class separately, then average those numbers.")
            predicted = np.unique(y_pred)
            precision = np.mean([np.mean(y_true[y_pred == c] == c) for c in predicted])
            check.require(not (np.isclose(got, precision) and not np.isclose(got, want)),
                          "you grouped the images by their *predicted* class; group them by their true class "
                          "(y_true == c) and ask how many of those were predicted c.")
            check.close(got, want, f"on y_true={y_true.tolist()}, y_pred={y_pred.tolist()} the mean class accuracy "
                                   f"is {want:.4f}; yours is {got:.4f}. Average over the classes that occur in "
                                   "y_true (np.unique(y_true)), each weighing the same.")
