"""Embedded demo sets, built offline from photographs that ship inside installed packages.

The course must run with no network, so its default data are made from the sample images bundled in the
scikit-image, scikit-learn and matplotlib wheels (only the files inside the wheels: none of scikit-image's
pooch downloads). Three sets mirror the paper's three kinds of task:

* :func:`demo_retrieval`: an INRIA-Holidays-style instance retrieval set. The database holds the photographs
  (plus a few near-duplicate copies) and many distractors, including tiles cut from the same large images as
  some query photos; the queries are transformed copies (crops, rescaling, rotations, colour shifts, JPEG
  re-compression, occlusion, and details: square crops of 40% of the shorter side, the scale of the finest
  spatial-search patches). Queries are not in the database.
* :func:`demo_classes`: eight texture/material classes (brick, grass, gravel, moon surface, galaxies, stained
  tissue, retina, cells). Every class is cut from one large photograph: training crops from its left two
  thirds, test crops from its right third, so no test pixel was seen in training; colour jitter and random
  grayscale keep raw pixels from giving the answer away.
* :func:`demo_faces`: scikit-image's LFW subset (100 faces, then 100 non-face patches, 25 x 25), upscaled, as
  a one-attribute set ("face").

Each set is built once into ``config.cache_dir()/demo/<set>/`` with a ``manifest.csv`` (a version line, then
one row per image with its split, labels or ground truth, and SHA-256); a class's read-only shared cache
(``config.shared_cache_dir()/demo/<set>/``) that holds a complete, current set is read in place instead, never
written. The build happens in a temporary folder that is renamed into place, so a half-built set is never read;
a set is rebuilt when its manifest is missing, unreadable, of another :data:`VERSION`, or lists a file that is
missing or changed. Builds are deterministic: fixed seeds, fixed JPEG settings and no metadata, so the same
environment always gives byte-identical files; they are readable by other accounts (the umask's permissions).
"""

from __future__ import annotations

import csv
import functools
import io
import os
import shutil
import tempfile
import uuid
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageEnhance

from .. import config
from . import specs
from .base import DatasetRecord, Query
from .images import resize_longer_side, save_image, sha256_file, to_rgb_image

VERSION = 1  # bump whenever a builder changes what it writes: cached sets of another version are rebuilt
SEED = 0
DB_SIZE = 320  # longer side of database and query images: small enough for fast CPU extraction
SMALL_CROP_SIZE = 256
CLASS_CROP_SIZE = 160
FACE_SIZE = 100

Row = dict[str, str]


# ----------------------------------------------------------------------------------------------------------
# Source photographs (all read from files inside installed wheels)
# ----------------------------------------------------------------------------------------------------------


@functools.cache
def _source(package: str, name: str) -> Image.Image:
    """One bundled sample image as RGB, decoded once per build (tiles and queries reuse it, never mutate it).

    ``package`` is ``skimage`` (a ``skimage.data`` function; ``stereo_motorcycle:0``/``:1`` pick a camera),
    ``sklearn`` (``load_sample_image``) or ``matplotlib`` (``cbook.get_sample_data``).
    """
    if package == "skimage":
        import skimage.data

        function, _, view = name.partition(":")
        array = getattr(skimage.data, function)()
        return to_rgb_image(array[int(view)] if view else array)
    if package == "sklearn":
        from sklearn.datasets import load_sample_image

        return to_rgb_image(load_sample_image(name))
    from matplotlib import cbook

    with cbook.get_sample_data(name) as f, Image.open(f) as im:
        return to_rgb_image(np.asarray(im.convert("RGBA")))


def _skimage(name: str) -> Callable[[], Image.Image]:
    return lambda: _source("skimage", name)


def _sklearn(name: str) -> Callable[[], Image.Image]:
    return lambda: _source("sklearn", name)


def _matplotlib(name: str) -> Callable[[], Image.Image]:
    return lambda: _source("matplotlib", name)


def _tile(load: Callable[[], Image.Image], box: tuple[int, int, int, int]) -> Callable[[], Image.Image]:
    return lambda: load().crop(box)


def _grid(name: str, load: Callable[[], Image.Image], box: tuple[int, int, int, int],
          rows: int, cols: int) -> dict[str, Callable[[], Image.Image]]:
    """``rows x cols`` disjoint tiles of ``box``, named ``name_0`` ... row by row: look-alike photos."""
    x0, y0, x1, y1 = box
    w, h = (x1 - x0) // cols, (y1 - y0) // rows
    tiles = {}
    for r in range(rows):
        for c in range(cols):
            left, top = x0 + c * w, y0 + r * h
            tiles[f"{name}_{r * cols + c}"] = _tile(load, (left, top, left + w, top + h))
    return tiles


