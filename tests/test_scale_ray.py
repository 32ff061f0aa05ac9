"""Distributed extraction on a local Ray (2 CPUs, started here): the same features and the same cache entry as one
process, resumed after a killed job, bad images handled as locally (course_utils.scale.ray_extract)."""

from __future__ import annotations

import json

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from conftest import random_photo  # noqa: E402

from course_utils import features  # noqa: E402
from course_utils.imageio import BadImageError  # noqa: E402
from course_utils.scale import ray_extract  # noqa: E402

N_IMAGES = 12
OPTIONS = {"engine": "torch", "batch_size": 8, "progress": False}  # the same engine and batch on both sides


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list:
    """A dozen small JPEGs, and a file that is not an image in the middle of them (index 5)."""
    folder = tmp_path_factory.mktemp("ray-photos")
    paths = []
    for i in range(N_IMAGES):
        path = folder / f"photo{i:02d}.jpg"
        random_photo(i, (96, 72)).save(path, quality=90)
        paths.append(path)
    bad = folder / "not_a_photo.jpg"
    bad.write_bytes(b"this is not a JPEG")
    return [*paths[:5], bad, *paths[5:]]


@pytest.fixture
def one_thread(monkeypatch):
    """The single process with one torch thread, as each 1-CPU replica: the same arithmetic, bit for bit."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_same_features_same_entry_and_bad_image_skipped(local_ray, photos, tmp_path, one_thread):
    cache = tmp_path / "cache"
    distributed = ray_extract.extract(photos, views="mirror", cache=cache, on_error="skip", replicas=2,
                                      images_per_task=4, **OPTIONS)
    assert distributed.from_cache is False
    assert distributed["pool"].shape == (N_IMAGES + 1, 2, 1280)
    assert distributed.valid.tolist() == [i != 5 for i in range(N_IMAGES + 1)]
    assert [path for path, _ in distributed.skipped] == [str(photos[5])]
    assert np.isnan(distributed["pool"][5]).all() and np.isfinite(distributed["pool"][distributed.valid]).all()
    marker = json.loads((distributed.cache_path / "complete.json").read_text())
    assert marker["runner"] == "ray" and marker["replicas"] == 2 and marker["skipped"][0]["index"] == 5

    # the single-process extraction of the same inputs is a hit on the entry Ray wrote, with equal arrays ...
    hit = features.extract(photos, views="mirror", cache=cache, on_error="skip", **OPTIONS)
    assert hit.from_cache is True and hit.cache_path == distributed.cache_path
    assert hit.skipped == distributed.skipped
    # ... and the same as computing them in one process, without the cache
    local = features.extract(photos, views="mirror", cache=False, on_error="skip", **OPTIONS)
    np.testing.assert_array_equal(distributed["pool"], local["pool"])
    np.testing.assert_array_equal(hit["pool"], local["pool"])


def test_resume_after_killed_job(local_ray, photos, tmp_path, one_thread):
    cache, good = tmp_path / "cache", [p for p in photos if p.name != "not_a_photo.jpg"]

    def killed(done: int, total: int) -> None:
        raise KeyboardInterrupt  # the job dies once its first task's rows are stored

    with pytest.raises(KeyboardInterrupt):
        ray_extract.extract(good, cache=cache, replicas=2, images_per_task=3, on_batch=killed, **OPTIONS)
    (entry,) = (cache / "features").iterdir()
    progress = json.loads((entry / "progress.json").read_text())
    assert sum(stop - start for start, stop in progress["finished"]) == 3  # one task of 3 images
    assert not (entry / "complete.json").exists()
    kept = np.load(entry / "pool.npy")
    first = progress["finished"][0][0]

    calls: list[int] = []
    resumed = ray_extract.extract(good, cache=cache, replicas=2, images_per_task=3,
                                  on_batch=lambda done, total: calls.append(done), **OPTIONS)
    assert calls[0] == 6 and calls[-1] == N_IMAGES  # only the 9 unfinished images ran: 3 more tasks of 3
    assert len(calls) == 3 and not (entry / "progress.json").exists()
    np.testing.assert_array_equal(resumed["pool"][first : first + 3], kept[first : first + 3])
    local = features.extract(good, cache=False, **OPTIONS)
    np.testing.assert_array_equal(resumed["pool"], local["pool"])


def test_bad_image_raises_as_locally(local_ray, photos, tmp_path):
    with pytest.raises(BadImageError, match="not_a_photo.jpg"):
        ray_extract.extract(photos[4:6], cache=tmp_path / "cache", replicas=1, **OPTIONS)
    with pytest.raises(ValueError, match="replicas must be at least 1; got 0"):
        ray_extract.extract(photos[:2], cache=False, replicas=0, **OPTIONS)


def test_features_extract_dispatches_to_ray(local_ray, photos, tmp_path, one_thread):
    found = features.extract(photos[:4], cache=tmp_path / "cache", runner="ray", **OPTIONS)
    marker = json.loads((found.cache_path / "complete.json").read_text())
    assert marker["runner"] == "ray" and found["pool"].shape == (4, 1, 1280)
    with pytest.raises(ValueError, match="runner must be 'local' or 'ray'; got 'dask'"):
        features.extract(photos[:1], cache=False, runner="dask", **OPTIONS)


def test_a_bad_batch_size_fails_before_any_work_as_locally(photos):
    for extract in (features.extract, ray_extract.extract):
        with pytest.raises(ValueError, match="batch_size must be a positive number of views per forward pass; got 0"):
            extract(photos[:1], batch_size=0, cache=False, progress=False)
