"""Caltech-UCSD Birds-200-2011, 200 species (paper Table 3).

Protocol
--------
* Split: the official ``train_test_split.txt`` (1 = train: 5,994 images; 0 = test: 5,794).
* Boxes: the paper crops every image (train *and* test) to its bird's bounding box enlarged to 150% for context, and
  uses no part annotations. ``boxes`` holds the official box as ``(x0, y0, x1, y1)`` pixels, read from
  ``bounding_boxes.txt`` (``<id> <x> <y> <width> <height>``); the enlargement
  (:data:`course_utils.experiments.BOX_ENLARGEMENT`) is applied when features are extracted.
* Labels: ``image_class_labels.txt`` (1..200), stored as 0..199; names from ``classes.txt`` without the number
  prefix (``001.Black_footed_Albatross`` -> ``Black_footed_Albatross``).
* One-vs-one linear SVMs (C = 2). Metric: mean per-class accuracy ("mean accuracy" in the paper).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import DatasetMissingError, DatasetRecord
from .specs import get, require, resolve_root

NAME = "cub200"
FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "bounding_boxes.txt", "classes.txt")


def _table(path: Path, columns: int) -> dict[int, list[str]]:
    """``{id: [other columns]}`` of one of CUB's ``<id> <value> ...`` text files."""
    rows = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=columns - 1)
        if len(parts) != columns:
            raise ValueError(f"{path}, line {number}: expected {columns} columns, got {line!r}.")
        rows[int(parts[0])] = parts[1:]
    return rows


def cub200(root: str | Path | None = None) -> DatasetRecord:
    """Load CUB-200-2011 with boxes and the official split from ``root`` (default ``<data dir>/cub200``)."""
    root = resolve_root(NAME, root)
    if not root.exists():
        raise DatasetMissingError(NAME, root)
    base = root / "CUB_200_2011" if (root / "CUB_200_2011").is_dir() else root
    require(NAME, base, *FILES)
    images = _table(base / "images.txt", 2)
    labels = _table(base / "image_class_labels.txt", 2)
    is_train = _table(base / "train_test_split.txt", 2)
    boxes = _table(base / "bounding_boxes.txt", 5)
    classes = _table(base / "classes.txt", 2)
    ids = sorted(images)
    for what, table in (("image_class_labels.txt", labels), ("train_test_split.txt", is_train),
                        ("bounding_boxes.txt", boxes)):
        if missing := [i for i in ids if i not in table]:
            raise ValueError(f"{base / what} has no row for image ids {missing[:3]}; the CUB files are inconsistent.")
    xywh = np.array([[float(v) for v in boxes[i]] for i in ids], dtype=float).reshape(-1, 4)
    paths = [base / "images" / images[i][0] for i in ids]
    require(NAME, base, *paths)
    return DatasetRecord(
        name=NAME, task="multiclass", root=root, paths=paths,
        labels=np.array([int(labels[i][0]) - 1 for i in ids]),
        class_names=[classes[k][0].split(".", 1)[-1] for k in sorted(classes)],
        split=np.array(["train" if is_train[i][0] == "1" else "test" for i in ids]),
        boxes=np.column_stack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]]),
        metric=get(NAME).metric,
        protocol="official train_test_split.txt; crop to the bird box enlarged to 150% at train and test time",
        paper_table="Table 3",
    )
