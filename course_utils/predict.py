"""``python -m course_utils predict --backbone NAME IMAGE...``: the top-5 ImageNet classes of each image.

The first thing a learner does with a pretrained network, and the quickest proof that its weights are real: a
network with random weights spreads its probability thinly over 1,000 classes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import DEFAULT_BACKBONE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``predict`` command."""
    parser.add_argument("images", nargs="+", type=Path, help="image files (JPEG, PNG, ...)")
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE, help=f"network name (default {DEFAULT_BACKBONE})")
    parser.add_argument("--topk", type=int, default=5, help="how many classes to print per image (default 5)")


def run(args: argparse.Namespace) -> int:
    """Print the top classes of each image; unreadable images are reported and give exit status 1."""
    from . import backbones
    from .imageio import BadImageError, open_rgb

    backbone = backbones.load(args.backbone)
    failed = 0
    for path in args.images:
        try:
            image = open_rgb(path)
        except BadImageError as err:
            print(f"{path}: {err}", file=sys.stderr)
            failed += 1
            continue
        print(f"{path}  ({backbone.name})")
        for index, name, probability in backbone.predict([image], topk=args.topk)[0]:
            print(f"  {probability:6.1%}  {name}  [{index}]")
    return 1 if failed else 0
