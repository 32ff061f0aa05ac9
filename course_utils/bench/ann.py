"""Benchmark: retrieval at scale, a faiss global index plus re-ranking against exhaustive search.

``python -m course_utils bench ann [--vectors 1000000 --dim 1280 --queries 100 --k 100 --memory-mb 1024]
[--index auto|flat|hnsw|ivfpq] [--dataset ukbench2000|demo_retrieval] [--real-index hnsw] [--quick]``

Two measurements in one run:

(a) **A synthetic database** of ``--vectors`` image vectors of the course's width (1,280: EfficientNet-Lite0's
    pooled features), :func:`course_utils.scale.ann.synthetic_features` (clustered, non-negative, unit length,
    low intrinsic dimension, like real features), generated block by block so that no float32 copy of the whole
    database is ever held (1 M x 1,280 would be 5 GB). The index is the one :func:`~course_utils.scale.ann.plan_index`
    picks for that size within ``--memory-mb`` (or the ``--index`` kind); it is trained on a sample, then filled block by block, while an
    exact scan (faiss ``IndexFlatL2``, block by block, top-k merged) finds every query's true ``--k`` nearest
    neighbours. Printed: build time, memory per image (the serialised index over the number of images, against
    5,120 bytes of float32), queries per second of both, and recall@k of the index against the exact scan.
    Then the same trained index is filled with the first ``n`` images for growing ``n`` and timed against an
    exact index over the same images: the size from which the approximate index answers faster.
(b) **A real retrieval set** (``--dataset``: UKBench-2000 from the shared data folder when present, else the
    embedded demo set): its ``paper16`` features (``features.extract``, cached), searched by the 16-view jitter
    distance exhaustively (:func:`course_utils.retrieval.jitter_distances`) and by the two-stage search
    (:func:`course_utils.scale.ann.search`: the shortlist of a ``--real-index`` global index, 4 x ``--k`` for an
    approximate one, re-ranked by the same distance), both scored with :func:`course_utils.retrieval.evaluate_retrieval` (N-S score on UKBench, mAP
    on the demo set).

The last line is machine-readable::

    RESULT ann_recall_at_100=<(a)'s recall@k: true top-k found in the index's top k>
    ann_recall_100_at_400=<the same, in the index's top 4k: the shortlist re-ranked>
    rerank_vs_exhaustive=<(b) two-stage score / exhaustive score>
    ann_qps=<x> exact_qps=<x> bytes_per_image=<x> crossover_images=<n or "none"> load=<1-minute load average>
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from .. import cli
from ..normalize import l2_rows

QUICK = {"vectors": 50_000, "dim": 256, "queries": 20, "index": "ivfpq", "dataset": "demo_retrieval"}
NPROBES = (4, 8, 16, 32, 64, 128)  # IVF cells searched per query, tried after the plan's setting
ROUNDS = 3  # timing rounds of the size race
BLOCK = 50_000  # database vectors generated, indexed and scanned at a time
CROSSOVER_SIZES = (1_000, 3_000, 10_000, 30_000, 100_000)  # sizes at which the approximate and exact indexes race


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``bench ann``."""
    parser.add_argument("--vectors", type=cli.positive_int, default=1_000_000,
                        help="synthetic database size (default 1,000,000)")
    parser.add_argument("--dim", type=cli.positive_int, default=1280,
                        help="vector width (default 1280, EfficientNet-Lite0's pooled features)")
    parser.add_argument("--queries", type=cli.positive_int, default=100, help="synthetic queries (default 100)")
    parser.add_argument("--k", type=cli.positive_int, default=100,
                        help="neighbours per query: recall@k, and candidates re-ranked (default 100)")
    parser.add_argument("--memory-mb", type=cli.positive_float, default=1024.0,
                        help="memory allowed to the synthetic index: picks HNSW or IVF-PQ (default 1024)")
    parser.add_argument("--index", choices=("auto", "flat", "hnsw", "ivfpq"), default="auto",
                        help="synthetic index: auto (by size and --memory-mb, as plan_index) or a kind (default auto)")
    parser.add_argument("--dataset", choices=("auto", "ukbench2000", "demo_retrieval"), default="auto",
                        help="real set of (b): auto = UKBench-2000 when present, else the demo set")
    parser.add_argument("--real-index", choices=("auto", "flat", "hnsw", "ivfpq"), default="hnsw",
                        help="global index of (b) (default hnsw; auto picks the exact one at these sizes)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke-test size: {QUICK['vectors']:,} x {QUICK['dim']}-d, {QUICK['queries']} queries, "
                             "the demo set")


