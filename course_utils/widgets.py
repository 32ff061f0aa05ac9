"""Interactive explorers for the notebooks: a classifier explorer and retrieval explorers (ipywidgets).

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .datasets.base import DatasetRecord

# Normalisations offered by the classifier explorer: label -> signed-power exponent applied after L2 (1 = none).
# Every choice L2-normalises, because the paper does so in every experiment (docs/paper.md section 3).
POWER_CHOICES: dict[str, float] = {
    "L2 (CNN-SVM)": 1.0,
    "L2 + signed power 0.5": 0.5,
    "L2 + signed power 2 (CNNaug-SVM)": 2.0,
}
DEFAULT_C = 2.0  # the paper's C for MIT-67, birds and flowers (Sec. 3)
STATUS_COLOURS = {"relevant": "#2ca02c", "junk": "#7f7f7f", "wrong": "#d62728"}


def figure_png(figure) -> bytes:  # noqa: ANN001 - a matplotlib Figure
    """A matplotlib figure as PNG bytes, the format an ``ipywidgets.Image`` shows.

    A PNG inside an Image widget renders the same in JupyterLab, in a saved notebook and under nbval; an ``Output``
    widget capturing ``plt.show()`` does not (it depends on the front end being connected).
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------------------------
# Classifier explorer
# ---------------------------------------------------------------------------------------------------------------


