"""Smaller records cut from a dataset: a few of its classes, the first images of a retrieval set, a few training
images per class.

A notebook that runs on a laptop CPU in a minute cannot extract 16 views of a whole benchmark, but it can run the
benchmark's own protocol on part of it. Every function here returns a new :class:`DatasetRecord` (or the indices of
one) chosen deterministically, so the subset, and hence its feature cache entry, is the same on every run. This is
the data layer: it imports numpy and the record types only (no torch, no plotting).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from .base import DatasetRecord


def _class_ids(record: DatasetRecord, classes: Sequence[str | int]) -> list[int]:
    """Label ids of ``classes`` (names or ids), in the order given; distinct and at least one."""
    ids = []
    for wanted in classes:
        if isinstance(wanted, str):
            if wanted not in record.class_names:
                raise ValueError(f"{record.name!r} has no class {wanted!r}; its classes start "
                                 f"{record.class_names[:5]} (see record.class_names).")
            ids.append(record.class_names.index(wanted))
        elif 0 <= int(wanted) < len(record.class_names):
            ids.append(int(wanted))
        else:
            raise ValueError(f"Class id {wanted} is outside 0..{len(record.class_names) - 1} for {record.name!r}.")
    if not ids or len(set(ids)) != len(ids):
        raise ValueError(f"class_subset needs distinct classes, at least one; got {list(classes)}.")
    return ids


def class_subset(record: DatasetRecord, classes: Sequence[str | int], test_per_class: int | None = None
                 ) -> DatasetRecord:
    """Only the images of ``classes`` (names or label ids), relabelled ``0..k-1`` in the order given.

    Every training and validation image of those classes is kept; the test split keeps its first
    ``test_per_class`` images of each class (all with ``None``). A few classes with 16 views each fit a CPU's minute
    where the whole benchmark would take an hour, and still show what the full benchmark measures.
    """
    if record.labels is None or np.asarray(record.labels).ndim != 1:
        raise ValueError(f"class_subset needs a single-label dataset; {record.name!r} is {record.task!r}.")
    if test_per_class is not None and test_per_class < 1:
        raise ValueError(f"test_per_class must be at least 1 (or None for every test image); got {test_per_class}.")
    ids = _class_ids(record, classes)
    labels, split = np.asarray(record.labels), np.asarray(record.split)
    keep = []
    for label in ids:
        members = np.flatnonzero(labels == label)
        tests = members[split[members] == "test"]
        keep += members[split[members] != "test"].tolist() + tests[:test_per_class].tolist()
    subset = record.subset(sorted(keep))
    renumber = {old: new for new, old in enumerate(ids)}
    cap = "all" if test_per_class is None else f"at most {test_per_class}"
    return replace(
        subset, labels=np.array([renumber[int(label)] for label in subset.labels]),
        class_names=[record.class_names[label] for label in ids],
        protocol=f"{record.protocol} | subset: {len(ids)} classes, {cap} test images per class",
    )


def retrieval_subset(record: DatasetRecord, n_images: int) -> DatasetRecord:
    """The first ``n_images`` images of a retrieval set, with the queries among them and their ground truth cut to
    those images (queries left without a positive are dropped).

    UKBench numbers its photos in groups of four, so its first ``4 k`` images are ``k`` complete objects: the same
    protocol on fewer distractors, which is why scores on a subset are higher than on the full set.
    """
    if record.task != "retrieval":
        raise ValueError(f"retrieval_subset needs a retrieval dataset; {record.name!r} is {record.task!r}.")
    if not 1 <= n_images <= len(record):
        raise ValueError(f"n_images must be in 1..{len(record)} for {record.name!r}; got {n_images}.")
    queries = []
    for query in record.queries:
        positives = [i for i in query.positives if i < n_images]
        if query.index < n_images and positives:
            queries.append(replace(query, positives=positives, junk=[i for i in query.junk if i < n_images]))
    if not queries:
        raise ValueError(f"The first {n_images} images of {record.name!r} hold no query with a positive; take more.")
    database = None if record.database is None else np.array([i for i in record.database if i < n_images])
    subset = record.subset(np.arange(n_images))
    return replace(subset, queries=queries, database=database,
                   protocol=f"{record.protocol} | subset: first {n_images} images, {len(queries)} queries")


def few_shot_indices(record: DatasetRecord, per_class: int, seed: int = 0) -> np.ndarray:
    """Indices of ``per_class`` random training images of every class, followed by every test image (sorted).

    Fewer training images make a small, easy set hard enough for augmentation and normalisation to matter, which is
    the regime where the paper's extra views pay off most. ``record.subset(indices)`` and ``X[indices]`` give the
    matching record and features; the test images are always all kept, so scores stay comparable.
    """
    if record.task != "multiclass":
        raise ValueError(f"few_shot_indices needs a single-label dataset; {record.name!r} is {record.task!r}.")
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1; got {per_class}.")
    rng = np.random.default_rng(seed)
    labels, split = np.asarray(record.labels), np.asarray(record.split)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero((split == "train") & (labels == label))
        if members.size < per_class:
            raise ValueError(f"{record.name!r}: class {label} has {members.size} training images, fewer than "
                             f"per_class={per_class}; ask for at most {members.size}.")
        chosen.append(rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate([*chosen, np.flatnonzero(split == "test")]))
