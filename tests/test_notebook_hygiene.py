"""Every committed notebook follows the course's rules: stripped, parameterised, self-checking, listed in the map.

nbval never compares a cell without stored output, nor any image, so in stripped notebooks the closing ``assert``
cell is what makes CI meaningful; committed outputs would bloat git and hide stale results. These checks read the
files only (fast); ``make test`` then executes the notebooks under nbval.

The teaching rules too: 3-5 exercises, each a solution cell between nbgrader's markers with its check cell after
it, the metadata nbgrader needs (so ``nbgrader generate_assignment`` and ``make student`` accept the notebook), and
2-4 concept checks (``cu.quiz``) in hidden-source cells. No solution sits in a ``<details>`` block any more.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course_utils.config import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
NAME_PATTERN = re.compile(r"^(\d{2})_[a-z0-9]+(?:_[a-z0-9]+)*\.ipynb$")
EXERCISES, CONCEPT_CHECKS = range(3, 6), range(2, 5)
SOLUTION_DETAILS = re.compile(r"<summary>[^<]*solution", re.IGNORECASE)


def _python_only(source: str) -> str:
    """Cell source without IPython magics and shell escapes, so that ``ast`` can parse it."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _statements(cell) -> list[ast.stmt]:
    return ast.parse(_python_only(cell.source)).body


def notebook_problems(notebook: nbformat.NotebookNode, prefix: str | None = None) -> list[str]:
    """Every broken rule of one notebook, as readable sentences (an empty list means it is clean).

    ``prefix`` ("04") is the notebook's number, which its grade ids start with (``nb04-``).
    """
    problems = []
    try:
        nbformat.validate(notebook)
    except nbformat.ValidationError as err:
        problems.append(f"not a valid nbformat 4 notebook: {err.message}")
    cells = notebook.cells
    for number, cell in enumerate(cells):
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
            problems.append(f"cell {number} carries outputs or an execution count; run `make strip` before committing")
    if "widgets" in notebook.metadata:
        problems.append("the metadata holds saved widget state; run `make strip` before committing")
    if notebook.metadata.get("kernelspec", {}).get("name") != "python3":
        problems.append("kernelspec name must be 'python3' (the venv's kernel that nbval and JupyterLab use)")
    if len(cells) < 3:
        return [*problems, "a notebook needs at least a title, a parameters cell and a closing check"]
    if cells[0].cell_type != "markdown" or not cells[0].source.startswith("# "):
        problems.append("cell 0 must be a Markdown title starting with '# '")
    parameters = cells[1]
    if parameters.cell_type != "code" or "parameters" not in parameters.metadata.get("tags", []):
        problems.append("cell 1 must be the code cell tagged 'parameters' (papermill overrides it)")
    elif not all(isinstance(s, ast.Assign | ast.AnnAssign) for s in _statements(parameters)):
        problems.append("the parameters cell must hold only assignments, so that papermill can override each one")
    last = cells[-1]
    if last.cell_type != "code" or not any(isinstance(s, ast.Assert) for s in _statements(last)):
        problems.append("the last cell must be code with at least one `assert` on the result a learner should see")
    code = "\n".join(cell.source for cell in cells if cell.cell_type == "code")
    if "import course_utils as cu" not in code:
        problems.append("the notebook must use the package as `import course_utils as cu`")
    return problems + teaching_problems(notebook, prefix)


def _expected_nbgrader(role: str) -> dict:
    """The nbgrader fields (all but grade_id and points) a cell playing ``role`` must carry."""
    fields = {"exercise": (False, True, False), "check": (True, False, True), "solution": (True, True, False)}
    grade, solution, locked = fields[role]
    return {"grade": grade, "locked": locked, "schema_version": 3, "solution": solution, "task": False}


def _call_name(expression: ast.expr) -> str:
    """``'cu.quiz.choice'`` for a call of that dotted name, ``''`` for anything else."""
    if not isinstance(expression, ast.Call):
        return ""
    parts, node = [], expression.func
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id, *reversed(parts)]) if isinstance(node, ast.Name) else ""


