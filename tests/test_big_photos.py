"""Big photos decoded small: a JPEG at least twice the size its largest view needs is decoded at 1/2, 1/4 or 1/8
scale, never so small that a view would have to be enlarged; small photos, other formats and other view specs are
decoded exactly as before, and only jobs holding a reduced image get a new feature-cache key."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from conftest import random_photo
from PIL import Image

from course_utils import augment, config, feature_store, features
from course_utils.imageio import BadImageError, open_rgb, open_rgb_reduced

SIZE = 224  # the registry's input size


def jpeg(path: Path, size: tuple[int, int], seed: int = 0, orientation: int | None = None) -> Path:
    image = random_photo(seed, size)
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    image.save(path, quality=92, exif=exif.tobytes())
    return path


@pytest.mark.parametrize(("views", "size", "scale"), [
    ("whole", (4000, 3000), 8),  # 500 x 375 at 1/8: still >= 224 on both sides
    ("whole", (2000, 1600), 4),  # 1/8 would leave 200 rows
    ("whole", (1000, 800), 1),  # under 2 megapixels: always decoded in full
    ("whole", (4470, 447), 1),  # less than twice 224 on the short side: full size
    ("paper16", (4000, 3000), 8),  # crops 2/3 of 500 x 375 = 333 x 250: still >= 224
    ("paper16", (2000, 1500), 4),  # crops of 500 x 375 at 1/4 are 333 x 250; at 1/8 166 x 125
    ("paper16", (1800, 1200), 2),  # crops of 900 x 600 are 600 x 400; at 1/4, 300 x 200
    ("paper16", (3200, 660), 1),  # 1/2: crops 1067 x 220, too short
])
def test_the_largest_scale_that_keeps_every_view_at_the_input_size(views, size, scale):
    spec = augment.get_views(views)
    assert features.decode_scale(spec, SIZE)(*size) == scale
    if scale > 1:  # 2 megapixels or more, and every view of the reduced image is indeed >= the input size, while one more halving is not
        sides = [min(x1 - x0, y1 - y0) for x0, y0, x1, y1 in spec.boxes(size[0] // scale, size[1] // scale)]
        assert min(sides) >= SIZE
        if scale < 8:
            sides = [min(x1 - x0, y1 - y0) for x0, y0, x1, y1 in spec.boxes(size[0] // (2 * scale),
                                                                                size[1] // (2 * scale))]
            assert min(sides) < SIZE


def test_a_crop_box_limits_the_scale_to_what_the_box_region_allows():
    scale_for = features.decode_scale(augment.get_views("whole"), SIZE, np.array([0.0, 0.0, 1000.0, 900.0]))
    assert scale_for(4000, 3000) == 4  # the region is 1000 x 900: 250 x 225 at 1/4
    box_off_edge = np.array([3500.0, 2500.0, 4600.0, 3600.0])  # clipped to the image: 500 x 500
    assert features.decode_scale(augment.get_views("whole"), SIZE, box_off_edge)(4000, 3000) == 2


def test_a_view_spec_that_does_not_say_where_it_cuts_is_never_reduced():
    class Centre:
        name, n_views, view_names = "centre", 1, ["centre"]

        def __call__(self, image):
            return [image.crop((0, 0, image.width // 2, image.height // 2))]

    assert features.decode_scale(Centre(), SIZE) is None


def test_reduced_decoding_gives_the_reduced_size_and_the_full_upright_size(tmp_path):
    path = jpeg(tmp_path / "big.jpg", (2000, 1500))
    image, full = open_rgb_reduced(path, lambda w, h: 4)
    assert image.mode == "RGB" and image.size == (500, 375) and full == (2000, 1500)
    # the same picture as a full decode shrunk by 4 (libjpeg's DCT scaling against a box filter: close, not equal)
    shrunk = open_rgb(path).reduce(4)
    assert np.abs(np.asarray(image, dtype=float) - np.asarray(shrunk, dtype=float)).mean() < 3


def test_the_scale_is_chosen_on_the_upright_size_of_a_sideways_phone_photo(tmp_path):
    path = jpeg(tmp_path / "sideways.jpg", (1600, 900), orientation=6)  # stored landscape, shown portrait
    seen = []
    image, full = open_rgb_reduced(path, lambda w, h: seen.append((w, h)) or 2)
    assert seen == [(900, 1600)] and full == (900, 1600) and image.size == (450, 800)


def test_png_and_small_jpegs_decode_exactly_as_before(tmp_path):
    png = tmp_path / "big.png"
    random_photo(1, (1200, 900)).save(png)
    image, _ = open_rgb_reduced(png, lambda w, h: 4)  # not a JPEG: no draft mode, full size
    assert image.size == (1200, 900)
    small = jpeg(tmp_path / "small.jpg", (500, 375))
    image, _ = open_rgb_reduced(small, features.decode_scale(augment.get_views("paper16"), SIZE))
    np.testing.assert_array_equal(np.asarray(image), np.asarray(open_rgb(small)))


def test_an_impossible_scale_is_the_callers_error_not_the_files(tmp_path):
    path = jpeg(tmp_path / "big.jpg", (1000, 800))
    with pytest.raises(ValueError, match=r"scale_for\(\) must return 1 or one of \(8, 4, 2\); it returned 3") as info:
        open_rgb_reduced(path, lambda w, h: 3)
    assert not isinstance(info.value, BadImageError)


def test_the_loader_scales_a_crop_box_to_the_reduced_image(tmp_path, lite0):
    path = jpeg(tmp_path / "big.jpg", (2000, 1600), seed=3)
    box = np.array([[400.0, 320.0, 1600.0, 1280.0]])  # 1200 x 960: reduced by 4 to 300 x 240
    spec = augment.get_views("whole")
    reduced = next(iter(features.view_loader([path], lite0, spec, images_per_batch=1, num_workers=0, boxes=box)))[1]
    full = next(iter(features.view_loader([path], lite0, spec, images_per_batch=1, num_workers=0, boxes=box,
                                          reduce_big_jpegs=False)))[1]
    assert reduced.shape == full.shape == (1, 3, SIZE, SIZE)
    # the same region: a misplaced box (not scaled, or scaled twice) would differ by tens of grey levels
    assert np.abs(reduced.numpy().astype(float) - full.numpy().astype(float)).mean() < 3


def test_only_jobs_with_a_reduced_image_get_a_new_cache_key(tmp_path, lite0, monkeypatch):
    small = [jpeg(tmp_path / f"small{i}.jpg", (500, 375), seed=i) for i in range(2)]
    big = jpeg(tmp_path / "big.jpg", (2000, 1500), seed=5)
    keys = []
    monkeypatch.setattr(features, "_cache_key", lambda *args: keys.append(args[-1]) or str(len(keys)))
    monkeypatch.setattr(feature_store, "read_entry", lambda *args: "hit")  # stop at the lookup: nothing to compute
    spec = augment.get_views("paper16")
    for paths in (small, [*small, big]):
        assert features.extract(paths, lite0, views=spec, cache=tmp_path / "cache", progress=False) == "hit"
    assert keys == [None, features.DECODE_POLICY]


@pytest.mark.shared
def test_the_shared_flowers102_photos_are_never_reduced():
    root = config.shared_data_dir()
    folder = root / "oxford_flowers102" / "jpg" if root is not None else None
    if folder is None or not folder.is_dir():
        pytest.skip("no shared oxford_flowers102/ on this machine (set COURSE_SHARED_DATA)")
    paths = sorted(folder.glob("*.jpg"))
    sample = paths[:: max(1, len(paths) // 400)]  # ~400 photos spread over the whole set
    for views in ("whole", "paper16"):
        assert not features._reduces_any(sample, augment.get_views(views), None, SIZE)
    with Image.open(sample[0]) as image:  # they are small: 256 px on the longer side
        assert max(image.size) <= 2 * SIZE and math.prod(image.size) > 0
