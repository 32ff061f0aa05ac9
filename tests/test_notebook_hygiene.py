"""Every committed notebook follows the course's rules: stripped, parameterised, self-checking, listed in the map.

nbval never compares a cell without stored output, nor any image, so in stripped notebooks the closing ``assert``
cell is what makes CI meaningful; committed outputs would bloat git and hide stale results. These checks read the
files only (fast); ``make test`` then executes the notebooks under nbval.
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


def _python_only(source: str) -> str:
    """Cell source without IPython magics and shell escapes, so that ``ast`` can parse it."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _statements(cell) -> list[ast.stmt]:
    return ast.parse(_python_only(cell.source)).body


def notebook_problems(notebook: nbformat.NotebookNode) -> list[str]:
    """Every broken rule of one notebook, as readable sentences (an empty list means it is clean)."""
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
    if not any(cell.cell_type == "markdown" and "<details>" in cell.source for cell in cells):
        problems.append("no exercise with a hidden solution (a Markdown cell with <details>)")
    return problems


def _clean_notebook() -> nbformat.NotebookNode:
    notebook = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    parameters = new_code_cell("PROFILE = 'demo'\nSEED: int = 0")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [
        new_markdown_cell("# 99 · A title\n\n**Goal:** one sentence."),
        parameters,
        new_code_cell("%load_ext autoreload\nimport course_utils as cu"),
        new_markdown_cell("## Exercise\n<details><summary>Solution</summary>...</details>"),
        new_code_cell("result = 1\nassert result == 1"),
    ]
    return notebook


# --- the checker itself: a clean notebook passes, each broken rule is reported ------------------------------------


def test_a_clean_notebook_has_no_problems():
    assert notebook_problems(_clean_notebook()) == []


def test_outputs_and_execution_counts_are_reported():
    notebook = _clean_notebook()
    notebook.cells[2].outputs = [new_output("stream", name="stdout", text="hi\n")]
    notebook.cells[4].execution_count = 3
    assert notebook_problems(notebook) == [
        "cell 2 carries outputs or an execution count; run `make strip` before committing",
        "cell 4 carries outputs or an execution count; run `make strip` before committing",
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


def test_parameters_must_be_plain_assignments_and_exercises_hidden():
    notebook = _clean_notebook()
    notebook.cells[1].source += "\nprint(PROFILE)"
    notebook.cells[3].source = "## Exercise\nThe solution is 42."
    assert notebook_problems(notebook) == [
        "the parameters cell must hold only assignments, so that papermill can override each one",
        "no exercise with a hidden solution (a Markdown cell with <details>)",
    ]


# --- the committed notebooks ---------------------------------------------------------------------------------------


def test_the_course_starts_with_notebook_00():
    assert NOTEBOOK_DIR / "00_setup_and_map.ipynb" in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_committed_notebook_follows_the_rules(path: Path):
    assert NAME_PATTERN.match(path.name), f"{path.name}: name it NN_lowercase_words.ipynb (e.g. 02_feature_extraction)"
    assert notebook_problems(nbformat.read(path, as_version=4)) == [], path.name


def test_notebook_numbers_are_unique_and_listed_in_the_course_map():
    numbers = [NAME_PATTERN.match(path.name).group(1) for path in NOTEBOOKS if NAME_PATTERN.match(path.name)]
    assert len(numbers) == len(set(numbers)), f"two notebooks share a number: {sorted(numbers)}"
    course_map = (NOTEBOOK_DIR / "README.md").read_text(encoding="utf-8")
    missing = [path.name for path in NOTEBOOKS if path.name not in course_map]
    assert missing == [], f"notebooks/README.md does not list {missing}"
