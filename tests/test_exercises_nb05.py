"""Notebook 05's checkers give each typical mistake its own hint."""

from __future__ import annotations

import numpy as np
import pytest

import course_utils as cu
from course_utils.exercises import ExerciseFailed, check


def _cv(X, y, Cs, folds, fit_on_all=False, score_training=False, ties_to_largest=False):
    """Cross-validation with one of the typical mistakes switched on."""
    means = []
    for C in Cs:
        scores = []
        for train_idx, val_idx in folds:
            fit = np.arange(len(y)) if fit_on_all else train_idx
            model = cu.classify.LinearSVMClassifier(C=C).fit(X[fit], y[fit])
            scored = train_idx if score_training else val_idx
            scores.append(cu.metrics.mean_class_accuracy(y[scored], model.predict(X[scored])))
        means.append(np.mean(scores))
    means = np.array(means)
    index = len(means) - 1 - int(np.argmax(means[::-1])) if ties_to_largest else int(np.argmax(means))
    return Cs[index]


def test_choose_C_fitting_on_every_image_leaks() -> None:
    def choose_C_by_cv(X, y, Cs, folds):
        return _cv(X, y, Cs, folds, fit_on_all=True)

    with pytest.raises(ExerciseFailed, match="must not have seen that fold's images: fit on X\\[train_idx\\] only"):
        check(choose_C_by_cv)


def test_choose_C_scoring_the_training_images() -> None:
    def choose_C_by_cv(X, y, Cs, folds):
        return _cv(X, y, Cs, folds, score_training=True)

    with pytest.raises(ExerciseFailed, match="scored on the images it was trained on"):
        check(choose_C_by_cv)


def test_choose_C_breaking_ties_towards_the_largest_C() -> None:
    def choose_C_by_cv(X, y, Cs, folds):
        return _cv(X, y, Cs, folds, ties_to_largest=True)

    with pytest.raises(ExerciseFailed, match="every C scores the same on every fold; on a tie keep the smallest C"):
        check(choose_C_by_cv)


def test_choose_C_returning_the_index() -> None:
    def choose_C_by_cv(X, y, Cs, folds):
        return list(Cs).index(_cv(X, y, Cs, folds)) + 0.5

    with pytest.raises(ExerciseFailed, match="is not one of the candidates .*return the value of C itself"):
        check(choose_C_by_cv)


def _interpolated(scores, labels, levels, first_reached=False, sort=True):
    hits = labels[np.argsort(-scores, kind="stable")] if sort else labels
    found = np.cumsum(hits)
    precision, recall = found / np.arange(1, len(hits) + 1), found / hits.sum()
    if first_reached:
        return np.mean([precision[np.argmax(recall >= t)] for t in levels])
    return np.mean([precision[recall >= t].max() if (recall >= t).any() else 0.0 for t in levels])


def test_voc07_ap_without_interpolation() -> None:
    def voc07_11_point_ap(scores, labels):
        return _interpolated(scores, labels, np.arange(11) / 10, first_reached=True)

    with pytest.raises(ExerciseFailed, match="best precision at that recall \\*or beyond\\*"):
        check(voc07_11_point_ap)


def test_voc07_ap_with_ten_levels() -> None:
    def voc07_11_point_ap(scores, labels):
        return _interpolated(scores, labels, np.arange(10) / 10)

    with pytest.raises(ExerciseFailed, match="there are 11 recall levels, 0, 0.1, ..., 1.0, both ends included"):
        check(voc07_11_point_ap)


def test_voc07_ap_area_instead() -> None:
    def voc07_11_point_ap(scores, labels):
        return cu.metrics.average_precision(scores, labels)

    with pytest.raises(ExerciseFailed, match="that is the area \\(non-interpolated\\) AP"):
        check(voc07_11_point_ap)


def test_voc07_ap_forgetting_to_rank() -> None:
    def voc07_11_point_ap(scores, labels):
        return _interpolated(scores, labels, np.arange(11) / 10, sort=False)

    with pytest.raises(ExerciseFailed, match="must be ranked by score first, highest first"):
        check(voc07_11_point_ap)


def test_voc07_ap_in_percent() -> None:
    def voc07_11_point_ap(scores, labels):
        return 100 * cu.metrics.voc07_ap(scores, labels)

    with pytest.raises(ExerciseFailed, match="a fraction between 0 and 1 here .* drop the x 100"):
        check(voc07_11_point_ap)


def test_mean_class_accuracy_as_overall_accuracy() -> None:
    def mean_per_class_accuracy(y_true, y_pred):
        return float(np.mean(y_true == y_pred))

    with pytest.raises(ExerciseFailed, match="that is the overall accuracy, where a big class outweighs"):
        check(mean_per_class_accuracy)


def test_mean_class_accuracy_grouped_by_prediction() -> None:
    def mean_per_class_accuracy(y_true, y_pred):
        return float(np.mean([np.mean(y_true[y_pred == c] == c) for c in np.unique(y_pred)]))

    with pytest.raises(ExerciseFailed, match="grouped the images by their \\*predicted\\* class"):
        check(mean_per_class_accuracy)


def test_mean_class_accuracy_in_percent() -> None:
    def mean_per_class_accuracy(y_true, y_pred):
        return 100 * cu.metrics.mean_class_accuracy(y_true, y_pred)

    with pytest.raises(ExerciseFailed, match="return a fraction between 0 and 1"):
        check(mean_per_class_accuracy)
