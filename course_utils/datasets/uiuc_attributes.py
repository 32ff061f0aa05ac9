"""UIUC object attributes of Farhadi et al. (CVPR 2009): aPascal and aYahoo, 64 binary attributes (paper Table 5).

Files (``attribute_data/`` of the official archive)
---------------------------------------------------
``apascal_train.txt`` (6,340 objects), ``apascal_test.txt`` (6,355), ``ayahoo_test.txt`` (2,644): one object per line,
``<image name> <class> <x0> <y0> <x1> <y1> <a1> ... <a64>`` with attributes 0/1, and ``attribute_names.txt``
(64 lines). aPascal images are VOC 2008's (``VOCdevkit/VOC2008/JPEGImages/``), aYahoo's are in
``ayahoo_test_images/``. An image with several objects appears once per object, with that object's box.

Protocol
--------
* One record row per *object*; ``boxes`` is its box, the crop the features are computed on. The files give
  1-based inclusive pixel coordinates; the record stores ``(x0 - 1, y0 - 1, x1, y1)``, i.e. 0-based, end-exclusive.
* ``uiuc_apascal``: train on ``apascal_train``, test on ``apascal_test``: Table 5's "within categories".
* ``uiuc_ayahoo``: train on ``apascal_train``, test on ``ayahoo_test`` (12 object classes never seen in training):
  Table 5's "across categories".
* One-vs-rest linear SVM per attribute (C = 0.2). Metric: AUC per attribute and the mean AUC (mAUC).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import DatasetMissingError, DatasetRecord
from .specs import get, require, resolve_root

N_ATTRIBUTES = 64
IMAGE_FOLDERS = {"apascal": "VOCdevkit/VOC2008/JPEGImages", "ayahoo": "ayahoo_test_images"}


def _read_objects(path: Path, image_folder: Path) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """Paths, ``(N, 4)`` boxes (0-based, end-exclusive) and ``(N, 64)`` attributes of one annotation file."""
    paths, boxes, attributes = [], [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 6 + N_ATTRIBUTES:
            raise ValueError(
                f"{path}, line {number}: expected 'image class x0 y0 x1 y1' and {N_ATTRIBUTES} attributes "
                f"({6 + N_ATTRIBUTES} fields), got {len(parts)}."
            )
        values = [int(float(v)) for v in parts[6:]]
        if any(v not in (0, 1) for v in values):
            raise ValueError(f"{path}, line {number}: attributes must be 0 or 1.")
        x0, y0, x1, y1 = (float(v) for v in parts[2:6])
        paths.append(image_folder / parts[0])
        boxes.append((x0 - 1, y0 - 1, x1, y1))
        attributes.append(values)
    return paths, np.array(boxes, dtype=float).reshape(-1, 4), np.array(attributes, dtype=int)


def _load(name: str, root: str | Path | None, test_file: str, test_images: str, protocol: str) -> DatasetRecord:
    root = resolve_root(name, root)
    if not root.exists():
        raise DatasetMissingError(name, root)
    annotations = root / "attribute_data"
    require(name, root, "attribute_data/attribute_names.txt", "attribute_data/apascal_train.txt",
            f"attribute_data/{test_file}")
    names = [line.strip() for line in (annotations / "attribute_names.txt").read_text().splitlines() if line.strip()]
    if len(names) != N_ATTRIBUTES:
        raise ValueError(f"{annotations / 'attribute_names.txt'} lists {len(names)} names, expected {N_ATTRIBUTES}.")
    train = _read_objects(annotations / "apascal_train.txt", root / IMAGE_FOLDERS["apascal"])
    test = _read_objects(annotations / test_file, root / IMAGE_FOLDERS[test_images])
    paths = train[0] + test[0]
    require(name, root, *sorted(set(paths)))
    return DatasetRecord(
        name=name, task="attributes", root=root, paths=paths,
        labels=np.vstack([train[2], test[2]]), class_names=names, boxes=np.vstack([train[1], test[1]]),
        split=np.array(["train"] * len(train[0]) + ["test"] * len(test[0])),
        metric=get(name).metric, protocol=protocol, paper_table="Table 5",
    )


def uiuc_apascal(root: str | Path | None = None) -> DatasetRecord:
    """aPascal train/test objects ("within categories"), from ``root`` (default ``<data dir>/uiuc_attributes``)."""
    return _load("uiuc_apascal", root, "apascal_test.txt", "apascal",
                 "train apascal_train, test apascal_test (within categories); object boxes are the crops")


def uiuc_ayahoo(root: str | Path | None = None) -> DatasetRecord:
    """aPascal train + aYahoo test objects ("across categories"), from ``root`` (default as uiuc_apascal)."""
    return _load("uiuc_ayahoo", root, "ayahoo_test.txt", "ayahoo",
                 "train apascal_train, test ayahoo_test (across categories); object boxes are the crops")
