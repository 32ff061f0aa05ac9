"""Student notebooks from the instructor ones (course_utils/student.py), the nbgrader round trip, slide breaks.

The student version must hide every solution, keep everything else, and still run top to bottom with its
exercises unsolved. These tests check it on a small notebook built here (every rule, each error) and on the
course's notebooks; ``make test`` then executes the real student notebooks under nbval.
"""

from __future__ import annotations

import copy
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course_utils import student
from course_utils.config import REPO_ROOT
from course_utils.slides import HeadingSlides, slide_type
from course_utils.student import CODE_STUB, RAISES, TEXT_STUB, StudentVersionError, student_notebook

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
REFERENCE_BODY = ["    unit = x / np.linalg.norm(x, axis=1, keepdims=True)",
                  "    powered = np.sign(unit) * np.abs(unit) ** alpha",
                  "    return powered / np.linalg.norm(powered, axis=1, keepdims=True)"]
DISCUSSION = "Powering flattens the few large activations, so many weak cues add up."
LOCK_KEYS = {"deletable", "editable"}
NBGRADER_ADDED = {"checksum", "cell_type"}


def _nbgrader(grade_id: str, **fields: object) -> dict:
    meta = {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3, "solution": False,
            "task": False}
    return {**meta, **fields}


def synthetic_notebook() -> nbformat.NotebookNode:
    """An instructor notebook in the course's exercise pattern: exercise, check, discussion, then a later cell."""
    notebook = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                     "language": "python"}})
    parameters = new_code_cell("ALPHA = 0.5")
    parameters.metadata["tags"] = ["parameters"]
    exercise = new_code_cell("\n".join([
        "def signed_power_l2(x, alpha):",
        '    """Rows L2-normalised, signed power alpha, L2 again."""',
        "    ### BEGIN SOLUTION", *REFERENCE_BODY, "    ### END SOLUTION",
    ]))
    exercise.metadata = {"tags": ["exercise"], "nbgrader": _nbgrader("nb99-signed_power_l2", solution=True)}
    check = new_code_cell("cu.exercises.check(signed_power_l2)")
    check.metadata = {"tags": ["check"], "nbgrader": _nbgrader("nb99-signed_power_l2-check", grade=True,
                                                                 locked=True, points=1)}
    discussion = new_markdown_cell(f"**What this shows.**\n<!-- ### BEGIN SOLUTION -->\n{DISCUSSION}\n"
                                   "<!-- ### END SOLUTION -->")
    discussion.metadata = {"tags": ["solution"], "nbgrader": _nbgrader("nb99-signed_power_l2-discussion",
                                                                       grade=True, solution=True, points=0)}
    imports = new_code_cell("import numpy as np\nimport course_utils as cu")
    imports.outputs = [new_output("stream", name="stdout", text="old output\n")]
    imports.execution_count = 3
    notebook.cells = [
        new_markdown_cell("# 99 · A synthetic lab"), parameters, imports,
        new_markdown_cell("### Exercise 99.1: signed power + L2\nWrite `signed_power_l2(x, alpha)`."),
        exercise, check, discussion,
        new_code_cell("later = cu.normalize.make_normalizer(power=ALPHA)\nprint('later cells still run')"),
    ]
    for number, cell in enumerate(notebook.cells):
        cell.id = f"cell-{number}"  # fixed, so two calls build equal notebooks
    return notebook


def _split(source: str) -> tuple[list[str], list[str], list[str]]:
    """Lines of a cell: (before and after the solution region, inside it, the stubbed source's lines)."""
    public, secret, stubbed, inside = [], [], [], False
    for line in source.splitlines():
        if "BEGIN SOLUTION" in line:
            inside = True
            stubbed.append(line[: len(line) - len(line.lstrip())] + "\0")
        elif "END SOLUTION" in line:
            inside = False
        elif inside:
            secret.append(line)
        else:
            public.append(line)
            stubbed.append(line)
    return public, secret, stubbed


