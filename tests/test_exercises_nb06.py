"""Notebook 06's checkers give each typical mistake its own hint."""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_utils.exercises import ExerciseFailed, check


def test_enlarging_from_the_corner() -> None:
    def enlarge_box_about_centre(box, factor, width, height):
        x0, y0, x1, y1 = box
        return (x0, y0, min(width, x0 + factor * (x1 - x0)), min(height, y0 + factor * (y1 - y0)))

    with pytest.raises(ExerciseFailed, match="the top-left corner did not move"):
        check(enlarge_box_about_centre)


def test_enlarging_by_the_factor_on_each_side() -> None:
    def enlarge_box_about_centre(box, factor, width, height):
        x0, y0, x1, y1 = box
        w, h = x1 - x0, y1 - y0
        return (max(0, math.floor(x0 - factor * w)), max(0, math.floor(y0 - factor * h)),
                min(width, math.ceil(x1 + factor * w)), min(height, math.ceil(y1 + factor * h)))

    with pytest.raises(ExerciseFailed, match="the new box is too big: each side becomes factor x its length"):
        check(enlarge_box_about_centre)


def test_enlarging_without_clipping() -> None:
    def enlarge_box_about_centre(box, factor, width, height):
        x0, y0, x1, y1 = box
        cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, factor * (x1 - x0) / 2, factor * (y1 - y0) / 2
        return (math.floor(cx - hw), math.floor(cy - hh), math.ceil(cx + hw), math.ceil(cy + hh))

    with pytest.raises(ExerciseFailed, match="the box leaves the image: clip it"):
        check(enlarge_box_about_centre)


def test_enlarging_with_plain_rounding() -> None:
    def enlarge_box_about_centre(box, factor, width, height):
        x0, y0, x1, y1 = box
        cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, factor * (x1 - x0) / 2, factor * (y1 - y0) / 2
        return (max(0, round(cx - hw)), max(0, round(cy - hh)), min(width, round(cx + hw)), min(height, round(cy + hh)))

    with pytest.raises(ExerciseFailed, match="round outwards \\(math.floor for x0 and y0, math.ceil for x1 and y1\\)"):
        check(enlarge_box_about_centre)


def test_views_as_rows_with_tiled_labels() -> None:
    def views_as_training_rows(X, labels):
        return X.reshape(-1, X.shape[-1]), np.tile(labels, X.shape[1])

    with pytest.raises(ExerciseFailed, match="the labels are tiled .* np.repeat\\(labels, n_views\\)"):
        check(views_as_training_rows)


def test_views_as_rows_transposed() -> None:
    def views_as_training_rows(X, labels):
        return X.transpose(1, 0, 2).reshape(-1, X.shape[-1]), np.repeat(labels, X.shape[1])

    with pytest.raises(ExerciseFailed, match="the rows are not in image order"):
        check(views_as_training_rows)


def test_views_as_rows_keeping_only_the_first_view() -> None:
    def views_as_training_rows(X, labels):
        return X[:, 0], labels

    with pytest.raises(ExerciseFailed, match="should give 12 rows of 5; got \\(3, 5\\)"):
        check(views_as_training_rows)


def _pairs(scores, labels):
    positives, negatives = scores[labels == 1], scores[labels == 0]
    return positives[:, None], negatives[None, :], len(positives) * len(negatives)


def test_auc_the_wrong_way_round() -> None:
    def roc_auc_by_pairs(scores, labels):
        p, n, pairs = _pairs(scores, labels)
        return ((n > p).sum() + 0.5 * (n == p).sum()) / pairs

    with pytest.raises(ExerciseFailed, match="came out as 1 - AUC"):
        check(roc_auc_by_pairs)


def test_auc_ignoring_ties() -> None:
    def roc_auc_by_pairs(scores, labels):
        p, n, pairs = _pairs(scores, labels)
        return (p > n).sum() / pairs

    with pytest.raises(ExerciseFailed, match="a tie between a positive and a negative counts one half"):
        check(roc_auc_by_pairs)


def test_auc_counting_ties_as_wins() -> None:
    def roc_auc_by_pairs(scores, labels):
        p, n, pairs = _pairs(scores, labels)
        return (p >= n).sum() / pairs

    with pytest.raises(ExerciseFailed, match="a tie counts one half, not a whole pair ranked right"):
        check(roc_auc_by_pairs)


def test_auc_over_all_pairs() -> None:
    def roc_auc_by_pairs(scores, labels):
        p, n, _ = _pairs(scores, labels)
        return ((p > n).sum() + 0.5 * (p == n).sum()) / len(scores) ** 2

    with pytest.raises(ExerciseFailed, match="divide by the number of \\(positive, negative\\) pairs"):
        check(roc_auc_by_pairs)