def run(args: argparse.Namespace) -> int:
    from ..scale import ann
    from .ray_extract import load_average

    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    print(f"load average before: {load_average()}")
    synthetic = synthetic_benchmark(args)
    ratio = real_benchmark(args)
    load = load_average()
    crossover = synthetic["crossover"]
    print(f"load average after: {load}")
    print(f"RESULT ann_recall_at_{args.k}={synthetic['recall']:.3f} "
          f"ann_recall_{args.k}_at_{ann.SHORTLIST_FACTOR * args.k}={synthetic['recall_shortlist']:.3f} "
          f"rerank_vs_exhaustive={ratio:.4f} "
          f"ann_qps={synthetic['ann_qps']:.0f} exact_qps={synthetic['exact_qps']:.1f} "
          f"bytes_per_image={synthetic['bytes_per_image']:.0f} crossover_images={crossover or 'none'} "
          f"load={load.split()[0]}")
    return 0


def synthetic_benchmark(args: argparse.Namespace) -> dict:
    """(a): build, memory, speed and recall on the synthetic database; the size where the index wins."""
    import faiss

    from ..scale import ann

    n, dim, k = args.vectors, args.dim, min(args.k, args.vectors)
    plan = ann.plan_index(n, dim, kind=args.index, memory_mb=args.memory_mb)
    print(f"(a) synthetic: {n:,} x {dim}-d, {args.queries} queries, k={k}; index {plan.factory} ({plan.reason}); "
          f"faiss threads {faiss.omp_get_max_threads()}")
    queries = ann.synthetic_features(args.queries, dim, stream=1)
    index = ann.GlobalIndex(plan)
    started = time.perf_counter()
    if plan.needs_training:
        index.train(ann.synthetic_features(plan.train_size, dim, start=0))
    train_seconds = time.perf_counter() - started
    template = faiss.clone_index(index.index)  # trained and empty: refilled for the crossover below
    keep = max((size for size in CROSSOVER_SIZES if size <= n), default=0)
    kept = np.empty((keep, dim), dtype=np.float32)
    best_d, best_i = np.full((args.queries, 0), np.inf, dtype=np.float32), np.zeros((args.queries, 0), dtype=np.int64)
    add_seconds = exact_seconds = 0.0
    for start in range(0, n, BLOCK):
        block = ann.synthetic_features(min(BLOCK, n - start), dim, start=start)
        if start < keep:
            kept[start : start + len(block)] = block[: keep - start]
        began = time.perf_counter()
        index.add(block)
        add_seconds += time.perf_counter() - began
        began = time.perf_counter()
        flat = faiss.IndexFlatL2(dim)
        flat.add(block)
        distances, ids = flat.search(queries, min(k, len(block)))
        merged_d, merged_i = np.hstack([best_d, distances]), np.hstack([best_i, ids + start])
        order = np.argsort(merged_d, axis=1, kind="stable")[:, :k]
        best_d, best_i = np.take_along_axis(merged_d, order, 1), np.take_along_axis(merged_i, order, 1)
        exact_seconds += time.perf_counter() - began
    shortlist = min(n, ann.SHORTLIST_FACTOR * k)
    started = time.perf_counter()
    _, found = index.search(queries, shortlist)
    ann_seconds = time.perf_counter() - started
    recall, recall_shortlist = ann.recall_at(found[:, :k], best_i), ann.recall_at(found, best_i)
    per_image = index.memory_bytes() / n
    result = {"recall": recall, "recall_shortlist": recall_shortlist, "ann_qps": args.queries / ann_seconds,
              "exact_qps": args.queries / exact_seconds, "bytes_per_image": per_image}
    print(f"    build: train {train_seconds:.1f} s, add {add_seconds:.1f} s ({n / max(add_seconds, 1e-9):,.0f} "
          f"vectors/s)")
    print(f"    memory per image: {per_image:.1f} bytes (float32 vectors: {4 * dim:,} bytes; "
          f"{per_image * n / 2**20:,.1f} MiB in all)")
    print(f"    queries/s: index {result['ann_qps']:,.0f} (top {shortlist}), exact scan {result['exact_qps']:,.1f} "
          f"(top {k}, block by block); recall@{k} against exact: {recall:.3f} in the index's top {k}, "
          f"{recall_shortlist:.3f} in its top {shortlist} (the shortlist that re-ranking sees)")
    if plan.kind == "ivfpq":  # the query-time trade-off: more cells searched, more recall, fewer queries/s
        for nprobe in NPROBES:
            faiss.ParameterSpace().set_index_parameters(index.index, f"nprobe={nprobe}")
            started = time.perf_counter()
            _, found = index.search(queries, shortlist)
            rate = args.queries / (time.perf_counter() - started)
            print(f"    nprobe {nprobe:>3}: recall@{k} {ann.recall_at(found[:, :k], best_i):.3f}, in top {shortlist} "
                  f"{ann.recall_at(found, best_i):.3f}, {rate:,.0f} queries/s"
                  + (" (the plan's)" if nprobe == plan.nprobe else ""))
        faiss.ParameterSpace().set_index_parameters(index.index, f"nprobe={plan.nprobe}")
    result["crossover"] = _crossover(template, kept, queries, k, index.plan)
    return result


