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
from .claims import CLAIMS, ClaimGain, ClaimRow, claim_gains, paper_claim  # noqa: F401 - moving out (issue 20)

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

    Showing this next to the photo makes the paper's anisotropic warp (docs/paper.md section 1) visible.
    """
    tensor = backbone.transform(image)
    mean = np.asarray(backbone.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(backbone.std, dtype=np.float32)[:, None, None]
    pixels = tensor.detach().cpu().numpy() * std + mean
    return np.clip(pixels, 0.0, 1.0).transpose(1, 2, 0)


def format_predictions(predictions: Sequence[tuple[int, str, float]]) -> str:
    """``Backbone.predict`` output for one image as aligned lines: ``  79.3%  Egyptian cat  [285]``."""
    return "\n".join(f"{probability:6.1%}  {name}  [{index}]" for index, name, probability in predictions)


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


# --- Notebooks 06-08: class and query subsets, boxes on photos, confusions, report sections ----------------------


def first_available(names: Sequence[str], **kwargs):
    """The first dataset of ``names`` on this machine, loaded, and one line saying what is used.

    Each name is looked for by the course's one rule (its shared copy, then its downloaded copy; an embedded demo
    set is always there), so notebooks name the real benchmark first and an embedded demo set last: they run
    everywhere and tell the learner what they are looking at, e.g. ``Data: demo_classes — embedded demo set
    (flowers102 and flowers17 are not on this machine; to get them: ...)``. ``record.source`` says which copy was
    used. Raises the last name's ``DatasetMissingError`` when none of them is present.
    """
    from .datasets import load_first_available

    if not names:
        raise ValueError("first_available needs at least one dataset name, e.g. ['flowers102', 'demo_classes'].")
    return load_first_available(names, **kwargs)


def class_subset(record, classes: Sequence[str | int], test_per_class: int | None = None):  # noqa: ANN001
    """Only the images of ``classes`` (names or label ids), relabelled ``0..k-1`` in the order given.

    Every training and validation image of those classes is kept; the test split keeps its first
    ``test_per_class`` images of each class (all with ``None``), so the subset, and hence the feature cache entry,
    is the same on every run. A few classes with 16 views each fit a CPU's minute where the whole benchmark would
    take an hour, and still show what the full benchmark measures.
    """
    from dataclasses import replace

    if record.labels is None or np.asarray(record.labels).ndim != 1:
        raise ValueError(f"class_subset needs a single-label dataset; {record.name!r} is {record.task!r}.")
    if test_per_class is not None and test_per_class < 1:
        raise ValueError(f"test_per_class must be at least 1 (or None for every test image); got {test_per_class}.")
    ids = []
    for wanted in classes:
        if isinstance(wanted, str):
            if wanted not in record.class_names:
                raise ValueError(f"{record.name!r} has no class {wanted!r}; its classes start "
                                 f"{record.class_names[:5]} (see record.class_names).")
            ids.append(record.class_names.index(wanted))
        elif 0 <= int(wanted) < len(record.class_names):
            ids.append(int(wanted))
        else:
            raise ValueError(f"Class id {wanted} is outside 0..{len(record.class_names) - 1} for {record.name!r}.")
    if not ids or len(set(ids)) != len(ids):
        raise ValueError(f"class_subset needs distinct classes, at least one; got {list(classes)}.")
    labels, split = np.asarray(record.labels), np.asarray(record.split)
    keep = []
    for label in ids:
        members = np.flatnonzero(labels == label)
        tests = members[split[members] == "test"]
        keep += members[split[members] != "test"].tolist() + tests[:test_per_class].tolist()
    subset = record.subset(sorted(keep))
    renumber = {old: new for new, old in enumerate(ids)}
    cap = "all" if test_per_class is None else f"at most {test_per_class}"
    return replace(
        subset, labels=np.array([renumber[int(label)] for label in subset.labels]),
        class_names=[record.class_names[label] for label in ids],
        protocol=f"{record.protocol} | subset: {len(ids)} classes, {cap} test images per class",
    )


def retrieval_subset(record, n_images: int):  # noqa: ANN001
    """The first ``n_images`` images of a retrieval set, with the queries among them and their ground truth cut to
    those images (queries left without a positive are dropped).

    UKBench numbers its photos in groups of four, so its first ``4 k`` images are ``k`` complete objects: the same
    protocol on fewer distractors, which is why scores on a subset are higher than on the full set.
    """
    from dataclasses import replace

    if record.task != "retrieval":
        raise ValueError(f"retrieval_subset needs a retrieval dataset; {record.name!r} is {record.task!r}.")
    if not 1 <= n_images <= len(record):
        raise ValueError(f"n_images must be in 1..{len(record)} for {record.name!r}; got {n_images}.")
    queries = []
    for query in record.queries:
        positives = [i for i in query.positives if i < n_images]
        if query.index < n_images and positives:
            queries.append(replace(query, positives=positives, junk=[i for i in query.junk if i < n_images]))
    if not queries:
        raise ValueError(f"The first {n_images} images of {record.name!r} hold no query with a positive; take more.")
    database = None if record.database is None else np.array([i for i in record.database if i < n_images])
    subset = record.subset(np.arange(n_images))
    return replace(subset, queries=queries, database=database,
                   protocol=f"{record.protocol} | subset: first {n_images} images, {len(queries)} queries")


BOX_COLOURS = ("#d62728", "#2ca02c", "#1f77b4", "#ff7f0e", "#9467bd", "#17becf")


def _draw_rectangles(axis, boxes: Sequence[Sequence[float]], colours: Sequence[str],  # noqa: ANN001 - an Axes
                     labels: Sequence[str] = ()) -> None:
    from matplotlib.patches import Rectangle

    for number, box in enumerate(boxes):
        x0, y0, x1, y1 = (float(v) for v in box)
        colour = colours[number % len(colours)]
        axis.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=colour, linewidth=2))
        if number < len(labels):
            axis.text(x0 + 3, y0 + 3, labels[number], color="white", fontsize=8, va="top",
                      bbox={"facecolor": colour, "edgecolor": "none", "pad": 1.5})


def draw_boxes(image: Image.Image | np.ndarray, boxes: Mapping[str, Sequence[float]], size: float = 5.0):
    """The image with every named box ``(x0, y0, x1, y1)`` drawn as a labelled rectangle; returns the figure."""
    import matplotlib.pyplot as plt

    array = _as_array(image, 0)
    figure, axis = plt.subplots(figsize=(size, size * array.shape[0] / array.shape[1]))
    axis.imshow(array)
    _draw_rectangles(axis, list(boxes.values()), BOX_COLOURS, list(boxes))
    axis.set_axis_off()
    figure.tight_layout()
    return figure


def draw_patch_pyramid(image: Image.Image, levels: int = 4, size: float = 3.0):
    """One panel per level of the spatial-search pyramid (paper Sec. 4.2) with that level's patches drawn on it.

    Level ``i`` holds ``i x i`` overlapping patches; levels 1-3 (14 patches) describe a query, levels 1-4
    (30 patches) a database image. Overlapping outlines read as a finer grid, so each level's first patch is also
    shaded: that is the size of one patch. Returns the figure.
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


