"""Benchmark: feature-extraction throughput and memory, our pipeline against a naive loop and the forward pass alone.

``python -m course_utils bench extract --backbone NAME --images N [--views 1|2|16] [--pretrained | --random]
[--device cpu|cuda]``

It writes ``N`` JPEG photographs (500 x 375 crops of scikit-image's sample photos, quality 90; beyond the first
:data:`DISTINCT_PHOTOS` they are byte copies, which cost the same to decode and much less to make) into a temporary
folder, then measures on this machine and device (default: the GPU when there is one), in this one run:

(a) **naive**: the loop a learner writes first: for each file, ``PIL.Image.open``, convert to RGB, cut the views,
    apply the backbone's transform and run PyTorch on one view at a time (``torch.no_grad``, default threads,
    float32; on a GPU each view is copied there and its features back), over the first ``--naive-images`` files;
(b) **pipeline**: :func:`course_utils.features.extract` end to end on the JPEG files into a fresh cache folder
    (decoding worker, batching, the chosen engine, memory-mapped writes), with the batch size that
    :func:`course_utils.features.tune_batch_size` measured (once per machine, then remembered; the probe's time is
    printed, not counted) and the engine it built;
(c) **forward bound**: the forward pass alone on ready tensors (already on the device), the best over engines, batch
    sizes and memory formats:
    a sweep of them all (:func:`course_utils.engines.bench_forward`, ``--batch-sizes``), then each engine's best
    configuration again in every round; the highest figure of all counts. What the pipeline would reach if decoding
    were free;
(d) **decoding alone**: the pipeline's loader with its workers and no network, the other ceiling; with no worker
    (a 2-core CPU) decoding and the network take turns, so the pipeline's best is ``1 / (1/c + 1/d)``, else
    ``min(c, d)``; the figure printed says how close the pipeline comes;
(e) on a GPU, **nvJPEG**: the same files decoded on the GPU in batches and resized, to see whether GPU decoding
    could feed the network faster than the CPU's cores;
(f) on a CPU, **INT8 forward**: the ``onnxruntime-int8`` engine against ONNX Runtime float32, both at the float32
    engine's best batch, on the same ready tensors, in the same rounds (its quantisation, once per network, is not
    timed);
(g) **big photos**: ``--big-images`` 12-megapixel JPEGs (4000 x 3000, scikit-image photos upscaled, quality 90)
    through the pipeline's loader and engine, decoded at reduced scale (Pillow's ``draft``: what extraction does)
    against decoded in full (what it did before), in the same rounds.

Other programs' load comes and goes, so (c), (a) and (b) are measured in ``--rounds`` interleaved rounds and each
keeps its best (the bound also keeps the sweep's best, so that noise can only raise it). Rates count images; with
``V`` views an image costs ``V`` forward passes, so the bound (measured in view-forwards/s) is divided by ``V``. Peak
memory is the peak resident set (``getrusage``) of a fresh Python process that loads the network and extracts the
images once, and nothing else; its decoding worker's peak is printed apart (a forked worker shares most of its pages
with its parent, so adding the two would count them twice).
The last line is machine-readable::

    RESULT pipeline_vs_naive=<b / a> pipeline_vs_forward=<b / c> ort_vs_torch=<x> int8_vs_fp32=<x>
    bigphoto_vs_full=<x> peak_rss_mb=<MB>

``ort_vs_torch`` is ONNX Runtime's best forward figure over PyTorch eager's best (each the best of the sweep, at any
batch size and memory format, and of its rounds), both measured in this run: ``n/a`` when ONNX Runtime cannot run
here (not installed, or on a GPU without its CUDA provider). ``int8_vs_fp32`` is (f)'s ratio, ``n/a`` on a GPU or
without ONNX Runtime; ``bigphoto_vs_full`` is (g)'s, reduced over full decoding.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import cli
from ..config import DEFAULT_BACKBONE

if TYPE_CHECKING:
    from ..augment import ViewSpec
    from ..backbones import Backbone
    from ..engines import Engine

VIEWS = {1: "whole", 2: "mirror", 16: "paper16"}
PHOTO_SIZE = (500, 375)
NVJPEG_BATCH = 128
DISTINCT_PHOTOS = 256  # photos cut and encoded; the rest are byte copies of them (a GPU run needs thousands)
SOURCE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry")
BIG_PHOTO_SIZE = (4000, 3000)  # a 12-megapixel phone photo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``bench extract``; counts, names and devices are checked as they are read."""
    parser.add_argument("--backbone", type=cli.backbone_name, default=DEFAULT_BACKBONE,
                        help=f"network (default {DEFAULT_BACKBONE})")
    parser.add_argument("--layer", default=None,
                        help="feature layer, checked against the backbone's (default: the backbone's default layer)")
    parser.add_argument("--images", type=cli.positive_int, default=48, help="number of JPEG files (default 48)")
    parser.add_argument("--views", type=int, choices=sorted(VIEWS), default=1,
                        help="views per image: 1 (whole), 2 (mirror) or 16 (the paper's); default 1")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--pretrained", dest="pretrained", action="store_true",
                         help="ImageNet weights (torchvision networks download them once)")
    weights.add_argument("--random", dest="pretrained", action="store_false",
                         help="random weights: same speed, no download (default)")
    parser.set_defaults(pretrained=False)
    parser.add_argument("--engine", type=cli.engine_name, default="auto",
                        help="engine of the pipeline: auto, torch, onnxruntime, onnxruntime-int8, compile "
                             "(default auto)")
    parser.add_argument("--device", type=cli.device_name, default=None,
                        help="cpu or cuda (default: cuda when a GPU is usable, else cpu)")
    parser.add_argument("--naive-images", type=cli.positive_int, default=None,
                        help="time the naive loop on the first N images only (default: all; it is slow on a GPU run)")
    parser.add_argument("--batch-sizes", type=cli.positive_int_list, default="1,8,16,32",
                        help="batch sizes of the forward bound (default 1,8,16,32)")
    parser.add_argument("--seconds", type=cli.positive_float, default=2.0,
                        help="minimum time per forward measurement (default 2)")
    parser.add_argument("--rounds", type=cli.positive_int, default=3,
                        help="interleaved rounds of (c), (a), (b); each keeps its best (default 3)")
    parser.add_argument("--big-images", type=cli.positive_int, default=6,
                        help="12-megapixel JPEGs of the big-photo measurement (g) (default 6)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the photo crops (default 0)")
    parser.add_argument("--pipeline-only", default=None, help=argparse.SUPPRESS)  # internal: measurement (b)
    parser.add_argument("--report", default=None, help=argparse.SUPPRESS)


