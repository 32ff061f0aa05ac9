"""The paper's claims: Figure 1 redrawn from its tables, and the gain each improvement brings, in the paper and ours.

Reading gains (improved row minus baseline row) rather than raw numbers is what makes a small demo run comparable
with the paper: its datasets differ, but the claim "the extra step helps" is about the sign and size of the
difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import metrics

if TYPE_CHECKING:
    from .report import ResultRecord


@dataclass(frozen=True)
class ClaimRow:
    """One bar group of the paper's Figure 1, taken from its tables (the tables, not the drawn bars, are what
    docs/paper.md reproduces)."""

    task: str
    dataset: str
    prior_method: str
    prior: float
    cnn_method: str
    cnn: float
    cnn_aug_method: str
    cnn_aug: float


def _figure1_sources() -> list[tuple[str, str, str | None, str, str]]:
    """(label, dataset, metric or None, plain CNN row, augmented CNN row) of each bar group, in Figure 1's order.

    Read from the datasets' records (``DatasetSpec.paper.figure1``): a benchmark joins the figure by its record.
    """
    from .datasets import specs

    entries = sorted((spec.paper for spec in specs.SPECS.values() if spec.paper and spec.paper.figure1),
                     key=lambda entry: entry.figure1.position)
    return [(entry.figure1.label, entry.name, entry.metric,
             *(("CNN", "CNNaug-ss") if specs.get(entry.name).task_group == "retrieval" else ("CNN-SVM", "CNNaug-SVM")))
            for entry in entries]


def paper_claim() -> list[ClaimRow]:
    """Best earlier method, plain CNN and augmented CNN on each of the paper's eleven benchmarks (percent)."""
    from . import paper

    rows = []
    for task, dataset, metric, cnn_method, aug_method in _figure1_sources():
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


@dataclass(frozen=True)
class MeasuredClaim:
    """One claim measured in a run: its baseline and improved rows on one dataset with one backbone."""

    claim: str  # the improvement's description, from CLAIMS
    dataset: str
    backbone: str
    base_method: str  # the paper's names of the two rows, e.g. "CNN" and "CNN-ss"
    better_method: str
    base: ResultRecord
    better: ResultRecord

    @property
    def gain(self) -> float:
        """Improved minus baseline, in the metric's own units (an N-S score difference for UKBench)."""
        return self.better.value - self.base.value

    @property
    def points(self) -> float:
        """:attr:`gain` in percentage points (an N-S score difference x 25)."""
        return metrics.metric_labelled(self.better.metric).points_per_unit * self.gain


def measured_claims(records: Sequence[ResultRecord]) -> list[MeasuredClaim]:
    """Every claim of :data:`CLAIMS` that ``records`` measure, per (dataset, backbone) in the order they ran.

    A row counts by the paper's name of its method (``paper.paper_method``: "CNN-ss (16-view jitter)" is a CNN-ss
    row); the first row of each name is the one read, so ablation rows (e.g. "CNNaug-SVM power=2 ...") never count.
    """
    from . import paper

    by_run: dict[tuple[str, str], dict[str, ResultRecord]] = {}
    for record in records:
        by_run.setdefault((record.dataset, record.backbone), {}).setdefault(paper.paper_method(record.method), record)
    return [MeasuredClaim(claim, dataset, backbone, base, better, rows[base], rows[better])
            for (dataset, backbone), rows in by_run.items()
            for base, better, claim in CLAIMS if base in rows and better in rows]


def claim_gains(records: Sequence[ResultRecord]) -> list[ClaimGain]:
    """The paper's gain on every benchmark of Tables 1-7, then ours on every dataset in ``records``.

    ``records`` are :class:`course_utils.report.ResultRecord` (e.g. ``report.read_results(path)``). UKBench's N-S
    score (0-4) becomes the paper's percentage (x 25), so every gain is in percentage points. Reading gains rather
    than raw numbers is what makes a small demo run comparable with the paper: its datasets differ, but the claim
    "the extra step helps" is about the sign and size of the difference.
    """
    from . import paper

    measured = measured_claims(records)
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
        gains += [ClaimGain(claim, m.backbone, m.dataset, round(m.points, 2)) for m in measured if m.claim == claim]
    return gains


def claims_markdown(records: Sequence[ResultRecord], aug_power: float) -> str:
    """The report's section on the paper's two central claims, as measured in ``records`` ("" when none is).

    One row per measured claim (:func:`measured_claims`): baseline, improved row and gain in the metric's own units;
    ``aug_power`` is the power exponent the run's CNNaug-SVM rows used, named beside them.
    """
    lines = [f"| {m.dataset} | {m.backbone} | {m.base_method} | {m.base.value:.2f} | "
             f"{m.better.method}{f' (power {aug_power:g})' if m.better_method == 'CNNaug-SVM' else ''}: "
             f"{m.better.value:.2f} | {m.gain:+.2f} |" for m in measured_claims(records)]
    if not lines:
        return ""
    return "\n".join(["## The paper's two claims, as measured here", "",
                      "| dataset | backbone | baseline | ours | with augmentation / spatial search | gain |",
                      "|---|---|---|---|---|---|", *lines])