def show_confused_pairs(record, outcome, top: int = 3, size: float = 2.5):  # noqa: ANN001
    """For the ``top`` most frequent confusions of a single-label outcome: the first test image of the true class
    taken for the other class, beside a training image of that other class. Returns the figure.

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


def markdown_section(text: str, heading: str, blocks: int | None = None) -> str:
    """The section of a Markdown document that starts at the heading line ``heading`` (e.g. ``"## Results"``).

    It ends before the next heading of the same or a higher level, or after ``blocks`` blank-line-separated blocks
    below the heading (a table, a paragraph) when ``blocks`` is given. Raises ``ValueError`` naming the headings
    present when ``heading`` is not one of them.
    """
    lines = text.splitlines()
    level = len(heading) - len(heading.lstrip("#"))
    if level == 0:
        raise ValueError(f"heading must start with '#' (e.g. '## Results'); got {heading!r}.")
    if blocks is not None and blocks < 1:
        raise ValueError(f"blocks must be at least 1 (or None for the whole section); got {blocks}.")
    try:
        start = [line.strip() for line in lines].index(heading.strip())
    except ValueError:
        found = [line for line in lines if line.startswith("#")]
        raise ValueError(f"No heading {heading!r} in the document; its headings are {found}.") from None
    kept, seen = [lines[start]], 0
    for line in lines[start + 1:]:
        marks = len(line) - len(line.lstrip("#"))
        if 0 < marks <= level and line[marks:marks + 1] == " ":
            break
        starts_block = line.strip() and (len(kept) == 1 or not kept[-1].strip())
        if starts_block:
            seen += 1
            if blocks is not None and seen > blocks:
                break
        kept.append(line)
    return "\n".join(kept).strip()


# --- notebook 03: the jittered views on a photo; notebooks 03-04: few training images ----------------------------


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


def view_outlines(views, width: int, height: int) -> dict[str, np.ndarray]:  # noqa: ANN001 - a view spec or name
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


def plot_view_boxes(image: Image.Image, views="paper16"):  # noqa: ANN001 - a view spec or name
    """The photo with the outline of every un-mirrored view drawn on it (crops as boxes, rotations tilted).

    Seeing the five crops overlap and the rotated windows zoom in explains what "16 views" feed the network better
    than the list of their names. Returns the figure.
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


