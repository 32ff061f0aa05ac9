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
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import cli
from .config import DEFAULT_BACKBONE, DEFAULT_SEED, set_seed
from .datasets.images import printable, write_text_atomic
from .paper import paper_method
from .report import ResultRecord

DEMO_DATASETS = ("demo_classes", "demo_faces", "demo_retrieval", "flowers17", "dtd10", "ukbench2000")
FULL_DATASETS = ("voc2007", "mit67", "cub200", "flowers102", "uiuc_apascal", "h3d", "oxford5k", "paris6k",
                 "sculptures6k", "holidays", "ukbench")
SPATIAL_SETS = {"oxford5k", "paris6k", "roxford5k", "rparis6k", "sculptures6k"}
# Small Holidays-style sets where the other search (spatial patches) is also shown, as an extra row.
EXTRA_SPATIAL = {"demo_retrieval"}
# Where CNNaug-ss learns its PCA-whitening: another dataset, never the searched one (docs/paper.md section 8).
WHITENING_SOURCE = {"oxford5k": "paris6k", "paris6k": "oxford5k", "roxford5k": "rparis6k", "rparis6k": "roxford5k",
                    "sculptures6k": "oxford5k", "holidays": "oxford5k", "ukbench": "holidays",
                    "ukbench2000": "dtd10", "demo_retrieval": "demo_classes"}
# Which layer of each backbone R-MAC and GeM pool (its last convolutional map).
LAST_CONV = {"efficientnet_lite0": "head", "efficientnet_lite1": "head", "efficientnet_lite2": "head",
             "alexnet": "conv5", "vgg16": "conv5", "resnet50": "layer4", "convnext_tiny": "stage4"}
AUG_POWER = 0.5
CONSOLE_SKIPPED = 20  # unreadable images listed on the console (report.md and results.json list them all)
# Saved blocks of another version are recomputed: version 1 averaged class accuracy over readable classes only and
# kept no list of skipped images or warnings; version 2 called both searches "CNN-ss".
BLOCK_VERSION = 3
PAPER_AUG_POWER = 2.0
SUBSET_NOTES = {
    "ukbench2000": "paper column: the full UKBench (10,200 images); this subset (2,000) scores higher",
}
# How a shared copy differs from the downloaded original (a download has the full-size images).
SHARED_COPY_NOTES = {
    "flowers102": "downscaled to 256 px: about 1.5 points below the full-size images",
}
SOURCE_NAMES = {"shared": "shared copy", "downloaded": "downloaded copy", "embedded": "embedded demo set"}
SEARCH_LABELS = {"spatial": "spatial search", "jitter": "16-view jitter"}


def _data_note(record) -> str:  # noqa: ANN001 - DatasetRecord
    """Where the data came from and how it differs from the paper's benchmark, for the report's data column."""
    notes = [SOURCE_NAMES.get(record.source, ""), SUBSET_NOTES.get(record.name, "")]
    if record.source == "shared":
        notes.append(SHARED_COPY_NOTES.get(record.name, ""))
    return "; ".join(note for note in notes if note)


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


@dataclass
class Options:
    out: Path
    engine: str = "auto"
    solver: str = "liblinear"
    ablations: bool = True
    progress: bool = True
    seed: int = DEFAULT_SEED
    views: str = "paper16"  # "whole": whole image only, no augmented rows


def _paper_key(dataset: str, metric: str) -> tuple[str, str | None]:
    """The paper's name for ``dataset`` and the paper metric that matches ours (``None``: its only one)."""
    name = "ukbench" if dataset == "ukbench2000" else dataset
    return name, "mAUC" if name == "uiuc_apascal" and "AUC" in metric else None


def _in_our_units(name: str, value: float) -> float:
    """A paper number in our units: Table 7's UKBench percentages become N-S scores."""
    from . import paper

    return paper.ukbench_percent_to_ns(value) if name == "ukbench" else value


