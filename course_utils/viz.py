"""Plots the course draws in reports and notebooks: image grids, confusion matrices, per-class accuracy, retrieval
galleries, accuracy against layer depth, the paper's claims, the views and patches on a photo, the course map.
Each function returns a matplotlib ``Figure`` and never calls ``plt.show()``, so the same code serves notebooks
(which display the figure) and reports (which save it)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from . import claims
from .datasets.base import DatasetRecord

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from torch import nn

    from .augment import ViewSpec
    from .backbones import Backbone
    from .classify import CSelection
    from .experiments import ClassificationOutcome
    from .report import ResultRecord
    from .retrieval import RetrievalOutcome


def plot_confusion(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str], normalize: bool = True) -> Figure:
    """Row-normalised confusion matrix (rows: true class, columns: predicted), as in the paper's Figure 2b."""
    import seaborn as sns
    from sklearn.metrics import confusion_matrix

    labels = np.arange(len(class_names))
    matrix = confusion_matrix(y_true, y_pred, labels=labels).astype(float)
    if normalize:
        matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = min(14, 3 + 0.3 * len(class_names))
    fig = Figure(figsize=(size, size * 0.85))
    ax = fig.subplots()
    many = len(class_names) > 30
    sns.heatmap(matrix, ax=ax, cmap="viridis", square=True, cbar=True, vmin=0, vmax=1 if normalize else None,
                xticklabels=False if many else list(class_names), yticklabels=False if many else list(class_names))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Confusion matrix" + (" (rows sum to 1)" if normalize else ""))
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


def _thumbnail(path: str | Path, size: int = 128) -> np.ndarray:
    from .imageio import open_rgb

    image = open_rgb(path)
    image.thumbnail((size, size))
    return np.asarray(image)


def retrieval_gallery(record: DatasetRecord, outcome: RetrievalOutcome, n_queries: int = 4, top: int = 5,
                      queries: Sequence[int] | None = None) -> Figure:
    """For a few queries: the query image, then its ``top`` results framed green (relevant), grey (junk) or red.

    ``outcome`` is what :func:`course_utils.retrieval.run_retrieval` returns (``ranks`` over ``db_index``); junk
    follows the evaluation's rule (:func:`course_utils.retrieval.junk_images`).
    """
    from .retrieval import junk_images

    ranks, db_index = np.asarray(outcome.ranks), np.asarray(outcome.db_index)
    chosen = list(queries) if queries is not None else list(range(min(n_queries, len(record.queries))))
    fig = Figure(figsize=(2 * (top + 1), 2.1 * len(chosen)))
    axes = np.atleast_2d(fig.subplots(len(chosen), top + 1))
    for row, q in enumerate(chosen):
        query = record.queries[q]
        axes[row, 0].imshow(_thumbnail(record.paths[query.index]))
        axes[row, 0].set_title("query", fontsize=9)
        positives, junk = set(query.positives), junk_images(query)
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


def plot_cv_scores(selection: CSelection, reference_C: float | None = None, reference_label: str = "paper"
                   ) -> Figure:
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


# --- image grids and what the network sees (notebooks 01-03, 06, 07) --------------------------------------------


def _as_array(image: Image.Image | np.ndarray, position: int) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4)):
        return array
    raise ValueError(
        f"Image {position} has shape {array.shape}; show_images expects PIL images or arrays shaped HxW, HxWx3 "
        "or HxWx4 (move a channels-first CxHxW array's axis with array.transpose(1, 2, 0))."
    )


