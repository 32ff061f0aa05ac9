"""Sculptures 6k instance retrieval (Arandjelovic & Zisserman, ICCV 2011; paper Table 7).

6,340 Flickr photos of Henry Moore and Auguste Rodin sculptures, split into two halves of 3,170 (train / test), with
70 queries. Smooth, texture-less objects: the benchmark on which the paper's CNN features lose to the bag of
boundaries (42.3 vs 45.4 mAP).

Layout read (UNVERIFIED: no official archive was reachable when this was written; the layout follows the VGG
conventions and third-party readers of the release, and ``download.py sculptures6k`` explains how to set it up)
-----------------------------------------------------------------------------------------------------------------
* ``sculptures6k_train.txt`` / ``sculptures6k_test.txt``: the image names of each half, one per line;
* the images in ``train/`` and ``test/`` (or all in ``images/``);
* the ground truth, either Oxford-style files ``gt/<query>_{good,ok,junk,query}.txt`` (see ``oxford_paris``), or one
  ``sculptures6k_gt.txt``: a header line, then four lines per query: the query image, its box
  ``x0 y0 x1 y1`` (any other content on that line is ignored), the positive images, and the junk images, the last
  two space-separated. Names may carry ``.jpg`` or not.

Protocol
--------
``split="test"`` (default): the database is the test half and the queries are those whose image lies in it; ground
truth outside the test half is dropped. ``split="train"`` likewise, ``split="all"`` searches all 6,340 images.
Positives good + ok, junk ignored; whole images with the spatial search of Sec. 4.2. Metric: mAP.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import DatasetMissingError, DatasetRecord, Query
from .oxford_paris import read_oxford_gt
from .specs import get, require, resolve_root

NAME = "sculptures6k"
SPLITS = ("train", "test")


def _stem(name: str) -> str:
    return name.strip().removesuffix(".jpg")


def _read_block_gt(path: Path) -> list[dict]:
    """Queries of a ``sculptures6k_gt.txt`` file (header, then blocks of 4 lines)."""
    lines = path.read_text().splitlines()[1:]
    if len(lines) % 4:
        raise ValueError(f"{path}: after the header, expected blocks of 4 lines; got {len(lines)} lines.")
    entries = []
    for start in range(0, len(lines), 4):
        query, box_line, good, junk = lines[start:start + 4]
        try:
            numbers = [float(v) for v in box_line.split()]
        except ValueError:
            numbers = []
        entries.append({
            "name": _stem(query), "image": _stem(query),
            "box": tuple(numbers) if len(numbers) == 4 else None,
            "good": [_stem(n) for n in good.split()], "ok": [], "junk": [_stem(n) for n in junk.split()],
        })
    return entries


def _ground_truth(root: Path) -> list[dict]:
    if (root / "gt").is_dir() and any((root / "gt").glob("*_query.txt")):
        return [{**e, "image": _stem(e["image"]), "good": [_stem(n) for n in e["good"]],
                 "ok": [_stem(n) for n in e["ok"]], "junk": [_stem(n) for n in e["junk"]]}
                for e in read_oxford_gt(root / "gt")]
    if (root / "sculptures6k_gt.txt").is_file():
        return _read_block_gt(root / "sculptures6k_gt.txt")
    raise DatasetMissingError(NAME, root, detail="No ground truth: expected gt/*_query.txt or sculptures6k_gt.txt.")


def sculptures6k(root: str | Path | None = None, split: str = "test") -> DatasetRecord:
    """Load Sculptures 6k from ``root`` (default ``<data dir>/sculptures6k``), searching the ``split`` half."""
    if split not in (*SPLITS, "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all'; got {split!r}.")
    root = resolve_root(NAME, root)
    if not root.exists():
        raise DatasetMissingError(NAME, root)
    require(NAME, root, *(f"sculptures6k_{s}.txt" for s in SPLITS))
    stems, paths, halves = [], [], []
    for half in SPLITS:
        for line in (root / f"sculptures6k_{half}.txt").read_text().splitlines():
            if not line.strip():
                continue
            name = line.strip() if line.strip().endswith(".jpg") else f"{line.strip()}.jpg"
            path = next((p for p in (root / half / name, root / "images" / name) if p.is_file()), root / half / name)
            stems.append(_stem(name))
            paths.append(path)
            halves.append(half)
    require(NAME, root, *paths)
    position = {s: i for i, s in enumerate(stems)}
    in_db = np.array([split == "all" or h == split for h in halves])
    queries = []
    for e in _ground_truth(root):
        referenced = [e["image"], *e["good"], *e["ok"], *e["junk"]]
        if missing := [n for n in referenced if n not in position]:
            raise ValueError(f"Query {e['name']} refers to images in neither image list: {missing[:3]}.")
        if not in_db[position[e["image"]]]:
            continue
        queries.append(Query(
            index=position[e["image"]], name=e["name"], box=e["box"],
            positives=[position[n] for n in e["good"] + e["ok"] if in_db[position[n]]],
            junk=[position[n] for n in e["junk"] if in_db[position[n]]],
        ))
    return DatasetRecord(
        name=NAME, task="retrieval", root=root, paths=paths, split=np.array(halves), queries=queries,
        database=np.flatnonzero(in_db), metric=get(NAME).metric,
        protocol=f"search the {split} half with its queries; spatial search (Sec. 4.2)", paper_table="Table 7",
    )
