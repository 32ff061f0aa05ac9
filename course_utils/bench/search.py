"""Benchmark: the paper's spatial search on an Oxford-size database, chunked torch against plain numpy.

``python -m course_utils bench search [--images 5000 --queries 55 --dim 1280 --dtype float16 --quick]``

The database is synthetic and shaped like Oxford5k under spatial search: ``images`` x 30 patches x ``dim``,
searched by ``queries`` x 14 patches. Each query is planted: its patches are 14 of one database image's
patches plus a little noise (a crop of that image), so a correct search ranks that image first.

* **ours**: :func:`course_utils.retrieval.spatial_distances`, blocks of database images, one matrix product
  each.
* **numpy**: the definition written out, one database image at a time: the full (14 x 30) matrix of patch
  distances from the differences, the minimum per query patch, the mean. It is slow, so it runs on the first
  ``--baseline-queries`` queries only and its time per query is multiplied by the number of queries (each
  query's work is the same, so the estimate is linear).

Both must return the same rankings. With ``--dtype float32`` (default) the features lie on a grid of quarter
steps (rounded Gaussians), where every squared distance is an exact float32 number in both implementations, so
the rankings are compared for strict equality, not "equal up to rounding". With ``--dtype float16`` the
features are real-valued unit vectors, the database is stored in half precision, and the rankings are compared
with numpy's in float32 on the unrounded features: the benchmark reports how well they agree.

Peak memory is the process's peak resident set size (``ru_maxrss``) right after our search: Python, torch, the
database and the search's working memory; the database is generated block by block so that generation itself
never holds more than the database. The last line is machine-readable::

    RESULT search_speedup_vs_numpy=<numpy seconds per query / ours> peak_rss_mb=<MB>
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable

import numpy as np

from .. import cli
from ..normalize import l2_rows
from ..retrieval.search import plan_chunk, rank, spatial_distances
from . import DIM_HELP, add_counts, apply_quick

QUICK = {"images": 400, "queries": 8, "dim": 256, "baseline_queries": 2}
DB_PATCHES, QUERY_PATCHES = 30, 14
BLOCK = 250  # database images generated per block (the numpy baseline regenerates them block by block too)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``bench search``; every count and size must be above 0."""
    add_counts(parser, {"images": (5000, "database images (default 5000, Oxford5k's size)"),
                        "queries": (55, "queries (default 55, Oxford5k's)"), "dim": (1280, DIM_HELP),
                        "baseline_queries": (2, "queries the numpy baseline runs on (its time is extrapolated per "
                                                "query; default 2)")}, QUICK)
    parser.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                        help="database storage: float32 (rankings compared exactly) or float16 (default float32)")
    parser.add_argument("--chunk", type=cli.positive_int, default=None,
                        help="database images per block (default: from --memory-mb)")
    parser.add_argument("--memory-mb", type=cli.positive_float, default=256.0,
                        help="working memory per block (default 256)")
    parser.add_argument("--backend", choices=("torch", "faiss"), default="torch",
                        help="search backend: torch, or faiss (pip install faiss-cpu) (default torch)")
    parser.add_argument("--device", type=cli.device_name, default="cpu",
                        help="device of the torch backend (default cpu)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic database (default 0)")


def database_block(seed: int, block: int, n_images: int, dim: int, exact: bool) -> np.ndarray:
    """Block ``block`` of the synthetic database: ``(n_images, 30, dim)`` float32, the same on every call.

    ``exact``: values on a grid of quarter steps in [-2, 2] (squared distances exact in float32); otherwise
    unit vectors of Gaussian values.
    """
    rng = np.random.default_rng([seed, 0, block])
    values = rng.standard_normal((n_images, DB_PATCHES, dim), dtype=np.float32)
    if exact:
        return np.clip(np.round(values * 2), -8, 8) / np.float32(4)
    return l2_rows(values)


def make_database(n_images: int, dim: int, dtype: str, seed: int, exact: bool) -> np.ndarray:
    """The whole database in its storage type, filled block by block (no full-size float32 temporary)."""
    database = np.empty((n_images, DB_PATCHES, dim), dtype=np.dtype(dtype))
    for block, start in enumerate(range(0, n_images, BLOCK)):
        stop = min(start + BLOCK, n_images)
        database[start:stop] = database_block(seed, block, stop - start, dim, exact)
    return database


