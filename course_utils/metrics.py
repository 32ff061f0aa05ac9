"""The paper's evaluation measures, computed exactly as each benchmark's official protocol defines them.

Published numbers differ mostly through protocol details, so each one is explicit here (``docs/protocols.md``
gives the sources):

* ``voc07_ap``: PASCAL VOC 2007 classification AP, *11-point interpolated*, difficult items removed, bit for bit
  as the official devkit's ``VOCevalcls.m`` computes it (its recall levels are MATLAB's ``0:0.1:1``).
* ``average_precision``: non-interpolated AP (area under the precision-recall steps).
* ``mean_class_accuracy``: mean of per-class accuracies (MIT-67, CUB, Flowers), not the overall accuracy.
* ``mean_auc``: mean ROC AUC over attribute columns (UIUC attributes).
* ``retrieval_ap``: Oxford Buildings / INRIA Holidays AP of one query, junk removed from the ranking and the area
  summed with the trapezoidal rule (the revisited Oxford/Paris settings Easy, Medium and Hard are junk lists too);
  ``revisited_precision_at``: that protocol's precision at 1, 5 and 10.
* ``ukbench_score``: UKBench N-S score (true images among the top 4, 0..4).

Ties: whenever items are ranked by score, the sort is *stable* on descending score, so tied items keep their input
order (lower index first). This matches the VOC devkit (MATLAB's stable ``sort``) and makes every value here
deterministic. Note that scikit-learn's ``average_precision_score`` instead treats tied scores as one threshold,
so the two agree only on tie-free scores.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

# The ranks at which the revisited Oxford/Paris evaluation reports mean precision (revisitop's ``kappas``).
REVISITED_KAPPAS = (1, 5, 10)
VOC07_LEVELS = ("devkit", "exact")


@dataclass(frozen=True)
class Metric:
    """One evaluation measure as the course reports it: a typed value that code compares, never text it parses.

    ``label`` is the name written in results (``ResultRecord.metric``, ``results.json``, report tables); ``decimals``
    how many a table shows; ``points_per_unit`` turns a difference into percentage points (UKBench's N-S score,
    0-4, is the paper's percentage divided by 25); ``retrieval`` marks the measures of ranked search.
    """

    key: str
    label: str
    decimals: int = 1
    points_per_unit: float = 1.0
    retrieval: bool = False

    def format(self, value: float) -> str:
        """``value`` as a table shows it."""
        return f"{value:.{self.decimals}f}"


MEAN_CLASS_ACCURACY = Metric("accuracy", "mean class accuracy")
MEAN_AUC = Metric("auc", "mean AUC")
VOC07_MAP = Metric("voc07_map", "mAP (11-point)")
RETRIEVAL_MAP = Metric("retrieval_map", "mAP", retrieval=True)
NS_SCORE = Metric("ns", "N-S score (0-4)", decimals=2, points_per_unit=25.0, retrieval=True)
METRICS: dict[str, Metric] = {m.key: m for m in (MEAN_CLASS_ACCURACY, MEAN_AUC, VOC07_MAP, RETRIEVAL_MAP, NS_SCORE)}


def metric_labelled(label: str) -> Metric:
    """The :class:`Metric` whose ``label`` is ``label`` (as read back from ``results.json``)."""
    for metric in METRICS.values():
        if metric.label == label:
            return metric
    raise ValueError(f"unknown metric label {label!r}; known: {', '.join(m.label for m in METRICS.values())}")


def _scores_and_labels(scores: ArrayLike, labels: ArrayLike, what: str) -> tuple[np.ndarray, np.ndarray]:
    """1-D float scores and bool labels of equal length, or a ``ValueError`` naming the problem."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.ndim != 1 or labels.ndim != 1 or scores.shape != labels.shape:
        raise ValueError(
            f"{what}: scores and labels must be 1-D of equal length (one class at a time); "
            f"got shapes {scores.shape} and {labels.shape}."
        )
    if not np.isfinite(scores).all():
        raise ValueError(f"{what}: scores contain NaN or infinite values.")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"{what}: labels must be 0 or 1; got values {np.unique(labels)[:10].tolist()}.")
    return scores, labels.astype(bool)