def teaching_problems(notebook: nbformat.NotebookNode, number: str | None = None) -> list[str]:
    """Broken rules of the exercises and concept checks (``number``, e.g. "04", also checks the grade ids)."""
    problems, grade_ids, exercises, checks, concept_checks = [], [], [], {}, 0
    for index, cell in enumerate(notebook.cells):
        tags = cell.metadata.get("tags", [])
        meta = cell.metadata.get("nbgrader")
        role = next((tag for tag in ("exercise", "check", "solution") if tag in tags), None)
        if "BEGIN SOLUTION" in cell.source:
            wanted = "exercise" if cell.cell_type == "code" else "solution"
            if role != wanted:
                problems.append(f"cell {index} holds a solution; tag it '{wanted}'")
        if SOLUTION_DETAILS.search(cell.source) and cell.cell_type == "markdown":
            problems.append(f"cell {index} shows a solution in <details>; make it an exercise with nbgrader markers")
        if role is None:
            if "concept-check" in tags:
                concept_checks += 1
                statements = _statements(cell) if cell.cell_type == "code" else []
                last = statements[-1] if statements else None
                if not (isinstance(last, ast.Expr) and _call_name(last.value) in ("cu.quiz.choice", "cu.quiz.number")):
                    problems.append(f"concept check in cell {index} must end with a cu.quiz.choice(...) or "
                                    "cu.quiz.number(...) expression, so that it is displayed")
                if not cell.metadata.get("jupyter", {}).get("source_hidden"):
                    problems.append(f"concept check in cell {index} must hide its source (metadata.jupyter."
                                    "source_hidden), or the answer is on screen")
            continue
        if not isinstance(meta, dict):
            problems.append(f"cell {index} ({role}) has no nbgrader metadata")
            continue
        wanted_fields = _expected_nbgrader(role)
        if {key: meta.get(key) for key in wanted_fields} != wanted_fields:
            problems.append(f"cell {index} ({role}): nbgrader metadata must include {wanted_fields}")
        if role in ("check", "solution") and not isinstance(meta.get("points"), int | float):
            problems.append(f"cell {index} ({role}) needs nbgrader points (a number; 0 for a discussion)")
        grade_id = meta.get("grade_id", "")
        grade_ids.append(grade_id)
        if number is not None and not grade_id.startswith(f"nb{number}-"):
            problems.append(f"cell {index}: grade_id {grade_id!r} must start with 'nb{number}-'")
        if role == "exercise":
            defined = [s.name for s in _statements(cell) if isinstance(s, ast.FunctionDef)]
            if len(defined) != 1 or len(_statements(cell)) != 1:
                problems.append(f"exercise cell {index} must define exactly one function and nothing else")
            exercises += [(index, name) for name in defined]
        if role == "check":
            statements = _statements(cell)
            call = statements[0].value if len(statements) == 1 and isinstance(statements[0], ast.Expr) else None
            if _call_name(call) != "cu.exercises.check" or not call.args or not isinstance(call.args[0], ast.Name):
                problems.append(f"check cell {index} must be exactly `cu.exercises.check(<function>)`")
            else:
                checks.setdefault(call.args[0].id, index)
    names = {name for _, name in exercises}
    for index, cell in enumerate(notebook.cells):
        tags = cell.metadata.get("tags", [])
        if cell.cell_type != "code" or "exercise" in tags or "check" in tags:
            continue
        if used := sorted({node.id for node in ast.walk(ast.parse(_python_only(cell.source)))
                           if isinstance(node, ast.Name) and node.id in names}):
            problems.append(f"cell {index} uses the learner's {', '.join(used)}: in the student notebook that raises "
                            "NotImplementedError; use the course's own helper instead")
    if duplicates := sorted({grade_id for grade_id in grade_ids if grade_ids.count(grade_id) > 1}):
        problems.append(f"grade ids used twice: {duplicates}")
    for index, name in exercises:
        if checks.get(name, -1) < index:
            problems.append(f"exercise {name} (cell {index}) has no `cu.exercises.check({name})` cell after it")
    if len(exercises) not in EXERCISES:
        problems.append(f"{len(exercises)} exercises; a notebook has {EXERCISES.start}-{EXERCISES.stop - 1}")
    if concept_checks not in CONCEPT_CHECKS:
        problems.append(f"{concept_checks} concept checks; a notebook has {CONCEPT_CHECKS.start}-"
                        f"{CONCEPT_CHECKS.stop - 1} (cells tagged 'concept-check')")
    return problems


