"""The paper's claims: Figure 1 redrawn from its tables, and the gain each improvement brings, in the paper and ours.

Reading gains (improved row minus baseline row) rather than raw numbers is what makes a small demo run comparable
with the paper: its datasets differ, but the claim "the extra step helps" is about the sign and size of the
difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ClaimRow:
    """One bar group of the paper's Figure 1, taken from the tables (which the digest says are the ground truth)."""

    task: str
    dataset: str
    prior_method: str
    prior: float
    cnn_method: str
    cnn: float
    cnn_aug_method: str
    cnn_aug: float


# (label, dataset, metric or None, plain CNN row, augmented CNN row) for Tables 1-7.
_CLAIM_SOURCES = (
    ("Objects (VOC07)", "voc2007", None, "CNN-SVM", "CNNaug-SVM"),
    ("Scenes (MIT-67)", "mit67", None, "CNN-SVM", "CNNaug-SVM"),
    ("Birds (CUB-200)", "cub200", None, "CNN-SVM", "CNNaug-SVM"),
    ("Flowers (102)", "flowers102", None, "CNN-SVM", "CNNaug-SVM"),
    ("Human attributes (H3D)", "h3d", None, "CNN-SVM", "CNNaug-SVM"),
    ("Object attributes (UIUC)", "uiuc_apascal", "mAUC", "CNN-SVM", "CNNaug-SVM"),
    ("Oxford5k", "oxford5k", None, "CNN", "CNNaug-ss"),
    ("Paris6k", "paris6k", None, "CNN", "CNNaug-ss"),
    ("Sculptures6k", "sculptures6k", None, "CNN", "CNNaug-ss"),
    ("Holidays", "holidays", None, "CNN", "CNNaug-ss"),
    ("UKBench", "ukbench", None, "CNN", "CNNaug-ss"),
)


def paper_claim() -> list[ClaimRow]:
    """Best earlier method, plain CNN and augmented CNN on each of the paper's eleven benchmarks (percent)."""
    from . import paper

    rows = []
    for task, dataset, metric, cnn_method, aug_method in _CLAIM_SOURCES:
        prior = paper.best_prior(dataset, metric=metric)
        rows.append(
            ClaimRow(
                task, dataset, prior.method, prior.value,
                cnn_method, paper.lookup(dataset, cnn_method, metric=metric),
                aug_method, paper.lookup(dataset, aug_method, metric=metric),
            )
        )
    return rows


# The paper's two central comparisons (baseline row, improved row, what the improvement is), as in reproduce.
CLAIMS = (
    ("CNN-SVM", "CNNaug-SVM", "16 jittered views (classification, Tables 1-6; power α = 2 in the paper)"),
    ("CNN", "CNN-ss", "spatial search (Oxford/Paris/Sculptures) or 16-view jitter (Holidays/UKBench), Table 7"),
    ("CNN", "CNNaug-ss", "search + PCA-whitening + power α = 2 (Table 7)"),
)


@dataclass(frozen=True)
class ClaimGain:
    """How many points one improvement adds over its baseline on one dataset, in the paper or in our run."""

    claim: str  # the improvement's description, from CLAIMS
    source: str  # "paper" or the backbone that ours ran with
    dataset: str
    gain: float  # percentage points (UKBench N-S scores are converted with x 25)


def claim_gains(records: Sequence) -> list[ClaimGain]:
    """The paper's gain on every benchmark of Tables 1-7, then ours on every dataset in ``records``.

    ``records`` are :class:`course_utils.report.ResultRecord` (e.g. ``report.read_results(path)``). UKBench's N-S
    score (0-4) becomes the paper's percentage (x 25), so every gain is in percentage points. Reading gains rather
    than raw numbers is what makes a small demo run comparable with the paper: its datasets differ, but the claim
    "the extra step helps" is about the sign and size of the difference.
    """
    from . import paper

    gains = []
    for base, better, claim in CLAIMS:
        by_table: dict[tuple[str, str], dict[str, float]] = {}
        for row in paper.RESULTS:
            if row.method in (base, better):
                by_table.setdefault((row.dataset, row.metric), {})[row.method] = row.value
        datasets = [dataset for dataset, _ in by_table]
        for (dataset, metric), values in by_table.items():
            if len(values) == 2:
                label = dataset if datasets.count(dataset) == 1 else f"{dataset} ({metric})"
                gains.append(ClaimGain(claim, "paper", label, round(values[better] - values[base], 2)))
        ours: dict[tuple[str, str], dict[str, object]] = {}
        for record in records:
            if paper.paper_method(record.method) in (base, better):  # "CNN-ss (16-view jitter)" is a CNN-ss row
                ours.setdefault((record.dataset, record.backbone), {}).setdefault(paper.paper_method(record.method),
                                                                                  record)
        for (dataset, backbone), rows in ours.items():
            if len(rows) == 2:
                scale = 25.0 if "N-S" in rows[better].metric else 1.0
                gains.append(ClaimGain(claim, backbone, dataset,
                                       round(scale * (rows[better].value - rows[base].value), 2)))
    return gains
