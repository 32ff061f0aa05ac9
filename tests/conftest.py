"""Shared fixtures: a throw-away cache folder per test session, and sample photographs."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

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
