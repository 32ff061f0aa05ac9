"""Benchmark: how long the paper's CNNaug-SVM training takes, liblinear against the batched torch solver.

``python -m course_utils bench svm [--images 5000 --views 16 --classes 20 --dims 1280,4096 --quick]``

For each feature width it trains one-vs-rest linear SVMs (squared hinge, primal, the same C) on every view of every
training image, times both solvers in this one run, and scores held-out images by summing their view scores.
The features are synthetic but shaped like CNN features: a seeded Gaussian mixture (one cluster per class, each image
a jittered draw around its cluster, each view a jittered copy of its image) projected to D dimensions, with
isotropic noise, then L2-normalised. The last line is machine-readable::

    RESULT svm_seconds_4096=<s> svm_seconds_1280=<s> torch_speedup=<x> accuracy_gap=<points>

``svm_seconds_<D>`` is liblinear's training time, ``torch_speedup`` the ratio of liblinear's total time to the
torch solver's over all widths, and ``accuracy_gap`` the largest test-accuracy difference between the two (points).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from .. import cli
from ..classify import LinearSVMClassifier
from ..metrics import mean_class_accuracy
from ..normalize import l2_rows

QUICK = {"images": 200, "views": 2}
LATENT_DIM = 64


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``bench svm``; every count and width must be at least 1."""
    parser.add_argument("--images", type=cli.positive_int, default=5000, help="training images (default 5000, as VOC07)")
    parser.add_argument("--test-images", type=cli.positive_int, default=None,
                        help="held-out images (default: images / 4, at least one per class)")
    parser.add_argument("--views", type=cli.positive_int, default=16, help="views per image (default 16, the paper's)")
    parser.add_argument("--classes", type=cli.positive_int, default=20, help="classes, one-vs-rest (default 20)")
    parser.add_argument("--dims", type=cli.positive_int_list, default="1280,4096",
                        help="comma-separated feature widths (default 1280,4096)")
    parser.add_argument("--C", type=cli.positive_float, default=0.2, help="SVM C for both solvers (default 0.2, VOC's)")
    parser.add_argument("--device", type=cli.device_name, default=None,
                        help="torch solver device (default: cuda when available)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic features (default 0)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke-test size: {QUICK['images']} images x {QUICK['views']} views")


def synthetic_views(
    n_images: int, n_views: int, n_classes: int, dim: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(n_images, n_views, dim)`` float32 unit vectors and ``(n_images,)`` labels from a seeded Gaussian mixture.

    Class centres are drawn with std 0.5 per dimension of a 64-d latent space; each image adds latent noise
    (std 1) and each view further noise (std 0.5), so classes overlap (about 90% accuracy at 1,000 images x 4 views
    and 512 dims) and views of one image agree more than images of one class.
    A random projection to ``dim`` plus isotropic noise (std 0.5 / sqrt(64) per dimension) makes the features
    full-rank, as real CNN features are.
    """
    rng = np.random.default_rng(seed)
    centres = np.float32(0.5) * rng.standard_normal((n_classes, LATENT_DIM), dtype=np.float32)
    projection = rng.standard_normal((LATENT_DIM, dim), dtype=np.float32) / np.float32(np.sqrt(LATENT_DIM))
    labels = rng.integers(0, n_classes, n_images)
    features = np.empty((n_images, n_views, dim), dtype=np.float32)
    block = max(1, 4096 // n_views)
    for start in range(0, n_images, block):
        stop = min(start + block, n_images)
        images = centres[labels[start:stop]] + rng.standard_normal((stop - start, LATENT_DIM), dtype=np.float32)
        views = images[:, None, :] + np.float32(0.5) * rng.standard_normal(
            (stop - start, n_views, LATENT_DIM), dtype=np.float32
        )
        noise = rng.standard_normal((stop - start, n_views, dim), dtype=np.float32)
        features[start:stop] = views @ projection + np.float32(0.5 / np.sqrt(LATENT_DIM)) * noise
    return l2_rows(features), labels


def _time_fit(model: LinearSVMClassifier, X: np.ndarray, y: np.ndarray) -> float:
    start = time.perf_counter()
    model.fit(X, y)
    return time.perf_counter() - start


def run(args: argparse.Namespace) -> int:
    import torch

    images, views = (QUICK["images"], QUICK["views"]) if args.quick else (args.images, args.views)
    test_images = args.test_images or max(args.classes, images // 4)
    dims = args.dims
    if images < args.classes:
        raise cli.UsageError(f"--images ({images}) must be at least --classes ({args.classes}).")
    print(f"bench svm: {args.classes}-class one-vs-rest, {images} train images x {views} views "
          f"(= {images * views} training vectors), {test_images} test images, C={args.C}, seed={args.seed}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; liblinear is single-threaded")

    # One tiny fit first, so that neither solver's timing includes one-off start-up costs (thread pools, kernels).
    warm_X, warm_y = synthetic_views(2 * args.classes, 1, args.classes, 16, seed=args.seed)
    for solver in ("liblinear", "torch"):
        LinearSVMClassifier(C=args.C, solver=solver, device=args.device).fit(warm_X, warm_y)

    print(f"{'dims':>6} {'liblinear s':>12} {'torch s':>9} {'speed-up':>9} {'acc liblinear':>14} {'acc torch':>10}")
    liblinear_seconds, torch_seconds, gaps = {}, {}, []
    for dim in dims:
        X, y = synthetic_views(images + test_images, views, args.classes, dim, seed=args.seed)
        X_train, y_train, X_test, y_test = X[:images], y[:images], X[images:], y[images:]
        accuracy = {}
        for solver, seconds in (("liblinear", liblinear_seconds), ("torch", torch_seconds)):
            model = LinearSVMClassifier(C=args.C, solver=solver, device=args.device)
            seconds[dim] = _time_fit(model, X_train, y_train)
            accuracy[solver] = 100 * mean_class_accuracy(y_test, model.predict(X_test))
        gaps.append(abs(accuracy["liblinear"] - accuracy["torch"]))
        print(f"{dim:>6} {liblinear_seconds[dim]:>12.2f} {torch_seconds[dim]:>9.2f} "
              f"{liblinear_seconds[dim] / torch_seconds[dim]:>8.1f}x {accuracy['liblinear']:>13.2f}% "
              f"{accuracy['torch']:>9.2f}%")
        del X, X_train, X_test

    speedup = sum(liblinear_seconds.values()) / sum(torch_seconds.values())
    fields = [f"svm_seconds_{dim}={liblinear_seconds[dim]:.2f}" for dim in sorted(dims, reverse=True)]
    print("RESULT " + " ".join([*fields, f"torch_speedup={speedup:.2f}", f"accuracy_gap={max(gaps):.2f}"]))
    return 0


if __name__ == "__main__":
    cli = argparse.ArgumentParser(prog="python -m course_utils.bench.svm", description=__doc__.split("\n")[0])
    add_arguments(cli)
    raise SystemExit(run(cli.parse_args()))
