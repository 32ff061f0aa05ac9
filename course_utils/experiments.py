"""One function per kind of paper row: a dataset, a backbone and options in, measured numbers out.

The paper's two central comparisons are built in:

* **CNN-SVM against CNNaug-SVM** (classification and attributes): features of the paper's 16 views are extracted
  once; CNN-SVM reads only view 0, which *is* the whole image, so it costs nothing extra, and CNNaug-SVM trains on
  every view and sums test scores over views.
* **global against jittered or spatial search** (retrieval): delegated to :mod:`course_utils.retrieval`.

Normalisation follows ``docs/paper.md`` section 3: each view's vector is L2-normalised; an optional signed power
``sign(x)|x|^a`` comes before a final L2 (our reading of the unstated order). Power ``None`` (or 1) means no power step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .datasets.base import DatasetRecord
from .datasets.subsets import few_shot_indices
from .normalize import normalize_features

if TYPE_CHECKING:
    from .features import FeatureSet

# The paper crops birds (CUB) and people (H3D) to their box "enlarged by 150%" for context: each side times 1.5.
BOX_ENLARGEMENT = 1.5


def dataset_features(
    record: DatasetRecord,
    backbone: str = "efficientnet_lite0",
    layer: str | None = None,
    views: str = "whole",
    *,
    engine: str = "auto",
    on_error: str = "skip",
    progress: bool = True,
    batch_size: int | None = None,
    box_enlargement: float = BOX_ENLARGEMENT,
) -> FeatureSet:
    """Extract (or load from the cache) ``layer`` of ``backbone`` for every image of ``record`` with the view recipe
    ``views``; the result holds that one layer (``.layer``; ``.X`` its ``(images, views, dims)`` array).

    Bounding boxes of the record (CUB, H3D) are enlarged by ``box_enlargement`` about their centre (the paper's 150%;
    the crop then clips them to the image) and applied before the views. Unreadable images are skipped and reported
    (``on_error="skip"``): their rows are NaN and ``valid`` is False, so evaluation can leave them out.
    """
    from . import augment, backbones, features

    layer = layer or backbones.spec(backbone).default_layer
    boxes = None
    if record.boxes is not None and not np.isnan(record.boxes).all():
        boxes = augment.enlarge_boxes(record.boxes, box_enlargement)
    return features.extract(
        record.paths, backbone=backbone, layers=[layer], views=views, boxes=boxes, engine=engine,
        on_error=on_error, progress=progress, batch_size=batch_size,
    )


@dataclass
class ClassificationOutcome:
    """What one trained classifier scored on the test split, with everything a report or a plot needs."""

    value: float  # mean class accuracy (percent), mAP or mean AUC (percent) for multi-label data
    metric: str  # the label of the course_utils.metrics.Metric it was scored with
    C: float
    y_true: np.ndarray
    y_pred: np.ndarray | None
    scores: np.ndarray
    test_indices: np.ndarray
    per_class: np.ndarray  # accuracy (single-label) or AP/AUC (multi-label) per class, percent
    settings: dict = field(default_factory=dict)
    classes: np.ndarray | None = None  # the class (single-label) or label column of each per_class value
    train_indices: np.ndarray | None = None  # the images the classifier learnt from (readable ones only)
    warnings: list[str] = field(default_factory=list)  # what a reader must know to trust the value


ViewSelection = str | Sequence[int] | slice


def _select_views(X: np.ndarray, use_views: ViewSelection) -> np.ndarray:
    if isinstance(use_views, str):
        if use_views == "whole":
            return X[:, :1]
        if use_views == "all":
            return X
        raise ValueError(f"use_views must be 'whole', 'all', or view indices; got {use_views!r}.")
    return X[:, use_views]


@dataclass(frozen=True)
class _Split:
    """Which images train and which are scored: readable ones of the named splits (``in_split``: readable or not)."""

    train: np.ndarray
    test: np.ndarray
    in_split: dict[str, np.ndarray]

    @classmethod
    def of(cls, record: DatasetRecord, train_splits: Sequence[str], test_splits: Sequence[str],
           valid: np.ndarray | None) -> _Split:
        split = np.asarray(record.split)
        ok = np.ones(len(record), bool) if valid is None else np.asarray(valid, bool)
        in_split = {"train": np.isin(split, list(train_splits)), "test": np.isin(split, list(test_splits))}
        train, test = np.flatnonzero(in_split["train"] & ok), np.flatnonzero(in_split["test"] & ok)
        if train.size == 0 or test.size == 0:
            raise ValueError(f"{record.name}: no images in splits {list(train_splits)} (train) or "
                             f"{list(test_splits)} (test); splits present: {sorted(set(split.tolist()))}.")
        return cls(train, test, in_split)


def classify(
    record: DatasetRecord,
    X: np.ndarray,
    *,
    use_views: ViewSelection = "all",
    use_test_views: ViewSelection | None = None,
    power: float | None = None,
    C: float | str = "cv",
    multiclass: str = "ovr",
    aggregate: str = "sum",
    solver: str = "liblinear",
    train_splits: Sequence[str] = ("train", "val"),
    test_splits: Sequence[str] = ("test",),
    valid: np.ndarray | None = None,
    Cs: Sequence[float] | None = None,
    cv: int = 3,
    seed: int = 0,
) -> ClassificationOutcome:
    """Train linear SVMs on the training splits of ``record`` and score its test split.

    ``X`` is ``(images, views, dims)`` (already extracted); ``use_views`` picks the training views (``"whole"`` =
    view 0 = CNN-SVM, ``"all"`` = CNNaug-SVM, or view indices), ``use_test_views`` the test views (default: the
    same). C is cross-validated on the training images only (``C="cv"``) or given; with fewer than ``cv`` training
    images in a class, cross-validation cannot run and C is fixed at :data:`course_utils.classify.FALLBACK_C`, with a
    warning. Single-label data report mean class accuracy; multi-label data (attributes, VOC) report mean AUC
    (``record.metric`` is :data:`course_utils.metrics.MEAN_AUC`) or mean 11-point AP.

    Rows with ``valid`` False (images extraction could not read) are left out. The mean class accuracy is over
    every class of the test split, so a class left with no usable test image (or no training image, which the
    classifier then cannot predict) counts as 0%, never silently dropped; ``outcome.warnings`` says which.
    """
    from . import classify as svm

    use_test_views = use_views if use_test_views is None else use_test_views
    split = _Split.of(record, train_splits, test_splits, valid)
    labels = np.asarray(record.labels)
    X_train = normalize_features(_select_views(np.asarray(X[split.train]), use_views), power)
    X_test = normalize_features(_select_views(np.asarray(X[split.test]), use_test_views), power)
    params = {"multiclass": multiclass, "aggregate": aggregate, "solver": solver}
    notes: list[str] = []
    shortfall = svm.cv_shortfall(labels[split.train], cv, class_names=record.class_names) if C == "cv" else None
    if shortfall:
        C = svm.FALLBACK_C
        notes.append(f"C fixed at {C:g} ({shortfall})")
    model, selection = svm.fit_on_split(
        X_train, labels[split.train], np.array(["train"] * len(split.train)), C=C, train_splits=("train",),
        Cs=Cs or svm.DEFAULT_CS, cv=cv, random_state=seed, **params,
    )
    settings = {"C": float(model.C), "power": power if power not in (None, 1) else 1, **params,
                "C_selection": "cv" if selection else f"fixed ({shortfall})" if shortfall else "fixed"}
    score = _single_label_outcome if labels.ndim == 1 else _multi_label_outcome
    return score(record, model, X_test, split, settings, notes)


def _single_label_outcome(record: DatasetRecord, model: object, X_test: np.ndarray, split: _Split, settings: dict,
                          notes: list[str]) -> ClassificationOutcome:
    """Mean class accuracy over every class of the test split (a class without a usable image counts as 0%)."""
    from . import metrics

    labels = np.asarray(record.labels)
    y_true, y_pred = labels[split.test], model.predict(X_test)
    classes = np.unique(labels[split.in_split["test"]])  # every class of the test split, readable or not
    fractions = np.array([np.mean(y_pred[y_true == c] == c) if (y_true == c).any() else 0.0 for c in classes])
    unusable = _unusable_classes(record, classes, labels[split.train], y_true, split.in_split, notes)
    if unusable:
        settings["classes_without_usable_images"] = unusable
    return ClassificationOutcome(100 * float(np.mean(fractions)), metrics.MEAN_CLASS_ACCURACY.label,
                                 float(model.C), y_true, y_pred, model.decision_function(X_test), split.test,
                                 100 * fractions, settings, classes, split.train, notes)


def _multi_label_outcome(record: DatasetRecord, model: object, X_test: np.ndarray, split: _Split, settings: dict,
                         notes: list[str]) -> ClassificationOutcome:
    """Mean AUC or mean 11-point AP over the label columns that have test positives and test negatives."""
    from . import metrics

    labels = np.asarray(record.labels)
    y_true = labels[split.test]
    scores = np.asarray(model.decision_function(X_test)).reshape(len(split.test), -1)
    usable = [k for k in range(labels.shape[1]) if 0 < y_true[:, k].sum() < len(y_true)]
    in_test = labels[split.in_split["test"]]
    for k in sorted(set(range(labels.shape[1])) - set(usable)):
        if 0 < in_test[:, k].sum() < len(in_test):  # scorable on the whole test split, not on its readable part
            name = record.class_names[k] if k < len(record.class_names) else str(k)
            notes.append(f"label {name!r}: its test positives or its test negatives are all unreadable, so it has "
                         "no score and is left out of the mean")
    if record.metric is metrics.MEAN_AUC:
        per_class = np.array([100 * metrics.mean_auc(scores[:, [k]], y_true[:, [k]]) for k in usable])
    else:
        difficult = None if record.difficult is None else np.asarray(record.difficult)[split.test]
        per_class = np.array([
            100 * metrics.voc07_ap(scores[:, k], y_true[:, k], None if difficult is None else difficult[:, k])
            for k in usable
        ])
    metric = metrics.MEAN_AUC if record.metric is metrics.MEAN_AUC else metrics.VOC07_MAP
    return ClassificationOutcome(float(per_class.mean()), metric.label, float(model.C), y_true, None, scores,
                                 split.test, per_class, settings, np.array(usable, dtype=int), split.train, notes)


def _unusable_classes(record: DatasetRecord, classes: np.ndarray, trained: np.ndarray, tested: np.ndarray,
                      in_split: dict[str, np.ndarray], notes: list[str]) -> list[str]:
    """Names of the ``classes`` left without a usable test or training image; a warning for each goes to ``notes``."""
    labels = np.asarray(record.labels)
    learnt, scored = set(trained.tolist()), set(tested.tolist())
    unusable = []
    for c in classes.tolist():
        name = record.class_names[c] if c < len(record.class_names) else str(c)
        n_train, n_test = (int((labels[in_split[part]] == c).sum()) for part in ("train", "test"))
        if c not in learnt and c not in scored:
            notes.append(f"class {name!r} has no usable image ({_unreadable(n_train + n_test)}): it counts as 0% in "
                         "the mean class accuracy")
        elif c not in scored:
            notes.append(f"class {name!r} has no usable test image ({_unreadable(n_test)}): it counts as 0% in the "
                         "mean class accuracy")
        elif c not in learnt:
            notes.append(f"class {name!r} has no usable training image ({_unreadable(n_train)}): the classifier "
                         "cannot predict it, so it scores 0%")
        else:
            continue
        unusable.append(name)
    return unusable


def _unreadable(n: int) -> str:
    return f"all {n} unreadable" if n else "none in the split"


def confusion_pairs(outcome: ClassificationOutcome, class_names: Sequence[str], top: int = 5) -> list[tuple[str, str, int]]:
    """The ``top`` most frequent (true class, predicted class, count) confusions of a single-label outcome."""
    if outcome.y_pred is None:
        return []
    pairs: dict[tuple[int, int], int] = {}
    for true, pred in zip(outcome.y_true.tolist(), outcome.y_pred.tolist(), strict=True):
        if true != pred:
            pairs[(true, pred)] = pairs.get((true, pred), 0) + 1
    ranked = sorted(pairs.items(), key=lambda item: (-item[1], item[0]))[:top]
    return [(class_names[t], class_names[p], n) for (t, p), n in ranked]


def few_shot_scores(record: DatasetRecord, X: np.ndarray, per_class: Sequence[int], settings: Mapping[str, dict],
                    repeats: int = 3, seed: int = 0, **common) -> dict[str, list[float]]:
    """Mean test score of each setting when training on ``per_class`` images of every class, averaged over repeats.

    ``settings`` maps a name to keyword arguments of :func:`course_utils.experiments.classify` (e.g.
    ``{"CNN-SVM": {"use_views": "whole"}, "CNNaug-SVM": {"use_views": "all"}}``); ``common`` is added to each (e.g. ``C=2``).
    Repeat ``r`` draws its training images with seed ``seed + r``, the same draw for every setting, so the settings
    are compared on identical data. Returns ``{name: [score for each per_class value]}``.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1; got {repeats}.")
    curves: dict[str, list[float]] = {name: [] for name in settings}
    for n in per_class:
        draws = [few_shot_indices(record, n, seed + r) for r in range(repeats)]
        for name, options in settings.items():
            values = [classify(record.subset(rows), np.asarray(X)[rows], **{**common, **options}).value for rows in draws]
            curves[name].append(float(np.mean(values)))
    return curves
