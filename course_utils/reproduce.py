"""``python -m course_utils reproduce``: the paper's tables, paper versus ours, for one or several backbones.

Profiles
--------
``demo``  (offline, minutes on a CPU) the embedded demo sets and the course's real subsets where this machine has them
          (the shared copy, else a download: ``data_scripts/download.py course``; missing ones are skipped): per
          dataset, CNN-SVM against CNNaug-SVM (classification, attributes) and global against jittered or spatial
          search (retrieval), the paper's two central claims. ``--dataset flowers102`` adds the paper's own Table 4
          benchmark (about 15-35 minutes of 16-view extraction on a 2-core CPU).
``full``  the paper's benchmarks (Tables 1-7) downloaded with ``data_scripts/download.py``; missing ones are
          reported with their download command and skipped. Meant for a GPU and paper-scale networks
          (``--backbones alexnet,vgg16,resnet50,...``).

A profile's datasets are those whose record names it (``datasets.specs.DatasetSpec.profiles``), its backbone
``config.PROFILES``. Everything else a block needs about a dataset (metric, the paper's name, C and best earlier
method, which search, where whitening is learned, how our copy differs) is read from the same record, and the
retrieval ablations' pooled layer from the backbone's (``backbones.BackboneSpec.last_conv``).

:func:`run` is the library function behind the command, ``demo`` and notebook 08: it takes the datasets,
backbones and options as arguments, writes the report files into ``out`` and returns the measured
:class:`~course_utils.report.ResultRecord` rows.

Rows (``method``) follow the paper's names: CNN-SVM (whole image, L2, linear SVM), CNNaug-SVM (16 views: every view
a training sample, test scores summed; our power exponent 0.5, with the paper's 2 and no power as extra rows), CNN
(one global vector), CNN-ss (search with several vectors per image: "CNN-ss (spatial search)" with square patches
for Oxford/Paris/Sculptures, "CNN-ss (16-view jitter)" with the classification views for Holidays/UKBench),
CNNaug-ss (CNN-ss + PCA-whitening learned on another dataset + signed power 2). Our additions
(R-MAC, GeM, query expansion, one-vs-one, C by cross-validation) are rows of their own.

``--views whole`` extracts the whole image only (one forward pass per image instead of 16): CNN-SVM and global
search rows without the augmented ones, for quick comparisons such as network size on Flowers-102.

Every finished (dataset, backbone) block is saved under ``OUT/blocks/`` and reused by a rerun, and features are
cached, so an interrupted run resumes. ``results.json`` records seeds, versions, layer, views, C and protocol.

Bad images never sink a run: an unreadable image is skipped, and the console, ``results.json``
(``meta.skipped_images``) and ``report.md`` all list it; a class left without a usable image counts as 0% in the
mean class accuracy, with a warning in the same three places (``meta.warnings``). A ``folder:`` dataset's split is
saved as ``OUT/splits/<dataset>/train.txt`` and ``test.txt``, one pair per dataset.

``--dataset retrieval-folder:PATH`` scores your own photo groups (one sub-folder per object or scene; see
:func:`course_utils.datasets.folder.retrieval_folder`): every grouped photo queries all the others, and the rows are
CNN, CNN-ss (16-view jitter) and CNN-ss (spatial search), each by mAP with the query left out and, when every group
holds 4 photos, also by UKBench's N-S score. Unreadable photos are left out and listed; CNNaug-ss is not run (its
PCA-whitening would have to be learned on another collection of photos like yours).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import cli, config, metrics
from .claims import claims_markdown
from .config import DEFAULT_SEED, set_seed
from .datasets import specs
from .datasets.images import printable, write_text_atomic
from .metrics import Metric
from .paper import paper_method
from .report import ResultRecord

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .datasets.base import DatasetRecord
    from .experiments import ClassificationOutcome
    from .features import FeatureSet
    from .retrieval import RetrievalOutcome

# The profiles' datasets, in the order they run: read from the records (kept as names for callers).
DEMO_DATASETS = specs.in_profile("demo")
FULL_DATASETS = specs.in_profile("full")
AUG_POWER = 0.5
CONSOLE_SKIPPED = 20  # unreadable images listed on the console (report.md and results.json list them all)
# Saved blocks of another version are recomputed: version 1 averaged class accuracy over readable classes only and
# kept no list of skipped images or warnings; version 2 called both searches "CNN-ss".
BLOCK_VERSION = 3
PAPER_AUG_POWER = 2.0
SOURCE_NAMES = {"shared": "shared copy", "downloaded": "downloaded copy", "embedded": "embedded demo set"}
SEARCH_LABELS = {"spatial": "spatial search", "jitter": "16-view jitter"}
SEARCH_VIEWS = {"spatial": "patches 30/14", "jitter": "paper16"}
C_NOTE = ("CNNaug-SVM uses a signed square root (power 0.5, the usual choice) before the final L2; the paper's "
          "exponent 2 and no power step are separate rows. C: the paper's value where it gives one (2 for Flowers, "
          "MIT-67, CUB; 0.2 for VOC, H3D, UIUC), else cross-validated on the training split only.")
VIEWS_META = {"whole": "whole image only",
              "paper16": "paper16 = whole, 4 corner + centre crops (2/3 x 2/3), rotations +/-10 deg, mirrors"}


def _spec(name: str) -> specs.DatasetSpec | None:
    """The record of dataset ``name``; ``None`` for a learner's ``folder:`` or ``retrieval-folder:`` set."""
    return specs.SPECS.get(name)


