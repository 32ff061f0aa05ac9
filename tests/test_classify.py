"""Linear SVMs: separable data is learnt exactly, views are summed, C is chosen on training images only."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from course_utils.bench import svm as bench_svm
from course_utils.classify import (
    DEFAULT_CS,
    FALLBACK_C,
    CSelection,
    LinearSVMClassifier,
    cv_folds,
    cv_shortfall,
    fit_on_split,
    ovo_column_blocks,
    ovo_votes,
    select_C,
    use_dual,
)
from course_utils.normalize import make_normalizer


def separable_views(n_images: int, n_classes: int, n_views: int = 3, dim: int = 20, seed: int = 0):
    """Each class owns one coordinate (value 3); every view adds noise of std 0.1, far from any class boundary."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n_images) % n_classes
    X = rng.normal(0, 0.1, (n_images, n_views, dim))
    X[np.arange(n_images), :, labels] += 3.0
    return X, labels


def noisy_views(n_images: int, n_views: int, seed: int = 0, dim: int = 10, spread: float = 1.5):
    """Two classes 1 apart along the first axis; each view adds noise of std ``spread``, so single views often
    fall on the wrong side while the mean of several views rarely does."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n_images) % 2
    X = rng.normal(0, spread, (n_images, n_views, dim))
    X[:, :, 0] += labels[:, None] - 0.5
    return X, labels


# ---------------------------------------------------------------------------- separable data: 100%
@pytest.mark.parametrize("multiclass", ["ovr", "ovo"])
@pytest.mark.parametrize("solver", ["liblinear", "torch"])
def test_multiclass_svms_classify_separable_images_perfectly(multiclass, solver):
    X, y = separable_views(80, 4, seed=1)
    X_test, y_test = separable_views(40, 4, seed=2)
    model = LinearSVMClassifier(C=1.0, multiclass=multiclass, solver=solver, device="cpu").fit(X, y)
    assert model.task_ == "multiclass" and model.n_views_ == 3
    assert model.coef_.shape == ((4, 20) if multiclass == "ovr" else (6, 20))
    np.testing.assert_array_equal(model.predict(X_test), y_test)
    np.testing.assert_array_equal(model.predict(X_test[:, 0]), y_test)  # a single view, 2-D input
    assert model.decision_function(X_test).shape == (40, 4)


@pytest.mark.parametrize("solver", ["liblinear", "torch"])
def test_multilabel_svms_learn_every_column_perfectly(solver):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, (90, 3))
    labels[0] = [0, 0, 0]
    labels[1] = [1, 1, 1]
    X = rng.normal(0, 0.1, (90, 2, 6))
    X[:, :, :3] += 2.0 * labels[:, None, :] - 1.0  # column k is readable from coordinate k
    model = LinearSVMClassifier(C=1.0, solver=solver, device="cpu").fit(X[:60], labels[:60])
    assert model.task_ == "multilabel"
    np.testing.assert_array_equal(model.predict(X[60:]), labels[60:])
    assert model.decision_function(X[60:]).shape == (30, 3)


def test_binary_svm_uses_string_labels_and_one_score_per_image():
    X, y = separable_views(40, 2)
    names = np.array(["cat", "dog"])[y]
    model = LinearSVMClassifier(C=1.0).fit(X, names)
    assert model.task_ == "binary" and model.coef_.shape == (1, 20)
    scores = model.decision_function(X)
    assert scores.shape == (40,)
    assert ((scores > 0) == (names == "dog")).all()  # the positive class is classes_[1]
    np.testing.assert_array_equal(model.predict(X), names)


# ---------------------------------------------------------------------------- views
def test_view_scores_are_summed_or_maximised_exactly():
    X, y = noisy_views(40, 4)
    model = LinearSVMClassifier(C=0.5).fit(X, y)
    per_view = np.stack([model.decision_function(X[:, v]) for v in range(4)], axis=1)  # (N, V)
    np.testing.assert_allclose(model.decision_function(X), per_view.sum(axis=1), rtol=1e-5, atol=1e-5)
    model.set_params(aggregate="max")  # a test-time choice: no refit needed
    np.testing.assert_allclose(model.decision_function(X), per_view.max(axis=1), rtol=1e-5, atol=1e-5)


def test_summing_views_beats_scoring_a_single_view():
    X, y = noisy_views(200, 8, seed=5)
    X_test, y_test = noisy_views(200, 8, seed=6)
    model = LinearSVMClassifier(C=0.1).fit(X, y)
    single_view = np.mean(model.predict(X_test[:, 0]) == y_test)
    summed = np.mean(model.predict(X_test) == y_test)
    assert summed >= single_view + 0.1  # averaging 8 noisy views shrinks the noise by sqrt(8)


def test_ovo_votes_with_confidence_tie_break_computed_by_hand():
    pairs = np.array([[0, 1], [0, 2], [1, 2]])
    # pair (0,1) = +1 -> votes 0; (0,2) = -2 -> votes 2; (1,2) = +0.5 -> votes 1: one vote each.
    # confidence: class 0: +1 - 2 = -1; class 1: -1 + 0.5 = -0.5; class 2: +2 - 0.5 = 1.5
    # score = votes + conf / (3 (|conf| + 1)): 1 - 1/6, 1 - 0.5/4.5, 1 + 1.5/7.5
    votes = ovo_votes(np.array([[1.0, -2.0, 0.5]]), pairs, 3)
    np.testing.assert_allclose(votes, [[1 - 1 / 6, 1 - 0.5 / 4.5, 1 + 1.5 / 7.5]])
    # a zero pair score votes for the pair's second class
    np.testing.assert_allclose(ovo_votes(np.array([[0.0, 0.0, 0.0]]), pairs, 3), [[0, 1, 2]])


def test_ovo_sums_pair_scores_over_views_before_voting():
    X, y = separable_views(60, 3, n_views=2, seed=7)
    model = LinearSVMClassifier(C=1.0, multiclass="ovo").fit(X, y)
    rows = X.reshape(-1, 20) @ model.coef_.T.astype(np.float64) + model.intercept_
    pair_sums = rows.reshape(60, 2, 3).sum(axis=1)
    np.testing.assert_allclose(model.decision_function(X), ovo_votes(pair_sums, model.pairs_, 3), atol=1e-4)
    # with aggregate="max" each pair keeps its largest-magnitude view value
    model.set_params(aggregate="max")
    per_view = rows.reshape(60, 2, 3)
    strongest = np.take_along_axis(per_view, np.abs(per_view).argmax(axis=1)[:, None], axis=1)[:, 0]
    np.testing.assert_allclose(model.decision_function(X), ovo_votes(strongest, model.pairs_, 3), atol=1e-4)


def test_torch_one_vs_one_solves_pairs_in_class_group_blocks():
    pairs = np.array([(a, b) for a in range(20) for b in range(a + 1, 20)])
    blocks = ovo_column_blocks(pairs, classes_per_group=8)  # groups {0-7}, {8-15}, {16-19}: 6 group pairs
    assert len(blocks) == 6
    np.testing.assert_array_equal(np.sort(np.concatenate(blocks)), np.arange(190))  # every pair exactly once
    assert max(np.unique(pairs[block]).size for block in blocks) == 16
    X, y = separable_views(48, 12, n_views=2, dim=16, seed=11)  # classes 0-7 and 8-11: 3 blocks
    X_test, y_test = separable_views(36, 12, n_views=2, dim=16, seed=12)
    model = LinearSVMClassifier(C=1.0, multiclass="ovo", solver="torch", device="cpu").fit(X, y)
    np.testing.assert_array_equal(model.predict(X_test), y_test)
    liblinear = LinearSVMClassifier(C=1.0, multiclass="ovo").fit(X, y)
    np.testing.assert_allclose(model.coef_, liblinear.coef_, atol=2e-3 * np.abs(liblinear.coef_).max())


# ---------------------------------------------------------------------------- solvers
def test_primal_is_used_when_vectors_outnumber_dimensions():
    assert use_dual(1000, 100) is False
    assert use_dual(50, 100) is True
    assert use_dual(1000, 100, loss="hinge") is True


def test_torch_solver_reaches_liblinears_optimum_on_overlapping_classes():
    X, y = bench_svm.synthetic_views(300, 2, 5, 64, seed=1)
    X_test, y_test = X[200:], y[200:]
    liblinear = LinearSVMClassifier(C=0.5).fit(X[:200], y[:200])
    torch_model = LinearSVMClassifier(C=0.5, solver="torch", device="cpu").fit(X[:200], y[:200])
    scale = np.abs(liblinear.coef_).max()
    np.testing.assert_allclose(torch_model.coef_, liblinear.coef_, atol=2e-3 * scale)
    np.testing.assert_allclose(torch_model.intercept_, liblinear.intercept_, atol=2e-3 * scale)
    accuracy = [np.mean(m.predict(X_test) == y_test) for m in (liblinear, torch_model)]
    assert abs(accuracy[0] - accuracy[1]) <= 0.005
    assert accuracy[0] < 1.0  # the classes really overlap, so the comparison means something


def test_hinge_loss_trains_in_the_dual():
    X, y = separable_views(40, 2)
    model = LinearSVMClassifier(C=1.0, loss="hinge").fit(X, y)
    np.testing.assert_array_equal(model.predict(X), y)


# ---------------------------------------------------------------------------- errors and conventions
@pytest.mark.parametrize(
    ("params", "y", "message"),
    [
        ({"multiclass": "ovo"}, np.eye(3, dtype=int)[np.arange(12) % 3], "One-vs-one needs single-label y"),
        ({"multiclass": "crammer"}, np.arange(12) % 3, r"multiclass must be one of \('ovr', 'ovo'\)"),
        ({"C": 0}, np.arange(12) % 3, "C must be a finite number > 0; got 0"),
        ({"C": "2"}, np.arange(12) % 3, "C must be a finite number > 0; got '2'"),
        ({"solver": "torch", "loss": "hinge"}, np.arange(12) % 3, "squared hinge only"),
        ({}, np.zeros(12, dtype=int), r"1 class \(\[0\]\)"),
        ({}, np.arange(11) % 3, r"matching X's 12 images; got shape \(11,\)"),
        ({}, np.column_stack([np.arange(12) % 2, np.zeros(12, int)]), r"Label column\(s\) \[1\] have only one"),
        ({}, np.full((12, 2), 2), "only 0 and 1"),
    ],
)
def test_bad_parameters_and_labels_are_explained(params, y, message):
    X = np.random.default_rng(0).normal(size=(12, 4))
    with pytest.raises(ValueError, match=message):
        LinearSVMClassifier(**params).fit(X, y)


def test_bad_features_are_explained():
    X, y = separable_views(12, 3)
    model = LinearSVMClassifier().fit(X, y)
    with pytest.raises(ValueError, match="X has 19 features, but LinearSVMClassifier is expecting 20 features as input"):
        model.predict(X[..., :19])
    X[3, 1, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite values in 1 row\(s\) \(first: \[3\]\)"):
        model.predict(X)
    with pytest.raises(ValueError, match="must be 2-D"):
        model.predict(np.ones(20))


def test_estimator_clones_and_runs_in_a_pipeline_on_views():
    model = LinearSVMClassifier(C=2.0, multiclass="ovo", aggregate="max")
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    X, y = separable_views(30, 3)
    pipe = make_pipeline(make_normalizer(power=2), LinearSVMClassifier(C=1.0)).fit(X, y)
    np.testing.assert_array_equal(pipe.predict(X), y)


# ---------------------------------------------------------------------------- choosing C
def test_paper_c_values_are_in_the_records_and_on_the_default_grid():
    from course_utils.datasets import specs

    paper_cs = {name: spec.paper.C for name, spec in specs.SPECS.items() if spec.paper and spec.paper.C is not None}
    assert paper_cs == {"voc2007": 0.2, "h3d": 0.2, "uiuc_apascal": 0.2, "uiuc_ayahoo": 0.2, "mit67": 2.0,
                        "cub200": 2.0, "flowers102": 2.0}
    assert set(paper_cs.values()) <= set(DEFAULT_CS)


def test_select_c_returns_the_best_mean_and_prefers_the_smallest_c_on_ties():
    X, y = separable_views(30, 3)

    def prefers_two(model, X_val, y_val):
        return -abs(np.log(model.C / 2.0))

    chosen = select_C(X, y, Cs=[20, 0.2, 2], cv=3, scoring=prefers_two)
    assert isinstance(chosen, CSelection)
    assert chosen.C == 2.0 and chosen.Cs == (0.2, 2.0, 20.0) and chosen.fold_scores.shape == (3, 3)
    assert select_C(X, y, Cs=[2, 0.2], scoring=lambda *args: 1.0).C == 0.2
    with pytest.raises(ValueError, match="Cs must be a non-empty list of positive numbers"):
        select_C(X, y, Cs=[])


def test_cv_folds_split_images_and_keep_groups_together():
    y = np.arange(30) % 3
    folds = cv_folds(y, cv=3)
    validation = np.concatenate([v for _, v in folds])
    np.testing.assert_array_equal(np.sort(validation), np.arange(30))  # every image validated exactly once
    groups = np.arange(30) // 2  # pairs of images, e.g. two photos of one object
    for train, val in cv_folds(y, cv=3, groups=groups):
        assert not set(groups[train]) & set(groups[val])
    for train, val in cv_folds(np.eye(3, dtype=int)[y], cv=3, groups=groups):  # multi-label with groups
        assert not set(groups[train]) & set(groups[val])


def test_views_of_one_image_never_leak_across_folds():
    # Random labels, each image's 8 views nearly identical: if views of one image could sit in both the
    # training and the validation part, a high-C SVM would recognise them and score near 100%.
    rng = np.random.default_rng(8)
    images = rng.normal(size=(60, 1, 100))
    X = images + rng.normal(0, 0.01, (60, 8, 100))
    y = rng.integers(0, 2, 60)
    chosen = select_C(X, y, Cs=[100.0], cv=3)
    assert chosen.mean_scores[0] < 0.75


def test_c_selection_never_reads_the_test_split():
    X, y = noisy_views(90, 2, seed=9)
    split = np.array(["train", "val", "test"] * 30)
    clean, clean_choice = fit_on_split(X, y, split, Cs=[0.01, 0.1, 1.0])
    sentinel_X, sentinel_y = X.copy(), y.copy()
    sentinel_X[split == "test"] = np.nan  # any use of a test row would raise on these NaNs
    sentinel_y[split == "test"] = 7  # or add a class
    poisoned, poisoned_choice = fit_on_split(sentinel_X, sentinel_y, split, Cs=[0.01, 0.1, 1.0])
    assert poisoned_choice.C == clean_choice.C
    np.testing.assert_array_equal(poisoned_choice.fold_scores, clean_choice.fold_scores)
    np.testing.assert_array_equal(poisoned.coef_, clean.coef_)
    np.testing.assert_array_equal(poisoned.classes_, [0, 1])
    fixed, none = fit_on_split(X, y, split, C=2.0, train_splits=("train",))
    assert none is None and fixed.C == 2.0
    with pytest.raises(ValueError, match=r"no image has a split in \['trainval'\]"):
        fit_on_split(X, y, split, train_splits=("trainval",))


def test_cross_validation_needs_cv_training_images_per_class_or_C_falls_back():
    assert cv_shortfall(np.array([0, 0, 0, 1, 1, 1]), cv=3) is None
    assert cv_shortfall(np.array([0, 0, 0, 1, 1]), cv=3) == \
        "too few training images for 3-fold cross-validation: class 1 has 2"
    assert cv_shortfall(np.eye(2, dtype=int)[[0, 1]], cv=3) == \
        "too few training images for 3-fold cross-validation: 2 images"
    assert cv_shortfall(np.array([0, 1] * 4), cv=3, groups=np.array([0, 0, 0, 0, 1, 1, 1, 1])) == \
        "too few training images for 3-fold cross-validation: 2 groups"
    X, y = separable_views(4, 2)  # two images per class: scikit-learn's folds would fail
    with pytest.warns(UserWarning, match=r"C fixed at 2 \(too few training images .*: class 0 has 2\)"):
        model, selection = fit_on_split(X, y, np.array(["train"] * 4))
    assert selection is None and model.C == FALLBACK_C == 2.0
    np.testing.assert_array_equal(model.predict(X), y)


# ---------------------------------------------------------------------------- benchmark smoke test
def test_svm_benchmark_prints_a_result_line(capsys):
    parser = argparse.ArgumentParser()
    bench_svm.add_arguments(parser)
    args = parser.parse_args(["--images", "40", "--views", "2", "--classes", "4", "--dims", "16,32", "--device", "cpu"])
    assert bench_svm.run(args) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    fields = dict(item.split("=") for item in last.split()[1:])
    assert last.startswith("RESULT ") and list(fields) == ["svm_seconds_32", "svm_seconds_16", "torch_speedup",
                                                           "accuracy_gap"]
    assert all(float(value) >= 0 for value in fields.values())


def test_synthetic_views_are_unit_vectors_with_seeded_labels():
    X, y = bench_svm.synthetic_views(10, 3, 4, 32, seed=2)
    assert X.shape == (10, 3, 32) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=-1), 1.0, rtol=1e-5)
    X_again, y_again = bench_svm.synthetic_views(10, 3, 4, 32, seed=2)
    np.testing.assert_array_equal(X, X_again)
    np.testing.assert_array_equal(y, y_again)