def _expected_stub(cell: nbformat.NotebookNode) -> str:
    """The source nbgrader's ClearSolutions must produce, written out independently of it."""
    stub = CODE_STUB if cell.cell_type == "code" else TEXT_STUB
    _, secret, stubbed = _split(cell.source)
    if not secret and "BEGIN SOLUTION" not in cell.source:
        return stub
    lines = []
    for line in stubbed:
        if line.endswith("\0"):
            lines += [line[:-1] + stub_line for stub_line in stub.splitlines()]
        else:
            lines.append(line)
    return "\n".join(lines)


def _without_student_additions(metadata: dict) -> dict:
    """Cell metadata less what the student version adds: locks, nbgrader's checksum and the raises tag."""
    metadata = copy.deepcopy(dict(metadata))
    for key in LOCK_KEYS:
        metadata.pop(key, None)
    for key in NBGRADER_ADDED:
        metadata.get("nbgrader", {}).pop(key, None)
    if RAISES in metadata.get("tags", []):
        metadata["tags"] = [tag for tag in metadata["tags"] if tag != RAISES]
    return metadata


def student_problems(source: nbformat.NotebookNode, version: nbformat.NotebookNode) -> list[str]:
    """Every way ``version`` fails to be the student version of ``source``, as sentences (empty: it is)."""
    if [cell.get("id") for cell in source.cells] != [cell.get("id") for cell in version.cells]:
        return ["the cells (by id) differ from the source's"]
    problems = []
    public = {line.strip() for cell in source.cells for line in _split(cell.source)[0]}
    secret = {line.strip() for cell in source.cells for line in _split(cell.source)[1]} - public - {""}
    for index, (original, new) in enumerate(zip(source.cells, version.cells, strict=True)):
        meta = original.metadata.get("nbgrader", {})
        is_check = "check" in original.metadata.get("tags", []) or (meta.get("grade") and not meta.get("solution"))
        if new.cell_type != original.cell_type:
            problems.append(f"cell {index} changed type")
        if new.cell_type == "code" and (new.outputs or new.execution_count is not None):
            problems.append(f"cell {index} keeps outputs or an execution count")
        if "SOLUTION" in new.source:
            problems.append(f"cell {index} still has a solution marker")
        if leaked := [line for line in new.source.splitlines() if line.strip() in secret]:
            problems.append(f"cell {index} shows reference lines: {leaked}")
        if meta.get("solution"):
            if new.source != _expected_stub(original):
                problems.append(f"cell {index}: the solution is not replaced by the stub:\n{new.source}")
        elif new.source != original.source:
            problems.append(f"cell {index} (not a solution) changed its source")
        if is_check and RAISES not in new.metadata.get("tags", []):
            problems.append(f"check cell {index} is not tagged {RAISES}")
        if meta:
            if _without_student_additions(new.metadata) != original.metadata:
                problems.append(f"cell {index}: metadata changed beyond locks, checksum and tags")
        elif new.metadata != original.metadata:
            problems.append(f"cell {index} (no exercise) changed its metadata")
    return problems


# --- the synthetic notebook: each rule ---------------------------------------------------------------------------


def test_the_synthetic_student_version_follows_every_rule() -> None:
    source = synthetic_notebook()
    assert student_problems(source, student_notebook(source)) == []


def test_the_solution_becomes_nbgraders_stub_inside_the_function() -> None:
    cells = student_notebook(synthetic_notebook()).cells
    assert cells[4].source == ('def signed_power_l2(x, alpha):\n'
                               '    """Rows L2-normalised, signed power alpha, L2 again."""\n'
                               '    # YOUR CODE HERE\n'
                               '    raise NotImplementedError()')
    assert cells[6].source == "**What this shows.**\nYOUR ANSWER HERE"