def _data_note(record: DatasetRecord) -> str:
    """Where the data came from and how it differs from the paper's benchmark, for the report's data column."""
    spec = _spec(record.name)
    notes = [SOURCE_NAMES.get(record.source, ""), spec.subset_note if spec else ""]
    if record.source == "shared" and spec:
        notes.append(spec.shared_copy_note)
    return "; ".join(note for note in notes if note)


def _task_group(record: DatasetRecord) -> str:
    """Which ``--tasks`` group runs ``record``: its spec's, else (a folder) its task's."""
    spec = _spec(record.name)
    if spec is not None:
        return spec.task_group
    return "retrieval" if record.task == "retrieval" else "classification"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``reproduce`` command."""
    parser.add_argument("--profile", choices=("demo", "full"), default="demo",
                        help="demo: embedded and course sets, offline, minutes on a CPU; full: the paper's benchmarks "
                             "(downloaded data, ideally a GPU)")
    parser.add_argument("--backbones", type=cli.backbone_list, default=None,
                        help="comma-separated backbones (default: the profile's)")
    parser.add_argument("--tasks", type=cli.task_list, default="all",
                        help="all, or a comma list of classification,attributes,retrieval")
    parser.add_argument("--dataset", type=cli.dataset_name, action="append", default=None,
                        help="run only this dataset (repeatable); also folder:PATH for your own class folders and "
                             "retrieval-folder:PATH for your own groups of photos")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default reproduce_results/<profile>)")
    parser.add_argument("--engine", type=cli.engine_name, default="auto",
                        help="inference engine: auto, torch, onnxruntime, onnxruntime-int8 (faster on a CPU, features differ slightly), compile (default auto)")
    parser.add_argument("--solver", default="liblinear", choices=("liblinear", "torch"), help="SVM solver")
    parser.add_argument("--layer-sweep", type=cli.dataset_name, default=None, metavar="DATASET",
                        help="also sweep every layer of the first backbone on DATASET (the paper's Figure 2a)")
    parser.add_argument("--views", choices=("paper16", "whole"), default="paper16",
                        help="paper16: the paper's 16 views (CNNaug rows); whole: whole image only, 16x cheaper")
    parser.add_argument("--no-ablations", action="store_true", help="main rows only (no power/OvO/QE/pooling rows)")
    parser.add_argument("--force", action="store_true", help="recompute blocks already saved in OUT/blocks")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"seed of splits, cross-validation and SVMs (default {DEFAULT_SEED})")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--runner", choices=("local", "ray"), default=None,
                        help="where features are extracted: this process (default) or a Ray Data job on the "
                             "cluster Ray finds (RAY_ADDRESS; docs/scale.md; needs the scale extra)")


@dataclass
class Block:
    """The rows, report sections and plots of one (dataset, backbone) pair, with what a reader must be warned of:
    ``skipped`` lists ``[path, reason]`` of every unreadable image, ``warnings`` one line per problem."""

    records: list[ResultRecord] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    dataset: str = ""
    skipped: list[list[str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({"version": BLOCK_VERSION, "records": [r.to_dict() for r in self.records],
                           "sections": self.sections, "plots": self.plots, "dataset": self.dataset,
                           "skipped": self.skipped, "warnings": self.warnings}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Block | None:
        """The saved block, or ``None`` when an older version saved it (it must be recomputed)."""
        payload = json.loads(text)
        if payload.get("version") != BLOCK_VERSION:
            return None
        return cls([ResultRecord(**r) for r in payload["records"]], payload["sections"], payload["plots"],
                   payload["dataset"], payload["skipped"], payload["warnings"])

    def warn(self, message: str) -> None:
        """Record ``message`` once and print it on the console."""
        if message not in self.warnings:
            self.warnings.append(message)
            print(f"  WARNING: {printable(message)}", flush=True)

    def skip(self, skipped: Sequence[tuple[object, object]], what: str) -> None:
        """Keep the unreadable images ``skipped`` (path, reason) and list them on the console after ``what``."""
        self.skipped = [[str(path), str(why)] for path, why in skipped]
        if not self.skipped:
            return
        print(f"  {len(self.skipped)} unreadable image(s) {what}:", flush=True)
        for path, why in self.skipped[:CONSOLE_SKIPPED]:
            print(f"    {printable(path)}: {printable(why)}", flush=True)
        if len(self.skipped) > CONSOLE_SKIPPED:
            print(f"    ... and {len(self.skipped) - CONSOLE_SKIPPED} more (all listed in report.md and "
                  "results.json)", flush=True)


@dataclass
class Options:
    """How every block of a run computes: where files go, the engine, solver and seed, which rows."""

    out: Path
    engine: str = "auto"
    solver: str = "liblinear"
    ablations: bool = True
    progress: bool = True
    seed: int = DEFAULT_SEED
    views: str = "paper16"  # "whole": whole image only, no augmented rows


def _paper_value(dataset: str, method: str, metric: Metric) -> float | None:
    """The paper's number for ``method`` on ``dataset`` in ``metric``'s units (its column for a course subset)."""
    from . import paper

    entry = (spec := _spec(dataset)) and spec.paper
    value = paper.lookup(entry.name, method, entry.metric) if entry else None
    return None if value is None else value / metric.points_per_unit


def _best_prior(dataset: str, metric: Metric) -> tuple[float | None, str]:
    """The paper's best earlier method on ``dataset`` (value in ``metric``'s units, and its name), or ``(None, "")``."""
    from . import paper

    entry = (spec := _spec(dataset)) and spec.paper
    row = paper.best_prior(entry.name, entry.metric) if entry else None
    return (None, "") if row is None else (row.value / metric.points_per_unit, row.method)


def _dataset_note(record: DatasetRecord, metric: Metric) -> str:
    """One Markdown line: the paper's table and best earlier method for this dataset, and how our data differs."""
    value, method = _best_prior(record.name, metric)
    parts = []
    if value is not None:
        parts.append(f"best method before the paper ({record.paper_table or 'the paper'}): {method}, "
                     f"{metric.format(value)}")
    if data := _data_note(record):
        parts.append(data)
    parts.append(f"protocol: {record.protocol}" if record.protocol else "")
    return f"**{record.name}**: " + "; ".join(p for p in parts if p) + "."


