"""Notebook 03's checkers give each typical mistake its own hint."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.exercises import ExerciseFailed, check


def test_sum_view_scores_maximum() -> None:
    def sum_view_scores(view_scores, n_views):
        return view_scores.reshape(-1, n_views, view_scores.shape[1]).max(axis=1).argmax(axis=1)

    with pytest.raises(ExerciseFailed, match=r"that is the maximum over the views; the paper \*sums\*"):
        check(sum_view_scores)


def test_sum_view_scores_majority_vote() -> None:
    def sum_view_scores(view_scores, n_views):
        winners = view_scores.argmax(axis=1).reshape(-1, n_views)
        return np.array([np.bincount(row).argmax() for row in winners])

    with pytest.raises(ExerciseFailed, match="that is a majority vote of the views' winners"):
        check(sum_view_scores)


def test_sum_view_scores_views_first() -> None:
    def sum_view_scores(view_scores, n_views):
        return view_scores.reshape(n_views, -1, view_scores.shape[1]).sum(axis=0).argmax(axis=1)

    with pytest.raises(ExerciseFailed, match=r"the rows are grouped image by image"):
        check(sum_view_scores)


def test_sum_view_scores_per_view() -> None:
    def sum_view_scores(view_scores, n_views):
        return view_scores.argmax(axis=1)

    with pytest.raises(ExerciseFailed, match="you returned 12 predictions, one per view"):
        check(sum_view_scores)


def _boxes(width, height, w, h):
    left, top = (width - w) // 2, (height - h) // 2
    return [(0, 0, w, h), (width - w, 0, width, h), (0, height - h, w, height),
            (width - w, height - h, width, height), (left, top, left + w, top + h)]


def test_five_crop_boxes_two_thirds_of_the_area() -> None:
    def five_crop_boxes(width, height):
        side = np.sqrt(2 / 3)
        return _boxes(width, height, round(width * side), round(height * side))

    with pytest.raises(ExerciseFailed, match=r"2/3 of the \*width\* and 2/3 of the \*height\* \(4/9 of the area\)"):
        check(five_crop_boxes)


def test_five_crop_boxes_width_and_height_swapped() -> None:
    def five_crop_boxes(width, height):
        return _boxes(width, height, round(height * 2 / 3), round(width * 2 / 3))

    with pytest.raises(ExerciseFailed, match="width and height are swapped"):
        check(five_crop_boxes)


def test_five_crop_boxes_as_sizes() -> None:
    def five_crop_boxes(width, height):
        w, h = round(width * 2 / 3), round(height * 2 / 3)
        return [(0, 0, w, h), (width - w, 0, w, h), (0, height - h, w, h), (width - w, height - h, w, h),
                ((width - w) // 2, (height - h) // 2, w, h)]

    with pytest.raises(ExerciseFailed, match=r"look like a width and a height; boxes are corners"):
        check(five_crop_boxes)


def test_five_crop_boxes_wrong_order() -> None:
    def five_crop_boxes(width, height):
        boxes = _boxes(width, height, round(width * 2 / 3), round(height * 2 / 3))
        return [boxes[4], *boxes[:4]]

    with pytest.raises(ExerciseFailed, match=r"box 0 should be the top-left crop"):
        check(five_crop_boxes)


def test_add_mirrors_upside_down() -> None:
    def add_mirrors(views):
        return list(views) + [view[::-1] for view in views]

    with pytest.raises(ExerciseFailed, match="that flips the image upside down"):
        check(add_mirrors)


def test_add_mirrors_colour_channels() -> None:
    def add_mirrors(views):
        return list(views) + [view[..., ::-1] for view in views]

    with pytest.raises(ExerciseFailed, match="that reverses the colour channels"):
        check(add_mirrors)


def test_add_mirrors_interleaved() -> None:
    def add_mirrors(views):
        return [image for view in views for image in (view, view[:, ::-1])]

    with pytest.raises(ExerciseFailed, match="the originals come first, then the mirrors in the same order"):
        check(add_mirrors)
