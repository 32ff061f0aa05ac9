"""Command-line plumbing shared by every ``python -m course_utils`` command: argument validators and error reports.

Why a module of its own: a learner who mistypes a backbone, points at a file that is not there or runs a benchmark
without its data should read *one line* saying what is wrong and what the valid choices are, with a non-zero exit
status, not a traceback from deep inside the library, and not after a network took seconds to load.

Validators
----------
The ``type=`` functions below (``backbone_name``, ``engine_name``, ``positive_int``, ``dataset_name``, ...) check a
value when argparse reads it, so argparse itself reports a bad one, before any work, e.g.::

    python -m course_utils predict: error: argument --backbone: unknown backbone 'resnet'; choose one of: ...

They take their choices from the registries (:func:`course_utils.backbones.available`,
:data:`course_utils.engines.ENGINES`, :func:`course_utils.datasets.available`), so a new backbone needs no change
here. What can only be checked once another value is known (a layer of the chosen backbone) has a ``check_*``
function that raises :class:`UsageError`; :func:`check_datasets` checks a list of dataset names in one go.

Errors
------
:func:`run_guarded` runs a command: any exception becomes one line on stderr (:func:`describe`), exit status 2 for a
:class:`UsageError` and 1 for anything else; Ctrl-C exits 130 with one line; ``--debug`` prints the traceback too.
:func:`describe` also rewrites advice written for Python callers (``engine='torch'``, ``on_error='skip'``) into the
command line's words (``--engine torch``), while the library's own messages, which notebooks show, stay as they are.
"""

from __future__ import annotations

import argparse
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NoReturn

TASKS = ("classification", "attributes", "retrieval")
DEVICE_PATTERN = re.compile(r"cpu|mps|cuda(:\d+)?")
INTERRUPTED = 130  # the shell's status for a process ended by SIGINT (128 + 2)
BAD_IMAGE_ADVICE = "Re-download or re-export the file, or leave it out."
# Keyword arguments of the library that are also options of the commands: ``engine='torch'`` -> ``--engine torch``.
OPTION_KEYWORDS = ("backbone", "engine", "layer", "views", "device", "solver", "seed", "topk")
_KEYWORD_VALUES = re.compile(r"\b(" + "|".join(OPTION_KEYWORDS) + r")=('[^']*'(?:\s+or\s+'[^']*')*)")
# Errors the course raises on purpose, with messages written for the user; anything else is unexpected (a bug?).
EXPECTED_ERRORS = (OSError, ValueError, KeyError, RuntimeError, ImportError)


class UsageError(ValueError):
    """A command-line value that is wrong in a way argparse could not see on its own (exit status 2)."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line naming the command (``prog: error: ...``), without the
    usage block, which ``--help`` shows."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} ({self.prog} --help lists the options)\n")


# ------------------------------------------------------------------------------------------------------ validators


def _unknown(what: str, value: str, valid: Iterable[str]) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"unknown {what} {value!r}; choose one of: {', '.join(valid)}")


def backbone_name(text: str) -> str:
    """``--backbone``: a name from :func:`course_utils.backbones.available`."""
    from . import backbones

    if text not in backbones.available():
        raise _unknown("backbone", text, backbones.available())
    return text


def engine_name(text: str) -> str:
    """``--engine``: one of :data:`course_utils.engines.ENGINES` (``auto`` included)."""
    from .engines import ENGINES

    if text not in ENGINES:
        raise _unknown("engine", text, ENGINES)
    return text


def device_name(text: str) -> str:
    """``--device``: ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (whether the device is usable is checked when used)."""
    if not DEVICE_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; choose cpu, cuda, cuda:N or mps")
    return text


def positive_int(text: str) -> int:
    """A whole number of at least 1 (counts of images, rounds, queries ...)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; got {value}")
    return value


