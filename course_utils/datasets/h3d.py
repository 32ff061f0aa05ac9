"""H3D / Berkeley "attributes of people" (Bourdev, Maji, Malik, ICCV 2011): 9 binary attributes (paper Table 6).

Format read (the Berkeley ``attributes_dataset`` release)
---------------------------------------------------------
``train/labels.txt`` and ``test/labels.txt`` (optionally under an ``attributes_dataset/`` folder), the images beside
them. One person per line: ``<image name> <x> <y> <w> <h> <a1> ... <a9>``, the box in pixels (``NaN`` when there is
none) and each attribute ``1`` (yes), ``-1`` (no) or ``0`` (unknown). The nine attributes, in Table 6's order:
male, long hair, glasses, hat, t-shirt, long sleeves, shorts, jeans, long pants.

Protocol
--------
* Split: train (4,013 people: the release's train+val) and test (4,022).
* The CNN sees the person box enlarged to 150% (the paper's "H3D" rows); ``boxes`` holds ``(x, y, x + w, y + h)``,
  NaN where the file has none (the feature extractor then uses the whole image).
* Labels: 1 -> 1, -1 -> 0; unknown (0) -> 0 with ``difficult=True``, so AP ignores it.
* One independent linear SVM per attribute (C = 0.2). Metric: AP per attribute and mAP.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import DatasetMissingError, DatasetRecord
from .specs import get, require, resolve_root

NAME = "h3d"
ATTRIBUTES = ("male", "long hair", "glasses", "hat", "t-shirt", "long sleeves", "shorts", "jeans", "long pants")


def _base(root: Path) -> Path:
    for candidate in (root, root / "attributes_dataset"):
        if (candidate / "train" / "labels.txt").is_file():
            return candidate
    raise DatasetMissingError(NAME, root, detail="No train/labels.txt (nor attributes_dataset/train/labels.txt).")


def _read_labels(path: Path) -> tuple[list[Path], np.ndarray, np.ndarray]:
    paths, boxes, values = [], [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 5 + len(ATTRIBUTES):
            raise ValueError(
                f"{path}, line {number}: expected 'name x y w h' and {len(ATTRIBUTES)} attributes, got {line!r}."
            )
        flags = [int(float(v)) for v in parts[5:]]
        if any(f not in (-1, 0, 1) for f in flags):
            raise ValueError(f"{path}, line {number}: attribute values must be 1, -1 or 0 (unknown).")
        x, y, w, h = (float(v) for v in parts[1:5])
        paths.append(path.parent / parts[0])
        boxes.append((x, y, x + w, y + h))
        values.append(flags)
    return paths, np.array(boxes, dtype=float).reshape(-1, 4), np.array(values, dtype=int).reshape(-1, len(ATTRIBUTES))


def h3d(root: str | Path | None = None) -> DatasetRecord:
    """Load the people-attributes train and test sets from ``root`` (default ``<data dir>/h3d``)."""
    root = resolve_root(NAME, root)
    if not root.exists():
        raise DatasetMissingError(NAME, root)
    base = _base(root)
    require(NAME, base, "test/labels.txt")
    train, test = _read_labels(base / "train" / "labels.txt"), _read_labels(base / "test" / "labels.txt")
    paths = train[0] + test[0]
    require(NAME, base, *paths)
    flags = np.vstack([train[2], test[2]])
    return DatasetRecord(
        name=NAME, task="attributes", root=root, paths=paths,
        labels=(flags == 1).astype(int), difficult=flags == 0, class_names=list(ATTRIBUTES),
        boxes=np.vstack([train[1], test[1]]), split=np.array(["train"] * len(train[0]) + ["test"] * len(test[0])),
        metric=get(NAME).metric,
        protocol="train on train, test on test; person box enlarged to 150%; unknown (0) ignored",
        paper_table="Table 6",
    )