def _crossover(template, kept: np.ndarray, queries: np.ndarray, k: int, plan) -> int | None:
    """The smallest of :data:`CROSSOVER_SIZES` at which the trained index answers faster than an exact one."""
    import faiss

    crossover = None
    print("    size: index queries/s vs exact queries/s (the same trained index, filled with the first n images)")
    for size in (s for s in CROSSOVER_SIZES if s <= len(kept)):
        index = faiss.clone_index(template)
        if plan.kind in ("ivfpq", "hnsw"):
            setting = f"nprobe={plan.nprobe}" if plan.kind == "ivfpq" else f"efSearch={plan.ef_search}"
            faiss.ParameterSpace().set_index_parameters(index, setting)
        index.add(kept[:size])
        flat = faiss.IndexFlatL2(kept.shape[1])
        flat.add(kept[:size])
        rates = [0.0, 0.0]
        for _ in range(ROUNDS):  # interleaved rounds, best of each: other programs' load comes and goes
            for i, searched in enumerate((index, flat)):
                started = time.perf_counter()
                searched.search(queries, min(k, size))
                rates[i] = max(rates[i], len(queries) / (time.perf_counter() - started))
        print(f"    {size:>9,}: {rates[0]:>9,.0f} vs {rates[1]:>9,.0f}")
        if crossover is None and rates[0] > rates[1]:
            crossover = size
    return crossover


def real_benchmark(args: argparse.Namespace) -> float:
    """(b): the two-stage search's score over the exhaustive jitter search's, on a real retrieval set."""
    from .. import datasets, features
    from ..retrieval import database_indices, evaluate_retrieval, jitter_distances, rank
    from ..scale import ann

    record = None
    if args.dataset in ("auto", "ukbench2000"):
        record = datasets.load_if_present("ukbench2000")
        if record is None and args.dataset == "ukbench2000":
            raise FileNotFoundError("UKBench-2000 is not in the shared data folder; use --dataset demo_retrieval.")
    record = record or datasets.load("demo_retrieval")
    views = features.extract(list(record.paths), views="paper16", progress=True)
    layer = views.layers[0]
    all_views = l2_rows(np.asarray(views[layer], dtype=np.float32))  # the paper's L2 rows (a copy of the cache map)
    db = database_indices(record)
    db_views, query_views = all_views[db], all_views[[q.index for q in record.queries]]
    k = min(args.k, len(db))
    started = time.perf_counter()
    exhaustive = evaluate_retrieval(record, ranks=rank(jitter_distances(query_views, db_views)))
    exhaustive_seconds = time.perf_counter() - started
    started = time.perf_counter()
    found = ann.search(query_views, db_views, k=k, distance="jitter", kind=args.real_index)
    two_stage = evaluate_retrieval(record, ranks=found.full_ranking(len(db)))
    two_stage_seconds = time.perf_counter() - started
    key = "ns_score" if exhaustive.ns_score is not None else "map"
    label = "N-S score" if key == "ns_score" else "mAP"
    exhaustive_score, two_stage_score = getattr(exhaustive, key), getattr(two_stage, key)
    ratio = two_stage_score / exhaustive_score
    print(f"(b) {record.name}: {len(db)} database images x 16 views, {len(record.queries)} queries, {layer}")
    print(f"    exhaustive jitter search: {label} {exhaustive_score:.4f} in {exhaustive_seconds:.1f} s")
    print(f"    {found.plan.factory} top-{found.candidates.shape[1]}, re-ranked by the jitter distance: {label} {two_stage_score:.4f} in "
          f"{two_stage_seconds:.1f} s; ratio {ratio:.4f} (goal: within 0.5%, >= 0.995)")
    return ratio


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m course_utils bench ann", description=__doc__.split("\n")[0])
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
