"""Small helpers that keep the notebooks' cells short: set-up, image grids, the paper's claim, a prediction explorer.

A notebook cell should read like a sentence of the lesson (``cu.notebook.show_images(photos)``), not like plumbing.
The plumbing lives here, where it is tested once instead of being copied into nine notebooks and rotting there.
Nothing here changes global state on import; :func:`setup` is the one explicit call that seeds and styles.
"""

from __future__ import annotations

import html
import io
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from . import config

# Matplotlib defaults for every notebook: figures big enough to read on a laptop, small enough to stay light in git.
PLOT_STYLE = {
    "figure.figsize": (8.0, 4.0),
    "figure.dpi": 100,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "image.interpolation": "nearest",
}

# scikit-image ships these photographs, so every notebook has real pictures without a download.
SAMPLE_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "cat")


@dataclass(frozen=True)
class SetupInfo:
    """What :func:`setup` chose, so a notebook can assert on it (and a learner can read it back)."""

    profile: str
    backbone: str
    device: str
    seed: int
    cpu_count: int
    cache_dir: Path
    shared_data: Path | None


def setup(seed: int = config.DEFAULT_SEED, profile: str | None = None, backbone: str | None = None) -> SetupInfo:
    """Seed every random generator, set the plot style and print where this notebook runs.

    Printing the profile, network, device and folders at the top of every notebook means a screenshot of a result
    always says how it was obtained: a demo-profile number on a CPU is not a paper-scale number.
    ``backbone`` defaults to the profile's network; an unknown name fails here, before any slow work starts.
    """
    import matplotlib

    from . import backbones

    chosen = config.profile(profile)
    backbone_name = backbones.spec(backbone or chosen.backbone).name
    config.set_seed(seed)
    matplotlib.rcParams.update(PLOT_STYLE)
    info = SetupInfo(
        profile=chosen.name,
        backbone=backbone_name,
        device=config.device(),
        seed=seed,
        cpu_count=config.cpu_count(),
        cache_dir=config.cache_dir(),
        shared_data=config.shared_data_dir(),
    )
    shared = (
        f"{info.shared_data} (real benchmark subsets are used)"
        if info.shared_data
        else "absent (only the embedded demo sets; set COURSE_SHARED_DATA to a copy of shared/data)"
    )
    print(f"profile     {info.profile}: {chosen.description}")
    print(f"backbone    {info.backbone}")
    print(f"device      {info.device} ({info.cpu_count} CPU cores usable)")
    print(f"seed        {info.seed}")
    print(f"cache       {info.cache_dir}")
    print(f"shared data {shared}")
    print(f"python      {sys.version.split()[0]}")
    return info


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
):
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


def sample_photos(names: Sequence[str] = ("chelsea", "coffee", "astronaut")) -> dict[str, Image.Image]:
    """scikit-image's bundled photographs as RGB PIL images, by name (no download needed)."""
    from skimage import data

    unknown = [name for name in names if name not in SAMPLE_PHOTOS]
    if unknown:
        raise ValueError(f"Unknown sample photo(s) {unknown}; choose from {list(SAMPLE_PHOTOS)}.")
    return {name: Image.fromarray(getattr(data, name)()).convert("RGB") for name in names}


def first_conv_filters(model) -> np.ndarray:
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


def network_view(backbone, image: Image.Image) -> np.ndarray:
    """The image as the network receives it (squashed to a square, resized), undone back to ``[0, 1]`` RGB.

    Showing this next to the photo makes the paper's anisotropic warp (PAPER.md section 1) visible.
    """
    tensor = backbone.transform(image)
    mean = np.asarray(backbone.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(backbone.std, dtype=np.float32)[:, None, None]
    pixels = tensor.detach().cpu().numpy() * std + mean
    return np.clip(pixels, 0.0, 1.0).transpose(1, 2, 0)


def format_predictions(predictions: Sequence[tuple[int, str, float]]) -> str:
    """``Backbone.predict`` output for one image as aligned lines: ``  79.3%  Egyptian cat  [285]``."""
    return "\n".join(f"{probability:6.1%}  {name}  [{index}]" for index, name, probability in predictions)


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


def plot_paper_claim():
    """Grouped bars of :func:`paper_claim`: the paper's Figure 1, redrawn from its tables. Returns the figure."""
    import matplotlib.pyplot as plt

    rows = paper_claim()
    positions = np.arange(len(rows))
    width = 0.27
    figure, axis = plt.subplots(figsize=(11, 4.2))
    series = (
        ("best earlier method", [r.prior for r in rows], "#9e9e9e"),
        ("CNN off-the-shelf", [r.cnn for r in rows], "#6baed6"),
        ("CNN + augmentation/normalisation", [r.cnn_aug for r in rows], "#08519c"),
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


# The course's data flow (COURSE_DESIGN.md): (stage, module, notebooks that teach it).
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


def draw_data_flow():
    """The pipeline as boxes and arrows, each box naming its ``course_utils`` module and notebooks. Returns the figure.

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


def _png_bytes(image: Image.Image, max_side: int = 320) -> bytes:
    thumbnail = image.copy()
    thumbnail.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    thumbnail.save(buffer, format="PNG")
    return buffer.getvalue()


def _prediction_html(predictions: Sequence[tuple[int, str, float]]) -> str:
    return f"<pre>{html.escape(format_predictions(predictions))}</pre>"


def prediction_explorer(backbone, photos: Mapping[str, Image.Image], topk: int = 5):
    """A dropdown of ``photos``; picking one shows the photo and the network's top-``topk`` classes.

    Every prediction is computed once, in one batch, when the explorer is built: the widget then answers instantly
    and runs unattended (with the first photo selected) under nbval. Returns an ``ipywidgets.VBox`` whose
    ``dropdown``, ``photo`` and ``table`` attributes are its parts.
    """
    import ipywidgets as widgets

    if not photos:
        raise ValueError("prediction_explorer needs at least one photo, e.g. cu.notebook.sample_photos().")
    names = list(photos)
    predictions = dict(zip(names, backbone.predict([photos[n] for n in names], topk=topk), strict=True))
    dropdown = widgets.Dropdown(options=names, value=names[0], description="photo")
    photo = widgets.Image(format="png", layout=widgets.Layout(max_width="320px"))
    table = widgets.HTML()

    def show(name: str) -> None:
        photo.value = _png_bytes(photos[name])
        table.value = _prediction_html(predictions[name])

    dropdown.observe(lambda change: show(change["new"]), names="value")
    show(names[0])
    explorer = widgets.VBox([dropdown, widgets.HBox([photo, table])])
    explorer.dropdown, explorer.photo, explorer.table = dropdown, photo, table
    return explorer