def show_images(
    images: Iterable[Image.Image | np.ndarray],
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    size: float = 2.5,
) -> Figure:
    """A grid with one axis per image (no ticks), titled when ``titles`` is given; returns the figure.

    Grey-scale (2-D) images are drawn with a grey colour map; pixels are drawn unsmoothed so that a 3x3 filter looks
    like nine squares and not like a blur.
    """
    import matplotlib.pyplot as plt

    arrays = [_as_array(image, i) for i, image in enumerate(images)]
    if not arrays:
        raise ValueError("show_images needs at least one image; it was given none.")
    if titles is not None and len(titles) != len(arrays):
        raise ValueError(f"show_images got {len(arrays)} images but {len(titles)} titles; give one title per image.")
    ncols = min(len(arrays), ncols or 6)
    nrows = math.ceil(len(arrays) / ncols)
    title_room = 0.4 if titles else 0.0
    figure = plt.figure(figsize=(ncols * size, nrows * (size + title_room)))
    for i, array in enumerate(arrays):
        axis = figure.add_subplot(nrows, ncols, i + 1)
        axis.imshow(array, cmap="gray" if array.ndim == 2 else None, interpolation="nearest")
        axis.set_axis_off()
        if titles:
            axis.set_title(titles[i], fontsize=9)
    figure.tight_layout()
    return figure


def first_conv_filters(model: nn.Module) -> np.ndarray:
    """The first colour convolution's filters as ``(n_filters, height, width, 3)`` images in ``[0, 1]``.

    Each filter is min-max scaled on its own: filters differ in scale by orders of magnitude, and what a learner
    should see is each one's pattern (an edge, a colour blob), not which one has the largest weights.
    """
    from torch import nn

    for module in model.modules():
        if isinstance(module, nn.Conv2d) and module.in_channels == 3:
            weights = module.weight.detach().cpu().float().numpy().transpose(0, 2, 3, 1)
            low = weights.min(axis=(1, 2, 3), keepdims=True)
            span = weights.max(axis=(1, 2, 3), keepdims=True) - low
            flat = span == 0
            return np.where(flat, 0.5, (weights - low) / np.where(flat, 1.0, span)).astype(np.float32)
    raise ValueError(
        f"{type(model).__name__} has no Conv2d with 3 input channels; pass the network itself (backbone.model)."
    )


