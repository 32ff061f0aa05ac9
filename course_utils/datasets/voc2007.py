"""Pascal VOC 2007 classification: 20 object classes, multi-label (paper Table 1).

Protocol (the paper's, which is VOC's own)
------------------------------------------
* Split: train on ``trainval`` (5,011 images; the record keeps VOC's ``train`` / ``val`` halves in ``split``),
  test on ``test`` (4,952 images).
* Whole images: the paper does not use the bounding boxes, so ``boxes`` is None.
* Labels come from ``ImageSets/Main/<class>_{trainval,test}.txt``, one line ``<image id> <flag>`` per image, where
  ``1`` = the class is present, ``-1`` = absent, ``0`` = present only as *difficult* objects. Difficult entries get
  label 1 and ``difficult=True``: the VOC 2007 evaluation ignores them (neither positive nor negative).
* Metric: 11-point interpolated AP per class (VOC 2007 criterion) and its mean; one-vs-rest linear SVMs, C = 0.2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import DatasetMissingError, DatasetRecord
from .specs import get, require, resolve_root

NAME = "voc2007"
CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)


def _devkit(root: Path) -> Path:
    """The ``VOC2007`` folder: ``root`` itself or ``root/VOCdevkit/VOC2007`` (as the official tars extract)."""
    for candidate in (root / "VOCdevkit" / "VOC2007", root):
        if (candidate / "ImageSets" / "Main").is_dir():
            return candidate
    raise DatasetMissingError(NAME, root, detail="No VOCdevkit/VOC2007/ImageSets/Main folder.")


def _read_ids(path: Path) -> list[str]:
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def _read_flags(path: Path, ids: list[str]) -> np.ndarray:
    """The ``1 / -1 / 0`` flags of one ``<class>_<set>.txt`` file, in the order of ``ids``."""
    flags = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[1] not in ("1", "-1", "0"):
            raise ValueError(f"{path}, line {number}: expected '<image id> <1|-1|0>', got {line!r}.")
        flags[parts[0]] = int(parts[1])
    missing = [i for i in ids if i not in flags]
    if missing:
        raise ValueError(f"{path} has no entry for images {missing[:3]}; the VOC files are inconsistent.")
    return np.array([flags[i] for i in ids], dtype=int)


def voc2007(root: str | Path | None = None) -> DatasetRecord:
    """Load VOC 2007 (trainval + test) from ``root`` (default ``<data dir>/voc2007``)."""
    root = resolve_root(NAME, root)
    if not root.exists():
        raise DatasetMissingError(NAME, root)
    devkit = _devkit(root)
    main = devkit / "ImageSets" / "Main"
    require(NAME, devkit, "ImageSets/Main/trainval.txt", "ImageSets/Main/test.txt")
    trainval, test = _read_ids(main / "trainval.txt"), _read_ids(main / "test.txt")
    val = set(_read_ids(main / "val.txt")) if (main / "val.txt").is_file() else set()
    ids = trainval + test
    split = ["val" if i in val else "train" for i in trainval] + ["test"] * len(test)
    flags = np.zeros((len(ids), len(CLASSES)), dtype=int)
    for k, cls in enumerate(CLASSES):
        require(NAME, devkit, f"ImageSets/Main/{cls}_trainval.txt", f"ImageSets/Main/{cls}_test.txt")
        flags[: len(trainval), k] = _read_flags(main / f"{cls}_trainval.txt", trainval)
        flags[len(trainval):, k] = _read_flags(main / f"{cls}_test.txt", test)
    paths = [devkit / "JPEGImages" / f"{i}.jpg" for i in ids]
    require(NAME, devkit, *paths)
    return DatasetRecord(
        name=NAME, task="multilabel", root=root, paths=paths,
        labels=(flags >= 0).astype(int), difficult=flags == 0, class_names=list(CLASSES), split=np.array(split),
        metric=get(NAME).metric,
        protocol="train on trainval, test on test; whole images; difficult (0) entries ignored",
        paper_table="Table 1",
    )