def test_check_cells_are_tagged_locked_and_unchanged() -> None:
    source = synthetic_notebook()
    check = student_notebook(source).cells[5]
    assert check.source == source.cells[5].source
    assert check.metadata["tags"] == ["check", RAISES]
    assert check.metadata["editable"] is False and check.metadata["deletable"] is False
    assert len(check.metadata["nbgrader"]["checksum"]) == 32


def test_cells_outside_the_exercises_are_unchanged_except_their_outputs() -> None:
    source = synthetic_notebook()
    version = student_notebook(source)
    for index in (0, 1, 3, 7):
        assert version.cells[index] == source.cells[index]
    assert version.cells[2].source == source.cells[2].source and version.cells[2].metadata == {}
    assert version.cells[2].outputs == [] and version.cells[2].execution_count is None


def test_the_source_notebook_is_left_alone() -> None:
    source = synthetic_notebook()
    before = copy.deepcopy(source)
    student_notebook(source)
    assert source == before


def test_a_solution_cell_without_markers_is_replaced_whole_and_expected_to_raise() -> None:
    source = synthetic_notebook()
    source.cells[4].source = "answer = 42"
    version = student_notebook(source)
    assert version.cells[4].source == CODE_STUB
    assert RAISES in version.cells[4].metadata["tags"]
    assert student_problems(source, version) == []


def test_the_problem_finder_catches_a_leak() -> None:
    source = synthetic_notebook()
    leaky = student_notebook(source)
    leaky.cells[7].source += "\n" + REFERENCE_BODY[1]
    problems = student_problems(source, leaky)
    assert any("shows reference lines" in problem and "powered = np.sign" in problem for problem in problems)
    assert "cell 7 (not a solution) changed its source" in problems


@pytest.mark.parametrize(("edit", "message"), [
    (lambda cells: setattr(cells[4], "source", cells[4].source.replace("    ### END SOLUTION", "")),
     "cell 4: 'BEGIN SOLUTION' is never closed by a line with 'END SOLUTION'"),
    (lambda cells: setattr(cells[4], "source", cells[4].source.replace("    unit =", "    ### BEGIN SOLUTION\n"
                                                                                   "    unit =")),
     "cell 4: a second 'BEGIN SOLUTION' before 'END SOLUTION' (regions cannot nest)"),
    (lambda cells: setattr(cells[7], "source", cells[7].source + "\n# END SOLUTION"),
     "cell 7: 'END SOLUTION' without a 'BEGIN SOLUTION' above it"),
    (lambda cells: cells[4].metadata.pop("nbgrader"),
     "cell 4 holds a solution region but its metadata does not make it a solution cell"),
])
def test_misused_markers_are_named_with_their_cell(edit, message) -> None:
    source = synthetic_notebook()
    edit(source.cells)
    with pytest.raises(StudentVersionError, match=r"^lab\.ipynb: .*" + message.replace("(", r"\(")
                       .replace(")", r"\)")):
        student_notebook(source, "lab.ipynb")


def test_nbgraders_own_validation_reason_is_passed_on() -> None:
    source = synthetic_notebook()
    source.cells[6].metadata["nbgrader"].update(grade=False)
    source.cells[6].metadata["nbgrader"].pop("points")
    with pytest.raises(StudentVersionError, match=r"lab\.ipynb: nbgrader rejects the cell metadata: Markdown "
                                                  r"solution cell is not marked as a grade cell"):
        student_notebook(source, "lab.ipynb")
    source = synthetic_notebook()
    source.cells[5].metadata["nbgrader"].pop("points")
    with pytest.raises(StudentVersionError, match=r"nbgrader cell 'nb99-signed_power_l2-check' does not have "
                                                  r"points"):
        student_notebook(source, "lab.ipynb")


def test_without_nbgrader_the_error_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nbgrader.preprocessors", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"Making student notebooks needs nbgrader: install the course's dev extra"):
        student_notebook(synthetic_notebook())


