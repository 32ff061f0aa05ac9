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
  an image). Hashing reads every image once per call; the digests are
  remembered in ``<cache>/digests/`` against each file's size, times and inode (:class:`_DigestMemo`), so a later
  call costs one ``stat`` per file.
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
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import re
import shutil
import sys
import time
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from . import augment, backbones, config, engines
from .datasets.images import file_digest, write_text_atomic
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
CACHE_VERSION = 2  # bump whenever the key's content or an entry's layout changes (2: images by content, CRC-32s)
CHECKPOINT_SECONDS = 15.0  # how often finished rows are flushed to disk and recorded in progress.json
PROBE_BATCHES = {"cpu": (1, 8, 16, 32), "cuda": (32, 64, 128, 256)}  # candidates of :func:`tune_batch_size`
PROBE_MIN_FORWARDS = 2000  # a job this large (in view-forwards) measures its batch size if it is not known yet
PROBE_ROUNDS = 3
ON_ERROR = ("raise", "skip")
_FEATURES_DIR = "features"
_DIGESTS_DIR = "digests"
DIGEST_SETTLE_SECONDS = 2.0  # a file changed this recently is not remembered: its timestamps may not show a change yet
_ZERO_CHUNK = 1 << 18  # bytes per write when zero-filling a layer file where posix_fallocate is missing
MAX_GPU_WORKERS = 16  # decoding workers feeding a GPU (each holds a copy of the dataset's paths and its own buffers)
_MIN_IMAGES_FOR_WORKERS = 8  # below this, forking a decoding worker costs more than it saves


@dataclass
class FeatureSet:
    """Features of a list of images: ``arrays[layer]`` is read-only, shaped ``(n_images, n_views, dim)``, float32.

    Row ``i`` always belongs to ``paths[i]``; an image skipped with ``on_error="skip"`` keeps its row, filled with
    NaN, and ``valid[i]`` is False. ``cache_path`` is the cache entry folder (``None`` with ``cache=False``).
    """

    arrays: dict[str, np.ndarray]
    paths: list[Path]
    view_names: list[str]
    valid: np.ndarray
    skipped: list[tuple[str, str]] = field(default_factory=list)
    backbone: str = ""
    weights_id: str = ""
    views: str = ""
    cache_path: Path | None = None
    from_cache: bool = False

    @property
    def layers(self) -> list[str]:
        """The extracted layers, in the order asked for."""
        return list(self.arrays)

    @property
    def n_views(self) -> int:
        """Views per image."""
        return len(self.view_names)

    @property
    def layer(self) -> str:
        """The one layer of a single-layer set (what :func:`course_utils.experiments.dataset_features` returns)."""
        if len(self.arrays) != 1:
            raise ValueError(f"This FeatureSet holds {len(self.arrays)} layers ({self.layers}); pick one with "
                             "feature_set[layer].")
        return next(iter(self.arrays))

    @property
    def X(self) -> np.ndarray:  # the course's name for a feature matrix, as in scikit-learn
        """The one layer's features, ``(n_images, n_views, dim)``: ``self[self.layer]``."""
        return self[self.layer]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, layer: str) -> np.ndarray:
        try:
            return self.arrays[layer]
        except KeyError:
            raise KeyError(f"No layer {layer!r} in this FeatureSet; it holds {self.layers}.") from None


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
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}; got {on_error!r}.")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be a positive number of views per forward pass; got {batch_size}.")
    image_paths = [Path(os.path.abspath(os.fspath(p))) for p in paths]
    if not image_paths:
        raise ValueError("extract() got no image paths: check that the dataset folder holds images.")
    spec = augment.get_views(views)
    crop_boxes = _check_boxes(boxes, len(image_paths))
    cache_root = _cache_root(cache)
    memo = _DigestMemo(cache_root) if cache_root is not None else None  # the learner's own cache, even for hits
    digests = _content_digests(image_paths, on_error, memo)  # read from the shared one
    if isinstance(backbone, str):
        backbone = _load_backbone(backbone, device or config.device())
    layer_names = _check_layers(backbone, layers)
    run = _Run(backbone, layer_names, spec, image_paths, crop_boxes, engine, batch_size, num_workers, on_error,
               progress, device, on_batch)
    if cache_root is None or memo is None:  # (both or neither)
        return run.into_memory()
    return _cached(run, digests, cache_root, memo, use_shared=cache is True)