def _train_splits(record: DatasetRecord) -> tuple[str, ...]:
    """The splits a classifier trains on: train and val where the dataset has a val split."""
    return ("train", "val") if "val" in set(record.split.tolist()) else ("train",)


@dataclass
class _ClassificationRows:
    """Adds CNN-SVM-style rows of one (dataset, backbone) block: trains, scores, records and prints each."""

    record: DatasetRecord
    backbone: str
    opts: Options
    block: Block
    feats: FeatureSet
    main_c: float | str

    def row(self, method: str, use: str, power: float | None, *, C: float | str | None = None,
            test_views: str | None = None, multiclass: str = "ovr", paper: bool = True) -> ClassificationOutcome:
        """Train and score one row (``use``: the training views, "whole" or "all"); ``paper``: a main row of the
        paper's, shown beside its published number."""
        from . import experiments

        started = time.time()
        outcome = experiments.classify(
            self.record, self.feats.X, use_views=use, use_test_views=test_views, power=power,
            C=self.main_c if C is None else C, multiclass=multiclass, solver=self.opts.solver,
            train_splits=_train_splits(self.record), valid=self.feats.valid, seed=self.opts.seed,
        )
        metric = metrics.metric_labelled(outcome.metric)
        self.block.records.append(ResultRecord(
            self.record.name, self.record.task, method, self.backbone, metric.label,
            round(outcome.value, metric.decimals + 1),
            paper=_paper_value(self.record.name, method.split(" ")[0], metric) if paper else None,
            best_prior=_best_prior(self.record.name, metric)[0] if paper else None,
            layer=self.feats.layer, views=_views_label(use, test_views),
            settings=dict(outcome.settings, seconds=round(time.time() - started, 1)), protocol=self.record.protocol,
            data=_data_note(self.record),
        ))
        print(f"  {method:<40} {outcome.metric}: {outcome.value:6.2f}  (C={outcome.C:g})", flush=True)
        for warning in outcome.warnings:
            self.block.warn(warning)
        return outcome


def _views_label(use: str, test_views: str | None) -> str:
    """The ``views`` column of a classification row."""
    if use == "whole":
        return "whole"
    return "paper16" + ("" if test_views is None else f" (test: {test_views})")


def classification_block(record: DatasetRecord, backbone: str, opts: Options) -> Block:
    """CNN-SVM and CNNaug-SVM (and ablations) on a classification or attribute dataset."""
    from . import experiments

    block = Block(dataset=record.name)
    feats = experiments.dataset_features(record, backbone, views=opts.views, engine=opts.engine,
                                         progress=opts.progress)
    block.skip(feats.skipped, "skipped (left out of training and test)")
    entry = (spec := _spec(record.name)) and spec.paper
    rows = _ClassificationRows(record, backbone, opts, block, feats,
                               entry.C if entry and entry.C is not None else "cv")
    plain = rows.row("CNN-SVM", "whole", None)
    best, best_name = plain, "CNN-SVM"
    if opts.views == "paper16":
        best, best_name = rows.row("CNNaug-SVM", "all", AUG_POWER), "CNNaug-SVM"
    if opts.ablations:
        _classification_ablations(rows)
    block.sections.append(_dataset_note(record, metrics.metric_labelled(plain.metric)))
    if plain.y_pred is not None:
        _classification_figures(record, backbone, opts, block, best, best_name)
    block.sections += _problem_sections(block, f"{record.name}, {backbone}")
    return block


