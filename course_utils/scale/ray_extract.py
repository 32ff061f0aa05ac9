"""Feature extraction as a Ray Data batch-inference job, into the very feature store of :func:`features.extract`.

:func:`extract` takes the arguments of :func:`course_utils.features.extract` (plus how many model replicas to run
and what each one holds) and returns the same :class:`~course_utils.features.FeatureSet`. The job is the one Ray
Data documents for offline batch inference, not home-made scheduling:

* ``ray.data.from_items`` over the images still to do (index, path, crop box), in tasks of ``images_per_task``;
* ``map_batches`` with a callable class, :class:`_Replica`: each actor loads the network once (one replica per GPU
  with ``gpus_per_replica=1``, or per CPU worker) and, per task, decodes the images with the feature engine's own
  loader (:func:`course_utils.features.view_loader`: the same decoding, views, reduced-scale JPEGs and pixel
  normalisation as one process) and runs the same engine (:func:`course_utils.engines.make_engine`);
* the driver streams the results (``iter_batches``) into the cache entry's memory-mapped layer files, row by image
  index, whatever order the tasks finish in.

**The same store.** The job is planned by :func:`course_utils.features.plan` (the same checks and the same key:
backbone, weights, layers, views, boxes, images by content) and its entry found, opened, written and finished through
:mod:`course_utils.feature_store` (:meth:`~course_utils.features.ExtractionPlan.fetch`). It holds the same
``key.json``, ``<layer>.npy`` and ``complete.json`` (with each layer file's CRC-32, the skipped images and the
settings), so that :func:`features.extract` on the same inputs afterwards is a cache hit, and a finished entry
found in the cache (local or shared) is returned without starting Ray at all.

**Resumable.** Every :data:`course_utils.features.CHECKPOINT_SECONDS` and on any interruption (an exception, Ctrl-C,
a replica that keeps failing) the layer files are flushed and *then* ``progress.json`` records the finished rows,
atomically: ``done`` (rows ``0..done-1``, all finished, which :func:`features.extract` itself resumes from) and
``finished`` (every finished row, as ``[start, stop)`` ranges, since Ray's tasks finish out of order). A new call
schedules only the unfinished rows. Within a job, Ray Data itself restarts a replica that dies and retries its
task (its actors' default ``max_restarts=-1``).

**Bad images** behave as in one process: ``on_error="raise"`` raises
:class:`~course_utils.imageio.BadImageError` naming the file (after checkpointing the finished rows);
``on_error="skip"`` fills its rows with NaN, marks it in :attr:`FeatureSet.valid` and lists it in
:attr:`FeatureSet.skipped` (and in ``complete.json``).

The driver needs the backbone's name, weights id and layer widths for the key, so it loads the network too (on
its CPU); replicas given a registry name load it themselves on their device and check its weights id against the
driver's; a loaded :class:`~course_utils.backbones.Backbone` is shipped to them whole. On a cluster the images and
the cache must sit on a filesystem every node sees at the same path (``docs/scale.md``).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from .. import augment, backbones, config, engines, feature_store, features
from ..imageio import BadImageError
from . import SCALE_EXTRA_HINT

DEFAULT_IMAGES_PER_TASK = {"cpu": 32, "gpu": 512}  # images per Ray task (and per result written by the driver)
_FEATURE_COLUMN = "layer{}"  # result columns: layers by position (layer names may hold characters columns dislike)


def import_ray():
    """The ``ray`` module with Ray Data, or an ``ImportError`` saying how to install the ``scale`` extra."""
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data is a separate extra of ray)
    except ImportError as err:
        raise ImportError(f"Distributed extraction needs Ray Data: {SCALE_EXTRA_HINT}.") from err
    return ray


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
    replicas: int | None = None,
    gpus_per_replica: float | None = None,
    cpus_per_replica: float = 1,
    images_per_task: int | None = None,
) -> features.FeatureSet:
    """:func:`course_utils.features.extract` as a Ray Data job (module docstring); same arguments, same result.

    Ray-specific: ``replicas`` model replicas (default: as many as the cluster's GPUs, or its CPUs, allow);
    ``gpus_per_replica`` (default 1 when the cluster has GPUs and ``device`` is not ``"cpu"``, else 0);
    ``cpus_per_replica`` CPU cores reserved by each replica (its network's threads); ``images_per_task`` images
    per Ray task (default 32 on CPUs, 512 on GPUs). ``num_workers``: decoding processes inside each replica
    (default: none on CPUs, all but one of its cores on GPUs); ``device`` is where the replicas run the network.
    A Ray already started (``ray.init(address=...)``) is used; otherwise Ray starts a local one
    (``RAY_ADDRESS`` joins a cluster).

    Raises what :func:`features.extract` raises, plus ``ImportError`` without Ray Data and ``ValueError`` for
    replica settings out of range.
    """
    features.check_batch_size(batch_size)
    if replicas is not None and replicas < 1:
        raise ValueError(f"replicas must be at least 1; got {replicas}.")
    if images_per_task is not None and images_per_task < 1:
        raise ValueError(f"images_per_task must be at least 1; got {images_per_task}.")
    if cpus_per_replica <= 0 or (gpus_per_replica is not None and gpus_per_replica < 0):
        raise ValueError(f"cpus_per_replica must be > 0 and gpus_per_replica >= 0; got {cpus_per_replica} and "
                         f"{gpus_per_replica}.")
    job = features.plan(paths, backbone, layers, views, boxes=boxes, engine=engine, cache=cache, on_error=on_error,
                        device="cpu")  # the driver's copy, for the key and the widths; replicas load their own
    ray_job = _RayJob(job, backbone, batch_size, num_workers, progress, device, on_batch, replicas, gpus_per_replica,
                      cpus_per_replica, images_per_task)
    if job.key is None:
        return ray_job.into_memory()
    return job.fetch(ray_job.into_entry)  # a finished entry (shared or own) is returned without starting Ray


# --------------------------------------------------------------------------------------------------- the replicas


class _Replica:
    """One model replica (a Ray actor): the network and its engine, loaded once; each call turns a task's images
    into their features, decoded and computed exactly as :func:`features.extract` does in one process."""

    def __init__(self, backbone: str | backbones.Backbone, weights_id: str, layers: list[str], widths: list[int],
                 views: augment.ViewSpec, engine: str, batch_size: int | None, decoders: int, device: str,
                 threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        if isinstance(backbone, str):
            backbone = backbones.load(backbone, device=device)
            if backbone.weights_id != weights_id:
                raise RuntimeError(
                    f"This node's {backbone.name} weights ({backbone.weights_id}) are not the driver's ({weights_id}): "
                    f"the features would not match their cache key. Give every node the same weights files.")
        self.backbone, self.layers, self.spec, self.decoders, self.device = backbone, layers, views, decoders, device
        self.forward = engines.make_engine(backbone, layers, engine=engine, device=device, threads=threads)
        self.batch = batch_size or self.forward.preferred_batch_size
        self.widths = widths

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        indices = batch["index"].astype(np.int64)
        paths = [Path(str(p)) for p in batch["path"]]
        task_boxes = np.array([np.asarray(box, dtype=np.float64) for box in batch["box"]]).reshape(len(paths), 4)
        n_views = self.spec.n_views
        out = {_FEATURE_COLUMN.format(k): np.full((len(paths), n_views, width), np.nan, dtype=np.float32)
               for k, width in enumerate(self.widths)}
        reasons = np.full(len(paths), "", dtype=object)
        loader = features.view_loader(
            paths, self.backbone, self.spec, images_per_batch=max(1, self.batch // n_views),
            num_workers=self.decoders if len(paths) >= features.MIN_IMAGES_FOR_WORKERS else 0,
            pin_memory=self.device.startswith("cuda"),
            boxes=None if np.isnan(task_boxes).all() else task_boxes)
        with torch.inference_mode():
            for local, pixels, bad in loader:
                for index, reason in bad.items():
                    reasons[index] = reason
                good = [i for i in local if i not in bad]
                if pixels is None:
                    continue
                pixels = features.network_input(pixels, self.backbone.transform, self.device)
                chunks = [self.forward(pixels[i : i + self.batch]) for i in range(0, len(pixels), self.batch)]
                for k, width in enumerate(self.widths):
                    rows = np.concatenate([chunk[k] for chunk in chunks])
                    if rows.shape[1] != width:
                        raise RuntimeError(f"Layer {self.layers[k]!r} of {self.backbone.name!r} gives {rows.shape[1]} "
                                           f"values per view, but the backbone declares {width}.")
                    out[_FEATURE_COLUMN.format(k)][good] = rows.reshape(len(good), n_views, width)
        return {"index": indices, "reason": reasons,
                "engine": np.full(len(paths), getattr(self.forward, "name", "?"), dtype=object), **out}


# --------------------------------------------------------------------------------------------------- the job


class _RayJob:
    """One extraction job (an :class:`~course_utils.features.ExtractionPlan`) run on Ray: the rows still to do,
    streamed into memory or into a cache entry."""

    def __init__(self, job: features.ExtractionPlan, backbone_arg: str | backbones.Backbone, batch_size: int | None,
                 num_workers: int | None, progress: bool, device: str | None,
                 on_batch: Callable[[int, int], None] | None, replicas: int | None, gpus_per_replica: float | None,
                 cpus_per_replica: float, images_per_task: int | None) -> None:
        self.job, self.backbone_arg, self.backbone, self.layers = job, backbone_arg, job.backbone, job.layers
        self.spec, self.paths, self.boxes, self.engine, self.on_error = (job.spec, job.paths, job.boxes, job.engine,
                                                                         job.on_error)
        self.batch_size, self.num_workers, self.progress, self.on_batch = batch_size, num_workers, progress, on_batch
        self.device, self.replicas, self.gpus_per_replica = device, replicas, gpus_per_replica
        self.cpus_per_replica, self.images_per_task = cpus_per_replica, images_per_task
        self.settings: dict = {}

    def into_memory(self) -> features.FeatureSet:
        arrays = {layer: np.full(shape, np.nan, dtype=np.float32) for layer, shape in self.job.shapes.items()}
        finished = np.zeros(len(self.paths), dtype=bool)
        skipped: dict[int, str] = {}
        self._stream(arrays, finished, skipped, checkpoint=lambda: None)
        for array in arrays.values():
            array.flags.writeable = False
        result = self.job.template()
        result.arrays = arrays
        result.skipped = [(str(self.paths[i]), skipped[i]) for i in sorted(skipped)]
        result.valid[sorted(skipped)] = False
        return result

    def into_entry(self, writer: feature_store.EntryWriter) -> features.FeatureSet:
        """Fill the unfinished rows of ``writer``'s entry, in whatever order Ray's tasks finish, then finish it.
        Rows ``0..done-1`` are finished, and so are the ``finished`` ranges this runner recorded."""
        finished = np.zeros(len(self.paths), dtype=bool)
        finished[: writer.done] = True
        for first, stop in _recorded_ranges(writer.resumed):
            finished[first:stop] = True
        skipped = writer.skipped

        def checkpoint() -> None:
            writer.checkpoint(_prefix(finished), {i: r for i, r in skipped.items() if finished[i]},
                              finished=_ranges(finished))

        self._stream(writer.arrays, finished, skipped, checkpoint)
        return writer.finish(skipped, self.settings)

    def _stream(self, arrays: dict[str, np.ndarray], finished: np.ndarray, skipped: dict[int, str],
                checkpoint: Callable[[], None]) -> None:
        """Run the Ray job over the unfinished rows and write each result into ``arrays``; checkpoint regularly
        and on any interruption."""
        todo = np.flatnonzero(~finished)
        if len(todo) == 0:
            return
        ray = import_ray()
        dataset = self._dataset(ray, todo)
        n_images = len(self.paths)
        bar = features.progress_bar(n_images, int(finished.sum()), self.progress,
                                     f"{self.backbone.name} {','.join(self.layers)} (ray)")
        last_checkpoint = time.monotonic()
        try:
            for result in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                indices = result["index"].astype(np.int64)
                reasons = {int(i): str(r) for i, r in zip(indices, result["reason"], strict=True) if r}
                if reasons and self.on_error == "raise":
                    first = min(reasons)
                    raise BadImageError(self.paths[first], reasons[first])
                for k, array in enumerate(arrays.values()):
                    array[indices] = result[_FEATURE_COLUMN.format(k)]
                self.settings.setdefault("engine", str(result["engine"][0]))
                skipped.update(reasons)
                finished[indices] = True
                bar.update(len(indices))
                if time.monotonic() - last_checkpoint >= features.CHECKPOINT_SECONDS:
                    checkpoint()
                    last_checkpoint = time.monotonic()
                if self.on_batch is not None:
                    self.on_batch(int(finished.sum()), n_images)
        except BaseException:
            checkpoint()  # Ctrl-C, a bad image, a failed task: keep every finished row for the next call
            raise
        finally:
            bar.close()

    def _dataset(self, ray, todo: np.ndarray):
        """The Ray Data pipeline over the images ``todo``: items -> replicas (lazy; runs when iterated)."""
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = self.progress
        context.execution_options.preserve_order = False
        if not ray.is_initialized():
            ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False, log_to_driver=False)
        resources = ray.cluster_resources()
        cluster_gpus, cluster_cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
        wants_gpu = self.device is None or str(self.device).startswith("cuda")
        gpus = self.gpus_per_replica if self.gpus_per_replica is not None else (1 if cluster_gpus and wants_gpu else 0)
        if gpus > 0:
            replicas = self.replicas or max(1, int(cluster_gpus // gpus))
            device = self.device if self.device and str(self.device).startswith("cuda") else "cuda"
        else:
            replicas = self.replicas or max(1, int(cluster_cpus // self.cpus_per_replica))
            device = "cpu"
        threads = max(1, int(self.cpus_per_replica))
        decoders = self.num_workers if self.num_workers is not None else (max(0, threads - 1) if gpus > 0 else 0)
        per_task = self.images_per_task or DEFAULT_IMAGES_PER_TASK["gpu" if gpus > 0 else "cpu"]
        per_task = max(1, min(per_task, math.ceil(len(todo) / replicas)))  # every replica gets work
        self.settings = {"runner": "ray", "replicas": replicas, "gpus_per_replica": gpus,
                         "cpus_per_replica": self.cpus_per_replica, "images_per_task": per_task,
                         "batch_size": self.batch_size, "workers": decoders, "threads": threads, "device": device}
        items = [{"index": int(i), "path": str(self.paths[i]),
                  "box": [math.nan] * 4 if self.boxes is None else [float(v) for v in self.boxes[i]]} for i in todo]
        backbone = self.backbone_arg if isinstance(self.backbone_arg, str) else self.backbone
        return ray.data.from_items(items, override_num_blocks=math.ceil(len(items) / per_task)).map_batches(
            _Replica,
            fn_constructor_kwargs={"backbone": backbone, "weights_id": self.backbone.weights_id,
                                   "layers": self.layers, "widths": self.job.widths, "views": self.spec, "engine": self.engine,
                                   "batch_size": self.batch_size, "decoders": decoders, "device": device,
                                   "threads": threads},
            batch_size=per_task, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=replicas),
            num_cpus=self.cpus_per_replica, num_gpus=gpus,
        )


# --------------------------------------------------------------------------------------------------- progress


def _prefix(finished: np.ndarray) -> int:
    """How many leading rows are finished (what ``features.extract`` resumes from)."""
    unfinished = np.flatnonzero(~finished)
    return int(unfinished[0]) if len(unfinished) else len(finished)


def _ranges(finished: np.ndarray) -> list[list[int]]:
    """The finished rows as sorted ``[start, stop)`` ranges."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], finished.astype(np.int8), [0]])))
    return [[int(a), int(b)] for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _recorded_ranges(record: dict | None) -> list[tuple[int, int]]:
    """The ``finished`` ranges of a resumed ``progress.json`` (none when there is no record or it holds none)."""
    try:
        return [(int(a), int(b)) for a, b in (record or {}).get("finished", [])]
    except (ValueError, TypeError):
        return []


@contextlib.contextmanager
def local_ray(num_cpus: int | None = None) -> Iterator[None]:
    """A local Ray for the length of a ``with`` block (a benchmark, a test), shut down after; a Ray already running
    is used as it is and left running."""
    ray = import_ray()
    if ray.is_initialized():
        yield
        return
    ray.init(num_cpus=num_cpus or config.cpu_count(), include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()
