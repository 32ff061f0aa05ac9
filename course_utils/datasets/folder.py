"""Your own images: any folder with one sub-folder per class, as a :class:`DatasetRecord`; or, for retrieval, one
sub-folder per object or scene (:func:`retrieval_folder`, ``datasets.load("retrieval-folder:PATH")``).

``image_folder("PATH")`` (or ``datasets.load("folder:PATH")``) reads ``PATH/<class name>/**/<image>`` for the
image extensions in :data:`~course_utils.datasets.images.IMAGE_EXTENSIONS` (any case). Class names are the
sub-folder names, sorted, so label ``k`` is the ``k``-th name; hidden files and folders (names starting with
``.``) are ignored.

The split
---------
* If ``PATH/train.txt`` and ``PATH/test.txt`` exist, they define it: one image path per line, relative to
  ``PATH`` (blank lines and lines starting with ``#`` are skipped). Images neither file lists are left out.
* Otherwise the loader makes a seeded, stratified split: in each class a third of the images (at least one) go
  to test, the rest to train. :func:`write_split` saves the split it used as ``train.txt`` / ``test.txt``
  (``reproduce`` puts them in ``OUT/splits/<dataset>/``, one pair per dataset); copy them into ``PATH`` to freeze
  it even if you add images later.

A class needs at least 2 images (one to train, one to test). Choosing C by 3-fold cross-validation needs 3
training images per class; with fewer, C is fixed at ``course_utils.classify.FALLBACK_C`` and the report says so.

File names are written to and read from the split files as UTF-8, and a name that is not valid UTF-8 (possible
on Linux and macOS) keeps its own bytes (Python's ``surrogateescape``), so the files reproduce the split exactly.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .. import metrics
from .base import DatasetRecord, Query
from .images import IMAGE_EXTENSIONS, atomic_path, is_image_file, printable

SPLIT_FILES = {"train": "train.txt", "test": "test.txt"}
TEST_FRACTION = 1 / 3
_LAYOUT = "expected PATH/<class name>/<image>, e.g. PATH/cats/001.jpg and PATH/dogs/001.jpg"


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def list_images(folder: Path) -> list[Path]:
    """The images below ``folder`` (recursively; hidden files and folders ignored), sorted by their path relative
    to it, so that a listing, and the feature-cache key made from it, do not depend on the file system's order."""
    found = [p for p in folder.rglob("*") if _visible(p, folder) and is_image_file(p)]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def _scan(root: Path) -> dict[str, list[Path]]:
    """``{class name: images}`` for every visible sub-folder of ``root``; clear errors for a wrong layout."""
    if not root.exists():
        raise FileNotFoundError(f"Image folder {root} does not exist; {_LAYOUT}.")
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder; {_LAYOUT}.")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise ValueError(f"{root} has no class sub-folders; {_LAYOUT}.")
    classes = {folder.name: list_images(folder) for folder in folders}
    if empty := [name for name, images in classes.items() if not images]:
        raise ValueError(f"Class folder {root / empty[0]} holds no images (extensions: "
                         f"{', '.join(sorted(IMAGE_EXTENSIONS))}); add images or remove the folder.")
    if len(classes) < 2:
        raise ValueError(f"{root} has only one class folder ({next(iter(classes))!r}); a classifier needs at "
                         f"least two classes, {_LAYOUT}.")
    return classes


def _stratified_split(labels: np.ndarray, paths: list[Path], seed: int) -> np.ndarray:
    """Per class, shuffled by ``default_rng([seed, label])``: a third (at least 1) to test, the rest train."""
    split = np.full(len(labels), "train", dtype=object)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < 2:
            raise ValueError(f"Class folder {paths[members[0]].parent} holds only 1 image; a train/test "
                             f"split needs at least 2 per class (or list the split in train.txt and "
                             f"test.txt).")
        n_test = max(1, round(len(members) * TEST_FRACTION))
        split[np.random.default_rng([seed, int(label)]).permutation(members)[:n_test]] = "test"
    return split.astype(str)


