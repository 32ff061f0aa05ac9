"""The course's real sets: Oxford 17 Flowers, 10 DTD texture classes and UKBench 0-1999.

Each is read from the first place that has it, by the one rule of :func:`course_utils.datasets.specs.locate`:
the shared copy (``<shared data folder>/oxford_flowers17`` etc., images re-encoded at <= 320 px), else the
download of ``python data_scripts/download.py NAME`` (the official archives, original resolution). Both give the
same classes, images and splits: the split lists ship with the course in ``course_utils/datasets/splits/`` and the
tests compare them with the shared copies.

* :func:`flowers17`: 1,360 images, 17 classes of 80 (image ``k`` is class ``ceil(k / 80)``); the course's 80/20
  split (1,088 train / 272 test, 64 / 16 per class) is the shared copy's ``splits/{train,test}.txt``, shipped as
  ``splits/flowers17/``. With a download, ``split="official1"`` .. ``"official3"`` read the official
  ``datasplits.mat`` instead (40 train / 20 val / 20 test per class). Labels 1..17 become 0..16.
* :func:`dtd10`: the first 10 DTD classes in alphabetical order, all 120 images each. DTD's official splits are
  not used; one is made like DTD's own (40 train / 40 val / 40 test per class): within each class the images are
  sorted by path and shuffled by ``numpy.random.default_rng([seed, label])``; the first third is train, the
  second val, the rest test. It depends only on ``seed`` and the file names, so it is the same on every machine
  and for both copies (``splits/dtd10/`` holds the result for the default seed).
* :func:`ukbench2000`: UKBench images 0-1,999 (objects 0-499), listed in ``splits/ukbench2000/images.txt``; from a
  download of the whole set, its first 2,000 images.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .base import DatasetMissingError, DatasetRecord
from .specs import find, get, require

SPLITS_DIR = Path(__file__).resolve().parent / "splits"
SHARED_HINT = ("The shared copy is incomplete: restore it, point COURSE_SHARED_DATA at a complete one "
               "(e.g. export COURSE_SHARED_DATA=/path/to/shared/data), or download the set")
DTD_SEED = 0
FLOWERS17_CLASSES: tuple[str, ...] = (
    "daffodil", "snowdrop", "lilyvalley", "bluebell", "crocus", "iris", "tigerlily", "tulip", "fritillary",
    "sunflower", "daisy", "coltsfoot", "dandelion", "cowslip", "buttercup", "windflower", "pansy",
)
FLOWERS17_PER_CLASS = 80
FLOWERS17_SPLITS = ("course", "official1", "official2", "official3")
DTD10_CLASSES: tuple[str, ...] = (
    "banded", "blotchy", "braided", "bubbly", "bumpy", "chequered", "cobwebbed", "cracked", "crosshatched",
    "crystalline",
)


def split_list(name: str, list_name: str) -> list[str]:
    """The relative image paths in the shipped list ``splits/<name>/<list_name>`` (one per line, in file order)."""
    path = SPLITS_DIR / name / list_name
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _require_copy(name: str, root: Path, *relative: str | Path) -> None:
    """Raise :class:`DatasetMissingError` for a shared-layout copy lacking a file (the hint names COURSE_SHARED_DATA)."""
    if not root.is_dir():
        raise DatasetMissingError(name, root, hint=SHARED_HINT + f": {get(name).download_command}",
                                  detail="That folder does not exist.")
    if missing := [str(p) for p in relative if not (root / p).exists()]:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise DatasetMissingError(name, root, hint=SHARED_HINT + f": {get(name).download_command}",
                                  detail=f"Missing: {', '.join(missing[:3])}{more}.")


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


def _read_split_lists(paths: list[str], lists: dict[str, Path], catalogue: str) -> np.ndarray:
    """The split of each image from ``{split: list file}``; every image must be listed exactly once.

    ``catalogue`` names where ``paths`` came from, for the error messages.
    """
    position = {p: i for i, p in enumerate(paths)}
    split = np.full(len(paths), "", dtype=object)
    for name, list_file in lists.items():
        for line, entry in enumerate(list_file.read_text(encoding="utf-8").splitlines(), start=1):
            entry = entry.strip()
            if not entry:
                continue
            if entry not in position:
                raise ValueError(f"{list_file}, line {line}: {entry!r} is not in {catalogue}.")
            if split[position[entry]]:
                raise ValueError(f"{list_file}, line {line}: {entry!r} is already in the "
                                 f"{split[position[entry]]} list.")
            split[position[entry]] = name
    if unlisted := [paths[i] for i in np.flatnonzero(split == "")]:
        raise ValueError(f"{len(unlisted)} image(s) of {catalogue} are in no split list, e.g. {unlisted[0]}.")
    return split.astype(str)


def _official_flowers17_split(root: Path, split: str, n_images: int) -> np.ndarray:
    """Split ``official<k>`` of ``datasplits.mat`` (1-based image ids in ``trn<k>``, ``val<k>``, ``tst<k>``)."""
    from scipy.io import loadmat

    require("flowers17", root, "datasplits.mat")
    k = split.removeprefix("official")
    mat = loadmat(root / "datasplits.mat")
    result = np.full(n_images, "", dtype=object)
    for key, name in ((f"trn{k}", "train"), (f"val{k}", "val"), (f"tst{k}", "test")):
        if key not in mat:
            raise ValueError(f"{root / 'datasplits.mat'} has no variable {key!r}; expected trn{k}, val{k}, tst{k}.")
        ids = mat[key].ravel().astype(int)
        if ids.min() < 1 or ids.max() > n_images or (result[ids - 1] != "").any():
            raise ValueError(f"{root / 'datasplits.mat'}: {key} holds ids outside 1..{n_images} or ids of "
                             "another split.")
        result[ids - 1] = name
    if (result == "").any():
        raise ValueError(f"{root / 'datasplits.mat'}: split {k} leaves {int((result == '').sum())} images out.")
    return result.astype(str)


def flowers17(root: str | Path | None = None, split: str = "course") -> DatasetRecord:
    """Oxford 17 Flowers: the shared copy, else the download (or the copy at ``root``): 1,360 images.

    ``split="course"`` (default): 1,088 train / 272 test, the same lists for every copy. ``"official1"`` ..
    ``"official3"``: the official ``datasplits.mat`` (train 680 / val 340 / test 340), present in a download.
    """
    name = "flowers17"
    if split not in FLOWERS17_SPLITS:
        raise ValueError(f"flowers17: split {split!r} is not one of {FLOWERS17_SPLITS}.")
    found = find(name, root)
    root = found.root
    if (root / "labels.csv").is_file():  # the shared copy's layout
        lists = {"train": "splits/train.txt", "test": "splits/test.txt"}
        _require_copy(name, root, *lists.values())
        paths, labels, class_names = _read_labels(root / "labels.csv", n_classes=17, first_label=1)
        course_lists, catalogue = {s: root / f for s, f in lists.items()}, f"{root / 'labels.csv'}"
        _require_copy(name, root, *paths)
    else:  # the official archive's layout: jpg/image_0001.jpg .. image_1360.jpg
        require(name, root, "jpg")
        n = len(FLOWERS17_CLASSES) * FLOWERS17_PER_CLASS
        paths = [f"jpg/image_{k:04d}.jpg" for k in range(1, n + 1)]
        labels, class_names = np.arange(n) // FLOWERS17_PER_CLASS, list(FLOWERS17_CLASSES)
        course_lists = {s: SPLITS_DIR / name / f"{s}.txt" for s in ("train", "test")}
        catalogue = f"the {n:,} images of {root / 'jpg'}"
        require(name, root, *paths)
    if split == "course":
        assignment = _read_split_lists(paths, course_lists, catalogue)
        protocol = "the course's 80/20 split (64 train / 16 test per class; not the official datasplits.mat); " \
                   "whole images"
    else:
        assignment = _official_flowers17_split(root, split, len(paths))
        protocol = f"official datasplits.mat, split {split[-1]} (40 train / 20 val / 20 test per class); whole images"
    return DatasetRecord(
        name=name, task="multiclass", root=root, paths=[root / p for p in paths], labels=labels,
        class_names=class_names, split=assignment, metric=get(name).metric, protocol=protocol,
        paper_table="none (sibling of Table 4's Flowers-102)", source=found.source,
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
    """Ten DTD texture classes: the shared copy, else the download (or ``root``); split 40/40/40 per class.

    ``root`` may be the shared-layout folder (``labels.csv``), the download folder (holding ``dtd/``) or DTD's own
    ``dtd/`` folder (holding ``images/``).
    """
    name = "dtd10"
    found = find(name, root)
    root = found.root
    if (root / "labels.csv").is_file():  # the shared copy's layout
        paths, labels, class_names = _read_labels(root / "labels.csv", n_classes=10, first_label=0)
        _require_copy(name, root, *paths)
    else:  # the official archive's layout: [dtd/]images/<class>/<class>_NNNN.jpg
        if (root / "dtd" / "images").is_dir():
            root = root / "dtd"
        paths = sorted(p for s in ("train", "val", "test") for p in split_list(name, f"{s}.txt"))
        class_names = list(DTD10_CLASSES)
        labels = np.array([class_names.index(Path(p).parent.name) for p in paths])
        require(name, root, "images", *paths)
    return DatasetRecord(
        name=name, task="multiclass", root=root, paths=[root / p for p in paths], labels=labels,
        class_names=class_names, split=dtd_split(labels, paths, seed), metric=get(name).metric,
        protocol=f"DTD's 10 alphabetically first classes; seeded (seed={seed}) 40 train / 40 val / 40 test per "
                 "class, like DTD's own splits (not its official split files); train on train+val, test on test",
        paper_table="none (not one of the paper's benchmarks)", source=found.source,
    )


def ukbench2000(root: str | Path | None = None) -> DatasetRecord:
    """UKBench images 0-1,999 (500 objects x 4): the shared copy, else the first 2,000 of a full download."""
    from . import ukbench

    name = "ukbench2000"
    found = find(name, root)
    names = split_list(name, "images.txt")
    require(name, found.root, *names)
    whole = ukbench.ukbench2000(found.root)  # every ukbenchNNNNN.jpg of full/: 2,000, or 10,200 in a download
    n = len(names)
    if [p.relative_to(found.root).as_posix() for p in whole.paths[:n]] != names:
        raise ValueError(f"{found.root / 'full'}: its first {n} images are not those of "
                         f"{SPLITS_DIR / name / 'images.txt'}.")
    return DatasetRecord(
        name=name, task="retrieval", root=found.root, paths=whole.paths[:n], queries=whole.queries[:n],
        database=np.arange(n), metric=get(name).metric,
        protocol=whole.protocol if len(whole) == n else f"{whole.protocol}; the first {n:,} images of the full set",
        paper_table=whole.paper_table, source=found.source,
    )
