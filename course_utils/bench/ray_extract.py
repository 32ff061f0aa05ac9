"""Benchmark: feature extraction as a local Ray Data job against one process, on the same cores and images.

``python -m course_utils bench ray [--images 256 --views 16 --backbone efficientnet_lite0 --engine auto]
[--replicas N --cpus-per-replica C --gpus-per-replica G] [--quick]``

It writes ``--images`` JPEG photographs (500 x 375, :func:`course_utils.bench.extract.write_photos`), starts a local
Ray on this machine's cores (``ray.init(num_cpus=cores)``, timed apart: a cluster is started once, not per job; with
``RAY_ADDRESS`` set it joins that cluster instead),
then extracts the same images twice, each into a fresh cache folder:

(a) **one process**: :func:`course_utils.features.extract`, as every notebook runs it;
(b) **Ray**: :func:`course_utils.scale.ray_extract.extract`, by default one replica per core
    (``cpus_per_replica=1``; on a GPU node ``--gpus-per-replica 1 --cpus-per-replica 16``: one per GPU), each
    loading the network and building its engine inside the job (counted: every job pays it).

The driver's copy of the network is loaded before both and not counted. Then it checks that the two entries hold
the same features (largest difference printed; one thread per replica against all cores in one process changes
the order of float32 sums, so equal within 1e-5, not bit for bit) and that ``features.extract`` on the same inputs is
a hit on Ray's entry. The last line is machine-readable::

    RESULT ray_vs_local=<(a) seconds / (b) seconds> ray_images_per_second=<x> load=<1-minute load average>

``ray_vs_local`` >= 0.8 means the distributed engine costs little on one machine; on a cluster it is what lets
the job use more than one. ``ray_images_per_second / replicas`` is the per-replica rate that ``docs/scale.md``
projects from.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .. import cli, config

QUICK = {"images": 24, "views": 1}
VIEWS = {1: "whole", 2: "mirror", 16: "paper16"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``bench ray``."""
    parser.add_argument("--images", type=cli.positive_int, default=256, help="photos to extract (default 256)")
    parser.add_argument("--views", type=int, choices=sorted(VIEWS), default=16,
                        help="views per image: 1 (whole), 2 (mirror) or 16 (paper16, default)")
    parser.add_argument("--backbone", type=cli.backbone_name, default=config.DEFAULT_BACKBONE,
                        help=f"network (default {config.DEFAULT_BACKBONE})")
    parser.add_argument("--engine", type=cli.engine_name, default="auto", help="feature engine (default auto)")
    parser.add_argument("--cores", type=cli.positive_int, default=None,
                        help="cores for both runs: Ray's CPUs and the replicas (default: this machine's)")
    parser.add_argument("--replicas", type=cli.positive_int, default=None,
                        help="model replicas of (b) (default: one per core, or per GPU with --gpus-per-replica)")
    parser.add_argument("--cpus-per-replica", type=cli.positive_int, default=1,
                        help="cores per replica of (b): its threads, and all but one decode on a GPU (default 1)")
    parser.add_argument("--gpus-per-replica", type=float, default=0.0,
                        help="GPUs per replica of (b): 1 on a GPU node (default 0: CPU replicas)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke-test size: {QUICK['images']} images, {QUICK['views']} view")


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, or ``n/a`` where there are none."""
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except (AttributeError, OSError):
        return "n/a"


def run(args: argparse.Namespace) -> int:
    from .. import features
    from ..scale import ray_extract
    from .extract import write_photos

    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    ray = ray_extract.import_ray()
    cores = args.cores or config.cpu_count()
    views = VIEWS[args.views]
    print(f"extraction: {args.images} photos x {args.views} view(s) ({views}), {args.backbone}, engine {args.engine}, "
          f"{cores} cores; load average before: {load_average()}")
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        folder = Path(tmp)
        paths = write_photos(folder / "photos", args.images)
        features._load_backbone(args.backbone, "cpu")  # the driver's copy, for both runs, not timed
        options = {"views": views, "engine": args.engine, "progress": False}

        started = time.perf_counter()
        local = features.extract(paths, args.backbone, cache=folder / "local", **options)
        local_seconds = time.perf_counter() - started
        print(f"(a) one process: {local_seconds:.1f} s = {args.images / local_seconds:.2f} images/s "
              f"(engine {_settings(local).get('engine', '?')})")

        started = time.perf_counter()
        if os.environ.get("RAY_ADDRESS"):  # a cluster started with `ray start`: join it as it is
            ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False, configure_logging=False)
        else:
            ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False, configure_logging=False)
        print(f"    Ray started in {time.perf_counter() - started:.1f} s (not counted)")
        try:
            started = time.perf_counter()
            replicas = args.replicas or (None if args.gpus_per_replica else max(1, cores // args.cpus_per_replica))
            distributed = ray_extract.extract(paths, args.backbone, cache=folder / "ray", replicas=replicas,
                                              cpus_per_replica=args.cpus_per_replica,
                                              gpus_per_replica=args.gpus_per_replica, **options)
            ray_seconds = time.perf_counter() - started
        finally:
            ray.shutdown()
        rate = args.images / ray_seconds
        used = _settings(distributed)
        n_replicas = int(used.get("replicas", replicas or 1))
        print(f"(b) Ray, {n_replicas} replicas x {args.cpus_per_replica} core(s), {args.gpus_per_replica} GPU(s) each: "
              f"{ray_seconds:.1f} s = {rate:.2f} images/s, {rate / n_replicas:.2f} per replica (engine "
              f"{used.get('engine', '?')}; replica start-up included)")

        layer = local.layers[0]
        difference = float(np.nanmax(np.abs(np.asarray(local[layer]) - np.asarray(distributed[layer]))))
        hit = features.extract(paths, args.backbone, cache=folder / "ray", **options)
        print(f"largest feature difference: {difference:.2e}; features.extract on Ray's entry: "
              f"{'cache hit' if hit.from_cache else 'MISS'}")
        if not hit.from_cache or difference > 1e-5:
            print("ERROR: Ray's features differ from one process's or its entry is not a hit.", file=sys.stderr)
            return 1
    ratio = local_seconds / ray_seconds
    load = load_average()
    print(f"ray_vs_local: {ratio:.2f} (goal >= 0.8); load average after: {load}")
    print(f"RESULT ray_vs_local={ratio:.2f} ray_images_per_second={rate:.2f} load={load.split()[0]}")
    return 0


def _settings(found) -> dict:
    """The settings (engine, replicas ...) that an entry's complete.json records; empty when unreadable."""
    import json

    try:
        return json.loads((found.cache_path / "complete.json").read_text())
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m course_utils bench ray", description=__doc__.split("\n")[0])
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