def _read_split_files(
    root: Path, class_index: dict[str, int]
) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """Paths, labels and split from ``train.txt`` / ``test.txt``, sorted by path; errors name file, line."""
    listed: dict[Path, tuple[str, str]] = {}  # image -> (split, "file, line N") where it was listed
    for split, file_name in SPLIT_FILES.items():
        list_file = root / file_name
        text = list_file.read_text(encoding="utf-8", errors="surrogateescape")  # as write_split wrote the names
        for number, line in enumerate(text.splitlines(), start=1):
            entry = line.strip().replace("\\", "/")
            if not entry or entry.startswith("#"):
                continue
            where = f"{list_file}, line {number}"
            path = Path(os.path.normpath(root / entry))  # removes "..", keeps symbolic links as they are
            if Path(entry).is_absolute() or not path.is_relative_to(root):
                raise ValueError(f"{where}: {entry!r} must be a path relative to {root}, "
                                 f"inside a class folder.")
            parts = path.relative_to(root).parts
            if len(parts) < 2 or parts[0] not in class_index:
                raise ValueError(f"{where}: {entry!r} is not inside a class folder of {root} "
                                 f"(classes: {', '.join(class_index)}).")
            if not is_image_file(path):
                raise FileNotFoundError(f"{where}: image {path} does not exist or is not an image file "
                                        f"({', '.join(sorted(IMAGE_EXTENSIONS))}).")
            if path in listed:
                raise ValueError(f"{where}: {entry!r} is listed twice (first in {listed[path][1]}).")
            listed[path] = (split, where)
    paths = sorted(listed, key=lambda p: p.relative_to(root).as_posix())
    labels = np.array([class_index[p.relative_to(root).parts[0]] for p in paths], dtype=int)
    trained = {int(label) for p, label in zip(paths, labels, strict=True) if listed[p][0] == "train"}
    if missing := [name for name, k in class_index.items() if k not in trained]:
        raise ValueError(f"{root / SPLIT_FILES['train']} lists no image of class {missing[0]!r}; every class "
                         f"folder needs training images (or remove the folder).")
    return paths, labels, np.array([listed[p][0] for p in paths])


def image_folder(path: str | Path, seed: int = 0) -> DatasetRecord:
    """Load a folder of class sub-folders as a multi-class dataset (see the module docstring for the split).

    ``seed`` fixes the stratified split when the folder has no ``train.txt`` / ``test.txt``.
    """
    root = Path(path).expanduser().resolve()
    classes = _scan(root)
    class_index = {name: k for k, name in enumerate(classes)}
    present = [name for name in SPLIT_FILES.values() if (root / name).is_file()]
    if len(present) == 1:
        absent = next(name for name in SPLIT_FILES.values() if name not in present)
        raise FileNotFoundError(f"{root / present[0]} exists but {root / absent} does not: give both files "
                                f"to fix the split, or neither for a seeded split.")
    if present:
        paths, labels, split = _read_split_files(root, class_index)
        protocol = "split from train.txt / test.txt in the folder"
    else:
        paths = [p for images in classes.values() for p in images]
        labels = np.array([class_index[name] for name, images in classes.items() for _ in images])
        split = _stratified_split(labels, paths, seed)
        protocol = f"seeded (seed={seed}) stratified split: a third of each class to test"
    return DatasetRecord(
        name=f"folder:{root.name}", task="multiclass", root=root, paths=paths, labels=labels,
        class_names=[printable(name) for name in classes], split=split, metric=metrics.MEAN_CLASS_ACCURACY,
        protocol=protocol,
    )


def write_split(record: DatasetRecord, out_dir: str | Path) -> dict[str, Path]:
    """Write one ``<split>.txt`` per split into ``out_dir``: the record's paths relative to its root.

    Copied into the image folder, the train and test files make :func:`image_folder` reproduce exactly this
    split. Each file is written atomically, in UTF-8; a file name that is not UTF-8 keeps its bytes
    (``surrogateescape``, read back the same way). Returns ``{split: file}``.
    """
    root = Path(record.root)
    outside = [p for p in record.paths if not Path(p).is_relative_to(root)]
    if outside:
        raise ValueError(f"Cannot write a split for {record.name!r}: {outside[0]} is not inside its root "
                         f"{root}.")
    out_dir = Path(out_dir)
    written = {}
    for split in sorted(set(record.split.tolist())):
        members = [p for p, s in zip(record.paths, record.split, strict=True) if s == split]
        lines = [Path(p).relative_to(root).as_posix() for p in members]
        written[split] = out_dir / f"{split}.txt"
        with atomic_path(written[split]) as tmp:
            tmp.write_bytes(("\n".join(lines) + "\n").encode("utf-8", errors="surrogateescape"))
    return written


# ---------------------------------------------------------------------------------------------------------------
# Retrieval folders: Holidays-style groups of photos of the same object or scene
# ---------------------------------------------------------------------------------------------------------------

