"""UKBench instance retrieval (paper Table 7): 10,200 photos of 2,550 objects, 4 views each.

Layout: ``full/ukbench%05d.jpg`` (as in ``ukbench.zip``); images ``4g .. 4g+3`` show object ``g``.

Protocol
--------
* Every image is a query against all images, itself included. Its positives are the 4 images of its object (the
  query among them), so a perfect ranking finds all 4 in the top 4.
* Metric: the N-S score, the mean number of those 4 found in the top 4 (max 4.0). The paper's Table 7 prints it as
  a percentage, N-S x 25 ("recall at top four"; 91.1 means 3.64). The paper's "2,250 objects" is a typo for 2,550.
* Whole images; the paper searches with jittered views (Sec. 3.6), not spatial search.

``ukbench2000()`` is the same protocol on the first 2,000 images (objects 0-499) in the shared data folder
(``../shared/data/ukbench_subset2000``, 320 x 240 px copies). 168 of its files carry an EXIF orientation tag, kept on
purpose so that a reader sees the same pixels as with the original files: the feature extractor applies
``PIL.ImageOps.exif_transpose``, which turns those images upright (``Image.open`` alone does not).
Scores on 2,000 images are higher than on all 10,200 (fewer distractors).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .. import config
from .base import DatasetMissingError, DatasetRecord, Query
from .specs import default_root, get, require, resolve_root

VIEWS_PER_OBJECT = 4
_PATTERN = re.compile(r"ukbench(\d{5})\.jpg")


def _load(name: str, root: Path, paper_table: str) -> DatasetRecord:
    require(name, root, "full")
    files = {}
    for path in (root / "full").glob("ukbench*.jpg"):
        if match := _PATTERN.fullmatch(path.name):
            files[int(match.group(1))] = path
    n = len(files)
    if n == 0:
        raise DatasetMissingError(name, root, detail="full/ holds no ukbenchNNNNN.jpg images.")
    if sorted(files) != list(range(n)) or n % VIEWS_PER_OBJECT:
        raise ValueError(
            f"{root / 'full'}: expected ukbench00000.jpg .. ukbench{n - 1:05d}.jpg with no gaps, a multiple of "
            f"{VIEWS_PER_OBJECT} images; found {n} with indices {min(files)}..{max(files)}."
        )
    queries = [
        Query(index=i, name=f"ukbench{i:05d}",
              positives=list(range(i - i % VIEWS_PER_OBJECT, i - i % VIEWS_PER_OBJECT + VIEWS_PER_OBJECT)))
        for i in range(n)
    ]
    return DatasetRecord(
        name=name, task="retrieval", root=root, paths=[files[i] for i in range(n)], queries=queries,
        database=np.arange(n), metric=get(name).metric,
        protocol="every image queries all images; positives are the 4 views of its object, the query included",
        paper_table=paper_table,
    )


def ukbench(root: str | Path | None = None) -> DatasetRecord:
    """All 10,200 UKBench images from ``root`` (default ``<data dir>/ukbench``)."""
    root = resolve_root("ukbench", root)
    if not root.exists():
        raise DatasetMissingError("ukbench", root)
    return _load("ukbench", root, "Table 7")


def ukbench2000(root: str | Path | None = None) -> DatasetRecord:
    """UKBench images 0-1,999 from the shared data folder (or ``root``): 2,000 images, 500 objects."""
    if root is None and config.shared_data_dir() is None:
        raise DatasetMissingError(
            "ukbench2000", default_root("ukbench2000"),
            command="set COURSE_SHARED_DATA to the folder holding ukbench_subset2000/ (or use the full set: "
            "python data_scripts/download.py ukbench)",
            detail="The shared data folder is absent.",
        )
    root = resolve_root("ukbench2000", root)
    if not root.exists():
        raise DatasetMissingError("ukbench2000", root, command="python data_scripts/download.py ukbench (full set)")
    return _load("ukbench2000", root, "Table 7 (first 2,000 images)")