def _paper_value(dataset: str, method: str, metric: str) -> float | None:
    from . import paper

    name, paper_metric = _paper_key(dataset, metric)
    value = paper.lookup(name, method, paper_metric)
    return None if value is None else _in_our_units(name, value)


def _best_prior(dataset: str, metric: str) -> tuple[float | None, str]:
    """The paper's best earlier method on ``dataset`` (value in our units, and its name), or ``(None, "")``."""
    from . import paper

    name, paper_metric = _paper_key(dataset, metric)
    row = paper.best_prior(name, paper_metric)
    return (None, "") if row is None else (_in_our_units(name, row.value), row.method)


def _dataset_note(record, metric: str) -> str:  # noqa: ANN001 - DatasetRecord
    """One Markdown line: the paper's table and best earlier method for this dataset, and how our data differs."""
    value, method = _best_prior(record.name, metric)
    parts = []
    if value is not None:
        shown = f"{value:.2f}" if "N-S" in metric else f"{value:.1f}"
        parts.append(f"best method before the paper ({record.paper_table or 'the paper'}): {method}, {shown}")
    if data := _data_note(record):
        parts.append(data)
    parts.append(f"protocol: {record.protocol}" if record.protocol else "")
    return f"**{record.name}**: " + "; ".join(p for p in parts if p) + "."


def classification_block(record, backbone: str, opts: Options) -> Block:  # noqa: ANN001 - DatasetRecord
    """CNN-SVM and CNNaug-SVM (and ablations) on a classification or attribute dataset."""
    from . import experiments, notebook, viz
    from .classify import PAPER_C

    block = Block(dataset=record.name)
    feats = experiments.dataset_features(record, backbone, views=opts.views, engine=opts.engine,
                                         progress=opts.progress)
    block.skipped = [[str(path), str(why)] for path, why in feats.skipped]
    if block.skipped:
        print(f"  {len(block.skipped)} unreadable image(s) skipped (left out of training and test):", flush=True)
        for path, why in block.skipped[:CONSOLE_SKIPPED]:
            print(f"    {printable(path)}: {printable(why)}", flush=True)
        if len(block.skipped) > CONSOLE_SKIPPED:
            print(f"    ... and {len(block.skipped) - CONSOLE_SKIPPED} more (all listed in report.md and "
                  "results.json)", flush=True)
    augmented = opts.views == "paper16"
    paper_c = PAPER_C.get(record.name.split("_")[0])
    main_c = paper_c if paper_c is not None else "cv"
    splits = set(record.split.tolist())
    train_splits = ("train", "val") if "val" in splits else ("train",)
    data = _data_note(record)

    def row(method: str, use: str, power: float | None, *, C=main_c, test_views=None, multiclass="ovr",  # noqa: ANN001
            paper: bool = True):
        started = time.time()
        outcome = experiments.classify(
            record, feats.X, views=use, test_views=test_views, power=power, C=C, multiclass=multiclass,
            solver=opts.solver, train_splits=train_splits, valid=feats.valid, seed=opts.seed,
        )
        settings = dict(outcome.settings, seconds=round(time.time() - started, 1))
        block.records.append(ResultRecord(
            record.name, record.task, method, backbone, outcome.metric, round(outcome.value, 2),
            paper=_paper_value(record.name, method.split(" ")[0], outcome.metric) if paper else None,
            best_prior=_best_prior(record.name, outcome.metric)[0] if paper else None,
            layer=feats.layer, views="whole" if use == "whole" else "paper16" + ("" if test_views is None else
                                                                                 f" (test: {test_views})"),
            settings=settings, protocol=record.protocol, data=data,
        ))
        print(f"  {method:<40} {outcome.metric}: {outcome.value:6.2f}  (C={outcome.C:g})", flush=True)
        for warning in outcome.warnings:
            block.warn(warning)
        return outcome

    plain = row("CNN-SVM", "whole", None)
    best, best_name = plain, "CNN-SVM"
    if augmented:
        best, best_name = row("CNNaug-SVM", "all", AUG_POWER), "CNNaug-SVM"
    if opts.ablations:
        if augmented:
            row("CNNaug-SVM power=2 (paper's exponent)", "all", PAPER_AUG_POWER, paper=False)
            row("CNNaug-SVM power=1 (no power step)", "all", None, paper=False)
            row("CNNaug-SVM, whole image at test", "all", AUG_POWER, test_views="whole", paper=False)
        if main_c != "cv":
            row("CNN-SVM, C by cross-validation", "whole", None, C="cv", paper=False)
        if record.task == "multiclass":
            row("CNN-SVM one-vs-one (paper's choice)", "whole", None, multiclass="ovo", paper=False)
            if augmented:
                row("CNNaug-SVM one-vs-one (paper's choice)", "all", AUG_POWER, multiclass="ovo", paper=False)
    block.sections.append(_dataset_note(record, plain.metric))
    if plain.y_pred is not None:
        path = opts.out / f"{record.name}_{backbone}_per_class.png"
        reference = _paper_value(record.name, best_name, best.metric)
        viz.plot_per_class(best.per_class, [record.class_names[c] for c in best.classes], reference,
                           f"paper {best_name}").savefig(path, dpi=90)
        block.plots.append(path.name)
        confusion = opts.out / f"{record.name}_{backbone}_confusion.png"
        viz.plot_confusion(best.y_true, best.y_pred, record.class_names).savefig(confusion, dpi=80)
        block.plots.append(confusion.name)
        pairs = experiments.confusion_pairs(best, record.class_names)
        if pairs:
            gallery = opts.out / f"{record.name}_{backbone}_confused_pairs.png"
            _save_and_close(notebook.show_confused_pairs(record, best, top=4), gallery)
            block.plots.append(gallery.name)
            block.sections.append(f"**{record.name}, {backbone}: most confused pairs ({best_name})**: " + "; ".join(
                f"{t} taken for {p} ({n}x)" for t, p, n in pairs))
        worst = np.argsort(best.per_class, kind="stable")[:5]
        block.sections.append(f"**{record.name}, {backbone}: worst classes ({best_name})**: " + ", ".join(
            f"{record.class_names[best.classes[i]]} {best.per_class[i]:.0f}%" for i in worst))
    block.sections += _problem_sections(block, f"{record.name}, {backbone}")
    return block


