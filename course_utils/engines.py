"""Inference engines: what runs the network cut at the requested layers on a batch of ready tensors.

``make_engine(backbone, layers, engine="auto")`` returns a callable :class:`Engine` mapping an ``NCHW`` float32 batch
to one ``(B, dim)`` float32 numpy array per layer. The feature store does not care which engine produced the
numbers: every other engine is checked against PyTorch eager before it is used, so they agree within
:data:`TOLERANCE`.

Engines
-------
``torch``        PyTorch eager, in channels-last memory format (on a CPU up to 2x faster than contiguous at the
                 batch sizes measured in ``benchmarks/README.md``); on a GPU under bfloat16 autocast.
``onnxruntime``  the same network exported to ONNX and run by ONNX Runtime (CPU provider; the CUDA provider when the
                 ``onnxruntime-gpu`` build is installed and the device is a GPU). On a laptop CPU it runs the forward
                 pass about 2.5 times faster than PyTorch eager, which is why ``auto`` picks it there.
``onnxruntime-int8``
                 the ONNX export quantised to 8-bit integers (static quantisation with ONNX Runtime's tools, see
                 "INT8" below) and run by ONNX Runtime on the CPU. Several times faster than ``onnxruntime`` on a CPU
                 with integer dot-product instructions (AVX-512 VNNI, AVX-VNNI, ARM dot product), but its features
                 *differ* from float32 ones (cosine similarity about 0.99 per row), so it has its own feature-cache
                 identity (:func:`feature_numerics`) and is never picked by ``auto``; the measured trade-off is in
                 ``benchmarks/README.md``.
``compile``      ``torch.compile`` (inductor). Optional: compiling takes from half a minute to several minutes on a
                 2-core CPU, so it only pays off for long runs. It is compiled for one batch size only; smaller
                 batches are padded and larger ones split, so the last, partial batch never triggers a recompile.
``auto``         ``onnxruntime`` on a CPU when it is installed and its export passes the check, else ``torch``.
                 :attr:`Engine.reason` says which engine was picked and why; callers print it.

Export once, verify, cache
--------------------------
The extractor (``Backbone.extractor(layers)``, one output per layer) is exported with a dynamic batch axis to
``<cache>/onnx/<key>.onnx``. The key hashes everything that changes the file (:func:`onnx_cache_fields`): the
backbone, its weights, the layers, the input size, the opset and the torch and onnxruntime versions. The file is
written under a temporary name and renamed, and a sidecar ``<key>.json`` records the key and the file's SHA-256. A file
is used only if its sidecar matches, its checksum matches and ONNX Runtime can open it; anything else (a truncated or
half-written file, a stale sidecar) is exported again. Every time an ONNX engine is built, a probe batch goes through
both ONNX Runtime and PyTorch, and if the L2-normalised features differ by more than :data:`TOLERANCE` the ONNX engine
is refused and PyTorch is used instead, with an :class:`EngineFallbackWarning`.

Which exporter: the TorchScript exporter (``dynamo=False``) exports EfficientNet-Lite0 in 1 to 4 s on a
lightly loaded 2-core CPU; the ``torch.export`` one (``dynamo=True``) took 20 to 45 s for the same network and
gives the same features. So the TorchScript exporter goes first, and the ``torch.export`` one is the fallback
for what tracing cannot capture (R-MAC pooling, whose region grid is computed with Python arithmetic on the
map's shape) and for future torch releases that drop the TorchScript exporter.

Threads: ONNX Runtime gets ``threads`` intra-op threads (default :func:`course_utils.config.cpu_count`, which honours
``OMP_NUM_THREADS`` and cgroup quotas) and one inter-op thread; PyTorch's thread count is left to the caller
(``features.extract`` plans it together with its decoding workers).

INT8
----
``onnxruntime-int8`` quantises the verified float32 export once per network and layers and caches it beside it
(``<key>-int8-<hash>.onnx`` with its sidecar, verified the same way: fields, size and SHA-256). The recipe
(:data:`INT8_RECIPE`), chosen by measurement on a 2-core AVX-512 VNNI CPU:

* the ``Identity`` nodes the TorchScript exporter leaves on ResNet weights are folded away (the quantiser cannot
  follow them), then ``quant_pre_process`` infers shapes, without its graph optimisation (which turns
  EfficientNet's padding arithmetic into a graph the quantiser rejects);
* QOperator format (fused ``QLinearConv`` kernels): faster than QDQ here (Lite0 215 against 181 images/s, ResNet-50
  53-94 against 39-42); unsigned 8-bit activations, signed 8-bit weights per output channel, MinMax calibration;
* only ``Conv``, ``Clip``, ``Relu``, ``Pad``, pooling quantised, *not* the residual ``Add``: quantising those Adds
  dropped the mean cosine similarity of EfficientNet-Lite0's features to float32's from 0.99 to 0.91;
* calibration on :data:`CALIBRATION_VIEWS` fixed views cut from scikit-image's sample photographs (deterministic),
  not on the images being extracted: the quantised network then depends on the backbone and layers alone, so the
  train and test splits, a photo search's query and its index, extracted in separate calls, all go through the same
  network. On Flowers-102 images this calibration gave the same similarity to float32 (0.9907) as calibrating on
  Flowers-102 itself (0.9906).

Before use, the INT8 network runs :data:`CHECK_VIEWS` other photograph views beside the float32 export; if the
smallest cosine similarity of a row falls below :data:`INT8_MIN_COSINE` it is refused with
:class:`EngineMismatchError`. An INT8 engine that cannot be built raises instead of falling back to float32: its
features would be stored under the INT8 cache identity.

:func:`bench_forward` measures the forward pass of every engine, batch size and memory format, for ``bench extract``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import logging
import os
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from . import config
from .backbones import Backbone
from .datasets.images import sha256_file, write_text_atomic
from .normalize import l2_rows

ENGINES = ("auto", "torch", "onnxruntime", "onnxruntime-int8", "compile")
INT8 = "onnxruntime-int8"
TOLERANCE = 1e-4  # largest |difference| allowed between L2-normalised features of an engine and of PyTorch eager
AUTOCAST_TOLERANCE = 1e-2  # the same between two bfloat16 runs on a GPU (bfloat16 keeps 8 significant bits)
OPSET = 18  # the lowest opset the torch.export-based exporter supports; the TorchScript one supports it too
CACHE_FORMAT = 1  # bump when the export recipe changes (names, axes, exporter order), to invalidate cached files
PROBE_BATCH = 3  # differs from the export batch (2), so the probe also checks that the batch axis is dynamic
EXPORT_BATCH = 2
# Preferred batch sizes, from the measurements in benchmarks/README.md ("Engines"): on a 2-core CPU ONNX Runtime's
# throughput hardly depends on the batch, so a small batch keeps memory low and the decoding workers in step;
# PyTorch eager is fastest near 16; a GPU wants large batches.
PREFERRED_BATCH = {("onnxruntime", "cpu"): 8, (INT8, "cpu"): 8, ("torch", "cpu"): 16, ("compile", "cpu"): 16}
# Static INT8 quantisation (see "INT8" in the module docstring); ``version`` is bumped when the recipe changes.
INT8_RECIPE = {"version": 1, "format": "QOperator", "activations": "QUInt8", "weights": "QInt8", "per_channel": True,
               "calibration": "MinMax", "ops": ["Conv", "Clip", "Relu", "Pad", "GlobalAveragePool", "MaxPool",
                                                "AveragePool"]}
CALIBRATION_VIEWS = 192  # views of the fixed calibration photographs (a few hundred, as ONNX Runtime advises)
CHECK_VIEWS = 8  # other views, run through both the INT8 and the float32 network before the INT8 one is used
INT8_MIN_COSINE = 0.95  # smallest cosine similarity allowed between an INT8 row and its float32 row
CALIBRATION_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
                      "retina", "colorwheel", "logo", "camera", "brick", "grass", "gravel")
GPU_BATCH = 128

log = logging.getLogger(__name__)


class EngineFallbackWarning(UserWarning):
    """An engine was asked for (or picked by ``auto``) but could not be used; PyTorch eager runs instead."""


class EngineUnavailableError(RuntimeError):
    """The engine asked for by name cannot run on this machine (for example: onnxruntime is not installed)."""


class EngineMismatchError(RuntimeError):
    """An engine's features differ from PyTorch eager's by more than :data:`TOLERANCE`."""


# ----------------------------------------------------------------------------------------------------- engines


class Engine:
    """A ready-to-call forward pass for one backbone and one list of layers.

    ``engine(batch)`` takes an ``(B, 3, H, W)`` float32 tensor (any device) and returns one ``(B, dim)`` float32
    array per layer, in the order of :attr:`layers`. :attr:`reason` says why this engine runs (print it).
    """

    name: str = ""

    def __init__(self, layers: Sequence[str], device: str, channels_last: bool, preferred_batch_size: int,
                 input_size: int, reason: str = "") -> None:
        self.layers = list(layers)
        self.device = device
        self.channels_last = channels_last
        self.preferred_batch_size = preferred_batch_size
        self.input_size = input_size
        self.reason = reason

    def __call__(self, batch: torch.Tensor) -> list[np.ndarray]:
        self._check(batch)
        return self._forward(batch)

    def _forward(self, batch: torch.Tensor) -> list[np.ndarray]:
        raise NotImplementedError

    def _check(self, batch: torch.Tensor) -> None:
        expected = (3, self.input_size, self.input_size)
        if batch.ndim != 4 or tuple(batch.shape[1:]) != expected:
            raise ValueError(
                f"The {self.name} engine needs a (B, {', '.join(map(str, expected))}) batch made by the backbone's "
                f"transform; got shape {tuple(batch.shape)}."
            )
        if batch.dtype != torch.float32:
            raise ValueError(f"The {self.name} engine needs a float32 batch; got {batch.dtype}.")

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, layers={self.layers}, device={self.device!r}, "
                f"preferred_batch_size={self.preferred_batch_size})")


class TorchEngine(Engine):
    """PyTorch eager: channels-last on request, bfloat16 autocast on CUDA."""

    name = "torch"

    def __init__(self, module: torch.nn.Module, **kwargs) -> None:
        super().__init__(**kwargs)
        self.module = module

    @torch.inference_mode()
    def _forward(self, batch: torch.Tensor) -> list[np.ndarray]:
        batch = batch.to(self.device, non_blocking=True)
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if self.device.startswith("cuda")
                    else contextlib.nullcontext())
        with autocast:
            outputs = self.module(batch)
        return [output.float().cpu().numpy() for output in outputs]


class CompiledEngine(TorchEngine):
    """``torch.compile`` for one batch size: smaller batches are padded, larger ones split (no recompilation)."""

    name = "compile"

    def _forward(self, batch: torch.Tensor) -> list[np.ndarray]:
        size, n = self.preferred_batch_size, len(batch)
        chunks = []
        for start in range(0, n, size):
            chunk = batch[start : start + size]
            real = len(chunk)
            if real < size:
                padding = chunk[-1:].expand(size - real, *chunk.shape[1:])
                chunk = torch.cat([chunk, padding])
            chunks.append([output[:real] for output in super()._forward(chunk)])
        return [np.concatenate([chunk[k] for chunk in chunks]) for k in range(len(self.layers))]


class OnnxRuntimeEngine(Engine):
    """ONNX Runtime on an exported, verified copy of the extractor."""

    name = "onnxruntime"
    numerics: str | None = None  # see :func:`feature_numerics`

    def __init__(self, session, onnx_path: Path, max_abs_diff: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.session = session
        self.onnx_path = onnx_path
        self.max_abs_diff = max_abs_diff  # measured on the probe batch against PyTorch eager, after L2
        self._input_name = session.get_inputs()[0].name

    def _forward(self, batch: torch.Tensor) -> list[np.ndarray]:
        pixels = np.ascontiguousarray(batch.detach().cpu().numpy())
        return list(self.session.run(None, {self._input_name: pixels}))


class OnnxRuntimeInt8Engine(OnnxRuntimeEngine):
    """ONNX Runtime on the INT8-quantised export. :attr:`min_cosine`: the smallest cosine similarity of a check row
    to float32 (``max_abs_diff`` against PyTorch eager is not measured: NaN); :attr:`numerics` names the quantisation
    in the feature-cache key."""

    name = INT8

    def __init__(self, session, onnx_path: Path, min_cosine: float, **kwargs) -> None:
        super().__init__(session, onnx_path, float("nan"), **kwargs)
        self.min_cosine = min_cosine
        self.numerics = feature_numerics(INT8)


def feature_numerics(engine: str) -> str | None:
    """What the feature cache must know about ``engine``'s arithmetic: ``None`` for the float32 engines (``auto``,
    ``torch``, ``onnxruntime``, ``compile``: they agree within :data:`TOLERANCE`, so their features share one
    cache entry), and a description of the recipe for ``onnxruntime-int8``, whose features differ."""
    if engine != INT8:
        return None
    recipe = json.dumps(INT8_RECIPE, sort_keys=True)
    photos = ",".join(CALIBRATION_PHOTOS)
    return f"int8:{hashlib.sha256(f'{recipe}|{photos}|{CALIBRATION_VIEWS}'.encode()).hexdigest()[:16]}"


# ---------------------------------------------------------------------------------------------------- building


def available_engines(device: str = "cpu") -> list[str]:
    """Names of the engines that can run on ``device`` here: ``torch`` always; ``onnxruntime`` when installed (on a
    GPU only when its build has the CUDA provider; the plain build would run on the CPU); ``onnxruntime-int8`` (CPU
    only); ``compile``."""
    names = ["torch"]
    ort = _import_onnxruntime()
    if ort is not None and (not device.startswith("cuda") or "CUDAExecutionProvider" in ort.get_available_providers()):
        names.append("onnxruntime")
    if ort is not None and not device.startswith("cuda"):
        names.append(INT8)
    if hasattr(torch, "compile"):
        names.append("compile")
    return names


def make_engine(
    backbone: Backbone,
    layers: Sequence[str],
    engine: str = "auto",
    device: str | None = None,
    *,
    threads: int | None = None,
    channels_last: bool | None = None,
) -> Engine:
    """Build the engine called ``engine`` (one of :data:`ENGINES`) for ``backbone`` cut at ``layers``.

    ``device``: default the backbone's device (the model is moved there). ``threads``: ONNX Runtime's intra-op
    threads (default :func:`config.cpu_count`). ``channels_last``: memory format of the torch engines (default: on).
    ``auto`` picks ``onnxruntime`` on a CPU when it is installed and verified, else ``torch``; an ONNX engine that
    cannot be exported or whose features differ from PyTorch's falls back to ``torch`` with an
    :class:`EngineFallbackWarning`. Asking by name for ``onnxruntime`` when it is not installed raises
    :class:`EngineUnavailableError`; an unknown name raises ``ValueError`` listing the valid ones.
    ``onnxruntime-int8`` never falls back (its features differ from float32's): it raises
    :class:`EngineUnavailableError` on a GPU or without onnxruntime, :class:`EngineMismatchError` when the quantised
    network strays from float32.
    """
    if engine not in ENGINES:
        raise ValueError(f"Unknown engine {engine!r}; choose one of {', '.join(ENGINES)}.")
    layers = list(layers) if not isinstance(layers, str) else [layers]
    if not layers:
        raise ValueError("make_engine() needs at least one layer name, e.g. backbone.default_layer.")
    device = str(device or next(backbone.model.parameters()).device)
    on_gpu = device.startswith("cuda")
    channels_last = True if channels_last is None else channels_last

    def eager(reason: str) -> TorchEngine:
        return _torch_engine(backbone, layers, device, channels_last, reason)

    if engine == "torch":
        return eager("torch: asked for by name")
    if engine == INT8:
        return _int8_engine(backbone, layers, device, threads or config.cpu_count())
    if engine == "auto" and on_gpu:
        return eager(f"auto: torch on {device} (bfloat16 autocast); onnxruntime is the CPU default")
    if engine == "compile":
        return _fallback_on_error(lambda: _compiled_engine(backbone, layers, device, channels_last), eager, "compile")

    ort = _import_onnxruntime()
    if ort is None:
        if engine == "onnxruntime":
            raise EngineUnavailableError(
                "engine='onnxruntime' needs the onnxruntime package, which is not installed: pip install onnxruntime "
                "(or use engine='auto' or 'torch')."
            )
        return eager("auto: torch, because onnxruntime is not installed (pip install onnxruntime for ~2.5x on a CPU)")
    prefix = "auto: onnxruntime on the CPU" if engine == "auto" else "onnxruntime: asked for by name"
    return _fallback_on_error(
        lambda: _onnxruntime_engine(ort, backbone, layers, device, threads or config.cpu_count(), prefix),
        eager, "onnxruntime",
    )


def _fallback_on_error(build, eager, name: str) -> Engine:
    """``build()``, or PyTorch eager with a warning naming the error if the optional engine fails in any way."""
    try:
        return build()
    except Exception as err:  # export, session, compiler and mismatch errors alike: PyTorch still gives the features
        message = f"The {name} engine cannot be used ({type(err).__name__}: {err}); running PyTorch eager instead."
        warnings.warn(message, EngineFallbackWarning, stacklevel=3)
        log.warning(message)
        return eager(f"torch: fallback, the {name} engine failed: {err}")


def _torch_engine(backbone: Backbone, layers: list[str], device: str, channels_last: bool, reason: str,
                  cls: type[TorchEngine] = TorchEngine) -> TorchEngine:
    module = backbone.extractor(layers).to(device)
    module = module.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    kind = "cuda" if device.startswith("cuda") else "cpu"
    if kind == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN time its algorithms once per shape
    batch = GPU_BATCH if kind == "cuda" else PREFERRED_BATCH[(cls.name, "cpu")]
    return cls(module, layers=layers, device=device, channels_last=channels_last, preferred_batch_size=batch,
               input_size=backbone.input_size, reason=reason)


def _compiled_engine(backbone: Backbone, layers: list[str], device: str, channels_last: bool) -> CompiledEngine:
    """Compile once (on the probe) and check the compiled features against eager ones before anyone uses them.

    Both run the same way (bfloat16 autocast on CUDA), so on a GPU the check allows bfloat16's rounding
    (:data:`AUTOCAST_TOLERANCE`), on a CPU only float32's (:data:`TOLERANCE`).
    """
    engine = _torch_engine(backbone, layers, device, channels_last, "", cls=CompiledEngine)
    probe = _probe_batch(backbone.input_size)
    expected = TorchEngine._forward(engine, probe)  # eager, before the module is swapped for the compiled one
    engine.module = torch.compile(engine.module, dynamic=False)
    started = time.perf_counter()
    got = engine(probe)
    seconds = time.perf_counter() - started
    diff = _max_normalised_diff(got, expected)
    tolerance = AUTOCAST_TOLERANCE if device.startswith("cuda") else TOLERANCE
    if diff > tolerance:
        raise EngineMismatchError(_mismatch_message("torch.compile", diff, tolerance))
    engine.reason = (f"compile: torch.compile for batch {engine.preferred_batch_size} (compiled in {seconds:.0f} s, "
                     f"max |diff| {diff:.1e} against eager after L2)")
    return engine


def _onnxruntime_engine(ort: ModuleType, backbone: Backbone, layers: list[str], device: str, threads: int,
                        prefix: str) -> OnnxRuntimeEngine:
    fields = onnx_cache_fields(backbone, layers)
    path = onnx_path(backbone, layers)
    module = backbone.extractor(layers).to(device).to(memory_format=torch.contiguous_format)
    probe = _probe_batch(backbone.input_size)
    reference = _reference(module, probe, device)
    providers = _providers(ort, device)
    session = _load_verified(ort, path, fields, threads, providers)
    origin = "cached export"
    if session is not None:
        diff = _max_normalised_diff(_run_session(session, probe), reference)
        if diff > TOLERANCE:  # a stale file (weights changed under the same id?): export afresh and judge that
            log.warning("Cached ONNX file %s differs from PyTorch (%.1e); exporting it again.", path, diff)
            session = None
    if session is None:
        exporter, seconds = export_onnx(backbone, layers, path, device=device)
        session = _session(ort, path, threads, providers)
        diff = _max_normalised_diff(_run_session(session, probe), reference)
        origin = f"exported with the {exporter} exporter in {seconds:.1f} s"
        if diff > TOLERANCE:
            raise EngineMismatchError(_mismatch_message("ONNX Runtime", diff))
    kind = "cuda" if session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
    return OnnxRuntimeEngine(
        session, path, diff, layers=layers, device=device, channels_last=False,
        preferred_batch_size=GPU_BATCH if kind == "cuda" else PREFERRED_BATCH[("onnxruntime", "cpu")],
        input_size=backbone.input_size,
        reason=(f"{prefix} ({session.get_providers()[0]}, {threads} intra-op threads; {origin}; "
                f"max |diff| {diff:.1e} against PyTorch after L2)"),
    )


def _int8_engine(backbone: Backbone, layers: list[str], device: str, threads: int) -> OnnxRuntimeInt8Engine:
    """The INT8 engine: the verified float32 export, quantised (or read from the cache) and checked against it."""
    ort = _import_onnxruntime()
    if ort is None:
        raise EngineUnavailableError(
            f"engine='{INT8}' needs the onnxruntime package, which is not installed: pip install onnxruntime (or use "
            "engine='auto' or 'torch')."
        )
    if device.startswith("cuda"):
        raise EngineUnavailableError(
            f"engine='{INT8}' runs on the CPU only; on {device} use engine='auto' or 'torch' (bfloat16 on a GPU)."
        )
    float32 = _onnxruntime_engine(ort, backbone, layers, device, threads, "")
    path = float32.onnx_path.with_name(f"{float32.onnx_path.stem}-int8-{feature_numerics(INT8)[5:]}.onnx")
    fields = {**onnx_cache_fields(backbone, layers), "int8": INT8_RECIPE, "numerics": feature_numerics(INT8),
              "calibration_photos": list(CALIBRATION_PHOTOS), "calibration_views": CALIBRATION_VIEWS}
    session = _load_verified(ort, path, fields, threads, ["CPUExecutionProvider"])
    origin = "cached quantisation"
    if session is None:
        seconds = quantize_int8(float32, backbone, path, fields)
        session = _session(ort, path, threads, ["CPUExecutionProvider"])
        origin = f"quantised in {seconds:.0f} s"
    check = calibration_batch(backbone, CHECK_VIEWS, seed=1)
    cosine = _min_cosine(_run_session(session, check), _run_session(float32.session, check))
    if cosine < INT8_MIN_COSINE:
        raise EngineMismatchError(
            f"INT8 features are too far from float32 ones on the check views (smallest cosine similarity {cosine:.3f}, "
            f"below {INT8_MIN_COSINE}); delete {path} to quantise again, or use engine='onnxruntime'"
        )
    return OnnxRuntimeInt8Engine(
        session, path, cosine, layers=layers, device=device, channels_last=False,
        preferred_batch_size=PREFERRED_BATCH[(INT8, "cpu")], input_size=backbone.input_size,
        reason=(f"{INT8}: asked for by name (CPUExecutionProvider, {threads} intra-op threads; {origin}; smallest "
                f"cosine similarity {cosine:.3f} to float32 on {CHECK_VIEWS} check views; features differ from "
                f"float32 ones and are cached apart)"),
    )


def calibration_batch(backbone: Backbone, n_views: int, seed: int = 0) -> torch.Tensor:
    """``(n_views, 3, S, S)`` float32: deterministic random crops (40-100 % of each side, half of them mirrored) of
    scikit-image's sample photographs (:data:`CALIBRATION_PHOTOS`, shipped with scikit-image), through the
    backbone's transform. ``seed`` 0 calibrates, 1 checks."""
    from PIL import Image
    from skimage import data

    rng = np.random.default_rng(seed)
    photos = [Image.fromarray(getattr(data, name)()).convert("RGB") for name in CALIBRATION_PHOTOS]
    views = []
    for i in range(n_views):
        photo = photos[i % len(photos)]
        fraction = rng.uniform(0.4, 1.0)
        width, height = max(2, round(photo.width * fraction)), max(2, round(photo.height * fraction))
        x0 = int(rng.integers(0, photo.width - width + 1))
        y0 = int(rng.integers(0, photo.height - height + 1))
        view = photo.crop((x0, y0, x0 + width, y0 + height))
        if rng.random() < 0.5:
            view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        views.append(backbone.transform(view))
    return torch.stack(views)


def quantize_int8(float32: OnnxRuntimeEngine, backbone: Backbone, path: Path, fields: dict,
                  batch_size: int = 8) -> float:
    """Quantise the float32 export of ``float32`` to ``path`` (atomically) with :data:`INT8_RECIPE`, calibrated on
    :func:`calibration_batch`, and write its sidecar; returns the seconds taken."""
    import onnx
    from onnxruntime import quantization as q
    from onnxruntime.quantization.shape_inference import quant_pre_process

    views = calibration_batch(backbone, CALIBRATION_VIEWS).numpy()
    input_name = float32.session.get_inputs()[0].name

    class Views(q.CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([views[i : i + batch_size] for i in range(0, len(views), batch_size)])

        def get_next(self) -> dict | None:
            batch = next(self.batches, None)
            return None if batch is None else {input_name: batch}

    started = time.perf_counter()
    with (_temporary_file(path) as folded, _temporary_file(path) as prepared, _temporary_file(path) as tmp,
          _quiet_root_logger()):
        onnx.save(_fold_identities(onnx.load(str(float32.onnx_path))), str(folded))
        quant_pre_process(str(folded), str(prepared), skip_optimization=True)
        q.quantize_static(
            str(prepared), str(tmp), Views(), quant_format=getattr(q.QuantFormat, INT8_RECIPE["format"]),
            activation_type=getattr(q.QuantType, INT8_RECIPE["activations"]),
            weight_type=getattr(q.QuantType, INT8_RECIPE["weights"]), per_channel=INT8_RECIPE["per_channel"],
            calibrate_method=getattr(q.CalibrationMethod, INT8_RECIPE["calibration"]),
            op_types_to_quantize=list(INT8_RECIPE["ops"]),
        )
        os.replace(tmp, path)
    seconds = time.perf_counter() - started
    record = {"key": path.stem, "fields": fields, "sha256": sha256_file(path), "size": path.stat().st_size,
              "quantise_seconds": round(seconds, 2)}
    write_text_atomic(path.with_suffix(".json"), json.dumps(record, indent=2))
    log.info("Quantised %s %s to INT8 at %s in %.1f s.", backbone.name, float32.layers, path, seconds)
    return seconds


def _fold_identities(model):
    """``model`` without the ``Identity`` nodes that only pass a weight on (the TorchScript exporter leaves one per
    shared weight of a ResNet): the quantiser finds a layer's weights only among the graph's initialisers. Graph
    optimisation (``quant_pre_process``'s default) would remove them too, but it rewires EfficientNet's padding
    arithmetic into a graph the quantiser rejects ("Graph is not a DAG"), so the recipe skips it."""
    initializers = {init.name for init in model.graph.initializer}
    outputs = {output.name for output in model.graph.output}
    renamed = {}
    for node in list(model.graph.node):
        if node.op_type == "Identity" and node.input[0] in initializers and node.output[0] not in outputs:
            renamed[node.output[0]] = node.input[0]
            model.graph.node.remove(node)
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
    return model


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """ONNX Runtime's quantiser logs a warning through the root logger for every shape tensor it leaves in float
    (dozens for EfficientNet's padding arithmetic): expected, so silenced while it runs."""
    root = logging.getLogger()
    previous = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(previous)


def _min_cosine(got: Sequence[np.ndarray], expected: Sequence[np.ndarray]) -> float:
    """Smallest cosine similarity between corresponding rows, over every layer."""
    return min(float((l2_rows(a.astype(np.float64)) * l2_rows(b.astype(np.float64))).sum(axis=1).min())
               for a, b in zip(got, expected, strict=True))


def _import_onnxruntime() -> ModuleType | None:
    """The onnxruntime module, or ``None`` when it is not installed (tests hide it through ``sys.modules``)."""
    try:
        return importlib.import_module("onnxruntime")
    except ImportError:
        return None


def _providers(ort: ModuleType, device: str) -> list[str]:
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" in ort.get_available_providers():
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        warnings.warn(
            f"engine='onnxruntime' on {device}: this onnxruntime build has no CUDA provider, so it runs on the CPU "
            "(pip install onnxruntime-gpu, or use engine='torch' on a GPU).", EngineFallbackWarning, stacklevel=4,
        )
    return ["CPUExecutionProvider"]


def _session(ort: ModuleType, path: Path, threads: int, providers: list[str]):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: ORT's warnings about unused initialisers are noise here
    return ort.InferenceSession(str(path), options, providers=providers)


def _run_session(session, batch: torch.Tensor) -> list[np.ndarray]:
    return list(session.run(None, {session.get_inputs()[0].name: batch.numpy()}))


# ------------------------------------------------------------------------------------------------ verification


def _probe_batch(input_size: int) -> torch.Tensor:
    """A fixed batch shaped like normalised images; its size differs from the export batch's."""
    generator = torch.Generator().manual_seed(0)
    return torch.randn(PROBE_BATCH, 3, input_size, input_size, generator=generator)


def _reference(module: torch.nn.Module, batch: torch.Tensor, device: str) -> list[np.ndarray]:
    """PyTorch eager features in float32 (TF32 off on CUDA, which would itself differ by more than the tolerance)."""
    flags = (torch.backends.cudnn.flags(enabled=True, allow_tf32=False) if device.startswith("cuda")
             else contextlib.nullcontext())
    with torch.inference_mode(), flags:
        return [output.float().cpu().numpy() for output in module(batch.to(device))]


def _max_normalised_diff(got: Sequence[np.ndarray], expected: Sequence[np.ndarray]) -> float:
    """Largest absolute difference between the L2-normalised rows of two lists of per-layer features."""
    if len(got) != len(expected):
        return float("inf")
    diffs = []
    for a, b in zip(got, expected, strict=True):
        if a.shape != b.shape:
            return float("inf")
        diffs.append(float(np.abs(l2_rows(a.astype(np.float64)) - l2_rows(b.astype(np.float64))).max()))
    return max(diffs)


def _mismatch_message(engine: str, diff: float, tolerance: float = TOLERANCE) -> str:
    return (f"{engine} features differ from PyTorch eager by {diff:.2e} (max |difference| after L2 normalisation), "
            f"more than the tolerance {tolerance:.0e}")


# --------------------------------------------------------------------------------------------- export and cache


class OnnxExportError(RuntimeError):
    """Neither ONNX exporter could export the extractor."""


def onnx_cache_fields(backbone: Backbone, layers: Sequence[str], opset: int = OPSET) -> dict:
    """Everything that changes the exported file, as a JSON-ready dict (what the cache key hashes)."""
    ort = _import_onnxruntime()
    return {
        "format": CACHE_FORMAT,
        "backbone": backbone.name,
        "weights": _weights_fingerprint(backbone),
        "layers": list(layers),
        "input_size": backbone.input_size,
        "opset": opset,
        "torch": torch.__version__,
        "onnxruntime": getattr(ort, "__version__", None),
    }


def onnx_cache_key(backbone: Backbone, layers: Sequence[str], opset: int = OPSET) -> str:
    """``<backbone>-<20 hex digits>``: the file name (without suffix) of the cached ONNX export."""
    canonical = json.dumps(onnx_cache_fields(backbone, layers, opset), sort_keys=True)
    return f"{backbone.name}-{hashlib.sha256(canonical.encode()).hexdigest()[:20]}"


def onnx_path(backbone: Backbone, layers: Sequence[str]) -> Path:
    """Where the ONNX export of ``backbone`` cut at ``layers`` is cached (its sidecar has suffix ``.json``)."""
    return config.cache_dir() / "onnx" / f"{onnx_cache_key(backbone, layers)}.onnx"


def _weights_fingerprint(backbone: Backbone) -> str:
    """``backbone.weights_id``; for random weights (same id, different numbers each load) a hash of the tensors."""
    if backbone.pretrained and backbone.weights_id != "random-init":
        return backbone.weights_id
    digest = hashlib.sha256()
    for name, tensor in backbone.model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return f"{backbone.weights_id}:sha256:{digest.hexdigest()}"


def _load_verified(ort: ModuleType, path: Path, fields: dict, threads: int, providers: list[str]):
    """An ONNX Runtime session on the cached file, or ``None`` (with the reason logged) if it cannot be trusted."""
    sidecar = path.with_suffix(".json")
    if not path.is_file():
        return None
    try:
        record = json.loads(sidecar.read_text())
        if record.get("fields") != fields:
            raise ValueError("its sidecar describes another export")
        if record.get("size") != path.stat().st_size or record.get("sha256") != sha256_file(path):
            raise ValueError("its checksum does not match its sidecar (truncated or modified)")
        return _session(ort, path, threads, providers)
    except Exception as err:  # a missing sidecar, bad JSON, a file ONNX Runtime refuses: all mean export again
        log.warning("Cached ONNX file %s is not usable (%s); exporting it again.", path, err)
        return None


def export_onnx(backbone: Backbone, layers: Sequence[str], path: Path, device: str = "cpu") -> tuple[str, float]:
    """Export ``backbone.extractor(layers)`` to ``path`` (atomically) with its sidecar; returns (exporter, seconds).

    Inputs are named ``images`` (``(batch, 3, S, S)``, batch dynamic); outputs ``feature0``, ``feature1``... one per
    layer, in order. The TorchScript exporter is tried first (seconds), then the ``torch.export`` one (tens of
    seconds; it handles Python arithmetic on shapes that tracing cannot). Raises :class:`OnnxExportError` naming
    both failures.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    layers = list(layers)
    module = backbone.extractor(layers).to(device).to(memory_format=torch.contiguous_format)
    example = torch.zeros(EXPORT_BATCH, 3, backbone.input_size, backbone.input_size, device=device)
    errors = []
    for exporter in ("torchscript", "dynamo"):
        started = time.perf_counter()
        try:
            with _temporary_file(path) as tmp:
                _export(module, example, tmp, len(layers), dynamo=exporter == "dynamo")
                os.replace(tmp, path)
        except Exception as err:  # exporters raise many types; the next exporter may succeed
            errors.append(f"{exporter}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
            log.info("ONNX export of %s %s with the %s exporter failed: %s", backbone.name, layers, exporter, err)
            continue
        seconds = time.perf_counter() - started
        record = {"key": path.stem, "fields": onnx_cache_fields(backbone, layers), "sha256": sha256_file(path),
                  "size": path.stat().st_size, "exporter": exporter, "export_seconds": round(seconds, 2)}
        write_text_atomic(path.with_suffix(".json"), json.dumps(record, indent=2))
        log.info("Exported %s %s to %s with the %s exporter in %.1f s.", backbone.name, layers, path, exporter, seconds)
        return exporter, seconds
    raise OnnxExportError(f"could not export {backbone.name} {layers} to ONNX ({'; '.join(errors)})")


def _export(module: torch.nn.Module, example: torch.Tensor, target: Path, n_outputs: int, dynamo: bool) -> None:
    outputs = [f"feature{i}" for i in range(n_outputs)]
    kwargs: dict = {"input_names": ["images"], "output_names": outputs, "opset_version": OPSET, "dynamo": dynamo}
    if dynamo:
        kwargs.update(dynamic_shapes=({0: torch.export.Dim("batch")},), external_data=False, verbose=False)
    else:
        kwargs["dynamic_axes"] = {name: {0: "batch"} for name in ["images", *outputs]}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        # The TorchScript exporter's deprecation notice and tracer warnings about shapes frozen to constants are
        # expected here (only the batch axis is dynamic); the probe check catches any real problem.
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(target), **kwargs)


@contextlib.contextmanager
def _temporary_file(final: Path) -> Iterator[Path]:
    """A unique unused path beside ``final`` (same disk, so ``os.replace`` is atomic), removed if not renamed.

    Not created here, so the exporter creates it with the usual permissions (``mkstemp`` would make it private).
    """
    tmp = final.with_name(f".{final.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------------- benchmarking


def bench_forward(
    backbone: Backbone,
    layers: Sequence[str] | None = None,
    batch_sizes: Sequence[int] = (1, 8, 16, 32),
    engines: Sequence[str] | None = None,
    seconds: float = 3.0,
    *,
    threads: int | None = None,
) -> list[dict]:
    """Forward-pass throughput of each engine, batch size and memory format, on random inputs (no decoding).

    ``layers``: default ``[backbone.default_layer]``. ``engines``: default every engine available on the backbone's
    device except ``compile`` (whose compilation alone takes minutes on a 2-core CPU; name it to include it: it is
    measured at its compiled batch size only) and ``onnxruntime-int8`` (other features: name it to include it). ``torch`` is measured in both memory formats, ``contiguous`` and ``channels_last``;
    ``onnxruntime`` takes NCHW (``contiguous``).
    ``threads``: intra-op threads of both ONNX Runtime and PyTorch while measuring, so that they compete on equal
    terms (default: ONNX Runtime :func:`config.cpu_count`, PyTorch its current setting). Each figure runs the engine
    once to warm up, then three times for at least ``seconds / 3`` each, and keeps the fastest of the three.

    Returns one dict per measurement: ``engine``, ``batch``, ``memory_format``, ``images_per_s``, ``threads``
    (ONNX Runtime's intra-op threads, or torch's), ``device``. An engine that falls back to torch is reported under
    the name it really ran with. :func:`speedup` turns the rows into ``ort_vs_torch``.
    """
    layers = list(layers or [backbone.default_layer])
    device = str(next(backbone.model.parameters()).device)
    engines = (list(engines) if engines is not None
               else [e for e in available_engines(device) if e not in ("compile", INT8)])
    unknown = [e for e in engines if e not in ENGINES or e == "auto"]
    if unknown:
        raise ValueError(f"bench_forward() got unknown engine(s) {unknown}; choose from "
                         f"{', '.join(e for e in ENGINES if e != 'auto')}.")
    rows = []
    with torch_threads(threads):
        for name in engines:
            rows += _bench_engine(backbone, layers, name, batch_sizes, seconds, threads)
    return rows


def _bench_engine(backbone: Backbone, layers: list[str], name: str, batch_sizes: Sequence[int], seconds: float,
                  threads: int | None) -> list[dict]:
    """The rows of one engine: both memory formats for ``torch``, the compiled batch only for ``compile``."""
    rows = []
    for channels_last in ([False, True] if name == "torch" else [True]):
        engine = make_engine(backbone, layers, name, threads=threads, channels_last=channels_last)
        sizes = [engine.preferred_batch_size] if isinstance(engine, CompiledEngine) else batch_sizes
        for batch_size in sizes:
            rows.append({
                "engine": engine.name, "batch": batch_size,
                "memory_format": "channels_last" if engine.channels_last else "contiguous",
                "images_per_s": _images_per_second(engine, batch_size, seconds), "device": engine.device,
                "threads": (engine.session.get_session_options().intra_op_num_threads
                            if isinstance(engine, OnnxRuntimeEngine) else torch.get_num_threads()),
            })
            log.info("bench_forward %s", rows[-1])
    return rows


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """PyTorch with ``threads`` intra-op threads inside the block (unchanged for ``None``), restored after it: the
    feature extractor's setting, and the same cores for every engine in a comparison."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or previous)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _images_per_second(engine: Engine, batch_size: int, seconds: float, repeats: int = 3) -> float:
    """The fastest of ``repeats`` runs of at least ``seconds / repeats`` (and one batch) each, like ``timeit``:
    other work on the machine can only slow a run down, so the fastest run is the best estimate of the engine."""
    generator = torch.Generator().manual_seed(1)
    batch = torch.randn(batch_size, 3, engine.input_size, engine.input_size, generator=generator)
    batch = batch.to(engine.device)  # ready tensors: on a GPU the copy from the host is the pipeline's cost, not this
    engine(batch)  # warm-up: first-call allocations, lazy initialisation
    best = 0.0
    for _ in range(repeats):
        done, started = 0, time.perf_counter()
        while True:
            engine(batch)  # returns numpy arrays on the host, so GPU work is finished when it returns
            done += batch_size
            elapsed = time.perf_counter() - started
            if elapsed >= seconds / repeats:
                break
        best = max(best, done / elapsed)
    return best


def speedup(rows: Sequence[dict], engine: str = "onnxruntime", baseline: str = "torch") -> float | None:
    """Best images/s of ``engine`` over best images/s of ``baseline`` (each at its fastest batch and memory format).

    ``speedup(bench_forward(...))`` is ``ort_vs_torch``; ``None`` when either engine has no row.
    """
    best = {}
    for name in (engine, baseline):
        rates = [row["images_per_s"] for row in rows if row["engine"] == name]
        best[name] = max(rates) if rates else None
    if not best[engine] or not best[baseline]:
        return None
    return best[engine] / best[baseline]


def format_rows(rows: Sequence[dict]) -> str:
    """The rows of :func:`bench_forward` as a table: one line per engine and memory format, one column per batch."""
    batches = sorted({row["batch"] for row in rows})
    header = f"{'engine':<13}{'memory format':<15}{'threads':>8}" + "".join(f"{'batch ' + str(b):>10}" for b in batches)
    lines = [header]
    seen: dict[tuple[str, str], dict[int, float]] = {}
    threads: dict[tuple[str, str], int] = {}
    for row in rows:
        group = (row["engine"], row["memory_format"])
        seen.setdefault(group, {})[row["batch"]] = row["images_per_s"]
        threads[group] = row["threads"]
    for (name, memory_format), rates in seen.items():
        cells = "".join(f"{rates[b]:>10.1f}" if b in rates else f"{'':>10}" for b in batches)
        lines.append(f"{name:<13}{memory_format:<15}{threads[(name, memory_format)]:>8}{cells}")
    return "\n".join(lines) + "\n(images per second, forward pass only, random inputs at the network's input size)"
