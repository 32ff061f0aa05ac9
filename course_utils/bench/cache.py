"""Benchmark: what the feature cache's checks cost against a cache hit.

``python -m course_utils bench cache [--images 8189 --views 16 --dim 1280] [--image-dir DIR] [--quick]``

Two costs, each printed with the load average beside it (the machine may be shared):

1. **The CRC-32 that vouches for a layer file.** A synthetic entry shaped like Flowers-102's 16-view one (8,189 x 16
   x 1,280 float32, 670 MB) is written in a temporary cache. The check is timed the first time (a CRC-32 pass over
   the file, as after it was written or changed) and remembered (a file unchanged since it was checked: one ``stat``
   and the memo's JSON). Each is compared with a hit (opening the memory map, which alone costs almost nothing) plus
   the cheapest first pass any consumer makes over the rows (a sum).
2. **Naming images by content.** The SHA-256 of every image of ``--image-dir`` (default: the shared Flowers-102
   copy when present, else ``--images`` synthetic JPEGs), first read in full and then remembered, against the
   ``stat`` per file that a key of paths and modification times needed.

The page cache is warm throughout (the files were just written or read): on a cold disk every figure that reads the
bytes grows by the read, which the consumer's first pass would pay anyway. The last line is machine-readable::

    RESULT crc_seconds=<s> crc_vs_hit_and_pass=<x> memo_vs_hit_and_pass=<x> sha256_seconds=<s> memo_key_seconds=<s>
           stat_seconds=<s>

``crc_seconds`` is the check of a file not yet remembered; the ratios divide a check's time by the hit plus the pass.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from .. import cli, config, features
from ..datasets.images import file_digest

QUICK = {"images": 500, "views": 4, "dim": 256}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``bench cache``; every size and count must be at least 1."""
    parser.add_argument("--images", type=cli.positive_int, default=8189,
                        help="rows of the entry (default 8189, Flowers-102)")
    parser.add_argument("--views", type=cli.positive_int, default=16, help="views per image (default 16, the paper's)")
    parser.add_argument("--dim", type=cli.positive_int, default=1280,
                        help="feature width (default 1280, EfficientNet-Lite0)")
    parser.add_argument("--image-dir", default=None,
                        help="images to name by content (default: shared oxford_flowers102/jpg, else synthetic)")
    parser.add_argument("--rounds", type=cli.positive_int, default=3,
                        help="timings per figure; the best is kept (default 3)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke-test size: {QUICK['images']} x {QUICK['views']} x {QUICK['dim']}")


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover - no load average on this system
        return "n/a"


def _best(rounds: int, work) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def _write_entry(entry: Path, shape: tuple[int, int, int]) -> None:
    """A finished entry holding one layer ``pool`` of seeded random features, as :func:`features.extract` leaves it."""
    entry.mkdir(parents=True)
    array = features._create_array(entry / "pool.npy", shape, 4 * int(np.prod(shape)))
    rng = np.random.default_rng(0)
    for start in range(0, shape[0], 256):
        rows = array[start : start + 256]
        rows[:] = rng.standard_normal(rows.shape, dtype=np.float32)
    array.flush()
    del array
    features._write_json(entry / "complete.json", {
        "cache_version": features.CACHE_VERSION, "layers": ["pool"], "skipped": [],
        "crc32": {"pool": file_digest(entry / "pool.npy", "crc32")},
    })


def _first_pass(array: np.ndarray) -> float:
    total = 0.0
    for start in range(0, array.shape[0], 512):
        total += float(np.asarray(array[start : start + 512]).sum(dtype=np.float64))
    return total


def _synthetic_images(folder: Path, count: int) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):  # about 12 KB each, as Flowers-102's shared copy
        small = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
        path = folder / f"image_{i:05d}.jpg"
        Image.fromarray(small).resize((256, 200), Image.BILINEAR).save(path, quality=90)
        paths.append(path)
    return paths


