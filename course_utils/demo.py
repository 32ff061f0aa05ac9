"""``python -m course_utils demo``: the course's main job, end to end, offline, in a few minutes on a CPU.

It walks the whole data flow once with the offline backbone (EfficientNet-Lite0): builds the embedded demo sets,
extracts features, L2-normalises them, trains linear SVMs (C by cross-validation on the training split), evaluates
classification, attributes and retrieval, and writes ``results.json``, ``report.md`` and plots into ``--out``.

It adds the course's real sets (Oxford 17 Flowers, DTD textures, UKBench 0-1999) that are on this machine, each
from its shared copy, else its download (``python data_scripts/download.py course``), saying which in one line;
whole image only to stay fast; ``reproduce`` runs the paper's 16-view variants. ``--quick`` keeps only the small
embedded sets (for tests).

It is :func:`course_utils.reproduce.run` with the demo's own rows (:data:`DEMO`): the same loop over datasets,
loading rule and report files as ``reproduce``, with CNN-SVM (and CNNaug-SVM, no power step, on the embedded sets)
at C chosen by cross-validation, and the global search only.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from . import cli, reproduce
from .config import DEFAULT_BACKBONE, DEFAULT_SEED
from .datasets import specs
from .reproduce import Block, Collected, Options, Recipe, RunInfo

if TYPE_CHECKING:
    from .datasets.base import DatasetRecord
    from .experiments import ClassificationOutcome
    from .features import FeatureSet
    from .retrieval import RetrievalOutcome

# The demo profile's sets (their records' ``profiles``): the embedded ones always, the real ones when present.
EMBEDDED = tuple(name for name in specs.in_profile("demo") if specs.get(name).kind == "builtin")
SHARED = tuple(name for name in specs.in_profile("demo") if specs.get(name).kind != "builtin")
CONFUSION_PLOTS = ("demo_classes", "flowers17")  # classification sets whose confusion matrix the report shows
GALLERY_PLOTS = ("demo_retrieval",)  # retrieval sets whose ranked results the report shows
INTRO = ("The demo runs on small sets built offline (and on real subsets when present), so its numbers show that the "
         "pipeline works and how the paper's ideas behave, not the paper's benchmarks. `python -m course_utils "
         "reproduce` gives paper-versus-ours tables.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``demo`` command."""
    parser.add_argument("--out", type=Path, default=Path("demo_results"), help="folder for the report (default demo_results)")
    parser.add_argument("--backbone", type=cli.backbone_name, default=DEFAULT_BACKBONE,
                        help=f"network (default {DEFAULT_BACKBONE}, offline)")
    parser.add_argument("--quick", action="store_true", help="embedded sets only, whole images (about a minute)")
    parser.add_argument("--engine", type=cli.engine_name, default="auto",
                        help="inference engine: auto, torch, onnxruntime, onnxruntime-int8 (faster on a CPU, features differ slightly), compile (default auto)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"seed of the splits, cross-validation and SVMs (default {DEFAULT_SEED})")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _dataset_names(quick: bool) -> list[str]:
    """The sets to try: the embedded ones, then (unless ``quick``) the real ones, each run only when present."""
    return list(EMBEDDED) + ([] if quick else list(SHARED))


def _data_label(record: DatasetRecord) -> str:
    """The report's data column: "embedded demo set" or where the real set's copy came from."""
    return "embedded demo set" if record.name in EMBEDDED else f"{record.source} copy"


def retrieval_block(record: DatasetRecord, backbone: str, opts: Options) -> Block:
    """The global search (CNN): mAP, or UKBench's N-S score; a gallery of ranked results for the demo set."""
    from . import metrics, retrieval
    from .report import ResultRecord

    block = Block(dataset=record.name)
    outcome = retrieval.run_retrieval(record, backbone=backbone, method="global",
                                      extract_options={"progress": opts.progress, "engine": opts.engine})
    metric = metrics.RETRIEVAL_MAP if outcome.ns_score is None else metrics.NS_SCORE
    value = 100 * float(outcome.map) if outcome.ns_score is None else float(outcome.ns_score)
    block.records.append(ResultRecord(
        record.name, "retrieval", "CNN (global)", backbone, metric.label, value, paper=None, layer=outcome.layer,
        views="whole", settings={"distance": "L2"}, protocol=record.protocol, data=_data_label(record),
    ))
    if record.name in GALLERY_PLOTS:
        block.plots.append(_gallery(record, outcome, opts.out / f"{record.name}_gallery.png").name)
    return block


def classification_block(record: DatasetRecord, backbone: str, opts: Options) -> Block:
    """CNN-SVM, and CNNaug-SVM on the embedded sets (16 views, no power step; whole images only with ``--quick``,
    that is ``opts.views == "whole"``)."""
    from . import experiments

    block = Block(dataset=record.name)
    views = "whole" if (opts.views == "whole" or record.name in SHARED) else "paper16"
    feats = experiments.dataset_features(record, backbone, views=views, engine=opts.engine, progress=opts.progress)
    _svm_row(block, record, backbone, opts, feats, "CNN-SVM", "whole")
    if views == "paper16":
        _svm_row(block, record, backbone, opts, feats, "CNNaug-SVM", "all", views)
    if feats.skipped:
        block.sections.append(f"**{record.name}**: {len(feats.skipped)} unreadable image(s) skipped: "
                              + "; ".join(f"{p} ({why})" for p, why in feats.skipped[:5]))
    return block


def _svm_row(block: Block, record: DatasetRecord, backbone: str, opts: Options, feats: FeatureSet, method: str,
             use: str, views: str = "whole") -> None:
    """One linear-SVM row (C by cross-validation) trained on the views ``use`` of ``feats`` (extracted with the
    recipe ``views``), with its warnings and, for CNN-SVM, the confusion matrix."""
    from . import experiments
    from .paper import lookup
    from .report import ResultRecord

    train_splits = ("train", "val") if "val" in set(record.split.tolist()) else ("train",)
    outcome = experiments.classify(record, feats.X, use_views=use, C="cv", valid=feats.valid,
                                   train_splits=train_splits, seed=opts.seed)
    block.records.append(ResultRecord(
        record.name, record.task, method, backbone, outcome.metric, outcome.value, paper=lookup(record.name, method),
        layer=feats.layer, views=views if use == "all" else "whole", settings=outcome.settings,
        protocol=record.protocol, data=_data_label(record),
    ))
    if method == "CNN-SVM" and outcome.y_pred is not None and record.name in CONFUSION_PLOTS:
        block.plots.append(_confusion(outcome, record.class_names, opts.out / f"{record.name}_confusion.png").name)
    for warning in outcome.warnings:  # e.g. a class without a usable image, or C fixed for want of images
        print(f"  warning ({record.name}, {method}): {warning}", flush=True)
        block.sections.append(f"**{record.name}, {method}**: {warning}")


def _report(collected: Collected, info: RunInfo) -> None:
    """The demo's report: its rows, a note on what its numbers show, its plots; the table printed."""
    from . import report

    meta = report.environment_info(seed=info.opts.seed)
    meta.update({"profile": "demo", "command": "demo" + (" --quick" if info.opts.views == "whole" else ""),
                 "seconds": round(time.time() - info.started, 1)})
    paths = report.write_report(collected.records, collected.out, title="Off-the-Shelf demo", meta=meta,
                                sections=[INTRO, *collected.sections], plots=collected.plots)
    print()
    print(report.format_table(collected.records))
    print(f"\nDone in {time.time() - info.started:.0f} s. Report: {paths['markdown']}  Results: {paths['json']}")


# Every block is recomputed (a demo is a check that the pipeline works), and a real set not on this machine is
# skipped with the one line load_if_present prints.
DEMO = Recipe(classification_block, retrieval_block, _report, reuse_blocks=False, note_missing=False)


def run(args: argparse.Namespace) -> int:
    """Run the demo (:func:`course_utils.reproduce.run` with :data:`DEMO`) and print where its report went."""
    reproduce.run(_dataset_names(args.quick), [args.backbone], out=args.out, profile="demo",
                  views="whole" if args.quick else "paper16", engine=args.engine, progress=not args.no_progress,
                  seed=args.seed, recipe=DEMO)
    return 0


def _confusion(outcome: ClassificationOutcome, class_names: list[str], path: Path) -> Path:
    from .viz import plot_confusion

    fig = plot_confusion(outcome.y_true, outcome.y_pred, class_names)
    fig.savefig(path, dpi=100)
    return path


def _gallery(record: DatasetRecord, outcome: RetrievalOutcome, path: Path) -> Path:
    from .viz import retrieval_gallery

    fig = retrieval_gallery(record, outcome, n_queries=4, top=5)
    fig.savefig(path, dpi=90)
    return path
