"""Checked exercises: the functions a learner writes in notebooks 00-08, and the checkers that grade them.

In a notebook the learner completes a function (its reference solution sits between nbgrader's
``### BEGIN SOLUTION`` / ``### END SOLUTION`` markers in the instructor version; the student version has
``raise NotImplementedError()`` there), then runs ``cu.exercises.check(that_function)``. The checker runs it on
cases and either prints a check mark or raises with a hint in plain words. One module per notebook holds its
checkers (``nb04`` for notebook 04, ...); :data:`REGISTRY` lists them all by exercise name.
"""

from . import nb00, nb01, nb02, nb03, nb04, nb05, nb06, nb07, nb08  # noqa: F401 - each registers its checkers
from .checking import (
           REGISTRY,
           Checker,
           Exercise,
           ExerciseError,
           ExerciseFailed,
           ExerciseNotDone,
           check,
           exercise,
)

__all__ = ["REGISTRY", "Checker", "Exercise", "ExerciseError", "ExerciseFailed", "ExerciseNotDone", "check",
           "exercise"]