def _classification_ablations(rows: _ClassificationRows) -> None:
    """Our extra rows: the paper's power exponent and none, whole-image test, C by cross-validation, one-vs-one."""
    augmented = rows.opts.views == "paper16"
    if augmented:
        rows.row("CNNaug-SVM power=2 (paper's exponent)", "all", PAPER_AUG_POWER, paper=False)
        rows.row("CNNaug-SVM power=1 (no power step)", "all", None, paper=False)
        rows.row("CNNaug-SVM, whole image at test", "all", AUG_POWER, test_views="whole", paper=False)
    if rows.main_c != "cv":
        rows.row("CNN-SVM, C by cross-validation", "whole", None, C="cv", paper=False)
    if rows.record.task == "multiclass":
        rows.row("CNN-SVM one-vs-one (paper's choice)", "whole", None, multiclass="ovo", paper=False)
        if augmented:
            rows.row("CNNaug-SVM one-vs-one (paper's choice)", "all", AUG_POWER, multiclass="ovo", paper=False)


def _classification_figures(record: DatasetRecord, backbone: str, opts: Options, block: Block,
                            best: ClassificationOutcome, best_name: str) -> None:
    """Per-class bars, confusion matrix, most confused pairs and worst classes of the best main row."""
    from . import experiments, viz

    path = opts.out / f"{record.name}_{backbone}_per_class.png"
    reference = _paper_value(record.name, best_name, metrics.metric_labelled(best.metric))
    viz.plot_per_class(best.per_class, [record.class_names[c] for c in best.classes], reference,
                       f"paper {best_name}").savefig(path, dpi=90)
    block.plots.append(path.name)
    confusion = opts.out / f"{record.name}_{backbone}_confusion.png"
    viz.plot_confusion(best.y_true, best.y_pred, record.class_names).savefig(confusion, dpi=80)
    block.plots.append(confusion.name)
    pairs = experiments.confusion_pairs(best, record.class_names)
    if pairs:
        gallery = opts.out / f"{record.name}_{backbone}_confused_pairs.png"
        _save_and_close(viz.show_confused_pairs(record, best, top=4), gallery)
        block.plots.append(gallery.name)
        block.sections.append(f"**{record.name}, {backbone}: most confused pairs ({best_name})**: " + "; ".join(
            f"{t} taken for {p} ({n}x)" for t, p, n in pairs))
    worst = np.argsort(best.per_class, kind="stable")[:5]
    block.sections.append(f"**{record.name}, {backbone}: worst classes ({best_name})**: " + ", ".join(
        f"{record.class_names[best.classes[i]]} {best.per_class[i]:.0f}%" for i in worst))


def _problem_sections(block: Block, title: str) -> list[str]:
    """Report sections listing ``block``'s unreadable images (every one, under the dataset's name so that several
    backbones list them once) and its warnings (under ``title``)."""
    sections = [f"**{title}: warning**: {warning}." for warning in block.warnings]
    if block.skipped:
        sections.insert(0, f"**{block.dataset}**: {len(block.skipped)} unreadable image(s) skipped (left out of "
                        "training and test; also in results.json, meta.skipped_images):\n"
                        + "\n".join(f"- `{path}`: {why}" for path, why in block.skipped))
    return sections


@dataclass
class _RetrievalRows:
    """Adds search rows of one (dataset, backbone) block: records and prints each outcome."""

    record: DatasetRecord
    backbone: str
    opts: Options
    block: Block

    def search(self, method: str = "global", **options: Any) -> RetrievalOutcome:
        """``retrieval.run_retrieval`` on this block's dataset and backbone with its engine and progress bars."""
        from .retrieval import run_retrieval

        extract = {"progress": self.opts.progress, "engine": self.opts.engine}
        return run_retrieval(self.record, self.backbone, method, extract_options=extract, **options)

    def add(self, method: str, outcome: RetrievalOutcome, views: str, settings: dict[str, Any],
            paper: bool = True) -> None:
        """One row for ``outcome`` (mAP, or UKBench's N-S score), plus an N-S row for a folder of groups of 4."""
        metric = metrics.RETRIEVAL_MAP if outcome.ns_score is None else metrics.NS_SCORE
        value = 100 * float(outcome.map) if outcome.ns_score is None else float(outcome.ns_score)
        # the revisited protocol's mean precision at 1, 5, 10 (percent), and queries it skips for want of positives
        precision = {f"mP@{k}": round(100 * v, 2) for k, v in outcome.precision_at.items()}
        settings = dict(settings, **precision)
        if outcome.n_empty_queries:
            settings["queries_without_positives"] = outcome.n_empty_queries
        settings["seconds"] = round(sum(outcome.seconds.values()), 1)
        name = self.record.name
        self.block.records.append(ResultRecord(
            name, "retrieval", method, self.backbone, metric.label, round(value, metric.decimals + 1),
            paper=_paper_value(name, paper_method(method), metric) if paper else None, layer=outcome.layer,
            views=views, best_prior=_best_prior(name, metric)[0] if paper else None, settings=settings,
            protocol=self.record.protocol, data=_data_note(self.record),
        ))
        shown = "".join(f"  {label} {v:6.2f}" for label, v in precision.items())
        print(f"  {method:<40} {metric.label}: {value:6.3f}{shown}", flush=True)
        if (ns := _folder_ns_score(self.record, outcome)) is not None:
            self.block.records.append(ResultRecord(
                name, "retrieval", method, self.backbone, metrics.NS_SCORE.label, round(ns, 3), layer=outcome.layer,
                views=views, settings=self.block.records[-1].settings, protocol=self.record.protocol,
                data=_data_note(self.record)))
            print(f"  {method:<40} {metrics.NS_SCORE.label}: {ns:6.3f}", flush=True)


