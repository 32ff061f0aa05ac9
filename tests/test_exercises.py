"""Every notebook's exercises: the reference solution in the notebook passes its checker, and the set is complete.

The per-notebook files (``test_exercises_nbXX.py``) check that typical wrong answers get their own hints.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import course_utils as cu
from course_utils.exercises import REGISTRY, ExerciseFailed, ExerciseNotDone, check
from course_utils.exercises.solutions import exercise_functions

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("0*.ipynb"))


def _notebook(code: str) -> Path:
    return next(path for path in NOTEBOOKS if path.name.startswith(code))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_reference_solution_passes(name: str, capsys: pytest.CaptureFixture) -> None:
    functions = exercise_functions(_notebook(REGISTRY[name].notebook))
    assert name in functions, f"notebook {REGISTRY[name].notebook} has no exercise cell defining {name}"
    check(functions[name])
    assert capsys.readouterr().out.startswith("\u2713 ")


@pytest.mark.parametrize("notebook", [path.name[:2] for path in NOTEBOOKS])
def test_every_notebook_has_three_to_five_exercises(notebook: str) -> None:
    defined = set(exercise_functions(_notebook(notebook)))
    registered = {name for name, ex in REGISTRY.items() if ex.notebook == notebook}
    assert defined == registered, f"notebook {notebook}: cells define {defined}, checkers exist for {registered}"
    assert 3 <= len(registered) <= 5


def test_a_stub_is_reported_as_not_done() -> None:
    def signed_power_l2(x, alpha):
        raise NotImplementedError()

    with pytest.raises(ExerciseNotDone, match=r"not done yet\. Replace `raise NotImplementedError\(\)` in "
                                              r"signed_power_l2"):
        check(signed_power_l2)


def test_an_error_inside_the_learners_function_is_explained() -> None:
    def signed_power_l2(x, alpha):
        return x / undefined_name  # noqa: F821 - the learner's bug

    with pytest.raises(ExerciseFailed, match=r"signed_power_l2\(an array of shape \(3, 3\) \(float64\), 0\.5\) "
                                             r"raised NameError"):
        check(signed_power_l2)


def test_changing_the_input_in_place_is_reported() -> None:
    def signed_power_l2(x, alpha):
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        x[:] = np.sign(x) * np.abs(x) ** alpha
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    with pytest.raises(ExerciseFailed, match="changed its input array in place"):
        check(signed_power_l2)


def test_unknown_exercise_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="No exercise called 'nope'. Known exercises: .*signed_power_l2"):
        check(lambda x: x, name="nope")


def test_checkers_are_reachable_from_the_package() -> None:
    assert cu.exercises.check is check
