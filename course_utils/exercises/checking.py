"""The machinery behind every exercise checker: run the learner's function on cases and explain what is wrong.

A checker is a plain function ``check_<exercise>(fn)`` registered with :func:`exercise`. It calls the learner's
function through :meth:`Checker.call` and states each expectation with :meth:`Checker.require` (or the array
helpers), most telling diagnosis first, so that a typical mistake gets the hint written for it rather than a bare
``AssertionError``. A passing checker prints one line starting with a check mark; a failing one raises
:class:`ExerciseFailed` (an ``AssertionError``, so nbgrader's autograder and pytest count it as a failure) whose
message is the hint; an unsolved one raises :class:`ExerciseNotDone`.

Why raise rather than print: nbgrader grades a test cell by whether it raises, and a learner working alone should
not be able to miss a red message. Student notebooks tag the checker cells ``raises-exception`` so that one
unsolved exercise never stops the rest of the lab (later cells use the course's reference helpers, never the
learner's answers).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

REGISTRY: dict[str, Exercise] = {}


class ExerciseError(AssertionError):
    """Base of the checkers' errors; ``str(error)`` is the message written for the learner."""


class ExerciseNotDone(ExerciseError):
    """The learner's function still raises ``NotImplementedError`` (the student notebook's stub)."""


class ExerciseFailed(ExerciseError):
    """The learner's function ran but gave a wrong answer (or raised); the message says what is wrong."""


@dataclass(frozen=True)
class Exercise:
    """One registered exercise: its notebook (``"04"``), function name, title and checker."""

    notebook: str
    name: str
    title: str
    checker: Callable[[Callable], None]


def exercise(notebook: str, title: str) -> Callable[[Callable], Callable]:
    """Register ``check_<name>`` as the checker of the exercise ``<name>`` of ``notebook`` (``"00"``..``"08"``).

    The exercise's name is the checker's name without ``check_``; it is also the name of the function the learner
    writes, so :func:`course_utils.exercises.check` can find the checker from the learner's function.
    """

    def register(checker: Callable) -> Callable:
        if not checker.__name__.startswith("check_"):
            raise ValueError(f"A checker's name starts with 'check_'; got {checker.__name__!r}.")
        name = checker.__name__[len("check_"):]
        if name in REGISTRY:
            raise ValueError(f"Exercise {name!r} is registered twice (notebooks {REGISTRY[name].notebook} "
                             f"and {notebook}).")
        REGISTRY[name] = Exercise(notebook=notebook, name=name, title=title, checker=checker)
        return checker

    return register


def _describe(value: object) -> str:
    """A short description of an argument for a message: arrays by shape and dtype, the rest by ``repr``."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} ({value.dtype})"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Checker:
    """Runs a learner's function on cases and turns failed expectations into hints.

    ``with Checker("signed power + L2") as check: ...`` then, on leaving the block without an error, prints
    ``✓ signed power + L2: all N checks passed``.
    """

    def __init__(self, title: str) -> None:
        self.title = title
        self.passed = 0

    def __enter__(self) -> Checker:
        return self

    def __exit__(self, error_type: type | None, error: BaseException | None, traceback: object) -> bool:
        if error_type is None:
            print(f"\u2713 {self.title}: all {self.passed} checks passed.")
        return False

    def call(self, function: Callable, *args: object, **kwargs: object) -> object:
        """``function(*args, **kwargs)`` on copies of the arguments, with the learner's errors explained.

        Copies, so that a function that changes its input in place cannot spoil the next case (nor the checker's
        own reference answer); a function that does so is told.
        """
        if not callable(function):
            raise ExerciseFailed(f"{self.title}: expected a function, got {_describe(function)}.")
        name = getattr(function, "__name__", "your function")
        copies = copy.deepcopy(args), copy.deepcopy(kwargs)
        try:
            result = function(*copies[0], **copies[1])
        except NotImplementedError:
            raise ExerciseNotDone(
                f"{self.title}: not done yet. Replace `raise NotImplementedError()` in {name} with your code, "
                "run that cell, then run this one again."
            ) from None
        except Exception as error:  # the learner's bug, explained instead of a traceback into our code
            arguments = ", ".join([_describe(a) for a in args] + [f"{k}={_describe(v)}" for k, v in kwargs.items()])
            raise ExerciseFailed(
                f"{self.title}: {name}({arguments}) raised {type(error).__name__}: {error}"
            ) from error
        for given, used in zip(list(args) + list(kwargs.values()), list(copies[0]) + list(copies[1].values()),
                               strict=True):
            if isinstance(given, np.ndarray) and not np.array_equal(given, used,
                                                                    equal_nan=given.dtype.kind in "fc"):
                raise ExerciseFailed(f"{self.title}: {name} changed its input array in place; work on a copy "
                                     "(e.g. x = x.copy() or build a new array) so the caller's data stay intact.")
        return result

    def require(self, condition: object, hint: str) -> None:
        """Count one passed check, or raise :class:`ExerciseFailed` with ``hint`` when ``condition`` is false."""
        if not bool(condition):
            raise ExerciseFailed(f"{self.title}: {hint}")
        self.passed += 1

    def array(self, value: object, shape: tuple[int, ...] | None = None, what: str = "the result") -> np.ndarray:
        """``value`` as a float array, checked to be numeric, finite and (when given) of ``shape``."""
        try:
            result = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise ExerciseFailed(f"{self.title}: {what} should be an array of numbers; got {_describe(value)}.") \
                from None
        if shape is not None:
            self.require(result.shape == tuple(shape),
                         f"{what} should have shape {tuple(shape)}, but has shape {result.shape}.")
        self.require(np.all(np.isfinite(result)), f"{what} contains NaN or infinity; look for a division by zero.")
        return result

    def number(self, value: object, what: str = "the result") -> float:
        """``value`` as a finite Python float (a NumPy scalar or a 0-d/1-element array is accepted)."""
        array = self.array(value, what=what)
        self.require(array.size == 1, f"{what} should be one number, but has shape {array.shape}.")
        return float(array.reshape(()))

    def fraction(self, value: object, what: str, hint: str) -> float:
        """``value`` as one number that is a fraction (at most 1, as ``cu.metrics`` returns them), else ``hint``."""
        got = self.number(value, what=what)
        self.require(got <= 1 + 1e-9, hint)
        return got

    def close(self, got: object, want: object, hint: str, atol: float = 1e-6) -> None:
        """Require ``got`` to equal ``want`` within ``atol`` (shapes included)."""
        got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
        self.require(got.shape == want.shape and np.allclose(got, want, atol=atol, rtol=0), hint)


def check(function: Callable, name: str | None = None) -> None:
    """Check the learner's ``function`` with the exercise of the same name (or ``name``).

    Prints one line with a check mark when every case passes; raises :class:`ExerciseNotDone` or
    :class:`ExerciseFailed` with a hint otherwise.
    """
    key = name or getattr(function, "__name__", "")
    if key not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise KeyError(f"No exercise called {key!r}. Known exercises: {known}.")
    REGISTRY[key].checker(function)
