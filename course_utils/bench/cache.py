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
import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .. import cli, config, feature_store
from ..datasets.images import file_digest
from . import DIM_HELP, add_counts, apply_quick

QUICK = {"images": 500, "views": 4, "dim": 256}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``bench cache``; every size and count must be at least 1."""
    add_counts(parser, {"images": (8189, "rows of the entry (default 8189, Flowers-102)"),
                        "views": (16, "views per image (default 16, the paper's)"), "dim": (1280, DIM_HELP)}, QUICK)
    parser.add_argument("--image-dir", default=None,
                        help="images to name by content (default: shared oxford_flowers102/jpg, else synthetic)")
    parser.add_argument("--rounds", type=cli.positive_int, default=3,
                        help="timings per figure; the best is kept (default 3)")


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
    array = feature_store.create_array(entry / "pool.npy", shape, 4 * int(np.prod(shape)))
    rng = np.random.default_rng(0)
    for start in range(0, shape[0], 256):
        rows = array[start : start + 256]
        rows[:] = rng.standard_normal(rows.shape, dtype=np.float32)
    array.flush()
    del array
    feature_store.write_json(entry / "complete.json", {
        "cache_version": feature_store.CACHE_VERSION, "layers": ["pool"], "skipped": [],
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


def _time_entry(root: Path, shape: tuple[int, int, int], rounds: int) -> dict[str, float]:
    """Seconds (best of ``rounds``) to open a finished entry, to read it once, to check its CRC-32 the first time
    and once remembered; the entry is written under ``root`` first."""
    entry = root / "features" / "entry"
    _write_entry(entry, shape)
    view_names = [f"v{i}" for i in range(shape[1])]

    def template() -> feature_store.FeatureSet:
        return feature_store.FeatureSet({}, [Path(f"{i}.jpg") for i in range(shape[0])], view_names,
                                   np.ones(shape[0], dtype=bool))

    memo = feature_store.DigestMemo(root)

    def hit(verify: bool, memo: feature_store.DigestMemo = memo) -> np.ndarray:
        loaded = feature_store.load_entry(entry, template(), {"pool": shape}, memo, verify=verify)
        assert not isinstance(loaded, str), loaded
        return loaded["pool"]

    layer_file = entry / "pool.npy"
    times = {"open": _best(rounds, lambda: hit(False)), "pass": _best(rounds, lambda: _first_pass(hit(False))),
             "crc": _best(rounds, lambda: file_digest(layer_file, "crc32"))}  # the check, nothing remembered
    with _settled(0.0):  # the file was just written; as if it had settled
        hit(True)
        memo.save()
        times["memo"] = _best(rounds, lambda: feature_store.DigestMemo(root).digest(layer_file, "crc32"))
        assert not isinstance(hit(True, feature_store.DigestMemo(root)), str)
    return times


@contextlib.contextmanager
def _settled(seconds: float) -> Iterator[None]:
    """``feature_store.DIGEST_SETTLE_SECONDS`` set to ``seconds`` inside the block (``inf``: remember nothing)."""
    previous = feature_store.DIGEST_SETTLE_SECONDS
    feature_store.DIGEST_SETTLE_SECONDS = seconds
    try:
        yield
    finally:
        feature_store.DIGEST_SETTLE_SECONDS = previous


def _content_key_images(root: Path, image_dir: str | None, count: int) -> tuple[list[Path], str, bool]:
    """The images to name by content: ``image_dir``, else the shared Flowers-102 copy, else ``count`` synthetic
    JPEGs written under ``root``; with a description and whether they are synthetic."""
    folder = Path(image_dir) if image_dir else None
    shared = config.shared_data_dir()
    if folder is None and shared is not None and (shared / "oxford_flowers102" / "jpg").is_dir():
        folder = shared / "oxford_flowers102" / "jpg"
    if folder is None:
        paths = _synthetic_images(root / "images", count)
        return paths, f"{len(paths)} synthetic JPEGs", True
    paths = sorted(p for p in folder.iterdir() if p.is_file())
    return paths, f"{len(paths)} files of {folder}", False


def _time_content_keys(root: Path, paths: list[Path], synthetic: bool, rounds: int) -> dict[str, float]:
    """Seconds (best of ``rounds``) to stat every file, to hash every file and to read the hashes remembered."""
    times = {"stat": _best(rounds, lambda: [p.stat() for p in paths])}
    with _settled(float("inf")):  # remember nothing: every round reads every file
        times["sha"] = _best(rounds, lambda: feature_store.content_digests(paths, "raise",
                                                                       feature_store.DigestMemo(root / "none")))
    # synthetic files were just written: as if they had settled
    with _settled(0.0) if synthetic else contextlib.nullcontext():
        feature_store.content_digests(paths, "raise", feature_store.DigestMemo(root / "keys"))
        times["memo_key"] = _best(rounds, lambda: feature_store.content_digests(paths, "raise",
                                                                            feature_store.DigestMemo(root / "keys")))
    return times


def run(args: argparse.Namespace) -> int:
    apply_quick(args, QUICK)
    shape = (args.images, args.views, args.dim)
    n_bytes = 4 * int(np.prod(shape))
    print(f"bench cache: entry {shape[0]} x {shape[1]} x {shape[2]} float32 = {n_bytes / 1e6:.0f} MB; best of "
          f"{args.rounds}; page cache warm")
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        root = Path(tmp)
        load_before = _load()
        entry = _time_entry(root, shape, args.rounds)
        base = entry["open"] + entry["pass"]
        print(f"  hit, no check (open the memory map)       {entry['open'] * 1e3:9.2f} ms")
        print(f"  hit + a consumer's first pass (a sum)     {base * 1e3:9.2f} ms   "
              f"({n_bytes / entry['pass'] / 1e9:.1f} GB/s)")
        print(f"  CRC-32 check, first time (reads the file) {entry['crc'] * 1e3:9.2f} ms   "
              f"({n_bytes / entry['crc'] / 1e9:.1f} GB/s) = {100 * entry['crc'] / base:.0f}% of hit + pass")
        print(f"  CRC-32 check, remembered (stat + memo)    {entry['memo'] * 1e3:9.2f} ms   "
              f"= {100 * entry['memo'] / base:.2f}% of hit + pass")
        print(f"  load average before/after: {load_before} / {_load()}")

        load_before = _load()
        paths, source, synthetic = _content_key_images(root, args.image_dir, args.images)
        keys = _time_content_keys(root, paths, synthetic, args.rounds)
        total = sum(p.stat().st_size for p in paths)
        print(f"content keys: {source}, {total / 1e6:.0f} MB")
        print(f"  stat per file (the old path + mtime key)  {keys['stat'] * 1e3:9.2f} ms")
        print(f"  SHA-256 of every file, first time         {keys['sha'] * 1e3:9.2f} ms   "
              f"({total / keys['sha'] / 1e6:.0f} MB/s)")
        print(f"  SHA-256 remembered (stat + memo)          {keys['memo_key'] * 1e3:9.2f} ms")
        print(f"  load average before/after: {load_before} / {_load()}")
        print("RESULT " + " ".join([
            f"crc_seconds={entry['crc']:.4f}", f"crc_vs_hit_and_pass={entry['crc'] / base:.3f}",
            f"memo_vs_hit_and_pass={entry['memo'] / base:.4f}", f"sha256_seconds={keys['sha']:.4f}",
            f"memo_key_seconds={keys['memo_key']:.4f}", f"stat_seconds={keys['stat']:.4f}",
        ]))
    return 0
