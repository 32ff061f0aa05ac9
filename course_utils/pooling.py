"""Turn a convolutional feature map ``(B, C, H, W)`` into one vector per image ``(B, C)``.

The paper reads a fully connected layer, which is already a vector. Modern networks end in a convolutional map, and
how it is pooled matters for retrieval, so the course offers the usual choices:

* ``avg``  global average pooling (what the networks' own heads do);
* ``max``  global max pooling (MAC);
* ``gem``  generalised mean, ``(mean x^p)^(1/p)`` with ``p = 3`` (Radenović et al., 2018): between avg and max;
* ``rmac`` regional max pooling (Tolias et al., ICLR 2016): max-pool square regions at 3 scales, L2-normalise each
  region vector and sum them, so that objects anywhere in the image count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POOLINGS = ("avg", "max", "gem", "rmac")
GEM_P = 3.0
RMAC_LEVELS = 3


def pool(x: torch.Tensor, method: str = "avg") -> torch.Tensor:
    """Pool a ``(B, C, H, W)`` map with ``method`` (one of :data:`POOLINGS`) into ``(B, C)``."""
    if x.ndim != 4:
        raise ValueError(f"pool() needs a (B, C, H, W) map, got shape {tuple(x.shape)}.")
    if method == "avg":
        return x.mean(dim=(2, 3))
    if method == "max":
        return x.amax(dim=(2, 3))
    if method == "gem":
        return x.clamp(min=1e-6).pow(GEM_P).mean(dim=(2, 3)).pow(1.0 / GEM_P)
    if method == "rmac":
        return rmac(x)
    raise ValueError(f"Unknown pooling {method!r}; choose one of {POOLINGS}.")


def rmac_regions(height: int, width: int, levels: int = RMAC_LEVELS) -> list[tuple[int, int, int, int]]:
    """Square regions ``(y0, x0, side_h, side_w)`` of R-MAC: at level l, side = 2 min(H, W) / (l + 1), ~40% overlap.

    Level 1 holds the largest square(s) that fit; each further level shrinks the side and adds regions along the
    longer axis, so that consecutive regions overlap by about 40%, following Tolias et al.
    """
    regions = []
    short = min(height, width)
    for level in range(1, levels + 1):
        side = max(1, int(round(2 * short / (level + 1))))
        n_x = level + (1 if width > height else 0)
        n_y = level + (1 if height > width else 0)
        for iy in range(n_y):
            y0 = 0 if n_y == 1 else int(round(iy * (height - side) / (n_y - 1)))
            for ix in range(n_x):
                x0 = 0 if n_x == 1 else int(round(ix * (width - side) / (n_x - 1)))
                regions.append((y0, x0, min(side, height), min(side, width)))
    return regions


def rmac(x: torch.Tensor, levels: int = RMAC_LEVELS) -> torch.Tensor:
    """R-MAC vector of a ``(B, C, H, W)`` map: sum over regions of the L2-normalised regional max."""
    height, width = int(x.shape[2]), int(x.shape[3])  # plain ints: traceable by the fast ONNX exporter
    total = torch.zeros(x.shape[:2], dtype=x.dtype, device=x.device)
    for y0, x0, h, w in rmac_regions(height, width, levels):
        region = x[:, :, y0 : y0 + h, x0 : x0 + w].amax(dim=(2, 3))
        total = total + F.normalize(region, dim=1)
    return total
