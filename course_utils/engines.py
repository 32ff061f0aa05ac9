"""Inference engines: what runs the network cut at the requested layers on a batch of ready tensors.

``make_engine(backbone, layers, engine="auto")`` returns a callable ``Engine`` mapping an ``NCHW`` float32 batch to one
``(B, dim)`` numpy array per layer. The feature store does not care which engine produced the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .backbones import Backbone

ENGINES = ("auto", "torch")


@dataclass
class Engine:
    """A ready-to-call forward pass for one backbone and one list of layers."""

    name: str
    layers: list[str]
    device: str
    channels_last: bool
    preferred_batch_size: int
    _module: torch.nn.Module

    @torch.inference_mode()
    def __call__(self, batch: torch.Tensor) -> list[np.ndarray]:
        batch = batch.to(self.device, non_blocking=True)
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        if self.device.startswith("cuda"):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                outputs = self._module(batch)
        else:
            outputs = self._module(batch)
        return [output.float().cpu().numpy() for output in outputs]


def make_engine(
    backbone: Backbone, layers: Sequence[str], engine: str = "auto", device: str | None = None
) -> Engine:
    """Build the engine called ``engine`` for ``backbone`` cut at ``layers``."""
    if engine not in ENGINES:
        raise ValueError(f"Unknown engine {engine!r}; choose one of {ENGINES}.")
    device = device or str(next(backbone.model.parameters()).device)
    module = backbone.extractor(list(layers)).to(device)
    channels_last = True
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    return Engine("torch", list(layers), device, channels_last, 16 if device == "cpu" else 128, module)
