"""The one record every dataset loader returns, whatever the benchmark.

A loader reads a dataset's official files and fills a :class:`DatasetRecord`; everything downstream (feature
extraction, SVMs, retrieval, metrics, reports) reads only this record and the dataset's spec (``specs.py``). So a new
benchmark is one loader and its spec, nothing else.

Conventions
-----------
* ``paths`` are absolute; index ``i`` in every per-image array refers to ``paths[i]``.
* ``task`` says how to read ``labels``:

  - ``"multiclass"``: ``labels`` is ``(N,)`` int, values ``0 .. len(class_names)-1``; metric: mean class accuracy.
  - ``"multilabel"``: ``labels`` is ``(N, K)`` int in ``{0, 1}``; ``difficult`` ``(N, K)`` bool marks the
    items the protocol ignores (VOC); metric: 11-point AP per class, and its mean.
  - ``"attributes"``: like multilabel, one column per binary attribute; metric: AUC or AP per attribute.
  - ``"retrieval"``: no labels; ``queries`` holds the ground truth.
* ``split`` is ``(N,)`` str, one of ``"train"``, ``"val"``, ``"test"`` (retrieval sets: ``"db"``, and ``"query"`` for
  query images kept out of the database; only ``database`` is searched).
* ``boxes`` ``(N, 4)`` float ``(x0, y0, x1, y1)`` in pixels of the stored image, NaN where an image has none.
* ``source`` says where the files came from (see :func:`course_utils.datasets.load_preferred`): ``"shared"`` (the
  shared data folder), ``"downloaded"`` (``data_scripts/download.py``), ``"embedded"`` (a demo set built from
  packaged photographs), or ``""`` when the loader was given a folder and cannot tell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import metrics
from ..metrics import Metric

TASKS = ("multiclass", "multilabel", "attributes", "retrieval")
SOURCES = ("shared", "downloaded", "embedded", "")
# The measure a record of each task is scored with unless its loader names another (attribute sets scored by AUC,
# such as UIUC, pass ``metrics.MEAN_AUC``).
DEFAULT_METRICS: dict[str, Metric] = {
    "multiclass": metrics.MEAN_CLASS_ACCURACY,
    "multilabel": metrics.VOC07_MAP,
    "attributes": metrics.VOC07_MAP,
    "retrieval": metrics.RETRIEVAL_MAP,
}


@dataclass
class Query:
    """One retrieval query: which database items are right, which are junk (ignored), and its region of interest."""

    index: int  # index of the query image in ``DatasetRecord.paths``
    positives: list[int]
    junk: list[int] = field(default_factory=list)
    box: tuple[float, float, float, float] | None = None  # (x0, y0, x1, y1), Oxford/Paris query boxes
    name: str = ""


@dataclass
class DatasetRecord:
    """Images, labels, split and protocol of one benchmark, as a loader returns them."""

    name: str
    task: str
    root: Path
    paths: list[Path]
    labels: np.ndarray | None = None
    class_names: list[str] = field(default_factory=list)
    split: np.ndarray | None = None
    boxes: np.ndarray | None = None
    difficult: np.ndarray | None = None
    queries: list[Query] = field(default_factory=list)
    database: np.ndarray | None = None  # retrieval: indices of the searched images (default: all)
    metric: Metric | None = None  # how the benchmark is scored; None: the task's (DEFAULT_METRICS)
    protocol: str = ""
    paper_table: str = ""
    source: str = ""  # one of SOURCES: where the files came from

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"Dataset {self.name!r}: task {self.task!r} is not one of {TASKS}.")
        if self.source not in SOURCES:
            raise ValueError(f"Dataset {self.name!r}: source {self.source!r} is not one of {SOURCES}.")
        if self.metric is None:
            self.metric = DEFAULT_METRICS[self.task]
        if not isinstance(self.metric, Metric):
            raise TypeError(f"Dataset {self.name!r}: metric must be a course_utils.metrics.Metric (e.g. "
                            f"metrics.MEAN_AUC), not {self.metric!r}; the text of each is its .label.")
        self.paths = [Path(p) for p in self.paths]
        n = len(self.paths)
        if self.split is None:
            self.split = np.array(["db" if self.task == "retrieval" else "train"] * n)
        self.split = np.asarray(self.split)
        for name in ("labels", "split", "boxes", "difficult"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"Dataset {self.name!r}: {name} has {len(value)} rows for {n} images.")

    def __len__(self) -> int:
        return len(self.paths)

    def indices(self, *splits: str) -> np.ndarray:
        """Indices of the images in any of ``splits`` (e.g. ``rec.indices("train", "val")``)."""
        return np.flatnonzero(np.isin(self.split, splits))

    def subset(self, indices: np.ndarray | list[int]) -> DatasetRecord:
        """A record holding only ``indices`` (queries are dropped: they refer to the full index)."""
        idx = np.asarray(indices, dtype=int)

        def take(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else np.asarray(a)[idx]

        return DatasetRecord(
            name=self.name, task=self.task, root=self.root, paths=[self.paths[i] for i in idx],
            labels=take(self.labels), class_names=list(self.class_names), split=take(self.split),
            boxes=take(self.boxes), difficult=take(self.difficult), metric=self.metric,
            protocol=self.protocol, paper_table=self.paper_table, source=self.source,
        )


class DatasetMissingError(FileNotFoundError):
    """A dataset's files are not on disk; the message names the command that downloads them (or, with ``hint``,
    what else to do, e.g. for the shared data folder, which has no download)."""

    def __init__(self, name: str, root: Path, command: str | None = None, detail: str = "",
                 hint: str | None = None) -> None:
        command = command or f"python data_scripts/download.py {name}"
        advice = hint or f"Download it with: {command}"
        msg = f"Dataset {name!r} was not found under {root}. {detail}".rstrip() + f" {advice}"
        super().__init__(msg)
        self.name, self.root, self.command = name, root, command