def write_photos(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` JPEG files of ``PHOTO_SIZE``: random crops (and mirrors) of scikit-image's sample photographs; files
    after the first :data:`DISTINCT_PHOTOS` are byte copies of those."""
    import shutil

    from PIL import Image
    from skimage import data

    from ..datasets.images import save_image

    rng = np.random.default_rng(seed)
    sources = [Image.fromarray(getattr(data, name)()).convert("RGB") for name in SOURCE_PHOTOS]
    width, height = PHOTO_SIZE
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        if i >= DISTINCT_PHOTOS:
            paths.append(Path(shutil.copyfile(paths[i % DISTINCT_PHOTOS], folder / f"photo{i:05d}.jpg")))
            continue
        source = sources[i % len(sources)]
        scale = max(width / source.width, height / source.height) * rng.uniform(1.0, 1.6)
        resized = source.resize((round(source.width * scale), round(source.height * scale)), Image.Resampling.BILINEAR)
        x0 = int(rng.integers(0, resized.width - width + 1))
        y0 = int(rng.integers(0, resized.height - height + 1))
        photo = resized.crop((x0, y0, x0 + width, y0 + height))
        if rng.random() < 0.5:
            photo = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        paths.append(save_image(photo, folder / f"photo{i:05d}.jpg"))
    return paths


def write_big_photos(folder: Path, count: int) -> list[Path]:
    """``count`` JPEG files of :data:`BIG_PHOTO_SIZE` (quality 90): scikit-image's sample photographs upscaled
    (bicubic), in turn, each file distinct (mirrored or not). Their content matters little; decoding time does."""
    from PIL import Image
    from skimage import data

    from ..datasets.images import save_image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        photo = Image.fromarray(getattr(data, SOURCE_PHOTOS[i % len(SOURCE_PHOTOS)])()).convert("RGB")
        photo = photo.resize(BIG_PHOTO_SIZE, Image.Resampling.BICUBIC)
        if (i // len(SOURCE_PHOTOS)) % 2:
            photo = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        paths.append(save_image(photo, folder / f"big{i:05d}.jpg"))
    return paths


def loader_images_per_second(paths: list[Path], backbone: Backbone, spec: ViewSpec, engine: Engine, batch: int,
                             reduce_big_jpegs: bool) -> float:
    """(g): the pipeline's loader (no worker: the 2-core plan) and ``engine`` on its batches, nothing stored; with or
    without reduced decoding of big JPEGs."""
    import torch

    from .. import features

    loader = features.view_loader(paths, backbone, spec, images_per_batch=max(1, batch // spec.n_views),
                                  num_workers=0, reduce_big_jpegs=reduce_big_jpegs)
    started = time.perf_counter()
    for _, pixels, _ in loader:
        if pixels.dtype == torch.uint8:  # the registry's transforms: normalised where the network runs
            pixels = backbone.transform.standardize(pixels.to(engine.device))
        for start in range(0, len(pixels), batch):
            engine(pixels[start : start + batch])
    return len(paths) / (time.perf_counter() - started)


def naive_images_per_second(paths: list[Path], backbone: Backbone, layer: str, spec: ViewSpec) -> float:
    """(a): open, convert, cut views, transform and forward one view at a time, as a first notebook would (on the
    backbone's device: each view goes there, its features come back)."""
    import torch
    from PIL import Image

    model = backbone.extractor([layer]).to(memory_format=torch.contiguous_format)
    device = next(backbone.model.parameters()).device
    started = time.perf_counter()
    with torch.no_grad():
        for path in paths:
            image = Image.open(path).convert("RGB")
            for view in spec(image):
                [output.cpu() for output in model(backbone.transform(view).unsqueeze(0).to(device))]
    return len(paths) / (time.perf_counter() - started)


def forward_images_per_second(engine: Engine, batch: int, views: int, input_size: int, n_views: int) -> float:
    """(c) at one configuration: ``views`` view-forwards on ready random tensors, as images per second."""
    import torch

    pixels = torch.randn(batch, 3, input_size, input_size, generator=torch.Generator().manual_seed(0))
    pixels = pixels.to(engine.device)  # ready tensors, already where the network runs
    engine(pixels)  # warm-up
    calls = max(2, math.ceil(views / batch))
    started = time.perf_counter()
    for _ in range(calls):
        engine(pixels)
    return calls * batch / (time.perf_counter() - started) / n_views


def decode_images_per_second(paths: list[Path], backbone: Backbone, spec: ViewSpec, workers: int, images_per_batch: int,
                             device: str) -> float:
    """(d): the pipeline's own loader (:func:`course_utils.features.view_loader`) iterated with no network: how many
    images a second decoding and view cutting can supply with these workers; the pipeline cannot beat it."""
    from .. import features

    loader = features.view_loader(paths, backbone, spec, images_per_batch=images_per_batch, num_workers=workers,
                                  pin_memory=device.startswith("cuda"))
    started = time.perf_counter()
    for _ in loader:
        pass
    return len(paths) / (time.perf_counter() - started)


def nvjpeg_images_per_second(paths: list[Path], size: int, device: str, limit: int = 4096) -> float:
    """(e), GPU only: decode the first ``limit`` files (read beforehand) with nvJPEG in batches and resize them to the
    network's input, for comparison with (d): could decoding on the GPU feed the network faster than the CPU cores?
    (With ``device="cpu"`` the same code runs torchvision's CPU decoder.)"""
    import torch
    from torchvision.io import decode_jpeg, read_file
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    encoded = [read_file(str(path)) for path in paths[:limit]]

    def decode(chunk) -> torch.Tensor:
        images = decode_jpeg(chunk, device=device)
        return torch.stack([F.resize_image(image, [size, size], interpolation=InterpolationMode.BILINEAR,
                                           antialias=True) for image in images])

    def synchronize() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)

    decode(encoded[:NVJPEG_BATCH])  # warm-up: nvJPEG handles, kernels
    synchronize()
    started = time.perf_counter()
    for start in range(0, len(encoded), NVJPEG_BATCH):
        decode(encoded[start : start + NVJPEG_BATCH])
    synchronize()
    return len(encoded) / (time.perf_counter() - started)


def pipeline_images_per_second(paths: list[Path], backbone: Backbone, layer: str, spec: ViewSpec, engine: str,
                               cache: Path) -> float:
    """(b): :func:`course_utils.features.extract` end to end into the fresh cache folder ``cache``."""
    from .. import features

    started = time.perf_counter()
    features.extract(paths, backbone, [layer], spec, engine=engine, cache=cache, progress=False)
    return len(paths) / (time.perf_counter() - started)


@dataclasses.dataclass
class _Engines:
    """What the rounds measure: the sweep's rows, each engine's best configuration (``finalists``) built on a copy of
    the network (``bounds``), the naive loop's copy, the INT8 engine (CPU with onnxruntime only) and why it is absent,
    and the pipeline's engine."""

    rows: list[dict]
    finalists: dict[str, dict]
    bounds: dict[str, Engine]
    naive_backbone: Backbone
    int8: Engine | None
    int8_note: str
    pipeline: Engine | None = None


def _build_engines(backbone: Backbone, layer: str, device: str, cores: int, args: argparse.Namespace) -> _Engines:
    """Sweep every engine, batch size and memory format on ready tensors to find the forward bound's configuration
    (this also leaves the ONNX export in the cache for the pipeline); each engine's best configuration is measured
    again in every round. Engines convert their network's memory format in place, so each gets a copy."""
    from .. import engines

    rows = engines.bench_forward(backbone, [layer], batch_sizes=args.batch_sizes, seconds=args.seconds, threads=cores)
    print(engines.format_rows(rows))
    finalists = {row["engine"]: row for row in sorted(rows, key=lambda row: row["images_per_s"])}
    bounds = {name: engines.make_engine(_copy(backbone), [layer], name, threads=cores,
                                        channels_last=row["memory_format"] == "channels_last")
              for name, row in finalists.items()}
    naive_backbone = _copy(backbone)
    int8 = None
    int8_note = "n/a on a GPU" if device.startswith("cuda") else "n/a: onnxruntime is not installed"
    if not device.startswith("cuda") and "onnxruntime" in bounds:
        try:
            int8 = engines.make_engine(_copy(backbone), [layer], engines.INT8, threads=cores)
            int8_note = int8.reason
        except Exception as err:  # an optional measurement: report why, keep the rest of the run
            int8_note = f"not available ({type(err).__name__}: {err})"
    return _Engines(rows, finalists, bounds, naive_backbone, int8, int8_note)


@dataclasses.dataclass
class _Rounds:
    """Every round's figure per measurement (``rates``), the candidates for the forward bound with where each comes
    from, and each engine's best forward rate."""

    rates: dict[str, list[float]]
    forward_sources: list[tuple[float, str]]
    per_engine: dict[str, float]

    def listed(self, key: str) -> str:
        return ", ".join(f"{rate:.2f}" for rate in self.rates[key])


def _measure_rounds(args: argparse.Namespace, backbone: Backbone, layer: str, spec: ViewSpec, found: _Engines,
                    paths: list[Path], big_paths: list[Path], tmp: Path) -> _Rounds:
    """The measurements, interleaved in rounds; each keeps its best round (other programs' load comes and goes, and
    interleaving exposes them all to the same conditions)."""
    rates: dict[str, list[float]] = {key: [] for key in ("forward", "naive", "pipeline", "int8", "fp32", "reduced",
                                                           "full")}
    sweep_best = max(found.rows, key=lambda row: row["images_per_s"])
    rounds = _Rounds(rates, [(sweep_best["images_per_s"] / spec.n_views, f"sweep: {_config(sweep_best)}")],
                     best_per_engine(found.rows, spec.n_views))  # each engine's best, for ort_vs_torch
    views = args.images * spec.n_views
    for attempt in range(args.rounds):
        for name, engine in found.bounds.items():
            rate = forward_images_per_second(engine, found.finalists[name]["batch"], views, backbone.input_size,
                                             spec.n_views)
            rounds.forward_sources.append((rate, f"round {attempt + 1}: {_config(found.finalists[name])}"))
            rounds.per_engine[name] = max(rounds.per_engine[name], rate)
        rates["forward"].append(max(rate for rate, _ in rounds.forward_sources[-len(found.bounds):]))
        rates["naive"].append(naive_images_per_second(paths[: args.naive_images], found.naive_backbone, layer, spec))
        rates["pipeline"].append(pipeline_images_per_second(paths, backbone, layer, spec, args.engine,
                                                            tmp / f"cache{attempt}"))
        if found.int8 is not None:  # (f): both engines at float32's best batch, one after the other
            same = found.finalists["onnxruntime"]["batch"]
            for key, engine in (("int8", found.int8), ("fp32", found.bounds["onnxruntime"])):
                rates[key].append(forward_images_per_second(engine, same, views, backbone.input_size, spec.n_views))
        for key, reduce in (("reduced", True), ("full", False)):  # (g)
            rates[key].append(loader_images_per_second(big_paths, backbone, spec, found.pipeline,
                                                       found.pipeline.preferred_batch_size, reduce))
    return rounds


def _nvjpeg_note(paths: list[Path], size: int, device: str) -> str | None:
    """(e) as printed: the rate on a GPU, why it could not run, or ``None`` on a CPU."""
    if not device.startswith("cuda"):
        return None
    try:
        return f"{nvjpeg_images_per_second(paths, size, device):.2f} images/s"
    except Exception as err:  # an optional comparison: a torchvision without GPU decoding must not end the run
        return f"not available ({type(err).__name__}: {err})"


def run(args: argparse.Namespace) -> int:
    """Run the measurements and print them, then the RESULT line."""
    import torch

    from .. import augment, backbones, config, engines, features

    if args.pipeline_only:
        return _pipeline_only(args)
    if args.layer:
        cli.check_layer(args.backbone, args.layer)  # before the network is built
    spec = augment.get_views(VIEWS[args.views])
    device = config.device(args.device)
    backbone = backbones.load(args.backbone, pretrained=args.pretrained, device=device)
    layer = args.layer or backbone.default_layer
    cores = config.cpu_count()
    print(f"bench extract: {backbone.name} ({'pretrained' if args.pretrained else 'random'} weights), layer {layer}, "
          f"{args.images} JPEG images {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}, {spec.n_views} view(s) ({spec.name}), "
          f"{cores} CPU cores, device {_device_name(device)}, torch {torch.__version__}, load average {_load_average()}")
    with tempfile.TemporaryDirectory(prefix="bench-extract-") as folder:
        tmp = Path(folder)
        paths = write_photos(tmp / "images", args.images, args.seed)
        found = _build_engines(backbone, layer, device, cores, args)
        big_paths = write_big_photos(tmp / "big", args.big_images)
        found.pipeline = engines.make_engine(_copy(backbone), [layer], args.engine, threads=cores)
        started = time.perf_counter()
        batch = features.tune_batch_size(backbone, [layer], args.engine)
        print(f"pipeline batch size {batch} views (tune_batch_size: {time.perf_counter() - started:.1f} s, "
              f"measured once per machine and remembered)")
        rounds = _measure_rounds(args, backbone, layer, spec, found, paths, big_paths, tmp)
        report = _pipeline_in_subprocess(args, tmp / "images", layer, device, tmp / "report.json")
        decoding = max(decode_images_per_second(paths, backbone, spec, report["workers"],
                                                max(1, report["batch_size"] // spec.n_views), device)
                       for _ in range(args.rounds))
        nvjpeg = _nvjpeg_note(paths, backbone.input_size, device)
    _print_results(spec.n_views, rounds, found, report, decoding, nvjpeg, len(big_paths))
    return 0


def _print_results(n_views: int, rounds: _Rounds, found: _Engines, report: dict, decoding: float,
                   nvjpeg: str | None, n_big: int) -> None:
    """The measurements (a)-(g) as lines, then the machine-readable RESULT line."""
    naive, pipeline = max(rounds.rates["naive"]), max(rounds.rates["pipeline"])
    forward, forward_source = max(rounds.forward_sources)
    print(f"(c) forward bound: {forward:.2f} images/s = {forward * n_views:.1f} view-forwards/s "
          f"({forward_source}; best per round: {rounds.listed('forward')})")
    ratio = engine_ratio(rounds.per_engine)
    ort_vs_torch = "n/a" if ratio is None else f"{ratio:.2f}"
    print("    best forward per engine (sweep and rounds): "
          + ", ".join(f"{name} {rate:.2f} images/s" for name, rate in sorted(rounds.per_engine.items()))
          + f"; ONNX Runtime against PyTorch eager: {ort_vs_torch}")
    print(f"(a) naive loop: {naive:.2f} images/s (rounds: {rounds.listed('naive')})")
    print(f"(b) pipeline: {pipeline:.2f} images/s (rounds: {rounds.listed('pipeline')}); engine {report['engine']}, "
          f"batch {report['batch_size']} views, {report['workers']} decoding worker(s), {report['threads']} torch "
          f"thread(s)")
    print(f"(d) decoding alone: {decoding:.2f} images/s (the pipeline's loader with its {report['workers']} "
          f"worker(s) and nothing else: open, cut {n_views} view(s), resize)")
    if report["workers"] == 0:
        serial = 1 / (1 / forward + 1 / decoding)
        print(f"    decoding and the network take turns in one process: at best 1 / (1/(c) + 1/(d)) = {serial:.2f} "
              f"images/s; the pipeline reaches {pipeline / serial:.2f} of that")
    else:
        print(f"    workers decode while the network runs: at best min((c), (d)) = {min(forward, decoding):.2f} "
              f"images/s; the pipeline reaches {pipeline / min(forward, decoding):.2f} of that")
    if nvjpeg is not None:
        print(f"(e) JPEG decoding on the GPU (nvJPEG through torchvision.io.decode_jpeg, batches of "
              f"{NVJPEG_BATCH}, files already in memory, plus the resize): {nvjpeg}")
    int8_vs_fp32 = _print_int8(rounds, found)
    reduced, full = max(rounds.rates["reduced"]), max(rounds.rates["full"])
    print(f"(g) big photos ({n_big} JPEGs {BIG_PHOTO_SIZE[0]}x{BIG_PHOTO_SIZE[1]}, loader and "
          f"{found.pipeline.name} engine): decoded reduced {reduced:.2f} images/s, in full {full:.2f} images/s "
          f"(rounds: {rounds.listed('reduced')} / {rounds.listed('full')}): {reduced / full:.2f}x")
    print(f"peak resident memory of a fresh process extracting these features: {report['peak_rss_mb']:.0f} MB "
          f"(its decoding worker: {report['worker_peak_rss_mb']:.0f} MB, mostly pages shared with its parent); "
          f"load average now {_load_average()}")
    print(f"RESULT pipeline_vs_naive={pipeline / naive:.2f} pipeline_vs_forward={pipeline / forward:.2f} "
          f"ort_vs_torch={ort_vs_torch} int8_vs_fp32={int8_vs_fp32} bigphoto_vs_full={reduced / full:.2f} "
          f"peak_rss_mb={report['peak_rss_mb']:.0f}")


def _print_int8(rounds: _Rounds, found: _Engines) -> str:
    """(f): INT8 against float32 ONNX Runtime at the same batch; returns the ratio as the RESULT line writes it."""
    if not rounds.rates["int8"]:
        print(f"(f) INT8 forward: {found.int8_note}")
        return "n/a"
    int8, fp32 = max(rounds.rates["int8"]), max(rounds.rates["fp32"])
    print(f"(f) INT8 forward: {int8:.2f} images/s against ONNX Runtime float32 {fp32:.2f} at the same batch "
          f"{found.finalists['onnxruntime']['batch']} (rounds: {rounds.listed('int8')} / {rounds.listed('fp32')}): "
          f"{int8 / fp32:.2f}x; {found.int8_note}")
    return f"{int8 / fp32:.2f}"


def best_per_engine(rows: list[dict], n_views: int) -> dict[str, float]:
    """``{engine: best images/s}`` over the rows of :func:`course_utils.engines.bench_forward` (view-forwards/s,
    divided by ``n_views``), every batch size and memory format alike."""
    best: dict[str, float] = {}
    for row in rows:
        best[row["engine"]] = max(best.get(row["engine"], 0.0), row["images_per_s"] / n_views)
    return best


def engine_ratio(per_engine: dict[str, float], engine: str = "onnxruntime", baseline: str = "torch") -> float | None:
    """``ort_vs_torch``: the best figure of ``engine`` over the best of ``baseline`` (PyTorch eager), both measured in
    this run; ``None`` when either did not run (onnxruntime not installed, or without a CUDA provider on a GPU)."""
    if not per_engine.get(engine) or not per_engine.get(baseline):
        return None
    return per_engine[engine] / per_engine[baseline]


def _config(row: dict) -> str:
    return f"{row['engine']}, batch {row['batch']}, {row['memory_format']}"


def _copy(backbone: Backbone) -> Backbone:
    """The same backbone with its own copy of the network."""
    return dataclasses.replace(backbone, model=copy.deepcopy(backbone.model))


def _pipeline_in_subprocess(args: argparse.Namespace, folder: Path, layer: str, device: str, report: Path) -> dict:
    command = [sys.executable, "-m", "course_utils.bench.extract", "--pipeline-only", str(folder),
               "--report", str(report), "--backbone", args.backbone, "--layer", layer, "--views", str(args.views),
               "--engine", args.engine, "--device", device,
               "--pretrained" if args.pretrained else "--random"]
    subprocess.run(command, check=True)
    return json.loads(report.read_text())


def _pipeline_only(args: argparse.Namespace) -> int:
    """Peak memory: extract the images of ``--pipeline-only DIR`` in this fresh process, write what it used."""
    import resource

    from .. import augment, backbones, config, features

    paths = sorted(Path(args.pipeline_only).glob("*.jpg"))
    backbone = backbones.load(args.backbone, pretrained=args.pretrained, device=config.device(args.device))
    with tempfile.TemporaryDirectory(prefix="bench-extract-cache-") as cache:
        result = features.extract(paths, backbone, [args.layer], augment.get_views(VIEWS[args.views]),
                                  engine=args.engine, cache=cache, progress=False)
        report = json.loads((result.cache_path / "complete.json").read_text())
    report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    report["worker_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    Path(args.report).write_text(json.dumps(report))
    return 0


def _device_name(device: str) -> str:
    import torch

    return f"{device} ({torch.cuda.get_device_name(device)})" if device.startswith("cuda") else device


def _load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except (AttributeError, OSError):  # Windows
        return "n/a"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m course_utils bench extract", description=__doc__.split("\n")[0])
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