def run(args: argparse.Namespace) -> int:
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    shape = (args.images, args.views, args.dim)
    n_bytes = 4 * int(np.prod(shape))
    print(f"bench cache: entry {shape[0]} x {shape[1]} x {shape[2]} float32 = {n_bytes / 1e6:.0f} MB; best of "
          f"{args.rounds}; page cache warm")
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        root = Path(tmp)
        entry = root / "features" / "entry"
        load_before = _load()
        _write_entry(entry, shape)
        view_names = [f"v{i}" for i in range(shape[1])]

        def template() -> features.FeatureSet:
            return features.FeatureSet({}, [Path(f"{i}.jpg") for i in range(shape[0])], view_names,
                                       np.ones(shape[0], dtype=bool))

        shapes = {"pool": shape}
        memo = features._DigestMemo(root)

        def hit(verify: bool, memo: features._DigestMemo = memo) -> np.ndarray:
            loaded = features._load_entry(entry, template(), shapes, memo, verify=verify)
            assert not isinstance(loaded, str), loaded
            return loaded["pool"]

        layer_file = entry / "pool.npy"
        open_s = _best(args.rounds, lambda: hit(False))
        pass_s = _best(args.rounds, lambda: _first_pass(hit(False)))
        crc_s = _best(args.rounds, lambda: file_digest(layer_file, "crc32"))  # the check, nothing remembered
        settle = features.DIGEST_SETTLE_SECONDS
        features.DIGEST_SETTLE_SECONDS = 0.0  # the file was just written; as if it had settled
        try:
            hit(True)
            memo.save()
            memo_s = _best(args.rounds, lambda: features._DigestMemo(root).digest(layer_file, "crc32"))
            assert not isinstance(hit(True, features._DigestMemo(root)), str)
        finally:
            features.DIGEST_SETTLE_SECONDS = settle
        load_after = _load()
        base = open_s + pass_s
        print(f"  hit, no check (open the memory map)       {open_s * 1e3:9.2f} ms")
        print(f"  hit + a consumer's first pass (a sum)     {base * 1e3:9.2f} ms   ({n_bytes / pass_s / 1e9:.1f} GB/s)")
        print(f"  CRC-32 check, first time (reads the file) {crc_s * 1e3:9.2f} ms   ({n_bytes / crc_s / 1e9:.1f} GB/s) "
              f"= {100 * crc_s / base:.0f}% of hit + pass")
        print(f"  CRC-32 check, remembered (stat + memo)    {memo_s * 1e3:9.2f} ms   "
              f"= {100 * memo_s / base:.2f}% of hit + pass")
        print(f"  load average before/after: {load_before} / {load_after}")

        image_dir = Path(args.image_dir) if args.image_dir else None
        shared = config.shared_data_dir()
        if image_dir is None and shared is not None and (shared / "oxford_flowers102" / "jpg").is_dir():
            image_dir = shared / "oxford_flowers102" / "jpg"
        synthetic = image_dir is None
        load_before = _load()
        if synthetic:
            paths = _synthetic_images(root / "images", args.images)
            source = f"{len(paths)} synthetic JPEGs"
        else:
            paths = sorted(p for p in image_dir.iterdir() if p.is_file())
            source = f"{len(paths)} files of {image_dir}"
        total = sum(p.stat().st_size for p in paths)
        stat_s = _best(args.rounds, lambda: [p.stat() for p in paths])
        features.DIGEST_SETTLE_SECONDS = float("inf")  # remember nothing: every round reads every file
        try:
            sha_s = _best(args.rounds, lambda: features._content_digests(paths, "raise",
                                                                          features._DigestMemo(root / "none")))
        finally:
            features.DIGEST_SETTLE_SECONDS = settle
        features.DIGEST_SETTLE_SECONDS = 0.0 if synthetic else settle  # synthetic files were just written
        try:
            features._content_digests(paths, "raise", features._DigestMemo(root / "keys"))
            memo_key_s = _best(args.rounds, lambda: features._content_digests(paths, "raise",
                                                                               features._DigestMemo(root / "keys")))
        finally:
            features.DIGEST_SETTLE_SECONDS = settle
        load_after = _load()
        print(f"content keys: {source}, {total / 1e6:.0f} MB")
        print(f"  stat per file (the old path + mtime key)  {stat_s * 1e3:9.2f} ms")
        print(f"  SHA-256 of every file, first time         {sha_s * 1e3:9.2f} ms   ({total / sha_s / 1e6:.0f} MB/s)")
        print(f"  SHA-256 remembered (stat + memo)          {memo_key_s * 1e3:9.2f} ms")
        print(f"  load average before/after: {load_before} / {load_after}")
        print("RESULT " + " ".join([
            f"crc_seconds={crc_s:.4f}", f"crc_vs_hit_and_pass={crc_s / base:.3f}",
            f"memo_vs_hit_and_pass={memo_s / base:.4f}", f"sha256_seconds={sha_s:.4f}",
            f"memo_key_seconds={memo_key_s:.4f}", f"stat_seconds={stat_s:.4f}",
        ]))
    return 0