def retrieval_block(record: DatasetRecord, backbone: str, opts: Options) -> Block:
    """CNN (global), CNN-ss (spatial or jittered) and CNNaug-ss (+ PCA-whitening + power), and our extras."""
    from .datasets.folder import RETRIEVAL_PREFIX

    block = Block(dataset=record.name)
    folder = record.name.startswith(RETRIEVAL_PREFIX)
    if folder:
        record = _readable_folder(record, backbone, opts, block)
    rows = _RetrievalRows(record, backbone, opts, block)
    rows.add("CNN", rows.search("global"), "whole", {"distance": "L2"})
    block.sections.append(_dataset_note(record, metrics.metric_labelled(block.records[0].metric)))
    spec = _spec(record.name)
    search = None if opts.views == "whole" else (spec.search if spec and spec.search else "jitter")
    if search is not None:  # with whole images only, there are no views to search: global rows only
        _search_rows(rows, search)
    if search is not None and folder:  # which search suits a learner's photos is not known: both are main rows
        rows.add("CNN-ss (spatial search)", rows.search("spatial"), SEARCH_VIEWS["spatial"],
                 {"search": "spatial", "distance": "mean over query patches of min L2"}, paper=False)
        block.sections.append(f"**{record.name}**: CNNaug-ss not run: its PCA-whitening must be learned on another "
                              "collection of photos like these, never on the searched ones (docs/retrieval.md).")
    elif opts.ablations and search is not None and spec and spec.extra_search:
        rows.add(f"CNN-ss, {SEARCH_LABELS[spec.extra_search]} (Oxford-style)", rows.search(spec.extra_search),
                 SEARCH_VIEWS[spec.extra_search], {"search": spec.extra_search}, paper=False)
    if opts.ablations:
        _retrieval_ablations(rows)
    return block


def _retrieval_ablations(rows: _RetrievalRows) -> None:
    """Our extra rows: R-MAC and GeM pooling of the backbone's last convolutional map, and query expansion."""
    from . import backbones
    from .retrieval import QueryExpansion

    conv = backbones.spec(rows.backbone).last_conv
    if conv is not None:
        for pooling in ("rmac", "gem"):
            rows.add(f"CNN {pooling.upper() if pooling == 'rmac' else 'GeM'} (ours)",
                     rows.search("global", layer=f"{conv}@{pooling}"), "whole", {"pooling": pooling}, paper=False)
    for qe in (QueryExpansion(k=3, alpha=0.0), QueryExpansion(k=3, alpha=3.0)):
        rows.add(f"CNN + {qe.name} (ours)", rows.search("global", qe=qe), "whole", {"query_expansion": qe.name},
                 paper=False)


def _readable_folder(record: DatasetRecord, backbone: str, opts: Options, block: Block) -> DatasetRecord:
    """``record`` (a retrieval folder) without its unreadable images, which go to ``block.skipped`` and the report.

    Their whole-image features are the global row's, so when every image is readable that row reads them back."""
    from . import features
    from .datasets.folder import retrieval_folder

    found = features.extract(record.paths, backbone, views="whole", engine=opts.engine, on_error="skip",
                             progress=opts.progress)
    if not found.skipped:
        return record
    block.skip(found.skipped, "left out of the search")
    block.sections.append(f"**{record.name}**: {len(block.skipped)} unreadable image(s) left out of the search "
                          "(also in results.json, meta.skipped_images):\n"
                          + "\n".join(f"- `{path}`: {why}" for path, why in block.skipped))
    readable = retrieval_folder(record.root, exclude=[path for path, _ in block.skipped])

    def groups(rec: DatasetRecord) -> set[str]:
        return {query.name.split("/", 1)[0] for query in rec.queries}

    for group in sorted(groups(record) - groups(readable)):
        block.warn(f"group {group!r} has a single readable photo left: it is searched as a distractor, not a query")
    block.sections += [f"**{record.name}: warning**: {warning}." for warning in block.warnings]
    return readable


def _folder_ns_score(record: DatasetRecord, outcome: RetrievalOutcome) -> float | None:
    """UKBench's N-S score of a retrieval folder whose groups all hold 4 photos (``None`` for any other record): the
    mean number of the query's group among its top 4, the query counted as UKBench counts it (its mAP leaves the
    query out)."""
    from .datasets.folder import ns_groups
    from .metrics import ukbench_score

    if not ns_groups(record):
        return None
    ranked = np.asarray(outcome.db_index)[np.asarray(outcome.ranks)]
    return float(np.mean([ukbench_score(row.tolist(), [query.index, *query.positives])
                          for query, row in zip(record.queries, ranked, strict=True)]))


