"""Command line: ``python -m course_utils COMMAND [options]``, or ``off-the-shelf COMMAND [options]`` once installed.

Commands
--------
predict    top-5 ImageNet classes of some images (the first thing to try with a pretrained network)
demo       the main job: features, SVMs, retrieval and a report on the embedded demo sets (offline, minutes)
reproduce  the paper's tables, paper versus ours (``--profile demo`` offline; ``--profile full`` with data and a GPU)
download   download, verify and unpack a benchmark (same as ``python data_scripts/download.py``)
warm       run the notebooks headlessly so that a (shared) cache holds every feature they extract
student    write the student notebooks (solutions replaced by stubs, checks expected to fail until solved)
search     find the photos of a folder that show the same object or scene as a query (global, spatial or jitter)
bench      benchmarks that print figures and ratios: ``bench extract``, ``bench svm``, ``bench search``,
           ``bench cache``, ``bench workload``, ``bench ray``, ``bench ann`` (``bench --help`` lists them)

Global options: ``--version``; ``--debug`` (before or after the command) prints the traceback of an error, which
otherwise reaches the user as one line on stderr with exit status 1 (2 for a bad argument, 130 for Ctrl-C); see
:mod:`course_utils.cli`.

Each command lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``, or
``command(args) -> int`` where ``run`` is the module's library function (``reproduce.run``); it is imported only
when called, so ``--help`` of one command does not pay for loading torch.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from . import __version__, cli

COMMANDS = {
    "predict": ("course_utils.predict", "top-5 ImageNet classes of images"),
    "demo": ("course_utils.demo", "run the main job on the embedded demo sets and write a report"),
    "reproduce": ("course_utils.reproduce", "reproduce the paper's tables, paper versus ours"),
    "download": ("course_utils.datasets.download", "download, verify and extract one of the paper's benchmarks"),
    "warm": ("course_utils.warm", "run the notebooks headlessly to fill the feature cache (e.g. for a class)"),
    "student": ("course_utils.student", "write the student notebooks: solutions replaced by stubs (nbgrader's way)"),
    "search": ("course_utils.photo_search", "find the photos of a folder that show the same object or scene as a query"),
}
BENCHMARKS = {
    "extract": ("course_utils.bench.extract", "feature-extraction throughput and memory"),
    "svm": ("course_utils.bench.svm", "linear-SVM training time by solver"),
    "search": ("course_utils.bench.search", "spatial-search speed and memory against numpy"),
    "cache": ("course_utils.bench.cache", "cost of the cache's checksums and content keys against a hit"),
    "workload": ("course_utils.bench.workload", "the full profile's extraction time here, projected from a sample"),
    "ray": ("course_utils.bench.ray_extract", "extraction as a local Ray Data job against one process (scale extra)"),
    "ann": ("course_utils.bench.ann", "faiss index + re-ranking against exhaustive search; 1 M vectors (scale extra)"),
}
CONSOLE_SCRIPT = "off-the-shelf"  # [project.scripts] in pyproject.toml
DEBUG_HELP = "on an error, print the full traceback as well as the one-line message"


def _prog() -> str:
    """How the user called us: ``off-the-shelf`` through the console script, else ``python -m course_utils``."""
    return CONSOLE_SCRIPT if Path(sys.argv[0]).name == CONSOLE_SCRIPT else "python -m course_utils"


def _table(rows: list[tuple[str, str]]) -> list[str]:
    width = max(len(name) for name, _ in rows)
    return [f"  {name:<{width}}  {text}" for name, text in rows]


def _usage(prog: str) -> str:
    rows = [(name, help_) for name, (_, help_) in COMMANDS.items()]
    rows += [(f"bench {name}", help_) for name, (_, help_) in BENCHMARKS.items()]
    return "\n".join([
        f"usage: {prog} [--debug] [--version] COMMAND [options]", "", "commands:", *_table(rows), "",
        "options:", *_table([("--debug", DEBUG_HELP + " (also after the command)"),
                             ("--version", "print the version and exit"), ("-h, --help", "show this list")]),
        "", f"{prog} COMMAND --help shows a command's options.",
    ])


def _bench_usage(prog: str) -> str:
    return "\n".join([
        f"usage: {prog} bench BENCHMARK [options]", "",
        "benchmarks (each prints what it measured, then a machine-readable RESULT line):",
        *_table([(name, help_) for name, (_, help_) in BENCHMARKS.items()]), "",
        f"{prog} bench BENCHMARK --help shows a benchmark's options.",
    ])


def _error(prog: str, message: str) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the command module named by the first argument(s); return the exit status.

    Errors never escape as tracebacks: see :func:`course_utils.cli.run_guarded` (``--debug`` shows them)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = _prog()
    debug = False
    while argv and argv[0] in ("--debug", "--version"):  # global options, before the command
        if argv.pop(0) == "--version":
            print(f"course_utils {__version__}")
            return 0
        debug = True
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(prog))
        return 0
    command, rest = argv[0], argv[1:]
    if command == "bench":
        if rest and rest[0] in ("-h", "--help"):
            print(_bench_usage(prog))
            return 0
        if not rest or rest[0] not in BENCHMARKS:
            named = f"unknown benchmark {rest[0]!r}" if rest else "bench needs a benchmark"
            return _error(f"{prog} bench", f"{named}; choose one of: {', '.join(BENCHMARKS)} "
                                           f"({prog} bench --help describes them)")
        (module_name, help_), name, rest = BENCHMARKS[rest[0]], f"bench {rest[0]}", rest[1:]
    elif command in COMMANDS:
        (module_name, help_), name = COMMANDS[command], command
    else:
        return _error(prog, f"unknown command {command!r}; choose one of: {', '.join([*COMMANDS, 'bench'])} "
                            f"({prog} --help describes them)")
    debug = debug or "--debug" in rest

    def run_command() -> int | None:
        module = importlib.import_module(module_name)
        parser = cli.Parser(prog=f"{prog} {name}", description=help_)
        module.add_arguments(parser)
        parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
        args = parser.parse_args(rest)  # --help and bad arguments end here with SystemExit(0 or 2)
        return (module.command if hasattr(module, "command") else module.run)(args)

    # Importing the command (torch ...) and parsing are guarded too: Ctrl-C there also exits 130 in one line.
    return cli.run_guarded(run_command, f"{prog} {name}", debug=debug)


if __name__ == "__main__":
    sys.exit(main())