def _exercise_cells(number: str, name: str) -> list:
    """The cells of one exercise in the course's pattern: task, solution, check, discussion."""
    grading = {"locked": False, "schema_version": 3, "task": False}
    solution = new_code_cell(f'def {name}(x):\n    """x doubled."""\n    ### BEGIN SOLUTION\n    return 2 * x\n'
                             "    ### END SOLUTION")
    solution.metadata = {"tags": ["exercise"], "nbgrader": {**grading, "grade": False, "solution": True,
                                                            "grade_id": f"nb{number}-{name}"}}
    check = new_code_cell(f"cu.exercises.check({name})")
    check.metadata = {"tags": ["check"], "nbgrader": {**grading, "grade": True, "solution": False, "locked": True,
                                                      "points": 1, "grade_id": f"nb{number}-{name}-check"}}
    discussion = new_markdown_cell("<!-- ### BEGIN SOLUTION -->\nWhy.\n<!-- ### END SOLUTION -->")
    discussion.metadata = {"tags": ["solution"], "nbgrader": {**grading, "grade": True, "solution": True,
                                                              "points": 0, "grade_id": f"nb{number}-{name}-talk"}}
    return [new_markdown_cell(f"### Exercise: {name}\n<details><summary>Hint</summary>x + x</details>"), solution,
            check, discussion]


def _concept_check(source: str):
    cell = new_code_cell(source)
    cell.metadata = {"tags": ["concept-check"], "jupyter": {"source_hidden": True}}
    return cell


def _clean_notebook() -> nbformat.NotebookNode:
    notebook = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    parameters = new_code_cell("PROFILE = 'demo'\nSEED: int = 0")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [
        new_markdown_cell("# 99 · A title\n\n**Goal:** one sentence."),
        parameters,
        new_code_cell("%load_ext autoreload\nimport course_utils as cu"),
        *_exercise_cells("99", "double"), *_exercise_cells("99", "twice"), *_exercise_cells("99", "two_times"),
        _concept_check('cu.quiz.number("2 + 2?", answer=4, explanation="Four.")'),
        _concept_check('cu.quiz.choice("Red?", ["yes", "no"], answer=0, explanation="Red.")'),
        new_code_cell("result = 1\nassert result == 1"),
    ]
    return notebook


# --- the checker itself: a clean notebook passes, each broken rule is reported ------------------------------------


def test_a_clean_notebook_has_no_problems():
    assert notebook_problems(_clean_notebook()) == []


def test_outputs_and_execution_counts_are_reported():
    notebook = _clean_notebook()
    notebook.cells[2].outputs = [new_output("stream", name="stdout", text="hi\n")]
    notebook.cells[-1].execution_count = 3
    assert notebook_problems(notebook) == [
        "cell 2 carries outputs or an execution count; run `make strip` before committing",
        f"cell {len(notebook.cells) - 1} carries outputs or an execution count; run `make strip` before committing",
    ]


def test_saved_widget_state_and_a_foreign_kernel_are_reported():
    notebook = _clean_notebook()
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    notebook.metadata["kernelspec"]["name"] = "conda-env-old"
    problems = notebook_problems(notebook)
    assert "the metadata holds saved widget state; run `make strip` before committing" in problems
    assert any(p.startswith("kernelspec name must be 'python3'") for p in problems)


def test_structure_rules_are_reported():
    notebook = _clean_notebook()
    notebook.cells[0].source = "Some text without a title"
    notebook.cells[1].metadata["tags"] = []
    notebook.cells[-1].source = "print('done')  # assert nothing"
    assert notebook_problems(notebook) == [
        "cell 0 must be a Markdown title starting with '# '",
        "cell 1 must be the code cell tagged 'parameters' (papermill overrides it)",
        "the last cell must be code with at least one `assert` on the result a learner should see",
    ]


def test_parameters_must_be_plain_assignments():
    notebook = _clean_notebook()
    notebook.cells[1].source += "\nprint(PROFILE)"
    assert notebook_problems(notebook) == [
        "the parameters cell must hold only assignments, so that papermill can override each one",
    ]


