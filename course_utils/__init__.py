"""Off-the-Shelf: the helper package of a course reproducing *CNN Features off-the-shelf* (Razavian et al., 2014).

Import it as ``import course_utils as cu``; modules are loaded on first use so the import itself is instant:
``cu.backbones``, ``cu.augment``, ``cu.features``, ``cu.normalize``, ``cu.classify``, ``cu.metrics``,
``cu.retrieval``, ``cu.datasets``, ``cu.config``, ``cu.exercises`` (checked exercises), ``cu.quiz`` (concept
checks) ...
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = {
    "augment", "backbones", "bench", "claims", "classify", "config", "datasets", "demo", "engines", "exercises", "experiments",
    "features", "imageio", "metrics", "normalize", "notebook", "paper", "pooling", "quiz", "report", "reproduce",
    "retrieval", "viz", "warm", "widgets",
}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