def _feature_arrays(features: object) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
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
    ``views="whole"`` reads view 0 only (CNN-SVM); ``"all"`` trains on every view and sums test scores (CNNaug-SVM).
    """

    def __init__(
        self,
        record: DatasetRecord,
        features: object,
        *,
        views: str = "whole",
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
        self.views = views
        self.multiclass = multiclass
        self.seed = seed
        self._outcomes: dict[tuple[str, float, float], object] = {}

    @property
    def layers(self) -> list[str]:
        """The layers whose features were given, in the order given."""
        return list(self.arrays)

    def outcome(self, layer: str, power: float = 1.0, C: float = DEFAULT_C):
        """The :class:`~course_utils.experiments.ClassificationOutcome` of one setting (trained once, then reused)."""
        from .experiments import classify

        if layer not in self.arrays:
            raise KeyError(f"No features for layer {layer!r}; this explorer holds {self.layers}.")
        key = (layer, float(power), float(C))
        if key not in self._outcomes:
            self._outcomes[key] = classify(
                self.record, self.arrays[layer], views=self.views, power=float(power), C=float(C),
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


def classifier_explorer(
    record: DatasetRecord,
    features: object,
    *,
    layer: str | None = None,
    power: float = 1.0,
    C: float = DEFAULT_C,
    Cs: Sequence[float] | None = None,
    powers: Mapping[str, float] = POWER_CHOICES,
    views: str = "whole",
    multiclass: str = "ovr",
    seed: int = 0,
):
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

    scores = ClassifierScores(record, features, views=views, multiclass=multiclass, seed=seed)
    layer = layer or scores.layers[-1]
    if layer not in scores.arrays:
        raise KeyError(f"No features for layer {layer!r}; this explorer holds {scores.layers}.")
    Cs = sorted({float(c) for c in (Cs or classify.DEFAULT_CS)} | {float(C)})
    power_options = {**powers}
    power_options.setdefault(_power_label(power, powers), float(power))

    layer_control = widgets.Dropdown(options=scores.layers, value=layer, description="layer")
    power_control = widgets.Dropdown(options=list(power_options.items()), value=float(power),
                                     description="normalise", style={"description_width": "initial"})
    C_control = widgets.SelectionSlider(options=[(f"{c:g}", c) for c in Cs], value=float(C), description="C")
    summary = widgets.HTML()
    chart = widgets.Image(format="png", layout=widgets.Layout(max_width="640px"))

    def show(_change: object = None) -> None:
        chosen, p, c = layer_control.value, power_control.value, C_control.value
        by_layer = scores.layer_scores(p, c)
        outcome = scores.outcome(chosen, p, c)
        summary.value = (
            f"<b>{html.escape(outcome.metric)}: {outcome.value:.1f}%</b> on the {outcome.y_true.shape[0]} test "
            f"images of {html.escape(record.name)} (layer <code>{html.escape(chosen)}</code>, "
            f"{html.escape(_power_label(p, power_options))}, C = {c:g}, views: {html.escape(views)})"
        )
        figure = viz.plot_bars(list(by_layer), list(by_layer.values()), ylabel=f"{outcome.metric} (%)",
                               title=f"every layer at {_power_label(p, power_options)}, C = {c:g}")
        chart.value = figure_png(figure)

    for control in (layer_control, power_control, C_control):
        control.observe(show, names="value")
    show()
    explorer = widgets.VBox([widgets.HBox([layer_control, power_control, C_control]), summary, chart])
    explorer.layer, explorer.power, explorer.C = layer_control, power_control, C_control
    explorer.summary, explorer.chart, explorer.scores = summary, chart, scores
    explorer.score_for = scores.score_for
    return explorer


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


def _check_result(record: DatasetRecord, result: Mapping) -> tuple[np.ndarray, np.ndarray]:
    missing = [key for key in ("ranks", "db_index") if key not in result]
    if missing:
        raise ValueError(f"result lacks {missing}; pass what cu.retrieval.run_retrieval returns.")
    ranks, db_index = np.asarray(result["ranks"]), np.asarray(result["db_index"])
    if ranks.ndim != 2 or ranks.shape[0] != len(record.queries):
        raise ValueError(
            f"result['ranks'] has shape {ranks.shape}, but {record.name!r} has {len(record.queries)} queries; "
            "pass the result of run_retrieval on this same record."
        )
    return ranks, db_index


def ranked_results(record: DatasetRecord, result: Mapping, query: int, top: int = 5) -> list[RankedItem]:
    """The ``top`` first database images of query number ``query`` (position in ``record.queries``).

    Status follows the evaluation (:func:`course_utils.retrieval.evaluate_retrieval`): the query's positives are
    "relevant"; its junk images, and the query image itself when it is searched but not a positive, are "junk";
    anything else is "wrong".
    """
    ranks, db_index = _check_result(record, result)
    if not 0 <= query < len(record.queries):
        raise IndexError(f"Query {query} does not exist: {record.name!r} has queries 0 to {len(record.queries) - 1}.")
    if top < 1:
        raise ValueError(f"top must be at least 1; got {top}.")
    entry = record.queries[query]
    positives, junk = set(entry.positives), set(entry.junk)
    if entry.index in set(db_index.tolist()) and entry.index not in positives:
        junk.add(entry.index)
    distances = result.get("distances")
    items = []
    for position, column in enumerate(ranks[query, :top].tolist()):
        index = int(db_index[column])
        status = "relevant" if index in positives else "junk" if index in junk else "wrong"
        distance = None if distances is None else float(np.asarray(distances)[query, column])
        items.append(RankedItem(position + 1, index, record.paths[index], status, distance))
    return items


def _results_html(items: Sequence[RankedItem], ap: float | None) -> str:
    rows = "".join(
        f"<tr><td>#{item.rank}</td><td style='color:{STATUS_COLOURS[item.status]}'>{item.status}</td>"
        f"<td>{html.escape(item.path.name)}</td>"
        f"<td>{'' if item.distance is None else f'{item.distance:.3f}'}</td></tr>"
        for item in items
    )
    heading = "" if ap is None else f"<b>AP of this query: {ap:.3f}</b>"
    return (f"{heading}<table><tr><th>rank</th><th>status</th><th>image</th><th>distance</th></tr>{rows}</table>")


def retrieval_explorer(record: DatasetRecord, result: Mapping, *, query: int = 0, top: int = 5):
    """Pick a query, see its ``top`` ranked results framed green (relevant), red (wrong) or grey (junk).

    ``result`` is what :func:`course_utils.retrieval.run_retrieval` returned for ``record``. The gallery is
    :func:`course_utils.viz.retrieval_gallery` for the chosen query; a table below lists each result's status and
    distance, and the query's AP. Returns an ``ipywidgets.VBox`` whose ``query`` (Dropdown), ``gallery`` (Image) and
    ``table`` (HTML) attributes are its parts; ``explorer.ranked_for(q)`` is :func:`ranked_results` for query ``q``.
    For a folder of your own photos, which has no ground truth, use :func:`folder_explorer`.
    """
    import ipywidgets as widgets

    from .viz import retrieval_gallery

    ranked_results(record, result, query, top)  # validates everything before any widget exists
    aps = result.get("ap")
    labels = [
        f"{q}: {entry.name or Path(record.paths[entry.index]).stem}" + ("" if aps is None else f" (AP {aps[q]:.2f})")
        for q, entry in enumerate(record.queries)
    ]
    chooser = widgets.Dropdown(options=list(zip(labels, range(len(labels)), strict=True)), value=query,
                               description="query", layout=widgets.Layout(width="420px"))
    gallery = widgets.Image(format="png", layout=widgets.Layout(max_width="900px"))
    table = widgets.HTML()

    def show(_change: object = None) -> None:
        chosen = chooser.value
        gallery.value = figure_png(retrieval_gallery(record, result, top=top, queries=[chosen]))
        table.value = _results_html(ranked_results(record, result, chosen, top),
                                    None if aps is None else float(aps[chosen]))

    chooser.observe(show, names="value")
    show()
    explorer = widgets.VBox([chooser, gallery, table])
    explorer.query, explorer.gallery, explorer.table = chooser, gallery, table
    explorer.ranked_for = lambda q, n=top: ranked_results(record, result, q, n)
    return explorer


# ---------------------------------------------------------------------------------------------------------------
# Retrieval explorer on a folder of your own photos
# ---------------------------------------------------------------------------------------------------------------


def _matches_html(result, root: Path) -> str:  # noqa: ANN001 - a photo_search.SearchResult
    """The matches of ``result`` as an HTML table: rank, distance, and the photo's path relative to ``root``."""
    rows = "".join(
        f"<tr><td>#{match.rank}</td><td>{match.distance:.3f}</td>"
        f"<td>{html.escape(match.path.relative_to(root).as_posix())}</td></tr>"
        for match in result.matches
    )
    extra = f", re-ranking the global top {result.reranked}" if result.reranked else ""
    return (f"<b>{html.escape(result.query.name)}</b> ({result.method}{extra}; {result.seconds:.2f} s)"
            f"<table><tr><th>rank</th><th>distance</th><th>photo</th></tr>{rows}</table>")