def test_exercise_and_check_cells_must_carry_the_contracts_metadata():
    notebook = _clean_notebook()
    notebook.cells[4].metadata["tags"] = []                   # the first exercise's solution cell, untagged
    notebook.cells[9].metadata["nbgrader"]["locked"] = False  # the second exercise's check cell, unlocked
    del notebook.cells[10].metadata["nbgrader"]["points"]     # its discussion: nbgrader rejects it without points
    notebook.cells[13].metadata["nbgrader"]["grade_id"] = "nb99-twice"  # a grade id used twice
    assert teaching_problems(notebook, "99") == [
        "cell 4 holds a solution; tag it 'exercise'",
        "cell 9 (check): nbgrader metadata must include "
        "{'grade': True, 'locked': True, 'schema_version': 3, 'solution': False, 'task': False}",
        "cell 10 (solution) needs nbgrader points (a number; 0 for a discussion)",
        "grade ids used twice: ['nb99-twice']",
        "2 exercises; a notebook has 3-5",
    ]


def test_an_exercise_needs_its_check_after_it_and_one_function_only():
    notebook = _clean_notebook()
    notebook.cells[4].source += "\nprint('side effect')"
    notebook.cells[5].source = "cu.exercises.check(something_else)"
    problems = teaching_problems(notebook, "99")
    assert problems == [
        "exercise cell 4 must define exactly one function and nothing else",
        "exercise double (cell 4) has no `cu.exercises.check(double)` cell after it",
    ]
    notebook = _clean_notebook()
    notebook.cells[5].source = "check(double)"
    assert teaching_problems(notebook, "99") == [
        "check cell 5 must be exactly `cu.exercises.check(<function>)`",
        "exercise double (cell 4) has no `cu.exercises.check(double)` cell after it",
    ]


def test_later_cells_must_not_use_the_learners_function():
    notebook = _clean_notebook()
    notebook.cells[-1].source = "result = double(2) + twice(1)\nassert result == 6"
    assert teaching_problems(notebook) == [
        f"cell {len(notebook.cells) - 1} uses the learner's double, twice: in the student notebook that raises "
        "NotImplementedError; use the course's own helper instead",
    ]


def test_grade_ids_name_their_notebook():
    assert teaching_problems(_clean_notebook(), "04")[:1] == [
        "cell 4: grade_id 'nb99-double' must start with 'nb04-'"
    ]


def test_concept_checks_are_hidden_displayed_and_counted():
    notebook = _clean_notebook()
    notebook.cells[-3].metadata["jupyter"] = {}
    notebook.cells[-2].source = 'question = cu.quiz.choice("Red?", ["yes", "no"], answer=0, explanation="Red.")'
    assert teaching_problems(notebook) == [
        f"concept check in cell {len(notebook.cells) - 3} must hide its source (metadata.jupyter.source_hidden), "
        "or the answer is on screen",
        f"concept check in cell {len(notebook.cells) - 2} must end with a cu.quiz.choice(...) or cu.quiz.number(...) "
        "expression, so that it is displayed",
    ]
    del notebook.cells[-2]
    assert teaching_problems(notebook)[-1] == "1 concept checks; a notebook has 2-4 (cells tagged 'concept-check')"


def test_a_solution_in_details_is_reported_a_hint_is_not():
    notebook = _clean_notebook()
    notebook.cells[3].source += "\n<details><summary>Solution</summary>return 2 * x</details>"
    assert teaching_problems(notebook) == [
        "cell 3 shows a solution in <details>; make it an exercise with nbgrader markers",
    ]


# --- the committed notebooks ---------------------------------------------------------------------------------------


def test_the_course_starts_with_notebook_00():
    assert NOTEBOOK_DIR / "00_setup_and_map.ipynb" in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_committed_notebook_follows_the_rules(path: Path):
    assert NAME_PATTERN.match(path.name), f"{path.name}: name it NN_lowercase_words.ipynb (e.g. 02_feature_extraction)"
    number = NAME_PATTERN.match(path.name).group(1)
    assert notebook_problems(nbformat.read(path, as_version=4), number) == [], path.name


def test_notebook_numbers_are_unique_and_listed_in_the_course_map():
    numbers = [NAME_PATTERN.match(path.name).group(1) for path in NOTEBOOKS if NAME_PATTERN.match(path.name)]
    assert len(numbers) == len(set(numbers)), f"two notebooks share a number: {sorted(numbers)}"
    course_map = (NOTEBOOK_DIR / "README.md").read_text(encoding="utf-8")
    missing = [path.name for path in NOTEBOOKS if path.name not in course_map]
    assert missing == [], f"notebooks/README.md does not list {missing}"
