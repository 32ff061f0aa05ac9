"""INRIA Holidays instance retrieval (paper Table 7): 1,491 holiday photos in 500 groups, 500 queries.

Layout: ``jpg/<id>.jpg`` with 6-digit ids (as ``jpg1.tar.gz`` + ``jpg2.tar.gz`` extract). ``id // 100`` is the group.

Protocol
--------
* The first image of each group (id divisible by 100) is the query; the other images of its group are the
  positives. The query image itself is excluded from its own ranking: it is passed as ``junk``, so AP ignores it.
* Whole images (no boxes). The paper searches with jittered views (Sec. 3.6), not spatial search. Metric: mAP.

Rotated images
--------------
A minority of the photos are stored sideways. The paper says nothing about fixing them (its jitter includes two
small rotations); later papers rotate them by hand, which raises mAP by a few points, so report such numbers
separately. No rotation list ships with the dataset. Two ways to use one:

* a copy with fixed orientation (other authors share ``holidays_rotated.tar.gz``; see ``docs/datasets.md``): put its
  images in ``ROOT/jpg_rotated/`` under the same names;
* a text file listing ``<image name> <degrees clockwise: 90, 180 or 270>`` per line (``#`` starts a comment):
  :func:`write_rotated_copies` builds ``ROOT/jpg_rotated/`` from ``ROOT/jpg/`` with it.

Then load with ``holidays(rotated=True)``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .base import DatasetMissingError, DatasetRecord, Query
from .images import atomic_path
from .specs import get, require, resolve_root

NAME = "holidays"
_TRANSPOSE = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}


def holidays(root: str | Path | None = None, rotated: bool = False) -> DatasetRecord:
    """Load Holidays from ``root`` (default ``<data dir>/holidays``); ``rotated=True`` reads ``jpg_rotated/``."""
    root = resolve_root(NAME, root)
    if not root.exists():
        raise DatasetMissingError(NAME, root)
    folder = "jpg_rotated" if rotated else "jpg"
    if rotated and not (root / folder).is_dir():
        raise DatasetMissingError(
            NAME, root, command=f"course_utils.datasets.holidays.write_rotated_copies({str(root)!r}, ROTATION_LIST)",
            detail="No jpg_rotated/ folder: build it from a rotation list (or extract a rotated copy there).",
        )
    require(NAME, root, folder)
    files = {}
    for path in (root / folder).glob("*.jpg"):
        if not path.stem.isdigit():
            raise ValueError(f"{path}: Holidays images are named <6-digit id>.jpg.")
        files[int(path.stem)] = path
    if not files:
        raise DatasetMissingError(NAME, root, detail=f"{folder}/ holds no images.")
    ids = sorted(files)
    position = {image_id: i for i, image_id in enumerate(ids)}
    groups: dict[int, list[int]] = {}
    for image_id in ids:
        groups.setdefault(image_id // 100, []).append(image_id)
    queries = []
    for group, members in groups.items():
        if members[0] % 100 != 0:
            raise ValueError(f"Holidays group {group} has no query image {group * 100}.jpg in {root / folder}.")
        query = position[members[0]]
        queries.append(Query(index=query, name=f"{members[0]}", junk=[query],
                             positives=[position[m] for m in members[1:]]))
    return DatasetRecord(
        name=NAME, task="retrieval", root=root, paths=[files[i] for i in ids], queries=queries,
        database=np.arange(len(ids)), metric=get(NAME).metric,
        protocol="first image of each group is the query; its group are the positives; query passed as junk"
        + ("; manually re-oriented images (not the paper's setting)" if rotated else ""),
        paper_table="Table 7",
    )


def read_rotation_list(path: str | Path) -> dict[str, int]:
    """``{image name: clockwise degrees}`` from a ``<name> <90|180|270>`` text file."""
    rotations = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit() or int(parts[1]) % 360 not in (0, *_TRANSPOSE):
            raise ValueError(f"{path}, line {number}: expected '<image name> <90|180|270>', got {line!r}.")
        rotations[parts[0]] = int(parts[1]) % 360
    return rotations


def write_rotated_copies(root: str | Path, rotation_list: str | Path) -> int:
    """Fill ``root/jpg_rotated/`` from ``root/jpg/``, turning the images of ``rotation_list`` clockwise.

    Listed images are decoded, put upright by their EXIF tag first, rotated, and saved as JPEG (quality 95, no
    EXIF, so no viewer rotates them twice); the others are copied byte for byte. Every file is written atomically.
    Returns the number of rotated images.
    """
    root = Path(root)
    source, target = root / "jpg", root / "jpg_rotated"
    rotations = read_rotation_list(rotation_list)
    if unknown := sorted(n for n in rotations if not (source / n).is_file()):
        raise FileNotFoundError(f"{rotation_list} names images that are not in {source}: {unknown[:3]}.")
    target.mkdir(exist_ok=True)
    for path in sorted(source.glob("*.jpg")):
        degrees = rotations.get(path.name, 0)
        with atomic_path(target / path.name) as tmp:
            if degrees == 0:
                shutil.copyfile(path, tmp)
            else:
                with Image.open(path) as image:
                    upright = ImageOps.exif_transpose(image).convert("RGB")
                upright.transpose(_TRANSPOSE[degrees]).save(tmp, format="JPEG", quality=95)
    return sum(1 for d in rotations.values() if d)
