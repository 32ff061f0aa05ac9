"""One function per kind of paper row: a dataset, a backbone and options in, measured numbers out.

The paper's two central comparisons are built in:

* **CNN-SVM against CNNaug-SVM** (classification and attributes): features of the paper's 16 views are extracted
  once; CNN-SVM reads only view 0, which *is* the whole image, so it costs nothing extra, and CNNaug-SVM trains on
  every view and sums test scores over views.
* **global against jittered or spatial search** (retrieval): delegated to :mod:`course_utils.retrieval`.

Normalisation follows ``PAPER.md`` section 3: each view's vector is L2-normalised; an optional signed power
``sign(x)|x|^a`` comes before a final L2 (our reading of the unstated order). Power ``None`` (or 1) means no power step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .datasets.base import DatasetRecord

# The paper crops birds (CUB) and people (H3D) to their box "enlarged by 150%" for context: each side times 1.5.
BOX_ENLARGEMENT = 1.5


@dataclass
class Features:
    """Features of a dataset for one backbone layer: ``X`` shaped ``(images, views, dims)``, plus what made them."""

    X: np.ndarray
    backbone: str
    layer: str
    views: str
    view_names: list[str]
    valid: np.ndarray
    skipped: list = field(default_factory=list)


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
) -> Features:
    """Extract (or load from the cache) ``layer`` of ``backbone`` for every image of ``record`` with ``views``.

    Bounding boxes of the record (CUB, H3D) are enlarged by ``box_enlargement`` about their centre (the paper's 150%;
    the crop then clips them to the image) and applied before the views. Unreadable images are skipped and reported
    (``on_error="skip"``): their rows are NaN and ``valid`` is False, so evaluation can leave them out.
    """
    from . import augment, backbones, features

    layer = layer or backbones.spec(backbone).default_layer
    boxes = None
    if record.boxes is not None and not np.isnan(record.boxes).all():
        boxes = augment.enlarge_boxes(record.boxes, box_enlargement)
    feature_set = features.extract(
        record.paths, backbone=backbone, layers=[layer], views=views, boxes=boxes, engine=engine,
        on_error=on_error, progress=progress, batch_size=batch_size,
    )
    return Features(
        X=feature_set[layer], backbone=backbone, layer=layer, views=views,
        view_names=list(feature_set.view_names), valid=np.asarray(feature_set.valid), skipped=list(feature_set.skipped),
    )


def normalise(X: np.ndarray, power: float | None = None) -> np.ndarray:
    """L2-normalise each view's vector, then (optionally) signed power and L2 again, as float32."""
    from .normalize import make_normalizer

    X = np.asarray(X, dtype=np.float32)
    steps = make_normalizer(power=None).fit_transform(X)  # L2 of the raw activations
    if power is not None and power != 1:
        steps = make_normalizer(power=power).fit_transform(steps)
    return np.asarray(steps, dtype=np.float32)


@dataclass
class ClassificationOutcome:
    """What one trained classifier scored on the test split, with everything a report or a plot needs."""

    value: float  # mean class accuracy (percent), mAP or mean AUC (percent) for multi-label data
    metric: str
    C: float
    y_true: np.ndarray
    y_pred: np.ndarray | None
    scores: np.ndarray
    test_indices: np.ndarray
    per_class: np.ndarray  # accuracy (single-label) or AP/AUC (multi-label) per class, percent
    settings: dict = field(default_factory=dict)


def _select_views(X: np.ndarray, views: str | Sequence[int] | slice) -> np.ndarray:
    if isinstance(views, str):
        if views == "whole":
            return X[:, :1]
        if views == "all":
            return X
        raise ValueError(f"views must be 'whole', 'all', or view indices; got {views!r}.")
    return X[:, views]


def classify(
    record: DatasetRecord,
    X: np.ndarray,
    *,
    views: str | Sequence[int] | slice = "all",
    test_views: str | Sequence[int] | slice | None = None,
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

    ``X`` is ``(images, views, dims)``; ``views`` picks the training views (``"whole"`` = view 0 = CNN-SVM,
    ``"all"`` = CNNaug-SVM), ``test_views`` the test views (default: the same). C is cross-validated on the training
    images only (``C="cv"``) or given. Single-label data report mean class accuracy; multi-label data (attributes,
    VOC) report mean AUC (``record.metric`` containing "AUC") or mean 11-point AP.
    """
    from . import classify as svm
    from . import metrics

    test_views = views if test_views is None else test_views
    split = np.asarray(record.split)
    ok = np.ones(len(record), bool) if valid is None else np.asarray(valid, bool)
    train = np.flatnonzero(np.isin(split, list(train_splits)) & ok)
    test = np.flatnonzero(np.isin(split, list(test_splits)) & ok)
    if train.size == 0 or test.size == 0:
        raise ValueError(f"{record.name}: no images in splits {list(train_splits)} (train) or "
                         f"{list(test_splits)} (test); splits present: {sorted(set(split.tolist()))}.")
    labels = np.asarray(record.labels)
    X_train = normalise(_select_views(np.asarray(X[train]), views), power)
    X_test = normalise(_select_views(np.asarray(X[test]), test_views), power)
    params = {"multiclass": multiclass, "aggregate": aggregate, "solver": solver}
    model, selection = svm.fit_on_split(
        X_train, labels[train], np.array(["train"] * len(train)), C=C, train_splits=("train",),
        Cs=Cs or svm.DEFAULT_CS, cv=cv, random_state=seed, **params,
    )
    scores = model.decision_function(X_test)
    y_true = labels[test]
    settings = {"C": float(model.C), "power": power if power not in (None, 1) else 1, **params,
                "C_selection": "cv" if selection else "fixed"}
    if labels.ndim == 1:
        y_pred = model.predict(X_test)
        classes = np.unique(y_true)
        per_class = np.array([100 * np.mean(y_pred[y_true == c] == c) for c in classes])
        value = 100 * metrics.mean_class_accuracy(y_true, y_pred)
        return ClassificationOutcome(value, "mean class accuracy", float(model.C), y_true, y_pred, scores, test,
                                     per_class, settings)
    scores = np.asarray(scores).reshape(len(test), -1)
    usable = [k for k in range(labels.shape[1]) if 0 < y_true[:, k].sum() < len(y_true)]
    if "auc" in record.metric.lower():
        per_class = np.array([100 * metrics.mean_auc(scores[:, [k]], y_true[:, [k]]) for k in usable])
        metric = "mean AUC"
    else:
        difficult = None if record.difficult is None else np.asarray(record.difficult)[test]
        per_class = np.array([
            100 * metrics.voc07_ap(scores[:, k], y_true[:, k], None if difficult is None else difficult[:, k])
            for k in usable
        ])
        metric = "mAP (11-point)"
    return ClassificationOutcome(float(per_class.mean()), metric, float(model.C), y_true, None, scores, test,
                                 per_class, settings)


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
