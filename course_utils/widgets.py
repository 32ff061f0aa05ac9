"""Interactive explorers for the notebooks: a prediction explorer, a classifier explorer and retrieval explorers
(ipywidgets).

The retrieval explorers are :func:`retrieval_explorer` (a course dataset, with its ground truth) and
:func:`folder_explorer` (any folder of the learner's own photos: no ground truth, only distances).

Each explorer has two layers. The *pure* layer computes: :class:`ClassifierScores` trains and scores one linear SVM
per (layer, power, C) and :func:`ranked_results` lists a query's ranked database images with their status. The
*widget* layer only wires controls to it and draws. So the numbers a learner sees are testable without a browser,
and under nbval the widgets build once with their default values, run unattended and show the default result.

Why precompute: features are the slow part (seconds to minutes), an SVM on a few hundred vectors is fast (a fraction
of a second). The classifier explorer therefore receives features already extracted for a few layers, retrains on
each change, and remembers every result it has computed, so moving a control back costs nothing.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .datasets.base import DatasetRecord

if TYPE_CHECKING:
    import ipywidgets
    from matplotlib.figure import Figure
    from PIL import Image

    from .backbones import Backbone
    from .experiments import ClassificationOutcome
    from .features import FeatureSet
    from .photo_search import PhotoIndex, SearchResult
    from .retrieval import RetrievalOutcome

# Normalisations offered by the classifier explorer: label -> signed-power exponent applied after L2 (1 = none).
# Every choice L2-normalises, because the paper does so in every experiment (docs/paper.md section 3).
POWER_CHOICES: dict[str, float] = {
    "L2 (CNN-SVM)": 1.0,
    "L2 + signed power 0.5": 0.5,
    "L2 + signed power 2 (CNNaug-SVM)": 2.0,
}
DEFAULT_C = 2.0  # the paper's C for MIT-67, birds and flowers (Sec. 3)
STATUS_COLOURS = {"relevant": "#2ca02c", "junk": "#7f7f7f", "wrong": "#d62728"}


def figure_png(figure: Figure) -> bytes:
    """A matplotlib figure as PNG bytes, the format an ``ipywidgets.Image`` shows.

    A PNG inside an Image widget renders the same in JupyterLab, in a saved notebook and under nbval; an ``Output``
    widget capturing ``plt.show()`` does not (it depends on the front end being connected).
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def _png_view(max_width: str) -> ipywidgets.Image:
    import ipywidgets as widgets

    return widgets.Image(format="png", layout=widgets.Layout(max_width=max_width))


def _numbered_dropdown(labels: Sequence[str], value: int) -> ipywidgets.Dropdown:
    """A query dropdown showing ``labels`` whose value is the chosen label's position."""
    import ipywidgets as widgets

    return widgets.Dropdown(options=list(zip(labels, range(len(labels)), strict=True)), value=value,
                            description="query", layout=widgets.Layout(width="420px"))


def _assemble(rows: Sequence[ipywidgets.Widget], controls: Sequence[ipywidgets.ValueWidget],
              show: Callable[[], None], **parts: object) -> ipywidgets.VBox:
    """An explorer: ``rows`` stacked, ``show`` run now and on every change of a control, ``parts`` as attributes.

    Showing the starting state while the explorer is built is what lets it run unattended under nbval.
    """
    import ipywidgets as widgets

    for control in controls:
        control.observe(lambda _change: show(), names="value")
    show()
    explorer = widgets.VBox(list(rows))
    for name, part in parts.items():
        setattr(explorer, name, part)
    return explorer


# ---------------------------------------------------------------------------------------------------------------
# Prediction explorer (notebook 01)
# ---------------------------------------------------------------------------------------------------------------


def format_predictions(predictions: Sequence[tuple[int, str, float]]) -> str:
    """``Backbone.predict`` output for one image as aligned lines: ``  79.3%  Egyptian cat  [285]``."""
    return "\n".join(f"{probability:6.1%}  {name}  [{index}]" for index, name, probability in predictions)


def _png_bytes(image: Image.Image, max_side: int = 320) -> bytes:
    thumbnail = image.copy()
    thumbnail.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    thumbnail.save(buffer, format="PNG")
    return buffer.getvalue()


def prediction_explorer(backbone: Backbone, photos: Mapping[str, Image.Image], topk: int = 5) -> ipywidgets.VBox:
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
    photo, table = _png_view("320px"), widgets.HTML()

    def show() -> None:
        photo.value = _png_bytes(photos[dropdown.value])
        table.value = f"<pre>{html.escape(format_predictions(predictions[dropdown.value]))}</pre>"

    return _assemble([dropdown, widgets.HBox([photo, table])], [dropdown], show,
                     dropdown=dropdown, photo=photo, table=table)