_retina = _skimage("retina")
_RETINA_SQUARE = (220, 220, 1190, 1190)  # the fundus is a disc: this square lies inside it (no black border)

PHOTOS: dict[str, Callable[[], Image.Image]] = {
    "astronaut": _skimage("astronaut"),
    "chelsea": _skimage("chelsea"),
    "coffee": _skimage("coffee"),
    "rocket": _skimage("rocket"),
    "camera": _skimage("camera"),
    "coins": _skimage("coins"),
    "clock": _skimage("clock"),
    "brick": _skimage("brick"),
    "grass": _skimage("grass"),
    "gravel": _skimage("gravel"),
    "moon": _skimage("moon"),
    "page": _skimage("page"),
    "text": _skimage("text"),
    "cell": _skimage("cell"),
    "colorwheel": _skimage("colorwheel"),
    "skimage_logo": _skimage("logo"),
    "horse": _skimage("horse"),
    "phantom": _skimage("shepp_logan_phantom"),
    "china": _sklearn("china.jpg"),
    "flower": _sklearn("flower.jpg"),
    "grace_hopper": _matplotlib("grace_hopper.jpg"),
    "blue_pack": _matplotlib("Minduka_Present_Blue_Pack.png"),
    "matplotlib_logo": _matplotlib("logo2.png"),
    "motorcycle": _skimage("stereo_motorcycle:0"),
    "motorcycle_right": _skimage("stereo_motorcycle:1"),  # the other camera: a real second view
    **_grid("ihc", _skimage("immunohistochemistry"), (0, 0, 512, 512), 1, 2),
    **_grid("brick", _skimage("brick"), (0, 0, 512, 512), 2, 2),
    **_grid("gravel", _skimage("gravel"), (0, 0, 512, 512), 2, 2),
    **_grid("hubble", _skimage("hubble_deep_field"), (0, 0, 1000, 872), 3, 3),
    **_grid("retina", _retina, _RETINA_SQUARE, 3, 3),
    "hubble": _skimage("hubble_deep_field"),
    "ihc": _skimage("immunohistochemistry"),
    "retina_central": _tile(_retina, _RETINA_SQUARE),
}


def _rng(*keys: str) -> np.random.Generator:
    """A generator seeded by :data:`SEED` and names: an item's randomness does not depend on build order."""
    return np.random.default_rng([SEED, *(zlib.crc32(k.encode()) for k in keys)])


# ----------------------------------------------------------------------------------------------------------
# Photometric and geometric transforms (each: image, rng, parameter -> image)
# ----------------------------------------------------------------------------------------------------------


def _crop(img: Image.Image, rng: np.random.Generator, area: float) -> Image.Image:
    """A random crop holding ``area`` of the image, same aspect ratio (a re-framed photo)."""
    w, h = img.size
    cw, ch = round(w * area**0.5), round(h * area**0.5)
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return img.crop((x, y, x + cw, y + ch))


def _small_crop(img: Image.Image, rng: np.random.Generator, side: float) -> Image.Image:
    """A square crop, ``side`` times the shorter side, enlarged to 256 px: a small part of the photo."""
    s = round(min(img.size) * side)
    x, y = int(rng.integers(0, img.size[0] - s + 1)), int(rng.integers(0, img.size[1] - s + 1))
    return img.crop((x, y, x + s, y + s)).resize((SMALL_CROP_SIZE, SMALL_CROP_SIZE), Image.Resampling.BICUBIC)


def _rotate(img: Image.Image, rng: np.random.Generator, quarter_turns: float) -> Image.Image:
    """Rotation by a multiple of 90 degrees (a camera held sideways)."""
    turns = {1: Image.Transpose.ROTATE_90, 2: Image.Transpose.ROTATE_180, 3: Image.Transpose.ROTATE_270}
    return img.transpose(turns[int(quarter_turns) % 4])


