"""``python -m course_utils demo``: the course's main job, end to end, offline, in a few minutes on a CPU.

It walks the whole data flow once with the offline backbone (EfficientNet-Lite0): builds the embedded demo sets,
extracts features, L2-normalises them, trains linear SVMs (C by cross-validation on the training split), evaluates
classification, attributes and retrieval, and writes ``results.json``, ``report.md`` and plots into ``--out``.

It adds the course's real sets (Oxford 17 Flowers, DTD textures, UKBench 0-1999) that are on this machine, each
from its shared copy, else its download (``python data_scripts/download.py course``), saying which in one line;
whole image only to stay fast; ``reproduce`` runs the paper's 16-view variants. ``--quick`` keeps only the small
embedded sets (for tests).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from . import cli
from .config import DEFAULT_BACKBONE, DEFAULT_SEED, set_seed

EMBEDDED = ("demo_classes", "demo_faces", "demo_retrieval")
SHARED = ("flowers17", "dtd10", "ukbench2000")


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


def run(args: argparse.Namespace) -> int:
    """Run the demo and print where its report went."""
    from . import datasets, experiments, report
    from .paper import lookup

    set_seed(args.seed)
    started = time.time()
    records: list[report.ResultRecord] = []
    sections: list[str] = []
    plots: list[Path] = []
    args.out.mkdir(parents=True, exist_ok=True)
    progress = not args.no_progress
    for name in _dataset_names(args.quick):
        print(f"== {name}", flush=True)
        record = datasets.load(name) if name in EMBEDDED else datasets.load_if_present(name)
        if record is None:  # a real set that is not on this machine: load_if_present said so
            continue
        data_label = "embedded demo set" if name in EMBEDDED else f"{record.source} copy"
        if record.task == "retrieval":
            from . import retrieval

            result = retrieval.run_retrieval(
                record, backbone=args.backbone, method="global",
                save_to=args.out / f"{name}_rankings.npz",
                extract_options={"progress": progress, "engine": args.engine},
            )
            ukbench = "ns_score" in result
            value = float(result["ns_score"]) if ukbench else 100 * float(result["map"])
            metric = "N-S score (0-4)" if ukbench else "mAP"
            records.append(report.ResultRecord(
                name, "retrieval", "CNN (global)", args.backbone, metric, value,
                paper=None, layer=result["layer"], views="whole", settings={"distance": "L2"},
                protocol=record.protocol, data=data_label,
            ))
            if name == "demo_retrieval":
                plots.append(_gallery(record, result, args.out / f"{name}_gallery.png"))
            continue
        views = "whole" if (args.quick or name in SHARED) else "paper16"
        feats = experiments.dataset_features(record, args.backbone, views=views, engine=args.engine, progress=progress)
        variants = [("CNN-SVM", "whole")] + ([("CNNaug-SVM", "all")] if views == "paper16" else [])
        for method, use in variants:
            train_splits = ("train", "val") if "val" in set(record.split.tolist()) else ("train",)
            outcome = experiments.classify(record, feats.X, views=use, C="cv", valid=feats.valid,
                                           train_splits=train_splits, seed=args.seed)
            records.append(report.ResultRecord(
                name, record.task, method, args.backbone, outcome.metric, outcome.value,
                paper=lookup(name, method), layer=feats.layer, views=views if use == "all" else "whole",
                settings=outcome.settings, protocol=record.protocol, data=data_label,
            ))
            if method == "CNN-SVM" and outcome.y_pred is not None and name in ("demo_classes", "flowers17"):
                plots.append(_confusion(outcome, record.class_names, args.out / f"{name}_confusion.png"))
            for warning in outcome.warnings:  # e.g. a class without a usable image, or C fixed for want of images
                print(f"  warning ({name}, {method}): {warning}", flush=True)
                sections.append(f"**{name}, {method}**: {warning}")
        if feats.skipped:
            sections.append(f"**{name}**: {len(feats.skipped)} unreadable image(s) skipped: "
                            + "; ".join(f"{p} ({why})" for p, why in feats.skipped[:5]))
    meta = report.environment_info(seed=args.seed)
    meta.update({"profile": "demo", "command": "demo" + (" --quick" if args.quick else ""),
                 "seconds": round(time.time() - started, 1)})
    sections.insert(0, (
        "The demo runs on small sets built offline (and on real subsets when present), so its numbers show that the "
        "pipeline works and how the paper's ideas behave, not the paper's benchmarks. `python -m course_utils "
        "reproduce` gives paper-versus-ours tables."
    ))
    paths = report.write_report(records, args.out, title="Off-the-Shelf demo", meta=meta, sections=sections, plots=plots)
    print()
    print(report.format_table(records))
    print(f"\nDone in {time.time() - started:.0f} s. Report: {paths['markdown']}  Results: {paths['json']}")
    return 0


def _confusion(outcome, class_names, path: Path) -> Path:  # noqa: ANN001 - ClassificationOutcome, list[str]
    from .viz import plot_confusion

    fig = plot_confusion(outcome.y_true, outcome.y_pred, class_names)
    fig.savefig(path, dpi=100)
    return path


def _gallery(record, result, path: Path) -> Path:  # noqa: ANN001 - DatasetRecord, dict
    from .viz import retrieval_gallery

    fig = retrieval_gallery(record, result, n_queries=4, top=5)
    fig.savefig(path, dpi=90)
    return path
