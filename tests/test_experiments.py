"""Experiment helpers on synthetic features: normalisation order, CNN-SVM versus CNNaug-SVM, protocol splits."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils import experiments
from course_utils.datasets.base import DatasetRecord


def test_normalise_is_l2_then_power_then_l2():
    x = np.array([[[3.0, -4.0]]])
    assert np.allclose(experiments.normalise(x), [[[0.6, -0.8]]])
    # L2 -> [0.6, -0.8]; signed power 2 -> [0.36, -0.64]; L2 -> divided by sqrt(0.36^2 + 0.64^2)
    expected = np.array([0.36, -0.64]) / np.hypot(0.36, 0.64)
    assert np.allclose(experiments.normalise(x, power=2), expected)
    assert np.allclose(experiments.normalise(x, power=1), [[[0.6, -0.8]]])


def _views_record(n_per_class=12, n_views=4, seed=0):
    """Three classes; view 0 is nearly uninformative, the other views carry the class clearly."""
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 8) * 3
    labels = np.repeat(np.arange(3), n_per_class)
    X = rng.normal(size=(len(labels), n_views, 8)).astype(np.float32)
    X[:, 1:] += centres[labels][:, None, :]
    X[:, 0] += 0.15 * centres[labels]
    split = np.array((["train"] * 8 + ["test"] * (n_per_class - 8)) * 3)
    record = DatasetRecord("toy", "multiclass", ".", [f"{i}.jpg" for i in range(len(labels))], labels=labels,
                           class_names=["a", "b", "c"], split=split, metric="mean class accuracy")
    return record, X


def test_augmented_views_beat_the_whole_image_on_a_constructed_case():
    record, X = _views_record()
    plain = experiments.classify(record, X, views="whole", C=1.0, train_splits=("train",))
    aug = experiments.classify(record, X, views="all", C=1.0, train_splits=("train",))
    assert aug.value == 100.0
    assert plain.value < aug.value
    assert aug.metric == "mean class accuracy" and len(aug.y_true) == 12
    assert aug.settings["C_selection"] == "fixed"


def test_only_test_split_is_scored_and_invalid_rows_are_left_out():
    record, X = _views_record()
    valid = np.ones(len(record), bool)
    valid[-1] = False
    X[-1] = np.nan
    outcome = experiments.classify(record, X, views="all", C=1.0, train_splits=("train",), valid=valid)
    assert len(outcome.test_indices) == 11 and len(record) - 1 not in outcome.test_indices
    assert set(record.split[outcome.test_indices]) == {"test"}


def test_missing_split_is_a_clear_error():
    record, X = _views_record()
    with pytest.raises(ValueError, match=r"no images in splits \['train', 'val'\].*splits present"):
        experiments.classify(record, X, views="all", C=1.0, test_splits=("val",))


def test_attributes_report_mean_auc():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, size=(40, 2))
    X = rng.normal(size=(40, 1, 6)).astype(np.float32)
    X[:, 0, :2] += 3 * labels
    record = DatasetRecord("attrs", "attributes", ".", [f"{i}" for i in range(40)], labels=labels,
                           split=np.array(["train"] * 30 + ["test"] * 10), metric="mean AUC")
    outcome = experiments.classify(record, X, views="whole", C=1.0, train_splits=("train",))
    assert outcome.metric == "mean AUC" and outcome.y_pred is None
    assert outcome.value > 90 and outcome.per_class.shape == (2,)


def test_confusion_pairs_count_the_mistakes():
    outcome = experiments.ClassificationOutcome(
        50.0, "mean class accuracy", 1.0, y_true=np.array([0, 0, 1, 1, 1, 2]), y_pred=np.array([0, 1, 2, 2, 1, 1]),
        scores=np.zeros((6, 3)), test_indices=np.arange(6), per_class=np.zeros(3))
    assert experiments.confusion_pairs(outcome, ["a", "b", "c"]) == [("b", "c", 2), ("a", "b", 1), ("c", "b", 1)]
