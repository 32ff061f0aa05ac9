"""Notebook 08's checkers give each typical mistake its own hint."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.exercises import ExerciseFailed, check


def _gains(ours, paper, base, better, *, sign=1.0, convert=True, skip_without_paper=False, keep_incomplete=False):
    table = {}
    for dataset, values in ours.items():
        if not keep_incomplete and (base not in values or better not in values):
            continue
        our_gain = sign * (values.get(better, np.nan) - values.get(base, np.nan))
        our_gain *= 25 if convert and dataset == "ukbench" else 1
        theirs = paper.get(dataset, {})
        if base in theirs and better in theirs:
            table[dataset] = (sign * (theirs[better] - theirs[base]), our_gain)
        elif not skip_without_paper:
            table[dataset] = (None, our_gain)
    return table


@pytest.mark.parametrize(("options", "hint"), [
    ({"sign": -1.0}, "the gains have the wrong sign"),
    ({"skip_without_paper": True}, "datasets without a paper number .* belong in the table too, with None"),
    ({"convert": False}, "multiply our UKBench gain by 25"),
    ({"keep_incomplete": True}, "'voc2007'\\] should not be in the table: a dataset needs both"),
])
def test_gain_table_mistakes(options, hint) -> None:
    def paper_vs_ours_gains(ours, paper, base, better):
        return _gains(ours, paper, base, better, **options)

    with pytest.raises(ExerciseFailed, match=hint):
        check(paper_vs_ours_gains)


@pytest.mark.parametrize(("share", "hint"), [
    (lambda base, better: None if base == 100 else 100 * (better - base) / (100 - base), "not a percentage"),
    (lambda base, better: None if base == 100 else (better - base) / base,
     "that is the gain relative to the base score"),
    (lambda base, better: None if base == 100 else (better - base) / (100 - better),
     "not after it \\(100 - better\\)"),
    (lambda base, better: None if base == 100 else abs(better - base) / (100 - base),
     "when the step hurts, the share is negative"),
    (lambda base, better: (better - base) / max(100 - base, 1e-9), "a base of 100% leaves no error to remove"),
])
def test_share_of_error_mistakes(share, hint) -> None:
    def share_of_error_removed(rows):
        return {dataset: share(base, better) for dataset, (base, better) in rows.items()}

    with pytest.raises(ExerciseFailed, match=hint):
        check(share_of_error_removed)


def test_order_agreement_counting_pairs() -> None:
    def method_order_agreement(ours, paper):
        methods = sorted(set(ours) & set(paper))
        return float(sum(np.sign(ours[a] - ours[b]) == np.sign(paper[a] - paper[b])
                         for i, a in enumerate(methods) for b in methods[i + 1:]))

    with pytest.raises(ExerciseFailed, match="return a fraction between 0 and 1, not a count of pairs"):
        check(method_order_agreement)


def test_order_agreement_reading_absent_methods_as_zero() -> None:
    def method_order_agreement(ours, paper):
        methods = sorted(set(ours) | set(paper))
        pairs = [(a, b) for i, a in enumerate(methods) for b in methods[i + 1:]]
        return float(np.mean([np.sign(ours.get(a, 0) - ours.get(b, 0)) == np.sign(paper.get(a, 0) - paper.get(b, 0))
                              for a, b in pairs]))

    with pytest.raises(ExerciseFailed, match="compare only the methods present in \\*both\\*"):
        check(method_order_agreement)