def _colour(img: Image.Image, rng: np.random.Generator, strength: float) -> Image.Image:
    """Hue shift, saturation, brightness and a per-channel tint (the tint also changes gray images)."""
    hsv = np.asarray(img.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(int) + int(rng.uniform(-40, 40) * strength)) % 256
    out = Image.fromarray(hsv, mode="HSV").convert("RGB")
    out = ImageEnhance.Color(out).enhance(1 + rng.uniform(-0.5, 0.5) * strength)
    out = ImageEnhance.Brightness(out).enhance(1 + rng.uniform(-0.3, 0.3) * strength)
    tint = 1 + rng.uniform(-0.2, 0.2, size=3) * strength
    return Image.fromarray(np.clip(np.asarray(out) * tint, 0, 255).astype(np.uint8))


def _jpeg(img: Image.Image, rng: np.random.Generator, quality: float) -> Image.Image:
    """Re-compression at a low JPEG quality (block artefacts), decoded again."""
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def _occlude(img: Image.Image, rng: np.random.Generator, area: float) -> Image.Image:
    """A flat rectangle hiding ``area`` of the image at a random place (something in front of the object)."""
    w, h = img.size
    rw, rh = round(w * area**0.5), round(h * area**0.5)
    x, y = int(rng.integers(0, w - rw + 1)), int(rng.integers(0, h - rh + 1))
    out = img.copy()
    out.paste(tuple(int(v) for v in rng.integers(0, 256, size=3)), (x, y, x + rw, y + rh))
    return out


def _rescale(img: Image.Image, rng: np.random.Generator, size: float) -> Image.Image:
    """Downscale to a longer side of ``size`` px (a lower-resolution copy)."""
    return resize_longer_side(img, int(size))


def _mirror(img: Image.Image, rng: np.random.Generator, _: float = 0) -> Image.Image:
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


_STEPS: dict[str, Callable[[Image.Image, np.random.Generator, float], Image.Image]] = {
    "crop": _crop, "small_crop": _small_crop, "rotate": _rotate, "colour": _colour, "jpeg": _jpeg,
    "occlude": _occlude, "rescale": _rescale, "mirror": _mirror,
}

Steps = Sequence[tuple[str, float]]


def _apply(img: Image.Image, steps: Steps, rng: np.random.Generator) -> Image.Image:
    for name, param in steps:
        img = _STEPS[name](img, rng, param)
    return img


def _describe(steps: Steps) -> str:
    return "+".join(f"{name}({param:g})" for name, param in steps) or "original"


# ----------------------------------------------------------------------------------------------------------
# Manifest and atomic, versioned cache folders
# ----------------------------------------------------------------------------------------------------------


def _version_line(set_name: str) -> str:
    return f"# course_utils demo set {set_name}, version {VERSION}"


def _read_manifest(root: Path, set_name: str) -> list[Row] | None:
    """The manifest's rows when the set under ``root`` is complete and current, else ``None`` (rebuild it)."""
    try:
        with open(root / "manifest.csv", encoding="utf-8", newline="") as f:
            if f.readline().rstrip("\r\n") != _version_line(set_name):
                return None
            rows = list(csv.DictReader(f))
        if not rows or any(sha256_file(root / row["path"]) != row["sha256"] for row in rows):
            return None
    except (OSError, UnicodeDecodeError, csv.Error, KeyError, TypeError):
        return None
    return rows


def _write_manifest(root: Path, set_name: str, rows: list[Row]) -> None:
    for row in rows:
        row["sha256"] = sha256_file(root / row["path"])
    with open(root / "manifest.csv", "w", encoding="utf-8", newline="") as f:
        f.write(_version_line(set_name) + "\n")
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _install(build: Path, root: Path, set_name: str) -> None:
    """Rename the finished ``build`` folder to ``root``, replacing a stale set; tolerate concurrent builds."""
    stale = root.with_name(f".{root.name}.stale-{uuid.uuid4().hex}")
    try:
        root.rename(stale)
    except FileNotFoundError:  # nothing to replace (or a concurrent builder moved it first)
        pass
    try:
        build.rename(root)
    except OSError:  # another process installed the set between our rename and this one
        shutil.rmtree(build, ignore_errors=True)
        if _read_manifest(root, set_name) is None:
            raise
    shutil.rmtree(stale, ignore_errors=True)