def few_shot_indices(record, per_class: int, seed: int = 0) -> np.ndarray:  # noqa: ANN001 - a DatasetRecord
    """Indices of ``per_class`` random training images of every class, followed by every test image (sorted).

    Fewer training images make a small, easy set hard enough for augmentation and normalisation to matter, which is
    the regime where the paper's extra views pay off most. ``record.subset(indices)`` and ``X[indices]`` give the
    matching record and features; the test images are always all kept, so scores stay comparable.
    """
    if record.task != "multiclass":
        raise ValueError(f"few_shot_indices needs a single-label dataset; {record.name!r} is {record.task!r}.")
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1; got {per_class}.")
    rng = np.random.default_rng(seed)
    labels, split = np.asarray(record.labels), np.asarray(record.split)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero((split == "train") & (labels == label))
        if members.size < per_class:
            raise ValueError(f"{record.name!r}: class {label} has {members.size} training images, fewer than "
                             f"per_class={per_class}; ask for at most {members.size}.")
        chosen.append(rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate([*chosen, np.flatnonzero(split == "test")]))


# --- notebook 04: features of a few in-memory images -------------------------------------------------------------


def image_features(backbone, images: Sequence[Image.Image], layer: str | None = None) -> np.ndarray:  # noqa: ANN001
    """One layer's pooled features ``(n_images, dim)`` of a few PIL images, computed in one batch, not cached.

    For quick experiments on images made in the notebook (a darker copy, a crop); datasets go through
    :func:`course_utils.features.extract`, which caches.
    """
    import torch

    if not images:
        raise ValueError("image_features needs at least one image.")
    batch = torch.stack([backbone.transform(image.convert("RGB")) for image in images])
    device = next(backbone.model.parameters()).device
    with torch.no_grad():
        (output,) = backbone.extractor(layer or backbone.default_layer)(batch.to(device))
    return output.cpu().numpy()


def few_shot_scores(record, X: np.ndarray, per_class: Sequence[int], settings: Mapping[str, dict],  # noqa: ANN001
                    repeats: int = 3, seed: int = 0, **common) -> dict[str, list[float]]:
    """Mean test score of each setting when training on ``per_class`` images of every class, averaged over repeats.

    ``settings`` maps a name to keyword arguments of :func:`course_utils.experiments.classify` (e.g.
    ``{"CNN-SVM": {"views": "whole"}, "CNNaug-SVM": {"views": "all"}}``); ``common`` is added to each (e.g. ``C=2``).
    Repeat ``r`` draws its training images with seed ``seed + r``, the same draw for every setting, so the settings
    are compared on identical data. Returns ``{name: [score for each per_class value]}``.
    """
    from .experiments import classify

    if repeats < 1:
        raise ValueError(f"repeats must be at least 1; got {repeats}.")
    curves: dict[str, list[float]] = {name: [] for name in settings}
    for n in per_class:
        draws = [few_shot_indices(record, n, seed + r) for r in range(repeats)]
        for name, options in settings.items():
            values = [classify(record.subset(rows), np.asarray(X)[rows], **{**common, **options}).value for rows in draws]
            curves[name].append(float(np.mean(values)))
    return curves


def plot_claim_gains(records: Sequence):
    """One panel per claim: horizontal bars of the gain in points, the paper's benchmarks grey, ours blue.

    Bars right of zero mean the extra step helped. Returns the figure.
    """
    import matplotlib.pyplot as plt

    gains = claim_gains(records)
    claims = [claim for _, _, claim in CLAIMS if any(g.claim == claim for g in gains)]
    heights = [sum(g.claim == claim for g in gains) for claim in claims]
    figure, axes = plt.subplots(len(claims), 1, figsize=(8, 0.32 * sum(heights) + 1.0 * len(claims)),
                                gridspec_kw={"height_ratios": heights}, squeeze=False)
    for axis, claim in zip(axes[:, 0], claims, strict=True):
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