def _search_rows(rows: _RetrievalRows, search: str) -> None:
    """CNN-ss (spatial or jittered search) and CNNaug-ss (+ PCA-whitening learned elsewhere + power)."""
    from . import datasets
    from .retrieval import RetrievalPostprocessor

    record, views, label = rows.record, SEARCH_VIEWS[search], f"({SEARCH_LABELS[search]})"
    rows.add(f"CNN-ss {label}", rows.search(search), views,
             {"search": search, "distance": "mean over query views of min L2"})
    source = (spec := _spec(record.name)) and spec.whitening_source
    if not source:
        return
    try:
        fit_record = datasets.load(source)
    except FileNotFoundError as err:
        rows.block.sections.append(f"**{record.name}**: CNNaug-ss skipped: its whitening set is missing ({err}).")
        return
    post = RetrievalPostprocessor(pca_dim=500, power=PAPER_AUG_POWER)
    outcome = rows.search(search, postprocess=post, fit_record=fit_record)
    rows.add(f"CNNaug-ss {label}", outcome, views, {"search": search, "pca_dim": int(post.n_components_),
                                                    "power": PAPER_AUG_POWER, "whitening_learned_on": source})


def layer_sweep_block(record: DatasetRecord, backbone: str, opts: Options) -> tuple[Block, Path]:
    """The paper's Figure 2a on ``record``: CNN-SVM on every layer of ``backbone``, extracted in one pass."""
    from . import backbones, experiments, features, viz

    layers = list(backbones.spec(backbone).layers)
    layers = [name for name in layers if name != "logits"] + ["logits"]
    feature_set = features.extract(record.paths, backbone, layers, views="whole", engine=opts.engine,
                                   on_error="skip", progress=opts.progress)
    block = Block(dataset=record.name, skipped=[[str(path), str(why)] for path, why in feature_set.skipped])
    values = []
    for layer in layers:
        outcome = experiments.classify(record, feature_set[layer], use_views="whole", C="cv", solver=opts.solver,
                                       train_splits=_train_splits(record), valid=feature_set.valid, seed=opts.seed)
        values.append(outcome.value)
        for warning in outcome.warnings:
            block.warn(warning)
        block.records.append(ResultRecord(record.name, record.task, f"CNN-SVM layer {layer}", backbone,
                                          outcome.metric, round(outcome.value, 2), layer=layer, views="whole",
                                          settings=outcome.settings, protocol=record.protocol))
        print(f"  layer {layer:<10} {outcome.metric}: {outcome.value:6.2f}", flush=True)
    paper_curve = [((i - 3) / 21, v * 100) for i, v in PAPER_FIG2A]
    fig = viz.plot_layer_sweep(layers, values, values and block.records[0].metric,
                               f"{record.name}, {backbone}: CNN-SVM per layer (the paper's Figure 2a)", paper_curve)
    path = opts.out / f"layer_sweep_{record.name}_{backbone}.png"
    fig.savefig(path, dpi=100)
    block.plots.append(path.name)
    return block, path


# The paper's Figure 2a (VOC07 mAP against OverFeat layer index), read off the plot (docs/paper.md section 6).
PAPER_FIG2A = [(3, .346), (4, .340), (5, .451), (6, .466), (7, .466), (8, .459), (9, .546), (10, .546), (11, .535),
               (12, .596), (13, .596), (14, .593), (15, .651), (16, .651), (17, .647), (18, .693), (19, .716),
               (20, .736), (21, .739), (22, .742), (23, .748), (24, .746)]


def _block_cache(name: str, backbone: str, opts: Options) -> Path:
    """Where the block of (``name``, ``backbone``) is saved, so that a rerun reuses it."""
    suffix = "" if opts.views == "paper16" else f"__{opts.views}"
    return opts.out / "blocks" / f"{_file_key(name)}__{backbone}{suffix}.json"


def _file_key(name: str) -> str:
    """``name`` as a file name: a folder set's path separators and colon become underscores."""
    return name.replace("/", "_").replace(":", "_")


def _saved_block(cache: Path, name: str, backbone: str) -> Block | None:
    """The block saved at ``cache`` by this version of the course, announced; ``None`` to compute it."""
    if not cache.is_file():
        return None
    saved = Block.from_json(cache.read_text())
    if saved is not None:
        print(f"== {name} / {backbone}: reusing {cache}")
        return saved
    print(f"== {name} / {backbone}: {cache} was saved by an older version of the course; recomputing")
    return None


@dataclass
class Collected:
    """Everything a run's blocks produced, merged for ``results.json`` and ``report.md``."""

    out: Path
    records: list[ResultRecord] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)
    skipped: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add(self, block: Block, backbone: str) -> None:
        """Add ``block``'s rows, sections (each once), plots, unreadable images (once per dataset) and warnings."""
        self.records += block.records
        self.sections += [section for section in block.sections if section not in self.sections]
        self.plots += [self.out / p for p in block.plots]
        known = self.skipped.setdefault(block.dataset, [])
        seen = {item["path"] for item in known}
        known += [{"path": path, "reason": why} for path, why in block.skipped if path not in seen]
        self.warnings += [f"{block.dataset}, {backbone}: {warning}" for warning in block.warnings]