def _problem_sections(block: Block, title: str) -> list[str]:
    """Report sections listing ``block``'s unreadable images (every one, under the dataset's name so that several
    backbones list them once) and its warnings (under ``title``)."""
    sections = [f"**{title}: warning**: {warning}." for warning in block.warnings]
    if block.skipped:
        sections.insert(0, f"**{block.dataset}**: {len(block.skipped)} unreadable image(s) skipped (left out of "
                        "training and test; also in results.json, meta.skipped_images):\n"
                        + "\n".join(f"- `{path}`: {why}" for path, why in block.skipped))
    return sections


def retrieval_block(record, backbone: str, opts: Options) -> Block:  # noqa: ANN001 - DatasetRecord
    """CNN (global), CNN-ss (spatial or jittered) and CNNaug-ss (+ PCA-whitening + power), and our extras."""
    from .datasets.folder import RETRIEVAL_PREFIX
    from .retrieval import QueryExpansion, run_retrieval

    block = Block(dataset=record.name)
    folder = record.name.startswith(RETRIEVAL_PREFIX)
    if folder:
        record = _readable_folder(record, backbone, opts, block)
    method_ss = "spatial" if record.name in SPATIAL_SETS else "jitter"
    extract = {"progress": opts.progress, "engine": opts.engine}
    data = _data_note(record)

    def add(method: str, result: dict, views: str, settings: dict, paper: bool = True) -> None:
        ukbench = "ns_score" in result
        value = float(result["ns_score"]) if ukbench else 100 * float(result["map"])
        metric = "N-S score (0-4)" if ukbench else "mAP"
        # the revisited protocol's mean precision at 1, 5, 10 (percent), and queries it skips for want of positives
        precision = {f"mP@{k}": round(100 * result[f"mp@{k}"], 2) for k in result.get("kappas", [])}
        settings = dict(settings, **precision)
        if result.get("n_empty_queries"):
            settings["queries_without_positives"] = result["n_empty_queries"]
        block.records.append(ResultRecord(
            record.name, "retrieval", method, backbone, metric, round(value, 3 if ukbench else 2),
            paper=_paper_value(record.name, paper_method(method), metric) if paper else None, layer=result["layer"],
            views=views,
            best_prior=_best_prior(record.name, metric)[0] if paper else None,
            settings=dict(settings, seconds=round(sum(result["seconds"].values()), 1)), protocol=record.protocol,
            data=data,
        ))
        shown = "".join(f"  {name} {v:6.2f}" for name, v in precision.items())
        print(f"  {method:<40} {metric}: {value:6.3f}{shown}", flush=True)
        if (ns := _folder_ns_score(record, result)) is not None:
            block.records.append(ResultRecord(
                record.name, "retrieval", method, backbone, "N-S score (0-4)", round(ns, 3), layer=result["layer"],
                views=views, settings=block.records[-1].settings, protocol=record.protocol, data=data))
            print(f"  {method:<40} N-S score (0-4): {ns:6.3f}", flush=True)

    add("CNN", run_retrieval(record, backbone, "global", extract_options=extract,
                             save_to=opts.out / f"{record.name}_{backbone}_global.npz"), "whole", {"distance": "L2"})
    block.sections.append(_dataset_note(record, block.records[0].metric))
    if opts.views == "whole":  # no views to search: global rows only
        method_ss = None
    if method_ss is not None:
        _search_rows(record, backbone, method_ss, opts, block, add)
    if method_ss is not None and folder:  # which search suits a learner's photos is not known: both are main rows
        add("CNN-ss (spatial search)", run_retrieval(record, backbone, "spatial", extract_options=extract,
                                                     save_to=opts.out / f"{record.name}_{backbone}_spatial.npz"),
            "patches 30/14", {"search": "spatial", "distance": "mean over query patches of min L2"}, paper=False)
        block.sections.append(f"**{record.name}**: CNNaug-ss not run: its PCA-whitening must be learned on another "
                              "collection of photos like these, never on the searched ones (docs/retrieval.md).")
    elif opts.ablations and method_ss is not None and record.name in EXTRA_SPATIAL:
        add("CNN-ss, spatial search (Oxford-style)", run_retrieval(record, backbone, "spatial", extract_options=extract),
            "patches 30/14", {"search": "spatial"}, paper=False)
    if opts.ablations:
        conv = LAST_CONV.get(backbone)
        if conv is not None:
            for pooling in ("rmac", "gem"):
                add(f"CNN {pooling.upper() if pooling == 'rmac' else 'GeM'} (ours)",
                    run_retrieval(record, backbone, "global", layer=f"{conv}@{pooling}", extract_options=extract),
                    "whole", {"pooling": pooling}, paper=False)
        for qe in (QueryExpansion(k=3, alpha=0.0), QueryExpansion(k=3, alpha=3.0)):
            add(f"CNN + {qe.name} (ours)", run_retrieval(record, backbone, "global", qe=qe, extract_options=extract),
                "whole", {"query_expansion": qe.name}, paper=False)
    return block


