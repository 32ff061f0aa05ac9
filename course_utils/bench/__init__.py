"""Benchmarks: each module prints figures measured in one run and ends with a machine-readable RESULT line."""

from __future__ import annotations

import argparse

# The feature width most benchmarks default to: the course's default backbone's pooled features.
DIM_HELP = "feature width (default 1280, EfficientNet-Lite0)"


def add_counts(parser: argparse.ArgumentParser, counts: dict[str, tuple[int, str]], quick: dict[str, int]) -> None:
    """One ``--NAME`` option per entry of ``counts`` (name: (default, help)), each a whole number >= 1, and
    ``--quick``, which :func:`apply_quick` turns into the smoke-test sizes of ``quick``."""
    from .. import cli

    for name, (default, help_text) in counts.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=cli.positive_int, default=default, help=help_text)
    sizes = ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in quick.items())
    parser.add_argument("--quick", action="store_true", help=f"smoke-test size: {sizes}")


def apply_quick(args: argparse.Namespace, quick: dict[str, int]) -> None:
    """With ``--quick``, replace the sizes in ``args`` by the smoke-test ones of ``quick``."""
    if args.quick:
        for name, value in quick.items():
            setattr(args, name, value)