@dataclass(frozen=True)
class RunInfo:
    """What a finished run's report states besides its rows: profile, datasets, backbones, options, start time."""

    profile: str
    names: list[str]
    backbones: list[str]
    opts: Options
    started: float
    what: str  # "profile demo", or the datasets asked for by name


BlockFunction = Callable[["DatasetRecord", str, Options], Block]


@dataclass(frozen=True)
class Recipe:
    """What :func:`run` computes on each dataset and how it reports: the paper's tables (:data:`PAPER`, the
    ``reproduce`` command) or another command's rows (``demo.DEMO``).

    ``classification`` and ``retrieval`` make the block of one (dataset, backbone) pair; ``report`` writes the
    report files and prints the summary; ``reuse_blocks`` saves each block under ``out/blocks`` for a rerun to
    reuse; ``note_missing`` adds a report section for each dataset whose data are not on this machine.
    """

    classification: BlockFunction
    retrieval: BlockFunction
    report: Callable[[Collected, RunInfo], None]
    reuse_blocks: bool = True
    note_missing: bool = True


def _run_block(name: str, backbone: str, opts: Options, tasks: set[str], force: bool, recipe: Recipe) -> Block | None:
    """The block of (``name``, ``backbone``): saved, computed, or a "data missing" note; ``None`` when ``tasks``
    leave the dataset out (or its data are missing and ``recipe`` notes nothing)."""
    from . import datasets

    cache = _block_cache(name, backbone, opts)
    if recipe.reuse_blocks and not force and (saved := _saved_block(cache, name, backbone)) is not None:
        return saved
    record = datasets.load_if_present(name)  # the course's one rule: shared copy, else download; one line says which
    if record is None:
        return Block(sections=[f"**{name}**: not run, data missing. {datasets.specs.missing_error(name)}"],
                     dataset=name) if recipe.note_missing else None
    if "all" not in tasks and _task_group(record) not in tasks:
        return None
    print(f"== {name} / {backbone} ({record.task}, {len(record)} images)", flush=True)
    if name.startswith("folder:"):  # one pair of split files per dataset: two folders may share a name
        from .datasets.folder import write_split

        written = write_split(record, opts.out / "splits" / _file_key(name))
        print(f"  split saved as {printable(str(written['train'].parent))}/{{train,test}}.txt (copy both into the "
              "folder to freeze it)", flush=True)
    block = (recipe.retrieval if record.task == "retrieval" else recipe.classification)(record, backbone, opts)
    if recipe.reuse_blocks:
        write_text_atomic(cache, block.to_json())
    return block


def _as_list(value: str | Sequence[str]) -> list[str]:
    """A comma-separated string or a sequence of names, as a list."""
    return value.split(",") if isinstance(value, str) else list(value)


def run(
    datasets: Sequence[str] | None = None,
    backbones: str | Sequence[str] | None = None,
    *,
    out: str | Path,
    profile: str = "demo",
    tasks: str | Sequence[str] = "all",
    views: str = "paper16",
    engine: str = "auto",
    solver: str = "liblinear",
    ablations: bool = True,
    progress: bool = True,
    seed: int = DEFAULT_SEED,
    force: bool = False,
    layer_sweep: str | None = None,
    recipe: Recipe | None = None,
) -> list[ResultRecord]:
    """Run every (dataset, backbone) block, write ``results.json``, ``report.md`` and plots into ``out``, and return
    the rows.

    ``datasets`` are names (``folder:PATH`` and ``retrieval-folder:PATH`` too; default: ``profile``'s, read from
    the dataset records), ``backbones`` registry names (default: ``profile``'s). ``tasks`` is ``"all"`` or some of
    classification, attributes, retrieval; ``views`` ``"paper16"`` or ``"whole"`` (no augmented rows);
    ``ablations=False`` keeps the main rows only; ``force`` recomputes blocks saved in ``out/blocks``;
    ``layer_sweep`` names a dataset on which every layer of the first backbone is also scored (Figure 2a);
    ``recipe`` says which rows each block computes and how the report reads (default :data:`PAPER`).
    Raises ``RuntimeError`` when no dataset ran (missing data, or none with a task among ``tasks``).
    """
    set_seed(seed)
    started = time.time()
    names = cli.check_datasets(datasets or specs.in_profile(profile))
    backbone_names = _as_list(backbones or config.profile(profile).backbone)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    opts = Options(out, engine, solver, ablations, progress, seed, views)
    recipe = recipe or PAPER
    sweep_record = _sweep_record(layer_sweep) if layer_sweep else None  # a missing set stops the run before any work
    collected = _run_blocks(names, backbone_names, opts, tasks, force, recipe)
    if sweep_record is not None:
        _add_layer_sweep(collected, sweep_record, backbone_names[0], opts)
    what = ", ".join(names) if datasets else f"profile {profile}"
    recipe.report(collected, RunInfo(profile, names, backbone_names, opts, started, what))
    return collected.records


