"""``python -m course_utils predict --backbone NAME IMAGE...``: the top-5 ImageNet classes of each image.

The first thing a learner does with a pretrained network, and the quickest proof that its weights are real: a
network with random weights spreads its probability thinly over 1,000 classes.
"""

from __future__ import annotations

import argparse
import sys

from . import cli
from .config import DEFAULT_BACKBONE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``predict`` command. Every value is checked as it is read (the files exist, the backbone and
    ``--topk`` are valid), so a typo is reported at once, not after the network has loaded."""
    parser.add_argument("images", nargs="+", type=cli.existing_file, metavar="IMAGE",
                        help="image files (JPEG, PNG, ...)")
    parser.add_argument("--backbone", type=cli.backbone_name, default=DEFAULT_BACKBONE,
                        help=f"network name (default {DEFAULT_BACKBONE}, offline)")
    parser.add_argument("--topk", type=cli.top_k, default=5,
                        help="how many classes to print per image, 1 to 1000 (default 5)")


def run(args: argparse.Namespace) -> int:
    """Print the top classes of each image; unreadable images are reported (one line each, with what to do) and
    give exit status 1, the others are still classified.

    Every image is decoded once before the network loads, so that a file that is not an image is reported at once,
    and the network is not loaded at all when none is usable; each is decoded again when its turn comes, so that a
    long list is never held in memory."""
    from . import backbones
    from .imageio import BadImageError, open_rgb

    usable = []
    for path in args.images:
        try:
            open_rgb(path)
        except BadImageError as err:
            print(cli.describe(err), file=sys.stderr)
        else:
            usable.append(path)
    if not usable:
        return 1
    backbone = backbones.load(args.backbone)
    for path in usable:
        print(f"{path}  ({backbone.name})")
        for index, name, probability in backbone.predict([open_rgb(path)], topk=args.topk)[0]:
            print(f"  {probability:6.1%}  {name}  [{index}]")
    return 1 if len(usable) < len(args.images) else 0