def _readable_folder(record, backbone: str, opts: Options, block: Block):  # noqa: ANN001, ANN202 - DatasetRecord
    """``record`` (a retrieval folder) without its unreadable images, which go to ``block.skipped`` and the report.

    Their whole-image features are the global row's, so when every image is readable that row reads them back."""
    from . import features
    from .datasets.folder import retrieval_folder

    found = features.extract(record.paths, backbone, views="whole", engine=opts.engine, on_error="skip",
                             progress=opts.progress)
    if not found.skipped:
        return record
    block.skipped = [[str(path), str(why)] for path, why in found.skipped]
    print(f"  {len(block.skipped)} unreadable image(s) left out of the search:", flush=True)
    for path, why in block.skipped[:CONSOLE_SKIPPED]:
        print(f"    {printable(path)}: {printable(why)}", flush=True)
    block.sections.append(f"**{record.name}**: {len(block.skipped)} unreadable image(s) left out of the search "
                          "(also in results.json, meta.skipped_images):\n"
                          + "\n".join(f"- `{path}`: {why}" for path, why in block.skipped))
    readable = retrieval_folder(record.root, exclude=[path for path, _ in block.skipped])

    def groups(rec) -> set[str]:  # noqa: ANN001 - DatasetRecord
        return {query.name.split("/", 1)[0] for query in rec.queries}

    for group in sorted(groups(record) - groups(readable)):
        block.warn(f"group {group!r} has a single readable photo left: it is searched as a distractor, not a query")
    block.sections += [f"**{record.name}: warning**: {warning}." for warning in block.warnings]
    return readable