RETRIEVAL_PREFIX = "retrieval-folder:"
NS_GROUP_SIZE = 4  # groups of exactly this many photos also get UKBench's N-S score
_RETRIEVAL_LAYOUT = ("expected PATH/<group>/<image>: one sub-folder per object or scene holding at least 2 photos "
                     "of it (e.g. PATH/tower/1.jpg and PATH/tower/2.jpg); images directly in PATH are distractors")


def retrieval_folder(path: str | Path, exclude: Iterable[str | os.PathLike] = ()) -> DatasetRecord:
    """Load a folder of photo groups as an instance-retrieval dataset (Holidays-style, scored by mAP).

    Layout: ``PATH/<group>/**/<image>``, each group several photos of one object or scene; images directly in
    ``PATH`` (not in a group) are **distractors**: searched, never a query nor a positive. Every grouped image is a
    query that searches all the images; its positives are the *other* photos of its group, and the query itself is
    junk (ignored by the metric, as in Holidays). When every group holds exactly :data:`NS_GROUP_SIZE` photos,
    ``reproduce`` also reports UKBench's N-S score (the query counted in its group, as UKBench does).

    ``exclude`` lists images to leave out (``reproduce`` passes the unreadable ones): a group left with a single
    image keeps it as a distractor, and the record's ``protocol`` says so. Hidden files and folders are ignored.
    Errors name the folder: a missing folder, no group, a group with fewer than 2 images, and a folder where every
    searched image is a positive of every query (mAP would be 100% whatever the features).
    """
    root = Path(path).expanduser().resolve()
    if not root.exists():
        raise FileNotFoundError(f"Image folder {root} does not exist; {_RETRIEVAL_LAYOUT}.")
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder; {_RETRIEVAL_LAYOUT}.")
    excluded = {Path(os.path.abspath(os.fspath(p))) for p in exclude}
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    groups = {folder.name: list_images(folder) for folder in folders}
    if not groups:
        raise ValueError(f"{root} has no group sub-folders; {_RETRIEVAL_LAYOUT}.")
    if small := [name for name, images in groups.items() if len(images) < 2]:
        raise ValueError(f"Group folder {root / small[0]} holds {len(groups[small[0]])} image(s); a group needs at "
                         f"least 2 photos of its object (one queries, the others are its positives). Add photos, "
                         f"or move a lone photo into {root} itself to search it as a distractor.")
    distractors = [p for p in sorted(root.iterdir()) if is_image_file(p) and p not in excluded]
    notes = []
    for name in list(groups):
        groups[name] = [p for p in groups[name] if p not in excluded]
        if len(groups[name]) < 2:
            distractors += groups.pop(name)
            notes.append(f"group {name!r} has fewer than 2 usable images: its rest is searched as a distractor")
    if not groups:
        raise ValueError(f"{root}: no group has 2 usable images left; {_RETRIEVAL_LAYOUT}.")
    paths = [p for images in groups.values() for p in images] + distractors
    if len(groups) == 1 and not distractors:
        raise ValueError(f"{root} has a single group and no distractor: every searched image is a positive of every "
                         f"query, so mAP would be 100% whatever the features. Add a second group, or unrelated "
                         f"photos directly in {root}.")
    queries, start = [], 0
    for images in groups.values():
        members = list(range(start, start + len(images)))
        queries += [Query(index=i, positives=[m for m in members if m != i], junk=[i],
                          name=paths[i].relative_to(root).as_posix()) for i in members]
        start += len(images)
    four = all(len(images) == NS_GROUP_SIZE for images in groups.values())
    protocol = (f"{len(groups)} groups, {len(distractors)} distractors: every grouped image queries all the images; "
                "its positives are the other images of its group; the query itself is junk")
    if four:
        protocol += f"; every group holds {NS_GROUP_SIZE} images: N-S score too (query counted, as in UKBench)"
    return DatasetRecord(
        name=f"{RETRIEVAL_PREFIX}{root.name}", task="retrieval", root=root, paths=paths, queries=queries,
        database=np.arange(len(paths)), metric=metrics.RETRIEVAL_MAP,
        protocol="; ".join([protocol, *notes]),
    )


def ns_groups(record: DatasetRecord) -> bool:
    """Whether ``record`` is a retrieval folder whose groups all hold :data:`NS_GROUP_SIZE` images (N-S applies)."""
    return record.name.startswith(RETRIEVAL_PREFIX) and bool(record.queries) and all(
        len(q.positives) == NS_GROUP_SIZE - 1 for q in record.queries)
