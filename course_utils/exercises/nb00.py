"""Checkers for notebook 00's exercises (see :mod:`course_utils.exercises.checking` for how a checker is written).

Two exercises read the paper's headline table (:func:`course_utils.claims.paper_claim`): where the paper wins
and how much the extras add; the third plans a lab: how long extracting the 16 views of a dataset takes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..claims import ClaimRow, paper_claim
from .checking import Checker, exercise


def _row(task: str, prior: float, cnn: float, cnn_aug: float) -> ClaimRow:
    """A made-up benchmark row, for cases the paper's own table does not cover (a tie, a loss)."""
    return ClaimRow(task, task.lower(), "earlier", prior, "CNN", cnn, "CNNaug", cnn_aug)


# A win, a row where only the *plain* CNN beats the earlier method, a tie, and a loss.
_MADE_UP = [_row("A", 50.0, 40.0, 60.0), _row("B", 70.0, 75.0, 65.0), _row("C", 80.0, 70.0, 80.0),
            _row("D", 30.0, 20.0, 25.0)]


def _task_names(value: object) -> list[str] | None:
    """``value`` as a list of task names, or None when it is not a list/tuple of strings."""
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return list(value)
    return None


@exercise("00", "where the paper wins")
def check_wins_over_prior(fn: Callable) -> None:
    """``wins_over_prior(rows)``: the ``task`` of every row whose ``cnn_aug`` beats ``prior`` strictly, in order."""
    with Checker("where the paper wins") as check:
        for rows in (paper_claim(), _MADE_UP):
            got = check.call(fn, rows)
            check.require(not isinstance(got, (int, np.integer)),
                          "you returned a count; return the task names instead, e.g. "
                          "[row.task for row in rows if ...].")
            names = _task_names(got)
            check.require(names is not None, f"return a list of task names (strings); got {got!r}.")
            want = [row.task for row in rows if row.cnn_aug > row.prior]
            with_ties = [row.task for row in rows if row.cnn_aug >= row.prior]
            plain = [row.task for row in rows if row.cnn > row.prior]
            check.require(names == want or names != with_ties,
                          "a tie is not a win: use > (strictly greater), not >=.")
            check.require(names == want or sorted(names) != sorted(plain),
                          "you compared the plain CNN (row.cnn); the question is about the augmented result, "
                          "row.cnn_aug, against row.prior.")
            check.require(sorted(names) == sorted(want),
                          f"expected the tasks {want}, got {names}: keep a row when row.cnn_aug > row.prior.")
            check.require(names == want, "keep the rows in the order they come in.")


def _reference_average_gain(rows: list[ClaimRow]) -> float:
    return float(np.mean([row.cnn_aug - row.cnn for row in rows]))


@exercise("00", "average gain of the extras")
def check_average_gain(fn: Callable) -> None:
    """``average_gain(rows)``: the mean, over rows, of ``cnn_aug - cnn`` in percentage points."""
    claim = paper_claim()
    with Checker("average gain of the extras") as check:
        for rows in (claim, claim[:6], claim[6:], _MADE_UP):
            got = check.number(check.call(fn, rows), what="average_gain(rows)")
            want = _reference_average_gain(rows)
            right = np.isclose(got, want)
            check.require(right or not np.isclose(got, -want), "the sign is reversed: the gain is the augmented result "
                                                      "minus the plain one, row.cnn_aug - row.cnn.")
            check.require(right or not np.isclose(got, sum(row.cnn_aug - row.cnn for row in rows)),
                          "that is the total gain; divide by the number of benchmarks to get the average "
                          "(np.mean).")
            check.require(right or not np.isclose(got, np.mean([row.cnn_aug - row.prior for row in rows])),
                          "you compared with the best earlier method (row.prior); the extras' gain is over the "
                          "plain CNN, row.cnn.")
            check.require(right or not np.isclose(got, np.mean([100 * (row.cnn_aug / row.cnn - 1) for row in rows])),
                          "that is a relative gain (a ratio); the question asks for points, a difference: "
                          "row.cnn_aug - row.cnn.")
            check.close(got, want, f"expected {want:.3f} points, got {got:.3f}: average row.cnn_aug - row.cnn "
                                   "over the rows.", atol=1e-6)


@exercise("00", "how long the 16 views take")
def check_extraction_minutes(fn: Callable) -> None:
    """``extraction_minutes(n_images, n_views, images_per_second)``: minutes to push every view of every image through
    the network, at ``images_per_second`` network inputs per second."""
    with Checker("how long the 16 views take") as check:
        for n_images, n_views, speed in ((1360, 16, 20.0), (600, 1, 10.0), (5063, 16, 400.0)):
            got = check.number(check.call(fn, n_images, n_views, speed),
                               what=f"extraction_minutes({n_images}, {n_views}, {speed:g})")
            want = n_images * n_views / speed / 60
            right = np.isclose(got, want)
            described = f"{n_images} images x {n_views} view(s) at {speed:g} per second"
            check.require(right or not np.isclose(got, want * 60),
                          f"{described}: you gave {got:.4g}, the time in seconds; divide by 60 for minutes.")
            check.require(right or not np.isclose(got, n_images / speed / 60),
                          f"{described}: every view is one pass through the network, so multiply the images by "
                          "the views.")
            check.require(right or not np.isclose(got, n_images * n_views * speed / 60),
                          f"{described}: at {speed:g} inputs per second, N inputs take N / {speed:g} seconds "
                          "(divide by the speed, do not multiply).")
            check.close(got, want, f"{described} should take {want:.4g} minutes, got {got:.4g}.", atol=1e-6)