def _folder_ns_score(record, result: dict) -> float | None:  # noqa: ANN001 - DatasetRecord
    """UKBench's N-S score of a retrieval folder whose groups all hold 4 photos (``None`` for any other record): the
    mean number of the query's group among its top 4, the query counted as UKBench counts it (its mAP leaves the
    query out)."""
    from .datasets.folder import ns_groups
    from .metrics import ukbench_score
    from .retrieval import database_indices

    if not ns_groups(record):
        return None
    ranked = database_indices(record)[np.asarray(result["ranks"])]
    return float(np.mean([ukbench_score(row.tolist(), [query.index, *query.positives])
                          for query, row in zip(record.queries, ranked, strict=True)]))


def _search_rows(record, backbone: str, method_ss: str, opts: Options, block: Block, add) -> None:  # noqa: ANN001
    """CNN-ss (spatial or jittered search) and CNNaug-ss (+ PCA-whitening learned elsewhere + power)."""
    from . import datasets
    from .retrieval import RetrievalPostprocessor, run_retrieval

    extract = {"progress": opts.progress, "engine": opts.engine}
    views = "patches 30/14" if method_ss == "spatial" else "paper16"
    label = f"({SEARCH_LABELS[method_ss]})"
    add(f"CNN-ss {label}", run_retrieval(record, backbone, method_ss, extract_options=extract,
                                save_to=opts.out / f"{record.name}_{backbone}_ss.npz"),
        views, {"search": method_ss, "distance": "mean over query views of min L2"})
    source = WHITENING_SOURCE.get(record.name)
    fit_record = None
    if source is not None:
        try:
            fit_record = datasets.load(source)
        except FileNotFoundError as err:
            block.sections.append(f"**{record.name}**: CNNaug-ss skipped: its whitening set is missing ({err}).")
    if fit_record is not None:
        post = RetrievalPostprocessor(pca_dim=500, power=PAPER_AUG_POWER)
        result = run_retrieval(record, backbone, method_ss, postprocess=post, fit_record=fit_record,
                               extract_options=extract)
        add(f"CNNaug-ss {label}", result, views, {"search": method_ss, "pca_dim": int(post.n_components_),
                                         "power": PAPER_AUG_POWER, "whitening_learned_on": source})


def layer_sweep(record, backbone: str, opts: Options) -> tuple[Block, Path]:  # noqa: ANN001 - DatasetRecord
    """The paper's Figure 2a on ``record``: CNN-SVM on every layer of ``backbone``, extracted in one pass."""
    from . import backbones, experiments, features, viz

    layers = list(backbones.spec(backbone).layers)
    layers = [name for name in layers if name != "logits"] + ["logits"]
    feature_set = features.extract(record.paths, backbone, layers, views="whole", engine=opts.engine,
                                   on_error="skip", progress=opts.progress)
    block = Block(dataset=record.name, skipped=[[str(path), str(why)] for path, why in feature_set.skipped])
    values = []
    for layer in layers:
        outcome = experiments.classify(record, feature_set[layer], views="whole", C="cv", solver=opts.solver,
                                       train_splits=("train", "val") if "val" in set(record.split.tolist())
                                       else ("train",), valid=feature_set.valid, seed=opts.seed)
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