def rank_by_score(scores: ArrayLike) -> np.ndarray:
    """Indices of ``scores`` from highest to lowest; ties keep their input order (stable sort)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def rankings_from_distances(distances: ArrayLike) -> np.ndarray:
    """Per query row of ``distances`` ``(Q, N)``, database indices from nearest to farthest (ties: lower index)."""
    distances = np.asarray(distances, dtype=np.float64)
    if distances.ndim != 2:
        raise ValueError(f"rankings_from_distances: distances must be (queries, database); got {distances.shape}.")
    if np.isnan(distances).any():
        raise ValueError("rankings_from_distances: distances contain NaN.")
    return np.argsort(distances, axis=1, kind="stable")


def _hits_in_rank_order(scores: np.ndarray, labels: np.ndarray, what: str) -> np.ndarray:
    hits = labels[rank_by_score(scores)]
    if not hits.any():
        raise ValueError(f"{what}: there is no positive item, so AP is undefined; leave this class out.")
    return hits


def matlab_colon(start: float, step: float, stop: float) -> np.ndarray:
    """The vector MATLAB's colon operator ``start:step:stop`` builds, element for element, as doubles.

    MATLAB does not compute ``start + k*step`` for every element: to keep the vector symmetric it counts the
    intervals ``n`` (rounded, with a tolerance of ``2 * eps * max(|start|, |stop|)``), snaps the last element to
    ``stop`` when ``start + n*step`` is within that tolerance, then fills the first half as ``start + k*step``
    (``k = 0 .. floor(n/2)``), the second half as ``last - k*step`` from the far end, and, for even ``n``, the
    middle element as ``(start + last) / 2``. So ``0:0.1:1`` holds ``3*0.1 = 0.30000000000000004`` but exactly
    0.6 and 0.7 (``1 - 0.4`` and ``1 - 0.3``), where ``6*0.1`` and ``7*0.1`` would be 0.6000000000000001 and
    0.7000000000000001. Integer start and step take MATLAB's exact integer paths. This is the algorithm
    MathWorks documents for the colon operator (its ``colonop.m``); it reproduces MATLAB's printed outputs, e.g.
    ``(0:0.1:0.3) - (0:0.1:0.4)(1:4)`` = ``1e-16 * [0 0 -0.2776 -0.5551]`` (``docs/protocols.md``).
    """
    a, d, b = float(start), float(step), float(stop)
    if not (np.isfinite(a) and np.isfinite(d) and np.isfinite(b)):
        raise ValueError(f"matlab_colon: start, step and stop must be finite; got {start}, {step}, {stop}.")
    if d == 0 or (a < b and d < 0) or (b < a and d > 0):
        return np.zeros(0)
    tolerance = 2.0 * np.finfo(float).eps * max(abs(a), abs(b))
    sign = np.sign(d)
    integers = a == np.floor(a) and d == np.floor(d)
    if integers and d == 1:
        n = int(np.floor(b) - a)
    elif integers:
        quotient = np.floor(a / d)
        n = int(np.floor((b - (a - quotient * d)) / d) - quotient)
    else:
        n = int(np.round((b - a) / d))
        if sign * (a + n * d - b) > tolerance:
            n -= 1
    last = a + n * d
    if not integers and sign * (last - b) > -tolerance:
        last = b
    out = np.empty(n + 1)
    half = np.arange(n // 2 + 1)
    out[half] = a + half * d
    out[n - half] = last - half * d
    if n % 2 == 0:
        out[n // 2] = (a + last) / 2
    return out


# The devkit's recall levels: VOCevalcls.m loops ``for t=0:0.1:1``.
VOC07_DEVKIT_LEVELS = matlab_colon(0, 0.1, 1)


def voc07_ap(
    scores: ArrayLike, labels: ArrayLike, difficult: ArrayLike | None = None, levels: str = "devkit"
) -> float:
    """PASCAL VOC 2007 AP of one class: precision interpolated at the 11 recalls 0, 0.1, ..., 1.

    At each recall level ``t`` the precision is the *maximum* precision at any rank whose recall is ``>= t``
    (0 when recall never reaches ``t``); AP is the mean of the 11 values. Items with ``difficult`` true are removed
    before ranking: they count neither as hits nor as errors.

    ``levels="devkit"`` (the default) reproduces the official ``VOCevalcls.m`` bit for bit, as every published VOC07
    number was computed: recall is the double ``tp / n_positives``, the levels are MATLAB's ``0:0.1:1``
    (:data:`VOC07_DEVKIT_LEVELS`, whose fourth level is 0.30000000000000004, so a recall of exactly 0.3 does not
    reach it) and AP is accumulated as ``ap = ap + p / 11``. ``levels="exact"`` compares recall with exact tenths
    (``10 * hits >= k * n_positives`` in integers); the two differ only when a class's count of positives is a
    multiple of 10 and recall stops at exactly 0.3 (``docs/protocols.md``).
    """
    if levels not in VOC07_LEVELS:
        raise ValueError(f"voc07_ap: levels must be 'devkit' or 'exact'; got {levels!r}.")
    scores, labels = _scores_and_labels(scores, labels, "voc07_ap")
    if difficult is not None:
        difficult = np.asarray(difficult, dtype=bool)
        if difficult.shape != scores.shape:
            raise ValueError(f"voc07_ap: difficult has shape {difficult.shape}, scores {scores.shape}.")
        scores, labels = scores[~difficult], labels[~difficult]
    hits = _hits_in_rank_order(scores, labels, "voc07_ap")
    true_positives = np.cumsum(hits)
    precision = true_positives / np.arange(1, hits.size + 1)
    n_positives = int(true_positives[-1])
    recall = true_positives / n_positives
    ap = 0.0
    for k, level in enumerate(VOC07_DEVKIT_LEVELS):
        reached = recall >= level if levels == "devkit" else 10 * true_positives >= k * n_positives
        ap = ap + (precision[reached].max() if reached.any() else 0.0) / 11
    return float(ap)


def average_precision(scores: ArrayLike, labels: ArrayLike) -> float:
    """Non-interpolated AP: the mean, over positives, of the precision at each positive's rank.

    Equal to scikit-learn's ``average_precision_score`` when scores have no ties (ties here are broken by input
    order; see the module docstring).
    """
    scores, labels = _scores_and_labels(scores, labels, "average_precision")
    hits = _hits_in_rank_order(scores, labels, "average_precision")
    ranks = np.flatnonzero(hits) + 1
    return float(np.mean(np.arange(1, ranks.size + 1) / ranks))


def mean_class_accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean over the classes present in ``y_true`` of the fraction of that class's items predicted correctly.

    This is the mean of the confusion matrix's normalised diagonal (the paper's MIT-67 measure), so every class
    weighs the same however many test images it has. Classes that appear only in ``y_pred`` have no items and
    are not averaged. The paper's name for scikit-learn's ``balanced_accuracy_score``, which computes it (and
    checks the inputs: 1-D, equal length, non-empty, class labels rather than continuous values); its warnings
    about classes only in ``y_pred`` or a single class are silenced, since both cases are well defined here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true", category=UserWarning)
        warnings.filterwarnings("ignore", message="A single label was found", category=UserWarning)
        return float(balanced_accuracy_score(y_true, y_pred))


def mean_auc(scores: ArrayLike, labels: ArrayLike) -> float:
    """Mean over columns of the ROC AUC of an ``(items, attributes)`` score matrix (UIUC attributes' mAUC).

    Tied scores count one half (the usual AUC convention). A column whose labels are all equal has no AUC; the
    error names such columns so that they can be dropped explicitly.
    """
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    if scores.ndim == 1:
        scores, labels = scores[:, None], labels.reshape(-1, 1)
    if scores.ndim != 2 or scores.shape != labels.shape:
        raise ValueError(
            f"mean_auc: scores and labels must be (items, attributes) of equal shape; got {scores.shape} and "
            f"{labels.shape}."
        )
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("mean_auc: labels must be 0 or 1.")
    positives = labels.sum(axis=0)
    undefined = np.flatnonzero((positives == 0) | (positives == labels.shape[0]))
    if undefined.size:
        raise ValueError(
            f"mean_auc: column(s) {undefined.tolist()} have only one label value, so AUC is undefined; "
            "drop them before averaging."
        )
    return float(np.mean([roc_auc_score(labels[:, k], scores[:, k]) for k in range(scores.shape[1])]))


def retrieval_ap(
    ranked_ids: Sequence[Hashable], positives: Iterable[Hashable], junk: Iterable[Hashable] = ()
) -> float:
    """AP of one ranked list as the Oxford Buildings (``compute_ap.cpp``) and INRIA Holidays scripts compute it.

    Junk ids are dropped from the ranking as if absent (they neither help nor hurt), then the area under the
    precision-recall curve is summed with the trapezoidal rule between consecutive recall steps, starting from
    precision 1 at recall 0. Positives missing from ``ranked_ids`` are never retrieved (recall stays below 1).
    For Holidays pass the query itself as junk; for Oxford/Paris pass the "junk" list (and "good"+"ok" as
    positives).
    """
    positives, junk = set(positives), set(junk)
    if not positives:
        raise ValueError("retrieval_ap: the query has no positives, so AP is undefined; skip this query.")
    both = positives & junk
    if both:
        raise ValueError(f"retrieval_ap: ids {sorted(both, key=str)[:5]} are both positive and junk; fix the "
                         "ground truth.")
    ranked = list(ranked_ids)
    if len(set(ranked)) != len(ranked):
        raise ValueError("retrieval_ap: ranked_ids contains an id more than once.")
    ap, found, position = 0.0, 0, 0
    recall_step = 1.0 / len(positives)
    for item in ranked:
        if item in junk:
            continue
        position += 1
        if item in positives:
            precision_before = found / (position - 1) if position > 1 else 1.0
            found += 1
            ap += recall_step * (precision_before + found / position) / 2
    return ap


def revisited_precision_at(
    ranked_ids: Sequence[Hashable],
    positives: Iterable[Hashable],
    junk: Iterable[Hashable] = (),
    kappas: Sequence[int] = REVISITED_KAPPAS,
) -> np.ndarray:
    """Precision at each of ``kappas`` for one query, as the revisited Oxford/Paris ``compute_map`` computes it.

    Junk ids are dropped from the ranking first. The official code caps each ``k`` at the position of the last
    positive retrieved: precision at ``k`` is (positives among the first ``min(k, last)``) / ``min(k, last)``, so a
    query whose 3 positives fill positions 1, 2 and 4 scores 3/4 at 5 and at 10, not 3/5 and 3/10. A ranking that
    retrieves no positive at all scores 0 (the official code has no such case: its rankings hold every image).
    """
    positives, junk = set(positives), set(junk)
    if not positives:
        raise ValueError("revisited_precision_at: the query has no positives, so precision is undefined; skip it.")
    kept = [item for item in ranked_ids if item not in junk]
    found = np.flatnonzero([item in positives for item in kept]) + 1  # 1-based positions of the positives
    if found.size == 0:
        return np.zeros(len(kappas))
    capped = np.minimum(found.max(), np.asarray(kappas))
    return np.array([(found <= k).sum() / k for k in capped], dtype=np.float64)


def ukbench_score(ranked_ids: Sequence[Hashable], group: Iterable[Hashable]) -> int:
    """UKBench N-S score of one query: how many of the first 4 ranked ids are in ``group`` (0..4).

    ``group`` is the query's object: its 4 images, the query itself included (the query is in the database and
    normally comes first). The paper's UKBench column is the mean score x 25, i.e. percent.
    """
    group = set(group)
    if len(group) != 4:
        raise ValueError(f"ukbench_score: a UKBench group has 4 images; got {len(group)}.")
    top = list(ranked_ids)[:4]
    if len(top) < 4:
        raise ValueError(f"ukbench_score: the ranking has only {len(top)} ids; need at least 4.")
    return sum(item in group for item in top)