def _cached(run: _Run, digests: list[str | None], cache_root: Path, memo: _DigestMemo, use_shared: bool) -> FeatureSet:
    """``run``'s features from the class's shared cache (``use_shared``, read-only), else from our own entry under
    ``cache_root``, else computed into it; one process at a time computes an entry, the others wait and read it."""
    decode = DECODE_POLICY if _reduces_any(run.paths, run.spec, run.boxes, run.backbone.input_size) else None
    numerics = engines.feature_numerics(run.engine_name)
    key = _cache_key(run.backbone, run.layers, run.spec, run.boxes, digests, numerics, decode)
    name = hashlib.sha256(key.encode()).hexdigest()
    shared = config.shared_cache_dir() if use_shared else None
    if shared is not None:  # read-only: no lock, nothing written there; a miss is computed into our own cache
        loaded = _read_entry(shared / _FEATURES_DIR / name, run, memo, f"it is computed into {cache_root}")
        if loaded is not None:
            return loaded
    entry = cache_root / _FEATURES_DIR / name
    entry.mkdir(parents=True, exist_ok=True)
    with _exclusive(entry):  # a second process asking for the same features waits, then reads them
        loaded = _read_entry(entry, run, memo, "it is computed again")
        if loaded is not None:
            return loaded
        return run.into_entry(entry, key, memo)


class CacheEntryDamagedWarning(UserWarning):
    """A finished feature-cache entry failed its checks when read back; its features are computed again."""


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
    if n_images < _MIN_IMAGES_FOR_WORKERS:
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


def _content_digests(paths: list[Path], on_error: str, memo: _DigestMemo | None) -> list[str | None]:
    """Each file's SHA-256 for the cache key (``None`` for a file that cannot be read, only allowed when skipping);
    with no cache (``memo`` is ``None``) only that every file exists is checked, and no digest is computed."""
    digests: list[str | None] = []
    for path in paths:
        try:
            if memo is None:
                path.stat()  # no key to make: only check that the file is there
                digests.append(None)
            else:
                digests.append(memo.digest(path, "sha256"))
        except OSError as err:
            if on_error == "raise":
                reason = ("the file does not exist (check the path and the dataset folder)"
                          if isinstance(err, FileNotFoundError) else f"it cannot be read ({err.strerror or err})")
                raise BadImageError(path, reason) from None
            digests.append(None)
    if memo is not None:
        memo.save()
    return digests


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


def _cache_root(cache: bool | str | os.PathLike) -> Path | None:
    if cache is False:
        return None
    return config.cache_dir() if cache is True else Path(cache).expanduser()


def _layer_file(entry: Path, layer: str) -> Path:
    return entry / (re.sub(r"[^A-Za-z0-9_.@+-]", "_", layer) + ".npy")