# --- writing the files -----------------------------------------------------------------------------------------


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nbformat.write(synthetic_notebook(), folder / "99_synthetic.ipynb")
    (folder / "README.md").write_text("# Course map\n[99](99_synthetic.ipynb)\n", encoding="utf-8")
    return folder


def test_written_notebooks_are_the_student_version_with_the_course_map(source_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "student"
    results = student.write_student_notebooks([source_dir / "99_synthetic.ipynb"], out)
    assert [(r.path, r.outcome) for r in results] == [(out / "99_synthetic.ipynb", "written")]
    written = nbformat.read(out / "99_synthetic.ipynb", as_version=4)
    assert student_problems(synthetic_notebook(), written) == []
    assert (out / "README.md").read_text(encoding="utf-8") == (source_dir / "README.md").read_text(encoding="utf-8")
    assert sorted(path.name for path in out.iterdir()) == [".generated.json", "99_synthetic.ipynb", "README.md"]
    mode = stat.S_IMODE((out / "99_synthetic.ipynb").stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask, oct(mode)  # readable by the class, not the temporary file's 0600


def test_a_learners_edits_survive_a_second_run_unless_forced(source_dir: Path, tmp_path: Path) -> None:
    out, source = tmp_path / "student", [source_dir / "99_synthetic.ipynb"]
    student.write_student_notebooks(source, out)
    assert [r.outcome for r in student.write_student_notebooks(source, out)] == ["unchanged"]

    target = out / "99_synthetic.ipynb"
    answer = target.read_text(encoding="utf-8").replace("raise NotImplementedError()", "return x  # my answer")
    target.write_text(answer, encoding="utf-8")
    assert [r.outcome for r in student.write_student_notebooks(source, out)] == ["kept"]
    assert target.read_text(encoding="utf-8") == answer
    assert [r.outcome for r in student.write_student_notebooks(source, out, force=True)] == ["written"]
    assert "my answer" not in target.read_text(encoding="utf-8")


def test_an_updated_source_replaces_an_untouched_copy(source_dir: Path, tmp_path: Path) -> None:
    out, path = tmp_path / "student", source_dir / "99_synthetic.ipynb"
    student.write_student_notebooks([path], out)
    notebook = nbformat.read(path, as_version=4)
    notebook.cells[3].source += "\nA clearer hint."
    nbformat.write(notebook, path)
    assert [r.outcome for r in student.write_student_notebooks([path], out)] == ["written"]
    assert "A clearer hint." in (out / "99_synthetic.ipynb").read_text(encoding="utf-8")
    manifest = json.loads((out / ".generated.json").read_text(encoding="utf-8"))
    assert list(manifest) == ["99_synthetic.ipynb"] and len(manifest["99_synthetic.ipynb"]) == 64


def test_a_malformed_source_writes_nothing(source_dir: Path, tmp_path: Path) -> None:
    bad = synthetic_notebook()
    bad.cells[4].source = bad.cells[4].source.replace("    ### END SOLUTION", "")
    nbformat.write(bad, source_dir / "98_bad.ipynb")
    out = tmp_path / "student"
    with pytest.raises(StudentVersionError, match="98_bad.ipynb: cell 4: 'BEGIN SOLUTION' is never closed"):
        student.write_student_notebooks(sorted(source_dir.glob("*.ipynb")), out)
    assert not out.exists()


def test_notebooks_are_chosen_by_number_range_or_path(source_dir: Path) -> None:
    nbformat.write(synthetic_notebook(), source_dir / "07_other.ipynb")
    everything = [source_dir / "07_other.ipynb", source_dir / "99_synthetic.ipynb"]
    assert student.select_notebooks([], source_dir) == everything
    assert student.select_notebooks(["00-08"], source_dir) == everything[:1]
    assert student.select_notebooks(["99", "07", "99"], source_dir) == everything[::-1]
    assert student.select_notebooks([str(everything[0])], source_dir) == everything[:1]
    with pytest.raises(FileNotFoundError, match=r"No notebook numbered 42 in .*; there are 07, 99\."):
        student.select_notebooks(["42"], source_dir)
    with pytest.raises(FileNotFoundError, match=r"'seven' is neither a notebook file nor a number like 04"):
        student.select_notebooks(["seven"], source_dir)


def test_the_command_reports_each_file_and_fails_on_a_bad_source(source_dir: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "student"
    assert student.main([str(source_dir / "99_synthetic.ipynb"), "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"  written  {out / '99_synthetic.ipynb'}\n"
    bad = synthetic_notebook()
    bad.cells[5].metadata["nbgrader"].pop("grade_id")
    nbformat.write(bad, source_dir / "98_bad.ipynb")
    assert student.main([str(source_dir / "98_bad.ipynb"), "--out", str(out)]) == 1
    assert capsys.readouterr().err.startswith("error: 98_bad.ipynb: nbgrader rejects the cell metadata: nbgrader "
                                              "cell does not have a grade_id")


# --- running: the student version runs top to bottom, the check says "not done" ----------------------------------


def _execute(notebook: nbformat.NotebookNode, folder: Path) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    executed = copy.deepcopy(notebook)
    NotebookClient(executed, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()  # raises on an untagged error
    return executed


def _text(cell: nbformat.NotebookNode) -> str:
    return "".join(output.get("text", "") for output in cell.outputs if output.output_type == "stream")


@pytest.mark.slow
def test_the_student_version_runs_to_the_end_and_its_check_says_not_done(tmp_path: Path) -> None:
    source = synthetic_notebook()
    executed = _execute(student_notebook(source), tmp_path)
    errors = [output for output in executed.cells[5].outputs if output.output_type == "error"]
    assert [error.ename for error in errors] == ["ExerciseNotDone"]
    assert "not done yet. Replace `raise NotImplementedError()` in signed_power_l2" in errors[0].evalue
    assert _text(executed.cells[7]) == "later cells still run\n"

    instructor = _execute(source, tmp_path)
    assert re.fullmatch(r"\u2713 signed power \+ L2: all \d+ checks passed\.\n", _text(instructor.cells[5]))


# --- nbgrader itself: generate_assignment gives the same notebooks, autograde scores them ------------------------


def _nbgrader_cli(course: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True,
                          text=True, timeout=300)


def _release(course: Path, assignment: str, notebooks: dict[str, nbformat.NotebookNode]) -> Path:
    """``nbgrader generate_assignment`` on ``notebooks`` in a new course folder; the release folder."""
    source = course / "source" / assignment
    source.mkdir(parents=True)
    for name, notebook in notebooks.items():
        nbformat.write(notebook, source / name)
    result = _nbgrader_cli(course, "generate_assignment", assignment)
    assert result.returncode == 0, result.stderr[-3000:]
    return course / "release" / assignment


def _untagged(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``notebook`` without the raises-exception tags (the one thing the student version adds to nbgrader's)."""
    notebook = copy.deepcopy(notebook)
    for cell in notebook.cells:
        tags = cell.metadata.get("tags")
        if tags and RAISES in tags:
            tags.remove(RAISES)
    return notebook


@pytest.mark.slow
def test_nbgrader_generate_assignment_and_autograde_agree_with_the_student_version(tmp_path: Path) -> None:
    pytest.importorskip("nbgrader", reason="nbgrader is not installed (pip install -e '.[dev]')")
    course, source = tmp_path / "course", synthetic_notebook()
    release = _release(course, "lab", {"99_synthetic.ipynb": source})
    released = nbformat.read(release / "99_synthetic.ipynb", as_version=4)
    assert released == _untagged(student_notebook(source))

    for learner, notebook in (("ada", source), ("bob", student_notebook(source))):  # solved / left as stubs
        assert _nbgrader_cli(course, "db", "student", "add", learner).returncode == 0
        submitted = course / "submitted" / learner / "lab"
        submitted.mkdir(parents=True)
        nbformat.write(notebook, submitted / "99_synthetic.ipynb")
    result = _nbgrader_cli(course, "autograde", "lab")
    assert result.returncode == 0, result.stderr[-3000:]

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        scores = {learner: gradebook.find_submission("lab", learner).score for learner in ("ada", "bob")}
    assert scores == {"ada": 1.0, "bob": 0.0}


@pytest.mark.slow
def test_nbgrader_accepts_the_course_notebooks_and_releases_our_student_version(tmp_path: Path) -> None:
    pytest.importorskip("nbgrader", reason="nbgrader is not installed (pip install -e '.[dev]')")
    sources = {path.name: nbformat.read(path, as_version=4) for path in NOTEBOOKS}
    release = _release(tmp_path / "course", "course", sources)
    for name, source in sources.items():
        assert nbformat.read(release / name, as_version=4) == _untagged(student_notebook(source, name)), name


# --- the course's notebooks --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_each_course_notebook_has_a_correct_student_version(path: Path) -> None:
    source = nbformat.read(path, as_version=4)
    version = student_notebook(source, path.name)
    assert any(cell.metadata.get("nbgrader", {}).get("solution") for cell in source.cells), \
        f"{path.name} has no exercise cell (metadata.nbgrader.solution): nothing for a student to do"
    assert student_problems(source, version) == [], path.name


def test_the_teaching_guide_lists_every_exercise_and_counts_the_concept_checks() -> None:
    guide = (REPO_ROOT / "docs" / "teaching.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip()[1:3]: line for line in guide.splitlines()
            if re.match(r"^\| \[\d\d ", line)}
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        titles = [match.group(1) for cell in cells if cell.cell_type == "markdown"
                  for match in [re.match(r"### Exercise (\d+\.\d+: .+)", cell.source)] if match]
        row = rows.get(path.name[:2], "")
        for title in titles:
            assert title.replace(":", "") in row, f"docs/teaching.md does not list {path.name[:2]}'s {title!r}"
        count = sum("concept-check" in cell.metadata.get("tags", []) for cell in cells)
        assert row.rstrip().endswith(f"| {count} |"), f"docs/teaching.md: {path.name} has {count} concept checks"


# --- slides: headings start slides ---------------------------------------------------------------------------------


def test_headings_set_the_slide_types() -> None:
    notebook = synthetic_notebook()
    notebook.cells.insert(1, new_markdown_cell("## 1. A section\nText."))
    notebook.cells.append(new_markdown_cell("Plain text, #not a heading"))
    processed, _ = HeadingSlides().preprocess(copy.deepcopy(notebook), {})
    types = [cell.metadata["slideshow"]["slide_type"] for cell in processed.cells]
    assert types == ["slide", "slide", "-", "-", "subslide", "-", "-", "-", "-", "-"]
    assert slide_type(new_markdown_cell("#### Too deep")) == "-"


def test_slide_types_set_by_the_author_are_kept() -> None:
    notebook = synthetic_notebook()
    notebook.cells[2].metadata["slideshow"] = {"slide_type": "fragment"}
    before = copy.deepcopy(notebook)
    processed, _ = HeadingSlides().preprocess(notebook, {})
    assert processed == before


def test_the_slides_export_has_one_slide_per_heading() -> None:
    from nbconvert import SlidesExporter
    from traitlets.config import Config

    config = Config({"SlidesExporter": {"preprocessors": ["course_utils.slides.HeadingSlides"],
                                        "reveal_url_prefix": "vendor/reveal.js"}})
    page, _ = SlidesExporter(config=config).from_notebook_node(synthetic_notebook())
    body = page.split('<div class="slides">', 1)[1]
    assert body.count("<section>") == 3  # the title slide, then "### Exercise" as a sub-slide in its own stack
    assert 'href="vendor/reveal.js/dist/reveal.css"' in page
