"""Checkers for notebook 06's exercises (see :mod:`course_utils.exercises.checking` for how a checker is written)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import roc_auc_score

from .. import augment
from .checking import Checker, exercise

# (box, factor, image width, image height): inside the image, touching an edge, a corner, and a non-integer box.
BOX_CASES = (
    ((180, 55, 255, 145), 1.5, 512, 512),
    ((10, 20, 50, 60), 1.5, 200, 100),
    ((150, 60, 200, 100), 2.5, 200, 100),
    ((20.5, 30.2, 41.0, 47.9), 1.5, 64, 64),
)


def _box_mistakes(box: tuple, factor: float, width: int, height: int) -> dict[str, np.ndarray]:
    """What typical wrong enlargements give for one case."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    outwards = np.array([np.floor(cx - factor * w / 2), np.floor(cy - factor * h / 2),
                         np.ceil(cx + factor * w / 2), np.ceil(cy + factor * h / 2)])
    return {
        "corner": np.array([x0, y0, min(width, x0 + factor * w), min(height, y0 + factor * h)]),
        "each side": np.array(augment.enlarge_box(box, 1 + 2 * factor, width, height), dtype=float),
        "not clipped": outwards,
    }


BOX_HINTS = {
    "corner": "the top-left corner did not move, so the box grew to the right and down only. Scale about the "
              "centre: keep cx = (x0 + x1) / 2 and put half of the new width on each side.",
    "each side": "the new box is too big: each side becomes factor x its length, so half of the *new* width, "
                 "factor x (x1 - x0) / 2, lies on each side of the centre (not factor x the width on each side).",
    "not clipped": "the box leaves the image: clip it, x0 and y0 at least 0, x1 at most the width, y1 at most the "
                   "height.",
}


@exercise("06", "box enlarged about its centre")
def check_enlarge_box_about_centre(fn: Callable) -> None:
    """``enlarge_box_about_centre(box, factor, width, height)``: each side x ``factor`` about the centre, clipped to
    the image, rounded outwards to whole pixels (``cu.augment.enlarge_box``)."""
    with Checker("box enlarged about its centre") as check:
        for box, factor, width, height in BOX_CASES:
            got = check.array(check.call(fn, box, factor, width, height), shape=(4,), what="the enlarged box")
            want = np.array(augment.enlarge_box(box, factor, width, height), dtype=float)
            if not np.allclose(got, want):
                for mistake, wrong in _box_mistakes(box, factor, width, height).items():
                    check.require(np.allclose(wrong, want) or not np.allclose(got, wrong, atol=1.01),
                                  f"box {box} x{factor} in a {width}x{height} image: {BOX_HINTS[mistake]}")
            check.close(got, want, f"box {box} x{factor} in a {width}x{height} image should become "
                                   f"{tuple(int(v) for v in want)}, not {tuple(got.tolist())}: round outwards "
                                   "(math.floor for x0 and y0, math.ceil for x1 and y1) so that the enlarged box "
                                   "still holds the whole box.")


@exercise("06", "views as training rows")
def check_views_as_training_rows(fn: Callable) -> None:
    """``views_as_training_rows(X, labels)``: ``(images, views, dims)`` -> ``(images * views, dims)`` rows and each
    row's label, image by image (all views of image 0 first)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 4, 5))
    labels = np.array([2, 0, 1])
    with Checker("views as training rows") as check:
        result = check.call(fn, X, labels)
        check.require(isinstance(result, tuple) and len(result) == 2,
                      "return two things, rows and row_labels: `return rows, row_labels`.")
        rows = check.array(result[0], what="rows")
        row_labels = check.array(result[1], what="row_labels")
        check.require(rows.shape == (12, 5), f"3 images x 4 views of 5 numbers should give 12 rows of 5; got "
                                             f"{rows.shape}. Reshape to (images * views, dims): "
                                             "X.reshape(-1, X.shape[-1]).")
        check.require(row_labels.shape == (12,), f"there should be one label per row, 12; got {row_labels.shape}.")
        check.require(np.array_equal(rows, X.reshape(12, 5)),
                      "the rows are not in image order: with X.reshape(-1, X.shape[-1]) the 4 views of image 0 "
                      "come first, then image 1's; a transpose mixes them up.")
        check.require(not np.array_equal(row_labels, np.tile(labels, 4)),
                      "the labels are tiled (2, 0, 1, 2, 0, 1, ...) while the rows go image by image: repeat each "
                      "label once per view, np.repeat(labels, n_views), so every view keeps its image's label.")
        check.close(row_labels, np.repeat(labels, 4), "each row's label should be the label of its image: "
                                                      "np.repeat(labels, n_views).")


AUC_CASES = (
    (np.array([0.9, 0.1, 0.8, 0.3, 0.7]), np.array([1, 0, 0, 1, 1])),
    (np.array([2.0, 1.0, 1.0, 0.0, 0.5, -1.0]), np.array([1, 1, 0, 0, 0, 1])),  # a positive ties a negative
    (np.array([0.5, 0.4, 0.3, 0.2]), np.array([1, 1, 0, 0])),
)


@exercise("06", "ROC AUC from pairs")
def check_roc_auc_by_pairs(fn: Callable) -> None:
    """``roc_auc_by_pairs(scores, labels)``: the share of (positive, negative) pairs ranked right, ties counting 1/2."""
    with Checker("ROC AUC from pairs") as check:
        for scores, labels in AUC_CASES:
            got = check.number(check.call(fn, scores, labels), what="the AUC")
            want = roc_auc_score(labels, scores)
            pos, neg = scores[labels == 1], scores[labels == 0]
            greater = (pos[:, None] > neg[None, :]).sum()
            ties = (pos[:, None] == neg[None, :]).sum()
            check.require(not np.isclose(got, 1 - want) or np.isclose(want, 0.5),
                          "the AUC came out as 1 - AUC: count the pairs where the *positive* scores higher than "
                          "the negative.")
            check.require(not np.isclose(got, greater / (pos.size * neg.size)) or np.isclose(got, want),
                          "a tie between a positive and a negative counts one half (the ranking is a coin toss "
                          "there): add 0.5 x the number of tied pairs.")
            check.require(not np.isclose(got, (greater + ties) / (pos.size * neg.size)) or np.isclose(got, want),
                          "a tie counts one half, not a whole pair ranked right: use > for the wins and add 0.5 x "
                          "the ties.")
            check.require(not np.isclose(got, greater / labels.size ** 2) or np.isclose(got, want),
                          "divide by the number of (positive, negative) pairs, n_pos x n_neg, not by n^2.")
            check.close(got, want, f"on scores {scores.tolist()} and labels {labels.tolist()} the AUC is "
                                   f"{want:.4f}; yours is {got:.4f}.")