@contextlib.contextmanager
def _exclusive(entry: Path) -> Iterator[None]:
    """Hold an advisory lock on a cache entry (POSIX); elsewhere, no lock."""
    try:
        import fcntl
    except ImportError:  # Windows: two notebooks extracting the same features at once would both compute them
        yield
        return
    with open(entry / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_json(path: Path, content: dict) -> None:
    write_text_atomic(path, json.dumps(content, indent=1))  # umask permissions: a class can share the cache


class _DigestMemo:
    """File digests remembered in ``<cache root>/digests/`` (one JSON per folder of files), each against the file's
    size, modification and change times and inode: a file that still has all four has the same bytes. Any write
    changes the change time, which no program can set back, so a changed file is always hashed again. A file changed
    less than :data:`DIGEST_SETTLE_SECONDS` before it was hashed is not remembered (its next change could fall in the
    same tick of a coarse file-system clock). Losing the memo only costs time; writing it never fails a run."""

    def __init__(self, root: Path) -> None:
        self.folder = root / _DIGESTS_DIR
        self.tables: dict[str, dict[str, dict]] = {}  # by folder (a string: hashing Path objects costs more here)
        self.changed: set[str] = set()

    def digest(self, path: Path, algorithm: str) -> str:
        """The file's digest, from the memo when the file is unchanged; raises ``OSError`` when it cannot be read."""
        folder, name = os.path.split(os.fspath(path))
        signature = _signature(os.stat(path))
        table = self._table(folder)
        remembered = table.get(name)
        if remembered is not None and remembered.get("signature") == signature and algorithm in remembered:
            return remembered[algorithm]
        value = file_digest(path, algorithm)
        settled = time.time_ns() - max(signature[1], signature[2]) >= DIGEST_SETTLE_SECONDS * 1e9
        if settled and _signature(os.stat(path)) == signature:  # and it did not change while being read
            if remembered is None or remembered.get("signature") != signature:
                remembered = table[name] = {"signature": signature}
            remembered[algorithm] = value
            self.changed.add(folder)
        return value

    def save(self) -> None:
        """Write the tables that gained digests (best effort: a read-only or full disk only loses the memo)."""
        for folder in self.changed:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                _write_json(self._file(folder), {"folder": folder, "files": self.tables[folder]})
            except OSError:
                pass
        self.changed.clear()

    def _file(self, folder: str) -> Path:
        return self.folder / f"{hashlib.sha256(os.fsencode(folder)).hexdigest()[:32]}.json"

    def _table(self, folder: str) -> dict[str, dict]:
        if folder not in self.tables:
            try:
                record = json.loads(self._file(folder).read_text())
                table = record["files"] if record.get("folder") == folder else {}
            except (OSError, ValueError, KeyError, TypeError):
                table = {}
            self.tables[folder] = table if isinstance(table, dict) else {}
        return self.tables[folder]


def _signature(info: os.stat_result) -> list[int]:
    return [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino]


def _size_text(n_bytes: int, exact: bool = True) -> str:
    """``"320 bytes"``, ``"12.5 MiB (13,107,200 bytes)"`` (``exact``) or ``"12.5 MiB"``."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= size:
            return f"{n_bytes / size:.1f} {unit}" + (f" ({n_bytes:,} bytes)" if exact else "")
    return f"{n_bytes} bytes"


def _create_array(path: Path, shape: tuple[int, ...], entry_bytes: int) -> np.memmap:
    """A new ``.npy`` file of zeros, allocated on disk before any row is written through its memory map."""
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    try:
        _reserve_space(path, entry_bytes, zero_from=array.offset)
    except BaseException:
        del array
        path.unlink(missing_ok=True)
        raise
    return array


def _reserve_space(path: Path, entry_bytes: int, zero_from: int | None) -> None:
    """Allocate every block of ``path`` now (``os.posix_fallocate``), so that a full disk is an ``OSError`` naming the
    space needed and where, not a ``SIGBUS`` when a row is later written through the memory map. Where that call is
    missing or unsupported, a new file is allocated by writing its zeros from byte ``zero_from`` on (``None``: a
    resumed file, whose rows must be kept, is left as it is)."""
    size = path.stat().st_size
    try:
        with open(path, "r+b") as handle:
            try:
                os.posix_fallocate(handle.fileno(), 0, size)
            except (AttributeError, OSError) as err:  # AttributeError: no posix_fallocate (macOS, Windows)
                if isinstance(err, OSError) and err.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise
                if zero_from is not None:
                    handle.seek(zero_from)
                    zeros = bytes(_ZERO_CHUNK)
                    for start in range(zero_from, size, len(zeros)):
                        handle.write(zeros[: min(len(zeros), size - start)])
                    handle.flush()
                    os.fsync(handle.fileno())
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        free = shutil.disk_usage(path.parent).free
        raise OSError(
            err.errno,
            f"Not enough disk space for the features: {path.name} needs {_size_text(size)} and the whole entry "
            f"{_size_text(entry_bytes)} in {path.parent}, where {_size_text(free, exact=False)} are free. Free "
            f"some space there (or set COURSE_CACHE_DIR to a larger disk) and run again: the rows already finished "
            f"are kept.",
        ) from err


def _read_entry(entry: Path, run: _Run, memo: _DigestMemo, then: str) -> FeatureSet | None:
    """The finished, verified entry, or ``None``: not finished (no warning), or damaged (one warning line naming the
    entry and what was wrong; ``then`` says what happens next). Reads only: nothing is written into ``entry``."""
    if not (entry / "complete.json").is_file():
        return None
    loaded = _load_entry(entry, run.template(), run.shapes, memo)
    memo.save()
    if isinstance(loaded, str):
        warnings.warn(f"Feature cache entry {entry} is damaged ({loaded}); {then}.", CacheEntryDamagedWarning,
                      stacklevel=3)
        return None
    return loaded


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
        # the network runs (:func:`_normalised`); any other callable runs whole here.
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


def _normalised(pixels: torch.Tensor, transform, device: str) -> torch.Tensor:
    """The loader's views as the network's float32 input, on ``device``: uint8 views are copied there first (a quarter
    of the bytes of float32) and normalised there."""
    if pixels.dtype != torch.uint8:
        return pixels
    return transform.normalize(pixels.to(device, non_blocking=True))


def _collate(items):
    """One batch: image indices, the views of its good images stacked ``(n_good * V, C, H, W)`` (``None`` if there are
    none), and ``{index: reason}`` for its bad images."""
    indices = [index for index, _, _ in items]
    tensors = [tensor for _, tensor, _ in items if tensor is not None]
    reasons = {index: reason for index, _, reason in items if reason is not None}
    return indices, (torch.cat(tensors) if tensors else None), reasons


# --------------------------------------------------------------------------------------------------- the run


class _Run:
    """One extraction job: the loop from decoded views to stored rows, into memory or into a cache entry."""

    def __init__(self, backbone, layers, spec, paths, boxes, engine, batch_size, num_workers, on_error, progress,
                 device, on_batch) -> None:
        self.backbone, self.layers, self.spec, self.paths, self.boxes = backbone, layers, spec, paths, boxes
        self.engine_name, self.batch_size, self.num_workers = engine, batch_size, num_workers
        self.on_error, self.progress, self.on_batch = on_error, progress, on_batch
        self.device = device or str(next(backbone.model.parameters()).device)
        self.settings: dict = {}  # engine, batch size, workers and threads of the last run (saved in complete.json)
        self.shapes = {layer: (len(paths), spec.n_views, _layer_dim(backbone, layer)) for layer in layers}

    def template(self) -> FeatureSet:
        """An empty FeatureSet describing this job (arrays to be filled in)."""
        return FeatureSet({}, list(self.paths), list(self.spec.view_names), np.ones(len(self.paths), dtype=bool),
                          [], self.backbone.name, self.backbone.weights_id, self.spec.name)

    def into_memory(self) -> FeatureSet:
        arrays = {layer: np.full(shape, np.nan, dtype=np.float32) for layer, shape in self.shapes.items()}
        skipped: dict[int, str] = {}
        self._loop(arrays, start=0, skipped=skipped, checkpoint=lambda done: None)
        for array in arrays.values():
            array.flags.writeable = False
        result = self.template()
        result.arrays = arrays
        result.skipped = [(str(self.paths[i]), skipped[i]) for i in sorted(skipped)]
        result.valid[sorted(skipped)] = False
        return result

    def into_entry(self, entry: Path, key: str, memo: _DigestMemo) -> FeatureSet:
        marker, progress_file = entry / "complete.json", entry / "progress.json"
        if marker.exists():  # a finished entry that failed its checks: withdraw the marker before touching anything
            marker.unlink()
            progress_file.unlink(missing_ok=True)  # its rows are the damaged ones: start again from row 0
        arrays, start, skipped = self._open_or_resume(entry)

        def checkpoint(done: int) -> None:
            for array in arrays.values():
                array.flush()  # rows on disk first, then the record that says they are there
            _write_json(progress_file, {"done": done, "skipped": _skipped_list(self.paths, skipped)})

        if start == 0:
            write_text_atomic(entry / "key.json", key)
            checkpoint(0)
        self._loop(arrays, start=start, skipped=skipped, checkpoint=checkpoint)
        for array in arrays.values():
            array.flush()
        arrays.clear()  # close the writable maps; the result re-opens them read-only
        checksums = {layer: file_digest(_layer_file(entry, layer), "crc32") for layer in self.layers}
        _write_json(marker, {
            "cache_version": CACHE_VERSION, "n_images": len(self.paths), "views": self.spec.view_names,
            "layers": self.layers, "shapes": {layer: list(shape) for layer, shape in self.shapes.items()},
            "crc32": checksums, "skipped": _skipped_list(self.paths, skipped), **self.settings,
        })
        progress_file.unlink(missing_ok=True)
        loaded = _load_entry(entry, self.template(), self.shapes, memo, verify=False)  # just checksummed
        if isinstance(loaded, str):
            raise RuntimeError(f"The feature cache entry {entry} was written but cannot be read back ({loaded}); "
                               f"delete it.")
        loaded.from_cache = False
        return loaded

    def _open_or_resume(self, entry: Path) -> tuple[dict[str, np.memmap], int, dict[int, str]]:
        """The entry's arrays, opened for writing and allocated on disk: resumed from progress.json when it is
        consistent, else new."""
        progress_file = entry / "progress.json"
        entry_bytes = sum(4 * math.prod(shape) for shape in self.shapes.values())
        if progress_file.is_file():
            try:
                record = json.loads(progress_file.read_text())
                arrays = {layer: np.load(_layer_file(entry, layer), mmap_mode="r+") for layer in self.layers}
                if all(arrays[layer].shape == shape and arrays[layer].dtype == np.float32
                       for layer, shape in self.shapes.items()):
                    skipped = {int(item["index"]): item["reason"] for item in record["skipped"]}
                    for layer in self.layers:
                        _reserve_space(_layer_file(entry, layer), entry_bytes, zero_from=None)
                    return arrays, int(record["done"]), skipped
            except (OSError, ValueError, KeyError, TypeError, EOFError) as err:
                if getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
                    raise  # the disk is full: keep the finished rows for when space is freed
            progress_file.unlink(missing_ok=True)  # a damaged entry: start it again below
        arrays = {layer: _create_array(_layer_file(entry, layer), shape, entry_bytes)
                  for layer, shape in self.shapes.items()}
        return arrays, 0, {}

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
        bar = _progress_bar(n_images, start, self.progress, f"{self.backbone.name} {','.join(self.layers)}")
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
        pixels = _normalised(pixels, self.backbone.transform, self.device)
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
    _write_json(_probe_file(), table)
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


def _load_entry(entry: Path, template: FeatureSet, shapes: dict[str, tuple[int, ...]], memo: _DigestMemo,
                verify: bool = True) -> FeatureSet | str:
    """The finished entry as a FeatureSet of read-only memory maps, or what is wrong with it: a missing, empty,
    truncated layer file, another shape or dtype than the job's, or (``verify``) a CRC-32 other than recorded."""
    try:
        record = json.loads((entry / "complete.json").read_text())
        checksums, skipped = record["crc32"], [(int(item["index"]), item["reason"]) for item in record["skipped"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"complete.json cannot be read ({err})"
    if any(not 0 <= i < len(template.paths) for i, _ in skipped):
        return "complete.json lists skipped images that the job does not have"
    arrays = {}
    for layer, shape in shapes.items():
        path = _layer_file(entry, layer)
        try:
            if path.stat().st_size == 0:
                return f"{path.name} is empty"
            array = np.load(path, mmap_mode="r")
        except FileNotFoundError:
            return f"{path.name} is missing"
        except (OSError, ValueError, EOFError) as err:
            return f"{path.name} cannot be read: {err}"
        if array.shape != shape or array.dtype != np.float32 or not array.flags.c_contiguous:
            return f"{path.name} holds {array.dtype} {array.shape}, not float32 {shape}"
        if verify:
            try:
                crc = memo.digest(path, "crc32")
            except OSError as err:
                return f"{path.name} cannot be read: {err}"
            if crc != checksums.get(layer):
                return f"{path.name} fails its checksum: CRC-32 {crc}, recorded {checksums.get(layer)}"
        arrays[layer] = array
    template.arrays, template.cache_path, template.from_cache = arrays, entry, True
    template.skipped = [(str(template.paths[i]), reason) for i, reason in skipped]
    template.valid[[i for i, _ in skipped]] = False
    return template


def _skipped_list(paths: list[Path], skipped: dict[int, str]) -> list[dict]:
    return [{"index": i, "path": str(paths[i]), "reason": skipped[i]} for i in sorted(skipped)]


def _progress_bar(total: int, initial: int, enabled: bool, label: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="img", desc=label, disable=not enabled, file=sys.stderr,
                dynamic_ncols=True, smoothing=0.1)


def clear_cache(cache_root: str | os.PathLike | None = None) -> int:
    """Delete every stored feature entry under ``cache_root`` (default: the course cache); returns how many."""
    root = (Path(cache_root) if cache_root else config.cache_dir()) / _FEATURES_DIR
    entries = [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    for entry in entries:
        shutil.rmtree(entry)
    return len(entries)
