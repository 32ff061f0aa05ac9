"""MIT Indoor 67 scene classification (paper Table 2).

Protocol
--------
* Split: the official lists of Quattoni & Torralba, ``TrainImages.txt`` (5,360 images, 80 per class) and
  ``TestImages.txt`` (1,340 images, 20 per class). Each line is ``<class folder>/<file name>`` relative to ``Images/``.
  The archive holds 15,620 images in all; only the 6,700 listed ones are part of the benchmark.
* Classes: the 67 folder names, sorted alphabetically; label ``k`` is ``class_names[k]``.
* Whole images, no boxes. One-vs-one linear SVMs with voting (C = 2).
* Metric: mean per-class accuracy (mean of the confusion matrix's diagonal).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import DatasetMissingError, DatasetRecord
from .specs import get, require, resolve_root

NAME = "mit67"


def _read_list(path: Path) -> list[str]:
    entries = [line.strip().replace("\\", "/") for line in path.read_text().splitlines() if line.strip()]
    bad = [e for e in entries if e.count("/") != 1]
    if bad:
        raise ValueError(f"{path}: expected lines '<class>/<file>', got e.g. {bad[0]!r}.")
    return entries


def mit67(root: str | Path | None = None) -> DatasetRecord:
    """Load MIT-67 with the official train/test lists from ``root`` (default ``<data dir>/mit67``)."""
    root = resolve_root(NAME, root)
    if not root.exists():
        raise DatasetMissingError(NAME, root)
    require(NAME, root, "TrainImages.txt", "TestImages.txt", "Images")
    train, test = _read_list(root / "TrainImages.txt"), _read_list(root / "TestImages.txt")
    entries = train + test
    class_names = sorted({e.split("/")[0] for e in entries})
    index = {name: k for k, name in enumerate(class_names)}
    paths = [root / "Images" / e for e in entries]
    require(NAME, root, *paths)
    return DatasetRecord(
        name=NAME, task="multiclass", root=root, paths=paths,
        labels=np.array([index[e.split("/")[0]] for e in entries]), class_names=class_names,
        split=np.array(["train"] * len(train) + ["test"] * len(test)),
        metric=get(NAME).metric, protocol="official TrainImages.txt / TestImages.txt split; whole images",
        paper_table="Table 2",
    )
