"""Shared fixtures: a throw-away cache folder per test session, and sample photographs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

if TYPE_CHECKING:
    from course_utils.datasets.base import DatasetRecord

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    """Keep the tests' features, demo sets and downloads out of the user's real folders unless CI chose them."""
    if "COURSE_CACHE_DIR" not in os.environ:
        os.environ["COURSE_CACHE_DIR"] = str(tmp_path_factory.mktemp("course-cache"))
    if "COURSE_DATA_DIR" not in os.environ:
        os.environ["COURSE_DATA_DIR"] = str(tmp_path_factory.mktemp("course-data"))
    yield


@pytest.fixture(scope="session")
def chelsea() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.chelsea())


@pytest.fixture(scope="session")
def coffee() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.coffee())


@pytest.fixture(scope="session")
def lite0():
    from course_utils import backbones

    return backbones.load("efficientnet_lite0")


def random_photo(seed: int, size: tuple[int, int] = (64, 48)) -> Image.Image:
    """A small deterministic RGB image (smooth colour blobs, so JPEG stores it faithfully)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.BILINEAR)


def classes_record(tmp_path: Path | None = None) -> DatasetRecord:
    """A toy record: three classes a, b, c; per class 2 train, 1 val and 3 test images, in interleaved order."""
    from course_utils.datasets.base import DatasetRecord

    labels = np.array([0, 1, 2] * 6)
    split = np.array(["train"] * 6 + ["val"] * 3 + ["test"] * 9)
    root = tmp_path or Path("/nonexistent")
    return DatasetRecord("toy", "multiclass", root, [root / f"im{i:02d}.png" for i in range(18)], labels=labels,
                         class_names=["a", "b", "c"], split=split, protocol="toy protocol")


def few_shot_record(tmp_path: Path) -> DatasetRecord:
    """A toy record for few-shot draws: three classes of 5 training images each, 2 test images each."""
    from course_utils.datasets.base import DatasetRecord

    labels = np.array([0] * 5 + [1] * 5 + [2] * 5 + [0, 0, 1, 1, 2, 2])
    split = np.array(["train"] * 15 + ["test"] * 6)
    return DatasetRecord(name="toy", task="multiclass", root=tmp_path,
                         paths=[tmp_path / f"{i}.jpg" for i in range(21)], labels=labels, split=split)
