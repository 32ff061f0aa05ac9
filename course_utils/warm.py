"""``python -m course_utils warm``: compute, before class, everything the notebooks will extract.

    python -m course_utils warm [--notebooks 00-08] [--profile demo] [--cache DIR] [--keep DIR]

The simplest honest way to know what the notebooks extract is to run them: each selected notebook is executed
headlessly with papermill (``PROFILE`` set to ``--profile``), in a temporary folder, with the same
``COURSE_CACHE_DIR``, so every feature, demo set and exported network it needs lands in the cache. A progress bar
follows the cells of each notebook; then each notebook's time, the cache's size and the total time are printed.
A notebook that fails is reported (its executed copy kept, showing the failing cell) and the others still run;
the exit status is then 1.

For a class: warm a folder once, then give every student ``COURSE_SHARED_CACHE=<that folder>`` (read-only is
enough). Their notebooks read the features from it and compute only what it lacks into their own cache
(:mod:`course_utils.features`). ``COURSE_SHARED_CACHE`` is ignored while warming: everything goes into the cache
being warmed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from . import config

NOTEBOOKS_DIR = config.REPO_ROOT / "notebooks"
_NUMBERED = re.compile(r"^(\d{2})_.*\.ipynb$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--notebooks", default="00-08",
                        help="numbers of the notebooks to run: a range, a list or both, e.g. 00-08, 02,05, 02-04,07 "
                             "(default 00-08: all)")
    parser.add_argument("--profile", default=None, choices=sorted(config.PROFILES),
                        help="the notebooks' PROFILE (default: $COURSE_PROFILE or demo)")
    parser.add_argument("--cache", default=None,
                        help="the cache folder to warm (default: $COURSE_CACHE_DIR or ~/.cache/off-the-shelf)")
    parser.add_argument("--notebook-dir", default=str(NOTEBOOKS_DIR),
                        help="folder of the numbered notebooks (default: the course's notebooks/)")
    parser.add_argument("--keep", default=None,
                        help="folder where the executed notebooks are kept (default: thrown away unless one fails)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in a log file)")


def select_notebooks(selection: str, folder: Path) -> list[Path]:
    """The notebooks of ``folder`` whose two-digit numbers ``selection`` names (``"00-08"``, ``"2,5"``, ``"02-04,07"``),
    in order. Raises ``ValueError`` naming what is wrong and the numbers that exist."""
    found = {int(m.group(1)): path for path in folder.glob("*.ipynb") if (m := _NUMBERED.match(path.name))}
    if not found:
        raise ValueError(f"No numbered notebooks (NN_name.ipynb) in {folder}.")
    have = ", ".join(f"{n:02d}" for n in sorted(found))
    numbers: set[int] = set()
    for part in selection.replace(" ", "").split(","):
        m = re.fullmatch(r"(\d{1,2})(?:-(\d{1,2}))?", part)
        if not m:
            raise ValueError(f"--notebooks {selection!r}: {part!r} is not a number or a range like 00-08.")
        first, last = int(m.group(1)), int(m.group(2) or m.group(1))
        if last < first:
            raise ValueError(f"--notebooks {selection!r}: the range {part} runs backwards.")
        numbers.update(range(first, last + 1))
    missing = sorted(numbers - set(found))
    if missing:
        raise ValueError(f"--notebooks {selection!r}: no notebook numbered {', '.join(f'{n:02d}' for n in missing)} "
                         f"in {folder}; there are {have}.")
    return [found[n] for n in sorted(numbers)]


def cache_size(root: Path) -> tuple[int, int]:
    """``(bytes, files)`` of the regular files under ``root`` (links not followed)."""
    total = count = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                total += os.path.getsize(path)
                count += 1
    return total, count


def warm(notebooks: list[Path], profile: str, keep: Path | None = None, progress: bool = True) -> dict[str, float | str]:
    """Execute ``notebooks`` with ``PROFILE=profile``, one after the other, each in a temporary working folder.

    Returns each notebook's name mapped to its time in seconds, or to the error text when it failed. The executed
    copies go to ``keep`` when given; a failed one is always kept (beside the others, or in a folder printed).
    """
    try:
        import papermill
    except ImportError as err:  # a dev extra: `pip install -e .[dev]` (make setup) installs it
        raise RuntimeError("python -m course_utils warm runs the notebooks with papermill, which is not installed: "
                           "pip install papermill (or make setup).") from err
    results: dict[str, float | str] = {}
    out_dir = keep or Path(tempfile.mkdtemp(prefix="course-warm-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = False
    for i, notebook in enumerate(notebooks, 1):
        output = out_dir / notebook.name
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="course-warm-cwd-") as cwd:
            try:
                papermill.execute_notebook(
                    str(notebook), str(output), parameters={"PROFILE": profile}, cwd=cwd,
                    progress_bar={"desc": f"[{i}/{len(notebooks)}] {notebook.stem}", "file": sys.stderr,
                                  "disable": not progress, "leave": False},
                )
            except Exception as err:  # PapermillExecutionError and kernel failures alike: report, go on
                failed = True
                what = f"{err.ename}: {err.evalue}" if hasattr(err, "ename") else f"{type(err).__name__}: {err}"
                results[notebook.name] = f"{what} (executed copy: {output})"
                continue
        results[notebook.name] = time.perf_counter() - started
    if keep is None and not failed:
        shutil.rmtree(out_dir, ignore_errors=True)
    return results


def run(args: argparse.Namespace) -> int:
    if args.cache:
        os.environ["COURSE_CACHE_DIR"] = str(Path(args.cache).expanduser().resolve())
    if os.environ.pop("COURSE_SHARED_CACHE", None):
        print("warm: COURSE_SHARED_CACHE is ignored while warming (everything goes into the cache being warmed).")
    profile = config.profile(args.profile).name
    os.environ["COURSE_PROFILE"] = profile
    try:
        notebooks = select_notebooks(args.notebooks, Path(args.notebook_dir))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    root = config.cache_dir()
    print(f"warm: {len(notebooks)} notebook(s), profile {profile}, cache {root}")
    started = time.perf_counter()
    try:
        results = warm(notebooks, profile, Path(args.keep) if args.keep else None, progress=not args.no_progress)
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    total = time.perf_counter() - started
    width = max(len(name) for name in results)
    for name, outcome in results.items():
        print(f"  {name:<{width}}  " + (f"{outcome:7.1f} s" if isinstance(outcome, float) else f"FAILED: {outcome}"))
    size, files = cache_size(root)
    print(f"cache {root}: {size / 2**20:.1f} MiB in {files} files; total time {total:.1f} s")
    failures = [name for name, outcome in results.items() if isinstance(outcome, str)]
    if failures:
        print(f"warm: {len(failures)} notebook(s) failed: {', '.join(failures)}; their features may be missing.",
              file=sys.stderr)
        return 1
    print(f"For a class: make this folder readable to the students and set COURSE_SHARED_CACHE={root} for them.")
    return 0
