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
        if query.index not in positives:  # a searched query image is ignored, as the evaluation does
            junk.add(query.index)
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
    import seaborn as sns

    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    sns.lineplot(x=np.arange(len(layers)), y=list(values), marker="o", label="ours", ax=ax)
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
    """A simple labelled bar chart (e.g. accuracy against power exponent or network size).

    The y-axis starts a little below the lowest bar (or the ``reference`` line, which is always shown), long labels
    are slanted so that they do not overlap, and a long title wraps.
    """
    import textwrap

    fig = Figure(figsize=(max(4.5, 1.3 * len(labels)), 3.4))
    ax = fig.subplots()
    bars = ax.bar(np.arange(len(labels)), values, color="#1f77b4")
    ax.bar_label(bars, fmt="%.1f", fontsize=8)
    if reference is not None:
        ax.axhline(reference, color="#d62728", linestyle=":", label=reference_label)
        ax.legend(loc="lower right", fontsize=8)
    slanted = max((len(str(label)) for label in labels), default=0) > 10
    ax.set_xticks(np.arange(len(labels)), list(labels), rotation=20 if slanted else 0, ha="right" if slanted else "center")
    ax.set_ylabel(ylabel)
    ax.set_title("\n".join(textwrap.wrap(title, 48)), fontsize=10)
    shown = list(values) + ([reference] if reference is not None else [])
    if shown:
        ax.set_ylim(max(0, min(shown) - 10), min(100, max(shown) + 5))
    fig.tight_layout()
    return fig


def embed_2d(X: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """``(N, D)`` features as ``(N, 2)`` points: PCA (the two directions of largest variance) or t-SNE.

    t-SNE first reduces to at most 50 PCA dimensions (the usual speed-up, and it removes noise directions) and uses a
    perplexity below a third of N, which t-SNE needs.
    """
    from sklearn.decomposition import PCA

    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 3:
        raise ValueError(f"embed_2d needs (images, dims) features of at least 3 images; got shape {X.shape}. "
                         "Take one view of (images, views, dims) features with X[:, 0].")
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(X)
    if method == "tsne":
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits

        reduced = PCA(n_components=min(50, *X.shape), random_state=seed).fit_transform(X)
        perplexity = min(30.0, (X.shape[0] - 1) / 3)
        # One thread: on a busy 2-core machine t-SNE's OpenMP threads spin at every step's barrier, which made a
        # 192-point map take 50 s instead of 4 s; for the few thousand points a notebook draws one thread is enough.
        with threadpool_limits(limits=1, user_api="openmp"):
            return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduced)
    raise ValueError(f"embed_2d: method must be 'pca' or 'tsne'; got {method!r}.")


def plot_feature_scatter(panels: dict[str, np.ndarray], labels: np.ndarray, class_names: Sequence[str],
                         method: str = "pca", seed: int = 0) -> Figure:
    """One 2-D map per entry of ``panels`` (title -> ``(N, D)`` features), each point coloured by its class.

    Side by side, maps of a shallow and a deep layer show where in the network classes come apart. In a t-SNE map
    only neighbourhoods mean something: distances between clusters and cluster sizes do not.
    """
    labels = np.asarray(labels)
    fig = Figure(figsize=(4.2 * len(panels) + 1.8, 4.2))
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    colours = [_class_colour(k, len(class_names)) for k in range(len(class_names))]
    for ax, (title, X) in zip(axes, panels.items(), strict=True):
        points = embed_2d(X, method, seed)
        for k, name in enumerate(class_names):
            member = labels == k
            ax.scatter(points[member, 0], points[member, 1], s=12, color=colours[k], label=name)
        ax.set_title(f"{title} ({method.upper()})", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    if len(class_names) <= 20:
        axes[-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def _class_colour(k: int, n_classes: int) -> tuple[float, ...]:
    from matplotlib import colormaps

    return colormaps["tab10" if n_classes <= 10 else "tab20"](k % 20)


def plot_cv_scores(selection, reference_C: float | None = None, reference_label: str = "paper") -> Figure:  # noqa: ANN001
    """Cross-validation score (percent) against C on a log axis: each fold faint, their mean bold, chosen C marked.

    ``selection`` is a :class:`course_utils.classify.CSelection`. Too small a C underfits (every training vector is
    allowed on the wrong side), too large a C fits the training folds' noise: the curve shows where between.
    """
    Cs = np.asarray(selection.Cs, dtype=float)
    folds = 100 * np.asarray(selection.fold_scores, dtype=float)
    fig = Figure(figsize=(6, 3.4))
    ax = fig.subplots()
    for j in range(folds.shape[1]):
        ax.plot(Cs, folds[:, j], color="#9ecae1", marker=".", linewidth=1, label="one fold" if j == 0 else None)
    ax.plot(Cs, folds.mean(axis=1), color="#08519c", marker="o", linewidth=2, label="mean over folds")
    ax.axvline(selection.C, color="#2ca02c", linestyle="--", label=f"chosen C = {selection.C:g}")
    if reference_C is not None:
        ax.axvline(reference_C, color="#d62728", linestyle=":", label=f"{reference_label} C = {reference_C:g}")
    ax.set_xscale("log")
    ax.set_xlabel("C (log scale)")
    ax.set_ylabel("validation score (%)")
    ax.set_title(f"Choosing C by {folds.shape[1]}-fold cross-validation on the training images")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def plot_precision_recall(scores: np.ndarray, labels: np.ndarray, title: str = "") -> Figure:
    """Precision against recall of one ranking, with the VOC 2007 11-point interpolation drawn on top.

    The legend gives both measures: the area AP (mean precision at each positive) and the 11-point AP (mean of
    the best precision at recall >= 0, 0.1, ..., 1), which is the paper's Table 1 measure.
    """
    from .metrics import average_precision, rank_by_score, voc07_ap

    area_ap, eleven_point_ap = average_precision(scores, labels), voc07_ap(scores, labels)  # validate input first
    hits = np.asarray(labels, dtype=bool)[rank_by_score(scores)]
    found = np.cumsum(hits)
    precision, recall = found / np.arange(1, hits.size + 1), found / found[-1]
    # as voc07_ap: recall >= level/10 compared in integers, the best precision from there on (0 if never reached)
    interpolated = [precision[10 * found >= level * found[-1]].max(initial=0.0) for level in range(11)]
    levels = np.arange(11) / 10
    fig = Figure(figsize=(5, 3.6))
    ax = fig.subplots()
    ax.plot(np.r_[0, recall], np.r_[1, precision], drawstyle="steps-post", color="#1f77b4",
            label=f"precision at each rank (area AP = {area_ap:.3f})")
    ax.plot(levels, interpolated, "o", color="#d62728",
            label=f"11-point interpolation (VOC07 AP = {eleven_point_ap:.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(0, 1.05)
    ax.set_title(title or "Precision-recall of one ranking")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig
