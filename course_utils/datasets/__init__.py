"""Dataset loaders: one function per benchmark, all returning :class:`~course_utils.datasets.base.DatasetRecord`.

``load(name)`` dispatches by name; ``load("folder:PATH")`` reads any folder with one sub-folder per class.
Loaders are imported lazily so that ``import course_utils`` stays fast.

Where data comes from: one rule everywhere
------------------------------------------
Every notebook and command picks a real set's files the same way (:func:`~.specs.locate`): the **shared copy**
(``<shared data folder>/<copy>``), else the **downloaded copy** (``python data_scripts/download.py NAME``), else,
through :func:`load_preferred`, an **embedded demo set**. What was used is announced in one line, e.g.
``Data: flowers17 — shared copy, /data/oxford_flowers17 (1,360 images)``; when it is the demo set, the line gives
the command that downloads the real one. ``record.source`` keeps the answer.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from pathlib import Path

from . import specs, subsets  # noqa: F401 - subsets: cu.datasets.subsets in notebooks, no import needed
from .base import DatasetMissingError, DatasetRecord, Query


def available() -> list[str]:
    """Names that :func:`load` accepts (plus ``folder:PATH``): one per :data:`specs.SPECS` record."""
    return sorted(specs.SPECS)


def loader(name: str) -> Callable[..., DatasetRecord]:
    """The loader function of dataset ``name``: its spec's ``loader`` (``"module:function"`` in this package)."""
    if name not in specs.SPECS:
        raise KeyError(f"Unknown dataset {name!r}. Known: {', '.join(available())}, or folder:PATH, "
                       "retrieval-folder:PATH.")
    module, func = specs.SPECS[name].loader.split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), func)


def load(name: str, **kwargs) -> DatasetRecord:
    """Load dataset ``name`` (see :func:`available`), ``folder:PATH`` for a folder of class sub-folders, or
    ``retrieval-folder:PATH`` for a folder of photo groups searched Holidays-style
    (:func:`~.folder.retrieval_folder`)."""
    if name.startswith("folder:"):
        from .folder import image_folder

        return image_folder(name.split(":", 1)[1], **kwargs)
    if name.startswith("retrieval-folder:"):
        from .folder import retrieval_folder

        return retrieval_folder(name.split(":", 1)[1], **kwargs)
    return loader(name)(**kwargs)


def _load_located(name: str, kwargs: dict) -> DatasetRecord | None:
    """``name`` loaded from where the rule finds it (``record.source`` set), or None when it is not here."""
    if name.startswith("folder:"):
        return load(name, **kwargs) if Path(name.split(":", 1)[1]).expanduser().is_dir() else None
    if name.startswith("retrieval-folder:"):  # a folder the user named: a missing one is an error naming it
        return load(name, **kwargs)
    if specs.get(name).kind == "builtin":
        record = load(name, **kwargs)
        record.source = "embedded"
        return record
    if (found := specs.locate(name)) is None:
        return None
    record = load(name, root=found.root, **kwargs)
    record.source = found.source
    return record


def _not_here(missing: Sequence[str]) -> str:
    """"flowers17 is not on this machine; to get it: python data_scripts/download.py flowers17" (or plural)."""
    commands = ", ".join(specs.get(n).download_command if not n.startswith("folder:") else f"create {n[7:]}"
                         for n in missing)
    if len(missing) == 1:
        return f"{missing[0]} is not on this machine; to get it: {commands}"
    return f"{', '.join(missing[:-1])} and {missing[-1]} are not on this machine; to get them: {commands}"


def describe(record: DatasetRecord, missing: Sequence[str] = ()) -> str:
    """The one line announcing which data a notebook or command uses (``missing``: names tried before it)."""
    if record.source == "embedded":
        detail = _not_here(missing) if missing else f"{len(record):,} images"
        return f"Data: {record.name} — embedded demo set ({detail})"
    what = {"shared": "shared copy", "downloaded": "downloaded copy"}.get(record.source, "folder")
    root = str(record.root)
    home = str(Path.home())
    if root == home or root.startswith(home + "/"):
        root = "~" + root[len(home):]
    tail = f"; {_not_here(missing)}" if missing else ""
    return f"Data: {record.name} — {what}, {root} ({len(record):,} images{tail})"


def _load_first(candidates: Sequence[tuple[str, dict]]) -> DatasetRecord:
    """The first candidate ``(name, loader kwargs)`` found by the rule, announced in one line."""
    missing: list[str] = []
    for name, kwargs in candidates:
        record = _load_located(name, kwargs)
        if record is not None:
            print(describe(record, missing))
            return record
        missing.append(name)
    last = candidates[-1][0]
    if last.startswith("folder:"):
        raise DatasetMissingError(last, Path(last[7:]).expanduser(), hint="Check the path.")
    raise specs.missing_error(last)


def load_preferred(name: str, fallback: str, **kwargs) -> DatasetRecord:
    """``name`` from its shared copy, else its downloaded copy, else the embedded demo set ``fallback``.

    Prints exactly one line naming what is used, e.g. ``Data: flowers17 — shared copy, /data/oxford_flowers17
    (1,360 images)`` or ``Data: demo_classes — embedded demo set (flowers17 is not on this machine; to get it:
    python data_scripts/download.py flowers17)``. ``kwargs`` go to ``name``'s loader only (the demo set takes
    its defaults). The record's ``source`` is ``"shared"``, ``"downloaded"`` or ``"embedded"``. Errors of a copy
    that is present but damaged are raised, never hidden behind the demo set.
    """
    return _load_first([(name, kwargs), (fallback, {})])


def load_first_available(names: Sequence[str], **kwargs) -> DatasetRecord:
    """The first of ``names`` on this machine by the same rule (``kwargs`` to every loader), announced in one line.

    Raises the last name's :class:`DatasetMissingError` (which says how to get it) when none is here.
    """
    if not names:
        raise ValueError("load_first_available needs at least one dataset name, e.g. ['flowers17', 'demo_classes'].")
    return _load_first([(name, kwargs) for name in names])


def load_if_present(name: str, **kwargs) -> DatasetRecord | None:
    """``name`` by the rule (shared copy, else download), announced in one line; None, also announced, if absent.

    For optional real sets that a notebook or command skips when they are not on the machine.
    """
    record = _load_located(name, kwargs)
    print(describe(record) if record is not None else f"Data: {name} — skipped ({_not_here([name])})")
    return record


__all__ = ["DatasetMissingError", "DatasetRecord", "Query", "available", "describe", "load", "load_first_available",
           "load_if_present", "load_preferred", "loader"]
