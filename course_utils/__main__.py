"""Command line: ``python -m course_utils COMMAND [options]``.

Commands
--------
predict    top-5 ImageNet classes of some images (the first thing to try with a pretrained network)
demo       the main job: features, SVMs, retrieval and a report on the embedded demo sets (offline, minutes)
reproduce  the paper's tables, paper versus ours (``--profile demo`` offline; ``--profile full`` with data and a GPU)
download   download, verify and unpack a benchmark (same as ``python data_scripts/download.py``)
bench      benchmarks that print figures and ratios: ``bench extract``, ``bench svm``, ``bench search``

Each command lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``; it is imported only
when called, so ``--help`` of one command does not pay for loading torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "predict": ("course_utils.predict", "top-5 ImageNet classes of images"),
    "demo": ("course_utils.demo", "run the main job on the embedded demo sets and write a report"),
    "reproduce": ("course_utils.reproduce", "reproduce the paper's tables, paper versus ours"),
    "download": ("course_utils.datasets.download", "download, verify and extract one of the paper's benchmarks"),
}
BENCHMARKS = {
    "extract": ("course_utils.bench.extract", "feature-extraction throughput and memory"),
    "svm": ("course_utils.bench.svm", "linear-SVM training time by solver"),
    "search": ("course_utils.bench.search", "spatial-search speed and memory against numpy"),
}


def _usage() -> str:
    lines = ["usage: python -m course_utils COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += [f"  bench {name:<4} {help_}" for name, (_, help_) in BENCHMARKS.items()]
    lines += ["", "python -m course_utils COMMAND --help shows a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the command module named by the first argument(s)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command == "bench":
        if not rest or rest[0] not in BENCHMARKS:
            print(f"bench needs one of: {', '.join(BENCHMARKS)}", file=sys.stderr)
            return 2
        (module_name, help_), prog, rest = BENCHMARKS[rest[0]], f"course_utils bench {rest[0]}", rest[1:]
    elif command in COMMANDS:
        (module_name, help_), prog = COMMANDS[command], f"course_utils {command}"
    else:
        print(f"Unknown command {command!r}.\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"python -m {prog}", description=help_)
    module.add_arguments(parser)
    return int(module.run(parser.parse_args(rest)) or 0)


if __name__ == "__main__":
    sys.exit(main())
