"""Batched, cached, resumable feature extraction: images -> views -> network layers -> arrays on disk.

Every table of the course is computed from :func:`extract`, so it is built to be run once and read many times:

* **Decode once, cut every view.** A DataLoader worker opens each image once (:func:`course_utils.imageio.open_rgb`),
  crops its box if any, cuts all its views (:mod:`course_utils.augment`), resizes them and hands over one
  ``(V, C, H, W)`` uint8 tensor (:func:`view_loader`), normalised to float32 where the network runs; the main
  process runs the network on batches of views while the workers decode the next images (on a 2-core CPU the main
  process decodes between forward passes instead, which measured faster: :func:`plan_workers`; the measurements are
  in ``benchmarks/README.md``). A big JPEG (a phone photo) is decoded at 1/2, 1/4 or 1/8 scale when every view
  still gets at least the network's input size from it (:func:`decode_scale`): 3 to 4 times faster on 12-megapixel
  photos, the same accuracy.
* **Batch size by measurement.** The fastest batch depends on the network, the engine and the machine (on a 2-core
  CPU, PyTorch ran EfficientNet-Lite0 faster at batch 1 than at 32 in one memory format and the other way round in
  the other), so :func:`tune_batch_size` times the candidates once per machine and remembers the winner.
* **Streaming into memory-mapped arrays.** Each layer's features go straight into ``<layer>.npy`` shaped
  ``(n_images, n_views, dim)`` float32 (``numpy.lib.format.open_memmap``), so memory stays bounded by one batch
  whatever the number of images, and reading the result back costs nothing until rows are touched.
* **A cache keyed by everything that changes the numbers**: the backbone's name and weights, the layers, the input
  size and mean/std, :data:`PREPROCESSING_VERSION`, the view spec (name and parameters), the crop boxes, and the
  ordered list of images *by content* (each file's SHA-256), never by path or modification time: a cache warmed by
  a teacher in one folder gives hits to students whose course, data and cache sit elsewhere, and a file whose bytes
  change gets new features. The *engine* (torch, ONNX Runtime, torch.compile) and the batch size are left out on
  purpose: they change speed, not the features (equal within floating-point tolerance), and a cache that a faster
  engine could not reuse would waste hours of GPU time. The INT8 engine (``onnxruntime-int8``) is the exception: its
  features differ, so its recipe (:func:`course_utils.engines.feature_numerics`) joins the key. So does
  :data:`DECODE_POLICY`, for the jobs that hold at least one image decoded at reduced scale (only those: the keys
  of all other jobs, and the caches warmed with them, stay valid; finding out reads each JPEG's header, about 0.1 ms
  an image). Hashing reads every image once per call; the digests are remembered in ``<cache>/digests/`` against
  each file's size, times and inode (:class:`~course_utils.feature_store.DigestMemo`), so a later call costs one
  ``stat`` per file.
* **Resumable.** Rows are written in order; every :data:`CHECKPOINT_SECONDS` (and when interrupted, Ctrl-C
  included) the arrays are flushed to disk and *then* ``progress.json`` records how many rows are done, atomically.
  A killed run resumes from the last checkpoint.
* **Only a verified, finished entry is read back.** ``complete.json`` is written last, atomically, with each layer
  file's CRC-32; it is removed *before* anything it vouches for is rewritten, so an entry with work in progress is
  never a hit. A finished entry whose layer file is missing, empty, truncated, of another shape or dtype, or fails
  its CRC-32 (a flipped byte, a zeroed row, NaN or inf written over it) is reported in one
  :class:`CacheEntryDamagedWarning` line naming the entry, and computed again. A layer file that passed its check is
  remembered like an image digest, so reading a large entry again costs no pass over its bytes.
* **A full disk is an error, not a crash.** Each layer file is allocated whole before the first row is written
  (``os.posix_fallocate``; zeros written where that is missing), so a full disk raises an ``OSError`` that says how
  many bytes are needed and where, instead of a ``SIGBUS`` while writing rows through the memory map; the run
  resumes once space is freed.
* **A cache a class shares.** With ``$COURSE_SHARED_CACHE`` (:func:`course_utils.config.shared_cache_dir`) pointing
  at a teacher's warmed cache, hits are read from it, read-only, without a lock and without writing anything into
  it; misses are computed into the learner's own cache (``$COURSE_CACHE_DIR``). Every file the cache writes gets the
  permissions of the process's umask (never ``0600``), so a cache warmed by one account is readable by others.
* **Bad images.** ``on_error="raise"`` (default) stops at the first unusable file with a
  :class:`~course_utils.imageio.BadImageError` naming it; ``on_error="skip"`` fills its rows with NaN, marks it
  invalid in :attr:`FeatureSet.valid` and lists it in :attr:`FeatureSet.skipped` (saved in the cache entry too).

Cache layout: ``<cache root>/features/<sha256 key>/`` holding ``key.json`` (what the key was made of, readable),
``<layer>.npy`` per layer, ``progress.json`` while running and ``complete.json`` once done; ``<cache
root>/digests/`` holds the remembered file digests (this machine's paths: it is never read from a shared cache).

Every runner of a job goes through the same two steps, so that all of them read and write the same entries:
:func:`plan` checks the job and makes its key (:class:`ExtractionPlan`), and :meth:`ExtractionPlan.fetch` finds its
entry or hands the runner an entry opened for writing (:mod:`course_utils.feature_store`, which owns the files:
locking, resuming, checkpoints, the completion marker and its checks). :func:`extract` runs the job in this process;
:func:`course_utils.scale.ray_extract.extract` runs it on Ray.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from . import augment, backbones, config, engines, feature_store

# FeatureSet, CacheEntryDamagedWarning and clear_cache were features' own before the store had its module
from .feature_store import CACHE_VERSION, FeatureSet
from .feature_store import CacheEntryDamagedWarning as CacheEntryDamagedWarning
from .feature_store import clear_cache as clear_cache
from .imageio import DRAFT_SCALES, BadImageError, open_rgb_reduced, upright_size

PREPROCESSING_VERSION = 1  # bump whenever decoding, views or the backbone transforms change the pixels fed in
# Big JPEGs decoded at 1/2, 1/4 or 1/8 scale (:func:`decode_scale`). It changes the pixels of those images only, so it
# joins the cache key only of jobs holding at least one of them (:func:`_reduces_any`): every other key, and every
# cache warmed before it, stays valid.
DECODE_POLICY = ("jpeg-draft-v1: photos of 2 megapixels or more, largest of 1/8, 1/4, 1/2 keeping every view >= the "
                 "input size on both sides")
# Below this many pixels a JPEG is always decoded in full: it decodes in a few milliseconds, so reducing it would
# gain little and would change the features of the paper's datasets (Oxford and Paris at 1024 x 768, VOC at 500 px).
# The target is a learner's phone photos (8 to 12 megapixels) and Holidays' camera originals.
REDUCE_MIN_PIXELS = 2_000_000
CHECKPOINT_SECONDS = 15.0  # how often finished rows are flushed to disk and recorded in progress.json
PROBE_BATCHES = {"cpu": (1, 8, 16, 32), "cuda": (32, 64, 128, 256)}  # candidates of :func:`tune_batch_size`
PROBE_MIN_FORWARDS = 2000  # a job this large (in view-forwards) measures its batch size if it is not known yet
PROBE_ROUNDS = 3
ON_ERROR = ("raise", "skip")
MAX_GPU_WORKERS = 16  # decoding workers feeding a GPU (each holds a copy of the dataset's paths and its own buffers)
MIN_IMAGES_FOR_WORKERS = 8  # below this, forking a decoding worker costs more than it saves


def extract(
    paths: Sequence[str | os.PathLike],
    backbone: str | backbones.Backbone = config.DEFAULT_BACKBONE,
    layers: str | Sequence[str] | None = None,
    views: str | augment.ViewSpec = "whole",
    *,
    boxes: np.ndarray | Sequence[Sequence[float]] | None = None,
    engine: str = "auto",
    batch_size: int | None = None,
    num_workers: int | None = None,
    cache: bool | str | os.PathLike = True,
    on_error: str = "raise",
    progress: bool = True,
    device: str | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    runner: str | None = None,
) -> FeatureSet:
    """Features of ``layers`` of ``backbone`` for every view of every image in ``paths`` (see the module docstring).

    ``backbone`` is a registry name (loaded with its pretrained weights) or a loaded
    :class:`~course_utils.backbones.Backbone`. ``layers``: one name, several (one pass gives them all: the layer
    sweep), or ``None`` for the backbone's default layer. ``views``: ``"whole"``, ``"mirror"``, ``"paper16"`` or a view
    spec. ``boxes``: optional ``(N, 4)`` ``(x0, y0, x1, y1)`` crop per image in pixels of the upright image, applied
    before the views; a row of NaN means "whole image". ``batch_size`` counts views per forward pass (default: the
    engine's preferred size); ``num_workers`` decoding processes (default: :func:`plan_workers`). ``cache``: ``True``
    (the course cache), a folder to use as cache root, or ``False`` (in-memory arrays, nothing written; memory then
    grows with the number of images). ``on_batch(done, total)`` is called after each batch of images is stored.
    ``runner``: ``"local"`` (this process) or ``"ray"``: the same job as a Ray Data batch-inference job
    (:func:`course_utils.scale.ray_extract.extract`, the ``scale`` extra; ``docs/scale.md``), into the same cache
    entry; default ``$COURSE_RUNNER``, else ``"local"``.

    Raises :class:`~course_utils.imageio.BadImageError` for the first unusable image when ``on_error="raise"``, and
    ``ValueError`` for an empty path list, unknown layers or views, or boxes of the wrong shape.
    """
    runner = runner or os.environ.get("COURSE_RUNNER", "local")
    if runner == "ray":
        from .scale.ray_extract import extract as extract_on_ray

        return extract_on_ray(paths, backbone, layers, views, boxes=boxes, engine=engine, batch_size=batch_size,
                              num_workers=num_workers, cache=cache, on_error=on_error, progress=progress,
                              device=device, on_batch=on_batch)
    if runner != "local":
        raise ValueError(f"runner must be 'local' or 'ray'; got {runner!r} (check $COURSE_RUNNER).")
    check_batch_size(batch_size)
    job = plan(paths, backbone, layers, views, boxes=boxes, engine=engine, cache=cache, on_error=on_error,
               device=device)
    run = _Run(job, batch_size, num_workers, progress, device, on_batch)
    if job.key is None:
        return run.into_memory()
    return job.fetch(run.into_entry)


def check_batch_size(batch_size: int | None) -> None:
    """``ValueError`` unless ``batch_size`` (views per forward pass) is ``None`` (the engine's choice) or positive:
    every runner checks it before any work, so a bad value fails at once, not in a worker."""
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be a positive number of views per forward pass; got {batch_size}.")


@dataclass(frozen=True, eq=False)
class ExtractionPlan:
    """One extraction job, checked and ready to run, whatever runs it (:func:`extract` in this process,
    :func:`course_utils.scale.ray_extract.extract` on Ray): what to compute and where it is stored.

    Made by :func:`plan`, so that every runner checks its inputs, names images by content and builds the cache key
    the same way, and so finds and writes the same cache entries.
    """

    paths: list[Path]  # absolute
    digests: list[str | None]  # each image's SHA-256 (None: unreadable and skipped, or no cache)
    backbone: backbones.Backbone  # loaded
    layers: list[str]
    spec: augment.ViewSpec
    boxes: np.ndarray | None  # (N, 4) float64 crop boxes, a row of NaN for "whole image"
    engine: str  # as asked for (its numerics join the key only when they change the features)
    on_error: str
    cache_root: Path | None  # the learner's own cache; None with cache=False
    use_shared: bool  # whether the class's shared cache is read too (only with the default cache)
    memo: feature_store.DigestMemo | None  # digests remembered in the own cache (None with cache=False)
    key: str | None  # the cache key (None with cache=False)
    shapes: dict[str, tuple[int, int, int]]  # each layer's (n_images, n_views, dim)

    @property
    def widths(self) -> list[int]:
        """Each layer's values per view, in the order of :attr:`layers`."""
        return [self.shapes[layer][2] for layer in self.layers]

    def template(self) -> FeatureSet:
        """An empty FeatureSet describing this job (arrays to be filled in, every image valid)."""
        return FeatureSet({}, list(self.paths), list(self.spec.view_names), np.ones(len(self.paths), dtype=bool),
                          [], self.backbone.name, self.backbone.weights_id, self.spec.name)

    def fetch(self, compute: Callable[[feature_store.EntryWriter], FeatureSet]) -> FeatureSet:
        """This job's features from the cache (shared or own), else ``compute(writer)`` into its own entry, under
        the entry's lock (:func:`course_utils.feature_store.fetch`). Needs a cache (``key`` is not None)."""
        if self.key is None or self.cache_root is None or self.memo is None:
            raise ValueError("This plan was made with cache=False: it has no cache entry to fetch.")
        return feature_store.fetch(self.cache_root, self.key, self.template, self.shapes, self.memo, compute,
                                   use_shared=self.use_shared)


def plan(
    paths: Sequence[str | os.PathLike],
    backbone: str | backbones.Backbone = config.DEFAULT_BACKBONE,
    layers: str | Sequence[str] | None = None,
    views: str | augment.ViewSpec = "whole",
    *,
    boxes: np.ndarray | Sequence[Sequence[float]] | None = None,
    engine: str = "auto",
    cache: bool | str | os.PathLike = True,
    on_error: str = "raise",
    device: str | None = None,
) -> ExtractionPlan:
    """The job :func:`extract` runs for these arguments (same meanings), checked, before anything is computed:
    the images' content digests (hashed once, then remembered in the cache), the backbone (loaded on ``device``,
    default :func:`course_utils.config.device`, when given by name), the layers and the cache key.

    Raises what :func:`extract` raises for its inputs: ``ValueError`` for an unknown ``on_error``, an empty path
    list, unknown layers or views, or boxes of the wrong shape; :class:`~course_utils.imageio.BadImageError` for a
    missing or unreadable file when ``on_error="raise"``.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}; got {on_error!r}.")
    image_paths = [Path(os.path.abspath(os.fspath(p))) for p in paths]
    if not image_paths:
        raise ValueError("extract() got no image paths: check that the dataset folder holds images.")
    spec = augment.get_views(views)
    crop_boxes = _check_boxes(boxes, len(image_paths))
    root = feature_store.cache_root(cache)
    memo = feature_store.DigestMemo(root) if root is not None else None  # the learner's own cache, even for hits
    digests = feature_store.content_digests(image_paths, on_error, memo)  # read from the shared one
    if isinstance(backbone, str):
        backbone = _load_backbone(backbone, device or config.device())
    layer_names = _check_layers(backbone, layers)
    key = None
    if root is not None:
        decode = DECODE_POLICY if _reduces_any(image_paths, spec, crop_boxes, backbone.input_size) else None
        key = _cache_key(backbone, layer_names, spec, crop_boxes, digests, engines.feature_numerics(engine), decode)
    shapes = {layer: (len(image_paths), spec.n_views, _layer_dim(backbone, layer)) for layer in layer_names}
    return ExtractionPlan(image_paths, digests, backbone, layer_names, spec, crop_boxes, engine, on_error, root,
                          cache is True, memo, key, shapes)


@lru_cache(maxsize=2)
def _load_backbone(name: str, device: str) -> backbones.Backbone:
    """Backbones asked for by name are loaded once per process (and so is their engine): extracting the train split
    and then the test split should not load and verify the network twice."""
    return backbones.load(name, device=device)


def plan_workers(n_images: int, device: str, engine: str = "torch", cores: int | None = None) -> tuple[int, int]:
    """``(decoding workers, torch threads)`` for extracting ``n_images`` on ``device`` with ``engine`` (the engine's
    name as built: ``torch``, ``compile`` or ``onnxruntime``) and ``cores`` CPU cores.

    * Few images: no worker (forking one costs more than it saves).
    * GPU: the main process only feeds the card, so all but one core decode (at most :data:`MAX_GPU_WORKERS`):
      one core decodes a few hundred photos a second, a GPU runs a ResNet-50 through thousands.
    * CPU with 2 cores or fewer: no worker. Decoding in the main process, between forward passes, measured faster
      than a worker decoding alongside them (EfficientNet-Lite0 and ResNet-50, ONNX Runtime and PyTorch, 1 and 16
      views; ``benchmarks/README.md``): the network's threads already use both cores, and a third busy thread makes
      them wait for each other.
    * CPU with more cores: one worker per four cores (not measured here: a guess that leaves most cores to the
      network while decoding, about a third of a small network's forward time, runs beside it).
    * torch threads: all cores when torch runs the network; one when ONNX Runtime does (it has its own thread
      pool, and idle torch threads spinning in the main process would take CPU from it).
    """
    cores = cores or config.cpu_count()
    threads = cores if engine in ("torch", "compile") else 1
    if n_images < MIN_IMAGES_FOR_WORKERS:
        return 0, threads
    if device.startswith("cuda"):
        return max(1, min(cores - 1, MAX_GPU_WORKERS)), threads
    return (0 if cores <= 2 else max(1, cores // 4)), threads


# --------------------------------------------------------------------------------------------------- input checks


def _check_boxes(boxes, n_images: int) -> np.ndarray | None:
    if boxes is None:
        return None
    array = np.asarray(boxes, dtype=np.float64)
    if array.shape != (n_images, 4):
        raise ValueError(f"boxes must have shape ({n_images}, 4), one (x0, y0, x1, y1) per image; got {array.shape}.")
    some = ~np.isnan(array).all(axis=1)
    partial = np.isnan(array).any(axis=1) & some
    if partial.any():
        raise ValueError(f"Box of image {int(np.flatnonzero(partial)[0])} mixes numbers and NaN; use all NaN for no box.")
    bad = some & ((array[:, 2] <= array[:, 0]) | (array[:, 3] <= array[:, 1]))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"Box of image {i} {array[i].tolist()} is empty: it needs x1 > x0 and y1 > y0.")
    return array


def _check_layers(backbone: backbones.Backbone, layers: str | Sequence[str] | None) -> list[str]:
    names = [backbone.default_layer] if layers is None else [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise ValueError(f"No layers asked for; {backbone.name!r} offers {sorted(backbone.layers)}.")
    if len(set(names)) != len(names):
        raise ValueError(f"Layer list {names} names a layer twice.")
    for name in names:
        if name.partition("@")[0] not in backbone.layers:
            raise ValueError(f"Backbone {backbone.name!r} has no layer {name!r}. Its layers: {sorted(backbone.layers)}.")
    return names


def _layer_dim(backbone: backbones.Backbone, layer: str) -> int:
    return int(backbone.layers[layer.partition("@")[0]])


def _cache_key(backbone, layers, spec, boxes, digests, numerics: str | None = None, decode: str | None = None) -> str:
    """A canonical JSON of everything that changes the numbers (not a float32 engine: see the module docstring; an
    engine whose arithmetic changes them, INT8, adds its ``numerics``). Images are named by content alone, so the key
    does not depend on where the course, the data or the cache sit. ``decode``: :data:`DECODE_POLICY` when some image
    of the job is decoded at reduced scale."""
    content = {
        "cache_version": CACHE_VERSION,
        "preprocessing_version": PREPROCESSING_VERSION,
        "backbone": backbone.name,
        "weights_id": backbone.weights_id,
        "layers": list(layers),
        "input_size": backbone.input_size,
        "mean": [float(v) for v in backbone.mean],
        "std": [float(v) for v in backbone.std],
        "views": {"name": spec.name, "view_names": list(spec.view_names), "params": getattr(spec, "params", {})},
        "boxes": None if boxes is None else [None if np.isnan(b).all() else [float(v) for v in b] for b in boxes],
        "images_sha256": list(digests),
    }
    if numerics is not None:  # only then: the keys of float32 engines stay what they were
        content["numerics"] = numerics
    if decode is not None:  # likewise: jobs with no big JPEG keep their keys
        content["decode"] = decode
    return json.dumps(content, sort_keys=True, separators=(",", ":"))


# --------------------------------------------------------------------------------------------------- decoding


class _ImageViews(Dataset):
    """Item ``i``: ``(index, (V, C, H, W) tensor or None, reason or None)`` for image ``start + i``.

    Bad images come back as a reason, not an exception: DataLoader re-raises worker exceptions as a bare
    ``RuntimeError`` when their constructor takes more than a message, and the main process decides whether to skip.
    """

    def __init__(self, paths, start, spec, transform, boxes, input_size: int, reduce_big_jpegs: bool = True) -> None:
        self.paths, self.start, self.spec, self.boxes, self.input_size = paths, start, spec, boxes, input_size
        self.reduce_big_jpegs = reduce_big_jpegs
        # With a two-part transform (backbones.SquashTransform) the views travel as uint8 and are normalised where
        # the network runs (:func:`network_input`); any other callable runs whole here.
        self.transform = getattr(transform, "resize", transform)
        self.mirror_by_flip: bool | None = None  # decided on the first image (in each worker)

    def __len__(self) -> int:
        return len(self.paths) - self.start

    def __getitem__(self, item: int) -> tuple[int, torch.Tensor | None, str | None]:
        index = self.start + item
        box = None if self.boxes is None or np.isnan(self.boxes[index]).all() else self.boxes[index]
        try:
            scale_for = decode_scale(self.spec, self.input_size, box) if self.reduce_big_jpegs else None
            image, (width, height) = open_rgb_reduced(self.paths[index], scale_for)
            if box is not None:
                factors = np.array([image.width / width, image.height / height] * 2)  # 1 unless decoded reduced
                image = _crop(image, box * factors, self.paths[index])
        except BadImageError as err:
            return index, None, err.reason
        return index, self._view_tensors(image), None

    def _view_tensors(self, image: Image.Image) -> torch.Tensor:
        """``(V, C, H, W)``: every view, transformed (uint8 when the transform has a ``resize`` half). A spec whose
        second half mirrors its first (``mirror`` and ``base_views``, as :class:`~course_utils.augment.Jitter`) has
        only its first half transformed and the tensors flipped, when the transform commutes exactly with the flip (a
        resize and a per-pixel normalisation do)."""
        if getattr(self.spec, "mirror", False) and hasattr(self.spec, "base_views"):
            if self.mirror_by_flip is None:
                flipped = self.transform(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
                self.mirror_by_flip = torch.equal(flipped, self.transform(image).flip(-1))
            if self.mirror_by_flip:
                base = torch.stack([self.transform(view) for view in self.spec.base_views(image)])
                return torch.cat([base, base.flip(-1)])
        return torch.stack([self.transform(view) for view in self.spec(image)])


def decode_scale(spec: augment.ViewSpec, input_size: int,
                 box: np.ndarray | None = None) -> Callable[[int, int], int] | None:
    """How much smaller a JPEG may be decoded for ``spec``: a function of the upright full size returning 1 or one of
    :data:`~course_utils.imageio.DRAFT_SCALES` (for :func:`~course_utils.imageio.open_rgb_reduced`), or ``None`` for a
    view spec that does not say where its views are cut (no ``boxes`` method: always full size).

    The scale is the largest that leaves *every* view, cut from the reduced image (within the crop ``box`` when there
    is one, given in full-size pixels), at least ``input_size`` pixels on both sides, so no view is ever enlarged that
    full decoding would have shrunk; and it is at least 2, so an image is reduced only when it is at least twice the
    size its largest view needs, and only for photos of :data:`REDUCE_MIN_PIXELS` or more. Conservative: the decoded
    sides are ``ceil(side / scale)`` and a box is widened to whole pixels, while this reckons with ``floor`` of both.
    """
    view_boxes = getattr(spec, "boxes", None)
    if view_boxes is None:
        return None

    def scale_for(width: int, height: int) -> int:
        if width * height < REDUCE_MIN_PIXELS or min(width, height) < 2 * input_size:  # the common case
            return 1
        region_w, region_h = float(width), float(height)
        if box is not None:
            region_w = min(width, box[2]) - max(0.0, box[0])
            region_h = min(height, box[3]) - max(0.0, box[1])
        for scale in DRAFT_SCALES:
            w, h = math.floor(region_w / scale), math.floor(region_h / scale)
            if min(w, h) >= input_size and all(min(x1 - x0, y1 - y0) >= input_size
                                               for x0, y0, x1, y1 in view_boxes(w, h)):
                return scale
        return 1

    return scale_for


def _reduces_any(paths: Sequence[Path], spec: augment.ViewSpec, boxes: np.ndarray | None, input_size: int) -> bool:
    """Whether :func:`decode_scale` reduces at least one of these JPEGs (read from their headers: no decoding). A
    file that cannot be opened counts as not reduced (decoding will report it)."""
    if getattr(spec, "boxes", None) is None:
        return False
    for index, path in enumerate(paths):
        box = None if boxes is None or np.isnan(boxes[index]).all() else boxes[index]
        try:
            with Image.open(path) as image:
                if image.format == "JPEG" and decode_scale(spec, input_size, box)(*upright_size(image)) > 1:
                    return True
        except Exception:  # unreadable or not an image: decoding reports it (or skips it) as before
            continue
    return False


def _crop(image: Image.Image, box: np.ndarray, path: Path) -> Image.Image:
    width, height = image.size
    x0, y0 = max(0, math.floor(box[0])), max(0, math.floor(box[1]))
    x1, y1 = min(width, math.ceil(box[2])), min(height, math.ceil(box[3]))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise BadImageError(
            path, f"its box {tuple(float(v) for v in box)} leaves less than 2x2 pixels of the {width}x{height} image"
        )
    return image.crop((x0, y0, x1, y1))


def view_loader(
    paths: Sequence[Path],
    backbone: backbones.Backbone,
    spec: augment.ViewSpec,
    *,
    images_per_batch: int,
    num_workers: int,
    pin_memory: bool = False,
    boxes: np.ndarray | None = None,
    start: int = 0,
    reduce_big_jpegs: bool = True,
) -> DataLoader:
    """The decoding half of :func:`extract`: batches ``(image indices, views, {index: reason})`` of images
    ``start..``, each image decoded once and all its views cut from it (``(n_good * V, 3, S, S)`` uint8 for the
    registry's backbones, whose transform has a ``resize`` half; float32 otherwise; ``None`` when no image of the batch
    could be read). Big JPEGs are decoded at reduced scale (:func:`decode_scale`; ``reduce_big_jpegs=False`` decodes
    every image in full, as before, for ``bench extract``'s comparison). ``bench extract`` iterates it alone to
    measure the decoding ceiling."""
    return DataLoader(
        _ImageViews(paths, start, spec, backbone.transform, boxes, backbone.input_size, reduce_big_jpegs),
        batch_size=images_per_batch, num_workers=num_workers, collate_fn=_collate, pin_memory=pin_memory,
        persistent_workers=False,
    )


def network_input(pixels: torch.Tensor, transform, device: str) -> torch.Tensor:
    """:func:`view_loader`'s views as the network's float32 input, on ``device``: uint8 views are copied there first
    (a quarter of the bytes of float32) and normalised there by ``transform`` (the backbone's)."""
    if pixels.dtype != torch.uint8:
        return pixels
    return transform.standardize(pixels.to(device, non_blocking=True))


def _collate(items):
    """One batch: image indices, the views of its good images stacked ``(n_good * V, C, H, W)`` (``None`` if there are
    none), and ``{index: reason}`` for its bad images."""
    indices = [index for index, _, _ in items]
    tensors = [tensor for _, tensor, _ in items if tensor is not None]
    reasons = {index: reason for index, _, reason in items if reason is not None}
    return indices, (torch.cat(tensors) if tensors else None), reasons


# --------------------------------------------------------------------------------------------------- the run


class _Run:
    """One extraction job run in this process: the loop from decoded views to stored rows, into memory or into a
    cache entry."""

    def __init__(self, job: ExtractionPlan, batch_size, num_workers, progress, device, on_batch) -> None:
        self.job, self.backbone, self.layers, self.spec = job, job.backbone, job.layers, job.spec
        self.paths, self.boxes, self.engine_name, self.on_error = job.paths, job.boxes, job.engine, job.on_error
        self.batch_size, self.num_workers, self.progress, self.on_batch = batch_size, num_workers, progress, on_batch
        self.device = device or str(next(job.backbone.model.parameters()).device)
        self.settings: dict = {}  # engine, batch size, workers and threads of the last run (saved in complete.json)

    def into_memory(self) -> FeatureSet:
        arrays = {layer: np.full(shape, np.nan, dtype=np.float32) for layer, shape in self.job.shapes.items()}
        skipped: dict[int, str] = {}
        self._loop(arrays, start=0, skipped=skipped, checkpoint=lambda done: None)
        for array in arrays.values():
            array.flags.writeable = False
        result = self.job.template()
        result.arrays = arrays
        result.skipped = [(str(self.paths[i]), skipped[i]) for i in sorted(skipped)]
        result.valid[sorted(skipped)] = False
        return result

    def into_entry(self, writer: feature_store.EntryWriter) -> FeatureSet:
        """Fill the rows of ``writer``'s entry from the first unfinished one on, in order, then finish it."""
        skipped = writer.skipped
        self._loop(writer.arrays, start=writer.done, skipped=skipped,
                   checkpoint=lambda done: writer.checkpoint(done, skipped))
        return writer.finish(skipped, self.settings)

    def _loop(self, arrays, start: int, skipped: dict[int, str], checkpoint: Callable[[int], None]) -> None:
        """Fill rows ``start..N-1`` of ``arrays`` in order; checkpoint regularly and on any interruption."""
        n_images, n_views = len(self.paths), self.spec.n_views
        if start >= n_images:
            return
        cores = config.cpu_count()
        forward = _engine_for(self.backbone, self.layers, self.engine_name, self.device, cores)
        workers, threads = plan_workers(n_images - start, self.device, getattr(forward, "name", "torch"), cores)
        if self.num_workers is not None:
            workers = self.num_workers
        batch = self.batch_size or _known_batch_size(forward, self.backbone, self.layers, self.device, threads)
        if batch is None:
            measure = (n_images - start) * n_views >= PROBE_MIN_FORWARDS
            batch = _probe_batch_size(forward, self.backbone, self.layers, self.device, threads) if measure else None
        batch = batch or forward.preferred_batch_size
        self.settings = {"engine": getattr(forward, "name", self.engine_name), "batch_size": batch,
                         "workers": workers, "threads": threads}
        loader = view_loader(self.paths, self.backbone, self.spec, images_per_batch=max(1, batch // n_views),
                             num_workers=workers, pin_memory=self.device.startswith("cuda"), boxes=self.boxes,
                             start=start)
        done, last_checkpoint = start, time.monotonic()
        bar = progress_bar(n_images, start, self.progress, f"{self.backbone.name} {','.join(self.layers)}")
        if self.progress and getattr(forward, "reason", ""):
            bar.write(f"features: engine {forward.reason}; {workers} decoding worker(s), {threads} torch threads")
        try:
            with engines.torch_threads(threads), torch.inference_mode():
                for indices, pixels, reasons in loader:
                    if reasons and self.on_error == "raise":
                        first = min(reasons)
                        raise BadImageError(self.paths[first], reasons[first])
                    rows = self._forward(forward, pixels, batch)
                    good = np.array([index not in reasons for index in indices])
                    for layer, array in arrays.items():
                        block = np.full((len(indices), n_views, array.shape[2]), np.nan, dtype=np.float32)
                        if rows[layer] is not None:
                            block[good] = self._check_width(layer, rows[layer], array.shape[2]).reshape(
                                int(good.sum()), n_views, -1)
                        array[done : done + len(indices)] = block
                    skipped.update(reasons)
                    done += len(indices)
                    bar.update(len(indices))
                    if time.monotonic() - last_checkpoint >= CHECKPOINT_SECONDS:
                        checkpoint(done)
                        last_checkpoint = time.monotonic()
                    if self.on_batch is not None:
                        self.on_batch(done, n_images)
        except BaseException:
            checkpoint(done)  # Ctrl-C, a bad image, a crash: keep every finished row for the next run
            raise
        finally:
            bar.close()

    def _forward(self, forward, pixels: torch.Tensor | None, batch: int) -> dict[str, np.ndarray | None]:
        if pixels is None:
            return {layer: None for layer in self.layers}
        pixels = network_input(pixels, self.backbone.transform, self.device)
        chunks = [forward(pixels[i : i + batch]) for i in range(0, len(pixels), batch)]
        return {layer: np.concatenate([chunk[k] for chunk in chunks]) for k, layer in enumerate(self.layers)}

    def _check_width(self, layer: str, rows: np.ndarray, width: int) -> np.ndarray:
        if rows.shape[1] != width:
            raise RuntimeError(
                f"Layer {layer!r} of {self.backbone.name!r} gives {rows.shape[1]} values per view, but the backbone "
                f"declares {width} (Backbone.layers); correct the registry entry."
            )
        return rows


def tune_batch_size(
    backbone: str | backbones.Backbone = config.DEFAULT_BACKBONE,
    layers: str | Sequence[str] | None = None,
    engine: str = "auto",
    device: str | None = None,
) -> int:
    """The fastest batch size (views per forward pass) of ``engine`` for ``backbone`` on this machine.

    Measured once among :data:`PROBE_BATCHES` and remembered in ``<cache>/batch_sizes.json``, keyed by network,
    input size, layers, engine, device and thread count; :func:`extract` then uses it by default. A large extraction
    (at least :data:`PROBE_MIN_FORWARDS` view-forwards) measures it by itself; call this first to have smaller ones
    benefit too. Why measure: on a 2-core CPU, PyTorch eager ran EfficientNet-Lite0 faster at batch 1 than at 32 in
    contiguous format and the other way round in channels-last, and the best batch differs between engines and
    devices. Each candidate runs the same number of views in each of :data:`PROBE_ROUNDS` interleaved rounds and keeps
    its best round, so that a burst of load from another program during one round does not decide the choice; and a
    measurement taken while the machine is busy (load average above 1.5 per core) is used but not remembered.
    """
    if isinstance(backbone, str):
        backbone = _load_backbone(backbone, device or config.device())
    layer_names = _check_layers(backbone, layers)
    device = device or str(next(backbone.model.parameters()).device)
    cores = config.cpu_count()
    forward = _engine_for(backbone, layer_names, engine, device, cores)
    _, threads = plan_workers(PROBE_MIN_FORWARDS, device, getattr(forward, "name", "torch"), cores)
    known = _known_batch_size(forward, backbone, layer_names, device, threads)
    return known or _probe_batch_size(forward, backbone, layer_names, device, threads)


def _probe_key(forward, backbone, layers, device: str, threads: int) -> str:
    return (f"{backbone.name}|{backbone.input_size}px|{','.join(layers)}|{getattr(forward, 'name', '?')}|{device}|"
            f"{threads} torch threads|{config.cpu_count()} cores|torch {torch.__version__}")


def _probe_file() -> Path:
    return config.cache_dir() / "batch_sizes.json"


def _known_batch_size(forward, backbone, layers, device: str, threads: int) -> int | None:
    try:
        return int(json.loads(_probe_file().read_text())[_probe_key(forward, backbone, layers, device, threads)]["batch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _busy() -> bool:
    """True when the machine is busy with other work (1-minute load average above 1.5 per core)."""
    try:
        return os.getloadavg()[0] > 1.5 * config.cpu_count()
    except (AttributeError, OSError):  # Windows has no load average
        return False


def _probe_batch_size(forward, backbone, layers, device: str, threads: int) -> int:
    """Time every candidate batch on random inputs, remember the fastest in the probe file, return it."""
    candidates = PROBE_BATCHES["cuda" if device.startswith("cuda") else "cpu"]
    generator = torch.Generator().manual_seed(0)
    inputs = {b: torch.randn(b, 3, backbone.input_size, backbone.input_size, generator=generator) for b in candidates}
    rates = dict.fromkeys(candidates, 0.0)
    with engines.torch_threads(threads), torch.inference_mode():
        for batch in candidates:
            forward(inputs[batch])  # warm-up: first-call allocations and kernel choices
        for _ in range(PROBE_ROUNDS):
            for batch in candidates:
                calls = math.ceil(max(candidates) / batch)  # the same number of views for every candidate
                started = time.perf_counter()
                for _ in range(calls):
                    forward(inputs[batch])
                rates[batch] = max(rates[batch], calls * batch / (time.perf_counter() - started))
    best = max(rates, key=rates.get)
    if _busy():
        return best  # measured under other programs' load: good enough for this run, not worth remembering
    try:
        table = json.loads(_probe_file().read_text())
    except (OSError, ValueError):
        table = {}
    table[_probe_key(forward, backbone, layers, device, threads)] = {
        "batch": best, "views_per_second": {str(b): round(r, 2) for b, r in rates.items()},
    }
    feature_store.write_json(_probe_file(), table)
    return best


_ENGINES: dict[tuple, tuple[weakref.ref, object]] = {}


def _engine_for(backbone: backbones.Backbone, layers: list[str], engine: str, device: str, threads: int):
    """The engine (``threads``: ONNX Runtime's intra-op threads) of the previous call when it was built for the same network, layers and settings, else a new one.

    Building an engine can take seconds (ONNX Runtime loads and re-verifies its export against PyTorch), and a
    notebook extracts the train and test splits one after the other. Only the last engine is kept: each one can hold
    its own copy of the network.
    """
    key = (id(backbone.model), backbone.weights_id, tuple(layers), engine, device, threads)
    model_ref, built = _ENGINES.get(key, (None, None))
    if model_ref is not None and model_ref() is backbone.model:
        return built
    _ENGINES.clear()
    built = engines.make_engine(backbone, layers, engine=engine, device=device, threads=threads)
    _ENGINES[key] = (weakref.ref(backbone.model), built)
    return built


def progress_bar(total: int, initial: int, enabled: bool, label: str):
    """A tqdm bar over ``total`` images starting at ``initial`` (resumed rows), on stderr; silent unless ``enabled``.
    Every runner shows the same bar, so a notebook looks the same whichever ran the job."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="img", desc=label, disable=not enabled, file=sys.stderr,
                dynamic_ncols=True, smoothing=0.1)
