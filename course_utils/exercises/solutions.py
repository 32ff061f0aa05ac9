"""Read the exercises out of a notebook: the reference solutions (instructor version) or the learner's stubs.

An exercise cell is a code cell holding nbgrader's ``### BEGIN SOLUTION`` marker; it defines one function, named
like its exercise. :func:`exercise_functions` runs those cells (and only those) in a fresh namespace that has
``np`` and ``cu`` imported, as the notebooks do, and returns the functions they define. The tests use it to check
that every reference solution passes its checker, so the solution in the notebook is the one that is tested.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def exercise_cells(notebook: str | Path) -> list[str]:
    """The source of every code cell of ``notebook`` (an ``.ipynb`` path) that holds a solution marker."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    sources = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
    return [source for source in sources if BEGIN in source]


def exercise_functions(notebook: str | Path) -> dict[str, Callable]:
    """Name -> function for every function defined by the exercise cells of ``notebook``."""
    import course_utils

    functions: dict[str, Callable] = {}
    for source in exercise_cells(notebook):
        namespace: dict[str, object] = {"np": np, "cu": course_utils}
        exec(compile(source, f"{Path(notebook).name}:exercise", "exec"), namespace)  # noqa: S102 - our own notebook
        functions.update({name: value for name, value in namespace.items()
                          if callable(value) and getattr(value, "__module__", None) is None
                          and not name.startswith("_")})
    return functions
