"""Benchmark: how long the full profile's feature extraction takes on this machine, projected from a small sample.

``python -m course_utils bench workload [--backbones resnet50,...] [--images N] [--engine NAME] [--device cpu|cuda]``

The full profile (``reproduce --profile full``) extracts, for every paper dataset (:data:`WORKLOAD`), the whole
image and the paper's augmented views: 16 views (``paper16``) for the classification and attribute sets and for
Holidays and UKBench (CNN-ss with 16-view jitter), the 30-patch spatial pyramid (``SpatialPatches(4)``) for Oxford,
Paris and Sculptures. Each dataset's image count comes from :mod:`course_utils.datasets.specs`; its *typical* image
size (:data:`WORKLOAD`) from the datasets' published descriptions. For each distinct (size, views) pair this command
writes ``--images`` synthetic JPEGs of that size (scikit-image photos resized), times
:func:`course_utils.features.extract` on them (no cache, after a warm-up that builds the engine), and multiplies:
``projected = sum over datasets and passes of images x seconds per image``. It also times the decoding alone (the
pipeline's loader without a network), which the H200 projection needs.

**H200 projection.** No GPU is needed for it: it scales the H200 figures measured earlier with ``bench extract``
(:data:`H200_IMAGES_PER_S`, from ``benchmarks/README.md``: ResNet-50, 500 x 375 photos, 15 decoding workers). Those
runs were limited by decoding on the CPU cores, not by the network, so each (size, views) pass is projected as the
H200 rate for that view count, times this machine's decoding time of a 500 x 375 photo over its decoding time for
that size and view spec. A *projection from earlier measurements*, printed as such, not a measurement.

The last line is machine-readable::

    RESULT projected_minutes_<backbone>=<min> ... h200_projected_minutes_<backbone>=<min or n/a> ...
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .. import cli

# The view specs of the full profile's passes: (label, number of views).
PASSES = {"classification": ("whole", "paper16"), "jitter": ("whole", "paper16"), "spatial": ("whole", "spatial4")}
DECODE_REPEATS = 3
REFERENCE_SIZE = (500, 375)  # the photos of the H200 measurements
# Pipeline rates measured on one H200 (16 CPU cores) by ``bench extract`` on 2026-11-26 (benchmarks/README.md):
# {(backbone, views): images per second}. The 30-patch pass is projected from the 16-view rate per view.
H200_IMAGES_PER_S = {("resnet50", 1): 4020.0, ("resnet50", 16): 397.0, ("efficientnet_lite0", 1): 4376.0}


@dataclass(frozen=True)
class Dataset:
    """One paper dataset of the full profile: images extracted, typical image size, which passes."""

    name: str
    images: int
    size: tuple[int, int]
    kind: str  # a key of PASSES


# Image counts as extracted by the full profile (datasets/specs.py); typical sizes from the datasets' descriptions.
WORKLOAD = (
    Dataset("voc2007", 9_963, (500, 375), "classification"),
    Dataset("mit67", 6_700, (500, 375), "classification"),  # the standard 80 + 20 per class split; sizes vary
    Dataset("cub200", 11_788, (500, 375), "classification"),  # bird boxes cropped first: decoding as whole photos
    Dataset("flowers102", 8_189, (500, 375), "classification"),  # longer side 500
    Dataset("uiuc_apascal", 8_984, (500, 375), "classification"),  # object boxes in VOC-size photos
    Dataset("h3d", 8_035, (500, 375), "classification"),  # person boxes
    Dataset("oxford5k", 5_063, (1024, 768), "spatial"),
    Dataset("paris6k", 6_392, (1024, 768), "spatial"),
    Dataset("sculptures6k", 6_340, (1024, 768), "spatial"),
    Dataset("holidays", 1_491, (2048, 1536), "jitter"),  # camera photos; many larger still
    Dataset("ukbench", 10_200, (640, 480), "jitter"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``bench workload``."""
    parser.add_argument("--backbones", type=_backbone_list, default="resnet50",
                        help="comma-separated backbones (default resnet50, the full profile's)")
    parser.add_argument("--images", type=cli.positive_int, default=4,
                        help="synthetic JPEGs timed per (size, views) pair (default 4)")
    parser.add_argument("--engine", type=cli.engine_name, default="auto", help="engine (default auto)")
    parser.add_argument("--device", type=cli.device_name, default=None,
                        help="cpu or cuda (default: cuda when a GPU is usable, else cpu)")
    parser.add_argument("--pretrained", action="store_true",
                        help="ImageNet weights (default: random weights, same speed, no download)")


def _backbone_list(text: str) -> list[str]:
    """``--backbones``: comma-separated registry names, each checked."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("needs at least one backbone name")
    return [cli.backbone_name(name) for name in names]


def view_spec(name: str):
    """The view spec of a pass name: ``whole``, ``paper16`` or ``spatial4`` (the 30-patch database pyramid)."""
    from .. import augment
    from ..retrieval import SpatialPatches

    return SpatialPatches(4) if name == "spatial4" else augment.get_views(name)


def write_jpegs(folder: Path, size: tuple[int, int], count: int) -> list[Path]:
    """``count`` distinct JPEGs (quality 90) of ``size``: scikit-image's sample photographs resized."""
    from PIL import Image
    from skimage import data

    from ..datasets.images import save_image
    from .extract import SOURCE_PHOTOS

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        photo = Image.fromarray(getattr(data, SOURCE_PHOTOS[i % len(SOURCE_PHOTOS)])()).convert("RGB")
        paths.append(save_image(photo.resize(size, Image.Resampling.BICUBIC), folder / f"img{i:04d}.jpg"))
    return paths