def _run_block(name: str, backbone: str, opts: Options, tasks: set[str], force: bool) -> Block | None:
    from . import datasets

    suffix = "" if opts.views == "paper16" else f"__{opts.views}"
    key = name.replace("/", "_").replace(":", "_")
    cache = opts.out / "blocks" / f"{key}__{backbone}{suffix}.json"
    if cache.is_file() and not force:
        saved = Block.from_json(cache.read_text())
        if saved is not None:
            print(f"== {name} / {backbone}: reusing {cache}")
            return saved
        print(f"== {name} / {backbone}: {cache} was saved by an older version of the course; recomputing")
    record = datasets.load_if_present(name)  # the course's one rule: shared copy, else download; one line says which
    if record is None:
        return Block(sections=[f"**{name}**: not run, data missing. {datasets.specs.missing_error(name)}"],
                     dataset=name)
    kind = "retrieval" if record.task == "retrieval" else "attributes" if record.task in ("attributes", "multilabel") \
        and name not in ("voc2007",) else "classification"
    if "all" not in tasks and kind not in tasks:
        return None
    print(f"== {name} / {backbone} ({record.task}, {len(record)} images)", flush=True)
    if name.startswith("folder:"):  # one pair of split files per dataset: two folders may share a name
        from .datasets.folder import write_split

        written = write_split(record, opts.out / "splits" / key)
        print(f"  split saved as {printable(str(written['train'].parent))}/{{train,test}}.txt (copy both into the "
              "folder to freeze it)", flush=True)
    block = retrieval_block(record, backbone, opts) if record.task == "retrieval" else \
        classification_block(record, backbone, opts)
    write_text_atomic(cache, block.to_json())
    return block


def _claims(records: list[ResultRecord]) -> str:
    """A per-dataset summary of the paper's two central claims, as measured here ("" when no pair was run)."""
    lines = []
    by_key: dict[tuple[str, str], dict[str, ResultRecord]] = {}
    for r in records:
        by_key.setdefault((r.dataset, r.backbone), {}).setdefault(paper_method(r.method), r)
    for (dataset, backbone), rows in by_key.items():
        for base, better in (("CNN-SVM", "CNNaug-SVM"), ("CNN", "CNN-ss"), ("CNN", "CNNaug-ss")):
            if base in rows and better in rows:
                a, b = rows[base].value, rows[better].value
                label = rows[better].method + (f" (power {AUG_POWER:g})" if better == "CNNaug-SVM" else "")
                lines.append(f"| {dataset} | {backbone} | {base} | {a:.2f} | {label}: {b:.2f} | {b - a:+.2f} |")
    if not lines:
        return ""
    return "\n".join(["## The paper's two claims, as measured here", "",
                      "| dataset | backbone | baseline | ours | with augmentation / spatial search | gain |",
                      "|---|---|---|---|---|---|", *lines])


