"""Checkers for notebook 08's exercises (see :mod:`course_utils.exercises.checking` for how a checker is written)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .checking import Checker, exercise

# Ours: flowers17 and the demo sets have no paper row; ukbench is an N-S score (0-4); voc2007 lacks CNNaug-SVM.
OURS = {
    "flowers102": {"CNN-SVM": 89.8, "CNNaug-SVM": 94.8},
    "flowers17": {"CNN-SVM": 93.2, "CNNaug-SVM": 95.0},
    "ukbench": {"CNN": 3.40, "CNN-ss": 3.52},
    "voc2007": {"CNN-SVM": 80.1},
    "demo_classes": {"CNN-SVM": 98.4, "CNNaug-SVM": 97.9},
}
PAPER = {
    "flowers102": {"CNN-SVM": 74.7, "CNNaug-SVM": 86.8},
    "voc2007": {"CNN-SVM": 73.9, "CNNaug-SVM": 77.2},
    "ukbench": {"CNN": 76.0, "CNN-ss": 86.9, "CNNaug-ss": 91.1},
}


def _gains(ours: dict, paper: dict, base: str, better: str, *, sign: float = 1.0, convert: bool = True,
           paper_missing: str = "none") -> dict:
    """The right table (defaults) or one with a typical mistake."""
    table = {}
    for dataset, methods in ours.items():
        if base not in methods or better not in methods:
            continue
        scale = 25.0 if convert and dataset == "ukbench" else 1.0
        our_gain = sign * scale * (methods[better] - methods[base])
        known = paper.get(dataset, {})
        if base in known and better in known:
            paper_gain = sign * (known[better] - known[base])
        elif paper_missing == "skip":
            continue
        else:
            paper_gain = None
        table[dataset] = (paper_gain, our_gain)
    return table


def _same_table(got: object, want: dict) -> bool:
    if not isinstance(got, dict) or set(got) != set(want):
        return False
    for dataset, (paper_gain, our_gain) in want.items():
        row = got[dataset]
        if not (isinstance(row, tuple | list) and len(row) == 2):
            return False
        if (row[0] is None) != (paper_gain is None) or (paper_gain is not None and not np.isclose(row[0], paper_gain)):
            return False
        if row[1] is None or not np.isclose(row[1], our_gain):
            return False
    return True


@exercise("08", "paper-versus-ours gain table")
def check_paper_vs_ours_gains(fn: Callable) -> None:
    """``paper_vs_ours_gains(ours, paper, base, better)``: dataset -> (paper's gain or None, our gain), in points."""
    with Checker("paper-versus-ours gain table") as check:
        for base, better in (("CNN-SVM", "CNNaug-SVM"), ("CNN", "CNN-ss")):
            got = check.call(fn, OURS, PAPER, base, better)
            want = _gains(OURS, PAPER, base, better)
            check.require(isinstance(got, dict), f"return a dict {{dataset: (paper_gain, our_gain)}}; got "
                                                 f"{type(got).__name__}.")
            if not _same_table(got, want):
                check.require(not _same_table(got, _gains(OURS, PAPER, base, better, sign=-1.0)),
                              f"the gains have the wrong sign: a gain is {better} minus {base}, so a positive "
                              "number means the extra step helped.")
                check.require(not _same_table(got, _gains(OURS, PAPER, base, better, paper_missing="skip")),
                              "datasets without a paper number (ours only, such as flowers17) belong in the table "
                              "too, with None as the paper's gain: our measurement stands on its own.")
                check.require(not _same_table(got, _gains(OURS, PAPER, base, better, convert=False)),
                              "our UKBench numbers are N-S scores (0 to 4) while the paper prints percent: "
                              "multiply our UKBench gain by 25 (cu.paper.ns_to_ukbench_percent) so both are in "
                              "points.")
                extra = sorted(set(got) - set(want))
                check.require(not extra, f"{extra} should not be in the table: a dataset needs both {base} and "
                                         f"{better} in *our* results to have a gain.")
            check.require(_same_table(got, want), f"for {base} -> {better} the table should be {want}; yours is "
                                                  f"{got}.")


@exercise("08", "share of the error removed")
def check_share_of_error_removed(fn: Callable) -> None:
    """``share_of_error_removed(rows)``: dataset -> (better - base) / (100 - base), or None when base is 100."""
    rows = {"flowers102": (74.7, 86.8), "demo_classes": (98.4, 99.2), "perfect": (100.0, 100.0),
            "worse": (60.0, 58.0)}
    want = {"flowers102": (86.8 - 74.7) / 25.3, "demo_classes": 0.8 / 1.6, "perfect": None, "worse": -2.0 / 40.0}
    with Checker("share of the error removed") as check:
        got = check.call(fn, rows)
        check.require(isinstance(got, dict) and set(got) == set(rows),
                      f"return a dict with one entry per dataset of `rows` ({sorted(rows)}); got {got!r}.")
        check.require(got["perfect"] is None,
                      "a base of 100% leaves no error to remove, so the share is undefined there: return None "
                      "instead of dividing by zero.")
        for dataset in ("flowers102", "demo_classes", "worse"):
            base, better = rows[dataset]
            value = check.number(got[dataset], what=f"the share for {dataset}")
            check.require(not np.isclose(value, 100 * want[dataset]),
                          "return a fraction (0.5 means half the errors are gone), not a percentage.")
            check.require(not np.isclose(value, (better - base) / base),
                          "that is the gain relative to the base score; divide by the base's *error*, "
                          "100 - base, the room there was to improve.")
            check.require(not np.isclose(value, (better - base) / (100 - better)),
                          "divide by the error before the step (100 - base), not after it (100 - better).")
            check.require(not (dataset == "worse" and np.isclose(value, -want[dataset])),
                          "when the step hurts, the share is negative: keep the sign of better - base.")
            check.close(value, want[dataset], f"{dataset}: from {base} to {better} removes "
                                              f"{want[dataset]:.4f} of the errors; yours is {value:.4f}.")


def _agreement(ours: dict, paper: dict, missing_as_zero: bool = False) -> float:
    """The right share (defaults), or the one a learner gets by reading absent methods as 0."""
    methods = sorted(set(ours) | set(paper)) if missing_as_zero else sorted(set(ours) & set(paper))
    ours, paper = ({m: table.get(m, 0.0) for m in methods} for table in (ours, paper))
    pairs = [(a, b) for i, a in enumerate(methods) for b in methods[i + 1:]]
    return float(np.mean([np.sign(ours[a] - ours[b]) == np.sign(paper[a] - paper[b]) for a, b in pairs]))


@exercise("08", "do the methods rank the same?")
def check_method_order_agreement(fn: Callable) -> None:
    """``method_order_agreement(ours, paper)``: the share of pairs of methods (present in both) that both rank the
    same way; a tie in ours counts as disagreeing."""
    paper = {"CNN": 64.2, "CNN-ss": 76.9, "CNNaug-ss": 84.3, "BoW": 54.0}
    cases = (
        ({"CNN": 80.0, "CNN-ss": 84.0, "CNNaug-ss": 88.0, "R-MAC": 90.0}, 1.0),
        ({"CNN": 86.0, "CNN-ss": 84.0, "CNNaug-ss": 88.0}, 2 / 3),
        ({"CNN": 85.0, "CNN-ss": 85.0, "CNNaug-ss": 83.0, "GeM": 70.0}, 0.0),
    )
    with Checker("do the methods rank the same?") as check:
        for ours, want in cases:
            got = check.number(check.call(fn, ours, paper), what="the agreement")
            if not np.isclose(got, want):
                check.require(got <= 1, "return a fraction between 0 and 1, not a count of pairs.")
                check.require(not np.isclose(got, _agreement(ours, paper, missing_as_zero=True)),
                              f"ours {sorted(ours)}, paper {sorted(paper)}: compare only the methods present in "
                              "*both* (set(ours) & set(paper)); a method one side did not run has no rank there.")
            check.close(got, want, f"ours {ours}, paper {paper}: compare only the methods present in both, each "
                                   f"unordered pair once; the share that agree is {want:.4f}, yours is {got:.4f}.")
