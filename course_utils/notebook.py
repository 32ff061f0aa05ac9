"""The notebooks' set-up facade: :func:`setup` (seeds, plot style, where the notebook runs) and sample photos.

Everything else a notebook calls lives with the part of the package it belongs to: plots in ``cu.viz``, widgets in
``cu.widgets``, the paper's claims in ``cu.claims``, dataset subsets in ``cu.datasets.subsets``. Nothing here
changes global state on import; :func:`setup` is the one explicit call that seeds and styles.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from . import config

# Matplotlib defaults for every notebook: figures big enough to read on a laptop, small enough to stay light in git.
PLOT_STYLE = {
    "figure.figsize": (8.0, 4.0),
    "figure.dpi": 100,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "image.interpolation": "nearest",
}

# scikit-image ships these photographs, so every notebook has real pictures without a download.
SAMPLE_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "cat")


@dataclass(frozen=True)
class SetupInfo:
    """What :func:`setup` chose, so a notebook can assert on it (and a learner can read it back)."""

    profile: str
    backbone: str
    device: str
    seed: int
    cpu_count: int
    cache_dir: Path
    shared_data: Path | None


def setup(seed: int = config.DEFAULT_SEED, profile: str | None = None, backbone: str | None = None) -> SetupInfo:
    """Seed every random generator, set the plot style and print where this notebook runs.

    Printing the profile, network, device and folders at the top of every notebook means a screenshot of a result
    always says how it was obtained: a demo-profile number on a CPU is not a paper-scale number.
    ``backbone`` defaults to the profile's network; an unknown name fails here, before any slow work starts.
    """
    import matplotlib

    from . import backbones

    chosen = config.profile(profile)
    backbone_name = backbones.spec(backbone or chosen.backbone).name
    config.set_seed(seed)
    matplotlib.rcParams.update(PLOT_STYLE)
    info = SetupInfo(
        profile=chosen.name,
        backbone=backbone_name,
        device=config.device(),
        seed=seed,
        cpu_count=config.cpu_count(),
        cache_dir=config.cache_dir(),
        shared_data=config.shared_data_dir(),
    )
    shared = (
        f"{info.shared_data} (real benchmark subsets are used)"
        if info.shared_data
        else "absent (only the embedded demo sets; set COURSE_SHARED_DATA to a copy of shared/data)"
    )
    print(f"profile     {info.profile}: {chosen.description}")
    print(f"backbone    {info.backbone}")
    print(f"device      {info.device} ({info.cpu_count} CPU cores usable)")
    print(f"seed        {info.seed}")
    print(f"cache       {info.cache_dir}")
    print(f"shared data {shared}")
    print(f"python      {sys.version.split()[0]}")
    return info


def sample_photos(names: Sequence[str] = ("chelsea", "coffee", "astronaut")) -> dict[str, Image.Image]:
    """scikit-image's bundled photographs as RGB PIL images, by name (no download needed)."""
    from skimage import data

    unknown = [name for name in names if name not in SAMPLE_PHOTOS]
    if unknown:
        raise ValueError(f"Unknown sample photo(s) {unknown}; choose from {list(SAMPLE_PHOTOS)}.")
    return {name: Image.fromarray(getattr(data, name)()).convert("RGB") for name in names}