def folder_explorer(
    folder: str | Path,
    *,
    queries: Sequence[str | Path] = (),
    query: int = 0,
    top: int = 5,
    method: str = "global",
    rerank: int | None = None,
    backbone: str | None = None,
    layer: str | None = None,
    engine: str = "auto",
    progress: bool = True,
):
    """Search a folder of your own photos: pick a query photo and a search method, see its ``top`` matches.

    Every image below ``folder`` is indexed once (:func:`course_utils.photo_search.build_index`: one global vector
    per photo, cached, unreadable images skipped); the query dropdown offers ``queries`` (images from anywhere,
    listed first) and then every indexed photo. ``method`` is the starting search: ``"global"`` (L2 between global
    vectors), or ``"spatial"`` / ``"jitter"``, which re-rank the global top ``rerank`` photos with the paper's
    distances (slower the first time: their patches are extracted, then cached). A photo's own file is left out of
    its results. The explorer computes its starting state while being built, so it runs unattended under nbval.

    Returns an ``ipywidgets.VBox`` whose ``query`` and ``method`` (Dropdowns), ``gallery`` (Image) and ``table``
    (HTML) attributes are its parts, ``index`` the :class:`~course_utils.photo_search.PhotoIndex` behind it, and
    ``matches_for(q, method)`` the pure function it shows (a :class:`~course_utils.photo_search.SearchResult`, for
    option number ``q`` of the query dropdown; remembered, so going back to a query costs nothing).
    """
    import ipywidgets as widgets

    from . import photo_search
    from .config import DEFAULT_BACKBONE

    if method not in photo_search.METHODS:
        raise ValueError(f"Unknown search method {method!r}; choose one of {photo_search.METHODS}.")
    index = photo_search.build_index(folder, backbone or DEFAULT_BACKBONE, layer, engine=engine, progress=progress)
    candidates = [Path(q).expanduser().absolute() for q in queries] + list(index.paths)
    labels = [f"outside: {p.name}" for p in candidates[: len(queries)]]
    labels += [p.relative_to(index.root).as_posix() for p in index.paths]
    if not 0 <= query < len(candidates):
        raise IndexError(f"Query {query} does not exist: the explorer offers queries 0 to {len(candidates) - 1} "
                         f"({len(queries)} given, then the {len(index)} indexed photos).")
    depth = photo_search.RERANK_DEPTH if rerank is None else int(rerank)
    remembered: dict[tuple[int, str], object] = {}

    def matches_for(q: int, how: str = method):
        if not 0 <= q < len(candidates):
            raise IndexError(f"Query {q} does not exist: the explorer offers queries 0 to {len(candidates) - 1}.")
        if (q, how) not in remembered:
            remembered[q, how] = index.search(candidates[q], top=top, method=how, rerank=depth, progress=progress)
        return remembered[q, how]

    chooser = widgets.Dropdown(options=list(zip(labels, range(len(labels)), strict=True)), value=query,
                               description="query", layout=widgets.Layout(width="420px"))
    how = widgets.Dropdown(options=list(photo_search.METHODS), value=method, description="search")
    gallery = widgets.Image(format="png", layout=widgets.Layout(max_width="900px"))
    table = widgets.HTML()

    def show(_change: object = None) -> None:
        result = matches_for(chooser.value, how.value)
        gallery.value = figure_png(photo_search.gallery_figure([result], index.root))
        table.value = _matches_html(result, index.root)

    chooser.observe(show, names="value")
    how.observe(show, names="value")
    show()
    explorer = widgets.VBox([widgets.HBox([chooser, how]), gallery, table])
    explorer.query, explorer.method, explorer.gallery, explorer.table = chooser, how, gallery, table
    explorer.index, explorer.matches_for = index, matches_for
    return explorer