def make_queries(
    n_queries: int, n_images: int, dim: int, seed: int, exact: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Planted queries ``(Q, 14, dim)`` float32 and their targets: 14 of a target's patches, plus noise."""
    rng = np.random.default_rng([seed, 1])
    targets = np.linspace(0, n_images - 1, n_queries).astype(int)
    queries = np.empty((n_queries, QUERY_PATCHES, dim), dtype=np.float32)
    for row, target in enumerate(targets):
        block = target // BLOCK
        size = min(BLOCK, n_images - block * BLOCK)
        patches = database_block(seed, block, size, dim, exact)[target - block * BLOCK]
        chosen = patches[rng.choice(DB_PATCHES, QUERY_PATCHES, replace=False)]
        if exact:  # move one coordinate in eight by a quarter step: still on the grid
            step = (rng.random(chosen.shape) < 0.125) * rng.choice([-0.25, 0.25], chosen.shape)
            queries[row] = chosen + step.astype(np.float32)
        else:
            noisy = chosen + np.float32(0.3 / np.sqrt(dim)) * rng.standard_normal(
                chosen.shape, dtype=np.float32
            )
            queries[row] = l2_rows(noisy)
    return queries, targets


def numpy_distances(queries: np.ndarray, n_images: int, dim: int, seed: int, exact: bool) -> np.ndarray:
    """The straightforward reference, in float32 on the original (not half-precision) features."""
    out = np.empty((len(queries), n_images))
    for block, start in enumerate(range(0, n_images, BLOCK)):
        stop = min(start + BLOCK, n_images)
        images = database_block(seed, block, stop - start, dim, exact)
        for column, image in enumerate(images, start=start):
            for row, query in enumerate(queries):
                difference = query[:, None, :] - image[None, :, :]  # (14, 30, dim)
                nearest = np.sqrt((difference * difference).sum(axis=-1)).min(axis=1)
                out[row, column] = nearest.astype(np.float64).mean()
    return out


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def _agreement(ours: np.ndarray, reference: np.ndarray) -> str:
    ours_ranks, reference_ranks = rank(ours), rank(reference)
    top10 = np.mean(
        [len(set(a[:10]) & set(b[:10])) / 10 for a, b in zip(ours_ranks, reference_ranks, strict=True)]
    )
    return (
        f"same top-1 {np.mean(ours_ranks[:, 0] == reference_ranks[:, 0]):.0%}, top-10 overlap {top10:.0%}, "
        f"identical positions {np.mean(ours_ranks == reference_ranks):.1%}, "
        f"max |distance difference| {np.abs(ours - reference).max():.2e}"
    )


def _timed(work: Callable[[], np.ndarray]) -> tuple[np.ndarray, float, float]:
    """``work()``'s result, its wall-clock seconds and its CPU seconds (all threads of this process)."""
    start, cpu_start = time.perf_counter(), time.process_time()
    result = work()
    return result, time.perf_counter() - start, time.process_time() - cpu_start


def _search_ours(args: argparse.Namespace, exact: bool) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Build the database and queries, time our search on them and print it; returns our distances, the queries,
    the seconds and the peak RSS (MB)."""
    baseline_mb = _peak_rss_mb()  # Python, numpy, torch and their libraries, before any data
    database = make_database(args.images, args.dim, args.dtype, args.seed, exact)
    queries, targets = make_queries(args.queries, args.images, args.dim, args.seed, exact)
    chunk = args.chunk or plan_chunk(args.queries * QUERY_PATCHES, DB_PATCHES, args.dim, args.memory_mb)
    print(f"database array: {database.nbytes / 2**20:.0f} MB; {chunk} images per block")
    options = {"chunk": chunk, "dtype": args.dtype, "backend": args.backend, "device": args.device}
    spatial_distances(queries[:1], database[: min(chunk, 8)], **options)  # warm-up: thread pools, allocator
    ours, seconds, cpu = _timed(lambda: spatial_distances(queries, database, **options))
    peak_mb = _peak_rss_mb()
    print(
        f"ours:  {seconds:.2f} s for {args.queries} queries = {args.queries / seconds:.1f} queries/s ({cpu:.1f} s of "
        f"CPU time); planted image ranked first for {np.mean(rank(ours)[:, 0] == targets):.0%} of queries"
    )
    print(
        f"peak RSS {peak_mb:.0f} MB = {baseline_mb:.0f} MB before any data (Python, torch and their "
        f"libraries) + {peak_mb - baseline_mb:.0f} MB (database {database.nbytes / 2**20:.0f} MB, queries "
        "and search blocks)"
    )
    return ours, queries, seconds, peak_mb


def run(args: argparse.Namespace) -> int:
    import torch

    apply_quick(args, QUICK)
    exact = args.dtype == "float32"
    n_base = max(1, min(args.baseline_queries, args.queries))
    print(
        f"spatial search: {args.images} images x {DB_PATCHES} patches, {args.queries} queries x "
        f"{QUERY_PATCHES} patches, {args.dim}-d, database {args.dtype}, backend {args.backend}, "
        f"device {args.device}, torch threads {torch.get_num_threads()}"
    )
    print(f"features: {'quarter-step grid (exact float32 arithmetic)' if exact else 'real-valued unit vectors'}")
    ours, queries, ours_seconds, peak_mb = _search_ours(args, exact)
    reference, seconds, cpu = _timed(lambda: numpy_distances(queries[:n_base], args.images, args.dim, args.seed,
                                                             exact))
    numpy_per_query = seconds / n_base
    print(
        f"numpy: {numpy_per_query:.2f} s per query ({cpu / n_base:.2f} s CPU; measured on {n_base}), estimated "
        f"{numpy_per_query * args.queries:.0f} s for {args.queries} = {1 / numpy_per_query:.2f} queries/s"
    )
    if exact:
        same = np.array_equal(rank(ours[:n_base]), rank(reference))
        print(f"rankings identical to numpy's on the {n_base} measured queries: {same}")
        if not same:
            print("ERROR: our rankings differ from the numpy reference.", file=sys.stderr)
            return 1
    else:
        print(f"float16 against numpy float32 on {n_base} queries: {_agreement(ours[:n_base], reference)}")
    speedup = numpy_per_query / (ours_seconds / args.queries)
    print(f"speed-up: {speedup:.1f}x")
    print(f"RESULT search_speedup_vs_numpy={speedup:.1f} peak_rss_mb={peak_mb:.0f}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.bench.search", description=__doc__.split("\n")[0]
    )
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
