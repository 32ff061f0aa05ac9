"""Notebook 00's checkers give each typical mistake its own hint."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.exercises import ExerciseFailed, check


def test_wins_over_prior_counting_ties() -> None:
    def wins_over_prior(rows):
        return [row.task for row in rows if row.cnn_aug >= row.prior]

    with pytest.raises(ExerciseFailed, match=r"a tie is not a win: use > \(strictly greater\)"):
        check(wins_over_prior)


def test_wins_over_prior_reading_the_plain_cnn() -> None:
    def wins_over_prior(rows):
        return [row.task for row in rows if row.cnn > row.prior]

    with pytest.raises(ExerciseFailed, match=r"you compared the plain CNN \(row.cnn\)"):
        check(wins_over_prior)


def test_wins_over_prior_returning_a_count() -> None:
    def wins_over_prior(rows):
        return sum(row.cnn_aug > row.prior for row in rows)

    with pytest.raises(ExerciseFailed, match="you returned a count; return the task names"):
        check(wins_over_prior)


def test_average_gain_reversed() -> None:
    def average_gain(rows):
        return np.mean([row.cnn - row.cnn_aug for row in rows])

    with pytest.raises(ExerciseFailed, match="the sign is reversed"):
        check(average_gain)


def test_average_gain_summed() -> None:
    def average_gain(rows):
        return sum(row.cnn_aug - row.cnn for row in rows)

    with pytest.raises(ExerciseFailed, match="that is the total gain; divide by the number of benchmarks"):
        check(average_gain)


def test_average_gain_over_the_prior() -> None:
    def average_gain(rows):
        return np.mean([row.cnn_aug - row.prior for row in rows])

    with pytest.raises(ExerciseFailed, match=r"you compared with the best earlier method \(row.prior\)"):
        check(average_gain)


def test_average_gain_as_a_ratio() -> None:
    def average_gain(rows):
        return np.mean([100 * (row.cnn_aug / row.cnn - 1) for row in rows])

    with pytest.raises(ExerciseFailed, match="that is a relative gain"):
        check(average_gain)


def test_extraction_minutes_in_seconds() -> None:
    def extraction_minutes(n_images, n_views, images_per_second):
        return n_images * n_views / images_per_second

    with pytest.raises(ExerciseFailed, match=r"1360 images x 16 view\(s\) at 20 per second: you gave 1088, the time "
                                             r"in seconds; divide by 60"):
        check(extraction_minutes)


def test_extraction_minutes_forgetting_the_views() -> None:
    def extraction_minutes(n_images, n_views, images_per_second):
        return n_images / images_per_second / 60

    with pytest.raises(ExerciseFailed, match="every view is one pass through the network, so multiply the images "
                                             "by the views"):
        check(extraction_minutes)


def test_extraction_minutes_multiplying_by_the_speed() -> None:
    def extraction_minutes(n_images, n_views, images_per_second):
        return n_images * n_views * images_per_second / 60

    with pytest.raises(ExerciseFailed, match=r"divide by the speed, do not multiply"):
        check(extraction_minutes)
