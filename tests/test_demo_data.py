"""The embedded demo sets: deterministic, well formed, honest splits, and rebuilt only when needed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from course_utils import datasets
from course_utils.datasets import demo
from course_utils.datasets.images import save_image

BUILDERS = {
    "demo_retrieval": demo.demo_retrieval, "demo_classes": demo.demo_classes, "demo_faces": demo.demo_faces,
}


def build_all(cache: Path) -> dict[str, datasets.DatasetRecord]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_CACHE_DIR", str(cache))
        return {name: build() for name, build in BUILDERS.items()}


def file_hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, datasets.DatasetRecord]:
    return build_all(tmp_path_factory.mktemp("demo-cache"))


def assert_images_decode(record: datasets.DatasetRecord) -> list[tuple[int, int]]:
    sizes = []
    for path in record.paths:
        assert path.is_file() and path.is_relative_to(record.root)
        with Image.open(path) as image:
            image.load()
            sizes.append(image.size)
    return sizes


@pytest.mark.slow
def test_two_builds_in_two_caches_are_byte_identical(built, tmp_path):
    again = build_all(tmp_path)
    for name, record in built.items():
        first, second = file_hashes(record.root), file_hashes(again[name].root)
        assert first == second, name
        assert "manifest.csv" in first and len(first) == len(record) + 1  # images + manifest, nothing else
        assert [p.relative_to(record.root) for p in record.paths] == \
               [p.relative_to(again[name].root) for p in again[name].paths]


def test_manifest_starts_with_the_version_and_lists_every_image(built):
    for name, record in built.items():
        lines = (record.root / "manifest.csv").read_text().splitlines()
        assert lines[0] == f"# course_utils demo set {name}, version {demo.VERSION}"
        assert lines[1].startswith("path,split,") and lines[1].endswith(",sha256")
        assert len(lines) == 2 + len(record)


def test_retrieval_set_ground_truth(built):
    rec = built["demo_retrieval"]
    assert rec.task == "retrieval" and len(rec.queries) == 20 and len(rec.database) == 53 and len(rec) == 73
    db = set(rec.database.tolist())
    assert set(np.flatnonzero(rec.split == "db")) == db
    assert {q.index for q in rec.queries} == set(np.flatnonzero(rec.split == "query"))
    for q in rec.queries:
        assert q.index not in db and q.positives and set(q.positives) <= db and q.junk == []
        assert rec.paths[q.index].parent.name == "queries" and rec.paths[q.index].stem == q.name
    by_name = {q.name: q for q in rec.queries}
    names = [p.relative_to(rec.root).as_posix() for p in rec.paths]
    positives = {n: sorted(names[i] for i in q.positives) for n, q in by_name.items()}
    assert positives["motorcycle_other_camera"] == ["db/motorcycle.jpg"]
    assert positives["chelsea_rotated_jpeg"] == ["db/chelsea.jpg", "db/chelsea_mirrored.jpg"]
    assert positives["hubble_detail"] == ["db/hubble_0.jpg"]
    # look-alike distractors: other tiles of the same large images are in the database but are not positives
    assert {"db/hubble_1.jpg", "db/retina_0.jpg", "db/gravel_0.jpg"} <= set(names)


def test_retrieval_images_are_small_and_transformed_as_described(built):
    rec = built["demo_retrieval"]
    names = [p.relative_to(rec.root).as_posix() for p in rec.paths]
    sizes = dict(zip(names, assert_images_decode(rec), strict=True))
    assert all(max(size) <= demo.DB_SIZE for size in sizes.values())
    # chelsea is 451 x 300: stored as 320 x 213; its quarter-turned query is 213 x 320
    assert sizes["db/chelsea.jpg"] == (320, 213) and sizes["queries/chelsea_rotated_jpeg.jpg"] == (213, 320)
    assert sizes["queries/astronaut_detail.jpg"] == (demo.SMALL_CROP_SIZE, demo.SMALL_CROP_SIZE)
    assert sizes["db/coffee_small.jpg"] == (200, 133)  # the near-duplicate rescaled to a longer side of 200


def test_classes_set_counts_sizes_and_labels(built):
    rec = built["demo_classes"]
    assert rec.task == "multiclass" and len(rec.class_names) == 8
    assert rec.class_names == ["brick", "grass", "gravel", "moon", "galaxies", "tissue", "retina", "cells"]
    assert set(np.unique(rec.labels)) == set(range(8))
    for label in range(8):
        mine = rec.split[rec.labels == label]
        assert (mine == "train").sum() == demo.TRAIN_PER_CLASS == 16
        assert (mine == "test").sum() == demo.TEST_PER_CLASS == 8
    assert all(p.parent.name == rec.class_names[k] for p, k in zip(rec.paths, rec.labels, strict=True))
    assert set(assert_images_decode(rec)) == {(demo.CLASS_CROP_SIZE, demo.CLASS_CROP_SIZE)}


def test_classes_are_not_separable_by_raw_pixels(built):
    """Colour jitter and random grayscale: a 1-nearest-neighbour on raw pixels must be far from perfect."""
    rec = built["demo_classes"]
    pixels = np.stack([np.asarray(Image.open(p).resize((16, 16)), dtype=float).ravel() for p in rec.paths])
    train, test = rec.indices("train"), rec.indices("test")
    distances = ((pixels[test, None, :] - pixels[None, train, :]) ** 2).sum(-1)
    accuracy = (rec.labels[train][distances.argmin(1)] == rec.labels[test]).mean()
    assert 1 / 8 < accuracy < 0.8


def test_class_crops_stay_inside_their_region():
    """Training crops come from the left two thirds, test crops from the right third: disjoint pixels."""
    image = Image.new("RGB", (300, 200), (0, 0, 0))
    image.paste((255, 255, 255), (200, 0, 300, 200))  # the "test" third is white
    rng = np.random.default_rng(0)
    for _ in range(20):
        train = np.asarray(demo._jittered_crop(image, (0, 0, 200, 200), rng))
        test = np.asarray(demo._jittered_crop(image, (200, 0, 300, 200), rng))
        assert train.max() == 0 and test.min() > 100


def test_faces_set_is_the_lfw_subset_upscaled(built):
    from skimage.data import lfw_subset

    rec = built["demo_faces"]
    assert rec.task == "attributes" and rec.class_names == ["face"] and rec.labels.shape == (200, 1)
    assert rec.labels[:100, 0].tolist() == [1] * 100 and rec.labels[100:, 0].tolist() == [0] * 100
    for value in (0, 1):
        in_class = rec.split[rec.labels[:, 0] == value]
        assert (in_class == "test").sum() == demo.FACES_TEST_PER_CLASS and (in_class == "train").sum() == 70
    assert set(assert_images_decode(rec)) == {(demo.FACE_SIZE, demo.FACE_SIZE)}
    original = lfw_subset()
    for i in (0, 99, 150):
        small = Image.open(rec.paths[i]).convert("L").resize((25, 25), Image.BOX)
        back = np.asarray(small, dtype=float) / 255
        assert np.abs(back - original[i]).mean() < 0.03


def test_registry_loads_the_same_cached_set(built, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(built["demo_faces"].root.parents[1]))
    assert datasets.load("demo_faces").paths == built["demo_faces"].paths


def test_complete_set_is_reused_not_rebuilt(built, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(built["demo_faces"].root.parents[1]))

    def fail(root):
        raise AssertionError("the cached set should have been reused")

    monkeypatch.setattr(demo, "_build_faces", fail)
    assert len(demo.demo_faces()) == 200


# The cache machinery is the same for every set: exercise it with a three-image set so rebuilds are quick.
class TinySet:
    def __init__(self) -> None:
        self.builds = 0

    def __call__(self, root: Path) -> list[dict[str, str]]:
        self.builds += 1
        rows = []
        for i in range(3):
            save_image(Image.new("RGB", (8, 8), (80 * i, 10, 200)), root / "images" / f"{i}.png")
            rows.append({"path": f"images/{i}.png", "split": "train"})
        return rows


@pytest.fixture
def tiny(tmp_path, monkeypatch) -> tuple[TinySet, Path]:
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    builder = TinySet()
    root, rows = demo._ensure_built("tiny", builder)
    assert builder.builds == 1 and [r["path"] for r in rows] == [f"images/{i}.png" for i in range(3)]
    return builder, root


def test_tiny_set_is_reused_while_complete(tiny):
    builder, root = tiny
    assert demo._ensure_built("tiny", builder)[0] == root and builder.builds == 1


@pytest.mark.parametrize("damage", ["delete manifest", "garbage manifest", "truncate image", "delete image",
                                    "wrong checksum"])
def test_damaged_set_is_rebuilt(tiny, damage):
    builder, root = tiny
    before = file_hashes(root)
    image, manifest = root / "images" / "1.png", root / "manifest.csv"
    if damage == "delete manifest":
        manifest.unlink()
    elif damage == "garbage manifest":
        manifest.write_bytes(b"\xff\xfe not a manifest")
    elif damage == "truncate image":
        image.write_bytes(image.read_bytes()[:20])
    elif damage == "delete image":
        image.unlink()
    else:
        manifest.write_text(manifest.read_text().replace(before["images/1.png"], "0" * 64))
    demo._ensure_built("tiny", builder)
    assert builder.builds == 2 and file_hashes(root) == before
    assert [p.name for p in root.parent.iterdir()] == ["tiny"]  # no temporary or stale folder left behind


def test_new_version_triggers_a_rebuild(tiny, monkeypatch):
    builder, root = tiny
    monkeypatch.setattr(demo, "VERSION", demo.VERSION + 1)
    demo._ensure_built("tiny", builder)
    assert builder.builds == 2
    first_line = (root / "manifest.csv").read_text().splitlines()[0]
    assert first_line == f"# course_utils demo set tiny, version {demo.VERSION}"


def test_failed_build_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))

    def half_build(root):
        save_image(Image.new("RGB", (8, 8)), root / "images" / "partial.png")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        demo._ensure_built("tiny", half_build)
    assert list((tmp_path / "demo").iterdir()) == []
