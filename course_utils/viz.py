"""Plots the course draws in reports and notebooks: confusion matrices, per-class accuracy, retrieval galleries,
accuracy against layer depth. Each function returns a matplotlib ``Figure`` and never calls ``plt.show()``, so the
same code serves notebooks (which display the figure) and reports (which save it)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from .datasets.base import DatasetRecord


def plot_confusion(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str], normalise: bool = True) -> Figure:
    """Row-normalised confusion matrix (rows: true class, columns: predicted), as in the paper's Figure 2b."""
    import seaborn as sns
    from sklearn.metrics import confusion_matrix

    labels = np.arange(len(class_names))
    matrix = confusion_matrix(y_true, y_pred, labels=labels).astype(float)
    if normalise:
        matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = min(14, 3 + 0.3 * len(class_names))
    fig = Figure(figsize=(size, size * 0.85))
    ax = fig.subplots()
    many = len(class_names) > 30
    sns.heatmap(matrix, ax=ax, cmap="viridis", square=True, cbar=True, vmin=0, vmax=1 if normalise else None,
                xticklabels=False if many else list(class_names), yticklabels=False if many else list(class_names))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Confusion matrix" + (" (rows sum to 1)" if normalise else ""))
    fig.tight_layout()
    return fig


def plot_per_class(per_class: np.ndarray, class_names: Sequence[str], reference: float | None = None,
                   reference_label: str = "paper") -> Figure:
    """Per-class accuracy sorted from worst to best, with our mean and (optionally) the paper's mean marked."""
    order = np.argsort(per_class, kind="stable")
    fig = Figure(figsize=(10, 3.5))
    ax = fig.subplots()
    ax.bar(np.arange(len(order)), np.asarray(per_class)[order], color="#1f77b4", width=0.9)
    ax.axhline(float(np.mean(per_class)), color="#1f77b4", linestyle="--", label=f"ours: {np.mean(per_class):.1f}")
    if reference is not None:
        ax.axhline(reference, color="#d62728", linestyle=":", label=f"{reference_label}: {reference:.1f}")
    if len(order) <= 30:
        ax.set_xticks(np.arange(len(order)), [class_names[i] for i in order], rotation=90, fontsize=7)
    else:
        ax.set_xlabel("classes, sorted by accuracy")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def _thumbnail(path, size: int = 128) -> np.ndarray:  # noqa: ANN001 - str | Path
    from .imageio import open_rgb

    image = open_rgb(path)
    image.thumbnail((size, size))
    return np.asarray(image)


def retrieval_gallery(record: DatasetRecord, result: dict, n_queries: int = 4, top: int = 5,
                      queries: Sequence[int] | None = None) -> Figure:
    """For a few queries: the query image, then its ``top`` results framed green (relevant), grey (junk) or red.

    ``result`` is what :func:`course_utils.retrieval.run_retrieval` returns (``ranks`` over ``db_index``).
    """
    ranks, db_index = np.asarray(result["ranks"]), np.asarray(result["db_index"])
    chosen = list(queries) if queries is not None else list(range(min(n_queries, len(record.queries))))
    fig = Figure(figsize=(2 * (top + 1), 2.1 * len(chosen)))
    axes = np.atleast_2d(fig.subplots(len(chosen), top + 1))
    for row, q in enumerate(chosen):
        query = record.queries[q]
        axes[row, 0].imshow(_thumbnail(record.paths[query.index]))
        axes[row, 0].set_title("query", fontsize=9)
        positives, junk = set(query.positives), set(query.junk)
        for col in range(top):
            item = int(db_index[ranks[q, col]])
            colour = "#2ca02c" if item in positives else "#7f7f7f" if item in junk else "#d62728"
            ax = axes[row, col + 1]
            ax.imshow(_thumbnail(record.paths[item]))
            ax.set_title(f"#{col + 1}", fontsize=9, color=colour)
            for spine in ax.spines.values():
                spine.set_edgecolor(colour)
                spine.set_linewidth(4)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Retrieval: green = relevant, red = wrong, grey = junk (ignored)")
    fig.tight_layout()
    return fig


def plot_layer_sweep(layers: Sequence[str], values: Sequence[float], metric: str, title: str = "",
                     paper: Sequence[tuple[float, float]] | None = None) -> Figure:
    """Performance against depth (the paper's Figure 2a): one point per layer, earliest layer first.

    ``paper`` optionally overlays the paper's curve as (relative depth 0..1, value) pairs on a second x-axis.
    """
    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    ax.plot(np.arange(len(layers)), values, marker="o", label="ours")
    ax.set_xticks(np.arange(len(layers)), list(layers), rotation=30)
    ax.set_ylabel(metric)
    ax.set_xlabel("layer (shallow to deep)")
    if paper:
        twin = ax.twiny()
        depth, value = zip(*paper, strict=True)
        twin.plot(depth, value, color="#7f7f7f", linestyle=":", label="paper (OverFeat, VOC07)")
        twin.set_xlim(0, 1)
        twin.set_xticks([])
        twin.legend(loc="lower right")
    ax.legend(loc="upper left")
    ax.set_title(title or "Performance against depth")
    fig.tight_layout()
    return fig


def plot_bars(labels: Sequence[str], values: Sequence[float], ylabel: str, title: str = "",
              reference: float | None = None, reference_label: str = "") -> Figure:
    """A simple labelled bar chart (e.g. accuracy against power exponent or network size)."""
    fig = Figure(figsize=(max(4, 1.2 * len(labels)), 3.2))
    ax = fig.subplots()
    bars = ax.bar(np.arange(len(labels)), values, color="#1f77b4")
    ax.bar_label(bars, fmt="%.1f", fontsize=8)
    if reference is not None:
        ax.axhline(reference, color="#d62728", linestyle=":", label=reference_label)
        ax.legend(loc="lower right")
    ax.set_xticks(np.arange(len(labels)), list(labels))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    low = min(values) if len(values) else 0
    ax.set_ylim(max(0, low - 10), min(100, max(values) + 5) if len(values) else 100)
    fig.tight_layout()
    return fig