def _run_blocks(names: list[str], backbone_names: list[str], opts: Options, tasks: str | Sequence[str],
                force: bool, recipe: Recipe) -> Collected:
    """Every (dataset, backbone) block; ``RuntimeError`` when no dataset ran."""
    collected = Collected(opts.out)
    for name in names:
        for backbone in backbone_names:
            block = _run_block(name, backbone, opts, set(_as_list(tasks)), force, recipe)
            if block is not None:
                collected.add(block, backbone)
    if not collected.records:
        reasons = "; ".join(section for section in collected.sections if "not run" in section)
        raise RuntimeError(f"no dataset ran (tasks: {','.join(_as_list(tasks))}; datasets: {', '.join(names)})"
                           + (f": {reasons}" if reasons else ": none of them has a task among --tasks"))
    return collected


def _add_layer_sweep(collected: Collected, record: DatasetRecord, backbone: str, opts: Options) -> None:
    """The layer sweep's rows, plot, unreadable images and warnings."""
    block, path = layer_sweep_block(record, backbone, opts)
    collected.records += block.records
    collected.add(Block(dataset=block.dataset, skipped=block.skipped, warnings=block.warnings), backbone)
    collected.plots.append(path)
    collected.sections += _problem_sections(block, f"{block.dataset}, layer sweep ({backbone})")


def _sweep_record(name: str) -> DatasetRecord:
    """The layer sweep's dataset, by the course's rule (a ``DatasetMissingError`` saying how to get it)."""
    from . import datasets

    return datasets.load(name)


def _paper_report(collected: Collected, info: RunInfo) -> None:
    """The paper-versus-ours report: the claims first, then the note on C and power, then the blocks' sections,
    and the network-size plots when several backbones ran; the table, unreadable images and warnings printed."""
    from . import report

    if len(info.backbones) > 1:
        collected.plots += _size_plot(collected.records, collected.out)
    meta = report.environment_info(seed=info.opts.seed)
    meta.update({"profile": info.profile, "backbones": info.backbones, "datasets": info.names,
                 "engine": info.opts.engine, "solver": info.opts.solver, "aug_power": AUG_POWER,
                 "seconds": round(time.time() - info.started, 1), "views": VIEWS_META[info.opts.views],
                 "skipped_images": {dataset: items for dataset, items in collected.skipped.items() if items},
                 "warnings": collected.warnings})
    claims = claims_markdown(collected.records, AUG_POWER)
    sections = [*([claims] if claims else []), C_NOTE, *collected.sections]
    paths = report.write_report(collected.records, collected.out, meta=meta, sections=sections,
                                plots=collected.plots, title=f"Reproducing CNN Features off-the-shelf ({info.what})")
    print()
    print(report.format_table(collected.records))
    for dataset, items in meta["skipped_images"].items():
        print(f"\n{dataset}: {len(items)} unreadable image(s) skipped (listed in report.md and results.json)")
    if collected.warnings:
        print("\nWarnings:\n" + "\n".join(f"  {printable(w)}" for w in collected.warnings))
    print(f"\nDone in {time.time() - info.started:.0f} s. Report: {paths['markdown']}  Results: {paths['json']}")


PAPER = Recipe(classification_block, retrieval_block, _paper_report)


def command(args: argparse.Namespace) -> int:
    """The ``reproduce`` command: :func:`run` with the command line's options (output folder by default
    ``reproduce_results/<profile or datasets>``)."""
    if args.runner:
        os.environ["COURSE_RUNNER"] = args.runner  # read by features.extract, for every extraction of the run
    out = args.out or Path("reproduce_results") / (args.profile if not args.dataset else "_".join(
        _file_key(n) for n in args.dataset)[:80])
    run(args.dataset, args.backbones, out=out, profile=args.profile, tasks=args.tasks, views=args.views,
        engine=args.engine, solver=args.solver, ablations=not args.no_ablations, progress=not args.no_progress,
        seed=args.seed, force=args.force, layer_sweep=args.layer_sweep)
    return 0


def _save_and_close(figure: Figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    figure.savefig(path, dpi=80)
    plt.close(figure)


def _size_plot(records: list[ResultRecord], out: Path) -> list[Path]:
    """Accuracy against network (backbone) for each dataset and main method that ran with several backbones."""
    from . import viz

    paths = []
    for dataset in sorted({r.dataset for r in records}):
        for method in ("CNN-SVM", "CNNaug-SVM"):
            rows = [r for r in records if r.dataset == dataset and r.method == method]
            if len(rows) > 1:
                fig = viz.plot_bars([r.backbone for r in rows], [r.value for r in rows], rows[0].metric,
                                    f"{dataset}, {method}: accuracy against network", rows[0].paper, "paper")
                path = out / f"{dataset}_{method}_by_backbone.png"
                fig.savefig(path, dpi=90)
                paths.append(path)
    return paths
