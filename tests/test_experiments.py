"""Experiment helpers on synthetic features: normalisation order, CNN-SVM versus CNNaug-SVM, protocol splits."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils import experiments, metrics
from course_utils.datasets.base import DatasetRecord


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
                           class_names=["a", "b", "c"], split=split, metric=metrics.MEAN_CLASS_ACCURACY)
    return record, X


def test_augmented_views_beat_the_whole_image_on_a_constructed_case():
    record, X = _views_record()
    plain = experiments.classify(record, X, use_views="whole", C=1.0, train_splits=("train",))
    aug = experiments.classify(record, X, use_views="all", C=1.0, train_splits=("train",))
    assert aug.value == 100.0
    assert plain.value < aug.value
    assert aug.metric == "mean class accuracy" and len(aug.y_true) == 12
    assert aug.settings["C_selection"] == "fixed"


def test_only_test_split_is_scored_and_invalid_rows_are_left_out():
    record, X = _views_record()
    valid = np.ones(len(record), bool)
    valid[-1] = False
    X[-1] = np.nan
    outcome = experiments.classify(record, X, use_views="all", C=1.0, train_splits=("train",), valid=valid)
    assert len(outcome.test_indices) == 11 and len(record) - 1 not in outcome.test_indices
    assert set(record.split[outcome.test_indices]) == {"test"}


def test_a_class_without_usable_images_counts_zero_and_is_named():
    record, X = _views_record()
    valid = record.labels != 2  # every image of class "c" unreadable
    outcome = experiments.classify(record, X, use_views="all", C=1.0, train_splits=("train",), valid=valid)
    assert outcome.classes.tolist() == [0, 1, 2] and outcome.per_class.tolist() == [100.0, 100.0, 0.0]
    assert outcome.value == pytest.approx(200 / 3)  # not 100 over the two classes left
    assert outcome.settings["classes_without_usable_images"] == ["c"]
    assert outcome.warnings == ["class 'c' has no usable image (all 12 unreadable): it counts as 0% in the mean "
                                "class accuracy"]
    only_test = record.labels != 2
    only_test[(record.labels == 2) & (record.split == "train")] = True  # c can be trained but not tested
    outcome = experiments.classify(record, X, use_views="all", C=1.0, train_splits=("train",), valid=only_test)
    assert outcome.per_class.tolist() == [100.0, 100.0, 0.0]
    assert outcome.warnings == ["class 'c' has no usable test image (all 4 unreadable): it counts as 0% in the "
                                "mean class accuracy"]
    no_train = record.labels != 2
    no_train[(record.labels == 2) & (record.split == "test")] = True  # c is tested but cannot be learnt
    outcome = experiments.classify(record, X, use_views="all", C=1.0, train_splits=("train",), valid=no_train)
    assert outcome.per_class[2] == 0.0 and outcome.value == pytest.approx(200 / 3)
    assert outcome.warnings == ["class 'c' has no usable training image (all 8 unreadable): the classifier cannot "
                                "predict it, so it scores 0%"]


def test_outcome_lists_the_training_images_and_the_gallery_shows_only_those(tmp_path):
    from PIL import Image

    from course_utils import viz

    record, X = _views_record()
    record.paths = [tmp_path / name for name in record.paths]
    for i, path in enumerate(record.paths):  # the red channel encodes the image number
        Image.new("RGB", (8, 8), (i * 7, 0, 0)).save(path)
    valid = np.ones(len(record), bool)
    valid[[12, 13]] = False  # the first two training images of class "b", unreadable
    record.paths[12].write_bytes(b"not an image")
    record.paths[13].write_bytes(b"not an image")
    X[8] = X[14]  # the first test image of "a" looks like a "b"
    outcome = experiments.classify(record, X, use_views="all", C=1.0, train_splits=("train",), valid=valid)
    assert outcome.train_indices.tolist() == [*range(8), *range(14, 20), *range(24, 32)]
    assert experiments.confusion_pairs(outcome, record.class_names) == [("a", "b", 1)]
    figure = viz.show_confused_pairs(record, outcome, top=1)
    shown = [int(axis.images[0].get_array()[0, 0, 0]) // 7 for axis in figure.axes]
    assert shown == [8, 14]  # the mistaken test image, beside the first *readable* training "b"


def test_too_few_training_images_per_class_fix_C_with_a_note():
    record, X = _views_record()
    record.split = np.array((["train"] * 2 + ["test"] * 10) * 3)
    outcome = experiments.classify(record, X, use_views="all", C="cv", train_splits=("train",))
    assert outcome.C == 2.0 and outcome.settings["C"] == 2.0
    reason = "too few training images for 3-fold cross-validation: class 'a' has 2"
    assert outcome.settings["C_selection"] == f"fixed ({reason})"
    assert outcome.warnings == [f"C fixed at 2 ({reason})"]


def test_missing_split_is_a_clear_error():
    record, X = _views_record()
    with pytest.raises(ValueError, match=r"no images in splits \['train', 'val'\].*splits present"):
        experiments.classify(record, X, use_views="all", C=1.0, test_splits=("val",))


def test_attributes_report_mean_auc():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, size=(40, 2))
    X = rng.normal(size=(40, 1, 6)).astype(np.float32)
    X[:, 0, :2] += 3 * labels
    record = DatasetRecord("attrs", "attributes", ".", [f"{i}" for i in range(40)], labels=labels,
                           split=np.array(["train"] * 30 + ["test"] * 10), metric=metrics.MEAN_AUC)
    outcome = experiments.classify(record, X, use_views="whole", C=1.0, train_splits=("train",))
    assert outcome.metric == "mean AUC" and outcome.y_pred is None
    assert outcome.value > 90 and outcome.per_class.shape == (2,)


def test_confusion_pairs_count_the_mistakes():
    outcome = experiments.ClassificationOutcome(
        50.0, "mean class accuracy", 1.0, y_true=np.array([0, 0, 1, 1, 1, 2]), y_pred=np.array([0, 1, 2, 2, 1, 1]),
        scores=np.zeros((6, 3)), test_indices=np.arange(6), per_class=np.zeros(3))
    assert experiments.confusion_pairs(outcome, ["a", "b", "c"]) == [("b", "c", 2), ("a", "b", 1), ("c", "b", 1)]


def test_dataset_boxes_are_enlarged_by_150_percent_about_their_centre(tmp_path):
    # A 100x60 image, black everywhere except a white 20x20 square at (40, 20)-(60, 40): the bird's box. Enlarged
    # 1.5x about its centre (50, 30) the crop is (35, 15)-(65, 45): 30x30 pixels, the white square in its middle.
    from PIL import Image

    from course_utils import features

    pixels = np.zeros((60, 100, 3), np.uint8)
    pixels[20:40, 40:60] = 255
    Image.fromarray(pixels).save(tmp_path / "bird.png")
    record = DatasetRecord("toy", "multiclass", tmp_path, [tmp_path / "bird.png", tmp_path / "bird.png"],
                           labels=np.array([0, 0]), class_names=["bird"],
                           boxes=np.array([[40.0, 20, 60, 40], [np.nan] * 4]))
    seen = []

    def fake_extract(paths, backbone, layers, views, boxes, **_):
        seen.append(boxes)
        raise RuntimeError("stop here")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(features, "extract", fake_extract)
        with pytest.raises(RuntimeError, match="stop here"):
            experiments.dataset_features(record, "efficientnet_lite0", layer="pool")
    assert np.allclose(seen[0][0], [35, 15, 65, 45])
    assert np.isnan(seen[0][1]).all()  # no box: the whole image
    crop = features._crop(Image.open(tmp_path / "bird.png"), seen[0][0], tmp_path / "bird.png")
    assert crop.size == (30, 30)
    white = np.asarray(crop)[..., 0] == 255
    assert white.sum() == 400 and white[5:25, 5:25].all()


def test_enlarged_boxes_are_clipped_by_the_crop_like_enlarge_box():
    from PIL import Image

    from course_utils import augment, features

    box = (70.0, 40.0, 100.0, 60.0)  # at the image's right edge: enlarging it runs off the 100x60 image
    wide = augment.enlarge_boxes(np.array([box]), 1.5)[0]
    crop = features._crop(Image.new("RGB", (100, 60)), wide, "x.png")
    x0, y0, x1, y1 = augment.enlarge_box(box, 1.5, 100, 60)
    assert crop.size == (x1 - x0, y1 - y0) == (38, 25)  # x 62.5..107.5 -> 62..100, y 35..65 -> 35..60
    with pytest.raises(ValueError, match="shape"):
        augment.enlarge_boxes(np.zeros((3, 3)), 1.5)


def test_a_label_left_without_usable_test_positives_is_named():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, size=(40, 2))
    labels[30:, 1] = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]  # one test positive for "b"
    X = rng.normal(size=(40, 1, 6)).astype(np.float32)
    X[:, 0, :2] += 3 * labels
    record = DatasetRecord("attrs", "attributes", ".", [f"{i}" for i in range(40)], labels=labels,
                           class_names=["a", "b"], split=np.array(["train"] * 30 + ["test"] * 10),
                           metric=metrics.MEAN_AUC)
    valid = np.ones(40, bool)
    valid[30] = False  # the only test positive of "b" is unreadable
    outcome = experiments.classify(record, X, use_views="whole", C=1.0, train_splits=("train",), valid=valid)
    assert outcome.classes.tolist() == [0] and outcome.per_class.shape == (1,)
    assert outcome.warnings == ["label 'b': its test positives or its test negatives are all unreadable, so it "
                                "has no score and is left out of the mean"]


def test_use_test_views_scores_other_views_than_those_trained_on():
    record, X = _views_record()
    informative = experiments.classify(record, X, use_views=[1, 2, 3], C=1.0, train_splits=("train",))
    blind = experiments.classify(record, X, use_views=[1, 2, 3], use_test_views="whole", C=1.0,
                                 train_splits=("train",))
    assert informative.value == 100.0 and blind.value < 80.0  # view 0 carries almost nothing of the class
    with pytest.raises(ValueError, match="use_views must be 'whole', 'all', or view indices; got 'first'"):
        experiments.classify(record, X, use_views="first", C=1.0)


def test_a_single_layer_feature_set_names_its_layer_and_array():
    from course_utils.features import FeatureSet

    array = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    one = FeatureSet({"pool": array}, ["a.jpg", "b.jpg"], ["v0", "v1", "v2"], np.ones(2, bool), views="paper16")
    assert one.layer == "pool" and one.X is array and one.n_views == 3
    two = FeatureSet({"pool": array, "logits": array}, ["a.jpg", "b.jpg"], ["v0", "v1", "v2"], np.ones(2, bool))
    with pytest.raises(ValueError, match=r"holds 2 layers \(\['pool', 'logits'\]\); pick one"):
        two.X  # noqa: B018 - the property raises