def positive_float(text: str) -> float:
    """A number above 0 (seconds, megabytes, C ...)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a number above 0; got {text}")
    return value


def positive_int_list(text: str) -> list[int]:
    """A comma-separated list of whole numbers of at least 1, e.g. ``1,8,16,32``."""
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers, e.g. 1,8,16")
    try:
        return [positive_int(item) for item in items]
    except argparse.ArgumentTypeError as err:
        raise argparse.ArgumentTypeError(f"{text!r}: {err}") from None


def top_k(text: str) -> int:
    """``predict --topk``: from 1 to the number of ImageNet classes (1000)."""
    from .backbones import imagenet_categories

    value, classes = positive_int(text), len(imagenet_categories())
    if value > classes:
        raise argparse.ArgumentTypeError(f"must be at most {classes}, the number of ImageNet classes; got {value}")
    return value


def existing_file(text: str) -> Path:
    """An input file that exists (checked before any network is loaded)."""
    path = Path(text).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    return path


FOLDER_PREFIXES = {"folder": "one sub-folder per class", "retrieval-folder": "one sub-folder per object or scene"}


def folder_dataset(text: str) -> str:
    """``folder:PATH`` (class sub-folders) or ``retrieval-folder:PATH`` (groups of photos of one object); an empty
    ``PATH`` is refused rather than read as the current directory."""
    prefix, _, folder = text.partition(":")
    if prefix not in FOLDER_PREFIXES or not folder.strip():
        kind = prefix if prefix in FOLDER_PREFIXES else "folder"
        raise argparse.ArgumentTypeError(f"{text!r}: give the folder of your images after {kind}:, e.g. "
                                         f"{kind}:~/pictures/pets ({FOLDER_PREFIXES[kind]})")
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r}: {path} is not a folder" if path.exists()
                                         else f"{text!r}: no folder {path}")
    return text


def dataset_name(text: str) -> str:
    """A name from :func:`course_utils.datasets.available`, or ``folder:PATH`` / ``retrieval-folder:PATH`` (see
    :func:`folder_dataset`).

    Only the name is checked here: whether a known dataset's files are on this machine is the command's business
    (``reproduce`` skips missing ones with their download command)."""
    if text.partition(":")[0] in FOLDER_PREFIXES:
        return folder_dataset(text)
    from . import datasets

    if text not in datasets.available():
        raise _unknown("dataset", text, [*datasets.available(), "folder:PATH", "retrieval-folder:PATH"])
    return text


def choice_list(choices: Sequence[str], what: str) -> Callable[[str], str]:
    """A validator of comma-separated ``choices`` (e.g. ``--tasks classification,retrieval``); it returns the items
    joined by commas, without spaces."""

    def validate(text: str) -> str:
        items = [item.strip() for item in text.split(",")]
        for item in items:
            if item not in choices:
                raise _unknown(what, item, choices)
        return ",".join(items)

    return validate


def backbone_list(text: str) -> str:
    """``--backbones``: comma-separated names from :func:`course_utils.backbones.available`, returned joined by
    commas without spaces."""
    return ",".join(backbone_name(item.strip()) for item in text.split(","))


task_list = choice_list(("all", *TASKS), "task")


def check_datasets(names: Iterable[str]) -> list[str]:
    """``names`` as a list if every one is a known dataset or a ``folder:PATH`` naming a folder; else
    :class:`UsageError` listing every bad name and the valid ones, so a command can refuse them before any work."""
    names = list(names)
    problems = []
    for name in names:
        try:
            dataset_name(name)
        except argparse.ArgumentTypeError as err:
            problems.append(str(err))
    if problems:
        raise UsageError("; ".join(problems))
    return names


def check_layer(backbone: str, layer: str) -> str:
    """``layer`` if ``backbone`` has it (``"head@gem"`` included), else :class:`UsageError` listing its layers.

    Cheap: it reads the registry, it does not build the network."""
    from .backbones import parse_layer

    try:
        parse_layer(backbone, layer)
    except (KeyError, ValueError) as err:
        raise UsageError(f"--layer {layer}: {_message(err)}") from None
    return layer


# ---------------------------------------------------------------------------------------------------------- errors


def _message(err: BaseException) -> str:
    # KeyError's str() is the repr of its argument ("'Unknown backbone ...'"): show the text itself.
    if isinstance(err, KeyError) and len(err.args) == 1 and isinstance(err.args[0], str):
        return err.args[0]
    return str(err)


def to_command_line(message: str) -> str:
    """``message`` with advice meant for Python callers in the command line's words: ``engine='auto' or 'torch'``
    becomes ``--engine auto or --engine torch``, and so on for :data:`OPTION_KEYWORDS`."""

    def options(match: re.Match) -> str:
        values = re.findall(r"'([^']*)'", match.group(2))
        return " or ".join(f"--{match.group(1)} {value}" for value in values)

    return _KEYWORD_VALUES.sub(options, message)


def describe(err: BaseException) -> str:
    """One line telling the user what went wrong and what to do, in the command line's words.

    A :class:`~course_utils.imageio.BadImageError` gets advice for the command line (its own advice names the Python
    keyword ``on_error``); an error the course does not raise on purpose is prefixed with its type and says that
    ``--debug`` shows where it came from."""
    from .imageio import BadImageError

    if isinstance(err, BadImageError):
        message = f"Cannot use image {err.path}: {err.reason}. {BAD_IMAGE_ADVICE}"
    else:
        message = to_command_line(_message(err))
    if not isinstance(err, EXPECTED_ERRORS):
        message = f"{type(err).__name__}: {message} (unexpected: --debug shows the traceback)"
    return " ".join(message.split())  # one line, whatever the message's own line breaks


def run_guarded(command: Callable[[], int | None], prog: str, debug: bool = False) -> int:
    """Run ``command()`` and return its exit status; report what it raises in one line on stderr instead.

    Exit status: the command's own (``None`` is 0); 2 for a :class:`UsageError`; 1 for any other exception; 130 for
    Ctrl-C. ``SystemExit`` with a message (``raise SystemExit("...")``) is reported like an error, with status 1.
    ``debug`` prints the traceback before the line."""
    try:
        return int(command() or 0)
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(f"{prog}: interrupted", file=sys.stderr, flush=True)
        return INTERRUPTED
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            return stop.code or 0
        print(f"{prog}: error: {' '.join(str(stop.code).split())}", file=sys.stderr, flush=True)
        return 1
    except Exception as err:  # the point of this function: whatever a command raises reaches the user as one line
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: {describe(err)}", file=sys.stderr, flush=True)
        return 2 if isinstance(err, UsageError) else 1