def network_view(backbone: Backbone, image: Image.Image) -> np.ndarray:
    """The image as the network receives it (squashed to a square, resized), input normalisation undone: ``[0, 1]``
    RGB.

    Showing this next to the photo makes the paper's anisotropic warp (docs/paper.md section 1) visible.
    """
    tensor = backbone.transform(image)
    mean = np.asarray(backbone.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(backbone.std, dtype=np.float32)[:, None, None]
    pixels = tensor.detach().cpu().numpy() * std + mean
    return np.clip(pixels, 0.0, 1.0).transpose(1, 2, 0)


# --- the paper's claims (notebooks 00 and 08) --------------------------------------------------------------------


def plot_paper_claim() -> Figure:
    """Grouped bars of :func:`course_utils.claims.paper_claim`: the paper's Figure 1, redrawn from its tables."""
    import matplotlib.pyplot as plt

    rows = claims.paper_claim()
    positions = np.arange(len(rows))
    width = 0.27
    figure, axis = plt.subplots(figsize=(11, 4.2))
    series = (
        ("best earlier method", [r.prior for r in rows], "#9e9e9e"),
        ("CNN off-the-shelf", [r.cnn for r in rows], "#6baed6"),
        ("paper's CNNaug (16 views, power α = 2; retrieval: + search, PCA-whitening)", [r.cnn_aug for r in rows],
         "#08519c"),
    )
    for offset, (label, values, colour) in zip((-width, 0.0, width), series, strict=True):
        axis.bar(positions + offset, values, width, label=label, color=colour)
    axis.set_xticks(positions, [r.task for r in rows], rotation=30, ha="right", fontsize=9)
    axis.set_ylabel("score (%): mAP, accuracy or AUC")
    axis.set_ylim(0, 112)  # headroom above 100 keeps the legend off the bars
    axis.set_yticks(range(0, 101, 20))
    axis.set_title("Razavian et al. 2014, Tables 1-7: one generic CNN layer against specialised pipelines")
    axis.legend(loc="upper left", fontsize=8, ncols=3, frameon=False)
    figure.tight_layout()
    return figure


def plot_claim_gains(records: Sequence[ResultRecord]) -> Figure:
    """One panel per claim: horizontal bars of the gain in points, the paper's benchmarks grey, ours blue.

    Bars right of zero mean the extra step helped (:func:`course_utils.claims.claim_gains`).
    """
    import matplotlib.pyplot as plt

    gains = claims.claim_gains(records)
    shown = [claim for _, _, claim in claims.CLAIMS if any(g.claim == claim for g in gains)]
    heights = [sum(g.claim == claim for g in gains) for claim in shown]
    figure, axes = plt.subplots(len(shown), 1, figsize=(8, 0.32 * sum(heights) + 1.0 * len(shown)),
                                gridspec_kw={"height_ratios": heights}, squeeze=False)
    for axis, claim in zip(axes[:, 0], shown, strict=True):
        rows = [g for g in gains if g.claim == claim]
        labels = [g.dataset if g.source == "paper" else f"ours: {g.dataset} ({g.source})" for g in rows]
        colours = ["#9e9e9e" if g.source == "paper" else "#08519c" for g in rows]
        positions = np.arange(len(rows))[::-1]
        axis.barh(positions, [g.gain for g in rows], color=colours)
        axis.set_yticks(positions, labels, fontsize=8)
        axis.axvline(0, color="#333333", linewidth=0.8)
        axis.set_title(claim, fontsize=10)
    axes[-1, 0].set_xlabel("gain over the baseline row (percentage points): grey = paper, blue = ours")
    figure.tight_layout()
    return figure


# --- the course map (notebook 00) --------------------------------------------------------------------------------

# The course's data flow (README's course map): (stage, module, notebooks that teach it).
DATA_FLOW = (
    ("images", "datasets", "02, 06"),
    ("views", "augment", "03"),
    ("backbone layer", "backbones", "01"),
    ("feature store", "features", "02"),
    ("normalise", "normalize", "04"),
    ("linear SVMs", "classify", "05, 06"),
    ("metrics", "metrics", "05, 07"),
    ("report", "report, viz", "08"),
)
RETRIEVAL_BRANCH = ("spatial search", "retrieval", "07")


def draw_data_flow() -> Figure:
    """The pipeline as boxes and arrows, each box naming its ``course_utils`` module and notebooks.

    The lower branch is retrieval: it leaves the feature store and meets the main line again at the metrics.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    step, box_w, box_h = 1.6, 1.4, 0.8
    figure, axis = plt.subplots(figsize=(13, 3.4))
    centres = {}

    def box(x: float, y: float, stage: str, module: str, notebooks: str, colour: str) -> None:
        axis.add_patch(FancyBboxPatch((x - box_w / 2, y - box_h / 2), box_w, box_h,
                                      boxstyle="round,pad=0.03", facecolor=colour, edgecolor="#333333"))
        axis.text(x, y + 0.14, stage, ha="center", va="center", fontsize=10, weight="bold")
        axis.text(x, y - 0.08, module, ha="center", va="center", fontsize=8, family="monospace")
        axis.text(x, y - 0.27, f"nb {notebooks}", ha="center", va="center", fontsize=7, color="#555555")
        centres[stage] = (x, y)

    def arrow(start: tuple[float, float], end: tuple[float, float]) -> None:
        axis.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "color": "#333333", "lw": 1.4})

    for i, (stage, module, notebooks) in enumerate(DATA_FLOW):
        box(i * step, 1.0, stage, module, notebooks, "#deebf7")
    for i in range(len(DATA_FLOW) - 1):
        arrow((i * step + box_w / 2, 1.0), ((i + 1) * step - box_w / 2, 1.0))
    store_x, metrics_x = centres["feature store"][0], centres["metrics"][0]
    branch_x = (store_x + metrics_x) / 2
    box(branch_x, -0.2, *RETRIEVAL_BRANCH, "#fdd0a2")
    arrow((store_x, 1.0 - box_h / 2), (branch_x - box_w / 2, -0.2))
    arrow((branch_x + box_w / 2, -0.2), (metrics_x, 1.0 - box_h / 2))
    axis.set_xlim(-box_w / 2 - 0.1, (len(DATA_FLOW) - 1) * step + box_w / 2 + 0.1)
    axis.set_ylim(-0.75, 1.55)
    axis.set_axis_off()
    axis.set_title("From images to a results table: one course_utils module per arrow", fontsize=11)
    figure.tight_layout()
    return figure


# --- boxes, patches and views on a photo (notebooks 03, 06, 07) --------------------------------------------------

BOX_COLOURS = ("#d62728", "#2ca02c", "#1f77b4", "#ff7f0e", "#9467bd", "#17becf")


def _draw_rectangles(axis: Axes, boxes: Sequence[Sequence[float]], colours: Sequence[str],
                     labels: Sequence[str] = ()) -> None:
    from matplotlib.patches import Rectangle

    for number, box in enumerate(boxes):
        x0, y0, x1, y1 = (float(v) for v in box)
        colour = colours[number % len(colours)]
        axis.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=colour, linewidth=2))
        if number < len(labels):
            axis.text(x0 + 3, y0 + 3, labels[number], color="white", fontsize=8, va="top",
                      bbox={"facecolor": colour, "edgecolor": "none", "pad": 1.5})


def draw_boxes(image: Image.Image | np.ndarray, boxes: Mapping[str, Sequence[float]], size: float = 5.0) -> Figure:
    """The image with every named box ``(x0, y0, x1, y1)`` drawn as a labelled rectangle; returns the figure."""
    import matplotlib.pyplot as plt

    array = _as_array(image, 0)
    figure, axis = plt.subplots(figsize=(size, size * array.shape[0] / array.shape[1]))
    axis.imshow(array)
    _draw_rectangles(axis, list(boxes.values()), BOX_COLOURS, list(boxes))
    axis.set_axis_off()
    figure.tight_layout()
    return figure


def draw_patch_pyramid(image: Image.Image, levels: int = 4, size: float = 3.0) -> Figure:
    """One panel per level of the spatial-search pyramid (paper Sec. 4.2) with that level's patches drawn on it.

    Level ``i`` holds ``i x i`` overlapping patches; levels 1-3 (14 patches) describe a query, levels 1-4
    (30 patches) a database image. Overlapping outlines read as a finer grid, so each level's first patch is also
    shaded: that is the size of one patch.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from .retrieval import patch_boxes

    boxes = patch_boxes(image.width, image.height, levels)
    figure, axes = plt.subplots(1, levels, figsize=(levels * size, size * image.height / image.width + 0.6))
    axes = np.atleast_1d(axes)
    start = 0
    for level, axis in enumerate(axes, start=1):
        axis.imshow(np.asarray(image))
        _draw_rectangles(axis, boxes[start:start + level * level], BOX_COLOURS)
        x0, y0, x1, y1 = boxes[start]
        axis.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, facecolor=BOX_COLOURS[0], alpha=0.3, edgecolor="none"))
        start += level * level
        axis.set_title(f"level {level}: {level * level} patch{'es' if level > 1 else ''} (total {start})", fontsize=9)
        axis.set_axis_off()
    figure.tight_layout()
    return figure