def _ensure_built(set_name: str, builder: Callable[[Path], list[Row]]) -> tuple[Path, list[Row]]:
    """The folder and manifest rows of demo set ``set_name``, building it first when missing or stale.

    A complete, current set in the class's read-only shared cache (:func:`config.shared_cache_dir`) is used where
    it lies, and nothing is written there; otherwise the set is built into the learner's own cache. Either way the
    feature cache names its images by content, so features warmed from the teacher's copy are hits for a student's.
    """
    shared = config.shared_cache_dir()
    if shared is not None:
        rows = _read_manifest(shared / "demo" / set_name, set_name)
        if rows is not None:
            return shared / "demo" / set_name, rows
    root = config.cache_dir() / "demo" / set_name
    rows = _read_manifest(root, set_name)
    if rows is not None:
        return root, rows
    root.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{set_name}.build-"))
    try:
        _write_manifest(build, set_name, builder(build))
        _readable_by_others(build)
        _install(build, root, set_name)
    finally:
        shutil.rmtree(build, ignore_errors=True)  # only left when the build or install failed
        _source.cache_clear()  # the decoded sources are only needed while building
    rows = _read_manifest(root, set_name)
    if rows is None:
        raise RuntimeError(f"Demo set {set_name!r} under {root} is incomplete right after building it; "
                           f"delete {root} and try again.")
    return root, rows


def _readable_by_others(folder: Path) -> None:
    """Give ``folder`` and everything in it the permissions the process's umask gives a new folder or file:
    ``tempfile`` makes the build folder ``0700`` and the atomic writes' files ``0600``, which would hide a set
    built by a teacher into a shared cache from every student."""
    umask = _umask()
    for path in [folder, *folder.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it; elsewhere set and restored at once."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ----------------------------------------------------------------------------------------------------------
# demo_retrieval
# ----------------------------------------------------------------------------------------------------------


class _Copy(NamedTuple):
    name: str
    photo: str  # the database photo this image shows (its ground-truth group)
    steps: Steps = ()
    image: str = ""  # source image when it is not the photo itself (e.g. the other stereo camera)


# Database photos that have queries, then database near-duplicates (extra positives), then distractors.
# Tiles of one large image (hubble_*, retina_*, brick_*, gravel_*, ihc_*) are separate photos: hard
# distractors for each other.
_QUERY_PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "china", "flower", "grace_hopper", "motorcycle", "coins",
    "ihc_0", "hubble_0", "hubble_4", "retina_1", "retina_6", "brick_0", "gravel_3",
)
_DB_COPIES = (
    _Copy("chelsea_mirrored", "chelsea", (("mirror", 0), ("colour", 0.5))),
    _Copy("coffee_small", "coffee", (("rescale", 200), ("colour", 0.7))),
    _Copy("china_recompressed", "china", (("jpeg", 30), ("colour", 0.3))),
)
_DISTRACTORS = (
    "camera", "clock", "grass", "moon", "page", "text", "cell", "colorwheel", "skimage_logo", "horse",
    "phantom", "blue_pack", "matplotlib_logo", "ihc_1", "brick_1", "brick_2", "brick_3",
    "gravel_0", "gravel_1", "gravel_2",
    *(f"hubble_{i}" for i in (1, 2, 3, 5, 6, 7, 8)), *(f"retina_{i}" for i in (0, 2, 3, 4, 5, 7, 8)),
)
_QUERIES = (
    _Copy("astronaut_crop_colour", "astronaut", (("crop", 0.6), ("colour", 1))),
    _Copy("astronaut_detail", "astronaut", (("small_crop", 0.4),)),
    _Copy("chelsea_rotated_jpeg", "chelsea", (("rotate", 1), ("jpeg", 20))),
    _Copy("coffee_occluded", "coffee", (("crop", 0.8), ("occlude", 0.3))),
    _Copy("rocket_colour_small", "rocket", (("colour", 1), ("rescale", 200))),
    _Copy("rocket_detail", "rocket", (("small_crop", 0.4),)),
    _Copy("china_crop_rotated", "china", (("crop", 0.4), ("rotate", 3))),
    _Copy("flower_jpeg_colour", "flower", (("jpeg", 15), ("colour", 1))),
    _Copy("flower_detail", "flower", (("small_crop", 0.4),)),
    _Copy("grace_hopper_rotated_occluded", "grace_hopper", (("rotate", 1), ("occlude", 0.3))),
    _Copy("grace_hopper_detail", "grace_hopper", (("small_crop", 0.4), ("colour", 0.5))),
    _Copy("motorcycle_other_camera", "motorcycle", (("crop", 0.85),), image="motorcycle_right"),
    _Copy("coins_rotated_tinted", "coins", (("rotate", 2), ("colour", 1))),
    _Copy("ihc_crop_colour", "ihc_0", (("crop", 0.5), ("colour", 0.8))),
    _Copy("hubble_detail", "hubble_0", (("small_crop", 0.4),)),
    _Copy("hubble_rotated_jpeg", "hubble_4", (("rotate", 1), ("crop", 0.6), ("jpeg", 30))),
    _Copy("retina_rotated_crop", "retina_1", (("rotate", 1), ("crop", 0.6))),
    _Copy("retina_detail", "retina_6", (("small_crop", 0.4), ("colour", 0.5))),
    _Copy("brick_crop_colour", "brick_0", (("crop", 0.6), ("colour", 1))),
    _Copy("gravel_detail_rotated", "gravel_3", (("small_crop", 0.4), ("rotate", 1))),
)


