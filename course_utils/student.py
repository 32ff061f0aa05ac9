"""``python -m course_utils.student [NOTEBOOK...] [--out student] [--force]``: student notebooks from the sources.

The notebooks in ``notebooks/`` are the instructor version and the answer key: each exercise's reference solution
sits between nbgrader's markers (``### BEGIN SOLUTION`` / ``### END SOLUTION``, and ``<!-- ### BEGIN SOLUTION -->``
/ ``<!-- ### END SOLUTION -->`` around solution prose). The student version is made from them by nbgrader's own
preprocessors, the ones ``nbgrader generate_assignment`` runs, minus the gradebook database:

* ``LockCells``: exercise and check cells cannot be deleted, check cells not edited;
* ``ClearSolutions``: each solution region becomes ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` (code)
  or ``YOUR ANSWER HERE`` (prose);
* ``ClearOutput``, ``ClearHiddenTests``, ``ClearMarkScheme``: no outputs, hidden tests or mark schemes left;
* ``ComputeChecksums``: the checksums ``nbgrader validate`` compares; ``CheckCellMetadata``: nbgrader's validation.

Then every cell that is expected to raise while its exercise is unsolved (the check cells, and a solution cell
replaced whole by the stub) is tagged ``raises-exception``: nbval and nbclient then let it raise and run on, so a
student notebook runs top to bottom with its exercises unsolved, as CI checks (``make test``).

A student's work is never overwritten by accident: the output folder keeps a manifest of what was written, and a
notebook that changed since (a learner's answers) is kept unless ``--force`` is given.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .config import REPO_ROOT
from .datasets.images import atomic_path

SOURCE_DIR = REPO_ROOT / "notebooks"
DEFAULT_OUT = REPO_ROOT / "student"
MANIFEST = ".generated.json"
BEGIN, END = "BEGIN SOLUTION", "END SOLUTION"
RAISES = "raises-exception"
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"
COPIED_FILES = ("README.md",)  # the course map, so that its links work in the student folder too


class StudentVersionError(ValueError):
    """A source notebook cannot be turned into a student version; the message names the notebook and the cell."""


@dataclass(frozen=True)
class Written:
    """What happened to one output file: ``"written"``, ``"unchanged"`` or ``"kept"`` (changed by someone)."""

    path: Path
    outcome: str


def _nbgrader_preprocessors() -> list:
    """nbgrader's preprocessors in ``generate_assignment``'s order, less the database step (``SaveCells``) and the
    two that need a course's configuration to do anything (``IncludeHeaderFooter``, ``InstantiateTests``)."""
    try:
        from nbgrader.preprocessors import (
            CheckCellMetadata,
            ClearHiddenTests,
            ClearMarkScheme,
            ClearOutput,
            ClearSolutions,
            ComputeChecksums,
            LockCells,
        )
    except ImportError as error:
        raise ImportError(
            "Making student notebooks needs nbgrader: install the course's dev extra (pip install -e '.[dev]', "
            "which `make student` does) or `pip install nbgrader`."
        ) from error
    return [LockCells(), ClearSolutions(code_stub={"python": CODE_STUB}, text_stub=TEXT_STUB), ClearOutput(),
            ClearHiddenTests(), ClearMarkScheme(), ComputeChecksums(), CheckCellMetadata()]


def _nbgrader(cell: nbformat.NotebookNode) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def is_check_cell(cell: nbformat.NotebookNode) -> bool:
    """An autograder test: a code cell tagged ``check``, or one nbgrader grades without it being a solution."""
    tags = cell.get("metadata", {}).get("tags", [])
    meta = _nbgrader(cell)
    return cell.cell_type == "code" and ("check" in tags or (meta.get("grade") and not meta.get("solution")))


def solution_problems(notebook: nbformat.NotebookNode) -> list[str]:
    """Every misuse of the solution markers in ``notebook``, one sentence per cell (an empty list: all fine).

    nbgrader's ``ClearSolutions`` stops at the first of these with a bare ``RuntimeError`` (or, for a stray END
    marker, silently drops the line); this names the cell and says what to fix.
    """
    problems = []
    for index, cell in enumerate(notebook.cells):
        open_region, regions = False, 0
        for line in cell.source.splitlines():
            if BEGIN in line:
                if open_region:
                    problems.append(f"cell {index}: a second '{BEGIN}' before '{END}' (regions cannot nest)")
                open_region, regions = True, regions + 1
            elif END in line:
                if not open_region:
                    problems.append(f"cell {index}: '{END}' without a '{BEGIN}' above it")
                open_region = False
        if open_region:
            problems.append(f"cell {index}: '{BEGIN}' is never closed by a line with '{END}'")
        if regions and not _nbgrader(cell).get("solution"):
            problems.append(f"cell {index} holds a solution region but its metadata does not make it a solution "
                            "cell (metadata.nbgrader.solution must be true; see docs/teaching.md)")
    return problems


def _validate_metadata(notebook: nbformat.NotebookNode, name: str) -> None:
    """nbgrader's own validation of the cells' metadata, its reason kept (``CheckCellMetadata`` only logs it)."""
    from nbgrader.nbgraderformat import MetadataValidator, ValidationError

    try:
        MetadataValidator().validate_nb(notebook)
    except ValidationError as error:
        raise StudentVersionError(f"{name}: nbgrader rejects the cell metadata: {error.message}") from None