def rotated_to_original(points: np.ndarray, width: int, height: int, degrees: float) -> np.ndarray:
    """Map ``(n, 2)`` pixel coordinates of ``image.rotate(degrees)`` (PIL, same size) back to the original image.

    PIL samples output point ``p`` at ``R (p - c) + c`` with ``c`` the image centre and ``R`` the rotation by
    ``-degrees`` (counter-clockwise on screen); this is that same mapping, so a box cut from the rotated image can be
    drawn, tilted, on the photo it came from.
    """
    theta = -np.radians(degrees)
    cos, sin = np.cos(theta), np.sin(theta)
    centre = np.array([width / 2, height / 2])
    offset = np.asarray(points, dtype=float) - centre
    return np.stack([cos * offset[:, 0] + sin * offset[:, 1], -sin * offset[:, 0] + cos * offset[:, 1]], axis=1) + centre


def view_outlines(views: str | ViewSpec, width: int, height: int) -> dict[str, np.ndarray]:
    """Corners ``(4, 2)`` (clockwise from top-left) of every un-mirrored view, in the original photo's pixels.

    Crops are axis-aligned rectangles; a rotated view is a rectangle of the rotated image, so on the photo it is a
    tilted quadrilateral. Mirrored views cover the same pixels as their originals and are left out.
    """
    from .augment import get_views

    spec = get_views(views)
    if not hasattr(spec, "boxes"):
        raise TypeError(f"{spec!r} has no boxes(width, height) method, so its views cannot be drawn.")
    outlines = {}
    for name, box in zip(spec.view_names, spec.boxes(width, height), strict=True):
        if name.startswith("flip_"):
            continue
        x0, y0, x1, y1 = box
        corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)
        if name.startswith("rot"):
            corners = rotated_to_original(corners, width, height, float(name[3:]))
        outlines[name] = corners
    return outlines