def _save(img: Image.Image, root: Path, rel: str) -> str:
    save_image(resize_longer_side(img, DB_SIZE) if max(img.size) > DB_SIZE else img, root / rel)
    return rel


def _build_retrieval(root: Path) -> list[Row]:
    db_path = {photo: f"db/{photo}.jpg" for photo in _QUERY_PHOTOS}
    group: dict[str, list[str]] = {photo: [db_path[photo]] for photo in _QUERY_PHOTOS}
    rows: list[Row] = []

    def row(path: str, split: str, photo: str, steps: Steps, positives: str = "") -> Row:
        return {"path": path, "split": split, "photo": photo, "transform": _describe(steps),
                "positives": positives}

    for photo in _QUERY_PHOTOS:
        rows.append(row(_save(PHOTOS[photo](), root, db_path[photo]), "db", photo, ()))
    for copy in _DB_COPIES:
        img = _apply(PHOTOS[copy.photo](), copy.steps, _rng("retrieval", copy.name))
        rows.append(row(_save(img, root, f"db/{copy.name}.jpg"), "db", copy.photo, copy.steps))
        group[copy.photo].append(f"db/{copy.name}.jpg")
    for photo in _DISTRACTORS:
        rows.append(row(_save(PHOTOS[photo](), root, f"db/{photo}.jpg"), "db", photo, ()))
    for q in _QUERIES:
        img = _apply(PHOTOS[q.image or q.photo](), q.steps, _rng("retrieval", q.name))
        path = _save(img, root, f"queries/{q.name}.jpg")
        rows.append(row(path, "query", q.photo, q.steps, " ".join(group[q.photo])))
    return rows


def demo_retrieval() -> DatasetRecord:
    """Embedded instance-retrieval set in the style of INRIA Holidays (built on first use, then cached).

    53 database images (16 photographs, 3 near-duplicate copies of them, 34 distractors) and 20 query images,
    none of them in the database. A query's positives are the database images of its photograph (1 or 2).
    Metric: mAP over the queries, ranking ``database`` by L2 distance.
    """
    root, rows = _ensure_built("demo_retrieval", _build_retrieval)
    index = {row["path"]: i for i, row in enumerate(rows)}
    queries = [
        Query(index=i, positives=[index[p] for p in row["positives"].split()], name=Path(row["path"]).stem)
        for i, row in enumerate(rows) if row["split"] == "query"
    ]
    return DatasetRecord(
        name="demo_retrieval", task="retrieval", root=root, paths=[root / row["path"] for row in rows],
        split=np.array([row["split"] for row in rows]), queries=queries,
        database=np.array([i for i, row in enumerate(rows) if row["split"] == "db"]), metric=specs.get("demo_retrieval").metric,
        protocol="Holidays-style: each query is a transformed copy of one database photograph (crop, "
                 "rescale, 90-degree rotation, colour shift, JPEG re-compression, occlusion or a small "
                 "crop); positives are that photograph's database images; queries are not in the "
                 "database; no junk.",
        paper_table="Table 7 (Holidays), as a small offline stand-in",
    )


# ----------------------------------------------------------------------------------------------------------
# demo_classes
# ----------------------------------------------------------------------------------------------------------

# class name -> source photo; every crop's side is 18-32% of its photo's shorter side
_CLASS_PHOTOS: dict[str, str] = {
    "brick": "brick", "grass": "grass", "gravel": "gravel", "moon": "moon", "galaxies": "hubble",
    "tissue": "ihc", "retina": "retina_central", "cells": "cell",
}
CLASS_CROP_SIDES = (0.18, 0.32)
TRAIN_PER_CLASS, TEST_PER_CLASS = 16, 8


