"""The paper's views: boxes checked pixel by pixel on synthetic images, names, counts, mirrors and rotations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from course_utils import augment
from course_utils.augment import crop_boxes, enlarge_box, get_views, inscribed_rotation_box

PAPER16_NAMES = [
    "whole", "crop_tl", "crop_tr", "crop_bl", "crop_br", "crop_c", "rot+10", "rot-10",
    "flip_whole", "flip_crop_tl", "flip_crop_tr", "flip_crop_bl", "flip_crop_br", "flip_crop_c", "flip_rot+10",
    "flip_rot-10",
]


def coordinate_image(width: int, height: int) -> Image.Image:
    """Pixel (x, y) holds (x, y, 7): every pixel says where it came from (sizes up to 256)."""
    xs, ys = np.meshgrid(np.arange(width), np.arange(height))
    array = np.stack([xs, ys, np.full_like(xs, 7)], axis=-1).astype(np.uint8)
    return Image.fromarray(array, mode="RGB")


def origin(view: Image.Image, x: int, y: int) -> tuple[int, int]:
    """Source coordinates of pixel (x, y) of a view cut from :func:`coordinate_image`."""
    r, g, _ = view.getpixel((x, y))
    return r, g


def test_crop_boxes_are_two_thirds_at_corners_and_centre():
    # 300 x 150: crops are 200 x 100 (2/3 of each side, 4/9 of the area), computed by hand.
    boxes = crop_boxes(300, 150)
    assert boxes == {
        "crop_tl": (0, 0, 200, 100),
        "crop_tr": (100, 0, 300, 100),
        "crop_bl": (0, 50, 200, 150),
        "crop_br": (100, 50, 300, 150),
        "crop_c": (50, 25, 250, 125),
    }
    for x0, y0, x1, y1 in boxes.values():
        assert (x1 - x0) * (y1 - y0) / (300 * 150) == pytest.approx(4 / 9)


def test_crop_boxes_round_odd_sizes_and_reject_bad_input():
    # 10 x 7: round(6.67) = 7 wide, round(4.67) = 5 tall; centre offset floor(3/2) = 1, floor(2/2) = 1.
    boxes = crop_boxes(10, 7)
    assert boxes["crop_br"] == (3, 2, 10, 7)
    assert boxes["crop_c"] == (1, 1, 8, 6)
    assert crop_boxes(1, 1)["crop_c"] == (0, 0, 1, 1)
    with pytest.raises(ValueError, match="fraction must be in"):
        crop_boxes(10, 10, fraction=1.5)
    with pytest.raises(ValueError, match="at least 1x1 pixels; got 0x5"):
        crop_boxes(0, 5)


def test_paper16_views_are_cut_from_the_right_pixels():
    image = coordinate_image(240, 180)  # crops: 160 x 120
    views = dict(zip(PAPER16_NAMES, get_views("paper16")(image), strict=True))
    assert origin(views["whole"], 0, 0) == (0, 0) and views["whole"].size == (240, 180)
    assert views["crop_tl"].size == (160, 120)
    assert origin(views["crop_tl"], 0, 0) == (0, 0) and origin(views["crop_tl"], 159, 119) == (159, 119)
    assert origin(views["crop_tr"], 0, 0) == (80, 0) and origin(views["crop_tr"], 159, 119) == (239, 119)
    assert origin(views["crop_bl"], 0, 0) == (0, 60) and origin(views["crop_bl"], 159, 119) == (159, 179)
    assert origin(views["crop_br"], 0, 0) == (80, 60) and origin(views["crop_br"], 159, 119) == (239, 179)
    assert origin(views["crop_c"], 0, 0) == (40, 30) and origin(views["crop_c"], 159, 119) == (199, 149)


def test_mirror_views_are_horizontal_flips_of_their_originals():
    image = coordinate_image(90, 60)
    views = dict(zip(PAPER16_NAMES, get_views("paper16")(image), strict=True))
    for name in PAPER16_NAMES[:8]:
        original = np.asarray(views[name])
        flipped = np.asarray(views[f"flip_{name}"])
        np.testing.assert_array_equal(flipped, original[:, ::-1])
    # The mirrored whole image starts at the original's right edge.
    assert origin(views["flip_whole"], 0, 0) == (89, 0)
    whole, flip = get_views("mirror")(image)
    np.testing.assert_array_equal(np.asarray(flip), np.asarray(image)[:, ::-1])
    assert np.asarray(whole).tobytes() == image.tobytes()


def test_view_counts_and_names():
    assert get_views("whole").view_names == ["whole"] and get_views("whole").n_views == 1
    assert get_views("mirror").view_names == ["whole", "flip_whole"] and get_views("mirror").n_views == 2
    spec = get_views("paper16")
    assert spec.view_names == PAPER16_NAMES and spec.n_views == 16
    assert len(spec(coordinate_image(50, 40))) == 16
    assert [spec.name for spec in map(get_views, ("whole", "mirror", "paper16"))] == ["whole", "mirror", "paper16"]


def test_inscribed_rotation_box_matches_the_hand_computed_rectangle():
    # 500 x 375 at 10 degrees (both corner conditions bind):
    #   w' = (500 cos10 - 375 sin10) / cos20 = 454.70, h' = (375 cos10 - 500 sin10) / cos20 = 300.60;
    #   minus a 1-pixel margin each side: 452.70 x 298.60, centred: x in [23.65, 476.35], y in [38.20, 336.80],
    #   rounded inwards.
    assert inscribed_rotation_box(500, 375, 10) == (24, 39, 476, 336)
    assert inscribed_rotation_box(500, 375, -10) == (24, 39, 476, 336)
    assert inscribed_rotation_box(375, 500, 10) == (39, 24, 336, 476)
    # 300 x 40 at 10 degrees (thin: only the short side binds): X = 40 / (4 sin10) = 57.59, Y = 40 / (4 cos10) = 10.15
    #   -> 115.18 x 20.31, minus the margin 113.18 x 18.31: x in [93.41, 206.59], y in [10.85, 29.15].
    assert inscribed_rotation_box(300, 40, 10) == (94, 11, 206, 29)
    assert inscribed_rotation_box(64, 48, 0) == (0, 0, 64, 48)


@pytest.mark.parametrize(("size", "degrees"), [((500, 375), 10), ((375, 500), -10), ((300, 40), 10), ((64, 64), 30)])
def test_rotated_views_hold_no_fill_pixels(size, degrees):
    white = Image.new("RGB", size, (255, 255, 255))
    rotated = white.rotate(degrees, resample=Image.Resampling.BILINEAR, expand=False)  # fill is black
    box = inscribed_rotation_box(*size, degrees)
    assert np.asarray(rotated.crop(box)).min() == 255
    spec = augment.Jitter("test", rotations=(degrees,))
    assert np.asarray(spec(white)[1]).min() == 255


@pytest.mark.parametrize(("size", "degrees"), [((500, 375), 10), ((375, 500), -10), ((64, 48), 30)])
def test_rotate_into_box_equals_rotate_then_crop(size, degrees):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (*size[::-1], 3), dtype=np.uint8))
    box = inscribed_rotation_box(*size, degrees)
    expected = np.asarray(image.rotate(degrees, resample=Image.Resampling.BILINEAR).crop(box)).astype(int)
    got = np.asarray(augment.rotate_into_box(image, degrees, box)).astype(int)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1


def test_rotated_view_keeps_most_of_the_largest_possible_rectangle():
    # The exact optimum at 10 degrees is 454.70 x 300.60 (see above): the box loses only its rounding and margin.
    x0, y0, x1, y1 = inscribed_rotation_box(500, 375, 10)
    assert (x1 - x0) * (y1 - y0) / (454.70 * 300.60) > 0.98


def test_positive_rotation_turns_counter_clockwise():
    # A horizontal black line through the centre: turned counter-clockwise, its right end rises.
    array = np.full((101, 201, 3), 255, dtype=np.uint8)
    array[49:52, :] = 0
    view = augment.Jitter("test", rotations=(10,))(Image.fromarray(array))[1]
    grey = np.asarray(view.convert("L")).astype(float)
    left_row, right_row = grey[:, 2].argmin(), grey[:, -3].argmin()
    assert right_row < left_row
    slope = (left_row - right_row) / (view.width - 5)
    assert slope == pytest.approx(math.tan(math.radians(10)), abs=0.02)


def test_base_views_are_the_unmirrored_half():
    spec = get_views("paper16")
    image = coordinate_image(90, 60)
    base, views = spec.base_views(image), spec(image)
    assert len(base) == 8
    for one, other in zip(base, views[:8], strict=True):
        assert one.tobytes() == other.tobytes()


def test_paper16_boxes_list_one_box_per_view():
    spec = get_views("paper16")
    boxes = spec.boxes(300, 150)
    assert len(boxes) == 16
    assert boxes[0] == (0, 0, 300, 150)
    assert boxes[1:6] == list(crop_boxes(300, 150).values())
    assert boxes[6] == inscribed_rotation_box(300, 150, 10) and boxes[7] == inscribed_rotation_box(300, 150, -10)
    assert boxes[8:] == boxes[:8]
    views = spec(Image.new("RGB", (300, 150)))
    assert [view.size for view in views[:8]] == [(x1 - x0, y1 - y0) for x0, y0, x1, y1 in boxes[:8]]


def test_paper16_parameters_go_into_params_and_are_checked():
    assert get_views("paper16").params["rotations"] == [10.0, -10.0]
    assert augment.Paper16(degrees=5).params != augment.Paper16().params
    assert augment.Paper16(degrees=5).view_names[6:8] == ["rot+5", "rot-5"]
    with pytest.raises(ValueError, match="got 50 degrees"):
        augment.Paper16(degrees=50)
    with pytest.raises(ValueError, match="Crop fraction must be in"):
        augment.Paper16(crop_fraction=0)


def test_tiny_images_still_give_every_view():
    views = get_views("paper16")(Image.new("RGB", (2, 2), (10, 20, 30)))
    assert len(views) == 16
    assert all(view.width >= 1 and view.height >= 1 for view in views)


def test_enlarge_box_scales_about_the_centre_and_clips():
    # Centre (20, 40), half sides 10 * 1.5 = 15 and 20 * 1.5 = 30.
    assert enlarge_box((10, 20, 30, 60), 1.5, 100, 100) == (5, 10, 35, 70)
    assert enlarge_box((0, 0, 20, 20), 2.0, 100, 100) == (0, 0, 30, 30)
    assert enlarge_box((90, 90, 100, 100), 3.0, 100, 100) == (80, 80, 100, 100)
    assert enlarge_box((10.2, 10.2, 19.8, 19.8), 1.0, 100, 100) == (10, 10, 20, 20)  # rounded outwards


def test_enlarge_box_rejects_bad_boxes():
    with pytest.raises(ValueError, match=r"Box \(10, 10, 5, 20\) is empty"):
        enlarge_box((10, 10, 5, 20), 1.5, 100, 100)
    with pytest.raises(ValueError, match="factor must be positive; got 0"):
        enlarge_box((0, 0, 5, 5), 0, 100, 100)
    with pytest.raises(ValueError, match="four finite numbers"):
        enlarge_box((0, 0, float("nan"), 5), 1.5, 100, 100)
    with pytest.raises(ValueError, match="lies outside the 100x100 image"):
        enlarge_box((200, 200, 210, 210), 1.5, 100, 100)


def test_get_views_rejects_unknown_names_and_objects():
    with pytest.raises(ValueError, match=r"Unknown views 'paper8'; choose one of \['mirror', 'paper16', 'whole'\]"):
        get_views("paper8")
    with pytest.raises(TypeError, match="not a view spec.*missing: name, view_names, n_views"):
        get_views(object())
    spec = augment.Jitter("custom", mirror=True)
    assert get_views(spec) is spec
    assert isinstance(spec, augment.ViewSpec)
