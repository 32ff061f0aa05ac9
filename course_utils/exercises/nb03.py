"""Checkers for notebook 03's exercises (see :mod:`course_utils.exercises.checking` for how a checker is written).

The paper's 16 views: where the five crops fall, how the mirrors double the views, and how the SVM scores of an
image's views are summed into one prediction at test time.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..augment import crop_boxes
from .checking import Checker, exercise

# Three images, four views each, three classes (rows image by image), with no ties. Summing each image's views
# ([2, 2, 1]), taking their maximum ([0, 2, 1]), a majority vote of the views ([1, 2, 1]) and summing rows grouped
# view by view ([0, 1, 2]) all disagree, so each of these mistakes gets its own hint.
_VIEW_SCORES = np.array([
    [3.0, 0.0, 0.0], [0.0, 2.0, 1.8], [0.0, 2.0, 1.8], [0.0, -1.0, 1.8],
    [2.0, 2.0, 3.5], [4.0, 0.0, 4.5], [2.5, 1.5, 3.0], [2.5, 1.0, 1.5],
    [3.5, 2.5, 2.5], [1.5, 3.5, 1.5], [1.5, 4.0, 1.0], [1.0, 3.5, 3.0],
])


def _votes(scores: np.ndarray, n_views: int) -> np.ndarray:
    """Each image's most frequent per-view winner (ties to the smallest class)."""
    winners = scores.argmax(axis=1).reshape(-1, n_views)
    return np.array([np.bincount(row, minlength=scores.shape[1]).argmax() for row in winners])


@exercise("03", "summing the views' scores")
def check_sum_view_scores(fn: Callable) -> None:
    """``sum_view_scores(view_scores, n_views)``: one predicted class per image, the argmax of its summed scores."""
    rng = np.random.default_rng(3)
    cases = ((_VIEW_SCORES, 4), (rng.normal(size=(5 * 16, 7)), 16))
    with Checker("summing the views' scores") as check:
        for scores, n_views in cases:
            n_images = len(scores) // n_views
            got = np.asarray(check.call(fn, scores, n_views))
            check.require(got.shape != (len(scores),),
                          f"you returned {len(scores)} predictions, one per view; sum each image's {n_views} "
                          f"views first and return one class per image ({n_images}).")
            check.require(got.shape == (n_images,),
                          f"expected one class per image, shape ({n_images},); got shape {got.shape}. Reshape "
                          "to (images, views, classes), sum over the views (axis 1), then argmax over classes.")
            per_image = scores.reshape(n_images, n_views, -1)
            want = per_image.sum(axis=1).argmax(axis=1)
            right = np.array_equal(got, want)
            check.require(right or not np.array_equal(got, per_image.max(axis=1).argmax(axis=1)),
                          "that is the maximum over the views; the paper *sums* the views' scores (it found the "
                          "sum better on every dataset).")
            check.require(right or not np.array_equal(got, _votes(scores, n_views)),
                          "that is a majority vote of the views' winners; sum the scores themselves, so a view "
                          "that is nearly sure counts more than one that hesitates.")
            check.require(right or not np.array_equal(
                got, scores.reshape(n_views, n_images, -1).sum(axis=0).argmax(axis=1)),
                "the rows are grouped image by image (image 0's views first): reshape to "
                "(images, views, classes), not (views, images, classes).")
            check.require(right, f"expected the classes {want.tolist()}, got {got.tolist()}.")


@exercise("03", "the five crops")
def check_five_crop_boxes(fn: Callable) -> None:
    """``five_crop_boxes(width, height)``: (x0, y0, x1, y1) of the top-left, top-right, bottom-left, bottom-right
    and centre crops, each 2/3 of the width and 2/3 of the height (within a pixel of :func:`crop_boxes`)."""
    names = ("top-left", "top-right", "bottom-left", "bottom-right", "centre")
    with Checker("the five crops") as check:
        for width, height in ((300, 200), (451, 301), (90, 240)):
            want = np.array(list(crop_boxes(width, height).values()), dtype=float)
            got = check.array(check.call(fn, width, height), what=f"five_crop_boxes({width}, {height})")
            check.require(got.shape == (5, 4), f"return five boxes of four numbers, (x0, y0, x1, y1); got an "
                                               f"array of shape {got.shape}.")
            sides = np.stack([got[:, 2] - got[:, 0], got[:, 3] - got[:, 1]], axis=1)
            check.require(not np.allclose(got[:, 2:], [[width * 2 / 3, height * 2 / 3]] * 5, atol=1.5)
                          or np.allclose(got[:, :2], 0),
                          "the last two numbers look like a width and a height; boxes are corners, "
                          "(x0, y0, x1, y1) with x1 = x0 + crop width.")
            check.require(not np.allclose(sides, [[width * np.sqrt(2 / 3), height * np.sqrt(2 / 3)]] * 5, atol=1.5),
                          "each crop is 2/3 of the *width* and 2/3 of the *height* (4/9 of the area), not 2/3 "
                          "of the area.")
            check.require(not np.allclose(sides, [[height * 2 / 3, width * 2 / 3]] * 5, atol=1.5),
                          "width and height are swapped: x goes with the width, y with the height.")
            check.require(np.allclose(sides, [[width * 2 / 3, height * 2 / 3]] * 5, atol=1.5),
                          f"for a {width}x{height} image every crop should be about "
                          f"{width * 2 / 3:.0f}x{height * 2 / 3:.0f} pixels (2/3 of each side).")
            for k, name in enumerate(names):
                check.require(np.allclose(got[k], want[k], atol=1.0),
                              f"box {k} should be the {name} crop, about {want[k].astype(int).tolist()}; got "
                              f"{got[k].tolist()} (order: top-left, top-right, bottom-left, bottom-right, "
                              "centre; the centre crop starts at ((width - crop width) / 2, (height - crop "
                              "height) / 2)).")


@exercise("03", "adding the mirrors")
def check_add_mirrors(fn: Callable) -> None:
    """``add_mirrors(views)``: the views, then the horizontal mirror of each in the same order (2n arrays)."""
    rng = np.random.default_rng(4)
    with Checker("adding the mirrors") as check:
        for n in (1, 3):
            views = [rng.integers(0, 256, size=(4 + k, 5 + k, 3)).astype(np.uint8) for k in range(n)]
            got = check.call(fn, views)
            check.require(isinstance(got, (list, tuple)) and len(got) == 2 * n,
                          f"for {n} view(s) return a list of {2 * n}: the views, then their mirrors.")
            got = [np.asarray(view) for view in got]
            check.require(all(np.array_equal(a, b) for a, b in zip(got[:n], views, strict=True)) or n == 1 or not
                          all(np.array_equal(got[2 * k], views[k]) for k in range(n)),
                          "the originals come first, then the mirrors in the same order (the course's view "
                          "order: whole, crops, rotations, then flip_whole, flip_crops, flip_rotations), not "
                          "interleaved.")
            check.require(all(np.array_equal(a, b) for a, b in zip(got[:n], views, strict=True)),
                          "the first half of the list should be the views themselves, unchanged.")
            for view, mirror in zip(views, got[n:], strict=True):
                check.require(not np.array_equal(mirror, view[::-1]),
                              "that flips the image upside down (the rows); a mirror flips left and right: "
                              "reverse the columns, view[:, ::-1].")
                check.require(not np.array_equal(mirror, view[..., ::-1]),
                              "that reverses the colour channels (RGB -> BGR); a mirror reverses the columns, "
                              "view[:, ::-1].")
                check.require(np.array_equal(mirror, view[:, ::-1]),
                              "each mirror should be its view flipped left to right, view[:, ::-1].")
