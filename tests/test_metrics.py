"""Every metric against hand-computed values, including the examples that catch the classic protocol mistakes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from course_utils.metrics import (
    VOC07_DEVKIT_LEVELS,
    average_precision,
    matlab_colon,
    mean_auc,
    mean_class_accuracy,
    rank_by_score,
    rankings_from_distances,
    retrieval_ap,
    revisited_precision_at,
    ukbench_score,
    voc07_ap,
)

# Ranked P N P N N P: positives at ranks 1, 3 and 6 of 6 items (scores are strictly decreasing).
SIX_SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
SIX_LABELS = np.array([1, 0, 1, 0, 0, 1])


# ---------------------------------------------------------------------------- perfect rankings
def test_a_perfect_ranking_scores_one_everywhere():
    scores, labels = np.array([0.9, 0.7, 0.2, 0.1]), np.array([1, 1, 0, 0])
    # the devkit adds 1/11 eleven times (ap = ap + p/11), which is 1.0000000000000002 as a double
    assert voc07_ap(scores, labels) == 1.0000000000000002 == sum([1 / 11] * 11)
    assert voc07_ap(scores, labels, levels="exact") == pytest.approx(1.0, abs=1e-15)
    assert average_precision(scores, labels) == 1.0
    assert retrieval_ap(["a", "b", "c", "d"], positives={"a", "b"}) == 1.0
    assert ukbench_score([0, 1, 2, 3, 4], group=[3, 2, 1, 0]) == 4


# ---------------------------------------------------------------------------- VOC07 11-point vs area
def test_eleven_point_ap_differs_from_area_ap_on_a_known_example():
    # Precision at each positive's rank: 1/1, 2/3, 3/6.  Area AP = (1 + 2/3 + 1/2) / 3 = 13/18 = 0.7222.
    # Recall reaches 1/3 at rank 1, 2/3 at rank 3, 1 at rank 6. Interpolated precision (max precision at
    # recall >= t): t = 0, .1, .2, .3 -> 1; t = .4, .5, .6 -> 2/3 (rank 3); t = .7, .8, .9, 1 -> 1/2 (rank 6).
    # 11-point AP = (4 * 1 + 3 * 2/3 + 4 * 1/2) / 11 = 8/11 = 0.7273.
    assert average_precision(SIX_SCORES, SIX_LABELS) == pytest.approx(13 / 18)
    assert voc07_ap(SIX_SCORES, SIX_LABELS) == pytest.approx(8 / 11)


def test_matlab_colon_reproduces_matlabs_own_output():
    # MATLAB builds a:d:b from both ends (first half a + k*d, second half b - (n-k)*d, middle (a+b)/2), so 0:0.1:1
    # holds 3*0.1 = 0.30000000000000004 but exactly 0.6 and 0.7 (6*0.1 and 7*0.1 would be 0.6000000000000001 and
    # 0.7000000000000001).
    levels = matlab_colon(0, 0.1, 1)
    assert levels.tolist() == [0.0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert VOC07_DEVKIT_LEVELS.tolist() == levels.tolist()
    # MATLAB prints x - y(1:end-1) = 1.0e-16 * [0 0 -0.2776 -0.5551] for x = 0:0.1:0.3, y = 0:0.1:0.4
    x, y = matlab_colon(0, 0.1, 0.3), matlab_colon(0, 0.1, 0.4)
    np.testing.assert_allclose((x - y[:-1]) / 1e-16, [0, 0, -0.2776, -0.5551], atol=5e-5)
    assert x.tolist() == [0, 0.1, 0.3 - 0.1, 0.3] and y.tolist() == [0, 0.1, 0.2, 0.4 - 0.1, 0.4]
    assert matlab_colon(1, 1, 4).tolist() == [1, 2, 3, 4] and matlab_colon(1, 2, 6).tolist() == [1, 3, 5]
    assert matlab_colon(1, 0.5, 0).size == 0 and matlab_colon(0, -0.25, -1).tolist() == [0, -0.25, -0.5, -0.75, -1]


def test_eleven_point_levels_are_the_devkits_by_default():
    # 10 positives, ranked P P P N then 7 P. Recall is exactly 0.3 at rank 3 (precision 1). The devkit's level
    # 0.30000000000000004 is not reached there, so levels 0 .. 0.2 give 1 and 0.3 .. 1 the best later precision,
    # 10/11 at rank 11: AP = (3 + 8 * 10/11) / 11 = 113/121. Exact tenths give (4 + 7 * 10/11) / 11 = 114/121.
    labels = np.array([1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1])
    scores = -np.arange(11.0)
    assert voc07_ap(scores, labels) == pytest.approx(113 / 121, abs=1e-15)
    assert round(voc07_ap(scores, labels), 6) == 0.933884
    assert voc07_ap(scores, labels, levels="exact") == pytest.approx(114 / 121, abs=1e-15)
    assert round(voc07_ap(scores, labels, levels="exact"), 6) == 0.942149
    # the same with 20 positives (recall 6/20 is 0.3 as a double too), and with difficult items in the ranking
    twice = np.repeat(labels, 2)
    assert voc07_ap(-np.arange(22.0), twice) == pytest.approx(113 / 121, abs=1e-15)
    with_difficult = np.insert(labels, 3, 0)
    difficult = np.zeros(12, bool)
    difficult[3] = True
    assert voc07_ap(-np.arange(12.0), with_difficult, difficult) == voc07_ap(scores, labels)
    with pytest.raises(ValueError, match="levels must be 'devkit' or 'exact'; got 'tenths'"):
        voc07_ap(scores, labels, levels="tenths")


@pytest.mark.parametrize(("first", "expected"), [(6, 117), (7, 118)])
def test_recall_of_exactly_six_or_seven_tenths_reaches_its_devkit_level(first, expected):
    # 10 positives: `first` hits, one miss, then the rest. Recall first/10 at rank `first` (precision 1) reaches
    # the level first/10 (MATLAB's 0.6 and 0.7 are exact, unlike 6*0.1 or 7*0.1), so levels 0 .. first/10 give 1
    # and the other 10 - first levels 10/11: AP = ((first + 1) + (10 - first) * 10/11) / 11 = expected/121.
    labels = np.array([1] * first + [0] + [1] * (10 - first))
    ap = voc07_ap(-np.arange(11.0), labels)
    assert ap == pytest.approx(expected / 121, abs=1e-15)
    assert ap == voc07_ap(-np.arange(11.0), labels, levels="exact")


def test_devkit_ap_is_the_devkits_arithmetic_bit_for_bit():
    # VOCevalcls.m: rec = tp/npos, prec = tp./(fp+tp), then for t = 0:0.1:1, ap = ap + max(prec(rec>=t))/11.
    rng = np.random.default_rng(7)
    for n_positives in (1, 3, 10, 20, 30, 37):
        labels = rng.permutation(np.r_[np.ones(n_positives, int), np.zeros(25, int)])
        scores = rng.random(labels.size)
        hits = labels[np.argsort(-scores, kind="stable")]
        tp = np.cumsum(hits)
        rec, prec = tp / n_positives, tp / np.arange(1, hits.size + 1)
        expected = 0.0
        for t in (0.0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0):
            expected = expected + (prec[rec >= t].max() if (rec >= t).any() else 0.0) / 11
        assert voc07_ap(scores, labels) == expected  # equal as doubles, not approximately


def test_difficult_items_are_removed_not_counted_as_errors():
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    labels = np.array([0, 1, 0, 1])
    difficult = np.array([True, False, False, False])
    # Without the difficult negative the ranking is P N P: recall 1/2 at rank 1 (precision 1), 1 at rank 3
    # (precision 2/3). Levels 0 .. 0.5 -> 1 (6 levels), 0.6 .. 1 -> 2/3 (5 levels): AP = (6 + 10/3) / 11 = 28/33.
    assert voc07_ap(scores, labels, difficult) == pytest.approx(28 / 33)
    assert voc07_ap(scores, labels) < 28 / 33  # counted as a false positive, it would cost precision
    # a difficult positive ranked last is not a missed positive either
    assert voc07_ap([0.9, 0.1], [1, 1], difficult=[False, True]) == pytest.approx(1.0, abs=1e-15)


def test_ties_are_broken_by_input_order_deterministically():
    scores = np.array([0.5, 0.5, 0.5])
    # ranked N P P: precision 1/2 and 2/3 at the positives -> (1/2 + 2/3) / 2 = 7/12
    assert average_precision(scores, [0, 1, 1]) == pytest.approx(7 / 12)
    assert average_precision(scores, [1, 1, 0]) == 1.0  # same scores, positives listed first
    np.testing.assert_array_equal(rank_by_score([0.1, 0.5, 0.1, 0.5]), [1, 3, 0, 2])
    # scikit-learn instead treats tied scores as one threshold (precision 2/3 for both), the documented difference
    assert average_precision_score([0, 1, 1], scores) == pytest.approx(2 / 3)


def test_average_precision_equals_sklearn_on_tie_free_random_data():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = rng.integers(5, 200)
        labels = rng.integers(0, 2, n)
        labels[rng.integers(n)] = 1
        scores = rng.permutation(n) + rng.random(n) * 0.5  # distinct values
        assert average_precision(scores, labels) == pytest.approx(average_precision_score(labels, scores))


def test_ap_errors_name_the_problem():
    with pytest.raises(ValueError, match="there is no positive item"):
        voc07_ap([0.3, 0.2], [0, 0])
    with pytest.raises(ValueError, match="there is no positive item"):
        voc07_ap([0.3, 0.2], [1, 0], difficult=[True, False])
    with pytest.raises(ValueError, match=r"labels must be 0 or 1; got values \[0, 2\]"):
        average_precision([0.3, 0.2], [0, 2])
    with pytest.raises(ValueError, match=r"1-D of equal length .* got shapes \(2,\) and \(3,\)"):
        average_precision([0.3, 0.2], [0, 1, 1])
    with pytest.raises(ValueError, match="NaN or infinite"):
        voc07_ap([np.nan, 0.2], [0, 1])


# ---------------------------------------------------------------------------- classification accuracy, AUC
def test_mean_class_accuracy_weighs_every_class_equally():
    y_true = [0, 0, 0, 0, 1, 1]
    y_pred = [0, 0, 0, 0, 0, 1]
    assert mean_class_accuracy(y_true, y_pred) == pytest.approx((4 / 4 + 1 / 2) / 2)  # 0.75, not 5/6
    # a class never predicted scores 0 and still counts: (1 + 0 + 0) / 3, though 2 of 4 items are right
    assert mean_class_accuracy([0, 1, 2, 2], [0, 0, 0, 0]) == pytest.approx(1 / 3)
    # labels need not be 0..K-1; a class only predicted (3) has no items and is not averaged: classes 2, 5 and 7
    # score 1/2, 2/3 and 1 -> (1/2 + 2/3 + 1) / 3 = 13/18
    assert mean_class_accuracy([2, 2, 5, 5, 5, 7], [2, 3, 5, 5, 7, 7]) == pytest.approx(13 / 18)
    assert mean_class_accuracy(["cat", "dog"], ["cat", "eel"]) == pytest.approx(0.5)  # string labels work
    assert mean_class_accuracy([4, 4, 4], [4, 4, 4]) == 1.0  # a single class


def test_mean_class_accuracy_is_the_per_class_mean_exactly_and_quietly():
    # scikit-learn's balanced_accuracy_score computes it: the same doubles as averaging each true class's hit rate
    rng = np.random.default_rng(3)
    for _ in range(50):
        classes = int(rng.integers(2, 12))
        y_true = rng.integers(0, classes, int(rng.integers(1, 80)))
        y_pred = rng.integers(0, classes + 2, y_true.size)  # some predicted classes never occur in y_true
        by_hand = float(np.mean([np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the cases above are well defined: no warning reaches the learner
            assert mean_class_accuracy(y_true, y_pred) == by_hand


def test_mean_class_accuracy_rejects_what_is_not_one_label_per_item():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        mean_class_accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="empty"):
        mean_class_accuracy([], [])
    with pytest.raises(ValueError, match="continuous is not supported"):
        mean_class_accuracy([0.5, 1.5], [0.5, 1.5])
    with pytest.raises(ValueError, match="multilabel-indicator is not supported"):
        mean_class_accuracy([[0, 1], [1, 0]], [[0, 1], [1, 0]])


def test_mean_auc_averages_columns_and_counts_ties_as_half():
    scores = np.array([[0.1, 0.0], [0.4, 0.1], [0.35, 0.8], [0.8, 0.9]])
    labels = np.array([[0, 0], [0, 0], [1, 1], [1, 1]])
    # column 0: of the 4 (positive, negative) pairs, only (0.35 vs 0.4) is misordered -> 3/4; column 1 is perfect
    assert mean_auc(scores, labels) == pytest.approx((0.75 + 1.0) / 2)
    assert mean_auc([0.5, 0.5], [0, 1]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"column\(s\) \[1\] have only one label value"):
        mean_auc(scores, np.array([[0, 1], [0, 1], [1, 1], [1, 1]]))


# ---------------------------------------------------------------------------- instance retrieval
def test_retrieval_ap_uses_the_trapezoid_between_recall_steps():
    # positives a and c at ranks 1 and 3. Steps of recall 1/2: (1 + 1)/2 * 1/2 at rank 1, then
    # (precision before = 1/2, after = 2/3) -> (1/2 + 2/3)/2 * 1/2 = 7/24. AP = 1/2 + 7/24 = 19/24.
    assert retrieval_ap(["a", "b", "c", "d"], positives=["a", "c"]) == pytest.approx(19 / 24)


def test_junk_is_removed_from_the_ranking_not_counted_as_an_error():
    assert retrieval_ap(["a", "j", "c"], positives=["a", "c"], junk=["j"]) == 1.0
    assert retrieval_ap(["a", "j", "c"], positives=["a", "c"]) == pytest.approx(19 / 24)


def test_holidays_query_passed_as_junk_and_missing_positives():
    # the query q ranks first but is ignored; the positive comes second among the rest:
    # trapezoid (0 + 1/2)/2 over a recall step of 1 -> 1/4
    assert retrieval_ap(["q", "x", "p"], positives=["p"], junk=["q"]) == pytest.approx(0.25)
    # a positive that never appears keeps recall at 1/2: only the first step counts
    assert retrieval_ap(["a", "b"], positives=["a", "z"]) == pytest.approx(0.5)


def test_retrieval_ap_rejects_ill_formed_ground_truth():
    with pytest.raises(ValueError, match="no positives"):
        retrieval_ap([1, 2], positives=[])
    with pytest.raises(ValueError, match=r"ids \[2\] are both positive and junk"):
        retrieval_ap([1, 2], positives=[1, 2], junk=[2])
    with pytest.raises(ValueError, match="more than once"):
        retrieval_ap([1, 2, 1], positives=[1])


def test_revisited_precision_at_k_follows_the_official_compute_map():
    # Medium: junk j1 removed -> e1 h1 n1 e2, positives at positions 1, 2 and 4. The official compute_map caps k at
    # the last positive's position (4): P@1 = 1/1, P@5 = P@10 = 3/4 (not 3/5 or 3/10).
    ranking = ["e1", "h1", "j1", "n1", "e2"]
    np.testing.assert_allclose(revisited_precision_at(ranking, ["e1", "h1", "e2"], ["j1"]), [1, 3 / 4, 3 / 4])
    # Easy: h1 ignored too -> e1 n1 e2, positives at 1 and 3: P@1 = 1, P@5 = P@10 = 2/3
    np.testing.assert_allclose(revisited_precision_at(ranking, ["e1", "e2"], ["j1", "h1"]), [1, 2 / 3, 2 / 3])
    # the first positive at position 2 of 12, the next ones at 6 and 11: P@1 = 0, P@5 = 1/5, P@10 = 2/10
    long = ["n0", "p1"] + [f"n{i}" for i in range(1, 4)] + ["p2"] + [f"x{i}" for i in range(4)] + ["p3", "z"]
    np.testing.assert_allclose(revisited_precision_at(long, ["p1", "p2", "p3"], kappas=(1, 5, 10)), [0, 1 / 5, 2 / 10])
    np.testing.assert_allclose(revisited_precision_at(["a", "b"], ["z"]), [0, 0, 0])  # never retrieved
    with pytest.raises(ValueError, match="no positives"):
        revisited_precision_at(ranking, [])


def test_ukbench_counts_group_members_in_the_top_four():
    assert ukbench_score(["q", "a", "x", "b", "c"], group=["q", "a", "b", "c"]) == 3
    assert ukbench_score(["x", "y", "z", "w", "q"], group=["q", "a", "b", "c"]) == 0
    with pytest.raises(ValueError, match="a UKBench group has 4 images; got 3"):
        ukbench_score(["q", "a", "b", "c"], group=["q", "a", "b"])
    with pytest.raises(ValueError, match="only 2 ids"):
        ukbench_score(["q", "a"], group=["q", "a", "b", "c"])


def test_rankings_from_distances_sorts_ascending_with_stable_ties():
    np.testing.assert_array_equal(rankings_from_distances([[0.2, 0.1, 0.1], [0.0, 3.0, 1.0]]), [[1, 2, 0], [0, 2, 1]])
    with pytest.raises(ValueError, match=r"must be \(queries, database\)"):
        rankings_from_distances([0.1, 0.2])