def student_notebook(notebook: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """The student version of ``notebook`` (a new object; ``notebook`` is not changed).

    ``name`` (usually the file name) is only used in error messages.
    """
    if problems := solution_problems(notebook):
        raise StudentVersionError(f"{name}: " + "; ".join(problems) + ".")
    preprocessors = _nbgrader_preprocessors()  # first, so that a missing nbgrader is explained
    result = copy.deepcopy(notebook)
    _validate_metadata(result, name)
    whole = {index for index, cell in enumerate(result.cells)
             if _nbgrader(cell).get("solution") and cell.cell_type == "code" and BEGIN not in cell.source}
    resources: dict = {}
    for preprocessor in preprocessors:
        try:
            result, resources = preprocessor.preprocess(result, resources)
        except Exception as error:  # nbgrader's ValidationError and RuntimeError carry their own explanation
            raise StudentVersionError(f"{name}: nbgrader's {type(preprocessor).__name__} refused the notebook: "
                                      f"{error}") from error
    for index, cell in enumerate(result.cells):
        if is_check_cell(cell) or index in whole:
            tags = cell.metadata.setdefault("tags", [])
            if RAISES not in tags:
                tags.append(RAISES)
    return result


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    """``data`` into ``path`` through a temporary file and a rename, with the umask's permissions."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def _read_manifest(folder: Path) -> dict[str, str]:
    path = folder / MANIFEST
    if not path.exists():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}  # unreadable: every differing notebook then counts as changed by someone, and is kept
    return manifest if isinstance(manifest, dict) else {}


def write_student_notebooks(sources: Iterable[Path], out: Path, force: bool = False) -> list[Written]:
    """Write the student version of each source notebook into ``out`` (created if needed), plus the course map.

    A notebook already in ``out`` is replaced only if nobody changed it since it was written here (the manifest
    records what was written) or ``force`` is true; otherwise it is kept, so a learner's answers survive a second
    ``make student``.
    """
    sources = [Path(source) for source in sources]
    notebooks = {source.name: student_notebook(nbformat.read(source, as_version=4), source.name)
                 for source in sources}  # every source converts before anything is written
    out.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(out)
    results = []
    for file_name, notebook in notebooks.items():
        text = nbformat.writes(notebook)
        data = (text if text.endswith("\n") else text + "\n").encode("utf-8")
        target = out / file_name
        outcome = "written"
        if target.exists():
            existing = _sha256(target.read_bytes())
            if existing == _sha256(data):
                outcome = "unchanged"
            elif existing != manifest.get(file_name) and not force:
                outcome = "kept"
        if outcome == "written":
            _write_atomic(target, data)
        if outcome != "kept":
            manifest[file_name] = _sha256(data)
        results.append(Written(target, outcome))
    for folder in sorted({source.parent for source in sources}):
        for file_name in COPIED_FILES:
            if (folder / file_name).is_file():
                _write_atomic(out / file_name, (folder / file_name).read_bytes())
    _write_atomic(out / MANIFEST, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode("utf-8"))
    return results


def select_notebooks(names: list[str], source_dir: Path = SOURCE_DIR) -> list[Path]:
    """Source notebooks named by number (``04``), range (``00-08``) or path; all of ``source_dir`` if none."""
    available = sorted(source_dir.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        if not available:
            raise FileNotFoundError(f"No notebooks (NN_name.ipynb) in {source_dir}.")
        return available
    chosen: list[Path] = []
    for name in names:
        if match := re.fullmatch(r"(\d{2})(?:-(\d{2}))?", name):
            low, high = int(match[1]), int(match[2] or match[1])
            picked = [path for path in available if low <= int(path.name[:2]) <= high]
            if not picked:
                raise FileNotFoundError(f"No notebook numbered {name} in {source_dir}; there are "
                                        f"{', '.join(path.name[:2] for path in available)}.")
            chosen += picked
        elif Path(name).is_file():
            chosen.append(Path(name))
        else:
            raise FileNotFoundError(f"{name!r} is neither a notebook file nor a number like 04 or 00-08.")
    return list(dict.fromkeys(chosen))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``student`` command."""
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                        help="numbers (04), ranges (00-08) or paths of source notebooks (default: all in notebooks/)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder for the student notebooks (default: student/ beside notebooks/, so that "
                             "their links to ../docs work)")
    parser.add_argument("--force", action="store_true",
                        help="also overwrite student notebooks changed since they were written (a learner's work)")


def run(args: argparse.Namespace) -> int:
    """Write the student notebooks and say what happened to each; exit status 1 when a source is malformed."""
    try:
        results = write_student_notebooks(select_notebooks(args.notebooks), args.out, force=args.force)
    except (StudentVersionError, FileNotFoundError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for result in results:
        print(f"{result.outcome:>9}  {result.path}")
    if kept := [result.path.name for result in results if result.outcome == "kept"]:
        print(f"Kept {len(kept)} notebook(s) changed since they were written (a learner's answers?): "
              f"{', '.join(kept)}. Use --force (make student FORCE=1) to replace them.")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m course_utils.student``: the command line until it is a ``python -m course_utils`` command."""
    parser = argparse.ArgumentParser(prog="python -m course_utils.student", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