def run(args: argparse.Namespace) -> int:
    """Run every requested (dataset, backbone) block and write the report."""
    from . import report

    set_seed(args.seed)
    started = time.time()
    backbones_ = (args.backbones or (DEFAULT_BACKBONE if args.profile == "demo" else "resnet50")).split(",")
    names = cli.check_datasets(args.dataset or list(DEMO_DATASETS if args.profile == "demo" else FULL_DATASETS))
    tasks = set(args.tasks.split(","))
    out = args.out or Path("reproduce_results") / (args.profile if not args.dataset else "_".join(
        n.replace("/", "_").replace(":", "_") for n in args.dataset)[:80])
    out.mkdir(parents=True, exist_ok=True)
    opts = Options(out, args.engine, args.solver, not args.no_ablations, not args.no_progress, args.seed, args.views)
    records: list[ResultRecord] = []
    sections: list[str] = []
    plots: list[Path] = []
    skipped: dict[str, list[dict[str, str]]] = {}
    warnings: list[str] = []
    sweep_record = None
    if args.layer_sweep:  # loaded first, so that a missing sweep set stops the run before hours of work
        from . import datasets

        sweep_record = datasets.load(args.layer_sweep)
    for name in names:
        for backbone in backbones_:
            block = _run_block(name, backbone, opts, tasks, args.force)
            if block is None:
                continue
            records += block.records
            sections += [section for section in block.sections if section not in sections]  # notes once
            plots += [out / p for p in block.plots]
            _collect(block, backbone, skipped, warnings)
    if not records:
        reasons = "; ".join(section for section in sections if "not run" in section)
        raise RuntimeError(f"no dataset ran (tasks: {args.tasks}; datasets: {', '.join(names)})"
                           + (f": {reasons}" if reasons else ": none of them has a task among --tasks"))
    if sweep_record is not None:
        sweep, path = layer_sweep(sweep_record, backbones_[0], opts)
        records += sweep.records
        plots.append(path)
        _collect(sweep, backbones_[0], skipped, warnings)
        sections += _problem_sections(sweep, f"{sweep.dataset}, layer sweep ({backbones_[0]})")
    if len(backbones_) > 1:
        plots += _size_plot(records, out)
    meta = report.environment_info(seed=args.seed)
    meta.update({"profile": args.profile, "backbones": backbones_, "datasets": names, "engine": args.engine,
                 "solver": args.solver, "aug_power": AUG_POWER, "seconds": round(time.time() - started, 1),
                 "views": "whole image only" if args.views == "whole" else
                 "paper16 = whole, 4 corner + centre crops (2/3 x 2/3), rotations +/-10 deg, mirrors",
                 "skipped_images": {dataset: items for dataset, items in skipped.items() if items},
                 "warnings": warnings})
    claims = _claims(records)
    sections[:0] = [claims] if claims else []
    sections.insert(1 if claims else 0, (
        "CNNaug-SVM uses a signed square root (power 0.5, the usual choice) before the final L2; the paper's "
        "exponent 2 and no power step are separate rows. C: the paper's value where it gives one (2 for Flowers, "
        "MIT-67, CUB; 0.2 for VOC, H3D, UIUC), else cross-validated on the training split only."
    ))
    what = ", ".join(names) if args.dataset else f"profile {args.profile}"
    paths = report.write_report(records, out, title=f"Reproducing CNN Features off-the-shelf ({what})",
                                meta=meta, sections=sections, plots=plots)
    print()
    print(report.format_table(records))
    for dataset, items in meta["skipped_images"].items():
        print(f"\n{dataset}: {len(items)} unreadable image(s) skipped (listed in report.md and results.json)")
    if warnings:
        print("\nWarnings:\n" + "\n".join(f"  {printable(w)}" for w in warnings))
    print(f"\nDone in {time.time() - started:.0f} s. Report: {paths['markdown']}  Results: {paths['json']}")
    return 0


def _collect(block: Block, backbone: str, skipped: dict[str, list[dict[str, str]]], warnings: list[str]) -> None:
    """Add ``block``'s unreadable images (once per dataset) and warnings to the run's lists for ``results.json``."""
    known = skipped.setdefault(block.dataset, [])
    seen = {item["path"] for item in known}
    known += [{"path": path, "reason": why} for path, why in block.skipped if path not in seen]
    warnings += [f"{block.dataset}, {backbone}: {warning}" for warning in block.warnings]


def _save_and_close(figure, path: Path) -> None:  # noqa: ANN001 - a pyplot Figure
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
