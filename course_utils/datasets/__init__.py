"""Dataset loaders: one function per benchmark, all returning :class:`~course_utils.datasets.base.DatasetRecord`.

``load(name)`` dispatches by name; ``load("folder:PATH")`` reads any folder with one sub-folder per class.
Loaders are imported lazily so that ``import course_utils`` stays fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from .base import DatasetMissingError, DatasetRecord, Query

# name -> "module:function" inside this package
_REGISTRY: dict[str, str] = {
    # embedded demo sets, built from photographs that ship inside installed packages
    "demo_retrieval": "demo:demo_retrieval",
    "demo_classes": "demo:demo_classes",
    "demo_faces": "demo:demo_faces",
    # real subsets in the shared data folder
    "flowers17": "shared:flowers17",
    "dtd10": "shared:dtd10",
    "ukbench2000": "ukbench:ukbench2000",
    # the paper's benchmarks (official layouts, downloaded by data_scripts/download.py)
    "voc2007": "voc2007:voc2007",
    "mit67": "mit67:mit67",
    "cub200": "cub200:cub200",
    "flowers102": "flowers102:flowers102",
    "uiuc_apascal": "uiuc_attributes:uiuc_apascal",
    "uiuc_ayahoo": "uiuc_attributes:uiuc_ayahoo",
    "h3d": "h3d:h3d",
    "oxford5k": "oxford_paris:oxford5k",
    "paris6k": "oxford_paris:paris6k",
    "roxford5k": "oxford_paris:roxford5k",
    "rparis6k": "oxford_paris:rparis6k",
    "holidays": "holidays:holidays",
    "ukbench": "ukbench:ukbench",
    "sculptures6k": "sculptures:sculptures6k",
}


def available() -> list[str]:
    """Names that :func:`load` accepts (plus ``folder:PATH``)."""
    return sorted(_REGISTRY)


def loader(name: str) -> Callable[..., DatasetRecord]:
    """The loader function registered as ``name``."""
    if name not in _REGISTRY:
        raise KeyError(f"Unknown dataset {name!r}. Known: {', '.join(available())}, or folder:PATH.")
    module, func = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), func)


def load(name: str, **kwargs) -> DatasetRecord:
    """Load dataset ``name`` (see :func:`available`), or ``folder:PATH`` for a folder of class sub-folders."""
    if name.startswith("folder:"):
        from .folder import image_folder

        return image_folder(name.split(":", 1)[1], **kwargs)
    return loader(name)(**kwargs)


__all__ = ["DatasetMissingError", "DatasetRecord", "Query", "available", "load", "loader"]
