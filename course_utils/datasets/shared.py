"""Real benchmark subsets from the course's shared data folder (``config.shared_data_dir()``).

These copies are not downloaded: a teacher puts them in ``../shared/data`` beside the repository (or
anywhere, pointed to by ``COURSE_SHARED_DATA``). They let the demo profile measure the paper's pipeline on
real photographs.

* :func:`flowers17`: Oxford 17 Flowers, 1,360 images, 17 classes of 80; the copy's own 80/20 split (1,088
  train / 272 test, 64 / 16 per class) from ``splits/train.txt`` and ``splits/test.txt``. Labels 1..17 become
  0..16.
* :func:`dtd10`: the first 10 DTD texture classes, 120 images each. The copy has no official split, so one is
  made like DTD's own (40 train / 40 val / 40 test per class): within each class the images are sorted by
  path and shuffled by ``numpy.random.default_rng([seed, label])``; the first third is train, the second
  val, the rest test. The split depends only on ``seed`` and the file names: the same on every machine.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .base import DatasetMissingError, DatasetRecord
from .specs import resolve_root

SHARED_HINT = ("Set COURSE_SHARED_DATA to the course's shared data folder "
               "(e.g. export COURSE_SHARED_DATA=/path/to/shared/data); "
               "this subset is copied there, not downloaded")
DTD_SEED = 0


def _require(name: str, root: Path, *relative: str | Path) -> None:
    """Raise :class:`DatasetMissingError`, naming ``COURSE_SHARED_DATA``, unless every listed file exists."""
    if not root.is_dir():
        raise DatasetMissingError(name, root, hint=SHARED_HINT, detail="That folder does not exist.")
    if missing := [str(p) for p in relative if not (root / p).exists()]:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        detail = f"Missing: {', '.join(missing[:3])}{more}."
        raise DatasetMissingError(name, root, hint=SHARED_HINT, detail=detail)


def _read_labels(path: Path, n_classes: int, first_label: int) -> tuple[list[str], np.ndarray, list[str]]:
    """Relative image paths, labels shifted to start at 0, and class names from a ``labels.csv``.

    Raises ``ValueError`` naming the file and line of a malformed row or a label outside the expected range.
    """
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if not {"path", "label", "class_name"} <= set(reader.fieldnames or ()):
            raise ValueError(f"{path}: expected the columns path,label,class_name; "
                             f"found {reader.fieldnames}.")
        paths, labels, names = [], [], [""] * n_classes
        for line, row in enumerate(reader, start=2):
            try:
                label = int(row["label"]) - first_label
            except (TypeError, ValueError):
                raise ValueError(f"{path}, line {line}: label {row['label']!r} is not an integer.") from None
            if not 0 <= label < n_classes:
                raise ValueError(f"{path}, line {line}: label {row['label']} is outside "
                                 f"{first_label}..{first_label + n_classes - 1}.")
            if names[label] and names[label] != row["class_name"]:
                raise ValueError(f"{path}, line {line}: label {row['label']} is called both {names[label]!r} "
                                 f"and {row['class_name']!r}.")
            names[label] = row["class_name"]
            paths.append(row["path"])
            labels.append(label)
    if missing := [k + first_label for k, name in enumerate(names) if not name]:
        raise ValueError(f"{path}: no image has label(s) {missing}; expected {n_classes} classes.")
    return paths, np.array(labels), names


def _read_split_lists(root: Path, paths: list[str], lists: dict[str, str]) -> np.ndarray:
    """The split of each image from ``{split: list file}``; every image must be listed exactly once."""
    position = {p: i for i, p in enumerate(paths)}
    split = np.full(len(paths), "", dtype=object)
    for name, list_file in lists.items():
        for line, entry in enumerate((root / list_file).read_text(encoding="utf-8").splitlines(), start=1):
            entry = entry.strip()
            if not entry:
                continue
            if entry not in position:
                raise ValueError(f"{root / list_file}, line {line}: {entry!r} is not in labels.csv.")
            if split[position[entry]]:
                raise ValueError(f"{root / list_file}, line {line}: {entry!r} is already in the "
                                 f"{split[position[entry]]} list.")
            split[position[entry]] = name
    if unlisted := [paths[i] for i in np.flatnonzero(split == "")]:
        raise ValueError(f"{root}: {len(unlisted)} image(s) of labels.csv are in no split list, "
                         f"e.g. {unlisted[0]}.")
    return split.astype(str)


def flowers17(root: str | Path | None = None) -> DatasetRecord:
    """Oxford 17 Flowers from the shared data folder (or ``root``): 1,360 images, 1,088 train / 272 test."""
    name = "flowers17"
    root = resolve_root(name, root)
    lists = {"train": "splits/train.txt", "test": "splits/test.txt"}
    _require(name, root, "labels.csv", *lists.values())
    paths, labels, class_names = _read_labels(root / "labels.csv", n_classes=17, first_label=1)
    split = _read_split_lists(root, paths, lists)
    _require(name, root, *paths)
    return DatasetRecord(
        name=name, task="multiclass", root=root, paths=[root / p for p in paths], labels=labels,
        class_names=class_names, split=split, metric="mean per-class accuracy",
        protocol="the shared copy's 80/20 random split (64 train / 16 test per class; not the official "
                 "datasplits.mat); whole images",
        paper_table="none (sibling of Table 4's Flowers-102)",
    )


def dtd_split(labels: np.ndarray, paths: list[str], seed: int = DTD_SEED) -> np.ndarray:
    """A seeded train/val/test split in thirds per class (40/40/40 for DTD's 120 images per class).

    Within class ``k`` the images are sorted by path, then shuffled by ``numpy.random.default_rng([seed,
    k])``: each class's split depends only on its own file names and the seed, not on the row order.
    """
    split = np.full(len(paths), "test", dtype=object)
    for label in np.unique(labels):
        members = sorted(np.flatnonzero(labels == label), key=lambda i: paths[i])
        order = np.random.default_rng([seed, int(label)]).permutation(members)
        third = len(order) // 3
        split[order[:third]] = "train"
        split[order[third:2 * third]] = "val"
    return split.astype(str)


def dtd10(root: str | Path | None = None, seed: int = DTD_SEED) -> DatasetRecord:
    """Ten DTD texture classes from the shared data folder (or ``root``), split 40/40/40 per class."""
    name = "dtd10"
    root = resolve_root(name, root)
    _require(name, root, "labels.csv")
    paths, labels, class_names = _read_labels(root / "labels.csv", n_classes=10, first_label=0)
    _require(name, root, *paths)
    return DatasetRecord(
        name=name, task="multiclass", root=root, paths=[root / p for p in paths], labels=labels,
        class_names=class_names, split=dtd_split(labels, paths, seed), metric="mean per-class accuracy",
        protocol=f"no official split in the copy: seeded (seed={seed}) 40 train / 40 val / 40 test per "
                 "class, like DTD's own splits; train on train+val, test on test",
        paper_table="none (not one of the paper's benchmarks)",
    )