def plot_view_boxes(image: Image.Image, views: str | ViewSpec = "paper16") -> Figure:
    """The photo with the outline of every un-mirrored view drawn on it (crops as boxes, rotations tilted).

    Seeing the five crops overlap and the rotated windows zoom in explains what "16 views" feed the network better
    than the list of their names.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    outlines = view_outlines(views, image.width, image.height)
    figure, axis = plt.subplots(figsize=(6, 6 * image.height / image.width))
    axis.imshow(np.asarray(image))
    colours = plt.get_cmap("tab10")
    for i, (name, corners) in enumerate(outlines.items()):
        axis.add_patch(Polygon(corners, closed=True, fill=False, linewidth=2, edgecolor=colours(i % 10),
                               linestyle="-" if name.startswith(("crop", "whole")) else "--", label=name))
    axis.set_axis_off()
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    axis.set_title(f"{len(outlines)} windows; each is also mirrored", fontsize=10)
    figure.tight_layout()
    return figure


# --- confusions (notebook 06, reproduce's report) ----------------------------------------------------------------


def show_confused_pairs(record: DatasetRecord, outcome: ClassificationOutcome, top: int = 3, size: float = 2.5
                        ) -> Figure:
    """For the ``top`` most frequent confusions of a single-label outcome: the first test image of the true class
    taken for the other class, beside a training image of that other class.

    Seeing the two side by side shows whether a mistake is a look-alike (a fine-grained confusion) or a real error.
    ``outcome`` is what :func:`course_utils.experiments.classify` returns for ``record``. The training image is the
    first one the classifier learnt from (``outcome.train_indices``), so an image that feature extraction skipped
    as unreadable is never opened; an outcome without ``train_indices`` offers every non-test image.
    """
    import matplotlib.pyplot as plt

    from .imageio import open_rgb

    if outcome.y_pred is None:
        raise ValueError("show_confused_pairs needs a single-label outcome (its y_pred is None: multi-label data).")
    y_true, y_pred = np.asarray(outcome.y_true), np.asarray(outcome.y_pred)
    wrong = np.flatnonzero(y_true != y_pred)
    if wrong.size == 0:
        figure, axis = plt.subplots(figsize=(4, 1))
        axis.text(0.5, 0.5, "no confusions: every test image is classified correctly", ha="center", va="center")
        axis.set_axis_off()
        return figure
    pairs, counts = np.unique(np.stack([y_true[wrong], y_pred[wrong]], axis=1), axis=0, return_counts=True)
    order = np.lexsort((pairs[:, 1], pairs[:, 0], -counts))[:top]  # most frequent first, ties by class ids
    labels = np.asarray(record.labels)
    trained = getattr(outcome, "train_indices", None)
    candidates = np.flatnonzero(np.asarray(record.split) != "test") if trained is None else np.asarray(trained)
    images, titles = [], []
    for (true, predicted), n in zip(pairs[order], counts[order], strict=True):
        first = wrong[(y_true[wrong] == true) & (y_pred[wrong] == predicted)][0]
        example = candidates[labels[candidates] == predicted][0]
        images += [open_rgb(record.paths[outcome.test_indices[first]]), open_rgb(record.paths[example])]
        titles += [f"{record.class_names[true]}\ntaken for {record.class_names[predicted]} ({n}x)",
                   f"a training\n{record.class_names[predicted]}"]
    return show_images(images, titles=titles, ncols=2 * min(2, len(order)), size=size)