def seconds_per_image(paths: list[Path], backbone, spec, engine: str) -> tuple[float, float]:
    """(pipeline seconds per image, decoding-alone seconds per image) for ``spec`` on ``paths``."""
    from .. import features

    features.extract(paths[:1], backbone, views=spec, engine=engine, cache=False, progress=False)  # warm-up
    started = time.perf_counter()
    features.extract(paths, backbone, views=spec, engine=engine, cache=False, progress=False)
    pipeline = (time.perf_counter() - started) / len(paths)
    decode = math.inf
    for _ in range(DECODE_REPEATS):  # cheap, and the H200 projection leans on it: the best of a few passes
        started = time.perf_counter()
        for _ in features.view_loader(paths, backbone, spec, images_per_batch=1, num_workers=0):
            pass
        decode = min(decode, (time.perf_counter() - started) / len(paths))
    return pipeline, decode


def h200_seconds(backbone: str, n_views: int, decode: float, reference_decode: float) -> float | None:
    """Projected seconds per image on one H200 (see the module docstring), or ``None`` without a measured rate."""
    views = 1 if n_views == 1 else 16
    rate = H200_IMAGES_PER_S.get((backbone, views))
    if rate is None:
        return None
    return (1 / rate) * (n_views / views) * (decode / reference_decode)


def project(timings: dict[tuple[tuple[int, int], str], tuple[float, float]], reference: dict[str, float],
            backbone: str) -> tuple[list[tuple[str, float, float | None]], float, float | None]:
    """Per-dataset (name, seconds here, seconds on an H200 or ``None``) and both totals, from the timings per
    (size, pass) and the decoding time per pass of a :data:`REFERENCE_SIZE` photo."""
    rows, total, total_h200 = [], 0.0, 0.0
    for dataset in WORKLOAD:
        here, h200 = 0.0, 0.0
        for name in PASSES[dataset.kind]:
            pipeline, decode = timings[(dataset.size, name)]
            here += dataset.images * pipeline
            n_views = view_spec(name).n_views
            projected = h200_seconds(backbone, n_views, decode, reference[name])
            h200 = None if projected is None or h200 is None else h200 + dataset.images * projected
        rows.append((dataset.name, here, h200))
        total += here
        total_h200 = None if h200 is None or total_h200 is None else total_h200 + h200
    return rows, total, total_h200


def run(args: argparse.Namespace) -> int:
    """Time every (size, pass) pair for each backbone, print the per-dataset projection and the RESULT line."""
    from .. import backbones, config
    from .extract import _load_average

    device = config.device(args.device)
    names = args.backbones
    pairs = sorted({(dataset.size, name) for dataset in WORKLOAD for name in PASSES[dataset.kind]})
    pairs += [(REFERENCE_SIZE, name) for name in ("whole", "paper16", "spatial4") if (REFERENCE_SIZE, name) not in pairs]
    print(f"bench workload: {', '.join(names)}, {args.images} synthetic JPEGs per (size, views) pair, "
          f"{len(WORKLOAD)} datasets ({sum(d.images for d in WORKLOAD):,} images), {config.cpu_count()} CPU cores, "
          f"device {device}, load average {_load_average()}")
    result = []
    with tempfile.TemporaryDirectory(prefix="bench-workload-") as tmp:
        photos = {size: write_jpegs(Path(tmp) / f"{size[0]}x{size[1]}", size, args.images)
                  for size in sorted({size for size, _ in pairs})}
        for name in names:
            backbone = backbones.load(name, pretrained=args.pretrained, device=device)
            timings = {}
            for size, view in pairs:
                timings[(size, view)] = seconds_per_image(photos[size], backbone, view_spec(view), args.engine)
                pipeline, decode = timings[(size, view)]
                print(f"  {name} {size[0]}x{size[1]} {view}: {1 / pipeline:.2f} images/s (decoding alone "
                      f"{1 / decode:.1f} images/s)")
            reference = {view: timings[(REFERENCE_SIZE, view)][1] for view in ("whole", "paper16", "spatial4")}
            rows, total, total_h200 = project(timings, reference, name)
            print(f"{name}: projected extraction time of the full profile on this machine, per dataset:")
            for dataset, here, h200 in rows:
                print(f"  {dataset:<14}{here / 60:>10.1f} min" + ("" if h200 is None else
                                                                f"   (H200 projection {h200 / 60:.1f} min)"))
            print(f"  {'total':<14}{total / 60:>10.1f} min = {total / 3600:.2f} h on this machine")
            if total_h200 is None:
                print(f"  H200: no earlier H200 measurement of {name} with 16 views to project from")
            else:
                print(f"  H200: {total_h200 / 60:.1f} min - a projection from the H200 figures measured on 2026-11-26 "
                      f"(benchmarks/README.md), scaled by the decoding costs measured here; not a measurement")
            result.append(f"projected_minutes_{name}={total / 60:.1f}")
            result.append(f"h200_projected_minutes_{name}=" + ("n/a" if total_h200 is None else f"{total_h200 / 60:.1f}"))
    print(f"load average now {_load_average()}")
    print("RESULT " + " ".join(result))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m course_utils bench workload", description=__doc__.split("\n")[0])
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))