# ---------------------------------------------------------------------------------------------------------------
# Classifier explorer
# ---------------------------------------------------------------------------------------------------------------


def _feature_arrays(features: FeatureSet | Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Layer -> ``(N, V, D)`` array, and the valid-row mask, from a FeatureSet or a plain mapping of arrays."""
    arrays = getattr(features, "arrays", features)
    if not isinstance(arrays, Mapping) or not arrays:
        raise TypeError(
            "features must be a FeatureSet (cu.features.extract(..., layers=[...])) or a non-empty dict "
            f"{{layer: array (images, views, dims)}}; got {type(features).__name__}."
        )
    valid = getattr(features, "valid", None)
    return {str(layer): np.asarray(array) for layer, array in arrays.items()}, (
        None if valid is None else np.asarray(valid, dtype=bool)
    )


class ClassifierScores:
    """Test scores of linear SVMs on precomputed features of one dataset, for any (layer, power, C); memoised.

    ``features`` holds one ``(images, views, dims)`` array per layer (a :class:`~course_utils.features.FeatureSet`
    or a dict), rows in ``record.paths`` order. Training and scoring follow
    :func:`course_utils.experiments.classify`: L2, optional signed power and L2 again; train on the ``train``/``val``
    splits, score the ``test`` split with mean class accuracy (single-label) or mean AP/AUC (multi-label).
    ``use_views="whole"`` reads view 0 only (CNN-SVM); ``"all"`` trains on every view and sums test scores
    (CNNaug-SVM).
    """

    def __init__(
        self,
        record: DatasetRecord,
        features: FeatureSet | Mapping[str, np.ndarray],
        *,
        use_views: str = "whole",
        multiclass: str = "ovr",
        seed: int = 0,
    ) -> None:
        if record.labels is None:
            raise ValueError(f"Dataset {record.name!r} has no labels; the classifier explorer needs a "
                             "classification or attribute dataset (not a retrieval one).")
        arrays, valid = _feature_arrays(features)
        for layer, array in arrays.items():
            if array.ndim != 3 or array.shape[0] != len(record):
                raise ValueError(
                    f"Features of layer {layer!r} have shape {array.shape}; expected ({len(record)}, views, dims), "
                    f"one row per image of {record.name!r} in record.paths order."
                )
        if valid is None:
            valid = np.logical_and.reduce([np.isfinite(a).all(axis=(1, 2)) for a in arrays.values()])
        self.record = record
        self.arrays = arrays
        self.valid = valid
        self.use_views = use_views
        self.multiclass = multiclass
        self.seed = seed
        self._outcomes: dict[tuple[str, float, float], ClassificationOutcome] = {}

    @property
    def layers(self) -> list[str]:
        """The layers whose features were given, in the order given."""
        return list(self.arrays)

    def outcome(self, layer: str, power: float = 1.0, C: float = DEFAULT_C) -> ClassificationOutcome:
        """The :class:`~course_utils.experiments.ClassificationOutcome` of one setting (trained once, then reused)."""
        from .experiments import classify

        if layer not in self.arrays:
            raise KeyError(f"No features for layer {layer!r}; this explorer holds {self.layers}.")
        key = (layer, float(power), float(C))
        if key not in self._outcomes:
            self._outcomes[key] = classify(
                self.record, self.arrays[layer], use_views=self.use_views, power=float(power), C=float(C),
                multiclass=self.multiclass, valid=self.valid, seed=self.seed,
            )
        return self._outcomes[key]

    def score_for(self, layer: str, power: float = 1.0, C: float = DEFAULT_C) -> float:
        """The test score (percent) of a linear SVM on ``layer`` after L2 and signed power ``power``, with ``C``."""
        return float(self.outcome(layer, power, C).value)

    def layer_scores(self, power: float = 1.0, C: float = DEFAULT_C) -> dict[str, float]:
        """:meth:`score_for` of every layer at one setting: the explorer's chart (deeper is not always better)."""
        return {layer: self.score_for(layer, power, C) for layer in self.layers}


def _power_label(power: float, choices: Mapping[str, float]) -> str:
    for label, value in choices.items():
        if float(value) == float(power):
            return label
    return f"L2 + signed power {power:g}"


def _classifier_controls(layers: Sequence[str], layer: str, powers: Mapping[str, float], power: float,
                         Cs: Sequence[float], C: float) -> tuple[ipywidgets.ValueWidget, ...]:
    """The layer, normalisation and C controls of :func:`classifier_explorer`, set to their starting values; a
    starting ``power`` or ``C`` missing from the choices is added to them."""
    import ipywidgets as widgets

    options = [*powers.items(), *([] if float(power) in powers.values() else [(_power_label(power, {}), power)])]
    Cs = sorted({float(c) for c in Cs} | {float(C)})
    return (
        widgets.Dropdown(options=list(layers), value=layer, description="layer"),
        widgets.Dropdown(options=options, value=float(power), description="normalise",
                         style={"description_width": "initial"}),
        widgets.SelectionSlider(options=[(f"{c:g}", c) for c in Cs], value=float(C), description="C"),
    )


def _classifier_summary(record: DatasetRecord, outcome: ClassificationOutcome, layer: str, setting: str,
                        use_views: str) -> str:
    return (f"<b>{html.escape(outcome.metric)}: {outcome.value:.1f}%</b> on the {outcome.y_true.shape[0]} test "
            f"images of {html.escape(record.name)} (layer <code>{html.escape(layer)}</code>, {html.escape(setting)}, "
            f"views used: {html.escape(use_views)})")


def classifier_explorer(
    record: DatasetRecord,
    features: FeatureSet | Mapping[str, np.ndarray],
    *,
    layer: str | None = None,
    power: float = 1.0,
    C: float = DEFAULT_C,
    Cs: Sequence[float] | None = None,
    powers: Mapping[str, float] = POWER_CHOICES,
    use_views: str = "whole",
    multiclass: str = "ovr",
    seed: int = 0,
) -> ipywidgets.VBox:
    """Pick a layer, a normalisation and C; see the test score of the linear SVM they give, for every layer.

    ``features``: a FeatureSet (or dict) holding a few layers of ``record`` (extract them in one pass with
    ``cu.features.extract(record.paths, backbone, layers=[...])``). The chart shows every layer's score at the
    chosen normalisation and C; the text gives the chosen layer's. Starts at ``layer`` (default: the last one
    given), ``power`` and ``C``, and computes that state while being built, so it runs unattended under nbval.

    Returns an ``ipywidgets.VBox`` whose ``layer``, ``power``, ``C`` (controls), ``summary`` (HTML) and ``chart``
    (Image) attributes are its parts, and whose ``scores`` is the :class:`ClassifierScores` behind it
    (``explorer.score_for(layer, power, C)`` is its pure function).
    """
    import ipywidgets as widgets

    from . import classify, viz

    scores = ClassifierScores(record, features, use_views=use_views, multiclass=multiclass, seed=seed)
    layer = layer or scores.layers[-1]
    if layer not in scores.arrays:
        raise KeyError(f"No features for layer {layer!r}; this explorer holds {scores.layers}.")
    controls = _classifier_controls(scores.layers, layer, powers, power, Cs or classify.DEFAULT_CS, C)
    summary, chart = widgets.HTML(), _png_view("640px")

    def show() -> None:
        chosen, p, c = (control.value for control in controls)
        setting = f"{_power_label(p, powers)}, C = {c:g}"
        outcome, by_layer = scores.outcome(chosen, p, c), scores.layer_scores(p, c)
        summary.value = _classifier_summary(record, outcome, chosen, setting, use_views)
        chart.value = figure_png(viz.plot_bars(list(by_layer), list(by_layer.values()), ylabel=f"{outcome.metric} (%)",
                                               title=f"every layer at {setting}"))

    layer_control, power_control, C_control = controls
    return _assemble([widgets.HBox(list(controls)), summary, chart], controls, show, layer=layer_control,
                     power=power_control, C=C_control, summary=summary, chart=chart, scores=scores,
                     score_for=scores.score_for)


# ---------------------------------------------------------------------------------------------------------------
# Retrieval explorer
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RankedItem:
    """One result of a query: its rank (1 = best), image index in ``record.paths``, status and distance."""

    rank: int
    index: int
    path: Path
    status: str  # "relevant", "junk" (ignored by the metric) or "wrong"
    distance: float | None


def _rankings(record: DatasetRecord, outcome: RetrievalOutcome) -> tuple[np.ndarray, np.ndarray]:
    """``outcome``'s ranks ``(Q, N)`` and searched image indices ``(N,)``, checked against ``record``."""
    if not (hasattr(outcome, "ranks") and hasattr(outcome, "db_index")):
        raise TypeError(f"Got a {type(outcome).__name__} without rankings; pass the RetrievalOutcome that "
                        "cu.retrieval.run_retrieval returns.")
    ranks, db_index = np.asarray(outcome.ranks), np.asarray(outcome.db_index)
    if ranks.ndim != 2 or ranks.shape[0] != len(record.queries):
        raise ValueError(
            f"outcome.ranks has shape {ranks.shape}, but {record.name!r} has {len(record.queries)} queries; "
            "pass the outcome of run_retrieval on this same record."
        )
    return ranks, db_index


def ranked_results(record: DatasetRecord, outcome: RetrievalOutcome, query: int, top: int = 5) -> list[RankedItem]:
    """The ``top`` first database images of query number ``query`` (position in ``record.queries``).

    Status follows the evaluation: the query's positives are "relevant", the images its score ignores
    (:func:`course_utils.retrieval.junk_images`) are "junk", anything else is "wrong".
    """
    from .retrieval import junk_images

    ranks, db_index = _rankings(record, outcome)
    if not 0 <= query < len(record.queries):
        raise IndexError(f"Query {query} does not exist: {record.name!r} has queries 0 to {len(record.queries) - 1}.")
    if top < 1:
        raise ValueError(f"top must be at least 1; got {top}.")
    entry = record.queries[query]
    positives, junk = set(entry.positives), junk_images(entry)
    distances = None if outcome.distances is None else np.asarray(outcome.distances)
    items = []
    for position, column in enumerate(ranks[query, :top].tolist()):
        index = int(db_index[column])
        status = "relevant" if index in positives else "junk" if index in junk else "wrong"
        distance = None if distances is None else float(distances[query, column])
        items.append(RankedItem(position + 1, index, record.paths[index], status, distance))
    return items


def _results_html(items: Sequence[RankedItem], ap: float) -> str:
    rows = "".join(
        f"<tr><td>#{item.rank}</td><td style='color:{STATUS_COLOURS[item.status]}'>{item.status}</td>"
        f"<td>{html.escape(item.path.name)}</td>"
        f"<td>{'' if item.distance is None else f'{item.distance:.3f}'}</td></tr>"
        for item in items
    )
    return (f"<b>AP of this query: {ap:.3f}</b><table><tr><th>rank</th><th>status</th><th>image</th><th>distance</th></tr>{rows}</table>")


def retrieval_explorer(record: DatasetRecord, outcome: RetrievalOutcome, *, query: int = 0, top: int = 5
                       ) -> ipywidgets.VBox:
    """Pick a query, see its ``top`` ranked results framed green (relevant), red (wrong) or grey (junk).

    ``outcome`` is what :func:`course_utils.retrieval.run_retrieval` returned for ``record``. The gallery is
    :func:`course_utils.viz.retrieval_gallery` for the chosen query; a table below lists each result's status and
    distance, and the query's AP. Returns an ``ipywidgets.VBox`` whose ``query`` (Dropdown), ``gallery`` (Image) and
    ``table`` (HTML) attributes are its parts; ``explorer.ranked_for(q)`` is :func:`ranked_results` for query ``q``.
    For a folder of your own photos, which has no ground truth, use :func:`folder_explorer`.
    """
    import ipywidgets as widgets

    from .viz import retrieval_gallery

    ranked_results(record, outcome, query, top)  # validates everything before any widget exists
    aps = np.asarray(outcome.ap, dtype=float)
    labels = [f"{q}: {entry.name or Path(record.paths[entry.index]).stem} (AP {aps[q]:.2f})"
              for q, entry in enumerate(record.queries)]
    chooser, gallery, table = _numbered_dropdown(labels, query), _png_view("900px"), widgets.HTML()

    def show() -> None:
        chosen = chooser.value
        gallery.value = figure_png(retrieval_gallery(record, outcome, top=top, queries=[chosen]))
        table.value = _results_html(ranked_results(record, outcome, chosen, top), float(aps[chosen]))

    return _assemble([chooser, gallery, table], [chooser], show, query=chooser, gallery=gallery, table=table,
                     ranked_for=lambda q, n=top: ranked_results(record, outcome, q, n))


# ---------------------------------------------------------------------------------------------------------------
# Retrieval explorer on a folder of your own photos
# ---------------------------------------------------------------------------------------------------------------


def _matches_html(result: SearchResult, root: Path) -> str:
    """The matches of ``result`` as an HTML table: rank, distance, and the photo's path relative to ``root``."""
    rows = "".join(
        f"<tr><td>#{match.rank}</td><td>{match.distance:.3f}</td>"
        f"<td>{html.escape(match.path.relative_to(root).as_posix())}</td></tr>"
        for match in result.matches
    )
    extra = f", re-ranking the global top {result.reranked}" if result.reranked else ""
    return (f"<b>{html.escape(result.query.name)}</b> ({result.method}{extra}; {result.seconds:.2f} s)"
            f"<table><tr><th>rank</th><th>distance</th><th>photo</th></tr>{rows}</table>")


def _folder_queries(index: PhotoIndex, queries: Sequence[str | Path]) -> tuple[list[Path], list[str]]:
    """The query photos a folder explorer offers and their labels: ``queries`` first, then every indexed photo."""
    outside = [Path(q).expanduser().absolute() for q in queries]
    labels = [f"outside: {p.name}" for p in outside] + [p.relative_to(index.root).as_posix() for p in index.paths]
    return outside + list(index.paths), labels


def _photo_index(folder: str | Path | PhotoIndex, progress: bool, index_options: Mapping[str, object]) -> PhotoIndex:
    """``folder`` indexed by :func:`course_utils.photo_search.build_index` (with ``index_options``), or the index
    itself when it is one."""
    from . import photo_search

    if not isinstance(folder, photo_search.PhotoIndex):
        return photo_search.build_index(folder, progress=progress, **index_options)
    if index_options:
        raise TypeError(f"folder is an index already built; {sorted(index_options)} apply only to a folder.")
    return folder


def _remembered_search(index: PhotoIndex, candidates: Sequence[Path], method: str, top: int, rerank: int,
                       progress: bool) -> Callable[..., SearchResult]:
    """``matches_for(q, method)``: the search of candidate ``q``, run once per (query, method), then remembered."""
    remembered: dict[tuple[int, str], SearchResult] = {}

    def matches_for(q: int, how: str = method) -> SearchResult:
        if not 0 <= q < len(candidates):
            raise IndexError(f"Query {q} does not exist: the explorer offers queries 0 to {len(candidates) - 1}.")
        if (q, how) not in remembered:
            remembered[q, how] = index.search(candidates[q], top=top, method=how, rerank=rerank, progress=progress)
        return remembered[q, how]

    return matches_for


def folder_explorer(
    folder: str | Path | PhotoIndex,
    *,
    queries: Sequence[str | Path] = (),
    query: int = 0,
    top: int = 5,
    method: str = "global",
    rerank: int | None = None,
    progress: bool = True,
    **index_options: object,
) -> ipywidgets.VBox:
    """Search a folder of your own photos: pick a query photo and a search method, see its ``top`` matches.

    Every image below ``folder`` is indexed once by :func:`course_utils.photo_search.build_index` (one global vector
    per photo, cached, unreadable images skipped), which takes ``index_options`` (``backbone``, ``layer``,
    ``engine``, ``device``); a :class:`~course_utils.photo_search.PhotoIndex` already built is used as it is. The
    query dropdown offers ``queries`` (images from anywhere, listed first) and then every indexed photo.
    ``method`` is the starting search: ``"global"`` (L2 between global vectors), or ``"spatial"`` / ``"jitter"``,
    which re-rank the global top ``rerank`` photos with the paper's distances (slower the first time: their
    patches are extracted, then cached). A photo's own file is left out of its results. The explorer computes its
    starting state while being built, so it runs unattended under nbval.

    Returns an ``ipywidgets.VBox`` whose ``query`` and ``method`` (Dropdowns), ``gallery`` (Image) and ``table``
    (HTML) attributes are its parts, ``index`` the PhotoIndex behind it, and ``matches_for(q, method)`` the pure
    function it shows (a :class:`~course_utils.photo_search.SearchResult`, for option number ``q`` of the query
    dropdown; remembered, so going back to a query costs nothing).
    """
    import ipywidgets as widgets

    from . import photo_search

    if method not in photo_search.METHODS:
        raise ValueError(f"Unknown search method {method!r}; choose one of {photo_search.METHODS}.")
    index = _photo_index(folder, progress, index_options)
    candidates, labels = _folder_queries(index, queries)
    if not 0 <= query < len(candidates):
        raise IndexError(f"Query {query} does not exist: the explorer offers queries 0 to {len(candidates) - 1} "
                         f"({len(queries)} given, then the {len(index)} indexed photos).")
    depth = photo_search.RERANK_DEPTH if rerank is None else int(rerank)
    matches_for = _remembered_search(index, candidates, method, top, depth, progress)
    chooser, gallery, table = _numbered_dropdown(labels, query), _png_view("900px"), widgets.HTML()
    how = widgets.Dropdown(options=list(photo_search.METHODS), value=method, description="search")

    def show() -> None:
        result = matches_for(chooser.value, how.value)
        gallery.value = figure_png(photo_search.gallery_figure([result], index.root))
        table.value = _matches_html(result, index.root)

    return _assemble([widgets.HBox([chooser, how]), gallery, table], [chooser, how], show, query=chooser,
                     method=how, gallery=gallery, table=table, index=index, matches_for=matches_for)