def _jittered_crop(
    img: Image.Image, region: tuple[int, int, int, int], rng: np.random.Generator
) -> Image.Image:
    """A random square crop inside ``region``, flipped, colour-jittered, sometimes made gray; 160 x 160 px."""
    x0, y0, x1, y1 = region
    side = min(round(min(img.size) * rng.uniform(*CLASS_CROP_SIDES)), x1 - x0, y1 - y0)
    x, y = int(rng.integers(x0, x1 - side + 1)), int(rng.integers(y0, y1 - side + 1))
    crop = img.crop((x, y, x + side, y + side))
    crop = crop.resize((CLASS_CROP_SIZE, CLASS_CROP_SIZE), Image.Resampling.LANCZOS)
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    crop = ImageEnhance.Contrast(crop).enhance(rng.uniform(0.7, 1.3))
    crop = _colour(crop, rng, 1.0)
    if rng.random() < 0.25:
        crop = crop.convert("L").convert("RGB")
    return crop


def _build_classes(root: Path) -> list[Row]:
    rows: list[Row] = []
    for label, (name, photo) in enumerate(_CLASS_PHOTOS.items()):
        img = PHOTOS[photo]()
        w, h = img.size
        regions = {"train": (0, 0, 2 * w // 3, h), "test": (2 * w // 3, 0, w, h)}  # disjoint pixels
        for split, count in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
            rng = _rng("classes", name, split)
            for i in range(count):
                rel = f"{name}/{name}_{split}_{i:02d}.jpg"
                save_image(_jittered_crop(img, regions[split], rng), root / rel)
                rows.append({"path": rel, "split": split, "label": str(label), "class_name": name})
    return rows


def demo_classes() -> DatasetRecord:
    """Embedded 8-class texture/material classification set (built on first use, then cached).

    16 training and 8 test images per class (128 / 64), 160 x 160 px. Train and test crops come from disjoint
    parts of each source photograph. Metric: mean class accuracy.
    """
    root, rows = _ensure_built("demo_classes", _build_classes)
    return DatasetRecord(
        name="demo_classes", task="multiclass", root=root, paths=[root / row["path"] for row in rows],
        labels=np.array([int(row["label"]) for row in rows]), class_names=list(_CLASS_PHOTOS),
        split=np.array([row["split"] for row in rows]), metric=specs.get("demo_classes").metric,
        protocol="fixed split: training crops from the left two thirds of each source photograph, test crops "
                 "from its right third; random crop size, flips, contrast/colour jitter and 25% grayscale.",
        paper_table="Tables 1-4 (classification), as a small offline stand-in",
    )


# ----------------------------------------------------------------------------------------------------------
# demo_faces
# ----------------------------------------------------------------------------------------------------------

FACES_TEST_PER_CLASS = 30


def _build_faces(root: Path) -> list[Row]:
    import skimage.data

    patches = skimage.data.lfw_subset()  # (200, 25, 25) floats: 100 faces, then 100 non-faces
    is_face = np.arange(len(patches)) < 100
    split = np.full(len(patches), "train", dtype=object)
    for value in (True, False):  # stratified: the same number of test images in each class
        members = np.flatnonzero(is_face == value)
        split[_rng("faces", str(value)).permutation(members)[:FACES_TEST_PER_CLASS]] = "test"
    rows: list[Row] = []
    for i, patch in enumerate(patches):
        rel = f"images/lfw_subset_{i:03d}.png"
        img = to_rgb_image(patch).resize((FACE_SIZE, FACE_SIZE), Image.Resampling.BICUBIC)
        save_image(img, root / rel)
        rows.append({"path": rel, "split": str(split[i]), "face": str(int(is_face[i]))})
    return rows


def demo_faces() -> DatasetRecord:
    """Embedded one-attribute set: LFW face crops vs non-face patches (built on first use, then cached).

    200 gray images upscaled from 25 x 25 to 100 x 100 px; labels ``(200, 1)`` in column ``"face"``;
    140 train / 60 test (30 of each kind). Metric: AUC (and AP) of the "face" attribute.
    """
    root, rows = _ensure_built("demo_faces", _build_faces)
    return DatasetRecord(
        name="demo_faces", task="attributes", root=root, paths=[root / row["path"] for row in rows],
        labels=np.array([[int(row["face"])] for row in rows]), class_names=["face"],
        split=np.array([row["split"] for row in rows]), metric=specs.get("demo_faces").metric,
        protocol="scikit-image's LFW subset: 100 faces and 100 non-face patches; seeded stratified split, "
                 "30 test images of each kind.",
        paper_table="Tables 5-6 (attributes), as a small offline stand-in",
    )
